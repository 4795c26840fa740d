//! Lockstep training of the variants in `modes`: the same seed, identical shared initial
//! tensors, the same batch each step. A variant that goes non-finite is frozen on the device at
//! that step (the optimiser skips it) and stopped once the host reads the record; the others
//! go on. Works on the GPU (any wgpu backend) or on the CPU reference.

use crate::checkpoint::CheckpointError;
use crate::config::{Config, ResidualKind};
use crate::cpu::{CpuArena, CpuKernels};
use crate::gpu::{Counters, GpuArena, GpuContext, GpuError, StepWork};
use crate::kernels::{slot, Op};
use crate::metrics::{Divergence, StepMetrics};
use crate::program::{label_value, Kernels, OpList, Program, TooLarge};
use crate::tasks::Dataset;
use std::rc::Rc;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("the checkpoint is for {found}, but this experiment trains {expected}")]
    WrongVariant { found: String, expected: String },
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    #[error("the CPU is still running the last step")]
    Busy,
    #[error(transparent)]
    Text(#[from] crate::tokens::TextError),
}

/// Largest arena the CPU backend takes (wasm memory is 4 GiB at most, and speed runs out first).
pub const CPU_ARENA_LIMIT: u64 = 1 << 30;

/// Refuses a program whose arena the backend cannot hold, before anything is allocated.
fn check_size(program: &Program, gpu: Option<&GpuContext>) -> Result<(), EngineError> {
    let (limit, name) = match gpu {
        Some(ctx) => ctx.max_buffer_bytes(),
        None => (CPU_ARENA_LIMIT, "CPU backend's limit"),
    };
    let needed = program.arena_bytes();
    if needed > limit {
        return Err(TooLarge { needed_mib: needed as f64 / 1048576.0, limit: name, limit_mib: limit as f64 / 1048576.0 }.into());
    }
    Ok(())
}

/// Where a variant's arena lives: the backend, with what it needs to run.
enum Store {
    Cpu(Box<CpuArena>),
    Gpu(GpuArena, Rc<GpuContext>),
}

/// One variant's program and state.
pub struct Variant {
    pub kind: ResidualKind,
    pub program: Program,
    store: Store,
    /// Set once the host has read a divergence record; the variant is not stepped again.
    pub divergence: Option<Divergence>,
}

impl Variant {
    fn new(
        gpu: Option<&Rc<GpuContext>>,
        config: &Config,
        kind: ResidualKind,
        dataset: &Dataset,
        kernels: Kernels,
    ) -> Result<Variant, EngineError> {
        let program = Program::with_kernels(config, kind, dataset.n_test(), kernels)?;
        // Before anything of the model's size is allocated, initial weights included.
        check_size(&program, gpu.map(|g| &**g))?;
        let params = program.layout.initial_values(config.seed);
        Variant::with_params(gpu, program, &params, &dataset.test_x, &dataset.test_y)
    }

    /// Builds the arena (call [`check_size`] first) with these parameters and test rows.
    fn with_params(
        gpu: Option<&Rc<GpuContext>>,
        program: Program,
        params: &[f32],
        test_x: &[f32],
        test_y: &[u32],
    ) -> Result<Variant, EngineError> {
        let kind = program.dims.kind;
        let arena = program.initial_arena(params, test_x, test_y);
        let store = match gpu {
            None => Store::Cpu(Box::new(CpuArena::new(&program, arena, CpuKernels::Fast))),
            Some(ctx) => Store::Gpu(GpuArena::new(ctx, kind.name(), &arena, &program.lists())?, ctx.clone()),
        };
        Ok(Variant { kind, program, store, divergence: None })
    }

    pub(crate) fn write(&mut self, offset: u32, data: &[f32]) {
        match &mut self.store {
            Store::Cpu(arena) => {
                arena.finish();
                arena.values[offset as usize..][..data.len()].copy_from_slice(data)
            }
            Store::Gpu(arena, ctx) => arena.write(ctx, offset, data),
        }
    }

    fn run(&mut self, lists: &[OpList]) {
        match &mut self.store {
            Store::Cpu(arena) => arena.submit(lists),
            Store::Gpu(arena, ctx) => arena.run(ctx, lists),
        }
    }

