//! Benchmark mode (`?bench=N`): each variant alone, then all in lockstep, as fast as the
//! device goes, with the engine's dispatch and submit counts; optionally our 1024^3 matmul.

use super::driver::{self, query_value};
use super::model::CPU_NAME;
use crate::config::Config;
use crate::cpu::CpuKernels;
use crate::gpu::{GpuArena, GpuContext, STEPS_PER_SUBMIT};
use crate::kernels::{MatmulKernel, MatmulParams, Named, Op, TuningOverrides, NONE};
use crate::program::{Kernels, OpList};
use crate::trainer::Trainer;
use std::cell::RefCell;
use std::rc::Rc;

/// `bench=<steps>` from the query string (the config parser accepts and ignores the key).
pub fn steps(query: &str) -> Option<u64> {
    query_value(query, "bench").and_then(|v| v.parse::<u64>().ok()).map(|n| n.clamp(1, 100_000))
}

/// `matmul_reps=<n>` (benchmark mode only): also time n 1024 x 1024 x 1024 products.
fn matmul_reps(query: &str) -> u32 {
    query_value(query, "matmul_reps").and_then(|v| v.parse::<u32>().ok()).unwrap_or(0).min(100)
}

/// Our matmul kernel on one `size`^3 product, in ms per product with its result read back
/// (2 warm-ups first): the yardstick the TF.js comparison also times.
async fn time_matmul(gpu: &GpuContext, size: u32, reps: u32) -> Result<f64, crate::gpu::GpuError> {
    let len = (size * size) as usize;
    let mut rng = crate::rng::Rng::new(1);
    let mut values: Vec<f32> = (0..2 * len).map(|_| rng.normal() as f32).collect();
    values.resize(3 * len, 0.0);
    let product = Op::Matmul(MatmulParams {
        m: size,
        n: size,
        k: size,
        a_off: 0,
        a_rs: size,
        a_cs: 1,
        b_off: size * size,
        b_rs: size,
        b_cs: 1,
        c_off: 2 * size * size,
        c_rs: size,
        bias_off: NONE,
        ..Default::default()
    });
    let arena = GpuArena::new(gpu, "matmul benchmark", &values, &[&[product]])?;
    let mut start = driver::now();
    for rep in 0..reps + 2 {
        if rep == 2 {
            start = driver::now();
        }
        arena.run(gpu, &[OpList::Train]); // the one list prepared sits in the first slot
        arena.read(gpu, 2 * size * size, len).await?;
    }
    Ok((driver::now() - start) / reps.max(1) as f64)
}

/// `kernels=fused|unfused` (benchmark mode only): the granularity to time; else the engine's choice.
fn kernels(query: &str, config: &Config) -> Kernels {
    match query_value(query, "kernels") {
        Some("fused") => Kernels::Fused,
        Some("unfused") => Kernels::Unfused,
        _ => Kernels::for_config(config),
    }
}

/// `per_kernel=1` (benchmark mode, GPU only): each variant's milliseconds per training step by
/// entry point (products also by `m x n x k`), every dispatch timed on its own (4 runs in one
/// submit, then a readback).
async fn profile(config: &Config, gpu: Option<Rc<GpuContext>>, kernels: Kernels) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for &kind in &config.modes {
        let Ok(mut trainer) = Trainer::with_kernels(&config.with_single_mode(kind), gpu.clone(), kernels) else { continue };
        trainer.submit_step(false);
        let Some(variant) = trainer.variant(kind) else { continue };
        let _ = variant.profile_each(OpList::Train, 1, &driver::now).await;
        let Ok(times) = variant.profile_each(OpList::Train, 4, &driver::now).await else { continue };
        let by_entry: serde_json::Map<String, serde_json::Value> =
            variant.times_by_kernel(OpList::Train, times).into_iter().map(|(label, ms)| (label, serde_json::json!(ms))).collect();
        out.insert(kind.name().into(), by_entry.into());
    }
    out.into()
}

