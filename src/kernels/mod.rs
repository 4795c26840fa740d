//! The kernel list: every GPU kernel's parameter struct (`params.rs`) and the [`Op`] enum that
//! names one dispatch of it (here), how kernels are tuned to an adapter (`tuning.rs`) and the
//! WGSL they run (`source.rs`). This module is the single source of truth shared by the GPU backend
//! (`gpu.rs`, which turns an `Op` into a dispatch of a WGSL entry point) and the CPU reference
//! (`reference.rs`, which runs the same `Op` in plain Rust).
//!
//! Every kernel reads and writes one flat f32 *arena*: parameters, gradients, optimiser moments,
//! activations, scratch and metrics of one variant. Offsets in the params structs are element
//! indices into that arena; [`NONE`] marks an absent operand. Each struct is `#[repr(C)]`,
//! made only of 4-byte scalars, padded to a multiple of 16 bytes, and mirrored field by field
//! by a WGSL struct of the same name (a test checks the sizes with naga).

mod params;
mod source;
mod tuning;

pub use params::*;
pub use source::*;
pub use tuning::*;

/// One dispatch: which kernel entry point, with which parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Matmul(MatmulParams),
    Reduce(ReduceParams),
    RmsNormForward(RmsNormParams),
    RmsNormBackward(RmsNormParams),
    RmsNormWeightGrad(RmsNormParams),
    ActForward(ActParams),
    ActBackward(ActParams),
    Broadcast(StreamParams),
    CombineForward(StreamParams),
    CombineBackward(StreamParams),
    CombineBackwardCoeff(StreamParams),
    UpdateForward(StreamParams),
    UpdateBackward(StreamParams),
    UpdateBackwardCoeff(StreamParams),
    HcCoeffForward(HcCoeffParams),
    HcCoeffBackward(HcCoeffParams),
    MhcCoeffForward(MhcCoeffParams),
    MhcCoeffBackward(MhcCoeffParams),
    XentForward(XentParams),
    XentBackward(XentParams),
    SegmentStats(StatsParams),
    StepFinalize(FinalizeParams),
    AnswerCorrect(AnswerParams),
    Gains(GainsParams),
    Optimizer(OptimizerParams),
    /// One of `block.wgsl`'s fused kernels (twins in `block.rs`): all share one parameter block.
    Fused(FusedKernel, BlockParams),
    EmbedForward(EmbedParams),
    EmbedBackwardTokens(EmbedParams),
    AttentionForward(AttentionParams),
    AttentionBackwardQueries(AttentionParams),
    AttentionBackwardKeys(AttentionParams),
}

/// Threads per workgroup of the 1-D kernels (the browser allows at most 256).
pub const WORKGROUP_1D: u32 = 256;
/// Threads per workgroup of the row-reduction kernels (one workgroup per row).
pub const WORKGROUP_ROW: u32 = 64;
/// Rows at most this long are normalised a thread per row (`rmsnorm.wgsl`'s `_rows` entry
/// points), longer ones a workgroup per row.
pub const RMSNORM_ROW_MAX_COLS: u32 = 128;
/// mHC rows whose streams hold at most this many values (`n * C`) get their coefficients a
/// thread per row (`hyper.wgsl`'s `_rows` entry points, in workgroups of `MHC_SLOTS`); longer
/// ones a workgroup per row, which shares the rms and the gradient's update over 64 threads.
pub const MHC_ROW_MAX_WIDTH: u32 = 256;
/// Rows per workgroup of the thread-per-row mHC kernels (`MHC_SLOTS` in `hyper.wgsl`).
pub const MHC_SLOTS: u32 = 8;

/// The most streams whose Sinkhorn runs in registers (`hyper.wgsl`: `SINKHORN_IN_REGISTERS`, an
/// n x n matrix in a mat4x4); more take the loops over workgroup memory.
pub const SINKHORN_REGISTER_MAX_N: u32 = 4;

/// Threads per workgroup of `reduce_rows`: a thread sums a column's rows in order, so a
/// reduction has as many threads as columns (32 to 128 for a bias gradient), and a software GPU
/// runs a workgroup on one core: 64 lets two of them share the work.
pub const REDUCE_WORKGROUP: u32 = 64;

/// Whether an op with `n` streams runs mHC's Sinkhorn in registers (set for every kind alike).
pub fn sinkhorn_in_registers(n: u32) -> bool {
    n <= SINKHORN_REGISTER_MAX_N
}

