//! The runner as a user drives it: train/batch/grad/bench, checkpoints, metrics files, and
//! clear one-line errors for bad input. `grad` on both backends is checked against an
//! independent autograd of DESIGN.md section 1 (tests/autograd_reference.py, float64).

use std::process::{Command, Output};

mod common;

use common::{attempt, runner as ok, s, scratch};

#[test]
fn grad_matches_an_independent_autograd_on_both_backends() {
    let python = common::python();
    let dir = scratch("grad");
    for (kind, extra) in [
        ("residual", "act=relu"),
        ("hc", "act=gelu"),
        ("mhc", "act=tanh"),
        ("hc", "precision=f16"),
        ("mhc", "precision=f16&sinkhorn_eps=0.001"),
    ] {
        let config = format!("task=teacher&depth=3&width=8&streams=3&ffn=2&batch=6&sinkhorn_iters=7&lr=0.03&modes={kind}&{extra}");
        let weights = dir.join(format!("{kind}.safetensors"));
        let batch = dir.join("batch.safetensors");
        // A few steps first, so the dynamic hyper-connection weights are no longer zero.
        ok(&["train", "--config", &config, "--steps", "5", "--backend", "cpu", "--quiet", "--save", s(&weights)]);
        ok(&["batch", "--config", &config, "--step", "11", "--out", s(&batch)]);
        for backend in ["gpu", "cpu"] {
            let grads = dir.join(format!("grads-{kind}-{backend}.safetensors"));
            ok(&["grad", "--config", &config, "--weights", s(&weights), "--batch", s(&batch), "--out", s(&grads), "--backend", backend]);
            let check = Command::new(&python)
                .args([
                    "tests/autograd_reference.py",
                    "--weights",
                    s(&weights),
                    "--batch",
                    s(&batch),
                    "--grads",
                    s(&grads),
                    "--tol",
                    "2e-3",
                ])
                .output()
                .unwrap_or_else(|e| {
                    panic!("cannot run {python} (the README's set-up installs python3 with numpy, autograd, safetensors): {e}")
                });
            let report = String::from_utf8_lossy(&check.stdout);
            assert!(
                check.status.success(),
                "{kind} {extra} on {backend}: autograd reference disagrees:\n{report}\n{}",
                String::from_utf8_lossy(&check.stderr)
            );
            assert!(report.lines().last().unwrap_or("").starts_with("PASS"), "{report}");
        }
    }
}

