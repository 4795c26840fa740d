//! The Sweep panel: one or two axes over config keys, every cell trained in lockstep one after
//! another in short slices (the page stays responsive; pause, resume and cancel act between
//! slices), maps per variant as results come in, CSV / JSON export, and a cell opens as a run.

use super::app::{AppState, GpuStatus};
use super::driver;
use super::model::{color, mode_label, multiply_adds, CPU_SWEEP_BUDGET};
use super::sweep_model::*;
use crate::config::{key_specs, Config};
use crate::sweep::{Axis, CellResult, CellRun, Sweep, DEFAULT_STEPS};
use crate::trainer::Trainer;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Submit steps for at most this long before yielding to the browser.
const SLICE_MS: f64 = 12.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum SweepStatus {
    Idle,
    Running,
    Paused,
    Cancelled,
    Done,
}

/// The panel's state; all handles are `Copy`.
#[derive(Clone, Copy)]
pub(super) struct SweepState {
    /// The sweep the address bar carries (set from a shared link, by the form, or a preset).
    pub spec: RwSignal<Option<Sweep>>,
    x_key: RwSignal<String>,
    x_values: RwSignal<String>,
    /// Empty for a one-axis sweep.
    y_key: RwSignal<String>,
    y_values: RwSignal<String>,
    steps: RwSignal<String>,
    status: RwSignal<SweepStatus>,
    /// The sweep and base experiment the results belong to.
    ran: RwSignal<Option<(Sweep, Config)>>,
    results: RwSignal<Vec<CellResult>>,
    progress: RwSignal<(f64, String)>,
    metric: RwSignal<SweepMetric>,
    hover: RwSignal<Option<String>>,
    /// Bumped by every start and cancel: a running loop that sees another value stops.
    run_id: RwSignal<u64>,
    /// The loop has seen the pause and holds, no step in flight: until then the panel says
    /// "pausing", as a step already sent to the GPU still finishes and counts.
    holding: RwSignal<bool>,
}

impl SweepState {
    pub(super) fn new(spec: Option<Sweep>) -> SweepState {
        let state = SweepState {
            spec: RwSignal::new(None),
            x_key: RwSignal::new("depth".into()),
            x_values: RwSignal::new("4,8,16".into()),
            y_key: RwSignal::new(String::new()),
            y_values: RwSignal::new(String::new()),
            steps: RwSignal::new(DEFAULT_STEPS.to_string()),
            status: RwSignal::new(SweepStatus::Idle),
            ran: RwSignal::new(None),
            results: RwSignal::new(Vec::new()),
            progress: RwSignal::new((0.0, String::new())),
            metric: RwSignal::new(SweepMetric::GainFwd),
            hover: RwSignal::new(None),
            run_id: RwSignal::new(0),
            holding: RwSignal::new(false),
        };
        if let Some(sweep) = spec {
            state.show(sweep);
        }
        state
    }

    /// Puts a sweep into the form and the address bar.
    fn show(self, sweep: Sweep) {
        self.x_key.set(sweep.x.key.into());
        self.x_values.set(sweep.x.values.join(","));
        self.y_key.set(sweep.y.as_ref().map_or(String::new(), |a| a.key.into()));
        self.y_values.set(sweep.y.as_ref().map_or(String::new(), |a| a.values.join(",")));
        self.steps.set(sweep.steps.to_string());
        self.spec.set(Some(sweep));
    }

    /// The form as a sweep, every value exactly right.
    fn read_form(self) -> Result<Sweep, String> {
        let mut axes = vec![Axis::parse(&self.x_key.get_untracked(), &self.x_values.get_untracked()).map_err(|e| e.to_string())?];
        let y_key = self.y_key.get_untracked();
        if !y_key.is_empty() {
            axes.push(Axis::parse(&y_key, &self.y_values.get_untracked()).map_err(|e| e.to_string())?);
        }
        let steps_text = self.steps.get_untracked();
        let steps = steps_text.trim().parse().map_err(|_| format!("steps per cell: {} is not a whole number", steps_text.trim()))?;
        Sweep::new(axes, steps).map_err(|e| e.to_string())
    }

    /// After an edit: a valid form goes to the address bar; an invalid one is only reported
    /// when the user runs it.
    fn edited(self) {
        if let Ok(sweep) = self.read_form() {
            self.spec.set(Some(sweep));
        }
    }

    fn busy(self) -> bool {
        matches!(self.status.get_untracked(), SweepStatus::Running | SweepStatus::Paused)
    }
}

