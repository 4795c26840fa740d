//! The page: controls for every config key, lockstep training on the GPU in short slices that
//! keep the page responsive, charts of everything the engine measures, share links, exports.

use super::bench;
use super::charts::{heatmap, line_chart, surface, HeatmapStyle, Line};
use super::driver;
use super::model::*;
use crate::checkpoint::{save_checkpoint, TensorFile};
use crate::config::{notices_line, Config, KeyKind, ResidualKind};
use crate::gpu::GpuContext;
use crate::program::{PROBE_EXTENT, PROBE_GRID};
use crate::trainer::Trainer;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::cell::RefCell;
use std::rc::Rc;

const SETTINGS_KEY: &str = "mhc-playground/chart-settings";
const RUN_KEY: &str = "mhc-playground/last-run";
/// Encode steps for at most this long per slice before yielding to the browser.
const SLICE_MS: f64 = 8.0;
/// Aim for a metrics readback this often, so the charts move even on a slow GPU.
const READBACK_MS: f64 = 150.0;
/// Without WebGPU the CPU backend takes experiments up to this many multiply-adds per step.
const CPU_BUDGET: f64 = 3e7;

#[derive(Clone, Debug, PartialEq)]
enum GpuStatus {
    Probing,
    Ready(String),
    Unavailable(String),
}

type Session = Rc<RefCell<Trainer>>;

/// Everything the page's parts share. All handles are `Copy`.
#[derive(Clone, Copy)]
struct AppState {
    config: RwSignal<Config>,
    notice: RwSignal<Option<String>>,
    message: RwSignal<Option<String>>,
    playing: RwSignal<bool>,
    history: RwSignal<History>,
    rate: RwSignal<f64>,
    settings: RwSignal<ChartSettings>,
    surfaces: RwSignal<Vec<(ResidualKind, Vec<f32>)>>,
    points: RwSignal<Vec<(f32, f32, u32)>>,
    generation: RwSignal<u64>,
    gpu_status: RwSignal<GpuStatus>,
    gpu: StoredValue<Option<Rc<GpuContext>>, LocalStorage>,
    session: StoredValue<Option<Session>, LocalStorage>,
    hover: RwSignal<Option<(&'static str, f64)>>,
    bench: RwSignal<Option<String>>,
}

fn multiply_adds(config: &Config) -> f64 {
    let c = config.width as f64;
    let per_block = 2.0 * c * c * config.ffn as f64 + (config.streams as f64 * c).powi(2);
    3.0 * config.depth as f64 * per_block * config.batch as f64 * config.modes.len() as f64
}

impl AppState {
    /// Drops the current run: a changed experiment starts from step 0.
    fn reset(self) {
        self.generation.update(|g| *g += 1);
        self.session.set_value(None);
        self.playing.set(false);
        self.rate.set(0.0);
        self.surfaces.set(Vec::new());
        self.points.set(Vec::new());
        self.history.set(History::new(&self.config.get_untracked()));
        if let Some(gpu) = self.gpu.get_value() {
            if gpu.check().is_err() {
                // A lost or broken device: open a new one.
                self.gpu.set_value(None);
                self.gpu_status.set(GpuStatus::Probing);
                spawn_local(probe_gpu(self));
            }
        }
    }

    /// The trainer of the current experiment, made on first use.
    fn session(self) -> Result<Session, String> {
        if let Some(s) = self.session.get_value() {
            return Ok(s);
        }
        let config = self.config.get_untracked();
        let gpu =
            match self.gpu_status.get_untracked() {
                GpuStatus::Probing => return Err("still looking for a GPU; try again in a moment".into()),
                GpuStatus::Ready(_) => self.gpu.get_value(),
                GpuStatus::Unavailable(_) if multiply_adds(&config) <= CPU_BUDGET => None,
                GpuStatus::Unavailable(_) => return Err(
                    "without WebGPU only small experiments run (on the CPU): lower depth, width, streams or batch, or pick fewer variants"
                        .into(),
                ),
            };
        let trainer = Trainer::new(&config, gpu).map_err(|e| e.to_string())?;
        let points =
            trainer.dataset.train_x.chunks_exact(2).zip(&trainer.dataset.train_y).take(400).map(|(p, &y)| (p[0], p[1], y)).collect();
        if config.task.is_2d() {
            self.points.set(points);
        }
        let session = Rc::new(RefCell::new(trainer));
        self.session.set_value(Some(session.clone()));
        // A run restored from a reload is only a picture: a new trainer starts at step 0.
        self.history.set(History::new(&config));
        Ok(session)
    }

