//! The transformer (DESIGN.md section 1b) as a user drives it through the runner: gradients of
//! every variant in both precisions on both backends against the independent autograd
//! (tests/autograd_reference.py, float64), batch files in the documented shapes, and training
//! that learns text on both backends alike.

use mhc_playground::checkpoint::TensorFile;
use std::process::Command;

mod common;

use common::{runner, s, scratch};

#[test]
fn gradients_match_an_independent_autograd_for_every_variant_precision_and_backend() {
    let python = common::python();
    let dir = scratch("grad");
    // Seed 2: at seed 1 one of HC's f16 stream values lies within f32 rounding of an f16
    // boundary, so the f64 reference rounds it the other way and HC's scalars differ by up to
    // 5e-3; at other seeds every variant agrees to 1e-4.
    for kind in ["residual", "hc", "mhc"] {
        for precision in ["f32", "f16"] {
            let config = format!(
                "task=text&depth=2&width=12&streams=3&ffn=2&batch=3&ctx=7&heads=3&sinkhorn_iters=7&lr=0.03&seed=2&modes={kind}&precision={precision}"
            );
            let (weights, batch) = (dir.join("w.safetensors"), dir.join("b.safetensors"));
            // A few steps first, so the hyper-connection weights are no longer at their init.
            runner(&["train", "--config", &config, "--steps", "5", "--backend", "cpu", "--quiet", "--save", s(&weights)]);
            runner(&["batch", "--config", &config, "--step", "11", "--out", s(&batch)]);
            for backend in ["cpu", "gpu"] {
                let grads = dir.join(format!("g-{backend}.safetensors"));
                runner(&[
                    "grad",
                    "--config",
                    &config,
                    "--weights",
                    s(&weights),
                    "--batch",
                    s(&batch),
                    "--out",
                    s(&grads),
                    "--backend",
                    backend,
                ]);
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
                    .expect("python3 with numpy, autograd, safetensors (the README's set-up)");
                let report = String::from_utf8_lossy(&check.stdout);
                assert!(check.status.success(), "{kind} {precision} on {backend}:\n{report}{}", String::from_utf8_lossy(&check.stderr));
                let last = report.lines().last().unwrap_or("");
                assert!(last.starts_with("PASS"), "{report}");
                eprintln!("{kind} {precision} {backend}: {last}");
            }
        }
    }
}

#[test]
fn batch_files_hold_tokens_and_targets_with_unscored_positions() {
    let dir = scratch("batch");
    let out = dir.join("b.safetensors");
    runner(&["batch", "--config", "task=add&ctx=12&batch=4&modes=mhc", "--step", "3", "--out", s(&out)]);
    let bytes = std::fs::read(&out).unwrap();
    let file = TensorFile::parse(&bytes).unwrap();
    let (x_shape, x) = file.i32("x").unwrap();
    let (y_shape, y) = file.i32("y").unwrap();
    assert_eq!((x_shape, y_shape), (vec![4, 12], vec![4, 12]));
    assert!(x.iter().all(|&t| (0..14).contains(&t)));
    // add at ctx 12: 3-digit operands, a 4-digit sum; only the sum's 4 positions are scored.
    for row in y.chunks(12) {
        assert_eq!(row.iter().filter(|&&t| t >= 0).count(), 4, "{row:?}");
        assert!(row.iter().all(|&t| t == -1 || (0..10).contains(&t)));
    }
}

#[test]
fn the_transformer_learns_text_alike_on_both_backends() {
    let dir = scratch("learn");
    let config = "task=text&depth=1&width=16&ctx=16&batch=8&heads=2&streams=2&lr=0.01&eval_every=40";
    let mut finals = Vec::new();
    for backend in ["cpu", "gpu"] {
        let metrics = dir.join(format!("{backend}.jsonl"));
        runner(&[
            "train",
            "--config",
            config,
            "--steps",
            "41",
            "--log-every",
            "40",
            "--backend",
            backend,
            "--quiet",
            "--metrics",
            s(&metrics),
        ]);
        let rows: Vec<serde_json::Value> =
            std::fs::read_to_string(&metrics).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let at = |step: u64, mode: &str, key: &str| {
            rows.iter()
                .find(|r| r["step"] == step && r["mode"] == mode)
                .and_then(|r| r[key].as_f64())
                .unwrap_or_else(|| panic!("{key} at {step} {mode}"))
        };
        for mode in ["residual", "hc", "mhc"] {
            // ln(vocabulary) ~ 4.1 at the start; 40 steps of a tiny GPT take it well below.
            assert!(at(0, mode, "test_loss") > 3.5, "{backend} {mode}");
            assert!(at(40, mode, "test_loss") < 3.2, "{backend} {mode}: {}", at(40, mode, "test_loss"));
            assert_eq!(
                rows.iter().find(|r| r["mode"] == mode).unwrap()["gain_fwd_blocks"].as_array().unwrap().len(),
                2,
                "a gain per sublayer"
            );
        }
        assert!((at(40, "mhc", "gain_fwd") - 1.0).abs() < 1e-3);
        finals.push([at(40, "residual", "loss"), at(40, "hc", "loss"), at(40, "mhc", "loss")]);
    }
    for (cpu, gpu) in finals[0].iter().zip(&finals[1]) {
        assert!((cpu - gpu).abs() <= 1e-3 * cpu.abs(), "CPU {cpu} GPU {gpu}");
    }
}

