//! mHC Playground engine: residual, Hyper-Connection and mHC networks trained in lockstep on
//! the GPU (wgpu: WebGPU in the browser, Vulkan natively) or on a plain-Rust CPU reference.
//!
//! Layers, bottom up: `config` (the experiment), `rng` + `tasks` (seeded data), `layout` (the
//! parameter table), `kernels` (the kernel list and their params), `block` (one block as data:
//! its unfused ops and batched weight gradients), `plan` (where every tensor lives in the arena),
//! `program` (the training step as op lists), `reference` (CPU twin of every kernel, the oracle), `cpu` (the fast CPU backend, bit-exact with the reference), `gpu` (the
//! only wgpu code), `trainer` (lockstep training), `sampler` (reading a trained transformer: text, answers, attention), `metrics`, `checkpoint`, `export` (the experiment as a PyTorch project), `snapshot` (a run's whole state, to resume), `sweep` (grids of runs). No UI types anywhere here.

pub mod block;
pub mod checkpoint;
pub mod config;
pub mod cpu;
pub mod export;
pub mod gpu;
pub mod kernels;
pub mod layout;
pub mod metrics;
pub mod plan;
pub mod program;
pub mod reference;
pub mod rng;
pub mod sampler;
pub mod snapshot;
pub mod sweep;
pub mod tasks;
pub mod tokens;
pub mod trainer;
pub mod ui;