#[test]
fn train_writes_metrics_and_checkpoints_that_init_accepts() {
    let dir = scratch("train");
    let config = "depth=2&width=8&streams=2&batch=8&eval_every=4";
    let jsonl = dir.join("m.jsonl");
    let out = ok(&[
        "train",
        "--config",
        config,
        "--steps",
        "6",
        "--log-every",
        "2",
        "--metrics",
        s(&jsonl),
        "--save",
        s(&dir.join("w.safetensors")),
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    for mode in ["residual", "hc", "mhc"] {
        assert!(table.lines().any(|l| l.starts_with(mode)), "summary lists {mode}:\n{table}");
        assert!(dir.join(format!("w.{mode}.safetensors")).exists(), "one checkpoint per variant");
    }
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Logged steps 0, 2, 4 (eval), 5 (last) for three variants.
    assert_eq!(rows.len(), 12, "{rows:?}");
    for key in [
        "step",
        "mode",
        "loss",
        "acc",
        "test_loss",
        "test_acc",
        "grad_norm",
        "grad_norm_blocks",
        "stream_rms",
        "gain_fwd",
        "gain_bwd",
        "gain_fwd_blocks",
        "gain_bwd_blocks",
        "ds_err_row",
        "ds_err_col",
        "diverged_at",
    ] {
        assert!(rows.iter().all(|r| r.get(key).is_some()), "every row has {key}");
    }
    let row = |step: u64, mode: &str| rows.iter().find(|r| r["step"] == step && r["mode"] == mode).unwrap();
    assert!(row(4, "mhc")["test_loss"].as_f64().unwrap() > 0.0, "evaluated at step 4");
    assert!(row(2, "mhc")["test_loss"].is_null(), "no evaluation at step 2");
    assert!(row(2, "mhc")["ds_err_row"].as_f64().unwrap() < 1e-3);
    assert!(row(2, "hc")["ds_err_row"].is_null(), "doubly-stochastic error is mHC's only");
    assert_eq!(row(2, "residual")["grad_norm_blocks"].as_array().unwrap().len(), 2);

    let csv = dir.join("m.csv");
    ok(&["train", "--config", config, "--steps", "3", "--quiet", "--metrics", s(&csv)]);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("step,mode,loss,acc,test_loss"));
    assert_eq!(text.lines().count(), 1 + 2 * 3);

    // --steps 0 --save writes the initial weights; --init reads them back unchanged.
    let single = format!("{config}&modes=mhc");
    let init = dir.join("init.safetensors");
    let again = dir.join("again.safetensors");
    ok(&["train", "--config", &single, "--steps", "0", "--save", s(&init)]);
    ok(&["train", "--config", &single, "--steps", "0", "--init", s(&init), "--save", s(&again)]);
    assert_eq!(std::fs::read(&init).unwrap(), std::fs::read(&again).unwrap());
    // Resuming trains from the checkpoint's weights (a different start gives a different loss).
    let trained = dir.join("trained.safetensors");
    ok(&["train", "--config", &single, "--steps", "20", "--quiet", "--save", s(&trained), "--backend", "cpu"]);
    // The loss table only: the timing line differs from run to run anyway.
    let table = |o: Output| String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.starts_with("mhc")).collect::<Vec<_>>().join("\n");
    let from_init = table(ok(&["train", "--config", &single, "--steps", "1", "--backend", "cpu"]));
    let again = table(ok(&["train", "--config", &single, "--steps", "1", "--backend", "cpu"]));
    let from_trained = table(ok(&["train", "--config", &single, "--steps", "1", "--init", s(&trained), "--backend", "cpu"]));
    assert_eq!(from_init, again, "the same run gives the same table");
    assert!(!from_init.is_empty());
    assert_ne!(from_init, from_trained);
}

#[test]
fn a_shared_url_reproduces_the_same_run() {
    let url = "https://example.org/mhc/?v=1&seed=5&depth=2&width=8&streams=2&batch=8&modes=hc#view";
    let a = ok(&["train", "--config", url, "--steps", "4", "--backend", "cpu"]);
    let b = ok(&["train", "--config", "depth=2&width=8&streams=2&batch=8&modes=hc", "--set", "seed=5", "--steps", "4", "--backend", "cpu"]);
    let table =
        |o: &Output| String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.starts_with("hc")).map(String::from).collect::<Vec<_>>();
    assert_eq!(table(&a), table(&b));
    assert_eq!(table(&a).len(), 1);
}

