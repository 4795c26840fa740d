//! Which backend trains: the GPU, or the CPU backend when there is no WebGPU, when the only
//! adapter is a software one that the CPU outruns (both are timed on the experiment), or when
//! the user says so. On the CPU, the bare link's heavy default becomes the CPU-sized story
//! (with a link to the full one) and an explicit heavy link asks before it runs, when it has a
//! smaller version to offer.

use super::app::{AppState, GpuStatus, Session};
use super::backend_model::*;
use super::driver;
use super::model::{multiply_adds, CPU_NAME};
use crate::config::Config;
use crate::gpu::GpuContext;
use crate::trainer::{EngineError, Trainer};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::cell::RefCell;
use std::rc::Rc;

/// Longest run of CPU work between two yields to the browser (a task over 50 ms is "long"):
/// short enough that a busy machine's pauses leave it under 50, while a yield costs about 0.1 ms
/// (`driver::yield_now`).
const CPU_SLICE_MS: f64 = 12.0;

/// The backend decided for one experiment, and why (shown under the GPU line).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Pick {
    pub(super) cpu: bool,
    pub(super) why: String,
    /// The experiment it was decided for: a software GPU's pace against the CPU depends on it.
    pub(super) config: Config,
}

#[derive(Clone, Copy)]
pub(super) struct BackendState {
    pub(super) choice: RwSignal<BackendChoice>,
    pub(super) pick: RwSignal<Option<Pick>>,
    /// The heavy experiment the user agreed to train on the CPU.
    confirmed: StoredValue<Option<Config>>,
    /// The question asked before a heavy experiment trains on the CPU.
    pub(super) question: RwSignal<Option<String>>,
    /// The experiment came from the bare link or "The story": on the CPU it may be scaled.
    pub(super) implicit: StoredValue<bool>,
    /// After scaling: what changed, and the full experiment's query.
    pub(super) scaled: RwSignal<Option<(String, String)>>,
    /// Measured CPU time of a lockstep step, for the experiment it was measured on.
    cpu_ms: StoredValue<Option<(Config, f64)>>,
}

impl BackendState {
    pub(super) fn new(choice: BackendChoice, implicit: bool) -> BackendState {
        BackendState {
            choice: RwSignal::new(choice),
            pick: RwSignal::new(None),
            confirmed: StoredValue::new(None),
            question: RwSignal::new(None),
            implicit: StoredValue::new(implicit),
            scaled: RwSignal::new(None),
            cpu_ms: StoredValue::new(None),
        }
    }

    /// Whether the current experiment trains on the CPU (decided, or what Auto would say
    /// before any timing: CPU exactly when there is no GPU).
    pub(super) fn on_cpu(self, status: &GpuStatus, config: &Config) -> bool {
        match self.pick.get_untracked() {
            Some(pick) if pick.config == *config => pick.cpu,
            _ => self.choice.get_untracked() == BackendChoice::Cpu || !matches!(status, GpuStatus::Ready(_)),
        }
    }

    /// A run the user chose to go on with (a resumed save) trains without the question.
    pub(super) fn confirm(self, config: &Config) {
        self.confirmed.set_value(Some(config.clone()));
    }

    /// The user changed the experiment: it is theirs now, and any question is moot.
    pub(super) fn experiment_changed(self, implicit: bool) {
        self.implicit.set_value(implicit);
        self.question.set(None);
        self.scaled.set(None);
    }
}

/// Before Play or Step: waits for the GPU probe, picks the backend for the current experiment
/// and, on the CPU, scales the bare link's heavy experiment or asks about an explicit one.
/// False when training must not start (the question is shown).
pub(super) async fn prepare(state: AppState) -> bool {
    let b = state.backend;
    let config = state.config.get_untracked();
    // Nothing to time or pick for an experiment that cannot be built here.
    if let Err(e) = crate::tokens::check_text(&config) {
        state.fail(e.to_string());
        return false;
    }
    let pick = pick_for(state, &config).await;
    // An explicit link with nothing smaller to offer trains as it is, however heavy: no timing.
    let settled = b.confirmed.get_value().as_ref() == Some(&config) || (!b.implicit.get_value() && !offers_smaller(&config));
    if !pick.cpu || settled {
        return true;
    }
    let ms = cpu_ms_per_step(state, &config).await;
    if ms <= CPU_HEAVY_MS {
        return true;
    }
    if b.implicit.get_value() {
        // The bare link: the same story at a size the CPU tells in seconds.
        let work = multiply_adds(&config);
        let small = cpu_sized(&config, |c| ms * multiply_adds(c) / work > CPU_HEAVY_MS);
        let full_query = config.to_query();
        state.config.set(small.clone());
        state.reset();
        b.scaled.set(Some((describe_changes(&config, &small), full_query)));
        b.pick.set(Some(Pick { config: small, ..pick }));
        return true;
    }
    b.question.set(Some(format!(
        "This experiment is heavy for the CPU: {}. Train it anyway, or try the CPU-sized version of it.",
        describe_time(ms, config.steps)
    )));
    false
}

