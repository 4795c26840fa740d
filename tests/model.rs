//! Whole-model checks: f64 finite differences through the full op program, GPU against CPU
//! gradients for every variant and precision, the spec's init equivalences, and golden loss
//! curves.

mod common;

use common::gpu;
use mhc_playground::config::{Config, ResidualKind};
use mhc_playground::kernels::slot;
use mhc_playground::program::{Kernels, Program};
use mhc_playground::reference::run_op;
use mhc_playground::tasks::Dataset;
use mhc_playground::trainer::{loss_and_gradients, loss_and_gradients_with, Trainer};

const KINDS: [ResidualKind; 3] = [ResidualKind::Residual, ResidualKind::Hc, ResidualKind::Mhc];

fn small(kind: ResidualKind, extra: &str) -> Config {
    let (mut config, notices) = Config::from_query("depth=3&width=6&streams=3&ffn=2&batch=5&sinkhorn_iters=5&act=tanh");
    assert!(notices.is_empty(), "{notices:?}");
    for pair in extra.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap();
        assert_eq!(config.set(key, value).unwrap(), None, "{pair}");
    }
    config.modes = vec![kind];
    config
}

/// Both architectures at awkward sizes (width not a multiple of 4, rows not of the 8-row tile):
/// the MLP, and a transformer whose FFN sublayers and attention wrappings can run fused.
const SHAPES: [&str; 2] = [
    "depth=3&width=13&streams=4&ffn=2&batch=9&sinkhorn_iters=5&act=gelu",
    "arch=transformer&task=text&depth=2&width=12&streams=3&ffn=2&batch=3&ctx=7&heads=3&sinkhorn_iters=5&act=gelu",
];

/// Variant `kind` alone of the experiment `query`, which must need no correction.
fn shaped(kind: ResidualKind, query: &str) -> Config {
    let (mut config, notices) = Config::from_query(query);
    assert!(notices.is_empty(), "{query}: {notices:?}");
    config.modes = vec![kind];
    config
}

/// Random but moderate parameters, so the dynamic HC/mHC terms (zero at init) matter.
fn perturbed_params(config: &Config, kind: ResidualKind) -> Vec<f32> {
    let program = Program::new(config, kind, 0).unwrap();
    let mut params = program.layout.initial_values(config.seed);
    let mut rng = mhc_playground::rng::Rng::new(99);
    for p in params.iter_mut() {
        *p += (rng.normal() * 0.3) as f32;
    }
    params
}

/// Mean loss of the program's forward on an f64 arena.
fn loss_f64(program: &Program, arena: &[f64]) -> f64 {
    let mut a = arena.to_vec();
    for op in &program.forward {
        run_op(&mut a, op);
    }
    let rows = program.batch;
    a[program.plan.train.loss_rows as usize..][..rows].iter().sum::<f64>() / rows as f64
}

#[test]
fn whole_model_gradients_match_finite_differences_in_f64() {
    for kind in KINDS {
        let config = small(kind, "");
        let program = Program::new(&config, kind, 0).unwrap();
        let params = perturbed_params(&config, kind);
        let (x, y) = Dataset::new(&config).batch(0, config.batch as usize);
        let mut arena: Vec<f64> = program.initial_arena(&params, &[], &[]).iter().map(|&v| v as f64).collect();
        for (i, &v) in x.iter().enumerate() {
            arena[program.plan.batch_x as usize + i] = v as f64;
        }
        for (i, &v) in y.iter().enumerate() {
            arena[program.plan.batch_y as usize + i] = v as f64;
        }
        let mut with_grads = arena.clone();
        for op in &program.gradient {
            run_op(&mut with_grads, op);
        }
        let p0 = program.plan.params as usize;
        let g0 = program.plan.grads as usize;
        let mut checked = 0;
        for entry in &program.layout.entries {
            // A few coordinates of every tensor.
            for i in (0..entry.len()).step_by((entry.len() / 3).max(1)) {
                let at = entry.offset + i;
                let h = 1e-5;
                let mut plus = arena.clone();
                plus[p0 + at] += h;
                let mut minus = arena.clone();
                minus[p0 + at] -= h;
                let numeric = (loss_f64(&program, &plus) - loss_f64(&program, &minus)) / (2.0 * h);
                let analytic = with_grads[g0 + at];
                assert!(
                    (analytic - numeric).abs() <= 1e-9 + 1e-5 * numeric.abs(),
                    "{kind:?} {}[{i}]: analytic {analytic:e} numeric {numeric:e}",
                    entry.name
                );
                checked += 1;
            }
        }
        assert!(checked > 40, "{kind:?}: only {checked} coordinates checked");
    }
}