    fn fail(self, message: String) {
        self.playing.set(false);
        self.message.set(Some(message));
    }

    /// Sets one key from a control; a clamped value is shown, an invalid one ignored.
    fn set_key(self, key: &'static str, value: &str) {
        let mut config = self.config.get_untracked();
        match config.set(key, value) {
            Ok(notice) => {
                self.message.set(notice.map(|n| n.to_string()));
                if config != self.config.get_untracked() {
                    self.config.set(config);
                    self.reset();
                }
            }
            Err(e) => self.message.set(Some(e.to_string())),
        }
    }
}

async fn probe_gpu(state: AppState) {
    match driver::acquire_gpu().await {
        Ok(gpu) => {
            state.gpu_status.set(GpuStatus::Ready(format!("{} ({})", gpu.adapter_name, gpu.backend)));
            state.gpu.set_value(Some(gpu));
        }
        Err(reason) => state.gpu_status.set(GpuStatus::Unavailable(reason)),
    }
}

/// One slice: encode up to `max_steps` steps (and for at most SLICE_MS), read the last one's
/// metrics back, record them. Returns the number of steps run, or None when nothing is left.
async fn slice(state: AppState, session: &Session, max_steps: u64) -> Result<Option<u64>, String> {
    let limit = state.config.get_untracked().steps as u64;
    let started = driver::now();
    let mut ran = 0;
    {
        // An export may be reading the weights right now: then this slice runs nothing.
        let Ok(mut trainer) = session.try_borrow_mut() else { return Ok(Some(0)) };
        while !trainer.all_stopped() && trainer.next_step < limit {
            let last = driver::now() - started > SLICE_MS || trainer.next_step + 1 == limit || ran + 1 >= max_steps;
            trainer.submit_step(last);
            ran += 1;
            if last {
                break;
            }
        }
    }
    if ran == 0 {
        return Ok(None);
    }
    record(state, session).await?;
    Ok(Some(ran))
}

/// Reads the last step's metrics into the history. Shared borrows may be held across awaits
/// (exports read too); every mutable borrow is a `try_`, so no two tasks can collide.
#[allow(clippy::await_holding_refcell_ref)]
async fn record(state: AppState, session: &Session) -> Result<(), String> {
    let rows = {
        let trainer = session.borrow();
        trainer.peek_metrics().await.map_err(|e| e.to_string())?
    };
    // Stopping diverged variants is idempotent: if busy now, the next read records it.
    if let Ok(mut trainer) = session.try_borrow_mut() {
        trainer.record(&rows);
    }
    state.history.update(|h| h.push(&rows));
    Ok(())
}

/// Shared borrow across the readback, as in [`record`].
#[allow(clippy::await_holding_refcell_ref)]
async fn refresh_surfaces(state: AppState, session: &Session) {
    if !state.config.get_untracked().task.is_2d() {
        return;
    }
    match session.try_borrow_mut() {
        Ok(mut trainer) => trainer.submit_probe(),
        Err(_) => return,
    }
    let mut out = Vec::new();
    let kinds = state.config.get_untracked().modes;
    for kind in kinds {
        let probs = { session.borrow().read_probe(kind).await };
        if let Ok(p) = probs {
            out.push((kind, p));
        }
    }
    state.surfaces.set(out);
}

/// Trains while Play is on, this experiment is current and the tab is visible.
async fn play_loop(state: AppState) {
    let generation = state.generation.get_untracked();
    let session = match state.session() {
        Ok(s) => s,
        Err(e) => return state.fail(e),
    };
    let mut window = (driver::now(), 0u64);
    let mut last_surface = 0.0;
    // Steps per slice follow the GPU's pace: one at first, then as many as fit READBACK_MS.
    let mut per_slice = 1u64;
    let mut ms_per_step: f64;
    while state.playing.get_untracked() && state.generation.get_untracked() == generation {
        if driver::tab_hidden() {
            driver::sleep(250).await;
            continue;
        }
        let started = driver::now();
        match slice(state, &session, per_slice).await {
            Err(e) => {
                state.session.set_value(None);
                return state.fail(format!("training stopped: {e}"));
            }
            Ok(None) => {
                state.playing.set(false);
                state.message.set(Some(if session.borrow().all_stopped() {
                    "every variant diverged".into()
                } else {
                    "finished: the configured number of steps is done".into()
                }));
                break;
            }
            Ok(Some(n)) => {
                window.1 += n;
                ms_per_step = (driver::now() - started) / n as f64;
                per_slice = (READBACK_MS / ms_per_step.max(0.1)).clamp(1.0, 64.0) as u64;
            }
        }
        let t = driver::now();
        if t - window.0 > 1000.0 {
            state.rate.set(window.1 as f64 * 1000.0 / (t - window.0));
            window = (t, 0);
        }
        // The decision surface costs a few steps of compute: redraw it at most every second,
        // and on a slow GPU only every 20 steps' worth of time.
        if t - last_surface > (20.0 * ms_per_step).max(1000.0) {
            refresh_surfaces(state, &session).await;
            last_surface = driver::now();
        }
        driver::sleep(0).await;
    }
    if state.generation.get_untracked() == generation {
        refresh_surfaces(state, &session).await;
    }
}

#[component]
pub fn App() -> impl IntoView {
    let query = driver::query();
    let (config, notices) = Config::from_query(&query);
    let settings: ChartSettings = driver::load(SETTINGS_KEY).and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
    let mut history = History::new(&config);
    if let Some(saved) = driver::load(RUN_KEY).and_then(|s| serde_json::from_str::<History>(&s).ok()) {
        if saved.config == history.config {
            history = saved;
        }
    }
    let state = AppState {
        config: RwSignal::new(config),
        notice: RwSignal::new(notices_line(&notices)),
        message: RwSignal::new(None),
        playing: RwSignal::new(false),
        history: RwSignal::new(history),
        rate: RwSignal::new(0.0),
        settings: RwSignal::new(settings),
        surfaces: RwSignal::new(Vec::new()),
        points: RwSignal::new(Vec::new()),
        generation: RwSignal::new(0),
        gpu_status: RwSignal::new(GpuStatus::Probing),
        gpu: StoredValue::new_local(None),
        session: StoredValue::new_local(None),
        hover: RwSignal::new(None),
        bench: RwSignal::new(None),
    };
    let bench = bench::steps(&query);
    // Read before the address bar is rewritten to the experiment's own keys.
    let bench_options = query.clone();
    spawn_local(async move {
        probe_gpu(state).await;
        if let Some(steps) = bench {
            state.message.set(Some(format!("benchmark: {steps} steps per variant, then in lockstep…")));
            let report = bench::run(state.gpu.get_value(), state.config.get_untracked(), steps, &bench_options).await;
            state.bench.set(Some(report));
        }
    });
    // The URL always reflects the experiment (debounced, no history entries).
    Effect::new(move |_| {
        let query = state.config.with(|c| c.to_query());
        let generation = state.generation.get_untracked();
        spawn_local(async move {
            driver::sleep(250).await;
            if state.generation.get_untracked() == generation {
                driver::replace_url(&query);
            }
        });
    });
    Effect::new(move |_| {
        if let Ok(json) = serde_json::to_string(&state.settings.get()) {
            driver::save(SETTINGS_KEY, &json);
        }
    });
    // Save the run now and then, so a reload shows it again.
    let last_save = StoredValue::new(0.0f64);
    Effect::new(move |_| {
        state.history.with(|h| {
            let t = driver::now();
            if t - last_save.get_value() > 2000.0 || !state.playing.get_untracked() {
                last_save.set_value(t);
                if let Ok(json) = serde_json::to_string(h) {
                    if json.len() < 2_000_000 {
                        driver::save(RUN_KEY, &json);
                    }
                }
            }
        })
    });

    view! {
        <header>
            <h1>"mHC Playground"</h1>
            <p class="tagline">"Residual, Hyper-Connections and mHC trained side by side on your GPU."</p>
            <GpuLine state/>
            {move || state.notice.get().map(|n| view! { <p class="notice" data-testid="config-notice" role="status">{n}</p> })}
            {move || state.message.get().map(|m| view! { <p class="message" data-testid="message" role="alert">{m}</p> })}
            {move || state.bench.get().map(|b| view! { <pre data-testid="bench-result">{b}</pre> })}
        </header>
        <main>
            <aside class="controls">
                <Buttons state/>
                <Presets state/>
                <Controls state/>
            </aside>
            <section class="results">
                <Cards state/>
                <Charts state/>
            </section>
        </main>
        <Explainer/>
    }
}

#[component]
fn GpuLine(state: AppState) -> impl IntoView {
    view! {
        <p class="gpu" data-testid="gpu-status">
            {move || match state.gpu_status.get() {
                GpuStatus::Probing => "Looking for a GPU…".to_string(),
                GpuStatus::Ready(name) => format!("GPU: {name}"),
                GpuStatus::Unavailable(reason) => format!("No WebGPU here ({reason}). Small experiments run on the CPU instead; try Chrome or Edge for the GPU."),
            }}
        </p>
    }
}

#[component]
fn Buttons(state: AppState) -> impl IntoView {
    let play = move |_| {
        if state.playing.get_untracked() {
            state.playing.set(false);
        } else {
            state.message.set(None);
            state.playing.set(true);
            spawn_local(play_loop(state));
        }
    };
    let step = move |_| {
        if state.playing.get_untracked() {
            return;
        }
        spawn_local(async move {
            match state.session() {
                Ok(session) => {
                    if let Err(e) = slice_once(state, &session).await {
                        state.fail(e);
                    }
                }
                Err(e) => state.fail(e),
            }
        });
    };
    let share = move |_| {
        let url = driver::share_url(&state.config.get_untracked().to_query());
        spawn_local(async move {
            let copied = driver::copy(&url).await;
            state.message.set(Some(if copied { format!("Link copied: {url}") } else { format!("Copy this link: {url}") }));
        });
    };
    view! {
        <div class="buttons">
            <button class="primary" on:click=play data-testid="play">{move || if state.playing.get() { "Pause" } else { "Play" }}</button>
            <button on:click=step disabled=move || state.playing.get()>"Step"</button>
            <button on:click=move |_| state.reset()>"Reset"</button>
            <button on:click=share>"Share"</button>
            <Export state/>
            <span class="rate" data-testid="rate">{move || format!("{:.1} steps/s", state.rate.get())}</span>
        </div>
    }
}

async fn slice_once(state: AppState, session: &Session) -> Result<(), String> {
    session.try_borrow_mut().map_err(|_| "busy, try again".to_string())?.submit_step(true);
    record(state, session).await?;
    refresh_surfaces(state, session).await;
    Ok(())
}

#[component]
fn Export(state: AppState) -> impl IntoView {
    let export_metrics = move |json: bool| {
        let result = state.history.with_untracked(|h| {
            if json {
                driver::download("mhc-metrics.jsonl", "application/json", h.to_jsonl().as_bytes())
            } else {
                driver::download("mhc-metrics.csv", "text/csv", h.to_csv().as_bytes())
            }
        });
        if let Err(e) = result {
            state.message.set(Some(e));
        }
    };
    let export_weights = move |kind: ResidualKind| {
        spawn_local(async move {
            let Some(session) = state.session.get_value() else {
                return state.message.set(Some("nothing trained yet: press Play or Step first".into()));
            };
            #[allow(clippy::await_holding_refcell_ref)]
            let result = async {
                let trainer = session.try_borrow().map_err(|_| "busy, try again".to_string())?;
                let variant = trainer.variant(kind).ok_or("that variant is not being trained")?;
                let values = variant.params().await.map_err(|e| e.to_string())?;
                let bytes = save_checkpoint(&variant.program.layout, &values, &trainer.config).map_err(|e| e.to_string())?;
                driver::download(&format!("mhc-{}.safetensors", kind.name()), "application/octet-stream", &bytes)
            }
            .await;
            if let Err(e) = result {
                state.message.set(Some(e));
            }
        });
    };
    let import = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
        spawn_local(async move {
            let result: Result<String, String> = async {
                let bytes = driver::read_file(&file).await?;
                let tensors = TensorFile::parse(&bytes).map_err(|e| e.to_string())?;
                let (ckpt, _) = tensors.experiment().map_err(|e| e.to_string())?;
                let kind = match ckpt.modes.as_slice() {
                    [k] => *k,
                    _ => return Err("the checkpoint must be for one variant".into()),
                };
                state.playing.set(false);
                let session = state.session()?;
                let mut trainer = session.try_borrow_mut().map_err(|_| "busy, try again".to_string())?;
                let layout =
                    trainer.variant(kind).ok_or(format!("{} is not among the variants being trained", kind.name()))?.program.layout.clone();
                let values = tensors.params(&layout).map_err(|e| format!("{e} (depth, width, streams, ffn and task must match)"))?;
                trainer.load_params(kind, &values).map_err(|e| e.to_string())?;
                Ok(format!("loaded {} weights from {}", kind.name(), file.name()))
            }
            .await;
            state.message.set(Some(result.unwrap_or_else(|e| format!("import failed: {e}"))));
        });
    };
    view! {
        <details class="export">
            <summary>"Export"</summary>
            <button on:click=move |_| export_metrics(false)>"Metrics CSV"</button>
            <button on:click=move |_| export_metrics(true)>"Metrics JSON"</button>
            {ResidualKind::ALL.into_iter().map(|k| view! {
                <button on:click=move |_| export_weights(k)>{format!("Weights: {}", k.name())}</button>
            }).collect_view()}
            <label class="import">"Import weights" <input type="file" accept=".safetensors" on:change=import/></label>
        </details>
    }
}