/// The backend for `config`, decided once per experiment (after the GPU probe has answered).
pub(super) async fn pick_for(state: AppState, config: &Config) -> Pick {
    for _ in 0..400 {
        if state.gpu_status.get_untracked() != GpuStatus::Probing {
            break;
        }
        driver::sleep(50).await;
    }
    match state.backend.pick.get_untracked() {
        Some(pick) if pick.config == *config => pick,
        _ => {
            let pick = decide(state, config).await;
            state.backend.pick.set(Some(pick.clone()));
            pick
        }
    }
}

/// Picks the backend for `config` (see the module's comment).
async fn decide(state: AppState, config: &Config) -> Pick {
    let pick = |cpu: bool, why: String| Pick { cpu, why, config: config.clone() };
    let gpu = state.gpu.get_value();
    match (state.backend.choice.get_untracked(), gpu) {
        (BackendChoice::Cpu, _) => pick(true, "as chosen".into()),
        (_, None) => pick(true, "this browser offers no usable WebGPU".into()),
        (BackendChoice::Gpu, Some(_)) => pick(false, "as chosen".into()),
        (BackendChoice::Auto, Some(gpu)) if !gpu.software => pick(false, "a hardware GPU".into()),
        (BackendChoice::Auto, Some(_)) if Trainer::check_fits(config, None).is_err() => {
            pick(false, "the experiment is too large for the CPU backend".into())
        }
        (BackendChoice::Auto, Some(gpu)) => {
            state.message.set(Some(format!(
                "The only GPU here is a software one ({}): timing a step of this experiment on it and on the CPU…",
                gpu.adapter_name
            )));
            let proxy = timing_proxy(config);
            let cpu_ms = time_cpu_step(&proxy).await;
            let gpu_ms = time_gpu_step(&proxy, &gpu).await;
            state.message.set(None);
            if let Ok(ms) = cpu_ms {
                state.backend.cpu_ms.set_value(Some((config.clone(), scale_from_proxy(ms, &proxy, config))));
            }
            match (cpu_ms, gpu_ms) {
                (Ok(c), Ok(g)) => {
                    let why = format!("a step took {c:.0} ms on the CPU and {g:.0} ms on the software GPU ({})", gpu.adapter_name);
                    pick(c < g, why)
                }
                (Ok(_), Err(e)) => pick(true, format!("the software GPU failed a test step ({e})")),
                (Err(_), _) => pick(false, format!("the software GPU ({})", gpu.adapter_name)),
            }
        }
    }
}

/// The CPU's time for a lockstep step of `config`, from a timed step of its two-block proxy.
async fn cpu_ms_per_step(state: AppState, config: &Config) -> f64 {
    if let Some((measured, ms)) = state.backend.cpu_ms.get_value() {
        if measured == *config {
            return ms;
        }
    }
    let proxy = timing_proxy(config);
    let ms = time_cpu_step(&proxy).await.map(|ms| scale_from_proxy(ms, &proxy, config)).unwrap_or(f64::INFINITY);
    state.backend.cpu_ms.set_value(Some((config.clone(), ms)));
    ms
}

/// Busy milliseconds of the second of two steps on the CPU (the first sizes the scratch),
/// run in slices like training, so timing never freezes the page either.
async fn time_cpu_step(config: &Config) -> Result<f64, EngineError> {
    let mut trainer = Trainer::new(config, None)?;
    trainer.set_sliced(true);
    let session: Session = Rc::new(RefCell::new(trainer));
    let mut busy = 0.0;
    for _ in 0..2 {
        session.borrow_mut().submit_step(false);
        busy = run_cpu_work(&session).await;
    }
    Ok(busy)
}

/// Milliseconds of one step on the GPU with its metrics read back, after a first step that
/// builds the pipelines.
async fn time_gpu_step(config: &Config, gpu: &Rc<GpuContext>) -> Result<f64, EngineError> {
    let mut trainer = Trainer::new(config, Some(gpu.clone()))?;
    trainer.submit_step(false);
    trainer.peek_metrics().await?;
    let start = driver::now();
    trainer.submit_step(false);
    trainer.peek_metrics().await?;
    Ok(driver::now() - start)
}

/// Runs the CPU work of the last submit in slices of [`CPU_SLICE_MS`], yielding to the
/// browser in between (nothing to do on the GPU), and returns the milliseconds spent working.
/// The trainer is borrowed only inside a slice, so exports and saves can read between them
/// (they find it busy and try later).
pub(super) async fn run_cpu_work(session: &Session) -> f64 {
    let mut busy = 0.0;
    loop {
        let start = driver::now();
        let done = match session.try_borrow_mut() {
            Ok(mut trainer) => {
                let deadline = start + CPU_SLICE_MS;
                trainer.run_queued(&mut || driver::now() < deadline)
            }
            Err(_) => false,
        };
        let spent = driver::now() - start;
        busy += spent;
        // After a long slice, let the browser in before the caller reads back and redraws.
        if !done || spent > CPU_SLICE_MS / 2.0 {
            driver::yield_now().await;
        }
        if done {
            return busy;
        }
    }
}

