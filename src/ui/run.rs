//! Training the current experiment: slices of steps short enough to keep the page responsive,
//! metrics read back into the history, the decision surface refreshed now and then.

use super::app::{probe_gpu, AppState, GpuStatus, Session};
use super::backend::{run_cpu_work, Pick};
use super::driver;
use super::model::halved;
use super::persist::{load_saved_run, save_now_and_then, save_run};
use super::reading::refresh_reading;
use crate::gpu::GpuError;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Encode steps for at most this long per slice before yielding to the browser.
const SLICE_MS: f64 = 8.0;
/// Aim for a metrics readback this often, so the charts move even on a slow GPU.
const READBACK_MS: f64 = 150.0;

pub(super) async fn slice(state: AppState, session: &Session, max_steps: u64) -> Result<Option<u64>, String> {
    let limit = state.config.get_untracked().steps as u64;
    let started = driver::now();
    let mut ran = 0;
    loop {
        let last = {
            // An export may be reading the weights right now: then this slice runs no more.
            let Ok(mut trainer) = session.try_borrow_mut() else { return Ok(Some(ran)) };
            if trainer.all_stopped() || trainer.next_step >= limit {
                break;
            }
            let last = driver::now() - started > SLICE_MS || trainer.next_step + 1 == limit || ran + 1 >= max_steps;
            trainer.submit_step(last);
            last
        };
        ran += 1;
        // On the CPU the step runs now, in slices between frames.
        run_cpu_work(session).await;
        if last {
            break;
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
pub(super) async fn record(state: AppState, session: &Session) -> Result<(), String> {
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
pub(super) async fn refresh_surfaces(state: AppState, session: &Session) {
    if !state.config.get_untracked().task.is_2d() {
        return;
    }
    match session.try_borrow_mut() {
        Ok(mut trainer) => trainer.submit_probe(),
        Err(_) => return,
    }
    run_cpu_work(session).await;
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
pub(super) async fn play_loop(state: AppState) {
    let generation = state.generation.get_untracked();
    let session = match state.session() {
        Ok(s) => s,
        Err(e) => return state.fail(e),
    };
    let mut window = (driver::now(), 0u64);
    let mut last_surface = 0.0;
    let mut last_reading = 0.0;
    // Steps per slice follow the GPU's pace: one at first, then as many as fit READBACK_MS.
    let mut per_slice = 1u64;
    let mut ms_per_step: f64;
    while state.playing.get_untracked() && state.generation.get_untracked() == generation {
        if driver::tab_hidden() && !state.settings.with_untracked(|s| s.train_hidden) {
            driver::sleep(250).await;
            continue;
        }
        let started = driver::now();
        match slice(state, &session, per_slice).await {
            Err(e) => {
                state.session.set_value(None);
                // A lost device rejects the readback a moment before it reports why.
                driver::sleep(200).await;
                match state.gpu.get_value().map(|gpu| gpu.check()) {
                    Some(Err(GpuError::Lost(reason))) => return spawn_local(recover_lost_device(state, reason)),
                    Some(Err(GpuError::OutOfMemory)) => return out_of_memory(state, &session),
                    _ => {}
                }
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
        // Sampling text costs more than a step on the CPU: every few seconds at most.
        if t - last_reading > (40.0 * ms_per_step).max(4000.0) {
            refresh_reading(state, &session).await;
            last_reading = driver::now();
        }
        save_now_and_then(state);
        driver::yield_now().await;
    }
    if state.generation.get_untracked() == generation {
        refresh_surfaces(state, &session).await;
        refresh_reading(state, &session).await;
        // Paused or finished: keep this point for a reload.
        spawn_local(save_run(state));
    }
}

/// The GPU ran out of memory for this experiment: say how much it asked for and what to try,
/// then let the device go (a reset opens a fresh one).
fn out_of_memory(state: AppState, session: &Session) {
    let config = state.config.get_untracked();
    let arenas: Vec<String> = session
        .try_borrow()
        .map(|t| t.variants.iter().map(|v| format!("{} {:.1} MB", v.kind.name(), v.program.arena_bytes() as f64 / 1e6)).collect())
        .unwrap_or_default();
    let hint = match halved(&config) {
        Some(smaller) => format!("Try a smaller one: {}, or fewer variants.", config.changes_to(&smaller).join("&")),
        None => "Try fewer variants.".into(),
    };
    state.reset();
    state.message.set(Some(format!("The GPU ran out of memory for this experiment ({}). {hint}", arenas.join(", "))));
}

pub(super) async fn slice_once(state: AppState, session: &Session) -> Result<(), String> {
    session.try_borrow_mut().map_err(|_| "busy, try again".to_string())?.submit_step(true);
    run_cpu_work(session).await;
    record(state, session).await?;
    refresh_surfaces(state, session).await;
    refresh_reading(state, session).await;
    Ok(())
}

/// The GPU device was lost (driver reset, `GPUDevice.destroy()`, GPU process crash): open a new
/// one and go on from the last save, on the CPU when no adapter comes back.
pub(super) async fn recover_lost_device(state: AppState, reason: String) {
    state.playing.set(false);
    state.session.set_value(None);
    state.gpu.set_value(None);
    state.gpu_status.set(GpuStatus::Probing);
    state.message.set(Some(format!("The GPU device was lost ({reason}). Opening it again and resuming from the last save…")));
    probe_gpu(state).await;
    let config = state.config.get_untracked();
    let (gpu, on) = match state.gpu_status.get_untracked() {
        GpuStatus::Ready(name) => (state.gpu.get_value(), format!("a new GPU device ({name})")),
        _ => {
            let why = "the GPU was lost and none came back".to_string();
            state.backend.pick.set(Some(Pick { cpu: true, why, config: config.clone() }));
            (None, "the CPU, as no GPU came back".to_string())
        }
    };
    let (trainer, history) = match load_saved_run(&config, gpu).await {
        Ok(saved) => saved,
        Err(why) => {
            let message = format!("The GPU device was lost and this run cannot be resumed ({why}): press Play to start over on {on}.");
            return state.message.set(Some(message));
        }
    };
    let step = trainer.next_step;
    state.install(trainer, history);
    state.persist.saved_step.set(Some(step));
    state.message.set(Some(format!("The GPU device was lost ({reason}). Resumed on {on} from step {step}.")));
    state.playing.set(true);
    spawn_local(play_loop(state));
}
