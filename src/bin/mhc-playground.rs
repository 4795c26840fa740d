//! Command-line runner (DESIGN.md section 6): the same engine as the page, natively.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(native::main());
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use clap::{Parser, Subcommand, ValueEnum};
    use mhc_playground::checkpoint::{save_checkpoint, write_tensors, CheckpointError, TensorFile};
    use mhc_playground::config::{notices_line, Arch, Config, ResidualKind};
    use mhc_playground::cpu::CpuKernels;
    use mhc_playground::export::{stored_zip, torch_export, ExportError};
    use mhc_playground::gpu::{GpuContext, GpuError, StepCounts, STEPS_PER_SUBMIT};
    use mhc_playground::kernels::{ArenaView, MatmulKernel, Named, RegisterBlock, StreamItems, TuningOverrides};
    use mhc_playground::metrics::{StepMetrics, CSV_HEADER};
    use mhc_playground::plan::TooLarge;
    use mhc_playground::program::{label_value, Kernels, OpList, Program, Scoring};
    use mhc_playground::sweep::{self, CellResult, Sweep};
    use mhc_playground::tasks::Dataset;
    use mhc_playground::tokens::{check_text, register_text, BOOK, NO_TARGET};
    use mhc_playground::trainer::{loss_and_gradients, EngineError, Trainer};
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::rc::Rc;
    use std::time::Instant;

    #[derive(Parser)]
    #[command(name = "mhc-playground", version, about = "Train residual / HC / mHC networks in lockstep on the GPU (or CPU)")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
    enum Backend {
        Gpu,
        Cpu,
    }

    #[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
    enum KernelChoice {
        Auto,
        Fused,
        Unfused,
    }

    /// How the GPU kernels are tuned, where not the adapter's own choice: to compare, on one
    /// machine, what another adapter gets (SwiftShader in a browser: floats, 4 threads, 8x8).
    #[derive(clap::Args)]
    struct TuningChoice {
        /// How kernels see the arena: vec4s or floats.
        #[arg(long, value_parser = ArenaView::parse_or_explain)]
        arena_view: Option<ArenaView>,
        /// Threads per workgroup of the fused block kernels (1 to 256).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
        block_threads: Option<u32>,
        /// Outputs a thread of the products and the fused kernels' linear layers: 4x4 or 8x8.
        #[arg(long, value_parser = RegisterBlock::parse_or_explain)]
        register_block: Option<RegisterBlock>,
        /// What a thread of the fused kernels' stream phases takes: quads or rows.
        #[arg(long, value_parser = StreamItems::parse_or_explain)]
        stream_items: Option<StreamItems>,
        /// Share register-block rows through the subgroup where the device has subgroup
        /// operations: on or off (default: on a software adapter).
        #[arg(long, value_parser = clap::builder::BoolishValueParser::new())]
        subgroups: Option<bool>,
    }

    #[derive(clap::Args)]
    struct Experiment {
        /// Query string or full share URL of the experiment, e.g. 'depth=48&lr=0.01'.
        #[arg(long, default_value = "")]
        config: String,
        /// Overrides one key (repeatable), e.g. --set depth=12.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// A UTF-8 text file for task=text to train on instead of the built-in book (the config's
        /// `text` key is then its hash; a link made on the page with a pasted text names it).
        #[arg(long, value_name = "FILE")]
        text: Option<PathBuf>,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Train the variants of `modes` in lockstep and report metrics.
        Train {
            #[command(flatten)]
            experiment: Experiment,
            /// Number of steps (overrides the config's `steps`; 0 with --save writes the initial weights).
            #[arg(long)]
            steps: Option<u64>,
            /// Write metrics: one JSON object per logged step and variant (.jsonl) or scalar columns (.csv).
            #[arg(long)]
            metrics: Option<PathBuf>,
            /// Log (and measure gains) every N steps; evaluation steps and the last step are always logged.
            #[arg(long, default_value_t = 10)]
            log_every: u64,
            /// Save the final weights; with several variants, one file per variant (`name.<mode>.safetensors`).
            #[arg(long)]
            save: Option<PathBuf>,
            /// Start from a checkpoint (its variant must be among `modes`).
            #[arg(long)]
            init: Option<PathBuf>,
            #[arg(long, value_enum, default_value = "gpu")]
            backend: Backend,
            /// Print nothing but errors.
            #[arg(long)]
            quiet: bool,
        },
        /// Write the training batch of one step: x [B, d_in] f32, y [B] i32.
        Batch {
            #[command(flatten)]
            experiment: Experiment,
            #[arg(long)]
            step: u64,
            #[arg(long)]
            out: PathBuf,
        },
        /// Loss and gradients of one batch: `loss` [1] and `grad.<param>` for every parameter.
        Grad {
            #[command(flatten)]
            experiment: Experiment,
            #[arg(long)]
            weights: PathBuf,
            #[arg(long)]
            batch: PathBuf,
            #[arg(long)]
            out: PathBuf,
            #[arg(long, value_enum, default_value = "gpu")]
            backend: Backend,
        },
        /// Time training steps; prints one JSON object (steps/s, dispatches and submits per
        /// lockstep step, each variant alone, arena sizes).
        Bench {
            #[command(flatten)]
            experiment: Experiment,
            #[arg(long, default_value_t = 50)]
            steps: u64,
            /// Kernel granularity: auto picks fused up to a hidden width of 1024.
            #[arg(long, value_enum, default_value = "auto")]
            kernels: KernelChoice,
            /// Also time the other kernels in the same run and report the speed-up: on the GPU
            /// the unfused (or fused) ones, on the CPU the plain reference.
            #[arg(long)]
            compare: bool,
            /// Also time every dispatch of one training step on its own, the fastest of
            /// PER_KERNEL_REPEATS runs each (slow; GPU only).
            #[arg(long)]
            per_kernel: bool,
            /// Run every product with this matmul kernel (registers, tiled, direct or registers8) instead
            /// of each op's own, to compare them.
            #[arg(long, value_parser = MatmulKernel::parse_or_explain)]
            matmul: Option<MatmulKernel>,
            /// At most this many training steps wait for one submit while no metrics are due
            /// (1: a submit every step).
            #[arg(long, default_value_t = STEPS_PER_SUBMIT, value_parser = clap::value_parser!(u32).range(1..=1024))]
            steps_per_submit: u32,
            #[command(flatten)]
            tuning: TuningChoice,
            /// Where to train: the GPU, or the CPU backend the page uses without WebGPU.
            #[arg(long, value_enum, default_value = "gpu")]
            backend: Backend,
        },
        /// Train every cell of a grid over one or two keys (all variants in lockstep per cell)
        /// and write one row per cell and variant.
        Sweep {
            #[command(flatten)]
            experiment: Experiment,
            /// An axis, e.g. --grid depth=8,16,32 (at most two; replaces the sweep_x/sweep_y of --config).
            #[arg(long, value_name = "KEY=V1,V2,...")]
            grid: Vec<String>,
            /// Steps per cell (default: the config's sweep_steps, else 200).
            #[arg(long)]
            steps: Option<u32>,
            /// Write the rows here: .csv or .jsonl (default: CSV on stdout).
            #[arg(long)]
            out: Option<PathBuf>,
            #[arg(long, value_enum, default_value = "gpu")]
            backend: Backend,
            /// Print no progress.
            #[arg(long)]
            quiet: bool,
        },
        /// Write the experiment as a PyTorch project: train.py, experiment.json, the initial
        /// weights of every variant and the data set (`python DIR/train.py`, or under torchrun).
        ExportTorch {
            #[command(flatten)]
            experiment: Experiment,
            /// Folder to write (created if missing).
            #[arg(long)]
            out: PathBuf,
            /// Also write DIR.zip, the file the page's Export PyTorch downloads.
            #[arg(long)]
            zip: bool,
        },
    }

    /// An error for the user: what went wrong, and what to do next.
    struct Failure {
        message: String,
        hint: String,
    }

    // One conversion per error type the commands pass on with `?`, each with its hint: every
    // error the runner prints ends with a `hint:` line.
    const CHECKPOINT_HINT: &str = "pass a checkpoint written by `train --save` or the page's export, for this experiment's shapes";
    const SIZE_HINT: &str = "lower depth, width, ffn, streams or batch (the message names the limit)";

    impl From<EngineError> for Failure {
        fn from(e: EngineError) -> Failure {
            let hint = match &e {
                EngineError::Gpu(GpuError::TooLarge { .. } | GpuError::OutOfMemory) => SIZE_HINT,
                EngineError::Gpu(_) => "try again; if the GPU keeps failing, use --backend cpu",
                EngineError::Checkpoint(_) => CHECKPOINT_HINT,
                EngineError::WrongVariant { .. } => "set modes to the checkpoint's variant",
                EngineError::Input(_) => "check that the config and the files given belong together",
                EngineError::TooLarge(_) => SIZE_HINT,
                EngineError::Busy => "this is a bug in the runner: it read a step before running it; please report it",
                EngineError::Text(_) => "pass the text with --text FILE",
            };
            fail(e.to_string(), hint)
        }
    }

    impl From<CheckpointError> for Failure {
        fn from(e: CheckpointError) -> Failure {
            fail(e.to_string(), CHECKPOINT_HINT)
        }
    }

    impl From<TooLarge> for Failure {
        fn from(e: TooLarge) -> Failure {
            fail(e.to_string(), SIZE_HINT)
        }
    }

    impl From<std::io::Error> for Failure {
        fn from(e: std::io::Error) -> Failure {
            fail(format!("cannot write: {e}"), "check that the disk has room and the folder is writable")
        }
    }

    impl From<serde_json::Error> for Failure {
        fn from(e: serde_json::Error) -> Failure {
            fail(format!("cannot encode the metrics: {e}"), "please report this with the command line that caused it")
        }
    }

    fn fail(message: impl Into<String>, hint: impl Into<String>) -> Failure {
        Failure { message: message.into(), hint: hint.into() }
    }

    pub fn main() -> i32 {
        let cli = match Cli::try_parse() {
            Ok(cli) => cli,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() { 2 } else { 0 };
            }
        };
        match pollster::block_on(run(cli)) {
            Ok(()) => 0,
            Err(f) => {
                eprintln!("error: {}", f.message);
                eprintln!("hint: {}", f.hint);
                1
            }
        }
    }

    /// Reads the experiment: notices from the query string are warnings, a bad --set is an error.
    fn experiment(e: &Experiment, quiet: bool) -> Result<Config, Failure> {
        let (mut config, notices) = Config::from_query(&e.config);
        if let (Some(line), false) = (notices_line(&notices), quiet) {
            eprintln!("warning: {line}");
        }
        for pair in &e.set {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(fail(format!("--set {pair}: expected KEY=VALUE"), "e.g. --set depth=12"));
            };
            if let Some(notice) = config.set(key, value).map_err(|e| fail(e.to_string(), "see the key table in README.md"))? {
                if !quiet {
                    eprintln!("warning: {notice}");
                }
            }
        }
        if let Some(path) = &e.text {
            let bytes = read_file(path)?;
            let text =
                String::from_utf8(bytes).map_err(|_| fail(format!("{}: not UTF-8 text", path.display()), "save the text as UTF-8"))?;
            let id = register_text(&text).map_err(|e| fail(format!("{}: {e}", path.display()), "use a longer or plainer text"))?;
            if config.text != BOOK && config.text != id {
                return Err(fail(
                    format!("{} is text={id}, but the experiment names text={}", path.display(), config.text),
                    "pass the text the link was made with, or drop text= from the config",
                ));
            }
            config.text = id;
        }
        check_text(&config).map_err(|e| fail(e.to_string(), "pass the text with --text FILE"))?;
        Ok(config)
    }

    fn single_mode(config: &Config) -> Result<ResidualKind, Failure> {
        match config.modes.as_slice() {
            [kind] => Ok(*kind),
            _ => Err(fail(
                format!(
                    "this command works on one variant, but modes={}",
                    config.modes.iter().map(|m| m.name()).collect::<Vec<_>>().join(",")
                ),
                "add --set modes=mhc (or residual, hc)",
            )),
        }
    }

    async fn gpu_context() -> Result<Rc<GpuContext>, Failure> {
        GpuContext::new().await.map(Rc::new).map_err(|e| {
            fail(e.to_string(), "install a Vulkan driver (Debian: apt-get install mesa-vulkan-drivers libvulkan1) or use --backend cpu")
        })
    }

    fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
        std::fs::read(path).map_err(|e| fail(format!("cannot read {}: {e}", path.display()), "check the path"))
    }

    fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
        std::fs::write(path, bytes)
            .map_err(|e| fail(format!("cannot write {}: {e}", path.display()), "check the folder exists and is writable"))
    }

    async fn run(cli: Cli) -> Result<(), Failure> {
        match cli.command {
            Command::Train { experiment: e, steps, metrics, log_every, save, init, backend, quiet } => {
                let mut config = experiment(&e, quiet)?;
                if let Some(steps) = steps.filter(|&s| s >= 1) {
                    // Recorded in the config (and so in checkpoints) when it is a valid value.
                    let _ = config.set("steps", &steps.to_string());
                }
                let steps = steps.unwrap_or(config.steps as u64);
                let gpu = if backend == Backend::Gpu { Some(gpu_context().await?) } else { None };
                let mut trainer = Trainer::new(&config, gpu.clone()).map_err(|e| with_smaller_config(e, &config, gpu.as_deref()))?;
                if let Some(path) = &init {
                    let bytes = read_file(path)?;
                    let file = TensorFile::parse(&bytes)?;
                    let (ckpt_config, _) = file.experiment()?;
                    let kind = single_mode(&ckpt_config)?;
                    let variant = trainer.variant(kind).ok_or_else(|| {
                        fail(
                            format!("{} holds a {} checkpoint, which is not among modes", path.display(), kind.name()),
                            format!("add {} to modes", kind.name()),
                        )
                    })?;
                    let values = file.params(&variant.program.layout).map_err(|err| {
                        fail(
                            format!("{}: {err}", path.display()),
                            "the checkpoint's depth/width/streams/ffn/task must match the experiment",
                        )
                    })?;
                    trainer.load_params(kind, &values)?;
                }
                if !quiet {
                    let device = gpu
                        .as_ref()
                        .map(|g| format!("{} ({})", g.adapter_name, g.backend))
                        .unwrap_or_else(|| "the CPU (fast kernels, bit-exact with the reference)".into());
                    eprintln!(
                        "training {} for {steps} steps on {device}: {}",
                        config.modes.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "),
                        config.to_query()
                    );
                }
                let mut sink = match &metrics {
                    Some(path) => Some(MetricsSink::create(path)?),
                    None => None,
                };
                let start = Instant::now();
                let mut last: Vec<StepMetrics> = Vec::new();
                for t in 0..steps {
                    if trainer.all_stopped() {
                        break;
                    }
                    let log = t % log_every.max(1) == 0 || t % config.eval_every as u64 == 0 || t + 1 == steps;
                    trainer.submit_step(log);
                    if log {
                        let rows = trainer.read_metrics().await?;
                        for row in &rows {
                            if let Some(sink) = sink.as_mut() {
                                sink.write(row)?;
                            }
                            if !quiet {
                                if let Some(d) = row.divergence() {
                                    eprintln!("{} diverged at step {} in {}", row.mode, d.step, where_(d.block, &config));
                                }
                            }
                            if let Some(slot) = last.iter_mut().find(|m| m.mode == row.mode) {
                                *slot = row.clone();
                            } else {
                                last.push(row.clone());
                            }
                        }
                    }
                }
                let elapsed = start.elapsed().as_secs_f64();
                if !quiet && steps > 0 {
                    println!(
                        "{:<9} {:>6} {:>9} {:>7} {:>9} {:>7} {:>10} {:>10} {:>9}",
                        "variant", "step", "loss", "acc", "test_loss", "test_acc", "gain_fwd", "gain_bwd", "diverged"
                    );
                    for m in &last {
                        let f = |x: Option<f32>, p: usize| x.map(|v| format!("{v:.p$}")).unwrap_or_else(|| "-".into());
                        let g = |x: Option<f32>| {
                            x.map(|v| if v >= 1e4 { format!("{v:.3e}") } else { format!("{v:.4}") }).unwrap_or_else(|| "-".into())
                        };
                        let diverged = m.divergence().map(|d| format!("step {}", d.step)).unwrap_or_else(|| "no".into());
                        println!(
                            "{:<9} {:>6} {:>9} {:>7} {:>9} {:>7} {:>10} {:>10} {:>9}",
                            m.mode,
                            m.step,
                            f(m.loss, 4),
                            f(m.acc, 3),
                            f(m.test_loss, 4),
                            f(m.test_acc, 3),
                            g(m.gain_fwd),
                            g(m.gain_bwd),
                            diverged
                        );
                    }
                    println!("{steps} steps in {elapsed:.1} s ({:.1} steps/s)", steps as f64 / elapsed);
                }
                if let Some(path) = &save {
                    for variant in &trainer.variants {
                        let values = variant.params().await?;
                        let bytes = save_checkpoint(&variant.program.layout, &values, &config)?;
                        let target = if trainer.variants.len() == 1 { path.clone() } else { per_variant_path(path, variant.kind) };
                        write_file(&target, &bytes)?;
                        if !quiet {
                            eprintln!("saved {} weights to {}", variant.kind.name(), target.display());
                        }
                    }
                }
                Ok(())
            }
            Command::Batch { experiment: e, step, out } => {
                let config = experiment(&e, false)?;
                single_mode(&config)?;
                let dataset = Dataset::new(&config);
                let (x, y) = dataset.batch(step, config.batch as usize);
                let rows = config.batch as usize;
                let targets: Vec<i32> = y.iter().map(|&v| label_value(v) as i32).collect();
                // Tokens and targets are [B, T] i32 (-1: not scored); features [B, d_in] f32.
                let bytes = if config.task.is_tokens() {
                    let tokens: Vec<i32> = x.iter().map(|&v| v as i32).collect();
                    let shape = vec![rows, config.ctx as usize];
                    write_tensors(&[], &[("x".into(), shape.clone(), tokens), ("y".into(), shape, targets)], Some(&config.to_query()))?
                } else {
                    write_tensors(
                        &[("x".into(), vec![rows, config.d_in()], x)],
                        &[("y".into(), vec![rows], targets)],
                        Some(&config.to_query()),
                    )?
                };
                write_file(&out, &bytes)
            }
            Command::Grad { experiment: e, weights, batch, out, backend } => {
                let mut config = experiment(&e, false)?;
                let weight_bytes = read_file(&weights)?;
                let file = TensorFile::parse(&weight_bytes)
                    .map_err(|err| fail(format!("{}: {err}", weights.display()), "pass a checkpoint written by `train --save`"))?;
                if e.config.is_empty() && e.set.is_empty() {
                    config = file.experiment()?.0;
                }
                let kind = single_mode(&config)?;
                let program = Program::new(&config, kind, 0)?;
                let params = file.params(&program.layout).map_err(|err| {
                    fail(format!("{}: {err}", weights.display()), "the weights must match the config's depth/width/streams/ffn/task")
                })?;
                let batch_bytes = read_file(&batch)?;
                let batch_file = TensorFile::parse(&batch_bytes)
                    .map_err(|err| fail(format!("{}: {err}", batch.display()), "pass a file written by `batch`"))?;
                let (x_shape, x) = if config.task.is_tokens() {
                    let (shape, tokens) = batch_file.i32("x")?;
                    (shape, tokens.iter().map(|&t| t as f32).collect::<Vec<f32>>())
                } else {
                    batch_file.f32("x", None)?
                };
                let (y_shape, y) = batch_file.i32("y")?;
                let per_example = Scoring::of(&config).rows;
                let examples = x_shape.first().copied().unwrap_or(0);
                let y_expected = if config.task.is_tokens() { vec![examples, per_example] } else { vec![examples] };
                if x_shape.len() != 2 || x_shape[1] != config.d_in() || y_shape != y_expected || examples == 0 {
                    return Err(fail(
                        format!("batch x has shape {x_shape:?} and y {y_shape:?}; expected [rows, {}] and {y_expected:?}", config.d_in()),
                        "write it with `batch` using the same config",
                    ));
                }
                if let Some(bad) = y.iter().find(|&&v| v < -1 || (v == -1 && !config.task.is_tokens()) || v >= config.classes() as i32) {
                    return Err(fail(
                        format!("label {bad} is outside 0..{}", config.classes()),
                        "write the batch with `batch` using the same config",
                    ));
                }
                config.batch = examples as u32;
                let labels: Vec<u32> = y.iter().map(|&v| if v < 0 { NO_TARGET } else { v as u32 }).collect();
                let gpu = if backend == Backend::Gpu { Some(gpu_context().await?) } else { None };
                let (loss, grads) = loss_and_gradients(&config, gpu.as_ref(), &params, &x, &labels).await?;
                let mut tensors = vec![("loss".to_string(), vec![1], vec![loss])];
                for entry in &program.layout.entries {
                    tensors.push((format!("grad.{}", entry.name), entry.shape.clone(), grads[entry.range()].to_vec()));
                }
                let bytes = write_tensors(&tensors, &[], Some(&config.to_query()))?;
                write_file(&out, &bytes)
            }
            Command::Bench { experiment: e, steps, kernels, compare, per_kernel, matmul, steps_per_submit, tuning, backend } => {
                let config = experiment(&e, true)?;
                let gpu = if backend == Backend::Gpu { Some(gpu_context().await?) } else { None };
                if let Some(gpu) = &gpu {
                    gpu.set_tuning(TuningOverrides {
                        arena_view: tuning.arena_view,
                        block_threads: tuning.block_threads,
                        register_block: tuning.register_block,
                        stream_items: tuning.stream_items,
                        matmul,
                        subgroups: tuning.subgroups,
                    });
                    gpu.set_steps_per_submit(steps_per_submit);
                }
                let kernels = match kernels {
                    KernelChoice::Auto => Kernels::for_config(&config),
                    KernelChoice::Fused => Kernels::Fused,
                    KernelChoice::Unfused => Kernels::Unfused,
                };
                let gpu = gpu.as_ref();
                let mut report = bench(&config, gpu, (kernels, CpuKernels::Fast), steps, per_kernel).await?;
                if compare {
                    let other = match gpu {
                        Some(_) if kernels == Kernels::Fused => (Kernels::Unfused, CpuKernels::Fast),
                        Some(_) => (Kernels::Fused, CpuKernels::Fast),
                        None => (kernels, CpuKernels::Reference),
                    };
                    let baseline = bench(&config, gpu, other, steps, per_kernel).await?;
                    let ratio = |key: &str| Some(baseline[key].as_f64()? / report[key].as_f64()?);
                    report["speedup_over_other"] = serde_json::json!(ratio("ms_per_step"));
                    report["other"] = baseline;
                }
                report["adapter"] = serde_json::json!(gpu.map(|g| g.adapter_name.clone()).unwrap_or_else(|| "CPU (one thread)".into()));
                report["matmul"] = serde_json::json!(gpu.map(|_| matmul.map_or("each op's own", MatmulKernel::name)));
                report["arena_view"] = serde_json::json!(gpu.map(|g| g.arena_view().name()));
                report["register_block"] = serde_json::json!(gpu.map(|g| g.register_block().name()));
                report["block_threads"] = serde_json::json!(gpu.map(|g| g.block_threads()));
                report["stream_items"] = serde_json::json!(gpu.map(|g| g.stream_items().name()));
                report["subgroups"] = serde_json::json!(gpu.map(|g| g.subgroups()));
                report["steps_per_submit"] = serde_json::json!(gpu.map(|_| steps_per_submit));
                report["backend"] = serde_json::json!(gpu.map(|g| g.backend.clone()).unwrap_or_else(|| "cpu".into()));
                report["config"] = serde_json::json!(config.to_query());
                println!("{report}");
                Ok(())
            }
            Command::Sweep { experiment: e, grid, steps, out, backend, quiet } => run_sweep(e, grid, steps, out, backend, quiet).await,
            Command::ExportTorch { experiment: e, out, zip } => {
                let config = experiment(&e, false)?;
                let files = torch_export(&config).map_err(|e| match e {
                    ExportError::Checkpoint(e) => Failure::from(e),
                    ExportError::Text(e) => fail(e.to_string(), "pass the text with --text FILE"),
                })?;
                std::fs::create_dir_all(&out)
                    .map_err(|err| fail(format!("cannot create {}: {err}", out.display()), "pick a folder you can write to"))?;
                for f in &files {
                    write_file(&out.join(&f.name), &f.bytes)?;
                }
                let total: usize = files.iter().map(|f| f.bytes.len()).sum();
                eprintln!(
                    "wrote {} files ({:.1} MB) to {}: run `python {}`",
                    files.len(),
                    total as f64 / 1e6,
                    out.display(),
                    out.join("train.py").display()
                );
                if zip {
                    let path = out.with_extension("zip");
                    write_file(&path, &stored_zip(&files))?;
                    eprintln!("wrote {}", path.display());
                }
                Ok(())
            }
        }
    }

    /// A size error's hint names a smaller experiment that fits, ready for `--set`.
    fn with_smaller_config(e: EngineError, config: &Config, gpu: Option<&GpuContext>) -> Failure {
        let mut failure = Failure::from(e);
        if failure.hint == SIZE_HINT {
            if let Some(smaller) = Trainer::smaller_that_fits(config, gpu) {
                let sets: Vec<String> = config.changes_to(&smaller).iter().map(|kv| format!("--set {kv}")).collect();
                failure.hint = format!("this fits: {}", sets.join(" "));
            }
        }
        failure
    }

    /// How `sweep` writes its rows.
    #[derive(Clone, Copy, PartialEq)]
    enum RowFormat {
        Csv,
        Jsonl,
    }

    /// The sweep of `--config`, its axes replaced by any `--grid` and its steps by `--steps`;
    /// every problem is an error here, before anything runs.
    fn sweep_of(e: &Experiment, grid: &[String], steps: Option<u32>) -> Result<Sweep, Failure> {
        let hint = "give one or two axes as --grid KEY=V1,V2,... with values in the key's range, e.g. --grid depth=8,16,32";
        let (from_config, notices) = Sweep::from_query(&e.config);
        if let Some(line) = notices_line(&notices) {
            return Err(fail(line, hint));
        }
        let axes = match (grid.is_empty(), from_config.as_ref()) {
            (false, _) => {
                grid.iter().map(|g| Sweep::grid_axis(g)).collect::<Result<Vec<_>, _>>().map_err(|err| fail(err.to_string(), hint))?
            }
            (true, Some(sweep)) => sweep.axes().into_iter().cloned().collect(),
            (true, None) => return Err(fail("nothing to sweep", hint)),
        };
        let steps = steps.or(from_config.map(|s| s.steps)).unwrap_or(sweep::DEFAULT_STEPS);
        Sweep::new(axes, steps).map_err(|err| fail(err.to_string(), hint))
    }

    async fn run_sweep(
        e: Experiment,
        grid: Vec<String>,
        steps: Option<u32>,
        out: Option<PathBuf>,
        backend: Backend,
        quiet: bool,
    ) -> Result<(), Failure> {
        let base = experiment(&e, quiet)?;
        let sweep = sweep_of(&e, &grid, steps)?;
        let format = match out.as_ref().and_then(|p| p.extension()).and_then(|x| x.to_str()) {
            None if out.is_none() => RowFormat::Csv,
            Some(x) if x.eq_ignore_ascii_case("csv") => RowFormat::Csv,
            Some(x) if x.eq_ignore_ascii_case("jsonl") => RowFormat::Jsonl,
            _ => {
                return Err(fail(
                    format!("cannot tell the format of {}", out.unwrap_or_default().display()),
                    "name the file .csv or .jsonl",
                ))
            }
        };
        let gpu = if backend == Backend::Gpu { Some(gpu_context().await?) } else { None };
        let cells = sweep.cells(&base);
        for cell in &cells {
            Trainer::check_fits(&cell.config, gpu.as_deref()).map_err(|err| {
                let values = sweep.settings(&cell.values).join(" ");
                fail(format!("cell {values}: {err}"), "leave out the values that make the model too large")
            })?;
        }
        // Rows go to a side file that becomes `out` only when every cell has run: a failed or
        // interrupted sweep leaves nothing half-written under the name asked for.
        let partial = out.as_ref().map(|p| p.with_extension(format!("{}.partial", p.extension().and_then(|x| x.to_str()).unwrap_or(""))));
        let mut sink: Box<dyn Write> = match &partial {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .map_err(|err| fail(format!("cannot write {}: {err}", path.display()), "check the folder exists and is writable"))?,
            )),
            None => Box::new(std::io::stdout()),
        };
        if !quiet {
            eprintln!("sweeping {} cells of {} steps: {}", cells.len(), sweep.steps, sweep.share_query(&base));
        }
        let result = async {
            if format == RowFormat::Csv {
                writeln!(sink, "{}", sweep.csv_header())?;
            }
            for cell in cells {
                let start = Instant::now();
                let variants = sweep::run_cell(&cell.config, gpu.clone()).await?;
                let result = CellResult { cell, variants, seconds: start.elapsed().as_secs_f64() };
                let lines = if format == RowFormat::Csv { result.csv_lines(&sweep) } else { result.json_lines(&sweep) };
                for line in lines {
                    writeln!(sink, "{line}")?;
                }
                sink.flush()?;
                if !quiet {
                    let values = sweep.settings(&result.cell.values);
                    let gains = result.variants.iter().map(|v| {
                        let gain = v.max_gain_fwd.map_or("-".into(), |g| format!("{g:.4}"));
                        let fate = v.diverged_at.map_or(String::new(), |s| format!(" (diverged at step {s})"));
                        format!("{} {gain}{fate}", v.mode.name())
                    });
                    eprintln!(
                        "cell {}/{} {}: max gain {} in {:.1} s",
                        result.cell.index + 1,
                        sweep.shape().0 * sweep.shape().1,
                        values.join(" "),
                        gains.collect::<Vec<_>>().join(", "),
                        result.seconds
                    );
                }
            }
            Ok::<(), Failure>(())
        }
        .await;
        drop(sink);
        match (result, partial, out) {
            (Ok(()), Some(partial), Some(out)) => std::fs::rename(&partial, &out)
                .map_err(|err| fail(format!("cannot write {}: {err}", out.display()), "check the folder exists and is writable")),
            (Err(failure), Some(partial), _) => {
                let _ = std::fs::remove_file(partial);
                Err(failure)
            }
            (result, _, _) => result,
        }
    }

    /// Milliseconds per step of `steps` steps (after warm-up) of a fresh trainer, and on the GPU
    /// the dispatches and submits those steps took (the last waiting ones submitted, then read).
    async fn time_steps(trainer: &mut Trainer, steps: u64) -> Result<(f64, Option<StepCounts>), Failure> {
        for _ in 0..3 {
            trainer.submit_step(false);
        }
        trainer.read_metrics().await?;
        let before = trainer.counters();
        let start = Instant::now();
        for _ in 0..steps {
            trainer.submit_step(false);
        }
        trainer.flush();
        let counts = trainer.counters().zip(before).map(|(after, before)| after.since(before, steps));
        trainer.read_metrics().await?;
        Ok((start.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64, counts))
    }

    /// Runs of each dispatch `bench --per-kernel` takes the fastest of.
    const PER_KERNEL_REPEATS: u32 = 5;

    /// One granularity's figures: the lockstep step (time, dispatches, submits), each variant
    /// alone, arena sizes, and optionally every kernel's time.
    async fn bench(
        config: &Config,
        gpu: Option<&Rc<GpuContext>>,
        (kernels, cpu_kernels): (Kernels, CpuKernels),
        steps: u64,
        per_kernel: bool,
    ) -> Result<serde_json::Value, Failure> {
        let mut trainer = Trainer::with_kernels(config, gpu.cloned(), kernels)?;
        trainer.set_cpu_kernels(cpu_kernels);
        let (lockstep_ms, counts) = time_steps(&mut trainer, steps).await?;
        let mut alone = serde_json::Map::new();
        let mut arena_bytes = serde_json::Map::new();
        let mut kernel_ms = serde_json::Map::new();
        for variant in &trainer.variants {
            arena_bytes.insert(variant.kind.name().into(), serde_json::json!(variant.program.arena_bytes()));
            if per_kernel {
                let times = variant.time_kernels(OpList::Train, PER_KERNEL_REPEATS);
                let obj: serde_json::Map<String, serde_json::Value> =
                    variant.times_by_kernel(OpList::Train, times).into_iter().map(|(n, s)| (n, serde_json::json!(s * 1e3))).collect();
                kernel_ms.insert(variant.kind.name().into(), serde_json::Value::Object(obj));
            }
        }
        for &kind in &config.modes {
            let mut single = Trainer::with_kernels(&config.with_single_mode(kind), gpu.cloned(), kernels)?;
            single.set_cpu_kernels(cpu_kernels);
            alone.insert(kind.name().into(), serde_json::json!(time_steps(&mut single, steps).await?.0));
        }
        let ratio = match (alone.get("mhc").and_then(|v| v.as_f64()), alone.get("residual").and_then(|v| v.as_f64())) {
            (Some(m), Some(r)) => Some(m / r),
            _ => None,
        };
        let mut report = serde_json::json!({
            "kernels": match gpu {
                Some(_) => format!("{kernels:?}").to_lowercase(),
                None => format!("{cpu_kernels:?}").to_lowercase(),
            },
            "steps": steps,
            "steps_per_s": 1e3 / lockstep_ms,
            "ms_per_step": lockstep_ms,
            "dispatches_per_step": counts.map(|c| c.dispatches_per_step),
            "submits_per_step": counts.map(|c| c.submits_per_step),
            "variant_ms_per_step": alone,
            "mhc_over_residual": ratio,
            "arena_bytes": arena_bytes,
        });
        if per_kernel {
            report["kernel_ms_per_step"] = serde_json::Value::Object(kernel_ms);
        }
        Ok(report)
    }

    /// Where a divergence appeared: a block (a transformer's sublayer), or the head.
    fn where_(unit: u32, config: &Config) -> String {
        let units = config.depth * if config.arch == Arch::Transformer { 2 } else { 1 };
        match config.arch {
            _ if unit >= units => "the head".into(),
            Arch::Mlp => format!("block {unit}"),
            Arch::Transformer => format!("block {} ({})", unit / 2, if unit.is_multiple_of(2) { "attention" } else { "FFN" }),
        }
    }

    fn per_variant_path(path: &Path, kind: ResidualKind) -> PathBuf {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("weights");
        path.with_file_name(format!("{stem}.{}.safetensors", kind.name()))
    }

    /// Metrics file: JSON lines or CSV, chosen by extension.
    struct MetricsSink {
        out: std::io::BufWriter<std::fs::File>,
        csv: bool,
    }

    impl MetricsSink {
        fn create(path: &Path) -> Result<MetricsSink, Failure> {
            let csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            let file = std::fs::File::create(path)
                .map_err(|e| fail(format!("cannot write {}: {e}", path.display()), "check the folder exists and is writable"))?;
            let mut out = std::io::BufWriter::new(file);
            if csv {
                writeln!(out, "{CSV_HEADER}")?;
            }
            Ok(MetricsSink { out, csv })
        }

        fn write(&mut self, row: &StepMetrics) -> Result<(), Failure> {
            if self.csv {
                writeln!(self.out, "{}", row.csv_row())?;
            } else {
                writeln!(self.out, "{}", serde_json::to_string(row)?)?;
            }
            self.out.flush()?;
            Ok(())
        }
    }
}
