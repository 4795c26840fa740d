//! Where every tensor of one variant lives in its arena: the arena plan, the activations a
//! forward pass writes (the training batch's, per block; evaluation's, one block's), the metrics
//! block, and the bound that refuses an arena too large before anything is allocated.

use crate::config::{Arch, Config, ResidualKind};
use crate::kernels::slot;
use crate::layout::{Dims, ParamLayout};

/// How a block becomes dispatches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// `block.wgsl` kernels: an MLP block one dispatch each way with weight gradients batched
    /// over all blocks; a transformer's FFN sublayer one dispatch each way and the wrapping
    /// around its attention one dispatch a side.
    Fused,
    /// A kernel per op (6 to 19 per block), with tiled matmuls that spread one wide layer over
    /// the whole GPU.
    Unfused,
}

/// Widest FFN hidden layer the fused kernels take: a fused workgroup computes every output of
/// its rows, so beyond this a layer's matmul keeps too few workgroups busy.
pub const FUSED_MAX_HIDDEN: usize = 1024;

impl Kernels {
    pub fn for_config(config: &Config) -> Kernels {
        if (config.ffn * config.width) as usize <= FUSED_MAX_HIDDEN {
            Kernels::Fused
        } else {
            Kernels::Unfused
        }
    }

    /// Whether the weight gradients of all blocks are one op per parameter kind, their inputs
    /// kept per block: the fused MLP's. A transformer's follow each unit's backward.
    pub fn batches_weight_grads(self, arch: Arch) -> bool {
        self == Kernels::Fused && arch == Arch::Mlp
    }
}

/// What one example contributes to the loss and the accuracy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scoring {
    /// Rows (and targets) per example: 1 for the MLP, `ctx` positions for the transformer.
    pub rows: usize,
    /// Targets per example that count (the rest are `tokens::NO_TARGET`).
    pub scored: usize,
    /// An example is right only when all its scored targets are (the algorithmic tasks);
    /// otherwise accuracy is per target.
    pub whole_answer: bool,
}

impl Scoring {
    pub fn of(config: &Config) -> Scoring {
        match config.arch {
            Arch::Mlp => Scoring { rows: 1, scored: 1, whole_answer: false },
            Arch::Transformer => {
                let ctx = config.ctx as usize;
                let scored = crate::tokens::scored_per_example(config.task, ctx);
                Scoring { rows: ctx, scored, whole_answer: config.task != crate::config::Task::Text }
            }
        }
    }
}

/// Test metrics use at most this many held-out examples (the first of the shuffled split).
pub const EVAL_MAX_ROWS: usize = 2048;
/// Edge of the decision-surface grid of 2-D tasks, which spans [-PROBE_EXTENT, PROBE_EXTENT]^2.
pub const PROBE_GRID: usize = 32;
pub const PROBE_EXTENT: f32 = 1.2;

/// An experiment whose arena is too big to address or to hold.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[error("this experiment needs {needed_mib:.0} MiB per variant, more than the {limit} of {limit_mib:.0} MiB; lower depth, width, streams or batch")]
pub struct TooLarge {
    pub needed_mib: f64,
    pub limit: &'static str,
    pub limit_mib: f64,
}

/// Kernels index the arena with u32 element offsets: 16 GiB is the ceiling on any device.
pub const ARENA_ADDRESS_LIMIT: u64 = (u32::MAX as u64) * 4;

