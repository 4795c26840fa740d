// RMSNorm over contiguous rows x: [rows, cols]:  y = x / r * w,  r = sqrt(mean(x^2) + 1e-6),
// w: [cols] (w_off == NONE: no weight, as for HC's per-stream z_i). Saves r: [rows].
// rmsnorm_backward:        dx (= or +=, `accumulate`) = (g - xhat * mean(g * xhat)) / r,
//                          g = dy * w, xhat = x / r        (activation gradient)
// rmsnorm_backward_weight: dw[c] += sum_rows dy * xhat      (parameter gradient), for `groups`
//                          norms stored back to back (the norms of every block: one dispatch)
// Forward and input-backward run one workgroup per row; for short rows (kernels/:
// RMSNORM_ROW_MAX_COLS) the `_rows` entry points run a thread per row instead, with no workgroup
// memory and no barriers, which CPU-emulated GPUs pay dearly for, and sum in the reference's
// order. The weight gradient runs a thread per column.
struct RmsNormParams {
    rows: u32, cols: u32, x_off: u32, w_off: u32,
    y_off: u32, r_off: u32, dy_off: u32, dx_off: u32,
    dw_off: u32, accumulate: u32, groups: u32, dw_gs: u32,
}
@group(0) @binding(1) var<uniform> params: RmsNormParams;

fn weight(c: u32) -> f32 {
    if (params.w_off == NONE) { return 1.0; }
    return ld(params.w_off + c);
}

@compute @workgroup_size(WG_ROW)
fn rmsnorm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let row = flat_group(wid, groups);
    if (row >= params.rows) { return; }
    let x0 = params.x_off + row * params.cols;
    var ss = 0.0;
    for (var c = lid; c < params.cols; c += WG_ROW) {
        let x = ld(x0 + c);
        ss += x * x;
    }
    let r = sqrt(workgroup_sum(lid, ss) / f32(params.cols) + RMS_EPS);
    if (lid == 0u) { st(params.r_off + row, r); }
    for (var c = lid; c < params.cols; c += WG_ROW) {
        st(params.y_off + row * params.cols + c, ld(x0 + c) / r * weight(c));
    }
}

@compute @workgroup_size(WG_ROW)
fn rmsnorm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let row = flat_group(wid, groups);
    if (row >= params.rows) { return; }
    let r = ld(params.r_off + row);
    let x0 = params.x_off + row * params.cols;
    let dy0 = params.dy_off + row * params.cols;
    var dot = 0.0;
    for (var c = lid; c < params.cols; c += WG_ROW) {
        dot += ld(dy0 + c) * weight(c) * (ld(x0 + c) / r);
    }
    let mean = workgroup_sum(lid, dot) / f32(params.cols);
    for (var c = lid; c < params.cols; c += WG_ROW) {
        let g = ld(dy0 + c) * weight(c);
        let dx = (g - ld(x0 + c) / r * mean) / r;
        let o = params.dx_off + row * params.cols + c;
        if (params.accumulate != 0u) { st(o, ld(o) + dx); } else { st(o, dx); }
    }
}

@compute @workgroup_size(WG_1D)
fn rmsnorm_forward_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let row = flat_thread(gid, groups);
    if (row >= params.rows) { return; }
    let x0 = params.x_off + row * params.cols;
    var ss = 0.0;
    for (var c = 0u; c < params.cols; c++) {
        let x = ld(x0 + c);
        ss += x * x;
    }
    let r = sqrt(ss / f32(params.cols) + RMS_EPS);
    st(params.r_off + row, r);
    for (var c = 0u; c < params.cols; c++) {
        st(params.y_off + row * params.cols + c, ld(x0 + c) / r * weight(c));
    }
}

@compute @workgroup_size(WG_1D)
fn rmsnorm_backward_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let row = flat_thread(gid, groups);
    if (row >= params.rows) { return; }
    let r = ld(params.r_off + row);
    let x0 = params.x_off + row * params.cols;
    let dy0 = params.dy_off + row * params.cols;
    var dot = 0.0;
    for (var c = 0u; c < params.cols; c++) {
        dot += ld(dy0 + c) * weight(c) * (ld(x0 + c) / r);
    }
    let mean = dot / f32(params.cols);
    for (var c = 0u; c < params.cols; c++) {
        let g = ld(dy0 + c) * weight(c);
        let dx = (g - ld(x0 + c) / r * mean) / r;
        let o = params.dx_off + row * params.cols + c;
        if (params.accumulate != 0u) { st(o, ld(o) + dx); } else { st(o, dx); }
    }
}

@compute @workgroup_size(WG_1D)
fn rmsnorm_backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = flat_thread(gid, groups);
    if (t >= params.cols * max(params.groups, 1u)) { return; }
    let g = t / params.cols;
    let c = t % params.cols;
    let values = g * params.rows * params.cols;
    let r_off = params.r_off + g * params.rows;
    var acc = 0.0;
    for (var row = 0u; row < params.rows; row++) {
        let xhat = ld(params.x_off + values + row * params.cols + c) / ld(r_off + row);
        acc += ld(params.dy_off + values + row * params.cols + c) * xhat;
    }
    let o = params.dw_off + g * params.dw_gs + c;
    st(o, ld(o) + acc);
}
