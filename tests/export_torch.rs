//! The PyTorch bridge as a user drives it: `export-torch` writes a folder whose `train.py`, run by
//! real PyTorch on the CPU, reproduces the engine (losses of the first 20 steps, step-0
//! gradients), gives the same losses under `torchrun` with two ranks, regenerates the same data
//! and batches, and saves checkpoints the engine continues from.

use mhc_playground::checkpoint::TensorFile;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{python, run, runner, s, scratch};

fn script(dir: &Path, args: &[&str]) -> Output {
    let train = dir.join("train.py");
    let mut all = vec![s(&train)];
    all.extend_from_slice(args);
    run(&python(), &all)
}

fn export(config: &str, dir: &Path) -> PathBuf {
    let out = dir.join("export");
    runner(&["export-torch", "--config", config, "--out", s(&out), "--zip"]);
    out
}

/// (step, mode) -> row, from a metrics file.
fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Worst relative difference of `key` between two metrics files with the same rows.
fn worst_relative(a: &[Value], b: &[Value], key: &str) -> f64 {
    assert_eq!(a.len(), b.len(), "row counts");
    let mut worst = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        assert_eq!((&x["step"], &x["mode"]), (&y["step"], &y["mode"]), "rows in the same order");
        match (x[key].as_f64(), y[key].as_f64()) {
            (Some(u), Some(v)) => worst = worst.max((u - v).abs() / v.abs().max(1e-30)),
            (u, v) => assert_eq!(u, v, "{key} at step {} of {}: one is null", x["step"], x["mode"]),
        }
    }
    worst
}

fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = TensorFile::parse(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    names.into_iter().map(|n| (n.clone(), file.f32(&n, None).unwrap().1)).collect()
}

#[test]
fn the_script_reproduces_the_engines_losses_and_gradients() {
    let dir = scratch("parity");
    let (mut worst_loss, mut worst_gradient) = (0f64, (0f64, String::new()));
    for config in [
        "task=spiral&depth=3&width=16&ffn=2&batch=32&streams=4&eval_every=5",
        "task=teacher&depth=2&width=12&batch=20&streams=3&precision=f16&act=relu&sinkhorn_iters=7",
        "task=modadd&p=7&depth=2&width=8&batch=16&optimizer=sgd&act=tanh&wd=0.1&clip=0.5&warmup=5",
        // The transformer: every position of the text scored; the sum's digits only. In f32: with
        // f16 streams a value within f32 rounding of an f16 boundary rounds one way here and the
        // other way there (summation order), which moves tiny gradients by 1e-4 of their norm;
        // the f16 path itself (RoundToF16) is the MLP's, checked by the teacher config above.
        "task=text&depth=2&width=16&ctx=8&batch=4&heads=2&streams=3&eval_every=5&lr=0.01&wd=0.05&sinkhorn_iters=7",
        "task=add&depth=2&width=12&ctx=9&batch=6&heads=3&lr=0.01&seed=3",
    ] {
        let ex = export(config, &dir);
        let (ours, theirs) = (dir.join("engine.jsonl"), dir.join("torch.jsonl"));
        runner(&["train", "--config", config, "--steps", "20", "--log-every", "1", "--backend", "cpu", "--quiet", "--metrics", s(&ours)]);
        script(&ex, &["--steps", "20", "--log-every", "1", "--device", "cpu", "--metrics", s(&theirs)]);
        let (ours, theirs) = (rows(&ours), rows(&theirs));
        assert_eq!(ours.len(), 60, "{config}: 20 steps of three variants");
        for key in ["loss", "test_loss"] {
            let worst = worst_relative(&theirs, &ours, key);
            assert!(worst <= 1e-4, "{config}: {key} differs by {worst:.2e} relative");
            worst_loss = worst_loss.max(worst);
        }
        // The schema is the playground's: the same fields, the same steps logged.
        let fields = |row: &Value| row.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(fields(&ours[0]), fields(&theirs[0]));

        // Step 0's gradients of every variant against `mhc-playground grad`.
        let batch = dir.join("batch.safetensors");
        let grads_prefix = dir.join("torch-grads");
        script(&ex, &["--grads", s(&grads_prefix), "--device", "cpu"]);
        for mode in ["residual", "hc", "mhc"] {
            let single = format!("{config}&modes={mode}");
            runner(&["batch", "--config", &single, "--step", "0", "--out", s(&batch)]);
            let engine = dir.join(format!("engine-grads-{mode}.safetensors"));
            let init = ex.join(format!("init.{mode}.safetensors"));
            runner(&["grad", "--config", &single, "--weights", s(&init), "--batch", s(&batch), "--out", s(&engine), "--backend", "cpu"]);
            let (want, got) = (tensors(&engine), tensors(&dir.join(format!("torch-grads.{mode}.safetensors"))));
            assert_eq!(want.iter().map(|t| &t.0).collect::<Vec<_>>(), got.iter().map(|t| &t.0).collect::<Vec<_>>(), "{mode}: names");
            // tests/autograd_reference.py's measure: each tensor's error norm relative to its own
            // norm, floored at 1e-3 of the whole gradient's norm per tensor (a tensor that is
            // nearly zero by cancellation carries only rounding noise).
            let norm = |v: &[f32]| v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
            let total = want.iter().filter(|t| t.0 != "loss").map(|t| norm(&t.1).powi(2)).sum::<f64>().sqrt();
            let floor = 1e-3 * total / (want.len() as f64 - 1.0).sqrt();
            for ((name, w), (_, g)) in want.iter().zip(&got) {
                let diff: Vec<f32> = w.iter().zip(g).map(|(a, b)| a - b).collect();
                let err = norm(&diff) / if name == "loss" { norm(w) } else { norm(w).max(floor) };
                assert!(err <= 1e-4, "{config} {mode} {name}: relative error {err:.2e} (norm {:.3e})", norm(w));
                if err > worst_gradient.0 {
                    worst_gradient = (err, format!("{mode} {name} of {config}"));
                }
            }
        }
    }
    eprintln!(
        "PyTorch against the engine: losses within {worst_loss:.2e}, step-0 gradients within {:.2e} ({})",
        worst_gradient.0, worst_gradient.1
    );
}

