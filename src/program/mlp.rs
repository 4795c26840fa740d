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
            let block = self.block_params(l, rows, act);
            if self.fused {
                ops.push(Op::BlockForward(block));
            } else {
                ops.extend(block_forward_ops(&block));
            }
        }
        self.head_forward(ops, rows, y, act, 1.0 / rows as f32);
    }

    /// Everything block `l` reads and writes over `rows` rows of `act` (`rows <= act.rows`). The
    /// backward's stream gradients ping-pong between two buffers, from the last block down.
    pub(super) fn block_params(&self, l: u32, rows: u32, act: &Activations) -> BlockParams {
        let (n, c, fc, pc) = (self.n(), self.c(), self.fc(), self.pc());
        let plan = self.plan;
        let t = self.tensors;
        let base = plan.params + self.layout.block_offset(l as usize) as u32;
        let param = |rel: usize| base + rel as u32;
        let (hc, mhc) = (self.d.kind == ResidualKind::Hc, self.d.kind == ResidualKind::Mhc);
        let when = |yes: bool, off: u32| if yes { off } else { NONE };
        let at = |base: u32, row_len: u32| act.at(base, l, row_len);
        // Gradients the batched weight-gradient ops read are kept per block when fused.
        let saved = |region: u32, len: u32| region + if self.fused { l * self.batch * len } else { 0 };
        let from_top = self.d.depth as u32 - 1 - l;
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
            x_off: act.streams_at(l, n * c),
            out_off: act.streams_at(l + 1, n * c),
            h_off: self.coeffs_at(l, act),
            u_off: at(act.block_in, c),
            normed_off: at(act.normed, c),
            norm_rms_off: at(act.norm_rms, 1),
            hidden_pre_off: at(act.hidden_pre, fc),
            hidden_off: at(act.hidden, fc),
            y_off: at(act.block_out, c),
            norm_w: param(t.norm_weight),
            fc1_w: param(t.fc1_weight),
            fc1_b: param(t.fc1_bias),
            fc2_w: param(t.fc2_weight),
            fc2_b: param(t.fc2_bias),
            proj_w: t.projection.map_or(NONE, param),
            small_off: t.small.map_or(NONE, param),
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
            let block = self.block_params(l, rows, &plan.train);
            if self.fused {
                ops.push(Op::BlockBackward(block));
            } else {
                ops.extend(block_backward_ops(&block));
                ops.extend(block_weight_grad_ops(&block, 1, block_len, grad_shift));
            }
        }
        if self.fused && depth > 0 {
            ops.extend(block_weight_grad_ops(&self.block_params(0, rows, &plan.train), depth, block_len, grad_shift));
        }
        // dX_0 is where block 0 wrote it (the top buffer when there are no blocks).
        let d_next = if depth > 0 { self.block_params(0, rows, &plan.train).dx_off } else { top };
        // Expand's backward: dh0 = sum of the stream gradients.
        ops.push(Op::CombineForward(StreamParams { x_off: d_next, h_off: NONE, out_off: plan.d_h0, ..self.stream_params(rows) }));
        self.embed(rows, plan.batch_x).backward(ops, self.grad("embed.weight"), self.grad("embed.bias"), plan.d_h0, None);
    }
}
