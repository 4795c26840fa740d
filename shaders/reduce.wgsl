// reduce_rows: out[out_off + g*out_gs + j] (+)= scale * reduce_i in[in_off + g*in_gs + i*in_rs + j], reduce = sum
// (op 0) or max (op 1; accumulate keeps the larger). Used for bias gradients (+=), per-row
// partial gradients of small parameters (+=), batch means of metrics (=) and maxima (=).
// With rows = 0 it zeroes out[..] (accumulators). No backward.
struct ReduceParams {
    rows: u32, cols: u32, groups: u32,
    in_off: u32, in_rs: u32, in_gs: u32,
    out_off: u32, accumulate: u32, op: u32,
    scale: f32, out_gs: u32, _pad0: u32,
}
@group(0) @binding(1) var<uniform> params: ReduceParams;
const REDUCE_MAX: u32 = 1u;  // kernels/: REDUCE_MAX (REDUCE_SUM is 0)

@compute @workgroup_size(WG_1D)
fn reduce_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = flat_thread(gid, groups);
    if (t >= params.groups * params.cols) { return; }
    let g = t / params.cols;
    let j = t % params.cols;
    let base = params.in_off + g * params.in_gs + j;
    let is_max = params.op == REDUCE_MAX;
    var acc = 0.0;
    if (is_max) { acc = bitcast<f32>(0xff7fffffu); } // -f32::MAX, exact (Tint rejects the rounded decimal)
    for (var i = 0u; i < params.rows; i++) {
        let x = ld(base + i * params.in_rs);
        if (is_max) {
            // max() need not propagate NaN; a non-finite value must show, so keep it.
            if (!is_finite(x) || x > acc) { acc = x; }
        } else {
            acc += x;
        }
    }
    let value = acc * params.scale;
    let o = params.out_off + g * params.out_gs + j;
    if (params.accumulate == 0u) {
        st(o, value);
    } else if (is_max) {
        st(o, max(ld(o), value));
    } else {
        st(o, ld(o) + value);
    }
}
