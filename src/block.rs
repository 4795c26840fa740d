//! One block of one variant as data. A [`BlockParams`] says where everything of block `l`
//! lives; from it come the block's unfused ops ([`block_forward_ops`], [`block_backward_ops`]:
//! 6 to 19 small kernels, the CPU twin of the fused `block.wgsl` kernels and the op list for
//! configs too wide for them) and the weight gradients of one block or of all blocks at once
//! ([`block_weight_grad_ops`]).

use crate::kernels::*;

/// The params of the coefficient kernels of this block (HC's and mHC's; the kind picks one).
fn coefficient_params(p: &BlockParams) -> (HcCoeffParams, MhcCoeffParams) {
    let pc = p.coeffs();
    let hc = HcCoeffParams {
        rows: p.rows,
        n: p.n,
        d_off: p.proj_off,
        p_off: p.small_off,
        h_off: p.h_off,
        h_rs: pc,
        dh_off: p.dh_off,
        dd_off: p.dproj_off,
        part_off: p.part_off,
        ..Default::default()
    };
    let mhc = MhcCoeffParams {
        rows: p.rows,
        n: p.n,
        c: p.c,
        v_off: p.x_off,
        a_off: p.proj_off,
        p_off: p.small_off,
        r_off: p.z_rms_off,
        h_off: p.h_off,
        h_rs: pc,
        iters: p.iters,
        eps: p.eps,
        dh_off: p.dh_off,
        da_off: p.dproj_off,
        part_off: p.part_off,
        dv_off: p.dx_off,
        div_off: p.div_off,
    };
    (hc, mhc)
}

fn streams(p: &BlockParams) -> StreamParams {
    let pc = p.coeffs();
    StreamParams { rows: p.rows, n: p.n, c: p.c, h_off: p.h_off, h_rs: pc, dh_rs: pc, dh_off: NONE, ..Default::default() }
}

/// The three products of a linear layer (`W: [outs, inputs]`, row-major), shared by every layer
/// of the model: `y[rows, outs] = x[rows, inputs] @ W^T (+ b)`.
pub fn linear(rows: u32, inputs: u32, outs: u32, x: u32, w: u32, bias: u32, y: u32) -> Op {
    Op::Matmul(MatmulParams {
        m: rows,
        n: outs,
        k: inputs,
        a_off: x,
        a_rs: inputs,
        a_cs: 1,
        b_off: w,
        b_rs: 1,
        b_cs: inputs,
        c_off: y,
        c_rs: outs,
        bias_off: bias,
        ..Default::default()
    })
}

/// `dx[rows, inputs] (+)= dy[rows, outs] @ W`.
pub fn linear_input_grad(rows: u32, inputs: u32, outs: u32, dy: u32, w: u32, dx: u32, accumulate: bool) -> Op {
    Op::Matmul(MatmulParams {
        m: rows,
        n: inputs,
        k: outs,
        a_off: dy,
        a_rs: outs,
        a_cs: 1,
        b_off: w,
        b_rs: inputs,
        b_cs: 1,
        c_off: dx,
        c_rs: inputs,
        bias_off: NONE,
        accumulate: accumulate as u32,
        ..Default::default()
    })
}

/// `dW[outs, inputs] += dy[rows, outs]^T @ x[rows, inputs]`.
pub fn linear_weight_grad(rows: u32, inputs: u32, outs: u32, dy: u32, x: u32, dw: u32) -> Op {
    Op::Matmul(weight_grad_params(rows, inputs, outs, dy, x, dw))
}

fn weight_grad_params(rows: u32, inputs: u32, outs: u32, dy: u32, x: u32, dw: u32) -> MatmulParams {
    MatmulParams {
        m: outs,
        n: inputs,
        k: rows,
        a_off: dy,
        a_rs: 1,
        a_cs: outs,
        b_off: x,
        b_rs: inputs,
        b_cs: 1,
        c_off: dw,
        c_rs: inputs,
        bias_off: NONE,
        accumulate: 1,
        ..Default::default()
    }
}

/// The unfused ops a fused `block.wgsl` kernel computes, in its order (its CPU twin).
pub fn unfused_twin(kernel: FusedKernel, p: &BlockParams) -> Vec<Op> {
    match kernel {
        FusedKernel::BlockForward => block_forward_ops(p),
        FusedKernel::BlockBackward => block_backward_ops(p),
        FusedKernel::WrapInForward => wrap_in_forward_ops(p),
        FusedKernel::WrapOutForward => vec![wrap_forward_out(p)],
        FusedKernel::WrapOutBackward => wrap_backward_out(p),
        FusedKernel::WrapInBackward => wrap_in_backward_ops(p),
    }
}

