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

// A head's row is read in chunks of up to eight floats held in two vec4s, lanes past the
// head's end zero. A thread's own row (its q, k and v, or dout) is loaded once per chunk and
// kept in registers while it meets every other position's; the scores sum chunk by chunk, each
// chunk's products in order, so every score still sums over d in ascending order.
const CHUNK: u32 = 8u;
struct Chunk { lo: vec4<f32>, hi: vec4<f32> }
// Lanes of the chunk from d0 on that lie in the head.
fn chunk_lanes(d0: u32) -> u32 { return min(CHUNK, params.dh - d0); }
fn chunk_at(at: u32, lanes: u32) -> Chunk {
    var hi = vec4<f32>(0.0);
    if (lanes > 4u) { hi = arena_lanes(at + 4u, lanes - 4u, 0.0); }
    return Chunk(arena_lanes(at, min(lanes, 4u), 0.0), hi);
}
// acc + a . b, the products added in lane order (a zero lane adds exactly nothing).
fn dot_from(acc: f32, a: Chunk, b: Chunk) -> f32 {
    let lo = a.lo * b.lo;
    let hi = a.hi * b.hi;
    return acc + lo.x + lo.y + lo.z + lo.w + hi.x + hi.y + hi.z + hi.w;
}
// acc + p b, lane by lane.
fn add_scaled(acc: Chunk, p: f32, b: Chunk) -> Chunk {
    return Chunk(acc.lo + p * b.lo, acc.hi + p * b.hi);
}
fn store_chunk(at: u32, lanes: u32, value: Chunk) {
    st_first(at, value.lo, min(lanes, 4u));
    if (lanes > 4u) { st_first(at + 4u, value.hi, lanes - 4u); }
}

// (sequence, head, position) of this thread; false past the end.
struct Slot { b: u32, h: u32, g: u32, i: u32, ok: bool }
fn slot_of(gid: vec3<u32>, groups: vec3<u32>) -> Slot {
    let e = flat_thread(gid, groups);
    let g = e / params.t;
    return Slot(g / params.heads, g % params.heads, g, e % params.t, e < params.batch * params.heads * params.t);
}

fn out_at(base: u32, b: u32, h: u32, i: u32) -> u32 {
    return base + (b * params.t + i) * params.heads * params.dh + h * params.dh;
}

// Position j's row of part (0 q, 1 k, 2 v) of sequence b's head h, chunk d0.
fn position_chunk(base: u32, b: u32, j: u32, part: u32, h: u32, d0: u32) -> Chunk {
    return chunk_at(part_at(base, b * params.t + j, part, h) + d0, chunk_lanes(d0));
}
fn out_chunk(base: u32, b: u32, h: u32, i: u32, d0: u32) -> Chunk {
    return chunk_at(out_at(base, b, h, i) + d0, chunk_lanes(d0));
}

@compute @workgroup_size(WG_1D)
fn attention_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let s = slot_of(gid, groups);
    if (!s.ok) { return; }
    let scale = 1.0 / sqrt(f32(params.dh));
    // probs[j]: q_i . k_j, then the score, then exp(score - m), then the probability.
    var probs: array<f32, MAX_CTX>;
    for (var d0 = 0u; d0 < params.dh; d0 += CHUNK) {
        let q = position_chunk(params.qkv_off, s.b, s.i, 0u, s.h, d0);
        for (var j = 0u; j <= s.i; j++) { probs[j] = dot_from(probs[j], q, position_chunk(params.qkv_off, s.b, j, 1u, s.h, d0)); }
    }
    var m = 0.0;
    for (var j = 0u; j <= s.i; j++) {
        let score_ij = probs[j] * scale;
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
    for (var d0 = 0u; d0 < params.dh; d0 += CHUNK) {
        var acc = Chunk(vec4<f32>(0.0), vec4<f32>(0.0));
        for (var j = 0u; j <= s.i; j++) { acc = add_scaled(acc, probs[j], position_chunk(params.qkv_off, s.b, j, 2u, s.h, d0)); }
        store_chunk(out + d0, chunk_lanes(d0), acc);
    }
    st(params.lse_off + s.g * params.t + s.i, m + log(l));
}