/// Keys a sweep may vary, in the config table's order.
fn sweepable() -> Vec<&'static str> {
    key_specs().into_iter().map(|k| k.name).filter(|&k| k != "modes" && k != "steps").collect()
}

fn where_of(sweep: &Sweep, cell: &crate::sweep::Cell) -> String {
    sweep.settings(&cell.values).join(", ")
}

/// Checks every cell fits the backend, then trains them one after another.
async fn run_sweep(state: AppState) {
    let sw = state.sweep;
    let sweep = match sw.read_form() {
        Ok(sweep) => sweep,
        Err(e) => return state.message.set(Some(format!("cannot run this sweep: {e}"))),
    };
    sw.spec.set(Some(sweep.clone()));
    state.playing.set(false);
    let base = state.config.get_untracked();
    let cells = sweep.cells(&base);
    let status = state.gpu_status.get_untracked();
    let gpu = match status {
        GpuStatus::Probing => return state.message.set(Some("still looking for a GPU; try again in a moment".into())),
        _ if state.backend.on_cpu(&status, &base) => None,
        _ => state.gpu.get_value(),
    };
    for cell in &cells {
        let refused = match gpu {
            None if multiply_adds(&cell.config) > CPU_SWEEP_BUDGET => {
                Some("is too heavy for a sweep on the CPU: lower depth, width, streams or batch".to_string())
            }
            _ => Trainer::check_fits(&cell.config, gpu.as_deref()).err().map(|e| e.to_string()),
        };
        if let Some(why) = refused {
            return state.message.set(Some(format!("cannot run the sweep: the cell {} {why}", where_of(&sweep, cell))));
        }
    }
    sw.run_id.update(|id| *id += 1);
    let id = sw.run_id.get_untracked();
    // A cancel, or another start, bumps the id: this loop then stops and counts nothing more.
    let superseded = move || sw.run_id.get_untracked() != id;
    let total_steps = cells.len() as u64 * u64::from(sweep.steps);
    sw.results.set(Vec::new());
    sw.ran.set(Some((sweep.clone(), base)));
    sw.status.set(SweepStatus::Running);
    state.message.set(Some(format!("Sweep: {} cells of {} steps, all variants in lockstep…", cells.len(), sweep.steps)));
    let (mut done_steps, mut active_ms) = (0u64, 0.0f64);
    let cell_count = cells.len();
    for cell in cells {
        sw.progress
            .set((done_steps as f64 / total_steps as f64, progress_line(cell.index, cell_count, done_steps, total_steps, active_ms)));
        let mut run = match CellRun::new(&cell.config, gpu.clone()) {
            Ok(run) => run,
            Err(e) => {
                sw.status.set(SweepStatus::Cancelled);
                return state.message.set(Some(format!("sweep stopped at {}: {e}", where_of(&sweep, &cell))));
            }
        };
        let mut cell_ms = 0.0;
        while !run.finished() {
            if superseded() {
                return;
            }
            if sw.status.get_untracked() == SweepStatus::Paused {
                sw.holding.set(true);
                driver::sleep(200).await;
                continue;
            }
            sw.holding.set(false);
            let started = driver::now();
            let before = run.steps_done();
            loop {
                let due = run.submit_step();
                if due {
                    if let Err(e) = run.collect().await {
                        sw.status.set(SweepStatus::Cancelled);
                        return state.message.set(Some(format!("sweep stopped at {}: {e}", where_of(&sweep, &cell))));
                    }
                }
                // A pause or a cancel ends the slice at the next readback.
                let stopping = sw.status.get_untracked() == SweepStatus::Paused || superseded();
                if run.finished() || (due && (stopping || driver::now() - started > SLICE_MS)) {
                    break;
                }
            }
            if superseded() {
                // Cancelled (or restarted) during the slice: what it ran counts for nothing.
                return;
            }
            let spent = driver::now() - started;
            cell_ms += spent;
            active_ms += spent;
            let steps_now = done_steps + run.steps_done() - before;
            done_steps = steps_now;
            sw.progress
                .set((done_steps as f64 / total_steps as f64, progress_line(cell.index, cell_count, done_steps, total_steps, active_ms)));
            driver::yield_now().await;
        }
        if superseded() {
            return;
        }
        // A cell whose variants all diverged ends early: its remaining steps count as done.
        done_steps = (cell.index as u64 + 1) * u64::from(sweep.steps);
        let variants = run.into_summaries();
        sw.results.update(|r| r.push(CellResult { cell, variants, seconds: cell_ms / 1000.0 }));
    }
    if !superseded() {
        sw.status.set(SweepStatus::Done);
        sw.progress.set((1.0, format!("{cell_count} cells in {:.1} s", active_ms / 1000.0)));
        state.message.set(Some(format!("Sweep done: {cell_count} cells in {:.1} s. Click a square to open that run.", active_ms / 1000.0)));
    }
}

