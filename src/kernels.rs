//! The kernel list: every GPU kernel's parameter struct and the [`Op`] enum that names one
//! dispatch of it. This file is the single source of truth shared by the GPU backend
//! (`gpu.rs`, which turns an `Op` into a dispatch of a WGSL entry point) and the CPU reference
//! (`reference.rs`, which runs the same `Op` in plain Rust).
//!
//! Every kernel reads and writes one flat f32 *arena*: parameters, gradients, optimiser moments,
//! activations, scratch and metrics of one variant. Offsets in the params structs are element
//! indices into that arena; [`NONE`] marks an absent operand. Each struct is `#[repr(C)]`,
//! made only of 4-byte scalars, padded to a multiple of 16 bytes, and mirrored field by field
//! by a WGSL struct of the same name (a test checks the sizes with naga).

use bytemuck::{Pod, Zeroable};

/// Marks an absent operand (no bias, no weight, identity coefficients, skipped output).
pub const NONE: u32 = u32::MAX;

/// `C[m, n] (+)= sum_k A[m, k] * B[k, n] (+ bias[n])`, operands addressed through strides so
/// the transposes that backward needs are the same kernel; `batch` such products (0 means 1)
/// whose operands lie `a_bs`, `b_bs`, `c_bs` apart, so the weight gradients of every block are
/// one dispatch. File: `shaders/matmul.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub a_off: u32,
    pub a_rs: u32,
    pub a_cs: u32,
    pub b_off: u32,
    pub b_rs: u32,
    pub b_cs: u32,
    pub c_off: u32,
    /// Row stride of C; its columns are contiguous.
    pub c_rs: u32,
    pub bias_off: u32,
    pub accumulate: u32,
    pub batch: u32,
    pub a_bs: u32,
    pub b_bs: u32,
    pub c_bs: u32,
    /// Which entry point runs it, a [`MatmulKernel`] code (0, the default: registers).
    pub kernel: u32,
    pub _pad: [u32; 2],
}

impl MatmulParams {
    pub fn with_kernel(self, kernel: MatmulKernel) -> MatmulParams {
        MatmulParams { kernel: kernel as u32, ..self }
    }

    pub fn kernel(&self) -> MatmulKernel {
        MatmulKernel::from_code(self.kernel)
    }
}

/// The fused kernels of `block.wgsl`, one entry point each; their CPU twins are
/// `block::unfused_twin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusedKernel {
    /// A whole block (or a transformer's FFN sublayer) forward: coefficients, combine, norm, FFN, update.
    BlockForward,
    /// Its backward: every activation gradient (weight gradients are products elsewhere).
    BlockBackward,
    /// In front of a sublayer that mixes rows (attention): coefficients, combine, norm.
    WrapInForward,
    /// Behind it, backward: the stream update's backward.
    WrapOutBackward,
    /// In front of it, backward: the norm's, the combine's and the coefficients' backward.
    WrapInBackward,
}

impl FusedKernel {
    pub const ALL: [FusedKernel; 5] = [
        FusedKernel::BlockForward,
        FusedKernel::BlockBackward,
        FusedKernel::WrapInForward,
        FusedKernel::WrapOutBackward,
        FusedKernel::WrapInBackward,
    ];

    /// Its entry point in `block.wgsl`.
    pub fn entry(self) -> &'static str {
        match self {
            FusedKernel::BlockForward => "block_forward",
            FusedKernel::BlockBackward => "block_backward",
            FusedKernel::WrapInForward => "wrap_in_forward",
            FusedKernel::WrapOutBackward => "wrap_out_backward",
            FusedKernel::WrapInBackward => "wrap_in_backward",
        }
    }
}

/// The matmul entry points of `matmul.wgsl` (the `kernel` code of [`MatmulParams`]). All sum
/// k in order, so all give the same values.
///
/// Registers is every product's kernel: on both software GPUs at hand it beat the tiled
/// kernel and the direct one at every shape our models have, skinny ones included (README,
/// "Speed"). The other two stay, tested alike, for `bench --matmul` and the page's
/// `?bench=N&matmul=`: on a real GPU, workgroup memory may win for large products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulKernel {
    /// `matmul_registers`: a thread per 4 x 4 block of outputs, no workgroup memory.
    Registers = 0,
    /// `matmul`: 16 x 16 threads, a 64-wide tile through workgroup memory.
    Tiled = 1,
    /// `matmul_direct`: a thread per output.
    Direct = 2,
    /// `matmul_registers8`: a thread per 8 x 8 block of outputs, no workgroup memory; what
    /// `Registers` runs as where the adapter wants [`RegisterBlock::Eight`].
    Registers8 = 3,
}

