//! The training step as data: the op lists that train, evaluate and measure one variant, over
//! the arena `plan.rs` lays out. Both backends run these same lists, so the
//! model's math exists once, here, and the three residual variants share one code path: only
//! how a block's coefficients are made depends on the [`ResidualKind`].

mod mlp;
mod transformer;

use crate::block::{block_weight_grad_ops, linear, linear_input_grad, linear_weight_grad, partials_per_row, unfused_twin};
use crate::config::{Activation, Arch, Config, OptimizerKind, Precision, ResidualKind};
use crate::kernels::*;
use crate::layout::{AttentionTensors, BlockTensors, Dims, ParamLayout};
pub use crate::plan::*;
use crate::reference::ADAM_EPS;

/// The op lists of a [`Program`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpList {
    Train,
    Eval,
    Measure,
    Forward,
    Gradient,
    Probe,
}

impl OpList {
    pub const ALL: [OpList; 6] = [OpList::Train, OpList::Eval, OpList::Measure, OpList::Forward, OpList::Gradient, OpList::Probe];
}

/// Everything one variant's backend needs: layout, arena plan and op lists.
#[derive(Clone, Debug)]
pub struct Program {
    pub dims: Dims,
    pub layout: ParamLayout,
    pub plan: ArenaPlan,
    pub metrics: MetricsPlan,
    /// Examples per training batch (sequences for the transformer).
    pub batch: usize,
    pub scoring: Scoring,
    pub kernels: Kernels,
    /// One training step: forward, loss, backward, stats, divergence check, optimiser.
    pub train: Vec<Op>,
    /// Test loss and accuracy over the uploaded test rows, in chunks of `batch`.
    pub eval: Vec<Op>,
    /// Gains, doubly-stochastic error and mean coefficients of the last forward.
    pub measure: Vec<Op>,
    /// Forward and loss only, for one batch (the `grad` command and checks use `train`).
    pub forward: Vec<Op>,
    /// Forward, loss and backward without the optimiser (`grad` command, gradient checks).
    pub gradient: Vec<Op>,
    /// Logits on the decision-surface grid (2-D tasks; empty otherwise).
    pub probe: Vec<Op>,
}

fn act_code(act: Activation) -> u32 {
    match act {
        Activation::Gelu => ACT_GELU,
        Activation::Relu => ACT_RELU,
        Activation::Tanh => ACT_TANH,
    }
}

/// What builds the ops: sizes, offsets and the settings that change kernels.
struct Builder<'a> {
    d: Dims,
    layout: &'a ParamLayout,
    plan: &'a ArenaPlan,
    mp: MetricsPlan,
    /// Rows of the training batch: examples for the MLP, positions for the transformer.
    batch: u32,
    /// Examples (sequences) of the training batch.
    examples: u32,
    scoring: Scoring,
    act: u32,
    round_f16: u32,
    sinkhorn_iters: u32,
    sinkhorn_eps: f32,
    /// Fused `block.wgsl` dispatches (an MLP block, the transformer's FFN sublayer, the wrapping
    /// around its attention), or the unfused ops.
    fused: bool,
    /// The MLP's weight gradients of all blocks as one op per kind (their inputs kept per block);
    /// the transformer's follow each unit's backward.
    batched_weight_grads: bool,
    tensors: BlockTensors,
    attention: AttentionTensors,
}

/// An nn.Linear applied to `rows` rows: `x: [rows, inp]`, `W: [out, inp]`.
#[derive(Clone, Copy)]
struct Linear {
    rows: u32,
    inp: u32,
    out: u32,
    x: u32,
    w: u32,
}

impl Linear {
    /// `y = x @ W^T + b` (`b == NONE`: no bias).
    fn forward(self, b: u32, y: u32) -> Op {
        let Linear { rows, inp, out, x, w } = self;
        linear(rows, inp, out, x, w, b, y)
    }