#[test]
fn torchrun_with_two_ranks_gives_the_losses_of_one_process() {
    let dir = scratch("ddp");
    // 30 rows: the ranks hold 15 each; the test set (500 rows) is split too.
    let ex = export("task=circles&depth=3&width=16&batch=30&eval_every=5", &dir);
    let (one, two) = (dir.join("one.jsonl"), dir.join("two.jsonl"));
    script(&ex, &["--steps", "20", "--device", "cpu", "--metrics", s(&one)]);
    let train = ex.join("train.py");
    let one = rows(&one);
    assert!(!one.is_empty());
    // DistributedDataParallel, then FSDP2 (every block's parameters sharded over the ranks).
    for (flags, port) in [(vec![], "29517"), (vec!["--fsdp"], "29518")] {
        let port = format!("--master_port={port}");
        let mut args = vec!["-m", "torch.distributed.run", "--nproc_per_node=2", &port, s(&train), "--steps", "20", "--device", "cpu"];
        args.extend(flags.iter().copied());
        args.extend(["--metrics", s(&two)]);
        let out = run(&python(), &args);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("x 2 ranks"), "ran on two ranks: {said}");
        assert_eq!(said.contains("FSDP2: rank 0 holds"), !flags.is_empty(), "{said}");
        let two = rows(&two);
        for key in ["loss", "test_loss", "acc", "gain_fwd"] {
            let worst = worst_relative(&two, &one, key);
            assert!(worst <= 1e-5, "{flags:?} {key}: two ranks differ from one process by {worst:.2e}");
            eprintln!("torchrun {flags:?}, two ranks against one process: {key} within {worst:.2e}");
        }
    }
}

