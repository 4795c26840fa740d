//! The parameter struct of every kernel, the named codes they carry and the metrics slots.

use bytemuck::{Pod, Zeroable};

use super::Named;

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

    /// Blocks of `side` x `side` outputs over all the products: a register kernel's threads.
    pub fn register_blocks(&self, side: u32) -> u32 {
        self.m.div_ceil(side) * self.n.div_ceil(side) * self.batch.max(1)
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
    /// Behind it, forward: the stream update.
    WrapOutForward,
    /// Behind it, backward: the stream update's backward.
    WrapOutBackward,
    /// In front of it, backward: the norm's, the combine's and the coefficients' backward.
    WrapInBackward,
}

impl FusedKernel {
    pub const ALL: [FusedKernel; 6] = [
        FusedKernel::BlockForward,
        FusedKernel::BlockBackward,
        FusedKernel::WrapInForward,
        FusedKernel::WrapOutForward,
        FusedKernel::WrapOutBackward,
        FusedKernel::WrapInBackward,
    ];

    /// Its entry point in `block.wgsl`.
    pub fn entry(self) -> &'static str {
        match self {
            FusedKernel::BlockForward => "block_forward",
            FusedKernel::BlockBackward => "block_backward",
            FusedKernel::WrapInForward => "wrap_in_forward",
            FusedKernel::WrapOutForward => "wrap_out_forward",
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

    pub fn entry(self) -> &'static str {
        match self {
            MatmulKernel::Tiled => "matmul",
            MatmulKernel::Direct => "matmul_direct",
            MatmulKernel::Registers => "matmul_registers",
            MatmulKernel::Registers8 => "matmul_registers8",
        }
    }

    /// Outputs per thread along each side (the register kernels only).
    pub(super) fn register_side(self) -> u32 {
        match self {
            MatmulKernel::Registers8 => 8,
            _ => MATMUL_REGISTER_BLOCK,
        }
    }
}

impl Named for MatmulKernel {
    const WHAT: &'static str = "a matmul kernel";
    fn all() -> &'static [Self] {
        &Self::ALL
    }
    fn name(self) -> &'static str {
        match self {
            MatmulKernel::Registers => "registers",
            MatmulKernel::Tiled => "tiled",
            MatmulKernel::Direct => "direct",
            MatmulKernel::Registers8 => "registers8",
        }
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
