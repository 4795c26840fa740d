//! The page's shared state and its frame: the experiment, the GPU, the current trainer, and
//! the layout of the parts (controls, results, sweep), each of which has its own file.

use super::backend::{BackendLine, BackendState};
use super::backend_model::BackendChoice;
use super::bench;
use super::controls::{Buttons, Controls, Presets};
use super::driver;
use super::imported::ImportedRun;
use super::model::*;
use super::own_text;
use super::persist::{look_for_saved_run, Persistence, ResumeOffer};
use super::reading::{ReadingPanel, ReadingState};
use super::results::{Cards, Charts, Explainer};
use super::sweep::{SweepPanel, SweepState};
use crate::config::{notices_line, Config, ResidualKind};
use crate::gpu::{GpuContext, GpuError};
use crate::sweep::Sweep;
use crate::trainer::{EngineError, Trainer};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::cell::RefCell;
use std::rc::Rc;

const SETTINGS_KEY: &str = "mhc-playground/chart-settings";
const RUN_KEY: &str = "mhc-playground/last-run";

#[derive(Clone, Debug, PartialEq)]
pub(super) enum GpuStatus {
    Probing,
    Ready(String),
    Unavailable(String),
}

pub(super) type Session = Rc<RefCell<Trainer>>;

/// Everything the page's parts share. All handles are `Copy`.
#[derive(Clone, Copy)]
pub(super) struct AppState {
    pub(super) config: RwSignal<Config>,
    pub(super) notice: RwSignal<Option<String>>,
    pub(super) message: RwSignal<Option<String>>,
    pub(super) playing: RwSignal<bool>,
    pub(super) history: RwSignal<History>,
    pub(super) rate: RwSignal<f64>,
    pub(super) settings: RwSignal<ChartSettings>,
    pub(super) surfaces: RwSignal<Vec<(ResidualKind, Vec<f32>)>>,
    pub(super) points: RwSignal<Vec<(f32, f32, u32)>>,
    pub(super) generation: RwSignal<u64>,
    pub(super) gpu_status: RwSignal<GpuStatus>,
    pub(super) gpu: StoredValue<Option<Rc<GpuContext>>, LocalStorage>,
    pub(super) session: StoredValue<Option<Session>, LocalStorage>,
    pub(super) hover: RwSignal<Option<(&'static str, f64)>>,
    pub(super) bench: RwSignal<Option<String>>,
    /// Another run's metrics (a PyTorch run, say), drawn dashed over the live curves.
    pub(super) imported: RwSignal<Option<ImportedRun>>,
    pub(super) sweep: SweepState,
    /// What the transformers write, and their attention.
    pub(super) reading: ReadingState,
    pub(super) persist: Persistence,
    pub(super) backend: BackendState,
}

impl AppState {
    /// The experiment's share string, with the sweep when one is set up.
    pub(super) fn share_query(self) -> String {
        let config = self.config.get_untracked();
        match self.sweep.spec.get_untracked() {
            Some(sweep) => sweep.share_query(&config),
            None => config.to_query(),
        }
    }