impl MatmulKernel {
    pub const ALL: [MatmulKernel; 4] = [MatmulKernel::Registers, MatmulKernel::Tiled, MatmulKernel::Direct, MatmulKernel::Registers8];

    fn from_code(code: u32) -> MatmulKernel {
        MatmulKernel::ALL.into_iter().find(|k| *k as u32 == code).unwrap_or(MatmulKernel::Registers)
    }

    /// `registers`, `tiled`, `direct` or `registers8` (the benchmarks' `matmul` option).
    pub fn parse(name: &str) -> Option<MatmulKernel> {
        MatmulKernel::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            MatmulKernel::Registers => "registers",
            MatmulKernel::Tiled => "tiled",
            MatmulKernel::Direct => "direct",
            MatmulKernel::Registers8 => "registers8",
        }
    }

    pub fn entry(self) -> &'static str {
        match self {
            MatmulKernel::Tiled => "matmul",
            MatmulKernel::Direct => "matmul_direct",
            MatmulKernel::Registers => "matmul_registers",
            MatmulKernel::Registers8 => "matmul_registers8",
        }
    }

    /// Outputs per thread along each side (the register kernels only).
    fn register_side(self) -> u32 {
        match self {
            MatmulKernel::Registers8 => 8,
            _ => MATMUL_REGISTER_BLOCK,
        }
    }
}

/// The register block of the products (`matmul_registers` or `matmul_registers8`) and of the
/// fused block kernels' linear layers (`WIDE_BLOCKS` in `block.wgsl`), by adapter. Both give
/// the same values. A software GPU turns every load into a loop over its SIMD lanes and does
/// the multiply-adds almost for free, so it wants the most multiply-adds per load: an 8 x 8
/// block takes 16 vec4 loads per 256, a 4 x 4 one 8 per 64. On lavapipe the default
/// experiment's residual block kernels took 88 ms a step in 4 x 4 blocks and 46 in 8 x 8; on
/// SwiftShader the page ran it at 0.42 / 0.49 lockstep steps/s before and 0.54 / 0.66 after
/// (README, "Speed, 2026-12-04"). A hardware GPU keeps the 4 x 4 block and twice the threads:
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

/// Outputs per thread of `matmul_registers`, along each side (`matmul_registers8`: 8).
pub const MATMUL_REGISTER_BLOCK: u32 = 4;
/// The fewest 8 x 8 blocks a product runs `matmul_registers8` with: four workgroups. A software
/// GPU runs a workgroup on one core, so a product of fewer keeps its 4 x 4 blocks and four
/// times the workgroups: the small transformer's FFN weight gradients (128 x 32 outputs, 64
/// blocks of 8 x 8) took 3.7 ms on SwiftShader in 4 x 4 blocks and 6.0 to 6.9 in 8 x 8 ones.
pub const REGISTERS8_MIN_BLOCKS: u32 = 4 * MATMUL_REGISTER_WORKGROUP;
/// Threads per workgroup of `matmul_registers`: a weight gradient of 32 x 32 outputs is 64
/// threads, and a software GPU runs a workgroup on one core, so small workgroups keep every
/// core busy.
pub const MATMUL_REGISTER_WORKGROUP: u32 = 64;

/// `out[g*out_gs + j] (+)= scale * reduce_i in[g*in_gs + i*in_rs + j]` with reduce = sum or max.
/// Used for bias gradients, per-row partial gradients, batch means and maxima. File: `reduce.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct ReduceParams {
    pub rows: u32,
    pub cols: u32,
    pub groups: u32,
    pub in_off: u32,
    pub in_rs: u32,
    pub in_gs: u32,
    pub out_off: u32,
    pub accumulate: u32,
    /// `REDUCE_SUM` or `REDUCE_MAX`.
    pub op: u32,
    pub scale: f32,
    pub out_gs: u32,
    pub _pad: u32,
}