    /// `dW += dy^T x`, `db += sum_rows dy` (unless `db == NONE`), and `dx (+)= dy W` when wanted
    /// (`(offset, accumulate)`).
    fn backward(self, ops: &mut Vec<Op>, dw: u32, db: u32, dy: u32, dx: Option<(u32, bool)>) {
        let Linear { rows, inp, out, x, w } = self;
        ops.push(linear_weight_grad(rows, inp, out, dy, x, dw));
        if db != NONE {
            ops.push(sum_rows(rows, out, dy, db, 1.0, true));
        }
        if let Some((dx, accumulate)) = dx {
            ops.push(linear_input_grad(rows, inp, out, dy, w, dx, accumulate));
        }
    }
}

/// `out[j] (+)= scale * sum_i in[i, j]` over a contiguous `[rows, cols]` matrix.
fn sum_rows(rows: u32, cols: u32, input: u32, out: u32, scale: f32, accumulate: bool) -> Op {
    Op::Reduce(ReduceParams {
        rows,
        cols,
        groups: 1,
        in_off: input,
        in_rs: cols,
        in_gs: 0,
        out_off: out,
        accumulate: accumulate as u32,
        op: REDUCE_SUM,
        scale,
        ..Default::default()
    })
}

/// One residual unit (the MLP's block, or one of the transformer's sublayers): its number among
/// the units (its activations, its stream buffers), the block it belongs to (its parameters and
/// hidden layer) and where its parameters lie in the block, relative to the block's start.
#[derive(Clone, Copy)]
struct Unit {
    index: u32,
    block: u32,
    norm: usize,
    /// `fc1.weight, fc1.bias, fc2.weight, fc2.bias`; none for the attention sublayer.
    ffn: Option<[usize; 4]>,
    projection: Option<usize>,
    small: Option<usize>,
}