/// Opens one cell's experiment as a normal run (a running sweep pauses).
fn open_cell(state: AppState, index: usize) {
    let sw = state.sweep;
    let Some((sweep, base)) = sw.ran.get_untracked() else { return };
    let Some(cell) = sweep.cells(&base).into_iter().nth(index) else { return };
    if sw.status.get_untracked() == SweepStatus::Running {
        sw.status.set(SweepStatus::Paused);
    }
    state.config.set(cell.config.clone());
    state.reset();
    sw.spec.set(None);
    state.message.set(Some(format!("Opened the cell {} as a run: press Play to watch it train.", where_of(&sweep, &cell))));
}

fn download(state: AppState, json: bool) {
    let Some((sweep, _)) = state.sweep.ran.get_untracked() else { return };
    let result = state.sweep.results.with_untracked(|results| {
        if json {
            driver::download("mhc-sweep.jsonl", "application/json", sweep_jsonl(&sweep, results).as_bytes())
        } else {
            driver::download("mhc-sweep.csv", "text/csv", sweep_csv(&sweep, results).as_bytes())
        }
    });
    if let Err(e) = result {
        state.message.set(Some(e));
    }
}

#[component]
fn AxisInputs(state: AppState, name: &'static str, key: RwSignal<String>, values: RwSignal<String>, optional: bool) -> impl IntoView {
    let sw = state.sweep;
    view! {
        <div class="sweep-axis">
            <label>{format!("{name} axis")}
                <select aria-label=format!("Sweep {name} key") prop:value=move || key.get()
                    on:change=move |ev| { key.set(event_target_value(&ev)); sw.edited(); }>
                    {optional.then(|| view! { <option value="" selected=move || key.get().is_empty()>"none"</option> })}
                    {sweepable().into_iter().map(|k| view! { <option value=k selected=move || key.get() == k>{k}</option> }).collect_view()}
                </select>
            </label>
            <input type="text" aria-label=format!("Sweep {name} values") placeholder="v1,v2,…" prop:value=move || values.get()
                disabled=move || key.get().is_empty()
                on:change=move |ev| { values.set(event_target_value(&ev)); sw.edited(); }/>
        </div>
    }
}