#[test]
fn a_script_checkpoint_continues_in_the_engine_and_loads_as_a_checkpoint() {
    let dir = scratch("ckpt");
    let config = "task=xor&depth=2&width=8&batch=16&streams=2";
    let ex = export(config, &dir);
    let prefix = dir.join("run");
    script(&ex, &["--steps", "10", "--device", "cpu", "--save", s(&prefix)]);
    for mode in ["residual", "hc", "mhc"] {
        let ckpt = dir.join(format!("run.{mode}.safetensors"));
        // The checkpoint names its experiment as the playground does.
        let bytes = std::fs::read(&ckpt).unwrap();
        let (ckpt_config, _) = TensorFile::parse(&bytes).unwrap().experiment().unwrap();
        assert_eq!(ckpt_config.modes.iter().map(|m| m.name()).collect::<Vec<_>>(), [mode]);
        assert_eq!((ckpt_config.depth, ckpt_config.width, ckpt_config.streams), (2, 8, 2));
        // Both continue from it for 10 more steps to the same losses.
        let single = format!("{config}&modes={mode}");
        let (ours, theirs) = (dir.join(format!("e-{mode}.jsonl")), dir.join(format!("t-{mode}.jsonl")));
        runner(&[
            "train",
            "--config",
            &single,
            "--init",
            s(&ckpt),
            "--steps",
            "10",
            "--log-every",
            "1",
            "--backend",
            "cpu",
            "--quiet",
            "--metrics",
            s(&ours),
        ]);
        script(
            &ex,
            &[
                "--set",
                &format!("modes={mode}"),
                "--init",
                s(&ckpt),
                "--steps",
                "10",
                "--log-every",
                "1",
                "--device",
                "cpu",
                "--metrics",
                s(&theirs),
            ],
        );
        let (ours, theirs) = (rows(&ours), rows(&theirs));
        assert_eq!(ours.len(), 10);
        let worst = worst_relative(&theirs, &ours, "loss");
        assert!(worst <= 1e-4, "{mode}: continued losses differ by {worst:.2e}");
        // And not the fresh start's losses: the checkpoint was really loaded.
        let fresh = dir.join("fresh.jsonl");
        runner(&["train", "--config", &single, "--steps", "1", "--backend", "cpu", "--quiet", "--metrics", s(&fresh)]);
        assert_ne!(rows(&fresh)[0]["loss"], ours[0]["loss"]);
    }
}

#[test]
fn the_data_and_batches_are_the_playgrounds() {
    let dir = scratch("data");
    for config in [
        "task=spiral&noise=0.3",
        "task=circles",
        "task=xor",
        "task=gauss&noise=0.2&train_frac=0.7",
        "task=teacher",
        "task=modadd&p=11&train_frac=0.3",
    ] {
        let ex = export(&format!("{config}&depth=1&width=4&batch=9"), &dir);
        for step in [0, 7] {
            runner(&[
                "batch",
                "--config",
                &format!("{config}&depth=1&width=4&batch=9&modes=mhc"),
                "--step",
                &step.to_string(),
                "--out",
                s(&dir.join(format!("b{step}.safetensors"))),
            ]);
        }
        // The script's ports, driven directly: its own generators rebuild the exported data bit
        // for bit, and its batches are the runner's `batch` output.
        let check = format!(
            r#"
import sys, json, torch
sys.path.insert(0, {ex:?})
import train
from safetensors.torch import load_file
cfg = train.Config(json.load(open({ex:?} + "/experiment.json")))
made, saved = train.make_data(cfg), train.Data.load({ex:?} + "/data.safetensors", cfg.seed)
for name in ("train_x", "train_y", "test_x", "test_y"):
    a, b = getattr(made, name), getattr(saved, name)
    assert a.shape == b.shape and torch.equal(a, b), name
for step in (0, 7):
    x, y = saved.batch(step, 9)
    want = load_file({dir:?} + "/b%d.safetensors" % step)
    assert torch.equal(x, want["x"]) and torch.equal(y, want["y"].long()), step
print("same")
"#,
            ex = s(&ex),
            dir = s(&dir)
        );
        let out = run(&python(), &["-c", &check]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "same", "{config}");
    }
    // The token tasks: the script cuts the text's splits and draws its windows, or makes the
    // digit puzzles, exactly as the playground does.
    for config in ["task=text&ctx=8", "task=reverse&ctx=9", "task=sort&ctx=12", "task=add&ctx=12"] {
        let config = format!("{config}&depth=1&width=4&heads=1&batch=5");
        let ex = export(&config, &dir);
        for step in [0, 7] {
            let out = dir.join(format!("b{step}.safetensors"));
            runner(&["batch", "--config", &format!("{config}&modes=mhc"), "--step", &step.to_string(), "--out", s(&out)]);
        }
        let check = format!(
            r#"
import sys, json, torch
sys.path.insert(0, {ex:?})
import train
from safetensors.torch import load_file
cfg = train.Config(json.load(open({ex:?} + "/experiment.json")))
shipped = load_file({ex:?} + "/data.safetensors")
data = train.TokenData(cfg, shipped["text_tokens"].long())
assert torch.equal(data.test_x, shipped["test_x"].long()) and torch.equal(data.test_y, shipped["test_y"].long())
for step in (0, 7):
    x, y = data.batch(step, 5)
    want = load_file({dir:?} + "/b%d.safetensors" % step)
    assert torch.equal(x, want["x"].long()) and torch.equal(y, want["y"].long()), step
print("same")
"#,
            ex = s(&ex),
            dir = s(&dir)
        );
        let out = run(&python(), &["-c", &check]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "same", "{config}");
    }
}