impl Builder<'_> {
    fn n(&self) -> u32 {
        self.d.streams as u32
    }
    fn c(&self) -> u32 {
        self.d.width as u32
    }
    fn fc(&self) -> u32 {
        self.d.hidden as u32
    }
    fn pc(&self) -> u32 {
        self.d.coeffs() as u32
    }
    fn param(&self, name: &str) -> u32 {
        self.plan.params + self.layout.offset(name) as u32
    }
    fn grad(&self, name: &str) -> u32 {
        self.plan.grads + self.layout.offset(name) as u32
    }
    // The model's linear layers, shared by forward and backward.
    fn embed(&self, rows: u32, x: u32) -> Linear {
        Linear { rows, inp: self.d.d_in as u32, out: self.c(), x, w: self.param("embed.weight") }
    }
    fn head(&self, rows: u32, act: &Activations) -> Linear {
        Linear { rows, inp: self.c(), out: self.d.classes as u32, x: act.head_normed, w: self.param("head.weight") }
    }
    /// X_l of the training batch.
    fn streams_at(&self, l: u32) -> u32 {
        self.plan.train.streams_at(l, self.n() * self.c())
    }
    fn coeffs_at(&self, l: u32, act: &Activations) -> u32 {
        match self.d.kind {
            ResidualKind::Residual => NONE,
            _ => act.at(act.coeffs, l, self.pc()),
        }
    }
    /// Everything `unit` reads and writes over `rows` rows of `act` (`rows <= act.rows`): one
    /// place for every variant's plumbing, whichever sublayer the unit wraps. The backward's
    /// stream gradients ping-pong between two buffers, from the last unit down; gradients the
    /// batched weight-gradient ops read are kept per unit when batched.
    fn unit_block_params(&self, unit: Unit, rows: u32, act: &Activations) -> BlockParams {
        let (n, c, fc, pc) = (self.n(), self.c(), self.fc(), self.pc());
        let plan = self.plan;
        let base = plan.params + self.layout.block_offset(unit.block as usize) as u32;
        let param = |rel: usize| base + rel as u32;
        let ffn = |k: usize| unit.ffn.map_or(NONE, |rel| param(rel[k]));
        let (hc, mhc) = (self.d.kind == ResidualKind::Hc, self.d.kind == ResidualKind::Mhc);
        let when = |yes: bool, off: u32| if yes { off } else { NONE };
        let at = |base: u32, row_len: u32| act.at(base, unit.index, row_len);
        let saved = |region: u32, len: u32| region + if self.batched_weight_grads { unit.index * self.batch * len } else { 0 };
        let from_top = self.d.units() as u32 - 1 - unit.index;
        let [even, odd] = plan.d_streams;
        let (d_next, d_cur) = if from_top.is_multiple_of(2) { (even, odd) } else { (odd, even) };
        BlockParams {
            rows,
            n,
            c,
            fc,
            kind: self.kind_code(),
            act: self.act,
            round_f16: self.round_f16,
            iters: self.sinkhorn_iters,
            eps: self.sinkhorn_eps,
            x_off: act.streams_at(unit.index, n * c),
            out_off: act.streams_at(unit.index + 1, n * c),
            h_off: self.coeffs_at(unit.index, act),
            u_off: at(act.block_in, c),
            normed_off: at(act.normed, c),
            norm_rms_off: at(act.norm_rms, 1),
            hidden_pre_off: act.at(act.hidden_pre, unit.block, fc),
            hidden_off: act.at(act.hidden, unit.block, fc),
            y_off: at(act.block_out, c),
            norm_w: param(unit.norm),
            fc1_w: ffn(0),
            fc1_b: ffn(1),
            fc2_w: ffn(2),
            fc2_b: ffn(3),
            proj_w: unit.projection.map_or(NONE, param),
            small_off: unit.small.map_or(NONE, param),
            proj_off: if hc { at(act.hc_d, n * (n + 2)) } else { when(mhc, at(act.mhc_a, pc)) },
            z_off: when(hc, at(act.hc_z, n * c)),
            z_rms_off: if hc { at(act.hc_z_rms, n) } else { when(mhc, at(act.mhc_rms, 1)) },
            dout_off: d_next,
            dx_off: d_cur,
            dy_off: saved(plan.d_block_out, c),
            dhidden_off: plan.d_hidden,
            dhidden_pre_off: saved(plan.d_hidden_pre, fc),
            dnormed_off: saved(plan.d_normed, c),
            du_off: plan.d_block_in,
            dh_off: when(hc || mhc, plan.d_coeffs),
            dproj_off: if hc { saved(plan.d_hc_d, n * (n + 2)) } else { when(mhc, saved(plan.d_mhc_a, pc)) },
            dz_off: when(hc, plan.d_hc_z),
            part_off: when(hc || mhc, saved(plan.partials, partials_per_row(self.kind_code(), n))),
            div_off: when(mhc, act.mhc_divisors),
        }
    }

    /// A fused `block.wgsl` op as one dispatch, or the unfused ops it stands for.
    fn push_fused(&self, ops: &mut Vec<Op>, kernel: FusedKernel, p: BlockParams) {
        if self.fused {
            ops.push(Op::Fused(kernel, p));
        } else {
            ops.extend(unfused_twin(kernel, &p));
        }
    }

    /// Backward of a unit whose sublayer is the FFN (an MLP block, a transformer's second
    /// sublayer); its weight gradients follow at once unless they are batched over all blocks.
    fn ffn_unit_backward(&self, ops: &mut Vec<Op>, p: &BlockParams) {
        self.push_fused(ops, FusedKernel::BlockBackward, *p);
        if !self.batched_weight_grads {
            let shift = self.plan.grads - self.plan.params;
            ops.extend(block_weight_grad_ops(p, 1, self.layout.block_len as u32, shift));
        }
    }

    fn stream_params(&self, rows: u32) -> StreamParams {
        StreamParams { rows, n: self.n(), c: self.c(), h_rs: self.pc(), dh_rs: self.pc(), dh_off: NONE, h_off: NONE, ..Default::default() }
    }

    /// Collapse once (z = sum of the streams after the last unit), the head and the loss over
    /// `rows` rows (positions for the transformer), its mean taken with `scale`.
    fn head_forward(&self, ops: &mut Vec<Op>, rows: u32, y: u32, act: &Activations, scale: f32) {
        let c = self.c();
        ops.push(Op::CombineForward(StreamParams {
            x_off: act.streams_at(self.d.units() as u32, self.n() * c),
            h_off: NONE,
            out_off: act.head_z,
            ..self.stream_params(rows)
        }));
        ops.push(Op::RmsNormForward(RmsNormParams {
            rows,
            cols: c,
            x_off: act.head_z,
            w_off: self.param("head.norm.weight"),
            y_off: act.head_normed,
            r_off: act.head_rms,
            ..Default::default()
        }));
        ops.push(self.head(rows, act).forward(self.param("head.bias"), act.logits));
        ops.push(Op::XentForward(XentParams {
            rows,
            k: self.d.classes as u32,
            logits_off: act.logits,
            labels_off: y,
            loss_off: act.loss_rows,
            correct_off: act.correct_rows,
            dlogits_off: NONE,
            scale,
        }));
    }

    /// Backward of [`Builder::head_forward`] over the training batch: the head's gradients, and
    /// the streams' gradient after the last unit, which it returns.
    fn head_backward(&self, ops: &mut Vec<Op>, scale: f32) -> u32 {
        let rows = self.batch;
        let c = self.c();
        let plan = self.plan;
        ops.push(Op::XentBackward(XentParams {
            rows,
            k: self.d.classes as u32,
            logits_off: plan.train.logits,
            labels_off: plan.batch_y,
            loss_off: NONE,
            correct_off: NONE,
            dlogits_off: plan.d_logits,
            scale,
        }));
        self.head(rows, &plan.train).backward(
            ops,
            self.grad("head.weight"),
            self.grad("head.bias"),
            plan.d_logits,
            Some((plan.d_head_normed, false)),
        );
        let head_norm = RmsNormParams {
            rows,
            cols: c,
            x_off: plan.train.head_z,
            w_off: self.param("head.norm.weight"),
            r_off: plan.train.head_rms,
            dy_off: plan.d_head_normed,
            dx_off: plan.d_head_z,
            dw_off: self.grad("head.norm.weight"),
            accumulate: 0,
            ..Default::default()
        };
        ops.push(Op::RmsNormBackward(head_norm));
        ops.push(Op::RmsNormWeightGrad(head_norm));
        let top = plan.d_streams[0];
        ops.push(Op::Broadcast(StreamParams { x_off: plan.d_head_z, out_off: top, ..self.stream_params(rows) }));
        top
    }

    /// Forward over `rows` examples (sequences for the transformer) at `x`, labels (targets) at
    /// `y`, into `act`: logits, per-row loss and correctness.
    fn forward(&self, ops: &mut Vec<Op>, rows: u32, x: u32, y: u32, act: &Activations) {
        match self.d.arch {
            Arch::Mlp => self.mlp_forward(ops, rows, x, y, act),
            Arch::Transformer => self.transformer_forward(ops, rows, x, y, act),
        }
    }

    /// Backward of the training batch (after `forward`): parameter gradients `+=`.
    fn backward(&self, ops: &mut Vec<Op>) {
        match self.d.arch {
            Arch::Mlp => self.mlp_backward(ops),
            Arch::Transformer => self.transformer_backward(ops),
        }
    }

    /// Gradient and stream statistics, then the step's loss, norm, clip scale and divergence.
    fn step_checks(&self, ops: &mut Vec<Op>, clip: f32) {
        let plan = self.plan;
        let mo = plan.metrics;
        let units = self.d.units() as u32;
        let g = plan.grads;
        let stats = |count: u32, seg_len: u32, seg_stride: u32, in_off: u32, out_off: u32| {
            Op::SegmentStats(StatsParams { count, seg_len, seg_stride, in_off, out_off, ..Default::default() })
        };
        let l = self.layout;
        ops.push(stats(1, l.embed_len as u32, 0, g, mo + self.mp.grad_stats));
        if units > 0 {
            let block = l.block_len as u32;
            match self.d.arch {
                Arch::Mlp => ops.push(stats(units, block, block, g + l.block_offset(0) as u32, mo + self.mp.grad_stats + 2)),
                Arch::Transformer => {
                    // A block is its attention sublayer's tensors, then its FFN's.
                    let attention = self.tensors.norm_weight as u32;
                    for u in 0..units {
                        let (start, len) = if u.is_multiple_of(2) { (0, attention) } else { (attention, block - attention) };
                        let at = g + l.block_offset(u as usize / 2) as u32 + start;
                        ops.push(stats(1, len, 0, at, mo + self.mp.grad_stats + 2 + 2 * u));
                    }
                }
            }
            let stream_len = self.batch * self.n() * self.c();
            ops.push(stats(units, stream_len, stream_len, self.streams_at(1), mo + self.mp.stream_stats));
        }
        ops.push(stats(1, l.head_len as u32, 0, g + l.head_offset() as u32, mo + self.mp.grad_stats + 2 * (units + 1)));
        let Scoring { scored, whole_answer, .. } = self.scoring;
        let examples = self.examples;
        let (correct_off, acc_rows, acc_divisor) = if whole_answer {
            ops.push(self.answers(examples, plan.train.correct_rows));
            (plan.answers, examples, examples)
        } else {
            (plan.train.correct_rows, self.batch, examples * scored as u32)
        };
        ops.push(Op::StepFinalize(FinalizeParams {
            rows: self.batch,
            depth: units,
            loss_off: plan.train.loss_rows,
            correct_off,
            grad_stats_off: mo + self.mp.grad_stats,
            stream_stats_off: mo + self.mp.stream_stats,
            metrics_off: mo,
            clip,
            loss_divisor: examples * scored as u32,
            acc_rows,
            acc_divisor,
            ..Default::default()
        }));
    }

    /// Whole-answer correctness of `examples` sequences from their per-position flags, into
    /// `plan.answers`.
    fn answers(&self, examples: u32, correct_rows: u32) -> Op {
        Op::AnswerCorrect(AnswerParams {
            sequences: examples,
            len: self.scoring.rows as u32,
            answer: self.scoring.scored as u32,
            in_off: correct_rows,
            out_off: self.plan.answers,
            ..Default::default()
        })
    }

    fn optimizer(&self, config: &Config) -> Op {
        let plan = self.plan;
        Op::Optimizer(OptimizerParams {
            len: self.layout.total as u32,
            p_off: plan.params,
            g_off: plan.grads,
            m_off: plan.moment1,
            v_off: plan.moment2,
            mask_off: plan.decay_mask,
            metrics_off: plan.metrics,
            kind: match config.optimizer {
                OptimizerKind::AdamW => OPT_ADAMW,
                OptimizerKind::Sgd => OPT_SGD,
            },
            beta1: config.beta1,
            beta2: config.beta2,
            eps: ADAM_EPS,
            wd: config.wd,
            momentum: config.momentum,
            ..Default::default()
        })
    }

    /// Forward over `total` rows at `x` (labels at `y`, or one shared dummy label row when
    /// `y_stride` is 0) in chunks of as many rows as the evaluation tensors hold; `after` adds
    /// ops for each chunk `(rows, first row)`. Chunks are few: the whole test set up to
    /// `EVAL_MAX_ROWS_AT_ONCE` rows, whatever the batch size.
    fn chunked_forward(&self, ops: &mut Vec<Op>, total: u32, x: u32, y: u32, y_stride: u32, after: impl Fn(&mut Vec<Op>, u32, u32)) {
        let d_in = self.d.d_in as u32;
        let act = &self.plan.eval;
        let per_chunk = (act.rows / self.scoring.rows as u32).max(1);
        let mut start = 0;
        while start < total {
            let rows = per_chunk.min(total - start);
            self.forward(ops, rows, x + start * d_in, y + start * y_stride, act);
            after(ops, rows, start);
            start += rows;
        }
    }

    fn eval(&self, ops: &mut Vec<Op>) {
        let plan = self.plan;
        let mo = plan.metrics;
        let total = plan.test_rows;
        let Scoring { rows: per_example, scored, whole_answer } = self.scoring;
        let targets = (total * scored as u32) as f32;
        ops.push(sum_rows(0, 2, 0, mo + slot::TEST_LOSS, 1.0, false)); // zero the accumulators
        self.chunked_forward(ops, total, plan.test_x, plan.test_y, per_example as u32, |ops, examples, _| {
            let rows = examples * per_example as u32;
            ops.push(sum_rows(rows, 1, plan.eval.loss_rows, mo + slot::TEST_LOSS, 1.0 / targets, true));
            if whole_answer {
                ops.push(self.answers(examples, plan.eval.correct_rows));
                ops.push(sum_rows(examples, 1, plan.answers, mo + slot::TEST_ACC, 1.0 / total as f32, true));
            } else {
                ops.push(sum_rows(rows, 1, plan.eval.correct_rows, mo + slot::TEST_ACC, 1.0 / targets, true));
            }
        });
    }

    fn probe(&self, ops: &mut Vec<Op>) {
        let plan = self.plan;
        let k = self.d.classes as u32;
        self.chunked_forward(ops, plan.probe_rows, plan.probe_x, plan.probe_y, 0, |ops, rows, start| {
            // A one-row sum is a copy: logits of this chunk into the probe's output.
            ops.push(sum_rows(1, rows * k, plan.eval.logits, plan.probe_logits + start * k, 1.0, false));
        });
    }

    fn measure(&self, ops: &mut Vec<Op>) {
        let plan = self.plan;
        // Every residual unit in order: the MLP's blocks, the transformer's sublayers.
        let depth = self.d.units() as u32;
        if depth == 0 {
            return;
        }
        let rows = self.batch;
        let mo = plan.metrics;
        let pc = self.pc();
        ops.push(Op::Gains(GainsParams {
            rows,
            n: self.n(),
            depth,
            h_off: self.coeffs_at(0, &plan.train),
            h_block_stride: rows * pc,
            h_rs: pc,
            out_off: plan.gain_rows,
            ds_off: plan.ds_rows,
        }));
        ops.push(sum_rows(rows, 2 * depth, plan.gain_rows, mo + self.mp.gains, 1.0 / rows as f32, false));
        ops.push(Op::Reduce(ReduceParams {
            rows,
            cols: 2,
            groups: 1,
            in_off: plan.ds_rows,
            in_rs: 2,
            in_gs: 0,
            out_off: mo + slot::DS_ROW,
            accumulate: 0,
            op: REDUCE_MAX,
            scale: 1.0,
            ..Default::default()
        }));
        if self.d.kind != ResidualKind::Residual {
            ops.push(Op::Reduce(ReduceParams {
                rows,
                cols: pc,
                groups: depth,
                in_off: plan.train.coeffs,
                in_rs: pc,
                in_gs: rows * pc,
                out_gs: pc,
                out_off: mo + self.mp.coeff_mean,
                accumulate: 0,
                op: REDUCE_SUM,
                scale: 1.0 / rows as f32,
                ..Default::default()
            }));
        }
    }
}