    pub(crate) async fn read(&self, offset: u32, len: usize) -> Result<Vec<f32>, EngineError> {
        match &self.store {
            Store::Cpu(arena) if arena.busy() => Err(EngineError::Busy),
            Store::Cpu(arena) => Ok(arena.values[offset as usize..][..len].to_vec()),
            Store::Gpu(arena, ctx) => Ok(arena.read(ctx, offset, len).await?),
        }
    }

    /// A batch as the arena holds it (element offset, values): features, labels.
    fn batch_inputs(&self, x: &[f32], y: &[u32]) -> [(u32, Vec<f32>); 2] {
        let plan = &self.program.plan;
        [(plan.batch_x, x.to_vec()), (plan.batch_y, y.iter().map(|&v| label_value(v)).collect())]
    }

    /// Puts one batch into the arena.
    fn write_batch(&mut self, x: &[f32], y: &[u32]) {
        for (offset, values) in self.batch_inputs(x, y) {
            self.write(offset, &values);
        }
    }

    /// What a training step puts into the arena first: the batch, and the step scalars.
    fn step_inputs(&self, x: &[f32], y: &[u32], scalars: [f32; 4]) -> Vec<(u32, Vec<f32>)> {
        let mut inputs = self.batch_inputs(x, y).to_vec();
        inputs.push((self.program.plan.metrics + slot::STEP, scalars.to_vec()));
        inputs
    }

    /// Wall time of each dispatch of `list`, run one by one, the fastest of `repeats` runs
    /// (native `bench` only; it blocks).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn time_kernels(&self, list: OpList, repeats: u32) -> Vec<(&'static str, f64)> {
        match &self.store {
            Store::Gpu(arena, ctx) => arena.time_each(ctx, list, repeats),
            Store::Cpu(_) => Vec::new(),
        }
    }

    /// Per-dispatch times of `list` (from [`Variant::time_kernels`] or
    /// [`Variant::profile_each`]) summed by entry point, products also by `m x n x k` (their
    /// cost depends on the shape more than on anything else), in order of first appearance.
    pub fn times_by_kernel(&self, list: OpList, times: Vec<(&'static str, f64)>) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = Vec::new();
        for ((entry, time), op) in times.into_iter().zip(self.program.list(list)) {
            let label = match op {
                Op::Matmul(p) if p.batch > 1 => format!("{entry} {}x{}x{} x{}", p.m, p.n, p.k, p.batch),
                Op::Matmul(p) => format!("{entry} {}x{}x{}", p.m, p.n, p.k),
                _ => entry.to_string(),
            };
            match out.iter_mut().find(|(l, _)| *l == label) {
                Some(slot) => slot.1 += time,
                None => out.push((label, time)),
            }
        }
        out
    }

    /// Milliseconds of each dispatch of `list` on its own, `(entry point, ms)`: each is run
    /// `times` times in one submit and read back, less a readback alone (the page's per-kernel
    /// benchmark; `now` is its clock in milliseconds). Empty on the CPU. The arena's values are
    /// garbage afterwards: profile a trainer of its own.
    pub async fn profile_each(&self, list: OpList, times: u32, now: &dyn Fn() -> f64) -> Result<Vec<(&'static str, f64)>, EngineError> {
        let Store::Gpu(arena, ctx) = &self.store else { return Ok(Vec::new()) };
        let readback = {
            let start = now();
            arena.read(ctx, 0, 1).await?;
            now() - start
        };
        let mut out = Vec::new();
        for (index, label) in arena.labels(list).into_iter().enumerate() {
            let start = now();
            arena.run_one(ctx, list, index, times);
            arena.read(ctx, 0, 1).await?;
            out.push((label, ((now() - start - readback) / times as f64).max(0.0)));
        }
        Ok(out)
    }

    /// Current parameters, in the layout's order.
    pub async fn params(&self) -> Result<Vec<f32>, EngineError> {
        self.read(self.program.plan.params, self.program.layout.total).await
    }
}

/// The lockstep trainer.
pub struct Trainer {
    pub config: Config,
    pub dataset: Dataset,
    gpu: Option<Rc<GpuContext>>,
    pub variants: Vec<Variant>,
    /// Index of the next step to run (0-based); `step` of the metrics is the step that produced them.
    pub next_step: u64,
    last: Option<(u64, bool, bool)>,
}