#[component]
fn Presets(state: AppState) -> impl IntoView {
    view! {
        <div class="presets" role="group" aria-label="Presets">
            {PRESETS.iter().map(|p| {
                let (config, _) = Config::from_query(p.query);
                view! {
                    <button title=p.what on:click=move |_| {
                        state.config.set(config.clone());
                        state.reset();
                        state.message.set(Some(p.what.to_string()));
                    }>{p.name}</button>
                }
            }).collect_view()}
        </div>
    }
}

fn mode_label(kind: ResidualKind) -> &'static str {
    match kind {
        ResidualKind::Residual => "Residual",
        ResidualKind::Hc => "HC",
        ResidualKind::Mhc => "mHC",
    }
}

#[component]
fn ControlView(state: AppState, control: Control) -> impl IntoView {
    let key = control.key;
    let value = move || state.config.with(|c| c.get(key).unwrap_or_default());
    let kind = kind_of(key);
    let (lo, hi) = match kind {
        // Through the shortest decimal: 0.1f32 as f64 is 0.10000000149, which would shift the
        // slider's step grid off the round values.
        Some(KeyKind::Float { min, max }) => (min.to_string().parse().unwrap_or(0.0), max.to_string().parse().unwrap_or(1.0)),
        Some(KeyKind::Int { min, max }) => (min as f64, max as f64),
        _ => (0.0, 1.0),
    };
    let input = match control.widget {
        Widget::Slider { step, log } => {
            let (min, max) = if log { (lo.log10(), hi.log10()) } else { (lo, hi) };
            view! {
                <input type="range" aria-label=control.label min=min max=max step=step
                    prop:value=move || {
                        let v: f64 = value().parse().unwrap_or(0.0);
                        if log { v.log10() } else { v }
                    }
                    on:input=move |ev| {
                        let raw: f64 = event_target_value(&ev).parse().unwrap_or(0.0);
                        let v = if log { format!("{:.3e}", 10f64.powf(raw)) } else { format!("{raw}") };
                        state.set_key(key, &v);
                    }/>
                <output>{value}</output>
            }
            .into_any()
        }
        Widget::Number => view! {
            <input type="number" aria-label=control.label min=lo max=hi step="any" prop:value=value
                on:change=move |ev| state.set_key(key, &event_target_value(&ev))/>
        }
        .into_any(),
        Widget::Select => {
            let names: &[&str] = match kind {
                Some(KeyKind::Choice(names)) => names,
                _ => &[],
            };
            view! {
                <select aria-label=control.label prop:value=value on:change=move |ev| state.set_key(key, &event_target_value(&ev))>
                    {names.iter().map(|&n| view! { <option value=n selected=move || value() == n>{n}</option> }).collect_view()}
                </select>
            }
            .into_any()
        }
        Widget::Toggles => view! {
            <span class="toggles">
                {ResidualKind::ALL.into_iter().map(|kind| {
                    let on = move || state.config.with(|c| c.modes.contains(&kind));
                    view! {
                        <label style=format!("color:{}", color(kind))>
                            <input type="checkbox" aria-label=mode_label(kind) prop:checked=on on:change=move |ev| {
                                let mut modes = state.config.get_untracked().modes;
                                if event_target_checked(&ev) { modes.push(kind) } else { modes.retain(|m| *m != kind) }
                                if modes.is_empty() {
                                    return state.message.set(Some("keep at least one variant".into()));
                                }
                                let list = ResidualKind::ALL.into_iter().filter(|k| modes.contains(k)).map(|k| k.name()).collect::<Vec<_>>().join(",");
                                state.set_key("modes", &list);
                            }/>
                            {mode_label(kind)}
                        </label>
                    }
                }).collect_view()}
            </span>
        }
        .into_any(),
    };
    view! {
        <div class="control">
            <span class="label">{control.label}</span>
            {input}
        </div>
    }
}