#[test]
fn the_zip_holds_the_folder_and_bad_keys_get_clear_errors() {
    let dir = scratch("zip");
    let ex = export("depth=2&width=8&batch=8", &dir);
    let zip = ex.with_extension("zip");
    let check = format!(
        r#"
import zipfile, os
z = zipfile.ZipFile({zip:?})
assert z.testzip() is None
names = z.namelist()
assert sorted(names) == sorted(os.listdir({ex:?})), names
assert all(z.read(n) == open(os.path.join({ex:?}, n), "rb").read() for n in names)
print(len(names))
"#,
        zip = s(&zip),
        ex = s(&ex)
    );
    assert_eq!(String::from_utf8_lossy(&run(&python(), &["-c", &check]).stdout).trim(), "7");

    // Shapes changed by --set: fresh weights, said so, and training works.
    let out = script(&ex, &["--set", "depth=3", "--set", "width=12", "--steps", "3", "--device", "cpu"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("torch's generator"), "{said}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 steps in"));
    // Bad keys and values: one clear line, no traceback.
    for (set, expect) in [("bogus=1", "unknown key 'bogus'"), ("lr=abc", "lr=abc: not a number"), ("act=swish", "must be one of")] {
        let train = ex.join("train.py");
        let out = Command::new(python()).args([s(&train), "--set", set, "--steps", "1"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(expect) && !err.contains("Traceback"), "{set}: {err}");
    }
}

#[test]
fn divergence_is_found_at_the_same_step_and_block() {
    // HC's mixing scaled up 8x per block with f16 streams: the streams pass f16's largest value
    // within a few blocks at step 0. Both sides start from the same weights, so both must stop
    // HC at step 0 in the same block, with one last row.
    let dir = scratch("diverge");
    let config = "task=teacher&depth=8&width=8&batch=8&streams=2&precision=f16&modes=hc";
    let ex = export(config, &dir);
    let blown = dir.join("blown.safetensors");
    let scale = format!(
        r#"
from safetensors import safe_open
from safetensors.torch import save_file
with safe_open({src:?}, "pt") as f:
    t = {{k: f.get_tensor(k) for k in f.keys()}}
    meta = f.metadata()
for k in t:
    if k.endswith("hc.b_res"):
        t[k] = t[k] * 8
save_file(t, {dst:?}, metadata=meta)
"#,
        src = s(&ex.join("init.hc.safetensors")),
        dst = s(&blown)
    );
    run(&python(), &["-c", &scale]);
    let (ours, theirs) = (dir.join("e.jsonl"), dir.join("t.jsonl"));
    runner(&[
        "train",
        "--config",
        config,
        "--init",
        s(&blown),
        "--steps",
        "5",
        "--log-every",
        "1",
        "--backend",
        "cpu",
        "--quiet",
        "--metrics",
        s(&ours),
    ]);
    let out = script(&ex, &["--init", s(&blown), "--steps", "5", "--log-every", "1", "--device", "cpu", "--metrics", s(&theirs)]);
    let (ours, theirs) = (rows(&ours), rows(&theirs));
    let divergence =
        |rows: &[Value]| rows.iter().find(|r| !r["diverged_at"].is_null()).map(|r| (r["diverged_at"].clone(), r["diverged_block"].clone()));
    let found = divergence(&ours).expect("the engine finds the divergence");
    assert_eq!(found.0, 0, "at step 0");
    assert!(found.1.as_u64().unwrap() < 8, "in a block: {found:?}");
    assert_eq!(divergence(&theirs), Some(found.clone()), "the script finds the same step and block");
    eprintln!("HC diverged at step {} in block {} in both", found.0, found.1);
    assert_eq!((ours.len(), theirs.len()), (1, 1), "HC stops at its divergence row");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("hc diverged at step 0 in block {}", found.1)));
}