fn mhc_by_thread(p: &MhcCoeffParams) -> bool {
    p.n * p.c <= MHC_ROW_MAX_WIDTH
}

/// Matmul output tile edge (a workgroup of 16 x 16 threads, 4 x 4 outputs each).
pub const MATMUL_TILE: u32 = 64;

/// Rows of C each matmul thread computes (`ROWS_PER_THREAD` in `matmul.wgsl`): a tile is 16
/// times as tall, 64 for most products and 32 or 16 for short ones.
pub fn matmul_rows_per_thread(m: u32) -> u32 {
    match m {
        0..=16 => 1,
        17..=32 => 2,
        _ => 4,
    }
}

/// How a kernel's threads are laid out over its work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grid {
    /// One thread per item, `WORKGROUP_1D` per workgroup.
    Threads(u32),
    /// One thread per item, the given number per workgroup (the entry point's `WG_1D`
    /// override, from [`Op::overrides`]).
    ThreadsIn(u32, u32),
    /// One workgroup (of `WORKGROUP_ROW` or `WORKGROUP_1D` threads) per item.
    Workgroups(u32),
    /// Matmul tiles: (columns of tiles, rows of tiles, products).
    Tiles(u32, u32, u32),
}

impl Op {
    /// Shader file and entry point (`file::entry`) of this op; the GPU kernel cache key.
    pub fn entry(&self) -> (&'static str, &'static str) {
        match self {
            Op::Matmul(p) => ("matmul", p.kernel().entry()),
            Op::Reduce(_) => ("reduce", "reduce_rows"),
            Op::RmsNormForward(p) if p.cols <= RMSNORM_ROW_MAX_COLS => ("rmsnorm", "rmsnorm_forward_rows"),
            Op::RmsNormBackward(p) if p.cols <= RMSNORM_ROW_MAX_COLS => ("rmsnorm", "rmsnorm_backward_rows"),
            Op::RmsNormForward(_) => ("rmsnorm", "rmsnorm_forward"),
            Op::RmsNormBackward(_) => ("rmsnorm", "rmsnorm_backward"),
            Op::RmsNormWeightGrad(_) => ("rmsnorm", "rmsnorm_backward_weight"),
            Op::ActForward(_) => ("activation", "act_forward"),
            Op::ActBackward(_) => ("activation", "act_backward"),
            Op::Broadcast(_) => ("streams", "broadcast"),
            Op::CombineForward(_) => ("streams", "combine_forward"),
            Op::CombineBackward(_) => ("streams", "combine_backward"),
            Op::CombineBackwardCoeff(_) => ("streams", "combine_backward_coeff"),
            Op::UpdateForward(_) => ("streams", "update_forward"),
            Op::UpdateBackward(_) => ("streams", "update_backward"),
            Op::UpdateBackwardCoeff(_) => ("streams", "update_backward_coeff"),
            Op::HcCoeffForward(_) => ("hyper", "hc_coeff_forward"),
            Op::HcCoeffBackward(_) => ("hyper", "hc_coeff_backward"),
            Op::MhcCoeffForward(p) if mhc_by_thread(p) => ("hyper", "mhc_coeff_forward_rows"),
            Op::MhcCoeffBackward(p) if mhc_by_thread(p) => ("hyper", "mhc_coeff_backward_rows"),
            Op::MhcCoeffForward(_) => ("hyper", "mhc_coeff_forward"),
            Op::MhcCoeffBackward(_) => ("hyper", "mhc_coeff_backward"),
            Op::XentForward(_) => ("loss", "xent_forward"),
            Op::XentBackward(_) => ("loss", "xent_backward"),
            Op::SegmentStats(_) => ("metrics", "segment_stats"),
            Op::StepFinalize(_) => ("metrics", "step_finalize"),
            Op::AnswerCorrect(_) => ("metrics", "answer_correct"),
            Op::Gains(_) => ("metrics", "gains"),
            Op::Optimizer(_) => ("optimizer", "optimizer_step"),
            Op::Fused(kernel, _) => ("block", kernel.entry()),
            Op::EmbedForward(_) => ("embed", "embed_forward"),
            Op::EmbedBackwardTokens(_) => ("embed", "embed_backward_tokens"),
            Op::AttentionForward(_) => ("attention", "attention_forward"),
            Op::AttentionBackwardQueries(_) => ("attention", "attention_backward_queries"),
            Op::AttentionBackwardKeys(_) => ("attention", "attention_backward_keys"),
        }
    }