/// Block forward as unfused ops: what `block_forward` in `block.wgsl` computes, op by op.
pub fn block_forward_ops(p: &BlockParams) -> Vec<Op> {
    let mut ops = wrap_forward_in(p);
    ops.extend(ffn_forward(p));
    ops.push(wrap_forward_out(p));
    ops
}

/// What the fused `wrap_in_forward` kernel computes in front of a sublayer that mixes rows
/// (attention): [`wrap_forward_in`] and the sublayer's pre-norm.
pub fn wrap_in_forward_ops(p: &BlockParams) -> Vec<Op> {
    let mut ops = wrap_forward_in(p);
    ops.push(sublayer_norm_forward(p));
    ops
}

/// What the fused `wrap_in_backward` kernel computes: the pre-norm's backward (`dnormed` to
/// `du`), then [`wrap_backward_in`].
pub fn wrap_in_backward_ops(p: &BlockParams) -> Vec<Op> {
    let mut ops = vec![sublayer_norm_backward(p)];
    ops.extend(wrap_backward_in(p));
    ops
}

/// The residual wrapping of any sublayer, before it: the variant's coefficients (HC, mHC) and
/// the combined input `u = sum_i H_pre[i] X[i]`.
pub fn wrap_forward_in(p: &BlockParams) -> Vec<Op> {
    let (n, c) = (p.n, p.c);
    let pc = p.coeffs();
    let mut ops = Vec::with_capacity(4);
    let (hc, mhc) = coefficient_params(p);
    match p.kind {
        BLOCK_HC => {
            ops.push(Op::RmsNormForward(RmsNormParams {
                rows: p.rows * n,
                cols: c,
                x_off: p.x_off,
                w_off: NONE,
                y_off: p.z_off,
                r_off: p.z_rms_off,
                ..Default::default()
            }));
            ops.push(linear(p.rows * n, c, n + 2, p.z_off, p.proj_w, NONE, p.proj_off));
            ops.push(Op::HcCoeffForward(hc));
        }
        BLOCK_MHC => {
            ops.push(linear(p.rows, n * c, pc, p.x_off, p.proj_w, NONE, p.proj_off));
            ops.push(Op::MhcCoeffForward(mhc));
        }
        _ => {}
    }
    ops.push(Op::CombineForward(StreamParams { x_off: p.x_off, out_off: p.u_off, ..streams(p) }));
    ops
}

/// The MLP sublayer `y = fc2(act(fc1(norm(u))))`.
pub fn ffn_forward(p: &BlockParams) -> Vec<Op> {
    let (c, fc) = (p.c, p.fc);
    vec![
        sublayer_norm_forward(p),
        linear(p.rows, c, fc, p.normed_off, p.fc1_w, p.fc1_b, p.hidden_pre_off),
        Op::ActForward(ActParams { len: p.rows * fc, kind: p.act, x_off: p.hidden_pre_off, y_off: p.hidden_off, ..Default::default() }),
        linear(p.rows, fc, c, p.hidden_off, p.fc2_w, p.fc2_b, p.y_off),
    ]
}

/// The residual wrapping after a sublayer: `X' = H_res X + H_post y` (f16-rounded if asked).
pub fn wrap_forward_out(p: &BlockParams) -> Op {
    Op::UpdateForward(StreamParams { x_off: p.x_off, y_off: p.y_off, out_off: p.out_off, round_f16: p.round_f16, ..streams(p) })
}

/// Block backward as unfused ops, activation gradients only: what `block_backward` computes.
/// `dX_l` is written (`=`) from `dX_{l+1}`; no parameter gradient is touched.
pub fn block_backward_ops(p: &BlockParams) -> Vec<Op> {
    let mut ops = wrap_backward_out(p);
    ops.extend(ffn_backward(p));
    ops.extend(wrap_backward_in(p));
    ops
}