#[component]
fn Controls(state: AppState) -> impl IntoView {
    let group = move |g: Group, common: bool| {
        CONTROLS
            .iter()
            .filter(move |c| c.group == g && c.common == common)
            .map(move |&control| view! { <ControlView state control/> })
            .collect_view()
    };
    view! {
        <div class="groups">
            {Group::ALL.into_iter().map(|g| view! {
                <fieldset><legend>{g.title()}</legend>{group(g, true)}</fieldset>
            }).collect_view()}
            <details class="more">
                <summary>"More settings"</summary>
                {Group::ALL.into_iter().map(|g| view! {
                    <fieldset><legend>{g.title()}</legend>{group(g, false)}</fieldset>
                }).collect_view()}
            </details>
        </div>
    }
}

#[component]
fn Cards(state: AppState) -> impl IntoView {
    view! {
        <div class="cards">
            {move || state.config.with(|c| c.modes.clone()).into_iter().map(|kind| {
                let latest = move || state.history.with(|h| h.latest.iter().find(|m| m.mode == kind.name()).cloned());
                let series = move || state.history.with(|h| h.series(kind).cloned());
                let step = move || state.history.with(|h| h.last_step(kind).map(|s| s.to_string()).unwrap_or_else(|| "0".into()));
                let depth = state.config.with_untracked(|c| c.depth);
                view! {
                    <div class="card" style=format!("border-color:{}", color(kind))>
                        <h3 style=format!("color:{}", color(kind))>{mode_label(kind)}</h3>
                        <p>"step " <b data-testid=format!("step-{}", kind.name())>{step}</b></p>
                        <p>"loss " {move || format_value(latest().and_then(|m| m.loss).map(f64::from))}
                           " · acc " {move || format_value(latest().and_then(|m| m.acc).map(f64::from))}</p>
                        <p>"composite gain " <b data-testid=format!("gain-{}", kind.name())>{move || format_value(latest().and_then(|m| m.gain_fwd).map(f64::from))}</b></p>
                        {move || series().and_then(|s| s.diverged).map(|(step, block)| {
                            let place = if block >= depth { "the head".to_string() } else { format!("block {block}") };
                            view! {
                                <p class="diverged" data-testid=format!("diverged-{}", kind.name())>
                                    {format!("Diverged at step {step} in {place}: a value became infinite or NaN. Training of this variant stopped; the others go on.")}
                                </p>
                            }
                        })}
                    </div>
                }
            }).collect_view()}
        </div>
    }
}

