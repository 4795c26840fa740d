//! Shared by the GPU tests: one device per test binary. A missing adapter is a failure, never
//! a skip: the README's set-up installs lavapipe (Mesa's CPU Vulkan driver) on every machine.
#![allow(dead_code)]

use mhc_playground::gpu::GpuContext;
use std::rc::Rc;

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