/// ||a - b|| / ||b|| per tensor; the worst tensor's name and error.
fn worst_tensor_error(program: &Program, got: &[f32], want: &[f32]) -> (String, f64) {
    let mut worst = (String::new(), 0.0);
    for e in &program.layout.entries {
        let (mut diff, mut norm) = (0.0f64, 0.0f64);
        for i in e.range() {
            assert!(got[i].is_finite(), "{} has a non-finite gradient", e.name);
            diff += ((got[i] - want[i]) as f64).powi(2);
            norm += (want[i] as f64).powi(2);
        }
        let err = diff.sqrt() / norm.sqrt().max(1e-12);
        if err > worst.1 {
            worst = (e.name.clone(), err);
        }
    }
    worst
}

#[test]
fn gpu_and_cpu_gradients_agree_for_every_variant_and_precision() {
    let ctx = gpu();
    // The MLP only: in a transformer the first attention's pre gradients nearly cancel over the
    // positions (f32 on the CPU is itself 3% off float64 there), so a per-tensor relative error
    // says nothing; tests/transformer.rs judges the GPU transformer against float64 autograd.
    let shape = SHAPES[0];
    for kind in KINDS {
        for (precision, tolerance) in [("f32", 1e-4), ("f16", 2e-3)] {
            let config = shaped(kind, &format!("{shape}&precision={precision}"));
            let program = Program::new(&config, kind, 0).unwrap();
            let params = perturbed_params(&config, kind);
            let (x, y) = Dataset::new(&config).batch(3, config.batch as usize);
            let (cpu_loss, cpu) = pollster::block_on(loss_and_gradients(&config, None, &params, &x, &y)).unwrap();
            assert!(cpu_loss.is_finite());
            // Both granularities: one fused dispatch per block, and the op per kernel list.
            for kernels in [Kernels::Fused, Kernels::Unfused] {
                let (gpu_loss, gpu) = pollster::block_on(loss_and_gradients_with(&config, Some(&ctx), &params, &x, &y, kernels)).unwrap();
                assert!(
                    (cpu_loss - gpu_loss).abs() <= 1e-5 * cpu_loss.abs(),
                    "{kind:?} {precision} {kernels:?}: loss cpu {cpu_loss} gpu {gpu_loss}"
                );
                let (name, err) = worst_tensor_error(&program, &gpu, &cpu);
                assert!(err <= tolerance, "{kind:?} {precision} {kernels:?}: {name} differs by {err:.2e} (tolerance {tolerance:e})");
            }
        }
    }
}

#[test]
fn fused_and_unfused_kernels_give_the_same_gradients_on_the_cpu() {
    for (kind, shape) in KINDS.iter().flat_map(|&kind| SHAPES.map(|shape| (kind, shape))) {
        let config = shaped(kind, shape);
        let params = perturbed_params(&config, kind);
        let (x, y) = Dataset::new(&config).batch(2, config.batch as usize);
        let run = |kernels: Kernels| pollster::block_on(loss_and_gradients_with(&config, None, &params, &x, &y, kernels)).unwrap();
        // On the CPU the fused ops run as their unfused twin, and the batched weight gradients
        // sum each block's rows in the same order: bit for bit the same.
        let (fused_loss, fused) = run(Kernels::Fused);
        let (unfused_loss, unfused) = run(Kernels::Unfused);
        assert_eq!(fused_loss.to_bits(), unfused_loss.to_bits(), "{kind:?} {shape}");
        assert!(fused.iter().zip(&unfused).all(|(a, b)| a.to_bits() == b.to_bits()), "{kind:?} {shape}: CPU gradients differ");
    }
}

