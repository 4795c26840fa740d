//! The transformer's op lists (DESIGN.md section 1b): token and position embeddings, per block an
//! attention sublayer and an FFN sublayer each wrapped by the variant (the same wrapping ops as
//! the MLP's blocks, `block::wrap_*`), collapse, head and a loss over the scored positions.
//! Rows are positions: `sequences * ctx`. Units (sublayers) are numbered `2l` (attention) and
//! `2l + 1` (FFN); activations of a unit are per unit, the attention's and the FFN's hidden
//! layers per block.

use super::*;
use crate::block::{coefficient_weight_grad_ops, sublayer_norm_weight_grad};

impl Builder<'_> {
    fn ctx(&self) -> u32 {
        self.d.ctx as u32
    }
    fn heads(&self) -> u32 {
        self.d.heads as u32
    }

    /// Everything unit `u` reads and writes over `rows` positions of `act`: for the FFN unit a
    /// whole MLP block, for the attention unit its wrapping (the FFN fields are `NONE`).
    fn unit_params(&self, u: u32, rows: u32, act: &Activations) -> BlockParams {
        let (t, a) = (self.tensors, self.attention);
        let unit = if u.is_multiple_of(2) {
            Unit { index: u, block: u / 2, norm: a.norm_weight, ffn: None, projection: a.projection, small: a.small }
        } else {
            Unit {
                index: u,
                block: u / 2,
                norm: t.norm_weight,
                ffn: Some([t.fc1_weight, t.fc1_bias, t.fc2_weight, t.fc2_bias]),
                projection: t.projection,
                small: t.small,
            }
        };
        self.unit_block_params(unit, rows, act)
    }

    /// The attention sublayer's own tensors of block `l` in `act`: qkv `[R, 3C]`, the heads'
    /// output `[R, C]`, and the log-sum-exp of every query.
    fn attention_params(&self, l: u32, sequences: u32, act: &Activations) -> AttentionParams {
        let c = self.c();
        AttentionParams {
            batch: sequences,
            t: self.ctx(),
            heads: self.heads(),
            dh: c / self.heads(),
            qkv_off: act.at(act.qkv, l, 3 * c),
            out_off: act.at(act.attn_out, l, c),
            lse_off: act.at(act.lse, l, self.heads()),
            dout_off: self.plan.d_attn_out,
            dqkv_off: self.plan.d_qkv,
            delta_off: self.plan.delta,
            ..Default::default()
        }
    }

    fn attention_weight(&self, l: u32, rel: usize) -> u32 {
        self.plan.params + (self.layout.block_offset(l as usize) + rel) as u32
    }

    /// `y = proj(attention(qkv(normed)))` of block `l` (the wrapping in front computed `normed`).
    fn attention_forward(&self, ops: &mut Vec<Op>, p: &BlockParams, l: u32, sequences: u32, act: &Activations) {
        let (rows, c) = (p.rows, p.c);
        let a = self.attention;
        let attn = self.attention_params(l, sequences, act);
        ops.push(linear(
            rows,
            c,
            3 * c,
            p.normed_off,
            self.attention_weight(l, a.qkv_weight),
            self.attention_weight(l, a.qkv_bias),
            attn.qkv_off,
        ));
        ops.push(Op::AttentionForward(attn));
        ops.push(linear(rows, c, c, attn.out_off, self.attention_weight(l, a.proj_weight), self.attention_weight(l, a.proj_bias), p.y_off));
    }

    /// Backward of [`Builder::attention_forward`]: `dy` to `dnormed` (`=`), weight gradients `+=`.
    fn attention_backward(&self, ops: &mut Vec<Op>, p: &BlockParams, l: u32) {
        let (rows, c) = (p.rows, p.c);
        let plan = self.plan;
        let a = self.attention;
        let attn = self.attention_params(l, self.examples, &plan.train);
        let shift = plan.grads - plan.params;
        let weight = |rel: usize| self.attention_weight(l, rel);
        let proj = Linear { rows, inp: c, out: c, x: attn.out_off, w: weight(a.proj_weight) };
        proj.backward(ops, weight(a.proj_weight) + shift, weight(a.proj_bias) + shift, p.dy_off, Some((attn.dout_off, false)));
        ops.push(Op::AttentionBackwardQueries(attn));
        ops.push(Op::AttentionBackwardKeys(attn));
        let qkv = Linear { rows, inp: c, out: 3 * c, x: p.normed_off, w: weight(a.qkv_weight) };
        qkv.backward(ops, weight(a.qkv_weight) + shift, weight(a.qkv_bias) + shift, attn.dqkv_off, Some((p.dnormed_off, false)));
    }

    /// Forward over `sequences` sequences of tokens at `x`, targets at `y`, into `act`.
    pub(super) fn transformer_forward(&self, ops: &mut Vec<Op>, sequences: u32, x: u32, y: u32, act: &Activations) {
        let (c, t) = (self.c(), self.ctx());
        let rows = sequences * t;
        ops.push(Op::EmbedForward(EmbedParams {
            rows,
            c,
            t,
            vocab: self.d.classes as u32,
            tokens_off: x,
            tok_off: self.param("tok.weight"),
            pos_off: self.param("pos.weight"),
            out_off: act.h0,
            ..Default::default()
        }));
        // Expand once, per position.
        ops.push(Op::Broadcast(StreamParams { x_off: act.h0, out_off: act.streams_at(0, self.n() * c), ..self.stream_params(rows) }));
        for l in 0..self.d.depth as u32 {
            let attention = self.unit_params(2 * l, rows, act);
            self.push_fused(ops, FusedKernel::WrapInForward, attention);
            self.attention_forward(ops, &attention, l, sequences, act);
            self.push_fused(ops, FusedKernel::WrapOutForward, attention);
            self.push_fused(ops, FusedKernel::BlockForward, self.unit_params(2 * l + 1, rows, act));
        }
        let scored = sequences * self.scoring.scored as u32;
        self.head_forward(ops, rows, y, act, 1.0 / scored as f32);
    }

    /// Backward of the training batch: parameter gradients `+=`.
    pub(super) fn transformer_backward(&self, ops: &mut Vec<Op>) {
        let plan = self.plan;
        let (rows, c, t) = (self.batch, self.c(), self.ctx());
        let top = self.head_backward(ops, 1.0 / (self.examples * self.scoring.scored as u32) as f32);
        let block_len = self.layout.block_len as u32;
        let shift = plan.grads - plan.params;
        for l in (0..self.d.depth as u32).rev() {
            self.ffn_unit_backward(ops, &self.unit_params(2 * l + 1, rows, &plan.train));
            let attention = self.unit_params(2 * l, rows, &plan.train);
            self.push_fused(ops, FusedKernel::WrapOutBackward, attention);
            self.attention_backward(ops, &attention, l);
            self.push_fused(ops, FusedKernel::WrapInBackward, attention);
            ops.push(sublayer_norm_weight_grad(&attention, 1, block_len, shift));
            ops.extend(coefficient_weight_grad_ops(&attention, 1, block_len, shift));
        }
        // dX_0 is where unit 0 wrote it (the top buffer when there are no blocks).
        let d_next = if self.d.depth > 0 { self.unit_params(0, rows, &plan.train).dx_off } else { top };
        // Expand's backward: dh0 = sum of the stream gradients; then the embeddings'.
        ops.push(Op::CombineForward(StreamParams { x_off: d_next, h_off: NONE, out_off: plan.d_h0, ..self.stream_params(rows) }));
        ops.push(Op::EmbedBackwardTokens(EmbedParams {
            rows,
            c,
            t,
            vocab: self.d.classes as u32,
            tokens_off: plan.batch_x,
            dout_off: plan.d_h0,
            dtok_off: self.grad("tok.weight"),
            ..Default::default()
        }));
        ops.push(Op::Reduce(ReduceParams {
            rows: self.examples,
            cols: t * c,
            groups: 1,
            in_off: plan.d_h0,
            in_rs: t * c,
            out_off: self.grad("pos.weight"),
            accumulate: 1,
            op: REDUCE_SUM,
            scale: 1.0,
            ..Default::default()
        }));
    }
}