/// A label or target as the arena holds it: an exact small float, -1 where nothing is scored.
pub fn label_value(y: u32) -> f32 {
    if y == crate::tokens::NO_TARGET {
        -1.0
    } else {
        y as f32
    }
}

impl Program {
    /// Rows of the training batch: examples for the MLP, positions for the transformer.
    pub fn rows(&self) -> usize {
        self.batch * self.scoring.rows
    }

    /// Plans the arena and builds the op lists of variant `kind` of `config`, with `test_rows`
    /// held-out rows to evaluate on. Refuses (before building anything) an arena that u32
    /// offsets cannot address.
    pub fn new(config: &Config, kind: ResidualKind, test_rows: usize) -> Result<Program, TooLarge> {
        Program::with_kernels(config, kind, test_rows, Kernels::for_config(config))
    }

    /// [`Program::new`] with the kernel granularity chosen by the caller (benchmarks, tests).
    pub fn with_kernels(config: &Config, kind: ResidualKind, test_rows: usize, kernels: Kernels) -> Result<Program, TooLarge> {
        let bound = arena_upper_bound(config, test_rows, kernels) * 4;
        if bound > ARENA_ADDRESS_LIMIT {
            return Err(TooLarge {
                needed_mib: bound as f64 / 1048576.0,
                limit: "engine's addressing limit",
                limit_mib: ARENA_ADDRESS_LIMIT as f64 / 1048576.0,
            });
        }
        let dims = Dims::new(config, kind);
        let layout = ParamLayout::new(dims);
        let batch = config.batch as usize;
        let scoring = Scoring::of(config);
        let plan = ArenaPlan::new(config, &layout, test_rows, kernels);
        debug_assert!(plan.len as u64 <= arena_upper_bound(config, test_rows, kernels), "arena_upper_bound must bound the plan");
        let metrics = MetricsPlan::new(dims.units(), dims.coeffs());
        let fused = kernels == Kernels::Fused;
        let builder = Builder {
            d: dims,
            layout: &layout,
            plan: &plan,
            mp: metrics,
            batch: (batch * scoring.rows) as u32,
            examples: batch as u32,
            scoring,
            act: act_code(config.act),
            round_f16: (config.precision == Precision::F16) as u32,
            sinkhorn_iters: config.sinkhorn_iters,
            sinkhorn_eps: config.sinkhorn_eps,
            fused,
            batched_weight_grads: kernels.batches_weight_grads(config.arch),
            tensors: layout.block_tensors(),
            attention: layout.attention_tensors(),
        };
        let mut forward = Vec::new();
        builder.forward(&mut forward, batch as u32, plan.batch_x, plan.batch_y, &plan.train);
        let mut gradient = forward.clone();
        builder.backward(&mut gradient);
        let mut train = gradient.clone();
        builder.step_checks(&mut train, config.clip);
        train.push(builder.optimizer(config));
        let mut eval = Vec::new();
        builder.eval(&mut eval);
        let mut measure = Vec::new();
        builder.measure(&mut measure);
        let mut probe = Vec::new();
        builder.probe(&mut probe);
        Ok(Program { dims, layout, plan, metrics, batch, scoring, kernels, train, eval, measure, forward, gradient, probe })
    }