    /// Drops the current run: a changed experiment starts from step 0.
    pub(super) fn reset(self) {
        self.generation.update(|g| *g += 1);
        self.persist.offer.set(None);
        self.session.set_value(None);
        self.playing.set(false);
        self.rate.set(0.0);
        self.surfaces.set(Vec::new());
        self.reading.reset();
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
    pub(super) fn session(self) -> Result<Session, String> {
        if let Some(s) = self.session.get_value() {
            return Ok(s);
        }
        let config = self.config.get_untracked();
        let status = self.gpu_status.get_untracked();
        let gpu = match status {
            GpuStatus::Probing => return Err("still looking for a GPU; try again in a moment".into()),
            _ if self.backend.on_cpu(&status, &config) => None,
            _ => self.gpu.get_value(),
        };
        let trainer = Trainer::new(&config, gpu.clone()).map_err(|e| {
            let smaller = matches!(e, EngineError::TooLarge(_) | EngineError::Gpu(GpuError::TooLarge { .. }))
                .then(|| Trainer::smaller_that_fits(&config, gpu.as_deref()))
                .flatten();
            match smaller {
                Some(smaller) => format!("{e}. This fits: {}", config.changes_to(&smaller).join("&")),
                None => e.to_string(),
            }
        })?;
        // A new trainer starts at step 0, so do its charts.
        Ok(self.install(trainer, History::new(&config)))
    }

    /// Makes `trainer` the current run, with the charts of `history`.
    pub(super) fn install(self, mut trainer: Trainer, history: History) -> Session {
        // On the CPU a step runs in slices between frames (`backend::run_cpu_work`).
        trainer.set_sliced(trainer.gpu().is_none());
        let points =
            trainer.dataset.train_x.chunks_exact(2).zip(&trainer.dataset.train_y).take(400).map(|(p, &y)| (p[0], p[1], y)).collect();
        if trainer.config.task.is_2d() {
            self.points.set(points);
        }
        let session = Rc::new(RefCell::new(trainer));
        self.session.set_value(Some(session.clone()));
        self.history.set(history);
        session
    }

    pub(super) fn fail(self, message: String) {
        self.playing.set(false);
        self.message.set(Some(message));
    }

    /// Sets one key from a control; a clamped value is shown, an invalid one ignored.
    pub(super) fn set_key(self, key: &'static str, value: &str) {
        let mut config = self.config.get_untracked();
        match config.set(key, value) {
            Ok(notice) => {
                self.message.set(notice.map(|n| n.to_string()));
                if config != self.config.get_untracked() {
                    self.backend.experiment_changed(false);
                    self.config.set(config);
                    self.reset();
                }
            }
            Err(e) => self.message.set(Some(e.to_string())),
        }
    }
}

pub(super) async fn probe_gpu(state: AppState) {
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

#[component]
pub fn App() -> impl IntoView {
    let query = driver::query();
    let (config, mut notices) = Config::from_query(&query);
    if config.task == crate::config::Task::Text && !own_text::load(config.text) {
        notices.push(crate::config::ConfigNotice::new(
            "text",
            format!("text={}: this link trains on a text of its own that this browser does not have; paste it under More settings › Text to reproduce the run", config.text),
        ));
    }
    let (sweep, sweep_notices) = Sweep::from_query(&query);
    notices.extend(sweep_notices);
    let choice = match driver::query_value(&query, "backend") {
        None => BackendChoice::default(),
        Some(value) => BackendChoice::parse(value).unwrap_or_else(|| {
            let shown: String = value.chars().take(24).collect();
            notices.push(crate::config::ConfigNotice::new("backend", format!("backend={shown}: not auto, gpu or cpu; using auto")));
            BackendChoice::default()
        }),
    };
    // The bare link (nothing but page keys): on a CPU its heavy default may be scaled.
    let implicit = query.split('&').filter(|pair| !pair.is_empty()).all(|pair| pair.starts_with("backend="));
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
        imported: RwSignal::new(None),
        sweep: SweepState::new(sweep),
        reading: ReadingState::new(),
        persist: Persistence::new(),
        backend: BackendState::new(choice, implicit),
    };
    // A shared sweep link is about the sweep: bring its panel into view once the page is drawn.
    if state.sweep.spec.get_untracked().is_some() {
        spawn_local(async {
            driver::sleep(100).await;
            driver::scroll_to("sweep-title");
        });
    }
    let bench = bench::steps(&query);
    // Read before the address bar is rewritten to the experiment's own keys.
    let bench_options = query.clone();
    spawn_local(async move {
        probe_gpu(state).await;
        look_for_saved_run(state).await;
        if let Some(steps) = bench {
            state.message.set(Some(format!("benchmark: {steps} steps per variant, then in lockstep…")));
            let report = bench::run(state.gpu.get_value(), state.config.get_untracked(), steps, &bench_options).await;
            state.bench.set(Some(report));
        }
    });
    // The URL always reflects the experiment (debounced, no history entries).
    Effect::new(move |_| {
        state.sweep.spec.track();
        state.config.track();
        let query = state.share_query();
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
            <BackendLine state/>
            <ResumeOffer state/>
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
                <ReadingPanel state/>
                <Charts state/>
                <SweepPanel state/>
            </section>
        </main>
        <Explainer/>
    }
}

/// The GPU in plain words; without one, what is missing and what happens instead, with the
/// browser's own reason behind a disclosure.
#[component]
fn GpuLine(state: AppState) -> impl IntoView {
    move || match state.gpu_status.get() {
        GpuStatus::Probing => view! { <p class="gpu" data-testid="gpu-status">"Looking for a GPU…"</p> }.into_any(),
        GpuStatus::Ready(name) => {
            let software = state.gpu.get_value().is_some_and(|g| g.software);
            let line = if software { format!("GPU: {name}, a software GPU that runs on the CPU") } else { format!("GPU: {name}") };
            view! { <p class="gpu" data-testid="gpu-status">{line}</p> }.into_any()
        }
        GpuStatus::Unavailable(reason) => view! {
            <div class="gpu" data-testid="gpu-status">
                <p>"This browser cannot use your GPU (it has no WebGPU), so the networks train on your CPU: slower, but the same story. "
                   "For the GPU, use Chrome or Edge 113 or later, Safari 26, or Firefox 141 or later on Windows."</p>
                <details><summary>"Technical detail"</summary><p data-testid="gpu-detail">{reason}</p></details>
            </div>
        }
        .into_any(),
    }
}