impl Trainer {
    /// Prepares every variant of `config.modes` on `gpu`, or on the CPU reference when `None`.
    pub fn new(config: &Config, gpu: Option<Rc<GpuContext>>) -> Result<Trainer, EngineError> {
        Trainer::with_kernels(config, gpu, Kernels::for_config(config))
    }

    /// [`Trainer::new`] with the kernel granularity given (benchmarks compare both).
    pub fn with_kernels(config: &Config, gpu: Option<Rc<GpuContext>>, kernels: Kernels) -> Result<Trainer, EngineError> {
        crate::tokens::check_text(config)?;
        let dataset = Dataset::new(config);
        let mut variants = Vec::new();
        for &kind in &config.modes {
            variants.push(Variant::new(gpu.as_ref(), config, kind, &dataset, kernels)?);
        }
        Ok(Trainer { config: config.clone(), dataset, gpu, variants, next_step: 0, last: None })
    }

    /// Whether every variant of `config` fits the backend, checked without allocating (a sweep
    /// checks all its cells before training the first).
    pub fn check_fits(config: &Config, gpu: Option<&GpuContext>) -> Result<(), EngineError> {
        crate::tokens::check_text(config)?;
        let n_test = Dataset::new(config).n_test();
        for &kind in &config.modes {
            check_size(&Program::new(config, kind, n_test)?, gpu)?;
        }
        Ok(())
    }

    /// The nearest smaller experiment that fits the backend, for a "try this instead" message:
    /// batch halved down to 32 first, then depth down to 8, width down to 16, the FFN multiplier,
    /// then batch again. `None` when `config` fits already or nothing smaller does.
    pub fn smaller_that_fits(config: &Config, gpu: Option<&GpuContext>) -> Option<Config> {
        let mut smaller = config.clone();
        loop {
            if Trainer::check_fits(&smaller, gpu).is_ok() {
                return (smaller != *config).then_some(smaller);
            }
            match () {
                _ if smaller.batch > 32 => smaller.batch /= 2,
                _ if smaller.depth > 8 => smaller.depth /= 2,
                _ if smaller.width > 16 => smaller.width /= 2,
                _ if smaller.ffn > 1 => smaller.ffn /= 2,
                _ if smaller.batch > 1 => smaller.batch /= 2,
                _ => return None,
            }
        }
    }

    pub fn gpu(&self) -> Option<&GpuContext> {
        self.gpu.as_deref()
    }

    pub fn variant(&self, kind: ResidualKind) -> Option<&Variant> {
        self.variants.iter().find(|v| v.kind == kind)
    }

    /// Replaces a variant's parameters (e.g. from a checkpoint); optimiser state starts fresh.
    pub fn load_params(&mut self, kind: ResidualKind, values: &[f32]) -> Result<(), EngineError> {
        let variant = self
            .variants
            .iter_mut()
            .find(|v| v.kind == kind)
            .ok_or_else(|| EngineError::WrongVariant { found: kind.name().into(), expected: self.config.to_query() })?;
        if values.len() != variant.program.layout.total {
            return Err(EngineError::Input(format!("{} parameters given, {} expected", values.len(), variant.program.layout.total)));
        }
        let at = variant.program.plan.params;
        variant.write(at, values);
        Ok(())
    }

    /// Runs the CPU variants with these kernels from now on (tests and benchmarks compare the
    /// fast kernels with the reference's); no effect on the GPU.
    pub fn set_cpu_kernels(&mut self, kernels: CpuKernels) {
        for variant in &mut self.variants {
            if let Store::Cpu(arena) = &mut variant.store {
                arena.set_kernels(&variant.program, kernels);
            }
        }
    }

    /// Whether CPU work is queued rather than run at once (the page runs it in slices between
    /// frames with [`Trainer::run_queued`]). No effect on the GPU, whose work is always queued.
    pub fn set_sliced(&mut self, sliced: bool) {
        for variant in &mut self.variants {
            if let Store::Cpu(arena) = &mut variant.store {
                arena.set_sliced(sliced);
            }
        }
    }