/// A generous upper bound, in elements, of the arena of any variant of `config`, computed in
/// u64 so that even absurd configs cannot overflow (`usize` has 32 bits in the browser). It
/// over-counts every region of [`ArenaPlan`] (hc and mhc terms both, alignment slack).
pub fn arena_upper_bound(config: &Config, test_rows: usize, kernels: Kernels) -> u64 {
    if config.arch == Arch::Transformer {
        return transformer_upper_bound(config, test_rows);
    }
    let (b, c, l, n) = (config.batch as u64, config.width as u64, config.depth as u64, config.streams as u64);
    let f = config.ffn as u64 * c;
    let (d_in, k) = (config.d_in() as u64, config.classes() as u64);
    let pc = n * n + 2 * n;
    let block_params = 3 * c + 2 * f * c + f + (n + 2) * c + 2 + 2 * n + n * n + pc * n * c + 3 + pc;
    let params = (d_in + 3) * c + l * block_params + k * (c + 1);
    let per_row = (l + 1) * n * c
        + l * (4 * c + 2 * f + 2 * pc + n * c + 2 * n + n * (n + 2) + 2)
        // fused kernels keep these backward intermediates per block
        + if kernels == Kernels::Fused { l * (2 * c + f + n * (n + 2) + 2 * pc + 3) } else { 0 }
        + 2 * config.sinkhorn_iters as u64 * n
        + 3 * n * c + 3 * pc + n * (n + 2) + 3 + pc + 2 * n + n * n + 8 * c + 2 * f + 2 * k + d_in + 2 * l + 8;
    let rows_outside_batch = (test_rows.min(EVAL_MAX_ROWS) + PROBE_GRID * PROBE_GRID) as u64 * (d_in + 1 + k);
    let metrics = slot::SCALARS as u64 + 2 * (l + 2) + 4 * l + l * pc;
    // evaluation's tensors: at most the budget, or one row when a row is larger
    let eval = EVAL_BUDGET_FLOATS as u64 + per_row;
    5 * params + b * per_row + rows_outside_batch + eval + metrics + 4 * 64
}

/// [`arena_upper_bound`] of a transformer: every term of the MLP's bound for twice the units
/// (one per sublayer) at `batch * ctx` rows, plus the attention's tensors and the embeddings.
fn transformer_upper_bound(config: &Config, test_rows: usize) -> u64 {
    let t = config.ctx as u64;
    let (rows, c, units, n) = (config.batch as u64 * t, config.width as u64, 2 * config.depth as u64, config.streams as u64);
    let f = config.ffn as u64 * c;
    let v = config.classes() as u64;
    let pc = n * n + 2 * n;
    let coefficients = (n + 2) * c + 2 + 2 * n + n * n + pc * n * c + 3 + pc;
    let block_params = 5 * c + 2 * f * c + f + 4 * c * c + 4 * c + 2 * coefficients;
    let params = (v + t) * c + config.depth as u64 * block_params + v * (c + 1);
    let per_unit = 8 * c + 2 * f + 2 * pc + n * c + 2 * n + n * (n + 2) + 2 + config.heads as u64;
    let per_row = (units + 1) * n * c
        + units * per_unit
        + 2 * config.sinkhorn_iters as u64 * n
        + 3 * n * c
        + 3 * pc
        + n * (n + 2)
        + 3
        + pc
        + 2 * n
        + n * n
        + 16 * c
        + 2 * f
        + 2 * v
        + 4
        + 2 * units
        + 2 * config.heads as u64;
    let held_out = test_rows.min(EVAL_MAX_ROWS) as u64 * 2 * t;
    let metrics = slot::SCALARS as u64 + 2 * (units + 2) + 4 * units + units * pc;
    let eval = EVAL_BUDGET_FLOATS as u64 + t * per_row;
    5 * params + rows * per_row + held_out + eval + metrics + 4 * 64
}

/// Bump allocator over the arena.
struct Alloc(usize);
impl Alloc {
    fn take(&mut self, len: usize) -> u32 {
        let off = self.0;
        // Keep every tensor 4-float aligned; it costs nothing and keeps rows tidy in dumps.
        self.0 += len.div_ceil(4) * 4;
        off as u32
    }
}

/// Most rows evaluation and the probe run at once, and the most memory their tensors take.
pub const EVAL_MAX_ROWS_AT_ONCE: usize = 1024;
pub const EVAL_BUDGET_FLOATS: usize = 8 << 20;

/// What sizes a forward pass's tensors.
struct ActivationShape {
    dims: Dims,
    iters: usize,
}

impl ActivationShape {
    /// Floats of one row's forward tensors in one block, and outside blocks.
    fn per_row(&self) -> (usize, usize) {
        let Dims { width: c, hidden: fc, streams: n, classes: k, kind, .. } = self.dims;
        let pc = self.dims.coeffs();
        let (hc, mhc) = (kind == ResidualKind::Hc, kind == ResidualKind::Mhc);
        let only = |yes: bool, len: usize| if yes { len } else { 0 };
        let attention = only(self.dims.arch == Arch::Transformer, 4 * c + self.dims.heads);
        let block = 3 * c + 1 + 2 * fc + attention + only(hc || mhc, pc) + only(hc, n * c + n + n * (n + 2)) + only(mhc, pc + 1);
        let outside = c + 3 * c + 1 + k + 2 + only(mhc, self.iters * 2 * n);
        (block, outside)
    }