    /// This op with its product run by `kernel` (other ops unchanged).
    pub fn with_matmul_kernel(self, kernel: MatmulKernel) -> Op {
        match self {
            Op::Matmul(p) => Op::Matmul(p.with_kernel(kernel)),
            other => other,
        }
    }

    /// This op as it runs with `block`: a product in 4 x 4 register blocks runs in 8 x 8 ones
    /// where `block` says so and the product has at least [`REGISTERS8_MIN_BLOCKS`] of them
    /// (other ops unchanged; the fused kernels take `block` as an override).
    pub fn with_register_block(self, block: RegisterBlock) -> Op {
        match self {
            Op::Matmul(p)
                if p.kernel() == MatmulKernel::Registers
                    && block == RegisterBlock::Eight
                    && p.register_blocks(MatmulKernel::Registers8.register_side()) >= REGISTERS8_MIN_BLOCKS =>
            {
                Op::Matmul(p.with_kernel(MatmulKernel::Registers8))
            }
            other => other,
        }
    }

    /// Values of the WGSL pipeline-overridable constants this op's pipeline needs; the fused
    /// block kernels run as `tuning` says ([`Tuning`]).
    pub fn overrides(&self, tuning: &Tuning) -> Vec<(&'static str, f64)> {
        let constants: &[(&'static str, f64)] = match self {
            // Set by n alone, whatever the kind: residual, HC and mHC at n <= 4 share pipelines.
            Op::Fused(_, p) => {
                return vec![
                    ("BLOCK_THREADS", tuning.block_threads as f64),
                    ("WIDE_BLOCKS", (tuning.register_block == RegisterBlock::Eight) as u32 as f64),
                    ("QUADS", p.quads() as u32 as f64),
                    ("SINKHORN_IN_REGISTERS", sinkhorn_in_registers(p.n) as u32 as f64),
                    ("ROW_ITEMS", (tuning.stream_items == StreamItems::Rows) as u32 as f64),
                    ("SHARE_WIDTH", tuning.share_width as f64),
                ];
            }
            Op::MhcCoeffForward(p) | Op::MhcCoeffBackward(p) => {
                return vec![("SINKHORN_IN_REGISTERS", sinkhorn_in_registers(p.n) as u32 as f64)];
            }
            Op::Optimizer(p) => return vec![("QUADS", p.quads() as u32 as f64)],
            Op::Reduce(_) => &[("WG_1D", REDUCE_WORKGROUP as f64)],
            Op::Matmul(p) => match (p.kernel(), matmul_rows_per_thread(p.m)) {
                (MatmulKernel::Registers | MatmulKernel::Registers8, _) => {
                    return vec![("WG_1D", MATMUL_REGISTER_WORKGROUP as f64), ("SHARE_WIDTH", tuning.share_width as f64)];
                }
                (MatmulKernel::Direct, _) => &[],
                (MatmulKernel::Tiled, 1) => &[("ROWS_PER_THREAD", 1.0)],
                (MatmulKernel::Tiled, 2) => &[("ROWS_PER_THREAD", 2.0)],
                (MatmulKernel::Tiled, _) => &[],
            },
            _ => &[],
        };
        constants.to_vec()
    }

    /// The params struct's bytes, as uploaded to the uniform slot of this dispatch.
    pub fn params_bytes(&self) -> &[u8] {
        match self {
            Op::Matmul(p) => bytemuck::bytes_of(p),
            Op::Reduce(p) => bytemuck::bytes_of(p),
            Op::RmsNormForward(p) | Op::RmsNormBackward(p) | Op::RmsNormWeightGrad(p) => bytemuck::bytes_of(p),
            Op::ActForward(p) | Op::ActBackward(p) => bytemuck::bytes_of(p),
            Op::Broadcast(p)
            | Op::CombineForward(p)
            | Op::CombineBackward(p)
            | Op::CombineBackwardCoeff(p)
            | Op::UpdateForward(p)
            | Op::UpdateBackward(p)
            | Op::UpdateBackwardCoeff(p) => bytemuck::bytes_of(p),
            Op::HcCoeffForward(p) | Op::HcCoeffBackward(p) => bytemuck::bytes_of(p),
            Op::MhcCoeffForward(p) | Op::MhcCoeffBackward(p) => bytemuck::bytes_of(p),
            Op::XentForward(p) | Op::XentBackward(p) => bytemuck::bytes_of(p),
            Op::SegmentStats(p) => bytemuck::bytes_of(p),
            Op::StepFinalize(p) => bytemuck::bytes_of(p),
            Op::AnswerCorrect(p) => bytemuck::bytes_of(p),
            Op::Gains(p) => bytemuck::bytes_of(p),
            Op::Optimizer(p) => bytemuck::bytes_of(p),
            Op::Fused(_, p) => bytemuck::bytes_of(p),
            Op::EmbedForward(p) | Op::EmbedBackwardTokens(p) => bytemuck::bytes_of(p),
            Op::AttentionForward(p) | Op::AttentionBackwardQueries(p) | Op::AttentionBackwardKeys(p) => bytemuck::bytes_of(p),
        }
    }

    /// The thread layout the WGSL entry point expects.
    pub fn grid(&self) -> Grid {
        match self {
            Op::Matmul(p) => match p.kernel() {
                kernel @ (MatmulKernel::Registers | MatmulKernel::Registers8) => {
                    Grid::ThreadsIn(p.register_blocks(kernel.register_side()), MATMUL_REGISTER_WORKGROUP)
                }
                MatmulKernel::Direct => Grid::Threads(p.m * p.n * p.batch.max(1)),
                MatmulKernel::Tiled => {
                    Grid::Tiles(p.n.div_ceil(MATMUL_TILE), p.m.div_ceil(16 * matmul_rows_per_thread(p.m)), p.batch.max(1))
                }
            },
            Op::Reduce(p) => Grid::ThreadsIn(p.groups * p.cols, REDUCE_WORKGROUP),
            Op::RmsNormForward(p) | Op::RmsNormBackward(p) if p.cols <= RMSNORM_ROW_MAX_COLS => Grid::Threads(p.rows),
            Op::RmsNormForward(p) | Op::RmsNormBackward(p) => Grid::Workgroups(p.rows),
            Op::RmsNormWeightGrad(p) => Grid::Threads(p.cols * p.groups.max(1)),
            Op::ActForward(p) | Op::ActBackward(p) => Grid::Threads(p.len),
            Op::Broadcast(p) | Op::CombineForward(p) | Op::CombineBackward(p) => Grid::Threads(p.rows * p.c),
            Op::UpdateForward(p) | Op::UpdateBackward(p) => Grid::Threads(p.rows * p.c),
            Op::CombineBackwardCoeff(p) => Grid::Threads(p.rows * p.n),
            Op::UpdateBackwardCoeff(p) => Grid::Threads(p.rows * (p.n + p.n * p.n)),
            Op::HcCoeffForward(p) | Op::HcCoeffBackward(p) => Grid::Threads(p.rows),
            Op::MhcCoeffForward(p) | Op::MhcCoeffBackward(p) if mhc_by_thread(p) => Grid::Workgroups(p.rows.div_ceil(MHC_SLOTS)),
            Op::MhcCoeffForward(p) | Op::MhcCoeffBackward(p) => Grid::Workgroups(p.rows),
            Op::XentForward(p) | Op::XentBackward(p) => Grid::Threads(p.rows),
            Op::SegmentStats(p) => Grid::Workgroups(p.count),
            Op::StepFinalize(_) => Grid::Threads(1),
            Op::AnswerCorrect(p) => Grid::Threads(p.sequences),
            Op::Gains(p) => Grid::Threads(p.rows),
            Op::Optimizer(p) => Grid::Threads(if p.quads() { p.len.div_ceil(4) } else { p.len }),
            Op::Fused(_, p) => Grid::Workgroups(p.rows.div_ceil(BLOCK_TILE_ROWS)),
            Op::EmbedForward(p) => Grid::Threads(p.rows * p.c),
            Op::EmbedBackwardTokens(p) => Grid::Threads(p.vocab * p.c.div_ceil(4)),
            Op::AttentionForward(p) | Op::AttentionBackwardQueries(p) | Op::AttentionBackwardKeys(p) => {
                Grid::Threads(p.batch * p.heads * p.t)
            }
        }
    }
}