#[test]
fn bad_input_gives_a_clear_message_and_a_nonzero_exit() {
    let dir = scratch("bad");
    let expect_error = |args: &[&str], needle: &str| {
        let out = attempt(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: stderr lacks {needle:?}:\n{err}");
        assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
        // Runner errors (exit 1; bad flags are clap's, exit 2) are one `error:` line and end with a `hint:` line.
        if out.status.code() == Some(1) {
            assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{args:?}:\n{err}");
            assert!(err.trim_end().lines().last().is_some_and(|l| l.starts_with("hint: ") && l.len() > 12), "{args:?}:\n{err}");
        }
    };
    expect_error(&["train", "--no-such-flag"], "--no-such-flag");
    expect_error(&["train", "--set", "depth=abc"], "depth");
    expect_error(&["train", "--set", "nonsense=1"], "nonsense");
    expect_error(
        &["grad", "--weights", "/nonexistent/w.safetensors", "--batch", "b", "--out", "o"],
        "cannot read /nonexistent/w.safetensors",
    );
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a checkpoint").unwrap();
    expect_error(&["train", "--config", "modes=mhc", "--init", s(&garbage), "--steps", "1"], "not a readable safetensors file");

    let config = "depth=2&width=8&streams=2&batch=4&modes=mhc";
    let weights = dir.join("w.safetensors");
    ok(&["train", "--config", config, "--steps", "0", "--save", s(&weights)]);
    expect_error(&["train", "--config", "depth=3&width=8&streams=2&modes=mhc", "--init", s(&weights), "--steps", "1"], "is missing");
    expect_error(&["train", "--config", "depth=2&width=12&streams=2&modes=mhc", "--init", s(&weights), "--steps", "1"], "has shape");
    expect_error(&["train", "--config", "depth=2&width=8&streams=2&modes=hc", "--init", s(&weights), "--steps", "1"], "not among modes");
    let batch = dir.join("b.safetensors");
    expect_error(&["batch", "--config", "depth=2", "--step", "0", "--out", s(&batch)], "one variant");
    ok(&["batch", "--config", "task=teacher&modes=mhc&batch=4", "--step", "0", "--out", s(&batch)]);
    expect_error(
        &["grad", "--config", config, "--weights", s(&weights), "--batch", s(&batch), "--out", s(&dir.join("g.safetensors"))],
        "expected [rows, 2]",
    );

    // Impossible sizes are refused before anything is allocated, naming the limit.
    expect_error(&["train", "--config", "depth=256&width=1024&batch=4096&streams=8&ffn=8", "--steps", "1"], "addressing limit");
    expect_error(&["train", "--config", "depth=64&width=512&batch=512", "--steps", "1", "--backend", "cpu"], "CPU backend's limit");
    // ... and the hint names a smaller experiment that fits, which then trains.
    let out = attempt(&["train", "--config", "depth=64&width=512&batch=512&modes=mhc", "--steps", "1", "--backend", "cpu"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let hint = err.lines().find_map(|l| l.strip_prefix("hint: this fits: ")).unwrap_or_else(|| panic!("{err}"));
    assert!(hint.starts_with("--set ") && hint.contains("batch="), "{hint}");
    let mut retry = vec!["train", "--config", "depth=64&width=512&batch=512&modes=mhc", "--steps", "0", "--backend", "cpu", "--quiet"];
    retry.extend(hint.split_whitespace());
    ok(&retry);

    // A hostile share link is reported in one line and still trains.
    let out = ok(&["train", "--config", "depth=1e9&lr=NaN&streams=0&%00=1&width=8&batch=4", "--steps", "1", "--backend", "cpu"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().filter(|l| l.starts_with("warning:")).count(), 1, "{err}");
    assert!(err.contains("depth") && err.contains("lr"), "{err}");
}

#[test]
fn no_adapter_is_one_clear_error_with_a_way_out() {
    // Only the Vulkan backend is compiled in; asking for Metal leaves no adapter at all.
    let out = Command::new(env!("CARGO_BIN_EXE_mhc-playground"))
        .args(["train", "--config", "depth=2&width=8&batch=4", "--steps", "1"])
        .env("WGPU_BACKEND", "metal")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error: no GPU adapter found"), "{err}");
    assert!(err.contains("hint:") && err.contains("--backend cpu"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bench_submits_every_step_when_asked() {
    let out = ok(&["bench", "--config", "depth=1&width=4&streams=2&batch=4&modes=mhc", "--steps", "5", "--steps-per-submit", "1"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["submits_per_step"].as_f64(), Some(1.0), "{report}");
    assert_eq!(report["steps_per_submit"], 1, "{report}");
    let refused = attempt(&["bench", "--steps-per-submit", "0"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("--steps-per-submit") && !err.contains("panicked"), "{err}");
}

#[test]
fn bench_prints_one_json_object() {
    let out = ok(&["bench", "--config", "depth=2&width=8&streams=2&batch=8", "--steps", "3", "--compare", "--per-kernel"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(report["steps_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(report["kernels"], "fused", "{report}");
    assert_eq!(report["other"]["kernels"], "unfused", "{report}");
    // Natively (lavapipe, or a real GPU) kernels load aligned operands four floats at a time.
    assert_eq!(report["arena_view"], "vec4s", "{report}");
    assert!(report["speedup_over_other"].as_f64().unwrap() > 0.0, "{report}");
    // The 3 timed steps wait for one submit (no metrics are due). Fused, per variant: forward
    // 6 + a block each; backward 10 + a block each + batched weight gradients 5 (7 with
    // hyper-connections); checks 5; optimiser 1. So 31 + 33 + 33 at depth 2. Unfused: a
    // dispatch per op, twice as many.
    assert_eq!(report["submits_per_step"].as_f64(), Some(1.0 / 3.0), "{report}");
    assert_eq!(report["steps_per_submit"], 4, "{report}");
    let fused = report["dispatches_per_step"].as_u64().unwrap();
    let unfused = report["other"]["dispatches_per_step"].as_u64().unwrap();
    assert!(fused == 97 && unfused > 2 * fused, "{fused} fused, {unfused} unfused dispatches: {report}");
    for mode in ["residual", "hc", "mhc"] {
        assert!(report["kernel_ms_per_step"][mode]["block_forward"].as_f64().unwrap() > 0.0, "{report}");
        // Every product runs the register kernel of the adapter's register block, timed by shape.
        let products = product_times(&report["other"]["kernel_ms_per_step"][mode]);
        assert!(!products.is_empty() && products.iter().all(|(_, _, ms)| *ms >= 0.0), "{report}");
        assert_register_kernels(&products, report["register_block"].as_str().unwrap_or(""));
        assert!(products.iter().any(|(_, shape, _)| shape == "8x32x8"), "fc1 forward: 8 rows, 32 outputs, 8 inputs: {products:?}");
        assert!(report["variant_ms_per_step"][mode].as_f64().unwrap() > 0.0, "{report}");
        assert!(report["arena_bytes"][mode].as_u64().unwrap() > 0, "{report}");
    }
}

/// Each product ran the register kernel `block` gives it: 4 x 4 blocks on a hardware adapter;
/// on a software one, 8 x 8 where that makes at least four workgroups of 64 blocks.
fn assert_register_kernels(products: &[(String, String, f64)], block: &str) {
    for (entry, shape, _) in products {
        // "MxNxK" or "MxNxK xBATCH".
        let (sides, batch) = shape.split_once(" x").unwrap_or((shape, "1"));
        let sides: Vec<u32> = sides.split('x').map(|v| v.parse().unwrap()).collect();
        let blocks = sides[0].div_ceil(8) * sides[1].div_ceil(8) * batch.parse::<u32>().unwrap();
        let want = match block {
            "8x8" if blocks >= 256 => "matmul_registers8",
            "8x8" | "4x4" => "matmul_registers",
            other => panic!("register_block {other:?}"),
        };
        assert_eq!(entry, want, "{shape} in {block} blocks: {products:?}");
    }
}

/// `(entry point, shape, ms)` of every product in a per-kernel report of one variant.
fn product_times(by_kernel: &serde_json::Value) -> Vec<(String, String, f64)> {
    let entries = by_kernel.as_object().into_iter().flatten();
    entries
        .filter(|(label, _)| label.starts_with("matmul"))
        .map(|(label, ms)| {
            let (entry, shape) = label.split_once(' ').unwrap_or((label, ""));
            (entry.to_string(), shape.to_string(), ms.as_f64().unwrap_or(f64::NAN))
        })
        .collect()
}

#[test]
fn bench_runs_every_product_with_the_chosen_matmul_kernel() {
    for (choice, entry) in
        [("tiled", "matmul"), ("direct", "matmul_direct"), ("registers", "matmul_registers"), ("registers8", "matmul_registers8")]
    {
        let out = ok(&[
            "bench",
            "--config",
            "depth=2&width=8&streams=2&batch=8&modes=hc",
            "--steps",
            "1",
            "--kernels",
            "unfused",
            "--per-kernel",
            "--matmul",
            choice,
        ]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["matmul"], choice, "{report}");
        let products = product_times(&report["kernel_ms_per_step"]["hc"]);
        assert!(!products.is_empty() && products.iter().all(|(e, _, _)| e == entry), "{choice}: {products:?}");
    }
    let out = attempt(&["bench", "--matmul", "cubic", "--steps", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("'cubic' is not a matmul kernel: registers, tiled, direct or registers8"), "{err}");
}

#[test]
fn bench_runs_with_another_adapters_tuning() {
    // SwiftShader in a browser gets floats, 4 threads a block workgroup, 8 x 8 blocks and a row
    // a stream item; a hardware GPU vec4s, 64, 4 x 4, quads and no rows shared through
    // subgroups. Either can be timed here.
    for (view, threads, block, items, subgroups) in [("floats", "4", "8x8", "rows", "on"), ("vec4s", "64", "4x4", "quads", "off")] {
        // The FFN's weight gradients are 512 blocks of 8 x 8, the others fewer than 256.
        let config = "depth=2&width=64&streams=2&batch=8&modes=mhc";
        let out = ok(&[
            "bench",
            "--config",
            config,
            "--steps",
            "1",
            "--per-kernel",
            "--arena-view",
            view,
            "--block-threads",
            threads,
            "--register-block",
            block,
            "--stream-items",
            items,
            "--subgroups",
            subgroups,
        ]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["subgroups"], (subgroups == "on"), "{report}");
        assert_eq!((report["arena_view"].as_str(), report["register_block"].as_str()), (Some(view), Some(block)), "{report}");
        assert_eq!(report["stream_items"].as_str(), Some(items), "{report}");
        assert_eq!(report["block_threads"].to_string(), threads, "{report}");
        let products = product_times(&report["kernel_ms_per_step"]["mhc"]);
        assert!(products.iter().any(|(_, shape, _)| shape == "256x64x8 x2"), "{products:?}");
        assert_register_kernels(&products, block);
        let wide = products.iter().filter(|(e, _, _)| e == "matmul_registers8").count();
        assert_eq!(wide > 0, block == "8x8", "{block}: {products:?}");
    }
    for (flag, value, message) in [
        ("--register-block", "16x16", "'16x16' is not a register block: 4x4 or 8x8"),
        ("--arena-view", "bytes", "'bytes' is not an arena view: vec4s or floats"),
        ("--block-threads", "0", "0 is not in 1..=256"),
        ("--stream-items", "cols", "'cols' is not a stream item: quads or rows"),
    ] {
        let out = attempt(&["bench", flag, value, "--steps", "1"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(message), "{err}");
    }
}

/// The rows of a sweep CSV as maps from column to text.
fn csv_rows(text: &str) -> (Vec<String>, Vec<std::collections::HashMap<String, String>>) {
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap_or_default().split(',').map(String::from).collect();
    let rows = lines.map(|line| header.iter().cloned().zip(line.split(',').map(String::from)).collect()).collect();
    (header, rows)
}

#[test]
fn sweep_writes_one_row_per_cell_and_variant_and_hc_grows_with_depth_while_mhc_stays_at_1() {
    let dir = scratch("sweep");
    let out = dir.join("sweep.csv");
    let config = "task=teacher&width=8&streams=4&batch=16&ffn=2&lr=0.03&seed=3";
    let run = ok(&["sweep", "--config", config, "--grid", "depth=2,8,32", "--steps", "40", "--out", s(&out), "--backend", "cpu"]);
    let progress = String::from_utf8_lossy(&run.stderr);
    assert_eq!(progress.lines().filter(|l| l.starts_with("cell ")).count(), 3, "{progress}");
    let (header, rows) = csv_rows(&std::fs::read_to_string(&out).unwrap());
    let documented =
        "depth,mode,final_loss,final_test_loss,final_test_acc,max_gain_fwd,max_gain_bwd,diverged_at,diverged_block,seconds,cell";
    assert_eq!(header.join(","), documented);
    assert_eq!(rows.len(), 9, "three cells, three variants each");
    let gain = |depth: &str, mode: &str| -> f64 {
        let row = rows.iter().find(|r| r["depth"] == depth && r["mode"] == mode).unwrap();
        assert!(row["final_loss"].parse::<f64>().unwrap() > 0.0 && row["final_test_acc"].parse::<f64>().is_ok(), "{row:?}");
        assert_eq!((row["diverged_at"].as_str(), row["diverged_block"].as_str()), ("", ""), "{row:?}");
        row["max_gain_fwd"].parse().unwrap()
    };
    let hc: Vec<f64> = ["2", "8", "32"].iter().map(|d| gain(d, "hc")).collect();
    assert!(hc[0] > 1.5 && hc[1] > 2.0 * hc[0] && hc[2] > 2.0 * hc[1], "HC's gain grows with depth: {hc:?}");
    for depth in ["2", "8", "32"] {
        let mhc = gain(depth, "mhc");
        assert!((mhc - 1.0).abs() < 1e-3, "mHC's gain at depth {depth}: {mhc}");
        assert_eq!(gain(depth, "residual"), 1.0);
    }
}

#[test]
fn a_shared_sweep_url_runs_on_the_gpu_as_jsonl_and_matches_the_cpu() {
    let dir = scratch("sweep-url");
    let url = "https://example.test/?v=1&task=xor&width=8&streams=2&batch=8&sweep_x=depth:1,2&sweep_y=precision:f32,f16&sweep_steps=10";
    let mut by_backend = Vec::new();
    for backend in ["gpu", "cpu"] {
        let out = dir.join(format!("sweep-{backend}.jsonl"));
        ok(&["sweep", "--config", url, "--out", s(&out), "--backend", backend, "--quiet"]);
        let rows: Vec<serde_json::Value> =
            std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(rows.len(), 12, "four cells, three variants");
        let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 12, "{keys:?}");
        assert_eq!(
            (&rows[11]["depth"], &rows[11]["precision"], &rows[11]["mode"]),
            (&serde_json::json!(2), &serde_json::json!("f16"), &serde_json::json!("mhc"))
        );
        by_backend.push(rows);
    }
    for (gpu, cpu) in by_backend[0].iter().zip(&by_backend[1]) {
        for column in ["final_loss", "final_test_loss", "max_gain_fwd", "max_gain_bwd"] {
            let (g, c) = (gpu[column].as_f64().unwrap(), cpu[column].as_f64().unwrap());
            assert!((g - c).abs() <= 1e-4 * c.abs().max(1.0), "{column}: gpu {g}, cpu {c} in {gpu}");
        }
    }
}

#[test]
fn an_impossible_sweep_is_one_error_with_a_hint_and_writes_nothing() {
    let dir = scratch("sweep-bad");
    let out = dir.join("sweep.csv");
    for (args, says) in [
        (vec!["--grid", "depth=8,999"], "depth=999: out of range 1..256"),
        (vec!["--grid", "modes=hc"], "`modes` cannot be swept"),
        (vec!["--grid", "depth=2", "--grid", "depth=4"], "both axes sweep depth"),
        (vec!["--config", "sweep_x=depth:2,x"], "depth=x: not a number"),
        (vec!["--grid", "depth=2"], ""),
        (vec!["--set", "depth=256", "--set", "ffn=8", "--grid", "width=8,1024"], "cell width=1024: "),
    ] {
        let mut full = vec!["sweep", "--backend", "cpu", "--steps", "2", "--out", s(&out)];
        full.extend(&args);
        let target = if says.is_empty() { dir.join("sweep.txt") } else { out.clone() };
        if says.is_empty() {
            *full.iter_mut().find(|a| a.ends_with("sweep.csv")).unwrap() = s(&target);
        }
        let result = attempt(&full);
        let err = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
        assert!(err.contains(if says.is_empty() { "cannot tell the format" } else { says }), "{args:?}: {err}");
        assert!(err.lines().any(|l| l.starts_with("hint:")), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "nothing written: {left:?}");
    }
}

#[test]
fn composite_gains_match_an_independent_reference_from_the_weights() {
    let python = common::python();
    let dir = scratch("gains");
    for (kind, extra) in [("hc", "lr=0.05"), ("mhc", "lr=0.05&sinkhorn_iters=3"), ("hc", "precision=f16&lr=0.05")] {
        let config = format!("task=teacher&depth=4&width=8&streams=3&ffn=2&batch=6&modes={kind}&{extra}");
        let weights = dir.join(format!("{kind}.safetensors"));
        let batch = dir.join("batch.safetensors");
        let metrics = dir.join(format!("{kind}.jsonl"));
        // Trained a little, so that H_res is no longer the identity and the gains are not 1.
        ok(&["train", "--config", &config, "--steps", "8", "--quiet", "--save", s(&weights), "--backend", "cpu"]);
        ok(&["batch", "--config", &config, "--step", "0", "--out", s(&batch)]);
        ok(&["train", "--config", &config, "--init", s(&weights), "--steps", "1", "--quiet", "--metrics", s(&metrics)]);
        let check = Command::new(&python)
            .args(["tests/autograd_reference.py", "--weights", s(&weights), "--batch", s(&batch), "--gains", s(&metrics), "--tol", "1e-4"])
            .output()
            .expect("python3 runs");
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success(), "{kind} {extra}:\n{report}{}", String::from_utf8_lossy(&check.stderr));
        let row: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&metrics).unwrap().lines().next().unwrap()).unwrap();
        let (fwd, bwd) = (row["gain_fwd"].as_f64().unwrap(), row["gain_bwd"].as_f64().unwrap());
        assert!((fwd - 1.0).abs().max((bwd - 1.0).abs()) > 1e-3, "{kind} {extra}: the check is not of identities ({fwd}, {bwd})");
    }
}

#[test]
fn init_continues_from_the_checkpoint_loss_not_the_initial_one() {
    let dir = scratch("init-loss");
    // Evaluated on the whole test split at step 0 and at the last trained step (no batch noise).
    let config = "task=xor&depth=2&width=8&streams=2&batch=32&lr=0.01&modes=mhc&eval_every=119";
    let trained = dir.join("trained.safetensors");
    // The summary table's test loss (step, loss, acc, test_loss, ...) of a run.
    let test_loss = |args: &[&str]| -> f64 {
        let out = ok(args);
        let table = String::from_utf8_lossy(&out.stdout).to_string();
        let row = table.lines().find(|l| l.starts_with("mhc")).unwrap_or_else(|| panic!("{table}")).to_string();
        row.split_whitespace().nth(4).unwrap().parse().unwrap_or_else(|_| panic!("{table}"))
    };
    let after_training = test_loss(&["train", "--config", config, "--steps", "120", "--save", s(&trained), "--backend", "cpu"]);
    let fresh = test_loss(&["train", "--config", config, "--steps", "1", "--backend", "cpu"]);
    let resumed = test_loss(&["train", "--config", config, "--steps", "1", "--init", s(&trained), "--backend", "cpu"]);
    assert!(resumed < 0.8 * fresh, "the checkpoint's weights are used: test loss {resumed} after init, {fresh} fresh");
    // Step 119 is evaluated before its update, the checkpoint after it: one step apart.
    assert!((resumed - after_training).abs() < 0.1 * after_training, "continues from the trained test loss {after_training}: {resumed}");
}