    /// Rows evaluation runs at once: all of them up to a cap, fewer where memory runs out; a
    /// whole number of sequences for the transformer.
    fn eval_rows(&self, wanted: usize) -> usize {
        let (block, outside) = self.per_row();
        let per_row = block + outside + 2 * self.dims.streams * self.dims.width;
        let rows = wanted.clamp(1, EVAL_MAX_ROWS_AT_ONCE).min((EVAL_BUDGET_FLOATS / per_row).max(1));
        match self.dims.arch {
            Arch::Mlp => rows,
            Arch::Transformer => (rows / self.dims.ctx).max(1) * self.dims.ctx,
        }
    }
}

/// Where a forward pass keeps its tensors (element offsets). The training batch keeps every
/// block's, which the backward reads (`per_block`); evaluation keeps one block's and two
/// stream buffers it alternates between, so it can run many rows in little memory.
#[derive(Clone, Copy, Debug)]
pub struct Activations {
    /// Rows the tensors hold (`R`).
    pub rows: u32,
    pub per_block: bool,
    pub h0: u32,           // [R, C]
    pub streams: u32,      // per block: [L+1, R, n, C] X before block 0 .. after block L-1; else [2, R, n, C]
    pub block_in: u32,     // [L?, R, C]  u = combine(X)
    pub normed: u32,       // [L?, R, C]
    pub norm_rms: u32,     // [L?, R]
    pub hidden_pre: u32,   // [L?, R, FC]
    pub hidden: u32,       // [L?, R, FC]
    pub block_out: u32,    // [L?, R, C]  y = F(u)
    pub coeffs: u32,       // [L?, R, Pc]  [pre | post | res]
    pub hc_z: u32,         // [L?, R, n, C]  per-stream normalised X (hc)
    pub hc_z_rms: u32,     // [L?, R, n]
    pub hc_d: u32,         // [L?, R, n, n+2]  Z @ W_hc^T (hc)
    pub mhc_a: u32,        // [L?, R, Pc]  phi @ v (mhc)
    pub mhc_rms: u32,      // [L?, R]
    pub mhc_divisors: u32, // [R, iters * 2 * n]  Sinkhorn's divisors, scratch of one block (mhc)
    // Transformer attention, per block (not per unit):
    pub qkv: u32,          // [L?, R, 3C]
    pub attn_out: u32,     // [L?, R, C]
    pub lse: u32,          // [L?, R / ctx, heads, ctx]
    pub head_z: u32,       // [R, C]
    pub head_normed: u32,  // [R, C]
    pub head_rms: u32,     // [R]
    pub logits: u32,       // [R, K]
    pub loss_rows: u32,    // [R]
    pub correct_rows: u32, // [R]
}

impl Activations {
    fn take(a: &mut Alloc, shape: &ActivationShape, rows: usize, per_block: bool) -> Activations {
        let Dims { width: c, hidden: fc, streams: n, classes: k, depth, kind, heads, .. } = shape.dims;
        let pc = shape.dims.coeffs();
        let (hc, mhc) = (kind == ResidualKind::Hc, kind == ResidualKind::Mhc);
        let transformer = shape.dims.arch == Arch::Transformer;
        let only = |yes: bool, len: usize| if yes { len } else { 0 };
        // Tensors of a residual unit (an MLP block, a transformer sublayer) are per unit; the
        // FFN's hidden layers and the attention's per block.
        let units = shape.dims.units();
        let blocks = if per_block { depth } else { depth.min(1) };
        let unit_slots = if per_block { units } else { units.min(1) };
        let stream_buffers = if per_block { units + 1 } else { 2 };
        let r = rows;
        Activations {
            rows: rows as u32,
            per_block,
            h0: a.take(r * c),
            streams: a.take(stream_buffers * r * n * c),
            block_in: a.take(unit_slots * r * c),
            normed: a.take(unit_slots * r * c),
            norm_rms: a.take(unit_slots * r),
            hidden_pre: a.take(blocks * r * fc),
            hidden: a.take(blocks * r * fc),
            block_out: a.take(unit_slots * r * c),
            coeffs: a.take(only(hc || mhc, unit_slots * r * pc)),
            hc_z: a.take(only(hc, unit_slots * r * n * c)),
            hc_z_rms: a.take(only(hc, unit_slots * r * n)),
            hc_d: a.take(only(hc, unit_slots * r * n * (n + 2))),
            mhc_a: a.take(only(mhc, unit_slots * r * pc)),
            mhc_rms: a.take(only(mhc, unit_slots * r)),
            mhc_divisors: a.take(only(mhc, r * shape.iters * 2 * n)),
            qkv: a.take(only(transformer, blocks * r * 3 * c)),
            attn_out: a.take(only(transformer, blocks * r * c)),
            lse: a.take(only(transformer, blocks * r * heads)),
            head_z: a.take(r * c),
            head_normed: a.take(r * c),
            head_rms: a.take(r),
            logits: a.take(r * k),
            loss_rows: a.take(r),
            correct_rows: a.take(r),
        }
    }

