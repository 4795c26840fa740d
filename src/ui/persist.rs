//! Runs that survive a reload: the running experiment's whole state (`Trainer::snapshot`:
//! weights, optimiser moments, divergence records, the step) and its charts are written to the
//! browser's private file system every few seconds while training, when training pauses, and
//! when the page is hidden or left. Opening the same experiment again offers to resume from the
//! saved step; another experiment starts fresh. Storage that is full or disabled costs one
//! notice, never the run.

use super::app::AppState;
use super::backend::resume_on_picked_backend;
use super::driver;
use super::model::History;
use crate::checkpoint::TensorFile;
use crate::config::Config;
use crate::gpu::GpuContext;
use crate::trainer::{EngineError, Trainer};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::rc::Rc;

const STATE_FILE: &str = "mhc-run.safetensors";
const CHARTS_FILE: &str = "mhc-run-charts.json";
/// Save at most this often while training.
pub(super) const SAVE_EVERY_MS: f64 = 5000.0;

/// What the page knows about saving: a run it may resume, and how saving went.
#[derive(Clone, Copy)]
pub(super) struct Persistence {
    /// A saved run of the experiment in the address bar: its step and bytes.
    pub offer: RwSignal<Option<u64>>,
    saved_bytes: StoredValue<Option<Vec<u8>>, LocalStorage>,
    /// The step last saved, shown next to the buttons.
    pub saved_step: RwSignal<Option<u64>>,
    /// Size in bytes and milliseconds of the last save (snapshot readback and write).
    pub last_save: RwSignal<Option<(usize, f64)>>,
    last_save_ms: StoredValue<f64>,
    saving: StoredValue<bool>,
    /// Set after the first failure, so the notice is given once.
    failed: StoredValue<bool>,
}

impl Persistence {
    pub(super) fn new() -> Persistence {
        Persistence {
            offer: RwSignal::new(None),
            saved_bytes: StoredValue::new_local(None),
            saved_step: RwSignal::new(None),
            last_save: RwSignal::new(None),
            last_save_ms: StoredValue::new(0.0),
            saving: StoredValue::new(false),
            failed: StoredValue::new(false),
        }
    }
}

/// Saves the current run now (nothing when there is none, it is at step 0, or a save is under way).
#[allow(clippy::await_holding_refcell_ref)]
pub(super) async fn save_run(state: AppState) {
    let p = state.persist;
    let Some(session) = state.session.get_value() else { return };
    if p.saving.get_value() {
        return;
    }
    p.saving.set_value(true);
    let started = driver::now();
    p.last_save_ms.set_value(started);
    let result = async {
        // A shared borrow across the readback, as the metrics readback takes (run.rs).
        let (bytes, step) = {
            let trainer = session.try_borrow().map_err(|_| "busy".to_string())?;
            if trainer.next_step == 0 {
                return Ok(None);
            }
            // Mid-step on the CPU: the next save catches it.
            let bytes = trainer.snapshot().await.map_err(|e| if let EngineError::Busy = e { "busy".to_string() } else { e.to_string() })?;
            (bytes, trainer.next_step)
        };
        let charts = state.history.with_untracked(serde_json::to_string).map_err(|e| e.to_string())?;
        driver::store_file(STATE_FILE, &bytes).await?;
        driver::store_file(CHARTS_FILE, charts.as_bytes()).await?;
        Ok::<_, String>(Some((step, bytes.len() + charts.len())))
    }
    .await;
    p.saving.set_value(false);
    match result {
        Ok(Some((step, bytes))) => {
            p.saved_step.set(Some(step));
            p.last_save.set(Some((bytes, driver::now() - started)));
        }
        Ok(None) => {}
        Err(e) if e == "busy" => {}
        Err(e) => {
            if !p.failed.get_value() {
                p.failed.set_value(true);
                state.notice.set(Some(format!(
                    "This run cannot be saved in the browser ({e}): training goes on, but a reload will start it over."
                )));
            }
        }
    }
}

/// Saves when the last save is older than [`SAVE_EVERY_MS`] (called from the play loop).
pub(super) fn save_now_and_then(state: AppState) {
    if driver::now() - state.persist.last_save_ms.get_value() > SAVE_EVERY_MS {
        spawn_local(save_run(state));
    }
}

/// At start-up: a saved run of this very experiment becomes an offer to resume; and the page
/// saves whenever it is hidden or left.
pub(super) async fn look_for_saved_run(state: AppState) {
    driver::on_leave(move || spawn_local(save_run(state)));
    let Ok(Some(bytes)) = driver::load_file(STATE_FILE).await else { return };
    let Ok(file) = TensorFile::parse(&bytes) else { return };
    let same_experiment = file.experiment().is_ok_and(|(saved, _)| saved == state.config.get_untracked());
    let step = file.i32("next_step").ok().and_then(|(_, s)| s.first().copied()).filter(|&s| s > 0);
    if let (true, Some(step)) = (same_experiment, step) {
        state.persist.saved_bytes.set_value(Some(bytes));
        state.persist.offer.set(Some(step as u64));
    }
}

/// Resumes the offered run: the trainer exactly as saved, and its charts.
pub(super) async fn resume(state: AppState) {
    let p = state.persist;
    let Some(bytes) = p.saved_bytes.get_value() else { return };
    state.backend.confirm(&state.config.get_untracked());
    match resume_on_picked_backend(state, &bytes).await {
        Ok(trainer) => {
            let step = trainer.next_step;
            let history = saved_charts(&trainer).await;
            state.reset();
            state.install(trainer, history);
            p.offer.set(None);
            p.saved_step.set(Some(step));
            state.message.set(Some(format!("Resumed from step {step}: press Play to go on.")));
        }
        Err(e) => state.message.set(Some(format!("the saved run cannot be resumed ({e}); starting over"))),
    }
}

/// The charts saved with the run of `trainer`, or empty ones.
async fn saved_charts(trainer: &Trainer) -> History {
    let charts = driver::load_file(CHARTS_FILE).await.ok().flatten();
    charts
        .and_then(|c| serde_json::from_slice::<History>(&c).ok())
        .filter(|h| h.config == trainer.config.to_query())
        .unwrap_or_else(|| History::new(&trainer.config))
}

/// The last saved run of `config`, rebuilt on `gpu` (the CPU when `None`), with its charts.
pub(super) async fn load_saved_run(config: &Config, gpu: Option<Rc<GpuContext>>) -> Result<(Trainer, History), String> {
    let bytes = driver::load_file(STATE_FILE).await?.ok_or("nothing saved")?;
    let trainer = Trainer::resume(&bytes, gpu).map_err(|e| e.to_string())?;
    if trainer.config != *config {
        return Err("the saved run is of another experiment".into());
    }
    let history = saved_charts(&trainer).await;
    Ok((trainer, history))
}

#[component]
pub(super) fn ResumeOffer(state: AppState) -> impl IntoView {
    let p = state.persist;
    move || {
        p.offer.get().map(|step| {
            view! {
                <p class="notice resume" data-testid="resume-offer" role="status">
                    {format!("This experiment was saved at step {step} before the page was closed or reloaded. ")}
                    <button class="primary" on:click=move |_| spawn_local(resume(state))>{format!("Resume from step {step}")}</button>
                    " "
                    <button on:click=move |_| p.offer.set(None)>"Start over"</button>
                </p>
            }
        })
    }
}
