// Causal multi-head self-attention, one thread per (sequence b, head h, position): no barriers
// and no workgroup memory. A thread keeps the scores of its row (query or key) in a private
// array of MAX_CTX, so each score is computed once and each output element is summed in a
// register rather than read and written back per key: on a software GPU, where every arena
// access costs, that is about half the loads of recomputing scores per pass. Rows r = b*t + i hold
// qkv[r] = [q | k | v], each C = heads*dh wide, head h in columns h*dh .. (h+1)*dh; out and dout
// are [rows, C]; lse and delta are [batch, heads, t]. s_ij = q_i . k_j / sqrt(dh) for j <= i.
//   attention_forward (thread per query i):  m = max_j s_ij;  l = sum_j exp(s_ij - m);
//       out_i = sum_j (exp(s_ij - m) / l) v_j;  lse_i = m + log l                          (=)
//   attention_backward_queries (thread per query i):  p_ij = exp(s_ij - lse_i);  dp_ij = dout_i . v_j;
//       delta_i = sum_j p_ij dp_ij;  dq_i = sum_j p_ij (dp_ij - delta_i) k_j / sqrt(dh)     (=)
//   attention_backward_keys (thread per key j, after the queries' pass):  over queries i >= j,
//       dk_j = sum_i p_ij (dp_ij - delta_i) q_i / sqrt(dh);  dv_j = sum_i p_ij dout_i     (=)
// Every sum runs in ascending order of its index, as in the CPU twin.
const MAX_CTX: u32 = 256u;  // kernels/: ATTENTION_MAX_CTX, the config's largest ctx
struct AttentionParams {
    batch: u32, t: u32, heads: u32, dh: u32,
    qkv_off: u32, out_off: u32, lse_off: u32, dout_off: u32,
    dqkv_off: u32, delta_off: u32, _pad0: u32, _pad1: u32,
}
@group(0) @binding(1) var<uniform> params: AttentionParams;

// Offset of row r's q (part 0), k (1) or v (2) for head h, from base (qkv or dqkv).
fn part_at(base: u32, r: u32, part: u32, h: u32) -> u32 {
    return base + r * 3u * params.heads * params.dh + part * params.heads * params.dh + h * params.dh;
}

fn dot_rows(a: u32, b: u32) -> f32 {
    var acc = 0.0;
    for (var d = 0u; d < params.dh; d++) { acc += ld(a + d) * ld(b + d); }
    return acc;
}

// (sequence, head, position) of this thread; false past the end.
struct Slot { b: u32, h: u32, g: u32, i: u32, ok: bool }
fn slot_of(gid: vec3<u32>, groups: vec3<u32>) -> Slot {
    let e = flat_thread(gid, groups);
    let g = e / params.t;
    return Slot(g / params.heads, g % params.heads, g, e % params.t, e < params.batch * params.heads * params.t);
}

fn score(b: u32, h: u32, i: u32, j: u32) -> f32 {
    let scale = 1.0 / sqrt(f32(params.dh));
    return dot_rows(part_at(params.qkv_off, b * params.t + i, 0u, h), part_at(params.qkv_off, b * params.t + j, 1u, h)) * scale;
}

fn out_at(base: u32, b: u32, h: u32, i: u32) -> u32 {
    return base + (b * params.t + i) * params.heads * params.dh + h * params.dh;
}

@compute @workgroup_size(WG_1D)
fn attention_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let s = slot_of(gid, groups);
    if (!s.ok) { return; }
    // probs[j]: the score, then exp(score - m), then the probability.
    var probs: array<f32, MAX_CTX>;
    var m = 0.0;
    for (var j = 0u; j <= s.i; j++) {
        let score_ij = score(s.b, s.h, s.i, j);
        probs[j] = score_ij;
        if (j == 0u) { m = score_ij; } else { m = max(m, score_ij); }
    }
    var l = 0.0;
    for (var j = 0u; j <= s.i; j++) {
        let e = exp(probs[j] - m);
        probs[j] = e;
        l += e;
    }
    for (var j = 0u; j <= s.i; j++) { probs[j] = probs[j] / l; }
    let out = out_at(params.out_off, s.b, s.h, s.i);
    let v0 = part_at(params.qkv_off, s.b * params.t, 2u, s.h);
    let row = 3u * params.heads * params.dh;  // from one position's v to the next
    for (var d = 0u; d < params.dh; d++) {
        var acc = 0.0;
        for (var j = 0u; j <= s.i; j++) { acc += probs[j] * ld(v0 + j * row + d); }
        st(out + d, acc);
    }
    st(params.lse_off + s.g * params.t + s.i, m + log(l));
}

