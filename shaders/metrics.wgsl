// What is measured (DESIGN.md section 3), computed where the data is.
//   segment_stats: per segment s < count of [in_off + s*seg_stride, +seg_len):
//                  out[2s] = sum x^2, out[2s+1] = number of non-finite x (=). Workgroup per segment.
//   step_finalize: one thread: loss and accuracy means, global gradient norm, clip scale, and
//                  the divergence record (first non-finite step and where: first block whose
//                  streams are non-finite; else the head if the loss is; else the deepest block
//                  with non-finite gradients). Never overwrites an earlier record.
//   gains:         thread per row: prefix products P_l = H_res_l ... H_res_0 (forward gain = max
//                  absolute row sum) and suffix products S_l = H_res_{L-1} ... H_res_l (backward
//                  gain = max absolute column sum), [rows, 2L] (=); and max |row sum - 1|,
//                  max |column sum - 1| of every H_res, [rows, 2] (=). A non-finite H_res makes
//                  every maximum it enters non-finite (reported as null), never a finite number.
// No backward: these read activations and gradients, they are not part of the model.
struct StatsParams { count: u32, seg_len: u32, seg_stride: u32, in_off: u32, out_off: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
struct FinalizeParams {
    rows: u32, depth: u32, loss_off: u32, correct_off: u32,
    grad_stats_off: u32, stream_stats_off: u32, metrics_off: u32, clip: f32,
    loss_divisor: u32, acc_rows: u32, acc_divisor: u32, _pad: u32,
}
struct AnswerParams {
    sequences: u32, len: u32, answer: u32, in_off: u32,
    out_off: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}
struct GainsParams {
    rows: u32, n: u32, depth: u32, h_off: u32,
    h_block_stride: u32, h_rs: u32, out_off: u32, ds_off: u32,
}
@group(0) @binding(1) var<uniform> stats: StatsParams;
@group(0) @binding(1) var<uniform> fin: FinalizeParams;
@group(0) @binding(1) var<uniform> gp: GainsParams;
@group(0) @binding(1) var<uniform> answer_params: AnswerParams;

// Metrics-block slots (kernels/: slot).
const SLOT_STEP: u32 = 0u;
const SLOT_LOSS: u32 = 4u;
const SLOT_ACC: u32 = 5u;
const SLOT_GRAD_NORM: u32 = 6u;
const SLOT_CLIP_SCALE: u32 = 7u;
const SLOT_DIVERGED_STEP: u32 = 8u;
const SLOT_DIVERGED_BLOCK: u32 = 9u;

// A maximum that a non-finite value poisons (plain `max` may drop a NaN and report a finite
// gain for a row that has none): the first non-finite value seen is kept, and read back as
// null. It is passed on rather than made: a NaN or infinity written as a constant is a shader
// creation error in WGSL. Twin of reference::max_keep_non_finite.
fn max_keep_non_finite(best: f32, x: f32) -> f32 {
    if (!is_finite(best)) { return best; }
    if (!is_finite(x)) { return x; }
    return max(best, x);
}

var<workgroup> sumsq_partial: array<f32, WG_1D>;
var<workgroup> bad_partial: array<u32, WG_1D>;

@compute @workgroup_size(WG_1D)
fn segment_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let s = flat_group(wid, groups);
    if (s >= stats.count) { return; }
    let start = stats.in_off + s * stats.seg_stride;
    var ss = 0.0;
    var bad = 0u;
    for (var e = lid; e < stats.seg_len; e += WG_1D) {
        let x = ld(start + e);
        ss += x * x;
        bad += select(0u, 1u, !is_finite(x));
    }
    sumsq_partial[lid] = ss;
    bad_partial[lid] = bad;
    workgroupBarrier();
    for (var stride = WG_1D / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            sumsq_partial[lid] += sumsq_partial[lid + stride];
            bad_partial[lid] += bad_partial[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        st(stats.out_off + 2u * s, sumsq_partial[0]);
        st(stats.out_off + 2u * s + 1u, f32(bad_partial[0]));
    }
}

fn grad_bad(segment: u32) -> bool {
    return ld(fin.grad_stats_off + 2u * segment + 1u) > 0.0;
}

@compute @workgroup_size(1)
fn step_finalize() {
    let mo = fin.metrics_off;
    var loss = 0.0;
    var correct = 0.0;
    for (var b = 0u; b < fin.rows; b++) { loss += ld(fin.loss_off + b); }
    for (var b = 0u; b < fin.acc_rows; b++) { correct += ld(fin.correct_off + b); }
    st(mo + SLOT_LOSS, loss / f32(fin.loss_divisor));
    st(mo + SLOT_ACC, correct / f32(fin.acc_divisor));
    var sumsq = 0.0;
    for (var s = 0u; s < fin.depth + 2u; s++) { sumsq += ld(fin.grad_stats_off + 2u * s); }
    let norm = sqrt(sumsq);
    st(mo + SLOT_GRAD_NORM, norm);
    var scale = 1.0;
    if (fin.clip > 0.0) { scale = min(1.0, fin.clip / (norm + 1e-6)); }
    st(mo + SLOT_CLIP_SCALE, scale);
    if (ld(mo + SLOT_DIVERGED_STEP) >= 0.0) { return; }
    var block = NONE;
    for (var l = 0u; l < fin.depth; l++) {
        if (ld(fin.stream_stats_off + 2u * l + 1u) > 0.0) { block = l; break; }
    }
    if (block == NONE && !is_finite(loss)) { block = fin.depth; }
    if (block == NONE && grad_bad(fin.depth + 1u)) { block = fin.depth; }
    if (block == NONE) {
        for (var ll = 0u; ll < fin.depth; ll++) {
            let l = fin.depth - 1u - ll;
            if (grad_bad(1u + l)) { block = l; break; }
        }
    }
    if (block == NONE && grad_bad(0u)) { block = 0u; }
    if (block != NONE) {
        st(mo + SLOT_DIVERGED_STEP, ld(mo + SLOT_STEP));
        st(mo + SLOT_DIVERGED_BLOCK, f32(block));
    }
}

fn h_res(b: u32, l: u32, k: u32, i: u32) -> f32 {
    if (gp.h_off == NONE) { return select(0.0, 1.0, k == i); }
    return ld(gp.h_off + l * gp.h_block_stride + b * gp.h_rs + 2u * gp.n + k * gp.n + i);
}

@compute @workgroup_size(WG_1D)
fn gains(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = flat_thread(gid, groups);
    if (b >= gp.rows) { return; }
    let n = gp.n;
    let out = gp.out_off + b * 2u * gp.depth;
    var acc = array<f32, 64>();
    var next = array<f32, 64>();
    for (var j = 0u; j < n * n; j++) { acc[j] = select(0.0, 1.0, j % (n + 1u) == 0u); }
    var row_err = 0.0;
    var col_err = 0.0;
    for (var l = 0u; l < gp.depth; l++) {
        for (var k = 0u; k < n; k++) {
            for (var i = 0u; i < n; i++) {
                var s = 0.0;
                for (var j = 0u; j < n; j++) { s += h_res(b, l, k, j) * acc[j * n + i]; }
                next[k * n + i] = s;
            }
        }
        var gain = 0.0;
        for (var k = 0u; k < n; k++) {
            var row_abs = 0.0;
            var row_sum = 0.0;
            var col_sum = 0.0;
            for (var i = 0u; i < n; i++) {
                acc[k * n + i] = next[k * n + i];
                row_abs += abs(next[k * n + i]);
                row_sum += h_res(b, l, k, i);
                col_sum += h_res(b, l, i, k);
            }
            gain = max_keep_non_finite(gain, row_abs);
            row_err = max_keep_non_finite(row_err, abs(row_sum - 1.0));
            col_err = max_keep_non_finite(col_err, abs(col_sum - 1.0));
        }
        st(out + l, gain);
    }
    for (var j = 0u; j < n * n; j++) { acc[j] = select(0.0, 1.0, j % (n + 1u) == 0u); }
    for (var ll = 0u; ll < gp.depth; ll++) {
        let l = gp.depth - 1u - ll;
        for (var k = 0u; k < n; k++) {
            for (var i = 0u; i < n; i++) {
                var s = 0.0;
                for (var j = 0u; j < n; j++) { s += acc[k * n + j] * h_res(b, l, j, i); }
                next[k * n + i] = s;
            }
        }
        var gain = 0.0;
        for (var i = 0u; i < n; i++) {
            var col_abs = 0.0;
            for (var k = 0u; k < n; k++) {
                acc[k * n + i] = next[k * n + i];
                col_abs += abs(next[k * n + i]);
            }
            gain = max_keep_non_finite(gain, col_abs);
        }
        st(out + gp.depth + l, gain);
    }
    st(gp.ds_off + 2u * b, row_err);
    st(gp.ds_off + 2u * b + 1u, col_err);
}

@compute @workgroup_size(WG_1D)
fn answer_correct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let s = flat_thread(gid, groups);
    if (s >= answer_params.sequences) { return; }
    var right = 0.0;
    for (var i = 0u; i < answer_params.len; i++) { right += ld(answer_params.in_off + s * answer_params.len + i); }
    st(answer_params.out_off + s, select(0.0, 1.0, right == f32(answer_params.answer)));
}