    /// Runs queued CPU work, one small unit at a time, while `keep_going` says so; true once
    /// nothing is left. Results of a step can be read only after this returned true.
    pub fn run_queued(&mut self, keep_going: &mut dyn FnMut() -> bool) -> bool {
        self.variants.iter_mut().all(|variant| match &mut variant.store {
            Store::Cpu(arena) => arena.run_queued(keep_going),
            Store::Gpu(..) => true,
        })
    }

    /// Whether every variant has stopped (diverged).
    pub fn all_stopped(&self) -> bool {
        self.variants.iter().all(|v| v.divergence.is_some())
    }

    /// Learning rate of step `t` (linear warmup over `warmup` steps).
    pub fn lr_at(&self, t: u64) -> f32 {
        let warmup = self.config.warmup as u64;
        if warmup == 0 {
            self.config.lr
        } else {
            self.config.lr * ((t + 1).min(warmup) as f32 / warmup as f32)
        }
    }

    /// Submits step `next_step` for every running variant: batch, step scalars, then (on
    /// evaluation steps) the test pass, the training step, and (when `measure`) the gains.
    /// Returns without waiting for the device.
    pub fn submit_step(&mut self, measure: bool) {
        let evaluate = self.next_step.is_multiple_of(self.config.eval_every as u64);
        self.submit_with(evaluate, measure);
    }

    /// The GPU's dispatch and submit counts so far; `None` on the CPU.
    pub fn counters(&self) -> Option<Counters> {
        self.gpu.as_ref().map(|gpu| gpu.counters())
    }

    /// Submits the GPU steps waiting for a submit (any read does this first anyway).
    pub fn flush(&self) {
        if let Some(gpu) = &self.gpu {
            gpu.flush();
        }
    }

    /// [`Trainer::submit_step`] with the evaluation chosen by the caller (a sweep cell
    /// evaluates at its last step, whatever `eval_every` says).
    pub fn submit_with(&mut self, evaluate: bool, measure: bool) {
        let t = self.next_step;
        let (x, y) = self.dataset.batch(t, self.config.batch as usize);
        let step_no = (t + 1) as i32;
        let scalars = [
            t as f32,
            self.lr_at(t),
            (1.0 - (self.config.beta1 as f64).powi(step_no)) as f32,
            (1.0 - (self.config.beta2 as f64).powi(step_no)) as f32,
        ];
        let mut lists = Vec::with_capacity(3);
        if evaluate {
            lists.push(OpList::Eval);
        }
        lists.push(OpList::Train);
        if measure {
            lists.push(OpList::Measure);
        }
        let gpu = self.gpu.clone();
        let running: Vec<&mut Variant> = self.variants.iter_mut().filter(|v| v.divergence.is_none()).collect();
        let inputs: Vec<_> = running.iter().map(|variant| variant.step_inputs(&x, &y, scalars)).collect();
        let mut on_gpu = Vec::with_capacity(running.len());
        for (variant, inputs) in running.into_iter().zip(&inputs) {
            if let Store::Cpu(_) = variant.store {
                for (offset, values) in inputs {
                    variant.write(*offset, values);
                }
            }
            match &mut variant.store {
                Store::Cpu(arena) => arena.submit(&lists),
                Store::Gpu(arena, _) => on_gpu.push(StepWork { arena: &*arena, inputs, lists: &lists }),
            }
        }
        // Every variant's step in one pass. It waits for the next submit unless its metrics
        // are due (gpu/steps.rs); any read submits it first.
        if let (Some(ctx), false) = (gpu.as_deref(), on_gpu.is_empty()) {
            ctx.run_step(&on_gpu, evaluate || measure);
        }
        self.last = Some((t, evaluate, measure));
        self.next_step += 1;
    }

    /// Metrics of the last submitted step, for every variant that was running it. Takes `&self`
    /// so a page can await it holding only a shared borrow; apply the result with [`Trainer::record`].
    pub async fn peek_metrics(&self) -> Result<Vec<StepMetrics>, EngineError> {
        let Some((t, evaluated, measured)) = self.last else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for variant in self.variants.iter().filter(|v| v.divergence.is_none()) {
            let plan = &variant.program.plan;
            let block = variant.read(plan.metrics, plan.metrics_len as usize).await?;
            out.push(StepMetrics::decode(&variant.program, &block, t, evaluated, measured));
        }
        Ok(out)
    }

