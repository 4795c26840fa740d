//! The MLP's op lists (DESIGN.md section 1): embedding, blocks (fused or unfused), collapse, head
//! and loss, and their backward.

use super::*;

impl Builder<'_> {
    /// Forward over `rows` examples at `x`, labels at `y`, into `act`: logits, per-row loss and
    /// correctness.
    pub(super) fn mlp_forward(&self, ops: &mut Vec<Op>, rows: u32, x: u32, y: u32, act: &Activations) {
        let c = self.c();
        let nc = self.n() * c;
        ops.push(self.embed(rows, x).forward(self.param("embed.bias"), act.h0));
        // Expand once: every stream starts as h0.
        ops.push(Op::Broadcast(StreamParams { x_off: act.h0, out_off: act.streams_at(0, nc), ..self.stream_params(rows) }));
        for l in 0..self.d.depth as u32 {
            self.push_fused(ops, FusedKernel::BlockForward, self.block_params(l, rows, act));
        }
        self.head_forward(ops, rows, y, act, 1.0 / rows as f32);
    }

    /// Everything block `l` reads and writes over `rows` rows of `act` (`rows <= act.rows`).
    pub(super) fn block_params(&self, l: u32, rows: u32, act: &Activations) -> BlockParams {
        let t = self.tensors;
        let unit = Unit {
            index: l,
            block: l,
            norm: t.norm_weight,
            ffn: Some([t.fc1_weight, t.fc1_bias, t.fc2_weight, t.fc2_bias]),
            projection: t.projection,
            small: t.small,
        };
        self.unit_block_params(unit, rows, act)
    }

    pub(super) fn kind_code(&self) -> u32 {
        match self.d.kind {
            ResidualKind::Residual => BLOCK_RESIDUAL,
            ResidualKind::Hc => BLOCK_HC,
            ResidualKind::Mhc => BLOCK_MHC,
        }
    }

    /// Backward of the training batch (after `forward`): parameter gradients `+=`.
    pub(super) fn mlp_backward(&self, ops: &mut Vec<Op>) {
        let rows = self.batch;
        let plan = self.plan;
        let depth = self.d.depth as u32;
        let top = self.head_backward(ops, 1.0 / rows as f32);
        let block_len = self.layout.block_len as u32;
        let grad_shift = plan.grads - plan.params;
        for l in (0..depth).rev() {
            self.ffn_unit_backward(ops, &self.block_params(l, rows, &plan.train));
        }
        if self.batched_weight_grads && depth > 0 {
            ops.extend(block_weight_grad_ops(&self.block_params(0, rows, &plan.train), depth, block_len, grad_shift));
        }
        // dX_0 is where block 0 wrote it (the top buffer when there are no blocks).
        let d_next = if depth > 0 { self.block_params(0, rows, &plan.train).dx_off } else { top };
        // Expand's backward: dh0 = sum of the stream gradients.
        ops.push(Op::CombineForward(StreamParams { x_off: d_next, h_off: NONE, out_off: plan.d_h0, ..self.stream_params(rows) }));
        self.embed(rows, plan.batch_x).backward(ops, self.grad("embed.weight"), self.grad("embed.bias"), plan.d_h0, None);
    }
}