    /// Every op list, in [`OpList::ALL`] order (how backends index what they prepared).
    pub fn lists(&self) -> [&[Op]; 6] {
        OpList::ALL.map(|list| self.list(list))
    }

    pub fn list(&self, list: OpList) -> &[Op] {
        match list {
            OpList::Train => &self.train,
            OpList::Eval => &self.eval,
            OpList::Measure => &self.measure,
            OpList::Forward => &self.forward,
            OpList::Gradient => &self.gradient,
            OpList::Probe => &self.probe,
        }
    }

    /// Bytes the arena needs.
    pub fn arena_bytes(&self) -> u64 {
        self.plan.len as u64 * 4
    }

    /// Arena contents before training: parameters, decay mask, test set, "not diverged".
    pub fn initial_arena(&self, params: &[f32], test_x: &[f32], test_y: &[u32]) -> Vec<f32> {
        let plan = &self.plan;
        let mut arena = vec![0.0f32; plan.len];
        let p = self.layout.total;
        arena[plan.params as usize..][..p].copy_from_slice(params);
        arena[plan.decay_mask as usize..][..p].copy_from_slice(&self.layout.decay_mask());
        let rows = plan.test_rows as usize;
        let d_in = self.dims.d_in;
        arena[plan.test_x as usize..][..rows * d_in].copy_from_slice(&test_x[..rows * d_in]);
        let targets = rows * self.scoring.rows;
        for (dst, &y) in arena[plan.test_y as usize..][..targets].iter_mut().zip(test_y) {
            *dst = label_value(y);
        }
        // 2-D tasks only: the grid's points are [x, y], d_in = 2.
        let probe_len = plan.probe_rows as usize * d_in;
        if probe_len > 0 {
            arena[plan.probe_x as usize..][..probe_len].copy_from_slice(&probe_grid()[..probe_len]);
        }
        arena[(plan.metrics + slot::DIVERGED_STEP) as usize] = -1.0;
        arena[(plan.metrics + slot::DIVERGED_BLOCK) as usize] = -1.0;
        arena
    }
}