/// RMSNorm over contiguous rows: `y = x / rms(x) * w` (w absent = 1), rms saved per row.
/// The weight gradient runs over `groups` (0 means 1) such norms laid out back to back
/// (`rows * cols` values, `rows` rms) with their weight gradients `dw_gs` apart.
/// File: `rmsnorm.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct RmsNormParams {
    pub rows: u32,
    pub cols: u32,
    pub x_off: u32,
    pub w_off: u32,
    pub y_off: u32,
    pub r_off: u32,
    pub dy_off: u32,
    pub dx_off: u32,
    pub dw_off: u32,
    /// Backward input: 1 = `dx +=`, 0 = `dx =`.
    pub accumulate: u32,
    pub groups: u32,
    pub dw_gs: u32,
}

/// Activation function codes shared with WGSL.
pub const REDUCE_SUM: u32 = 0;
pub const REDUCE_MAX: u32 = 1;

pub const ACT_GELU: u32 = 0;
pub const ACT_RELU: u32 = 1;
pub const ACT_TANH: u32 = 2;

/// Elementwise activation `y = act(x)`; backward `dx = dy * act'(x)`. File: `activation.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct ActParams {
    pub len: u32,
    pub kind: u32,
    pub x_off: u32,
    pub y_off: u32,
    pub dy_off: u32,
    pub dx_off: u32,
    pub _pad: [u32; 2],
}

/// Stream ops on `X: [rows, n, c]` with per-row coefficients `H: [rows, h_rs]` laid out
/// `[pre (n) | post (n) | res (n*n, [k][i])]`; `h_off == NONE` means identity coefficients
/// (pre = post = 1, res = I). File: `streams.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StreamParams {
    pub rows: u32,
    pub n: u32,
    pub c: u32,
    pub x_off: u32,
    pub y_off: u32,
    pub h_off: u32,
    pub h_rs: u32,
    pub out_off: u32,
    pub dout_off: u32,
    pub dx_off: u32,
    pub dy_off: u32,
    pub dh_off: u32,
    pub dh_rs: u32,
    /// Update forward: round the new streams to the nearest f16 value.
    pub round_f16: u32,
    pub _pad: [u32; 2],
}

/// Dynamic HC coefficients from `D = Z @ [w_pre; w_res; w_post]^T`, `D: [rows, n, n+2]`, and the
/// small parameters at `p_off`: `[s_alpha, s_beta, b_pre (n), b_res (n*n), b_post (n)]`.
/// Backward writes `dD` and per-row partial gradients of those small parameters
/// (`[rows, 2 + 2n + n*n]`, same order). File: `hyper.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct HcCoeffParams {
    pub rows: u32,
    pub n: u32,
    pub d_off: u32,
    pub p_off: u32,
    pub h_off: u32,
    pub h_rs: u32,
    pub dh_off: u32,
    pub dd_off: u32,
    pub part_off: u32,
    pub _pad: [u32; 3],
}

/// mHC coefficients from `A = phi @ v` (`A: [rows, h_rs]`, `v = X: [rows, n*c]`) and the small
/// parameters at `p_off`: `[alpha (3), bias (n*n + 2n)]`: `m = A / rms(v)`, sigmoid pre,
/// 2*sigmoid post, Sinkhorn res. Backward writes `dA = dm / rms(v)` (`=`), adds the rms path
/// into `dv` (`+=`), and per-row partial gradients of `[alpha, bias]`. File: `hyper.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct MhcCoeffParams {
    pub rows: u32,
    pub n: u32,
    pub c: u32,
    pub v_off: u32,
    pub a_off: u32,
    pub p_off: u32,
    pub r_off: u32,
    pub h_off: u32,
    pub h_rs: u32,
    pub iters: u32,
    pub eps: f32,
    pub dh_off: u32,
    pub da_off: u32,
    pub part_off: u32,
    pub dv_off: u32,
    /// Sinkhorn's divisors of every row, `[rows, iters * 2 * n]` (scratch the backward reads).
    pub div_off: u32,
}

/// Residual kinds as the fused block kernels see them.
pub const BLOCK_RESIDUAL: u32 = 0;
pub const BLOCK_HC: u32 = 1;
pub const BLOCK_MHC: u32 = 2;