@compute @workgroup_size(WG_1D)
fn attention_backward_queries(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let s = slot_of(gid, groups);
    if (!s.ok) { return; }
    let scale = 1.0 / sqrt(f32(params.dh));
    let lse = ld(params.lse_off + s.g * params.t + s.i);
    // probs[j]: q_i . k_j, then p_ij, then ds_ij = p_ij (dp_ij - delta_i); value_grads[j] = dp_ij.
    var probs: array<f32, MAX_CTX>;
    var value_grads: array<f32, MAX_CTX>;
    for (var d0 = 0u; d0 < params.dh; d0 += CHUNK) {
        let q = position_chunk(params.qkv_off, s.b, s.i, 0u, s.h, d0);
        let dout = out_chunk(params.dout_off, s.b, s.h, s.i, d0);
        for (var j = 0u; j <= s.i; j++) {
            probs[j] = dot_from(probs[j], q, position_chunk(params.qkv_off, s.b, j, 1u, s.h, d0));
            value_grads[j] = dot_from(value_grads[j], dout, position_chunk(params.qkv_off, s.b, j, 2u, s.h, d0));
        }
    }
    var delta = 0.0;
    for (var j = 0u; j <= s.i; j++) {
        let p = exp(probs[j] * scale - lse);
        probs[j] = p;
        delta += p * value_grads[j];
    }
    st(params.delta_off + s.g * params.t + s.i, delta);
    for (var j = 0u; j <= s.i; j++) { probs[j] = probs[j] * (value_grads[j] - delta); }
    let dq = part_at(params.dqkv_off, s.b * params.t + s.i, 0u, s.h);
    for (var d0 = 0u; d0 < params.dh; d0 += CHUNK) {
        var acc = Chunk(vec4<f32>(0.0), vec4<f32>(0.0));
        for (var j = 0u; j <= s.i; j++) {
            let k = position_chunk(params.qkv_off, s.b, j, 1u, s.h, d0);
            acc = Chunk(acc.lo + probs[j] * k.lo * scale, acc.hi + probs[j] * k.hi * scale);
        }
        store_chunk(dq + d0, chunk_lanes(d0), acc);
    }
}

@compute @workgroup_size(WG_1D)
fn attention_backward_keys(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let s = slot_of(gid, groups);
    if (!s.ok) { return; }
    let scale = 1.0 / sqrt(f32(params.dh));
    let j = s.i;
    // Over the queries i >= j, at index i - j: q_i . k_j, then p_ij; dout_i . v_j, then ds_ij.
    var probs: array<f32, MAX_CTX>;
    var score_grads: array<f32, MAX_CTX>;
    for (var d0 = 0u; d0 < params.dh; d0 += CHUNK) {
        let k = position_chunk(params.qkv_off, s.b, j, 1u, s.h, d0);
        let v = position_chunk(params.qkv_off, s.b, j, 2u, s.h, d0);
        for (var i = j; i < params.t; i++) {
            probs[i - j] = dot_from(probs[i - j], position_chunk(params.qkv_off, s.b, i, 0u, s.h, d0), k);
            score_grads[i - j] = dot_from(score_grads[i - j], out_chunk(params.dout_off, s.b, s.h, i, d0), v);
        }
    }
    for (var i = j; i < params.t; i++) {
        let p = exp(probs[i - j] * scale - ld(params.lse_off + s.g * params.t + i));
        probs[i - j] = p;
        score_grads[i - j] = p * (score_grads[i - j] - ld(params.delta_off + s.g * params.t + i));
    }
    let dk = part_at(params.dqkv_off, s.b * params.t + j, 1u, s.h);
    let dv = part_at(params.dqkv_off, s.b * params.t + j, 2u, s.h);
    for (var d0 = 0u; d0 < params.dh; d0 += CHUNK) {
        var dk_acc = Chunk(vec4<f32>(0.0), vec4<f32>(0.0));
        var dv_acc = Chunk(vec4<f32>(0.0), vec4<f32>(0.0));
        for (var i = j; i < params.t; i++) {
            let q = position_chunk(params.qkv_off, s.b, i, 0u, s.h, d0);
            let sg = score_grads[i - j];
            dk_acc = Chunk(dk_acc.lo + sg * q.lo * scale, dk_acc.hi + sg * q.hi * scale);
            dv_acc = add_scaled(dv_acc, probs[i - j], out_chunk(params.dout_off, s.b, s.h, i, d0));
        }
        store_chunk(dk + d0, chunk_lanes(d0), dk_acc);
        store_chunk(dv + d0, chunk_lanes(d0), dv_acc);
    }
}