/// A saved run (a snapshot) resumed on the backend a fresh run of the current experiment
/// would get (resuming a reload's save, or moving a run to the backend just chosen).
pub(super) async fn resume_on_picked_backend(state: AppState, bytes: &[u8]) -> Result<Trainer, EngineError> {
    let config = state.config.get_untracked();
    let gpu = if pick_for(state, &config).await.cpu { None } else { state.gpu.get_value() };
    Trainer::resume(bytes, gpu)
}

/// Moves the current run to the backend now chosen (its snapshot resumed there), so changing
/// the backend loses nothing; with no run yet there is nothing to move.
#[allow(clippy::await_holding_refcell_ref)] // a shared borrow across the snapshot's readback, as saves take
async fn carry_run_over(state: AppState) {
    let Some(session) = state.session.get_value() else { return };
    // Let the play loop see the pause and the queued CPU work finish.
    driver::sleep(50).await;
    run_cpu_work(&session).await;
    let snapshot = match session.try_borrow() {
        Ok(trainer) if trainer.next_step == 0 => None,
        Ok(trainer) => Some(trainer.snapshot().await),
        Err(_) => Some(Err(EngineError::Busy)),
    };
    let Some(snapshot) = snapshot else { return state.reset() };
    let moved = match snapshot {
        Ok(bytes) => resume_on_picked_backend(state, &bytes).await,
        Err(e) => Err(e),
    };
    match moved {
        Ok(trainer) => {
            let step = trainer.next_step;
            let on = if trainer.gpu().is_some() { "the GPU" } else { "the CPU" };
            let history = state.history.get_untracked();
            state.install(trainer, history);
            state.message.set(Some(format!("The run moved to {on} at step {step}: press Play to go on.")));
        }
        Err(e) => {
            state.reset();
            state.message.set(Some(format!("The run could not move to the other backend ({e}): press Play to start over there.")));
        }
    }
}

/// What trains, and the control to change it; the question before a heavy CPU run; the
/// notice after scaling the bare link.
#[component]
pub(super) fn BackendLine(state: AppState) -> impl IntoView {
    let b = state.backend;
    let change = move |ev: leptos::ev::Event| {
        let Some(choice) = BackendChoice::parse(&event_target_value(&ev)) else { return };
        b.choice.set(choice);
        b.pick.set(None);
        b.question.set(None);
        state.playing.set(false);
        spawn_local(carry_run_over(state));
    };
    let run_anyway = move |_| {
        b.confirmed.set_value(Some(state.config.get_untracked()));
        b.question.set(None);
        super::controls::start(state);
    };
    let use_smaller = move |_| {
        let config = state.config.get_untracked();
        let small = cpu_sized(&config, |_| false);
        // The user chose this size: Play trains it without timing it again (on a busy machine a
        // second timing could ask the same question of the smaller version).
        b.confirm(&small);
        b.question.set(None);
        b.scaled.set(Some((describe_changes(&config, &small), config.to_query())));
        state.config.set(small);
        state.reset();
    };
    let training_on = move || {
        let pick = b.pick.get()?;
        let what = if pick.cpu {
            CPU_NAME.to_string()
        } else {
            match state.gpu_status.get() {
                GpuStatus::Ready(name) => format!("GPU, {name}"),
                _ => "GPU".into(),
            }
        };
        Some(format!("Training on: {what} ({}).", pick.why))
    };
    view! {
        <div class="backend">
            <label>
                "Train on "
                <select data-testid="backend-choice" title="Auto trains on the GPU, or on the CPU when there is no WebGPU or the only GPU is a software one that the CPU outruns." on:change=change
                    prop:value=move || b.choice.get().name()>
                    {BackendChoice::ALL.into_iter().map(|c| view! { <option value=c.name()>{c.label()}</option> }).collect_view()}
                </select>
            </label>
            <span data-testid="backend-status">{training_on}</span>
        </div>
        {move || b.scaled.get().map(|(changes, full)| view! {
            <p class="notice" data-testid="cpu-scaled" role="status">
                {format!("On the CPU this is a smaller version of the same story ({changes}): HC's gain still climbs and mHC's stays at 1. ")}
                <a href=format!("?{full}")>"Open the full experiment"</a>
            </p>
        })}
        {move || b.question.get().map(|q| view! {
            <p class="message" data-testid="cpu-question" role="alert">
                {q}" "
                <button on:click=run_anyway>"Train it on the CPU"</button>" "
                <button on:click=use_smaller>"Use the CPU-sized version"</button>
            </p>
        })}
    }
}