/// One whole block of one variant over `rows` rows, as one dispatch each way (`block.wgsl`):
/// forward = coefficients, combine, RMSNorm, fc1 + bias + activation, fc2 + bias, stream
/// update; backward = every activation gradient of the same, in reverse (weight gradients are
/// left to batched products over all blocks). Every intermediate is written where the
/// unfused op list writes it, so the unfused ops of [`crate::block::block_forward_ops`] and
/// [`crate::block::block_backward_ops`] are its exact CPU twin. Offsets of absent tensors
/// (HC's for mHC, say) are [`NONE`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct BlockParams {
    pub rows: u32,
    pub n: u32,
    pub c: u32,
    pub fc: u32,
    /// `BLOCK_RESIDUAL`, `BLOCK_HC` or `BLOCK_MHC`.
    pub kind: u32,
    pub act: u32,
    pub round_f16: u32,
    pub iters: u32,
    pub eps: f32,
    // Forward.
    pub x_off: u32,          // X_l      [rows, n, c]
    pub out_off: u32,        // X_{l+1}  [rows, n, c]
    pub h_off: u32,          // H        [rows, pc]   (NONE: residual)
    pub u_off: u32,          // u        [rows, c]
    pub normed_off: u32,     //          [rows, c]
    pub norm_rms_off: u32,   //          [rows]
    pub hidden_pre_off: u32, //          [rows, fc]
    pub hidden_off: u32,     //          [rows, fc]
    pub y_off: u32,          // F(u)     [rows, c]
    pub norm_w: u32,         //          [c]
    pub fc1_w: u32,          //          [fc, c]
    pub fc1_b: u32,          //          [fc]
    pub fc2_w: u32,          //          [c, fc]
    pub fc2_b: u32,          //          [c]
    pub proj_w: u32,         // HC [n+2, c] / mHC phi [pc, n*c]
    pub small_off: u32,      // HC [2 + 2n + n*n] / mHC [3 + pc]
    pub proj_off: u32,       // HC D [rows, n, n+2] / mHC A [rows, pc]
    pub z_off: u32,          // HC Z [rows, n, c]
    pub z_rms_off: u32,      // HC [rows, n] / mHC rms(v) [rows]
    // Backward.
    pub dout_off: u32,        // dX_{l+1} [rows, n, c]
    pub dx_off: u32,          // dX_l     [rows, n, c]  (=)
    pub dy_off: u32,          // dF(u)    [rows, c]
    pub dhidden_off: u32,     //          [rows, fc]
    pub dhidden_pre_off: u32, //          [rows, fc]
    pub dnormed_off: u32,     //          [rows, c]
    pub du_off: u32,          //          [rows, c]
    pub dh_off: u32,          // dH       [rows, pc]
    pub dproj_off: u32,       // dD / dA
    pub dz_off: u32,          // HC dZ    [rows, n, c]
    pub part_off: u32,        // per-row gradients of the small parameters
    pub div_off: u32,         // mHC Sinkhorn divisors [rows, iters * 2 * n] (scratch)
}

impl BlockParams {
    /// Whether every tensor starts at a multiple of 4 floats and rows of channels and of hidden
    /// units are multiples of 4 long: the block kernels then move channels four at a time in
    /// vec4 loads, and the FFN's outputs and the linear layers' input gradients in vec4 stores
    /// (`block.wgsl`: `QUADS`).
    pub fn quads(&self) -> bool {
        let offsets = [
            self.x_off,
            self.out_off,
            self.h_off,
            self.u_off,
            self.normed_off,
            self.norm_rms_off,
            self.hidden_pre_off,
            self.hidden_off,
            self.y_off,
            self.norm_w,
            self.fc1_w,
            self.fc1_b,
            self.fc2_w,
            self.fc2_b,
            self.proj_w,
            self.small_off,
            self.proj_off,
            self.z_off,
            self.z_rms_off,
            self.dout_off,
            self.dx_off,
            self.dy_off,
            self.dhidden_off,
            self.dhidden_pre_off,
            self.dnormed_off,
            self.du_off,
            self.dh_off,
            self.dproj_off,
            self.dz_off,
            self.part_off,
            self.div_off,
        ];
        self.c.is_multiple_of(4) && self.fc.is_multiple_of(4) && offsets.iter().all(|&o| o == NONE || o.is_multiple_of(4))
    }

