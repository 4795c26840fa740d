//! How the kernels are tuned to an adapter: choices that change speed, never values (the tests
//! run every one).

/// The register block of the products (`matmul_registers` or `matmul_registers8`) and of the
/// fused block kernels' linear layers (`WIDE_BLOCKS` in `block.wgsl`), by adapter. Both give
/// the same values. A software GPU turns every load into a loop over its SIMD lanes and does
/// the multiply-adds almost for free, so it wants the most multiply-adds per load: an 8 x 8
/// block takes 16 vec4 loads per 256, a 4 x 4 one 8 per 64. On lavapipe the default
/// experiment's residual block kernels took 88 ms a step in 4 x 4 blocks and 47 in 8 x 8; on
/// SwiftShader the page ran it at 0.483 / 0.638 lockstep steps/s before and 0.630 / 0.723
/// after (README, "Speed, 2026-12-04"). A hardware GPU keeps the 4 x 4 block and twice the threads:
/// none was at hand to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterBlock {
    Four,
    Eight,
}

impl RegisterBlock {
    pub const ALL: [RegisterBlock; 2] = [RegisterBlock::Four, RegisterBlock::Eight];

    /// The block for a software adapter (lavapipe, SwiftShader) or a hardware one.
    pub fn for_adapter(software: bool) -> RegisterBlock {
        if software {
            RegisterBlock::Eight
        } else {
            RegisterBlock::Four
        }
    }

    /// Its name in benchmark reports.
    pub fn name(self) -> &'static str {
        match self {
            RegisterBlock::Four => "4x4",
            RegisterBlock::Eight => "8x8",
        }
    }

    /// `4x4` or `8x8` (the benchmarks' `register_block` option).
    pub fn parse(name: &str) -> Option<RegisterBlock> {
        RegisterBlock::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// Threads per workgroup of the fused block kernels (`BLOCK_THREADS` in `block.wgsl`): 64,
/// but 4 on a software adapter in a browser (SwiftShader), which runs a workgroup four threads
/// at a time and pays for every switch between those groups at a barrier.
pub fn block_threads(software_in_browser: bool) -> u32 {
    if software_in_browser {
        4
    } else {
        64
    }
}

/// How the kernels see the arena: one storage binding either way, as vec4s or as floats.
/// Kernels address floats (`ld` / `st`) and, where operands are aligned, load four at once
/// (`ld_vec4`), which costs one load instruction on the vec4 view and four on the float view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArenaView {
    /// Every adapter but a software one in a browser. lavapipe pays per load instruction,
    /// whatever its width: the default experiment's residual block kernels ran 1.5x faster.
    Vec4s,
    /// A software adapter in a browser. SwiftShader splits a vec4 load into four gathers, so
    /// vec4s gained nothing there: browser CPU seconds for the default experiment's `bench=3`,
    /// mean of five runs, 110.6 before vec4s and 111.8 on them; 104.9 (two runs) on floats.
    Floats,
}

impl ArenaView {
    pub const ALL: [ArenaView; 2] = [ArenaView::Vec4s, ArenaView::Floats];

    /// Its name in benchmark reports.
    pub fn name(self) -> &'static str {
        match self {
            ArenaView::Vec4s => "vec4s",
            ArenaView::Floats => "floats",
        }
    }

    /// `vec4s` or `floats` (the benchmarks' `arena_view` option).
    pub fn parse(name: &str) -> Option<ArenaView> {
        ArenaView::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The view for an adapter (`software_in_browser` as for [`block_threads`]).
    pub fn for_adapter(software_in_browser: bool) -> ArenaView {
        if software_in_browser {
            ArenaView::Floats
        } else {
            ArenaView::Vec4s
        }
    }

    pub(super) fn source(self) -> &'static str {
        match self {
            ArenaView::Vec4s => include_str!("../../shaders/arena_vec4s.wgsl"),
            ArenaView::Floats => include_str!("../../shaders/arena_floats.wgsl"),
        }
    }
}