@compute @workgroup_size(WG_1D)
fn attention_backward_queries(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let s = slot_of(gid, groups);
    if (!s.ok) { return; }
    let scale = 1.0 / sqrt(f32(params.dh));
    let lse = ld(params.lse_off + s.g * params.t + s.i);
    let dout = out_at(params.dout_off, s.b, s.h, s.i);
    // p_ij, then ds_ij = p_ij (dp_ij - delta_i); value_grads[j] = dp_ij.
    var probs: array<f32, MAX_CTX>;
    var value_grads: array<f32, MAX_CTX>;
    var delta = 0.0;
    for (var j = 0u; j <= s.i; j++) {
        let p = exp(score(s.b, s.h, s.i, j) - lse);
        let dp = dot_rows(dout, part_at(params.qkv_off, s.b * params.t + j, 2u, s.h));
        probs[j] = p;
        value_grads[j] = dp;
        delta += p * dp;
    }
    st(params.delta_off + s.g * params.t + s.i, delta);
    for (var j = 0u; j <= s.i; j++) { probs[j] = probs[j] * (value_grads[j] - delta); }
    let dq = part_at(params.dqkv_off, s.b * params.t + s.i, 0u, s.h);
    let k0 = part_at(params.qkv_off, s.b * params.t, 1u, s.h);
    let row = 3u * params.heads * params.dh;
    for (var d = 0u; d < params.dh; d++) {
        var acc = 0.0;
        for (var j = 0u; j <= s.i; j++) { acc += probs[j] * ld(k0 + j * row + d) * scale; }
        st(dq + d, acc);
    }
}

@compute @workgroup_size(WG_1D)
fn attention_backward_keys(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let s = slot_of(gid, groups);
    if (!s.ok) { return; }
    let scale = 1.0 / sqrt(f32(params.dh));
    let j = s.i;
    let v = part_at(params.qkv_off, s.b * params.t + j, 2u, s.h);
    // Over the queries i >= j, at index i - j: p_ij and ds_ij.
    var probs: array<f32, MAX_CTX>;
    var score_grads: array<f32, MAX_CTX>;
    for (var i = j; i < params.t; i++) {
        let p = exp(score(s.b, s.h, i, j) - ld(params.lse_off + s.g * params.t + i));
        let dout = out_at(params.dout_off, s.b, s.h, i);
        probs[i - j] = p;
        score_grads[i - j] = p * (dot_rows(dout, v) - ld(params.delta_off + s.g * params.t + i));
    }
    let dk = part_at(params.dqkv_off, s.b * params.t + j, 1u, s.h);
    let dv = part_at(params.dqkv_off, s.b * params.t + j, 2u, s.h);
    let q0 = part_at(params.qkv_off, s.b * params.t, 0u, s.h);
    let dout0 = out_at(params.dout_off, s.b, s.h, 0u);
    let row = 3u * params.heads * params.dh;
    let out_row = params.heads * params.dh;
    for (var d = 0u; d < params.dh; d++) {
        var dk_acc = 0.0;
        var dv_acc = 0.0;
        for (var i = j; i < params.t; i++) {
            dk_acc += score_grads[i - j] * ld(q0 + i * row + d) * scale;
            dv_acc += probs[i - j] * ld(dout0 + i * out_row + d);
        }
        st(dk + d, dk_acc);
        st(dv + d, dv_acc);
    }
}