#[test]
fn at_initialisation_hc_and_mhc_give_the_residual_loss() {
    for streams in [1, 4] {
        let base = small(ResidualKind::Residual, &format!("streams={streams}&sinkhorn_iters=20"));
        let (x, y) = Dataset::new(&base).batch(0, base.batch as usize);
        let loss = |kind: ResidualKind| {
            let config = Config { modes: vec![kind], ..base.clone() };
            let params = Program::new(&config, kind, 0).unwrap().layout.initial_values(config.seed);
            pollster::block_on(loss_and_gradients(&config, None, &params, &x, &y)).unwrap().0
        };
        let (residual, hc, mhc) = (loss(ResidualKind::Residual), loss(ResidualKind::Hc), loss(ResidualKind::Mhc));
        if streams == 1 {
            // One stream: the coefficients are exactly 1, so the arithmetic is identical.
            assert_eq!(hc, residual, "hc vs residual with one stream");
        }
        // n streams: the collapse sums n equal streams, which only the 1e-6 inside rms notices.
        assert!((hc - residual).abs() <= 1e-6 * residual, "streams={streams}: hc {hc} residual {residual}");
        // mHC: the norm absorbs H_pre's scale, rows of H_res sum to 1 and H_post = 1.
        assert!((mhc - residual).abs() <= 1e-5 * residual, "streams={streams}: mhc {mhc} residual {residual}");
    }
}

/// Train a config for `steps` steps and return each variant's loss at every step.
fn loss_curves(config: &Config, gpu: bool, steps: u64) -> Vec<(ResidualKind, Vec<f32>)> {
    let ctx = if gpu { Some(common::gpu()) } else { None };
    let mut trainer = Trainer::new(config, ctx).unwrap();
    let mut curves: Vec<(ResidualKind, Vec<f32>)> = config.modes.iter().map(|&k| (k, Vec::new())).collect();
    for _ in 0..steps {
        trainer.submit_step(false);
        for m in pollster::block_on(trainer.read_metrics()).unwrap() {
            let curve = curves.iter_mut().find(|(k, _)| k.name() == m.mode).unwrap();
            curve.1.push(m.loss.expect("finite loss"));
        }
    }
    curves
}

const GOLDEN_CONFIG: &str = "task=spiral&depth=4&width=8&streams=2&ffn=2&batch=16&lr=0.01&seed=7&sinkhorn_iters=10";

/// Losses at steps 0, 5, .., 25 of GOLDEN_CONFIG on the CPU reference. Produced by running this
/// test with GOLDEN_PRINT=1 (`GOLDEN_PRINT=1 cargo test --test model golden -- --nocapture`)
/// and pasting the printed table; regenerate only for an intended change of the model's math.
const GOLDEN: [(ResidualKind, [f32; 6]); 3] = [
    (ResidualKind::Residual, [0.98816, 0.7125403, 0.5466745, 0.8533613, 0.6669498, 0.6698794]),
    (ResidualKind::Hc, [0.9881608, 0.7266714, 0.54381496, 0.84429896, 0.6784786, 0.6775825]),
    (ResidualKind::Mhc, [0.98816234, 0.714482, 0.5465105, 0.852972, 0.6671407, 0.66982055]),
];

#[test]
fn golden_loss_curves_on_cpu_and_gpu() {
    let (config, notices) = Config::from_query(GOLDEN_CONFIG);
    assert!(notices.is_empty());
    let cpu = loss_curves(&config, false, 26);
    if std::env::var_os("GOLDEN_PRINT").is_some() {
        for (kind, curve) in &cpu {
            let picked: Vec<String> = (0..6).map(|i| format!("{:?}", curve[i * 5])).collect();
            println!("(ResidualKind::{kind:?}, [{}]),", picked.join(", "));
        }
    }
    for ((kind, curve), (golden_kind, golden)) in cpu.iter().zip(GOLDEN) {
        assert_eq!(*kind, golden_kind);
        for (i, &want) in golden.iter().enumerate() {
            let got = curve[i * 5];
            assert!((got - want).abs() <= 1e-5 * want.abs(), "{kind:?} step {}: loss {got} (golden {want})", i * 5);
        }
    }
    let gpu = loss_curves(&config, true, 26);
    for ((kind, c), (_, g)) in cpu.iter().zip(&gpu) {
        for (step, (a, b)) in c.iter().zip(g).enumerate() {
            assert!((a - b).abs() <= 2e-4 * a.abs(), "{kind:?} step {step}: cpu {a} gpu {b}");
        }
    }
}