/// Backward of [`wrap_forward_out`]: `dX_l = H_res^T dX_{l+1}` (`=`), the sublayer's output
/// gradient `dy`, and the coefficients' (f16 rounding passes the gradient through).
pub fn wrap_backward_out(p: &BlockParams) -> Vec<Op> {
    let dh = if p.h_off != NONE { p.dh_off } else { NONE };
    let update =
        StreamParams { x_off: p.x_off, y_off: p.y_off, dout_off: p.dout_off, dx_off: p.dx_off, dy_off: p.dy_off, dh_off: dh, ..streams(p) };
    let mut ops = vec![Op::UpdateBackward(update)];
    if p.h_off != NONE {
        ops.push(Op::UpdateBackwardCoeff(update));
    }
    ops
}

/// Backward of [`ffn_forward`], activation gradients: `dy` to `du` (`=`).
pub fn ffn_backward(p: &BlockParams) -> Vec<Op> {
    let (c, fc) = (p.c, p.fc);
    vec![
        linear_input_grad(p.rows, fc, c, p.dy_off, p.fc2_w, p.dhidden_off, false),
        Op::ActBackward(ActParams {
            len: p.rows * fc,
            kind: p.act,
            x_off: p.hidden_pre_off,
            dy_off: p.dhidden_off,
            dx_off: p.dhidden_pre_off,
            ..Default::default()
        }),
        linear_input_grad(p.rows, c, fc, p.dhidden_pre_off, p.fc1_w, p.dnormed_off, false),
        sublayer_norm_backward(p),
    ]
}

/// Every sublayer's pre-norm (the MLP block's and the transformer's attention and FFN):
/// `normed = u / rms(u) * norm.weight`.
pub fn sublayer_norm_forward(p: &BlockParams) -> Op {
    Op::RmsNormForward(RmsNormParams {
        rows: p.rows,
        cols: p.c,
        x_off: p.u_off,
        w_off: p.norm_w,
        y_off: p.normed_off,
        r_off: p.norm_rms_off,
        ..Default::default()
    })
}

/// Backward of [`sublayer_norm_forward`]: `dnormed` to `du` (`=`).
pub fn sublayer_norm_backward(p: &BlockParams) -> Op {
    Op::RmsNormBackward(RmsNormParams {
        rows: p.rows,
        cols: p.c,
        x_off: p.u_off,
        w_off: p.norm_w,
        r_off: p.norm_rms_off,
        dy_off: p.dnormed_off,
        dx_off: p.du_off,
        accumulate: 0,
        ..Default::default()
    })
}

/// The pre-norm's weight gradient (`+=`) of `blocks` blocks whose gradients lie `block_len` apart.
pub fn sublayer_norm_weight_grad(p: &BlockParams, blocks: u32, block_len: u32, grad_shift: u32) -> Op {
    Op::RmsNormWeightGrad(RmsNormParams {
        rows: p.rows,
        cols: p.c,
        x_off: p.u_off,
        r_off: p.norm_rms_off,
        dy_off: p.dnormed_off,
        dw_off: p.norm_w + grad_shift,
        groups: blocks,
        dw_gs: block_len,
        ..Default::default()
    })
}

/// Backward of [`wrap_forward_in`]: `du` into `dX_l` (`+=`) and through the coefficients.
pub fn wrap_backward_in(p: &BlockParams) -> Vec<Op> {
    let (n, c) = (p.n, p.c);
    let pc = p.coeffs();
    let has_h = p.h_off != NONE;
    let dh = if has_h { p.dh_off } else { NONE };
    let mut ops = Vec::with_capacity(5);
    let combine = StreamParams { x_off: p.x_off, dout_off: p.du_off, dx_off: p.dx_off, dh_off: dh, ..streams(p) };
    ops.push(Op::CombineBackward(combine));
    if has_h {
        ops.push(Op::CombineBackwardCoeff(combine));
    }
    let (hc, mhc) = coefficient_params(p);
    match p.kind {
        BLOCK_HC => {
            ops.push(Op::HcCoeffBackward(hc));
            ops.push(linear_input_grad(p.rows * n, c, n + 2, p.dproj_off, p.proj_w, p.dz_off, false));
            ops.push(Op::RmsNormBackward(RmsNormParams {
                rows: p.rows * n,
                cols: c,
                x_off: p.x_off,
                w_off: NONE,
                r_off: p.z_rms_off,
                dy_off: p.dz_off,
                dx_off: p.dx_off,
                accumulate: 1,
                ..Default::default()
            }));
        }
        BLOCK_MHC => {
            ops.push(Op::MhcCoeffBackward(mhc));
            ops.push(linear_input_grad(p.rows, n * c, pc, p.dproj_off, p.proj_w, p.dx_off, true));
        }
        _ => {}
    }
    ops
}