/// Raw (faint) and smoothed lines of one scalar per variant.
fn scalar_lines(h: &History, smoothing: f64, pick: impl Fn(&Series) -> &Vec<Option<f32>>, dashed: bool, suffix: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    for s in &h.series {
        let Some(kind) = ResidualKind::parse(&s.mode) else { continue };
        let raw = pick(s);
        let smoothed = smooth(raw, smoothing);
        lines.push(Line {
            label: String::new(),
            color: color(kind),
            points: s.step.iter().zip(raw).filter_map(|(&x, y)| Some((x, (*y)? as f64))).collect(),
            faint: true,
            dashed: false,
        });
        lines.push(Line {
            label: format!("{}{suffix}", mode_label(kind)),
            color: color(kind),
            points: s.step.iter().zip(smoothed).filter_map(|(&x, y)| Some((x, y?))).collect(),
            faint: false,
            dashed,
        });
    }
    lines
}

fn test_lines(h: &History, accuracy: bool) -> Vec<Line> {
    h.series
        .iter()
        .filter_map(|s| {
            let kind = ResidualKind::parse(&s.mode)?;
            let points = s.test.iter().filter_map(|&(x, l, a)| Some((x, if accuracy { a? } else { l? } as f64))).collect();
            Some(Line { label: format!("{} test", mode_label(kind)), color: color(kind), points, faint: false, dashed: true })
        })
        .collect()
}