#[test]
fn decision_surface_probe_agrees_on_cpu_and_gpu() {
    let (config, _) = Config::from_query("task=xor&depth=2&width=8&streams=2&batch=100&modes=residual,mhc");
    let mut surfaces = Vec::new();
    for ctx in [None, Some(gpu())] {
        let mut trainer = Trainer::new(&config, ctx).unwrap();
        for _ in 0..5 {
            trainer.submit_step(false);
        }
        trainer.submit_probe();
        let p = pollster::block_on(trainer.read_probe(ResidualKind::Mhc)).unwrap();
        assert_eq!(p.len(), mhc_playground::program::PROBE_GRID.pow(2));
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        surfaces.push(p);
    }
    common::assert_close("probe cpu vs gpu", &surfaces[1], &surfaces[0], 1e-4, 1e-3);
    // Not constant: the surface depends on where the point is.
    let (lo, hi) = surfaces[0].iter().fold((1.0f32, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert!(hi - lo > 1e-3, "surface is flat: {lo}..{hi}");
}

#[test]
fn evaluation_runs_the_test_set_at_once_and_equals_batch_sized_forwards() {
    for kind in KINDS {
        let config = small(kind, "batch=7");
        let data = Dataset::new(&config);
        let program = Program::new(&config, kind, data.n_test()).unwrap();
        let rows = program.plan.test_rows as usize;
        assert!(rows > 100 && program.plan.eval.rows as usize >= rows, "{kind:?}: {rows} test rows, {} at once", program.plan.eval.rows);
        // One chunk: embed, expand, the blocks, collapse, norm, head, loss, two sums, one zeroing.
        assert!(program.eval.len() <= config.depth as usize + 10, "{kind:?}: {} eval ops", program.eval.len());
        let params = perturbed_params(&config, kind);
        let initial: Vec<f64> = program.initial_arena(&params, &data.test_x, &data.test_y).iter().map(|&v| v as f64).collect();
        let mut evaluated = initial.clone();
        program.eval.iter().for_each(|op| run_op(&mut evaluated, op));
        let metrics = program.plan.metrics as usize;
        let test_loss = evaluated[metrics + slot::TEST_LOSS as usize];
        // The same rows through the training forward, `batch` rows at a time.
        let (b, d_in) = (program.batch, config.d_in());
        let mut total = 0.0;
        for start in (0..rows).step_by(b) {
            let mut arena = initial.clone();
            let chunk = b.min(rows - start);
            for r in 0..b {
                let row = start + r.min(chunk - 1);
                for i in 0..d_in {
                    arena[program.plan.batch_x as usize + r * d_in + i] = data.test_x[row * d_in + i] as f64;
                }
                arena[program.plan.batch_y as usize + r] = data.test_y[row] as f64;
            }
            program.forward.iter().for_each(|op| run_op(&mut arena, op));
            total += arena[program.plan.train.loss_rows as usize..][..chunk].iter().sum::<f64>();
        }
        let want = total / rows as f64;
        // The eval list scales each sum by 1/rows held as an f32 (a relative 6e-8 at most).
        assert!((test_loss - want).abs() <= 1e-7 * want.abs(), "{kind:?}: eval {test_loss} vs batched {want}");
    }
}

#[test]
fn test_metrics_agree_on_cpu_and_gpu_for_every_variant() {
    // Depth 3: evaluation's streams end in the second of its two buffers; batch 10 is far below
    // the test set, which evaluation runs at once whatever the batch.
    let (config, notices) = Config::from_query("task=circles&depth=3&width=8&streams=3&batch=10&seed=3");
    assert!(notices.is_empty(), "{notices:?}");
    let mut runs = Vec::new();
    for ctx in [None, Some(gpu())] {
        let mut trainer = Trainer::new(&config, ctx).unwrap();
        for _ in 0..3 {
            trainer.submit_step(false);
        }
        // Step 0 evaluated (eval_every divides it); step 2 did not.
        trainer.next_step = 0;
        trainer.submit_step(false);
        runs.push(pollster::block_on(trainer.read_metrics()).unwrap());
    }
    let test_rows = Dataset::new(&config).n_test() as f32;
    for (cpu, gpu) in runs[0].iter().zip(&runs[1]) {
        let (c, g) = (cpu.test_loss.expect("evaluated"), gpu.test_loss.expect("evaluated"));
        assert!((c - g).abs() <= 1e-5 * c.abs(), "{}: test loss cpu {c} gpu {g}", cpu.mode);
        // A row on the decision boundary may flip: at most one.
        let (c, g) = (cpu.test_acc.unwrap(), gpu.test_acc.unwrap());
        assert!((c - g).abs() <= 1.0 / test_rows + 1e-6, "{}: test accuracy cpu {c} gpu {g}", cpu.mode);
    }
    assert_eq!(runs[0].len(), 3);
}

/// Steps that wait for one submit (gpu/steps.rs) train exactly as steps submitted one by one:
/// each copies its own batch and step scalars in, in order. A read or a write goes after them.
#[test]
fn steps_that_share_a_submit_train_exactly_as_steps_submitted_one_by_one() {
    let gpu = gpu();
    let (config, notices) = Config::from_query("depth=2&width=8&streams=2&batch=6&sinkhorn_iters=3&task=spiral&eval_every=1000");
    assert!(notices.is_empty(), "{notices:?}");
    let steps = 10;
    let train = |per_submit: u32| {
        gpu.set_steps_per_submit(per_submit);
        let mut trainer = Trainer::new(&config, Some(gpu.clone())).unwrap();
        // Step 0 evaluates (eval_every): its metrics are due, so it is submitted at once; the
        // rest may wait.
        let before = trainer.counters().unwrap();
        for _ in 0..steps {
            trainer.submit_step(false);
        }
        let submits = trainer.counters().unwrap().submits - before.submits;
        let metrics = pollster::block_on(trainer.read_metrics()).unwrap();
        let params: Vec<Vec<f32>> = KINDS.iter().map(|&k| pollster::block_on(trainer.variant(k).unwrap().params()).unwrap()).collect();
        (submits, metrics, params, trainer)
    };
    let (one_by_one, want_metrics, want_params, _) = train(1);
    assert_eq!(one_by_one, steps);
    // The steps one by one train as the CPU backend does (so a slip that spoils every step's
    // inputs alike cannot hide in the comparison below).
    let mut cpu = Trainer::new(&config, None).unwrap();
    for _ in 0..steps {
        cpu.submit_step(false);
    }
    for (got, want) in want_metrics.iter().zip(pollster::block_on(cpu.read_metrics()).unwrap()) {
        let (got, want) = (got.loss.unwrap(), want.loss.unwrap());
        assert!(got.is_finite() && (got - want).abs() <= 1e-4 * want.abs(), "GPU loss {got} against the CPU's {want}");
    }
    for per_submit in [4, 16] {
        let (submits, metrics, params, mut trainer) = train(per_submit);
        // Step 0 alone, then groups of 4 (steps 1-4, 5-8; step 9 still waits), or none yet of 16.
        assert_eq!(submits, if per_submit == 4 { 3 } else { 1 }, "{per_submit} steps per submit");
        for (got, want) in metrics.iter().zip(&want_metrics) {
            assert_eq!(got.loss.map(f32::to_bits), want.loss.map(f32::to_bits), "{per_submit} steps per submit: {} loss", got.mode);
        }
        for ((got, want), kind) in params.iter().zip(&want_params).zip(KINDS) {
            assert!(got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits()), "{per_submit} steps per submit: {kind:?} params differ");
        }
        // Weights loaded while steps wait land after them.
        let loaded: Vec<f32> = want_params[2].iter().map(|v| v * 0.5).collect();
        trainer.submit_step(false);
        trainer.submit_step(false);
        trainer.load_params(ResidualKind::Mhc, &loaded).unwrap();
        let now = pollster::block_on(trainer.variant(ResidualKind::Mhc).unwrap().params()).unwrap();
        assert!(now.iter().zip(&loaded).all(|(a, b)| a.to_bits() == b.to_bits()), "{per_submit}: the load went before the waiting steps");
    }
    gpu.set_steps_per_submit(mhc_playground::gpu::STEPS_PER_SUBMIT);
}