/// The decision-surface grid of 2-D tasks: `[G*G, 2]`, rows from the top (y = +extent) down,
/// columns from the left (x = -extent).
pub fn probe_grid() -> Vec<f32> {
    let step = 2.0 * PROBE_EXTENT / (PROBE_GRID - 1) as f32;
    let mut grid = Vec::with_capacity(PROBE_GRID * PROBE_GRID * 2);
    for row in 0..PROBE_GRID {
        for col in 0..PROBE_GRID {
            grid.push(-PROBE_EXTENT + col as f32 * step);
            grid.push(PROBE_EXTENT - row as f32 * step);
        }
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Task;

    #[test]
    fn the_upper_bound_bounds_every_plan_and_refuses_huge_configs() {
        let mut rng = crate::rng::Rng::new(3);
        for _ in 0..200 {
            let config = Config {
                depth: 1 + rng.below(40) as u32,
                width: 4 + rng.below(100) as u32,
                streams: 1 + rng.below(8) as u32,
                ffn: 1 + rng.below(8) as u32,
                batch: 1 + rng.below(300) as u32,
                task: Task::ALL[rng.below(6) as usize],
                p: 5 + rng.below(60) as u32,
                sinkhorn_iters: 1 + rng.below(100) as u32,
                ..Config::default()
            };
            let test_rows = rng.below(3000) as usize;
            let kernels = if rng.below(2) == 0 { Kernels::Fused } else { Kernels::Unfused };
            for kind in [ResidualKind::Residual, ResidualKind::Hc, ResidualKind::Mhc] {
                let program = Program::with_kernels(&config, kind, test_rows, kernels).unwrap();
                assert!(program.plan.len as u64 <= arena_upper_bound(&config, test_rows, program.kernels), "{}", config.to_query());
                // The initial arena fills every region it should, for every task.
                let params = program.layout.initial_values(config.seed);
                let test_x = vec![0.5; test_rows * config.d_in()];
                let test_y = vec![1; test_rows];
                let arena = program.initial_arena(&params, &test_x, &test_y);
                assert_eq!(arena.len(), program.plan.len);
            }
        }
        let (huge, _) = Config::from_query("depth=256&width=1024&batch=4096&streams=8&ffn=8");
        assert_eq!(Kernels::for_config(&huge), Kernels::Unfused);
        let err = Program::new(&huge, ResidualKind::Mhc, 0).unwrap_err();
        assert!(err.needed_mib > 16384.0, "{err}");
    }

    #[test]
    fn a_default_lockstep_step_is_at_most_a_fifth_of_the_unfused_dispatches() {
        let config = Config::default();
        assert_eq!(Kernels::for_config(&config), Kernels::Fused);
        let count = |kernels: Kernels| -> usize {
            config.modes.iter().map(|&kind| Program::with_kernels(&config, kind, 0, kernels).unwrap().train.len()).sum()
        };
        let (fused, unfused) = (count(Kernels::Fused), count(Kernels::Unfused));
        assert!(fused * 5 <= unfused && fused <= 344, "fused {fused}, unfused {unfused} dispatches per lockstep step");
    }

    #[test]
    fn evaluation_and_the_probe_are_a_few_chunks_at_any_batch_size() {
        // Unrolled in batch-sized chunks this was 9 million ops and a uniform slot each.
        let (config, _) = Config::from_query("batch=1&depth=256&task=spiral");
        for kind in [ResidualKind::Residual, ResidualKind::Mhc] {
            let program = Program::new(&config, kind, 2048).unwrap();
            let ops = program.eval.len() + program.probe.len();
            assert!(ops <= 4 * (256 + 10), "{kind:?}: {ops} ops to evaluate and probe");
        }
    }
}