#[component]
fn Chart(state: AppState, id: &'static str, draw: impl Fn(&web_sys::HtmlCanvasElement, Option<f64>) + 'static) -> impl IntoView {
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    Effect::new(move |_| {
        let hover = state.hover.get().filter(|(chart, _)| *chart == id).map(|(_, x)| x);
        state.history.track();
        state.settings.track();
        state.surfaces.track();
        if let Some(c) = canvas.get() {
            draw(&c, hover);
        }
    });
    view! {
        <canvas node_ref=canvas class="chart" data-chart=id
            on:mousemove=move |ev| state.hover.set(Some((id, ev.offset_x() as f64)))
            on:mouseleave=move |_| state.hover.set(None)></canvas>
    }
}

#[component]
fn Charts(state: AppState) -> impl IntoView {
    let s = move || state.settings.get_untracked();
    let block_max = move || state.config.with(|c| c.depth.saturating_sub(1));
    let heat_kind = RwSignal::new(ResidualKind::Hc);
    view! {
        <div class="chart-settings">
            <label>"Smoothing" <input type="range" aria-label="Smoothing" min=0 max=0.99 step=0.01
                prop:value=move || state.settings.with(|s| s.smoothing)
                on:input=move |ev| { let v = event_target_value(&ev).parse().unwrap_or(0.6); state.settings.update(|s| s.smoothing = v) }/></label>
            <label><input type="checkbox" aria-label="Log loss axis" prop:checked=move || state.settings.with(|s| s.loss_log)
                on:change=move |ev| { let v = event_target_checked(&ev); state.settings.update(|s| s.loss_log = v) }/>"log loss axis"</label>
        </div>
        <div class="charts">
            <Chart state id="gain" draw=move |c, hover| state.history.with(|h| {
                let mut lines = scalar_lines(h, s().smoothing, |s| &s.gain_fwd, false, "");
                lines.extend(scalar_lines(h, s().smoothing, |s| &s.gain_bwd, true, " bwd").into_iter().filter(|l| !l.faint));
                line_chart(c, "Composite gain, log scale (solid forward, dashed backward): HC climbs, mHC stays at 1", &lines, true, hover)
            })/>
            <Chart state id="loss" draw=move |c, hover| state.history.with(|h| {
                let mut lines = scalar_lines(h, s().smoothing, |s| &s.loss, false, "");
                lines.extend(test_lines(h, false));
                line_chart(c, "Loss (train solid, test dashed)", &lines, s().loss_log, hover)
            })/>
            <Chart state id="acc" draw=move |c, hover| state.history.with(|h| {
                let mut lines = scalar_lines(h, s().smoothing, |s| &s.acc, false, "");
                lines.extend(test_lines(h, true));
                line_chart(c, "Accuracy", &lines, false, hover)
            })/>
            <Chart state id="grad" draw=move |c, hover| state.history.with(|h| {
                line_chart(c, "Gradient norm (log scale)", &scalar_lines(h, s().smoothing, |s| &s.grad_norm, false, ""), true, hover)
            })/>
            <Chart state id="profile" draw=move |c, hover| state.history.with(|h| {
                let mut lines = Vec::new();
                for m in &h.latest {
                    let Some(kind) = ResidualKind::parse(m.mode) else { continue };
                    for (values, dashed, what) in [(&m.gain_fwd_blocks, false, "fwd"), (&m.gain_bwd_blocks, true, "bwd")] {
                        let points = values.iter().enumerate().filter_map(|(l, v)| Some((l as f64, (*v)? as f64))).collect();
                        lines.push(Line { label: format!("{} {what}", mode_label(kind)), color: color(kind), points, faint: false, dashed });
                    }
                }
                line_chart(c, "Gain by block, latest step: prefix products H_l..H_0 (solid), suffix H_L-1..H_l (dashed)", &lines, true, hover)
            })/>
        </div>
        <div class="block-views">
            <div class="row">
                <label>"Variant" <select aria-label="Heatmap variant" on:change=move |ev| {
                    if let Some(k) = ResidualKind::parse(&event_target_value(&ev)) { heat_kind.set(k) }
                }>
                    {ResidualKind::ALL.into_iter().map(|k| view! { <option value=k.name() selected=move || heat_kind.get() == k>{mode_label(k)}</option> }).collect_view()}
                </select></label>
                <label>"Per block" <select aria-label="Per-block quantity" on:change=move |ev| {
                    let v = if event_target_value(&ev) == "grad" { HeatmapKind::GradNorm } else { HeatmapKind::StreamRms };
                    state.settings.update(|s| s.heatmap = v)
                }>
                    <option value="rms" selected=move || state.settings.with(|s| s.heatmap == HeatmapKind::StreamRms)>"stream RMS"</option>
                    <option value="grad" selected=move || state.settings.with(|s| s.heatmap == HeatmapKind::GradNorm)>"gradient norm"</option>
                </select></label>
                <label>"Block" <input type="range" aria-label="Block" min=0 max=block_max step=1
                    prop:value=move || state.settings.with(|s| s.block)
                    on:input=move |ev| { let v = event_target_value(&ev).parse().unwrap_or(0); state.settings.update(|s| s.block = v) }/>
                    <output>{move || state.settings.with(|s| s.block)}</output></label>
            </div>
            <Chart state id="depth-step" draw=move |c, _| state.history.with(|h| {
                heat_kind.track();
                let Some(series) = h.series(heat_kind.get_untracked()) else { return heatmap(c, "pick a variant that is being trained", &[], 0, 0, &HeatmapStyle { log: true, sums: false, y_label: "", x_label: "" }) };
                let grad = s().heatmap == HeatmapKind::GradNorm;
                let depth = series.blocks.first().map(|b| b.1.len()).unwrap_or(0);
                let cols = series.blocks.len();
                let mut values = vec![None; depth * cols];
                for (j, (_, rms, g)) in series.blocks.iter().enumerate() {
                    for (l, v) in (if grad { g } else { rms }).iter().enumerate().take(depth) {
                        values[l * cols + j] = *v;
                    }
                }
                let what = if grad { "gradient norm" } else { "stream RMS" };
                heatmap(c, &format!("{} per block (rows) over steps (columns), log colour", what), &values, depth, cols, &HeatmapStyle { log: true, sums: false, y_label: "block 0 at top", x_label: "step →" })
            })/>
            <Chart state id="h-res" draw=move |c, _| state.history.with(|h| {
                heat_kind.track();
                let kind = heat_kind.get_untracked();
                let block = s().block;
                let m = h.latest.iter().find(|m| m.mode == kind.name());
                let n = state.config.with_untracked(|c| c.streams as usize);
                match m.and_then(|m| m.h_res.get(block).map(|r| (r, m.ds_err_row, m.ds_err_col))) {
                    Some((row, ds_row, ds_col)) if row.len() == n * n => {
                        let values: Vec<Option<f32>> = row.iter().map(|&v| Some(v)).collect();
                        let ds = match (ds_row, ds_col) {
                            (Some(r), Some(c)) => format!(" · doubly-stochastic error: rows {}, columns {}", format_value(Some(r as f64)), format_value(Some(c as f64))),
                            _ => String::new(),
                        };
                        heatmap(c, &format!("{} H_res of block {block}, batch mean{ds}", mode_label(kind)), &values, n, n, &HeatmapStyle { log: false, sums: true, y_label: "", x_label: "column sums ↑" })
                    }
                    _ => heatmap(c, "H_res appears for HC and mHC after the first measured step", &[], 0, 0, &HeatmapStyle { log: false, sums: true, y_label: "", x_label: "" }),
                }
            })/>
        </div>
        <div class="surfaces">
            {move || state.config.with(|c| c.task.is_2d()).then(|| state.config.with(|c| c.modes.clone()).into_iter().map(|kind| view! {
                <Chart state id=kind.name() draw=move |c, _| {
                    let probs = state.surfaces.with(|s| s.iter().find(|(k, _)| *k == kind).map(|(_, p)| p.clone()).unwrap_or_default());
                    state.points.with(|p| surface(c, &format!("{} decision boundary", mode_label(kind)), &probs, PROBE_GRID, PROBE_EXTENT, p));
                }/>
            }).collect_view())}
        </div>
    }
}