/// `?bench=N`: N steps per variant alone and in lockstep, as fast as possible, no drawing, on
/// the GPU, or on the CPU backend with `backend=cpu` (or when there is no GPU).
/// `query` is the page's query string at start-up (`backend=`, `kernels=`, `matmul=`,
/// `matmul_reps=`).
/// Returns the report, one JSON object.
pub async fn run(gpu: Option<Rc<GpuContext>>, config: Config, steps: u64, query: &str) -> String {
    let gpu = gpu.filter(|_| query_value(query, "backend") != Some("cpu"));
    let kernels = kernels(query, &config);
    // `kernels=reference` on the CPU: the plain reference, for the speed-up of the fast kernels.
    let cpu_kernels = if query_value(query, "kernels") == Some("reference") { CpuKernels::Reference } else { CpuKernels::Fast };
    let matmul_reps = matmul_reps(query);
    // `matmul=tiled|direct|registers`: every product with that kernel, to compare them.
    let matmul_kernel = query_value(query, "matmul").and_then(MatmulKernel::parse);
    // `steps_per_submit=N`: at most N steps wait for one submit (1: a submit every step).
    let steps_per_submit = query_value(query, "steps_per_submit").and_then(|v| v.parse::<u32>().ok()).unwrap_or(STEPS_PER_SUBMIT);
    if let Some(gpu) = &gpu {
        gpu.set_tuning(TuningOverrides { matmul: matmul_kernel, ..TuningOverrides::default() });
        gpu.set_steps_per_submit(steps_per_submit);
    }
    #[allow(clippy::await_holding_refcell_ref)] // these trainers are the benchmark's own
    let time = |trainer: Rc<RefCell<Trainer>>| async move {
        for _ in 0..2 {
            trainer.borrow_mut().submit_step(false);
        }
        let _ = { trainer.borrow().peek_metrics().await };
        let before = trainer.borrow().counters();
        let start = driver::now();
        for i in 0..steps {
            trainer.borrow_mut().submit_step(false);
            if i % 8 == 7 {
                driver::yield_now().await;
            }
        }
        let counts = {
            let trainer = trainer.borrow();
            trainer.flush();
            trainer.counters().zip(before).map(|(after, before)| after.since(before, steps))
        };
        let ok = { trainer.borrow().peek_metrics().await.is_ok() };
        ok.then(|| ((driver::now() - start) / steps as f64, counts))
    };
    let mut per_variant = serde_json::Map::new();
    for &kind in &config.modes {
        match Trainer::with_kernels(&config.with_single_mode(kind), gpu.clone(), kernels) {
            Ok(mut t) => {
                t.set_cpu_kernels(cpu_kernels);
                if let Some((ms, _)) = time(Rc::new(RefCell::new(t))).await {
                    per_variant.insert(kind.name().into(), serde_json::json!(ms));
                }
            }
            Err(e) => return serde_json::json!({ "error": e.to_string() }).to_string(),
        }
    }
    let per_kernel = match (&gpu, query_value(query, "per_kernel")) {
        (Some(_), Some("1")) => Some(profile(&config, gpu.clone(), kernels).await),
        _ => None,
    };
    let mut arena_bytes = serde_json::Map::new();
    let lockstep = match Trainer::with_kernels(&config, gpu.clone(), kernels) {
        Ok(mut t) => {
            t.set_cpu_kernels(cpu_kernels);
            for v in &t.variants {
                arena_bytes.insert(v.kind.name().into(), serde_json::json!(v.program.arena_bytes()));
            }
            time(Rc::new(RefCell::new(t))).await
        }
        Err(_) => None,
    };
    let (matmul1024_ms, matmul_error) = match (matmul_reps, &gpu) {
        (0, _) | (_, None) => (None, None),
        (reps, Some(gpu)) => match time_matmul(gpu, 1024, reps).await {
            Ok(ms) => (Some(ms), None),
            Err(e) => (None, Some(e.to_string())),
        },
    };
    let report = serde_json::json!({
        "matmul": gpu.as_ref().map(|_| matmul_kernel.map_or("each op's own", MatmulKernel::name)),
        "arena_view": gpu.as_ref().map(|g| g.arena_view().name()),
        "register_block": gpu.as_ref().map(|g| g.register_block().name()),
        "stream_items": gpu.as_ref().map(|g| g.stream_items().name()),
        "subgroups": gpu.as_ref().map(|g| g.subgroups()),
        "kernels": match gpu {
            Some(_) => format!("{kernels:?}").to_lowercase(),
            None => format!("{cpu_kernels:?}").to_lowercase(),
        },
        "matmul1024_ms": matmul1024_ms,
        "kernel_ms_per_step": per_kernel,
        "matmul_error": matmul_error,
        "steps": steps,
        "steps_per_s": lockstep.map(|(ms, _)| 1000.0 / ms),
        "dispatches_per_step": lockstep.and_then(|(_, c)| c).map(|c| c.dispatches_per_step),
        "submits_per_step": lockstep.and_then(|(_, c)| c).map(|c| c.submits_per_step),
        "steps_per_submit": gpu.as_ref().map(|_| steps_per_submit.max(1)),
        "arena_bytes": arena_bytes,
        "ms_per_step": per_variant,
        "backend": if gpu.is_some() { "gpu" } else { "cpu" },
        "adapter": gpu.as_ref().map(|gpu| format!("{} ({})", gpu.adapter_name, gpu.backend)).unwrap_or_else(|| CPU_NAME.into()),
        "config": config.to_query(),
    });
    report.to_string()
}