    /// Coefficients per row, `[pre (n) | post (n) | res (n*n)]`.
    pub fn coeffs(&self) -> u32 {
        self.n * self.n + 2 * self.n
    }
}

/// Rows one workgroup of the fused block kernels carries (`TILE_ROWS` in `block.wgsl`): each
/// weight read from memory serves this many rows.
pub const BLOCK_TILE_ROWS: u32 = 8;

/// Largest Sinkhorn iteration count and stream count the kernels hold state for.
pub const MAX_SINKHORN_ITERS: usize = 100;
pub const MAX_STREAMS: usize = 8;
/// Longest context the attention kernels hold a row of scores for (`MAX_CTX` in
/// `attention.wgsl`): the config's largest `ctx`.
pub const ATTENTION_MAX_CTX: u32 = 256;

/// Softmax cross-entropy per row: loss and correctness (forward), `dlogits = scale*(p - onehot)`
/// (backward). Labels are stored in the arena as exact small floats; a negative label (the
/// transformer's "no loss here") gives loss 0, correct 0 and a zero gradient. File: `loss.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct XentParams {
    pub rows: u32,
    pub k: u32,
    pub logits_off: u32,
    pub labels_off: u32,
    pub loss_off: u32,
    pub correct_off: u32,
    pub dlogits_off: u32,
    pub scale: f32,
}

/// Token and position embeddings of `rows = batch * t` tokens (the transformer's input):
/// forward `out[r] = tok[token[r]] + pos[r mod t]`; the token gradient `dtok[v] += sum of dout[r]
/// over the rows whose token is v`, one thread per (v, column) scanning the rows, since WebGPU
/// has no float atomics (the position gradient is a `Reduce` over the batch). Token ids live in
/// the arena as exact small floats. File: `embed.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct EmbedParams {
    pub rows: u32,
    pub c: u32,
    pub t: u32,
    pub vocab: u32,
    pub tokens_off: u32, // [rows]
    pub tok_off: u32,    // [vocab, c]
    pub pos_off: u32,    // [t, c]
    pub out_off: u32,    // [rows, c]
    pub dout_off: u32,   // [rows, c]
    pub dtok_off: u32,   // [vocab, c]  (+=)
    pub _pad: [u32; 2],
}

/// Causal multi-head self-attention over `batch` sequences of `t` positions, one thread per
/// (sequence, head, position) and no workgroup memory, so no context length is special. Rows
/// hold `[q | k | v]`, each `heads * dh` wide, head `h` in columns `h*dh ..`; the output is the
/// heads side by side. Forward saves each query's log-sum-exp; backward recomputes the
/// probabilities from it, first per query (`dq` and `delta_i = sum_j p_ij dp_ij`), then per key
/// (`dk`, `dv`), all `=`. File: `attention.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AttentionParams {
    pub batch: u32,
    pub t: u32,
    pub heads: u32,
    pub dh: u32,
    pub qkv_off: u32,   // [batch * t, 3 * heads * dh]
    pub out_off: u32,   // [batch * t, heads * dh]
    pub lse_off: u32,   // [batch, heads, t]
    pub dout_off: u32,  // [batch * t, heads * dh]
    pub dqkv_off: u32,  // [batch * t, 3 * heads * dh]  (=)
    pub delta_off: u32, // [batch, heads, t]  (scratch: the queries' pass writes, the keys' reads)
    pub _pad: [u32; 2],
}

/// Per segment `s < count` of `[in_off + s*seg_stride, +seg_len)`: `out[2s] = sum x^2`,
/// `out[2s+1] = number of non-finite x`. File: `metrics.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StatsParams {
    pub count: u32,
    pub seg_len: u32,
    pub seg_stride: u32,
    pub in_off: u32,
    pub out_off: u32,
    pub _pad: [u32; 3],
}

/// End of a training step (one thread): loss and accuracy means, global gradient norm, clip
/// scale, and the divergence record (first non-finite step and block). File: `metrics.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct FinalizeParams {
    pub rows: u32,
    pub depth: u32,
    pub loss_off: u32,
    pub correct_off: u32,
    /// `[2 + 2*depth + 2]`: embed, blocks, head gradient stats (sumsq, non-finite count).
    pub grad_stats_off: u32,
    /// `[2*depth]`: stats of the streams after each block.
    pub stream_stats_off: u32,
    pub metrics_off: u32,
    pub clip: f32,
    /// The loss is the sum over `rows` divided by `loss_divisor` (the scored positions); the
    /// accuracy the sum of `acc_rows` values at `correct_off` divided by `acc_divisor`.
    pub loss_divisor: u32,
    pub acc_rows: u32,
    pub acc_divisor: u32,
    pub _pad: u32,
}