    /// Unit or block `l`'s part of a `[L, R, row_len]` tensor (the one block's, when not per block).
    pub fn at(&self, base: u32, l: u32, row_len: u32) -> u32 {
        if self.per_block {
            base + l * self.rows * row_len
        } else {
            base
        }
    }

    /// X_l: the streams entering unit l (l = units: the streams after the last one).
    pub fn streams_at(&self, l: u32, row_len: u32) -> u32 {
        let buffer = if self.per_block { l } else { l % 2 };
        self.streams + buffer * self.rows * row_len
    }
}

/// Where every tensor of one variant lives in its arena (element offsets).
#[derive(Clone, Debug)]
pub struct ArenaPlan {
    pub len: usize,
    pub params: u32,     // [P]
    pub grads: u32,      // [P]
    pub moment1: u32,    // [P]
    pub moment2: u32,    // [P]
    pub decay_mask: u32, // [P]
    pub metrics: u32,    // [metrics_len]
    pub metrics_len: u32,
    pub batch_x: u32, // [B, d_in]
    pub batch_y: u32, // [B]  labels as exact floats
    pub test_x: u32,  // [T, d_in]
    pub test_y: u32,  // [T]
    pub test_rows: u32,
    pub probe_x: u32,      // [G*G, d_in]  decision-surface grid (2-D tasks)
    pub probe_y: u32,      // [eval rows]  dummy labels for the probe's forward
    pub probe_logits: u32, // [G*G, K]
    pub probe_rows: u32,
    /// The training batch's forward: every block's tensors, which the backward reads.
    pub train: Activations,
    /// Evaluation and the probe: one block's tensors and two stream buffers, for many rows.
    pub eval: Activations,
    // Backward scratch, reused by every block (activation gradients are written with `=`).
    pub d_streams: [u32; 2], // 2 x [B, n, C]  ping-pong: grad of X_{l+1} and of X_l
    pub d_logits: u32,       // [B, K]
    pub d_head_normed: u32,  // [B, C]
    pub d_head_z: u32,       // [B, C]
    // Fused MLP: kept per block ([L, ...]) for the batched weight gradients; else one unit's.
    pub d_block_out: u32,  // [L?, B, C]
    pub d_hidden: u32,     // [B, FC]
    pub d_hidden_pre: u32, // [L?, B, FC]
    pub d_normed: u32,     // [L?, B, C]
    pub d_block_in: u32,   // [B, C]
    pub d_coeffs: u32,     // [B, Pc]
    pub d_hc_d: u32,       // [L?, B, n, n+2]
    pub d_hc_z: u32,       // [B, n, C]
    pub d_mhc_a: u32,      // [L?, B, Pc]
    pub partials: u32,     // [L?, B, Q]  per-row gradients of a block's small hyper-connection params
    pub d_h0: u32,         // [B, C]
    pub gain_rows: u32,    // [B, 2L]
    pub ds_rows: u32,      // [B, 2]
    // Transformer (B counts positions: batch * ctx):
    pub d_qkv: u32,      // [B, 3C]
    pub d_attn_out: u32, // [B, C]
    pub delta: u32,      // [B / ctx, heads, ctx]
    pub answers: u32,    // [examples]  whole-answer correctness (the training batch's, or a test chunk's)
}

/// Offsets inside the metrics block (relative to `ArenaPlan::metrics`).
#[derive(Clone, Copy, Debug)]
pub struct MetricsPlan {
    pub grad_stats: u32,   // [2 * (L + 2)]  embed, blocks, head: (sumsq, non-finite count)
    pub stream_stats: u32, // [2 * L]  streams after each block
    pub gains: u32,        // [2 * L]  batch-mean forward gains, then backward gains
    pub coeff_mean: u32,   // [L, Pc]  batch-mean coefficients
    pub len: u32,
}