/// Per-row gradients of the small hyper-connection parameters: values per row.
pub fn partials_per_row(kind: u32, n: u32) -> u32 {
    match kind {
        BLOCK_HC => 2 + 2 * n + n * n,
        BLOCK_MHC => 3 + n * n + 2 * n, // 3 + coeffs
        _ => 0,
    }
}

/// Weight gradients (`+=`) of `blocks` consecutive blocks starting with the one `first`
/// describes: parameter gradients lie `block_len` apart (`grad_shift` from the parameters), and
/// every activation a gradient reads is `[blocks, rows, len]`. One op per parameter kind, so
/// all blocks cost as many dispatches as one.
pub fn block_weight_grad_ops(first: &BlockParams, blocks: u32, block_len: u32, grad_shift: u32) -> Vec<Op> {
    let mut ops = ffn_weight_grad_ops(first, blocks, block_len, grad_shift);
    ops.extend(coefficient_weight_grad_ops(first, blocks, block_len, grad_shift));
    ops
}

/// `dW[outs, inputs] += dy^T x` over `k` rows for each of `blocks` blocks.
fn batched_weight_grad(blocks: u32, block_len: u32, (outs, inputs, k): (u32, u32, u32), dy: u32, x: u32, dw: u32) -> Op {
    let one = weight_grad_params(k, inputs, outs, dy, x, dw);
    Op::Matmul(MatmulParams { batch: blocks, a_bs: k * outs, b_bs: k * inputs, c_bs: block_len, ..one })
}

/// `out[j] += sum over rows of in[row, j]` for each of `blocks` blocks.
fn batched_rows_sum(rows: u32, blocks: u32, block_len: u32, cols: u32, input: u32, out: u32) -> Op {
    Op::Reduce(ReduceParams {
        rows,
        cols,
        groups: blocks,
        in_off: input,
        in_rs: cols,
        in_gs: rows * cols,
        out_off: out,
        out_gs: block_len,
        accumulate: 1,
        op: REDUCE_SUM,
        scale: 1.0,
        ..Default::default()
    })
}

/// The MLP sublayer's weight gradients (norm, fc1, fc2).
pub fn ffn_weight_grad_ops(p: &BlockParams, blocks: u32, block_len: u32, grad_shift: u32) -> Vec<Op> {
    let (rows, c, fc) = (p.rows, p.c, p.fc);
    let grad = |param: u32| param + grad_shift;
    vec![
        batched_weight_grad(blocks, block_len, (c, fc, rows), p.dy_off, p.hidden_off, grad(p.fc2_w)),
        batched_rows_sum(rows, blocks, block_len, c, p.dy_off, grad(p.fc2_b)),
        batched_weight_grad(blocks, block_len, (fc, c, rows), p.dhidden_pre_off, p.normed_off, grad(p.fc1_w)),
        batched_rows_sum(rows, blocks, block_len, fc, p.dhidden_pre_off, grad(p.fc1_b)),
        sublayer_norm_weight_grad(p, blocks, block_len, grad_shift),
    ]
}

/// The coefficients' weight gradients (HC's projections and small parameters, mHC's phi,
/// alpha and bias) of any wrapped sublayer.
pub fn coefficient_weight_grad_ops(p: &BlockParams, blocks: u32, block_len: u32, grad_shift: u32) -> Vec<Op> {
    let (rows, n, c) = (p.rows, p.n, p.c);
    let pc = p.coeffs();
    let grad = |param: u32| param + grad_shift;
    let mut ops = Vec::new();
    if p.kind != BLOCK_RESIDUAL {
        ops.push(batched_rows_sum(rows, blocks, block_len, partials_per_row(p.kind, n), p.part_off, grad(p.small_off)));
    }
    match p.kind {
        BLOCK_HC => ops.push(batched_weight_grad(blocks, block_len, (n + 2, c, rows * n), p.dproj_off, p.z_off, grad(p.proj_w))),
        BLOCK_MHC => ops.push(batched_weight_grad(blocks, block_len, (pc, n * c, rows), p.dproj_off, p.x_off, grad(p.proj_w))),
        _ => {}
    }
    ops
}