/// Whole-answer correctness of sequences (thread per sequence): `out[s] = 1` where the `len`
/// per-position flags of sequence `s` sum to `answer` (every scored position right), else 0.
/// File: `metrics.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AnswerParams {
    pub sequences: u32,
    pub len: u32,
    pub answer: u32,
    pub in_off: u32,
    pub out_off: u32,
    pub _pad: [u32; 3],
}

/// Composite gains per token (thread per row): prefix products forward (max abs row sum) and
/// suffix products backward (max abs column sum) of the per-block `H_res`, plus the
/// doubly-stochastic error. `h_off == NONE`: identity. File: `metrics.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct GainsParams {
    pub rows: u32,
    pub n: u32,
    pub depth: u32,
    pub h_off: u32,
    pub h_block_stride: u32,
    pub h_rs: u32,
    /// `[rows, 2*depth]`: forward gains of every block, then backward gains.
    pub out_off: u32,
    /// `[rows, 2]`: max |row sum - 1|, max |column sum - 1| over blocks.
    pub ds_off: u32,
}

pub const OPT_ADAMW: u32 = 0;
pub const OPT_SGD: u32 = 1;

/// One optimiser update over the flat parameter buffer; gradients are zeroed after use so the
/// next backward can accumulate. Step-dependent scalars (lr, bias corrections) and the clip
/// scale / divergence flag are read from the metrics block. File: `optimizer.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct OptimizerParams {
    pub len: u32,
    pub p_off: u32,
    pub g_off: u32,
    pub m_off: u32,
    pub v_off: u32,
    pub mask_off: u32,
    pub metrics_off: u32,
    pub kind: u32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub wd: f32,
    pub momentum: f32,
    pub _pad: [u32; 3],
}

impl OptimizerParams {
    /// Whether every region starts at a multiple of 4 floats (the arena plan's always do): a
    /// thread then updates four parameters from vec4 loads (`optimizer.wgsl`: `QUADS`).
    pub fn quads(&self) -> bool {
        [self.p_off, self.g_off, self.m_off, self.v_off, self.mask_off].iter().all(|o| o.is_multiple_of(4))
    }
}