impl MetricsPlan {
    pub fn new(depth: usize, coeffs: usize) -> MetricsPlan {
        let l = depth as u32;
        let grad_stats = slot::SCALARS;
        let stream_stats = grad_stats + 2 * (l + 2);
        let gains = stream_stats + 2 * l;
        let coeff_mean = gains + 2 * l;
        let len = coeff_mean + l * coeffs as u32;
        MetricsPlan { grad_stats, stream_stats, gains, coeff_mean, len }
    }
}

impl ArenaPlan {
    /// Lays out the arena of `layout`'s variant of `config` with `test_rows` held-out rows.
    pub fn new(config: &Config, layout: &ParamLayout, test_rows: usize, kernels: Kernels) -> ArenaPlan {
        let dims = layout.dims;
        let kind = dims.kind;
        let transformer = dims.arch == Arch::Transformer;
        // Rows are examples for the MLP, positions (examples x ctx) for the transformer, whose
        // targets are per position.
        let per_example = Scoring::of(config).rows;
        let batch = config.batch as usize * per_example;
        let test_rows = test_rows.min(EVAL_MAX_ROWS);
        let probe_rows = if config.task.is_2d() { PROBE_GRID * PROBE_GRID } else { 0 };
        let (b, c, fc, n, l, k, pc) = (batch, dims.width, dims.hidden, dims.streams, dims.units(), dims.classes, dims.coeffs());
        let (hc, mhc) = (kind == ResidualKind::Hc, kind == ResidualKind::Mhc);
        let only = |yes: bool, len: usize| if yes { len } else { 0 };
        let metrics = MetricsPlan::new(l, pc);
        let shape = ActivationShape { dims, iters: config.sinkhorn_iters as usize };
        let eval_rows = shape.eval_rows((test_rows * per_example).max(probe_rows));
        // Blocks whose backward intermediates are kept for the batched weight gradients.
        let saved = if kernels.batches_weight_grads(dims.arch) { l } else { 1 };
        let mut a = Alloc(0);
        let p = layout.total;
        let mut plan = ArenaPlan {
            len: 0,
            params: a.take(p),
            grads: a.take(p),
            moment1: a.take(p),
            moment2: a.take(p),
            decay_mask: a.take(p),
            metrics: a.take(metrics.len as usize),
            metrics_len: metrics.len,
            batch_x: a.take(config.batch as usize * dims.d_in),
            batch_y: a.take(b),
            test_x: a.take(test_rows * dims.d_in),
            test_y: a.take(test_rows * per_example),
            test_rows: test_rows as u32,
            probe_x: a.take(probe_rows * dims.d_in),
            probe_y: a.take(eval_rows),
            probe_logits: a.take(probe_rows * k),
            probe_rows: probe_rows as u32,
            train: Activations::take(&mut a, &shape, b, true),
            eval: Activations::take(&mut a, &shape, eval_rows, false),
            d_streams: [a.take(b * n * c), a.take(b * n * c)],
            d_logits: a.take(b * k),
            d_head_normed: a.take(b * c),
            d_head_z: a.take(b * c),
            d_block_out: a.take(saved * b * c),
            d_hidden: a.take(b * fc),
            d_hidden_pre: a.take(saved * b * fc),
            d_normed: a.take(saved * b * c),
            d_block_in: a.take(b * c),
            d_coeffs: a.take(only(hc || mhc, b * pc)),
            d_hc_d: a.take(only(hc, saved * b * n * (n + 2))),
            d_hc_z: a.take(only(hc, b * n * c)),
            d_mhc_a: a.take(only(mhc, saved * b * pc)),
            partials: a.take(only(hc || mhc, saved * b * (3 + pc).max(2 + 2 * n + n * n))),
            d_h0: a.take(b * c),
            gain_rows: a.take(b * 2 * l),
            ds_rows: a.take(b * 2),
            d_qkv: a.take(only(transformer, b * 3 * c)),
            d_attn_out: a.take(only(transformer, b * c)),
            delta: a.take(only(transformer, b * dims.heads)),
            answers: a.take(only(transformer, (config.batch as usize).max(eval_rows / per_example))),
        };
        plan.len = a.0;
        plan
    }
}