    /// Stops every variant whose metrics carry a divergence record.
    pub fn record(&mut self, rows: &[StepMetrics]) {
        for row in rows {
            if let Some(v) = self.variants.iter_mut().find(|v| v.kind.name() == row.mode) {
                v.divergence = v.divergence.or(row.divergence());
            }
        }
    }

    /// [`Trainer::peek_metrics`] then [`Trainer::record`].
    pub async fn read_metrics(&mut self) -> Result<Vec<StepMetrics>, EngineError> {
        let rows = self.peek_metrics().await?;
        self.record(&rows);
        Ok(rows)
    }

    /// Runs the decision-surface probe (2-D tasks) of every variant on its current weights.
    pub fn submit_probe(&mut self) {
        for variant in self.variants.iter_mut().filter(|v| v.program.plan.probe_rows > 0) {
            variant.run(&[OpList::Probe]);
        }
    }

    /// Probability of class 1 on the probe grid (`PROBE_GRID` x `PROBE_GRID`, row-major from
    /// the top-left corner), after [`Trainer::submit_probe`]. Empty for tasks that are not 2-D.
    pub async fn read_probe(&self, kind: ResidualKind) -> Result<Vec<f32>, EngineError> {
        let Some(variant) = self.variant(kind) else { return Ok(Vec::new()) };
        let plan = &variant.program.plan;
        let k = variant.program.dims.classes;
        let logits = variant.read(plan.probe_logits, plan.probe_rows as usize * k).await?;
        Ok(logits
            .chunks_exact(k)
            .map(|l| {
                let p = 1.0 / (1.0 + (l[0] - l[1]).exp());
                if p.is_finite() {
                    p
                } else {
                    0.5
                }
            })
            .collect())
    }
}

/// Loss and gradient of one batch for a single-variant config (the `grad` command and the
/// gradient checks): forward, loss and backward, no optimiser.
pub async fn loss_and_gradients(
    config: &Config,
    gpu: Option<&Rc<GpuContext>>,
    params: &[f32],
    x: &[f32],
    y: &[u32],
) -> Result<(f32, Vec<f32>), EngineError> {
    loss_and_gradients_with(config, gpu, params, x, y, Kernels::for_config(config)).await
}

/// [`loss_and_gradients`] with the kernel granularity given (tests compare both).
pub async fn loss_and_gradients_with(
    config: &Config,
    gpu: Option<&Rc<GpuContext>>,
    params: &[f32],
    x: &[f32],
    y: &[u32],
    kernels: Kernels,
) -> Result<(f32, Vec<f32>), EngineError> {
    let kind = match config.modes.as_slice() {
        [kind] => *kind,
        _ => return Err(EngineError::Input("the config's `modes` must name exactly one variant".into())),
    };
    let rows = config.batch as usize;
    let scoring = crate::program::Scoring::of(config);
    if y.len() != rows * scoring.rows || x.len() != rows * config.d_in() {
        return Err(EngineError::Input(format!(
            "the batch has {} values of x and {} labels; the config expects batch={rows} examples of {} features and {} labels",
            x.len(),
            y.len(),
            config.d_in(),
            scoring.rows
        )));
    }
    if let Some(&bad) = y.iter().find(|&&v| v != crate::tokens::NO_TARGET && v as usize >= config.classes()) {
        return Err(CheckpointError::Label { label: bad as i64, classes: config.classes() }.into());
    }
    if config.task.is_tokens() {
        if let Some(&bad) = x.iter().find(|&&v| !(v >= 0.0 && (v as usize) < config.classes() && v.fract() == 0.0)) {
            return Err(EngineError::Input(format!("token {bad} is outside the vocabulary 0..{}", config.classes())));
        }
    }
    let program = Program::with_kernels(config, kind, 0, kernels)?;
    check_size(&program, gpu.map(|g| &**g))?;
    let mut variant = Variant::with_params(gpu, program, params, &[], &[])?;
    variant.write_batch(x, y);
    variant.run(&[OpList::Gradient]);
    let plan = &variant.program.plan;
    let loss_rows = variant.read(plan.train.loss_rows, rows * scoring.rows).await?;
    let grads = variant.read(plan.grads, variant.program.layout.total).await?;
    let loss = loss_rows.iter().map(|&v| v as f64).sum::<f64>() / (rows * scoring.scored) as f64;
    Ok((loss as f32, grads))
}