/// Slots of the per-variant metrics block (offsets relative to its start). The host writes
/// `STEP`, `LR`, `BC1`, `BC2` before each step; kernels write the rest.
pub mod slot {
    pub const STEP: u32 = 0;
    pub const LR: u32 = 1;
    pub const BC1: u32 = 2;
    pub const BC2: u32 = 3;
    pub const LOSS: u32 = 4;
    pub const ACC: u32 = 5;
    pub const GRAD_NORM: u32 = 6;
    pub const CLIP_SCALE: u32 = 7;
    /// -1 while finite; else the 0-based step of the first non-finite value.
    pub const DIVERGED_STEP: u32 = 8;
    /// Block index where it appeared; `depth` means the head / loss.
    pub const DIVERGED_BLOCK: u32 = 9;
    pub const TEST_LOSS: u32 = 10;
    pub const TEST_ACC: u32 = 11;
    pub const DS_ROW: u32 = 12;
    pub const DS_COL: u32 = 13;
    /// Number of scalar slots; per-block arrays follow.
    pub const SCALARS: u32 = 16;
}

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
                    && p.m.div_ceil(8) * p.n.div_ceil(8) * p.batch.max(1) >= REGISTERS8_MIN_BLOCKS =>
            {
                Op::Matmul(p.with_kernel(MatmulKernel::Registers8))
            }
            other => other,
        }
    }

    /// Values of the WGSL pipeline-overridable constants this op's pipeline needs; the fused
    /// block kernels run `block_threads` threads a workgroup ([`block_threads`]) and their
    /// linear layers in `block`'s register blocks.
    pub fn overrides(&self, block_threads: u32, block: RegisterBlock) -> Vec<(&'static str, f64)> {
        let constants: &[(&'static str, f64)] = match self {
            // Set by n alone, whatever the kind: residual, HC and mHC at n <= 4 share pipelines.
            Op::Fused(_, p) => {
                return vec![
                    ("BLOCK_THREADS", block_threads as f64),
                    ("WIDE_BLOCKS", (block == RegisterBlock::Eight) as u32 as f64),
                    ("QUADS", p.quads() as u32 as f64),
                    ("SINKHORN_IN_REGISTERS", sinkhorn_in_registers(p.n) as u32 as f64),
                ];
            }
            Op::MhcCoeffForward(p) | Op::MhcCoeffBackward(p) => {
                return vec![("SINKHORN_IN_REGISTERS", sinkhorn_in_registers(p.n) as u32 as f64)];
            }
            Op::Optimizer(p) => return vec![("QUADS", p.quads() as u32 as f64)],
            Op::Matmul(p) => match (p.kernel(), matmul_rows_per_thread(p.m)) {
                (MatmulKernel::Registers | MatmulKernel::Registers8, _) => &[("WG_1D", MATMUL_REGISTER_WORKGROUP as f64)],
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
                    let side = kernel.register_side();
                    Grid::ThreadsIn(p.m.div_ceil(side) * p.n.div_ceil(side) * p.batch.max(1), MATMUL_REGISTER_WORKGROUP)
                }
                MatmulKernel::Direct => Grid::Threads(p.m * p.n * p.batch.max(1)),
                MatmulKernel::Tiled => {
                    Grid::Tiles(p.n.div_ceil(MATMUL_TILE), p.m.div_ceil(16 * matmul_rows_per_thread(p.m)), p.batch.max(1))
                }
            },
            Op::Reduce(p) => Grid::Threads(p.groups * p.cols),
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
            Op::EmbedBackwardTokens(p) => Grid::Threads(p.vocab * p.c),
            Op::AttentionForward(p) | Op::AttentionBackwardQueries(p) | Op::AttentionBackwardKeys(p) => {
                Grid::Threads(p.batch * p.heads * p.t)
            }
        }
    }
}

/// Every shader file, embedded so wasm and native run the same bytes. The prelude (arena
/// binding and shared helpers) is prepended to each.
pub const SHADER_PRELUDE: &str = include_str!("../shaders/prelude.wgsl");
pub const SHADER_FILES: &[(&str, &str)] = &[
    ("matmul", include_str!("../shaders/matmul.wgsl")),
    ("reduce", include_str!("../shaders/reduce.wgsl")),
    ("rmsnorm", include_str!("../shaders/rmsnorm.wgsl")),
    ("activation", include_str!("../shaders/activation.wgsl")),
    ("streams", include_str!("../shaders/streams.wgsl")),
    ("hyper", include_str!("../shaders/hyper.wgsl")),
    ("loss", include_str!("../shaders/loss.wgsl")),
    ("metrics", include_str!("../shaders/metrics.wgsl")),
    ("optimizer", include_str!("../shaders/optimizer.wgsl")),
    ("block", include_str!("../shaders/block.wgsl")),
    ("embed", include_str!("../shaders/embed.wgsl")),
    ("attention", include_str!("../shaders/attention.wgsl")),
];

/// Files whose functions another file calls: the fused block kernels reuse the hyper-connection
/// coefficient math and the activations of the unfused kernels rather than repeating them.
const SHADER_LIBRARIES: &[(&str, &[&str])] = &[("block", &["activation", "hyper"])];

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

    fn source(self) -> &'static str {
        match self {
            ArenaView::Vec4s => include_str!("../shaders/arena_vec4s.wgsl"),
            ArenaView::Floats => include_str!("../shaders/arena_floats.wgsl"),
        }
    }
}

/// Full WGSL source of one shader file (arena view + prelude + libraries + file).
pub fn shader_source(file: &str, view: ArenaView) -> Option<String> {
    let body = |name: &str| SHADER_FILES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b);
    let mut source = format!("{}\n{SHADER_PRELUDE}\n", view.source());
    let libraries = SHADER_LIBRARIES.iter().find(|(n, _)| *n == file).map_or(&[][..], |(_, l)| l);
    for library in libraries {
        source.push_str(body(library)?);
        source.push('\n');
    }
    source.push_str(body(file)?);
    Some(source)
}