#[test]
fn in_the_crash_preset_hc_diverges_and_residual_and_mhc_learn_on() {
    let dir = scratch("crash");
    let metrics = dir.join("m.jsonl");
    runner(&[
        "train",
        "--config",
        mhc_playground::ui::model::TRANSFORMER_CRASH,
        "--steps",
        "41",
        "--log-every",
        "20",
        "--backend",
        "cpu",
        "--quiet",
        "--metrics",
        s(&metrics),
    ]);
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(&metrics).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let last = |mode: &str| rows.iter().rev().find(|r| r["mode"] == mode).unwrap().clone();
    let hc = last("hc");
    let step = hc["diverged_at"].as_u64().expect("HC diverges");
    assert!(step <= 40, "HC diverged at step {step}");
    for mode in ["residual", "mhc"] {
        let row = last(mode);
        assert!(row["diverged_at"].is_null(), "{mode} diverged: {row}");
        assert_eq!(row["step"], 40);
        assert!(row["loss"].as_f64().unwrap() < 3.0, "{mode} learns: {}", row["loss"]);
    }
    assert!((last("mhc")["gain_fwd"].as_f64().unwrap() - 1.0).abs() < 1e-3);
}

#[test]
fn a_users_own_text_trains_from_a_file_and_a_link_naming_a_missing_text_is_refused() {
    let dir = scratch("own-text");
    let text: String = (0..300).map(|i| format!("the cat sat on mat {} ", i % 10)).collect();
    let file = dir.join("own.txt");
    std::fs::write(&file, &text).unwrap();
    let id = mhc_playground::tokens::text_id(&text);
    let metrics = dir.join("m.jsonl");
    let config = "task=text&depth=1&width=16&ctx=8&batch=4&heads=2&modes=mhc";
    runner(&[
        "train",
        "--config",
        config,
        "--text",
        s(&file),
        "--steps",
        "3",
        "--log-every",
        "1",
        "--backend",
        "cpu",
        "--quiet",
        "--metrics",
        s(&metrics),
    ]);
    let rows = std::fs::read_to_string(&metrics).unwrap();
    assert_eq!(rows.lines().count(), 3, "{rows}");
    // The link names the text by its hash; the same file reproduces it, another is refused.
    let linked = format!("{config}&text={id}");
    runner(&["train", "--config", &linked, "--text", s(&file), "--steps", "1", "--backend", "cpu", "--quiet"]);
    let fails = |args: &[&str]| -> String {
        let out = common::attempt(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = fails(&["train", "--config", &linked, "--steps", "1", "--backend", "cpu"]);
    assert!(missing.contains(&format!("text={id}")) && missing.contains("--text FILE"), "{missing}");
    let other = dir.join("other.txt");
    std::fs::write(&other, text.replace("cat", "dog")).unwrap();
    let mismatch = fails(&["train", "--config", &linked, "--text", s(&other), "--steps", "1", "--backend", "cpu"]);
    assert!(mismatch.contains("but the experiment names"), "{mismatch}");
    std::fs::write(&other, "too short").unwrap();
    let short = fails(&["train", "--config", config, "--text", s(&other), "--steps", "1", "--backend", "cpu"]);
    assert!(short.contains("at least 3000"), "{short}");
    // The batch file holds windows of the text, in its own vocabulary (its sorted characters).
    let batch = dir.join("b.safetensors");
    runner(&["batch", "--config", config, "--text", s(&file), "--step", "0", "--out", s(&batch)]);
    let bytes = std::fs::read(&batch).unwrap();
    let (shape, x) = TensorFile::parse(&bytes).unwrap().i32("x").unwrap();
    assert_eq!(shape, vec![4, 8]);
    let mut vocabulary: Vec<char> = text.chars().collect();
    vocabulary.sort_unstable();
    vocabulary.dedup();
    assert_eq!(vocabulary.len(), 20);
    for row in x.chunks(8) {
        let window: String = row.iter().map(|&t| vocabulary[t as usize]).collect();
        assert!(text.contains(&window), "{window:?}");
    }
}
