//! How the kernels are tuned to an adapter: choices that change speed, never values (the tests
//! run every one).

use super::MatmulKernel;

/// A choice the benchmarks take by name (`bench --matmul`, `--arena-view`, `--register-block`,
/// `--stream-items`) and report.
pub trait Named: Copy + Sized + 'static {
    /// What the choice is, for messages: "an arena view".
    const WHAT: &'static str;
    /// Every choice, in the order messages list them.
    fn all() -> &'static [Self];
    /// Its name in options and reports.
    fn name(self) -> &'static str;
    fn parse(name: &str) -> Option<Self> {
        Self::all().iter().copied().find(|c| c.name() == name)
    }
    /// `parse`, or a message that lists the names.
    fn parse_or_explain(name: &str) -> Result<Self, String> {
        Self::parse(name).ok_or_else(|| {
            let names: Vec<&str> = Self::all().iter().map(|c| c.name()).collect();
            let (last, others) = names.split_last().expect("a choice has names");
            format!("'{name}' is not {}: {} or {last}", Self::WHAT, others.join(", "))
        })
    }
}

/// Everything an adapter's tuning fixes for the arenas prepared under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    pub block_threads: u32,
    pub register_block: RegisterBlock,
    pub stream_items: StreamItems,
    /// Threads of a subgroup that share the rows of register blocks, in the fused kernels and
    /// the products (`shared_rows.wgsl`: `SHARE_WIDTH`; 4, or 8 and more); 0 for none.
    pub share_width: u32,
}

/// Choices fixed for the arenas prepared from now on, where not the adapter's own (`None`):
/// the tests run every one, the benchmarks time another adapter's here. `matmul` runs every
/// product with one kernel instead of each op's own (`bench --matmul`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TuningOverrides {
    pub arena_view: Option<ArenaView>,
    pub block_threads: Option<u32>,
    pub register_block: Option<RegisterBlock>,
    pub stream_items: Option<StreamItems>,
    pub matmul: Option<MatmulKernel>,
    /// Share register-block rows through the subgroup where the device can (tests run both).
    pub subgroups: Option<bool>,
}

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
}

impl Named for RegisterBlock {
    const WHAT: &'static str = "a register block";
    fn all() -> &'static [Self] {
        &Self::ALL
    }
    fn name(self) -> &'static str {
        match self {
            RegisterBlock::Four => "4x4",
            RegisterBlock::Eight => "8x8",
        }
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

impl Named for ArenaView {
    const WHAT: &'static str = "an arena view";
    fn all() -> &'static [Self] {
        &Self::ALL
    }
    fn name(self) -> &'static str {
        match self {
            ArenaView::Vec4s => "vec4s",
            ArenaView::Floats => "floats",
        }
    }
}

/// What a thread of the fused kernels' stream phases takes (`ROW_ITEMS` in `block.wgsl`),
/// where a row's streams mix in registers (n <= 4, with coefficients): the same values either
/// way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamItems {
    /// Four channels of a row: a hardware GPU's, which wants the threads. Each item loads the
    /// row's n + n + n * n coefficients again, and the d post / d res / d pre dots are loops
    /// of their own, a thread per row and coefficient.
    Quads,
    /// A whole row: a software GPU's, which pays per load instruction whichever of its SIMD
    /// lanes are busy, so loading a row's coefficients once for all its channels, and summing
    /// its dots on the way, saves loads outright.
    Rows,
}

impl StreamItems {
    pub const ALL: [StreamItems; 2] = [StreamItems::Quads, StreamItems::Rows];

    pub fn for_adapter(software: bool) -> StreamItems {
        if software {
            StreamItems::Rows
        } else {
            StreamItems::Quads
        }
    }
}

impl Named for StreamItems {
    const WHAT: &'static str = "a stream item";
    fn all() -> &'static [Self] {
        &Self::ALL
    }
    fn name(self) -> &'static str {
        match self {
            StreamItems::Quads => "quads",
            StreamItems::Rows => "rows",
        }
    }
}