#[component]
fn SweepMapView(state: AppState, map: SweepMap) -> impl IntoView {
    let sw = state.sweep;
    let corner = match map.y_key {
        Some(y) => format!("{y} ↓ {} →", map.x_key),
        None => format!("{} →", map.x_key),
    };
    view! {
        <figure class="sweep-map" data-testid=format!("sweep-map-{}", map.kind.name())>
            <figcaption style=format!("color:{}", color(map.kind))>{mode_label(map.kind)}</figcaption>
            <table>
                <thead><tr><th scope="col">{corner}</th>{map.x_labels.iter().map(|x| view! { <th scope="col">{x.clone()}</th> }).collect_view()}</tr></thead>
                <tbody>
                    {map.cells.iter().zip(&map.y_labels).map(|(row, label)| view! {
                        <tr>
                            <th scope="row">{label.clone()}</th>
                            {row.iter().map(|c| {
                                let (index, detail, hover_detail) = (c.cell, c.detail.clone(), c.detail.clone());
                                view! {
                                    <td><button class="sweep-cell" class:diverged=c.diverged style=format!("background:{};color:{}", c.colour, ink(&c.colour))
                                        title=detail.clone() aria-label=detail disabled=c.text == "…"
                                        on:mouseenter=move |_| sw.hover.set(Some(hover_detail.clone()))
                                        on:focus={let d = c.detail.clone(); move |_| sw.hover.set(Some(d.clone()))}
                                        on:click=move |_| open_cell(state, index)>{c.text.clone()}</button></td>
                                }
                            }).collect_view()}
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </figure>
    }
}

#[component]
pub(super) fn SweepPanel(state: AppState) -> impl IntoView {
    let sw = state.sweep;
    let start = move |_| {
        if !sw.busy() {
            spawn_local(run_sweep(state));
        }
    };
    let pause = move |_| match sw.status.get_untracked() {
        SweepStatus::Running => sw.status.set(SweepStatus::Paused),
        SweepStatus::Paused => sw.status.set(SweepStatus::Running),
        _ => {}
    };
    let cancel = move |_| {
        if sw.busy() {
            sw.run_id.update(|id| *id += 1);
            sw.status.set(SweepStatus::Cancelled);
            let kept = sw.results.with_untracked(Vec::len);
            state.message.set(Some(format!("Sweep cancelled; the {kept} finished cells are kept.")));
        }
    };
    let maps = move || {
        let metric = sw.metric.get();
        sw.ran.with(|ran| ran.as_ref().map(|(sweep, base)| sw.results.with(|r| sweep_maps(sweep, base, r, metric)))).unwrap_or_default()
    };
    let has_rows = move || sw.results.with(|r| !r.is_empty());
    view! {
        <section class="sweep" aria-labelledby="sweep-title" data-testid="sweep-panel">
            <h2 id="sweep-title">"Sweep: a stability map"</h2>
            <p class="help">"Train the current experiment over a grid of one or two settings, one cell after another, and see per variant where its composite gain grows and where it diverges. Each square is a full lockstep run; click it to open that run."</p>
            <div class="presets" role="group" aria-label="Sweep presets">
                {SWEEP_PRESETS.iter().map(|p| {
                    let (config, _) = Config::from_query(p.query);
                    let sweep = Sweep::from_query(p.query).0;
                    view! {
                        <button title=p.what disabled=move || matches!(sw.status.get(), SweepStatus::Running | SweepStatus::Paused) on:click=move |_| {
                            state.config.set(config.clone());
                            state.reset();
                            if let Some(s) = sweep.clone() { sw.show(s) }
                            state.message.set(Some(format!("{}: {} Press Run sweep.", p.name, p.what)));
                        }>{p.name}</button>
                    }
                }).collect_view()}
            </div>
            <div class="sweep-form">
                <AxisInputs state name="x" key=sw.x_key values=sw.x_values optional=false/>
                <AxisInputs state name="y" key=sw.y_key values=sw.y_values optional=true/>
                <label>"Steps per cell" <input type="number" aria-label="Steps per cell" min=1 max=100000 prop:value=move || sw.steps.get()
                    on:change=move |ev| { sw.steps.set(event_target_value(&ev)); sw.edited(); }/></label>
            </div>
            <div class="buttons">
                <button class="primary" on:click=start disabled=move || matches!(sw.status.get(), SweepStatus::Running | SweepStatus::Paused)>"Run sweep"</button>
                <button on:click=pause disabled=move || !matches!(sw.status.get(), SweepStatus::Running | SweepStatus::Paused)>
                    {move || if sw.status.get() == SweepStatus::Paused { "Resume sweep" } else { "Pause sweep" }}</button>
                <button on:click=cancel disabled=move || !matches!(sw.status.get(), SweepStatus::Running | SweepStatus::Paused)>"Cancel sweep"</button>
                <button on:click=move |_| download(state, false) disabled=move || !has_rows()>"Sweep CSV"</button>
                <button on:click=move |_| download(state, true) disabled=move || !has_rows()>"Sweep JSON"</button>
            </div>
            {move || (sw.status.get() != SweepStatus::Idle).then(|| view! {
                <div class="sweep-progress">
                    <progress max=1 prop:value=move || sw.progress.get().0 aria-label="Sweep progress"></progress>
                    <span data-testid="sweep-status">{move || {
                        let status = match sw.status.get() {
                            SweepStatus::Running => "running",
                            SweepStatus::Paused if sw.holding.get() => "paused",
                            SweepStatus::Paused => "pausing",
                            SweepStatus::Cancelled => "cancelled",
                            SweepStatus::Done => "Sweep done",
                            SweepStatus::Idle => "",
                        };
                        format!("{status} · {}", sw.progress.get().1)
                    }}</span>
                </div>
            })}
            {move || has_rows().then(|| view! {
                <label class="sweep-metric">"Show "
                    <select aria-label="Sweep map quantity" on:change=move |ev| {
                        if let Some(m) = SweepMetric::parse(&event_target_value(&ev)) { sw.metric.set(m) }
                    }>
                        {SweepMetric::ALL.into_iter().map(|m| view! { <option value=m.id() selected=move || sw.metric.get() == m>{m.label()}</option> }).collect_view()}
                    </select>
                    " (log colour scale, shared by the variants; outlined: diverged)"
                </label>
            })}
            <div class="sweep-maps">{move || maps().into_iter().map(|map| view! { <SweepMapView state map/> }).collect_view()}</div>
            <p class="sweep-hover" data-testid="sweep-hover" aria-live="polite">{move || sw.hover.get().unwrap_or_default()}</p>
        </section>
    }
}