#[component]
fn Explainer() -> impl IntoView {
    view! {
        <section class="explain">
            <h2>"What you are looking at"</h2>
            <p><b>"Residual networks"</b>" add each block's output to one stream: "<i>"x ← x + F(x)"</i>". The identity path keeps signals and gradients flowing through many layers."</p>
            <p><b>"Hyper-Connections (HC)"</b>" widen that stream into n parallel streams and learn, per block, how to read them ("<i>"H_pre"</i>"), where to write ("<i>"H_post"</i>") and how to mix them ("<i>"H_res"</i>", an n × n matrix). At initialisation HC is exactly a residual network, and it can learn better connections."</p>
            <p>"But across L blocks the mixing matrices multiply. Nothing keeps the product near the identity, so its size, the "<b>"composite gain"</b>" (largest absolute row sum of the product, forward; column sum, backward), can grow layer after layer. In DeepSeek's 27B model it reached about 3000 and training spiked."</p>
            <p><b>"mHC"</b>" (DeepSeek, 2025) projects each "<i>"H_res"</i>" onto the doubly-stochastic matrices (non-negative, every row and column summing to 1) with 20 iterations of "<b>"Sinkhorn-Knopp"</b>": divide every column by its sum, then every row by its sum, and repeat. Products of such matrices stay doubly stochastic, so the composite gain stays at 1 however deep the network. Fewer iterations leave the column sums slightly off: watch the backward gain."</p>
            <p>"Read more: "<a href="https://arxiv.org/abs/2512.24880">"mHC, arXiv 2512.24880"</a>" · "<a href="https://arxiv.org/abs/2409.19606">"Hyper-Connections, arXiv 2409.19606"</a>"."</p>
        </section>
    }
}
