//! Shared by the tests: one GPU device per test binary (a missing adapter is a failure, never
//! a skip: the README's set-up installs lavapipe, Mesa's CPU Vulkan driver, on every machine),
//! and running the runner or a script the way a user does.
#![allow(dead_code)]

use mhc_playground::gpu::GpuContext;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::rc::Rc;

/// The runner with `args`, whatever its outcome.
pub fn attempt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mhc-playground"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the runner starts")
}

/// `program` with `args`; fails the test with its output unless it succeeds.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (the README's set-up installs python3 with torch and safetensors): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The runner with `args`; fails the test with its output unless it succeeds.
pub fn runner(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_mhc-playground"), args)
}

/// A fresh scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mhc-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn gpu() -> Rc<GpuContext> {
    // Leaked on purpose: dropping a device during thread-local teardown aborts the process.
    thread_local! {
        static CONTEXT: &'static Rc<GpuContext> = Box::leak(Box::new(Rc::new(pollster::block_on(GpuContext::new()).unwrap_or_else(|e| {
            panic!("{e}; GPU tests need an adapter (Debian: apt-get install mesa-vulkan-drivers libvulkan1)")
        }))));
    }
    CONTEXT.with(|c| Rc::clone(c))
}

/// Mixed-tolerance comparison that names the first mismatches.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut bad = Vec::new();
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_finite() {
            g.is_finite() && (g - w).abs() <= atol + rtol * w.abs()
        } else {
            g.is_nan() == w.is_nan() && (w.is_nan() || g == w)
        };
        if !ok {
            bad.push(format!("[{i}] got {g:e} want {w:e}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{what}: {} of {} values differ (atol {atol}, rtol {rtol}); first: {}",
        bad.len(),
        got.len(),
        bad.iter().take(8).cloned().collect::<Vec<_>>().join(", ")
    );
}
