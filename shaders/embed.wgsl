// Token and position embeddings of the transformer. tokens: [rows] (exact small floats),
// tok: [vocab, c], pos: [t, c], out/dout: [rows, c] with rows = batch * t, row r at position r mod t.
//   embed_forward:         out[r, j] = tok[token[r], j] + pos[r mod t, j]                 (=)
//   embed_backward_tokens: dtok[v, j] += sum over rows r (ascending) with token[r] == v of dout[r, j]
//                          (one thread per (v, four channels) scans every row: WebGPU has no float
//                          atomics; a parameter gradient, +=). Four channels a thread because the
//                          scan's cost is its token loads, and a token is rarely v. The position
//                          gradient is a Reduce over the batch.
struct EmbedParams {
    rows: u32, c: u32, t: u32, vocab: u32,
    tokens_off: u32, tok_off: u32, pos_off: u32, out_off: u32,
    dout_off: u32, dtok_off: u32, _pad0: u32, _pad1: u32,
}
@group(0) @binding(1) var<uniform> params: EmbedParams;

@compute @workgroup_size(WG_1D)
fn embed_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = flat_thread(gid, groups);
    if (e >= params.rows * params.c) { return; }
    let r = e / params.c;
    let j = e % params.c;
    let token = u32(ld(params.tokens_off + r));
    st(params.out_off + e, ld(params.tok_off + token * params.c + j) + ld(params.pos_off + (r % params.t) * params.c + j));
}

@compute @workgroup_size(WG_1D)
fn embed_backward_tokens(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let quads = quads_of(params.c);
    let e = flat_thread(gid, groups);
    if (e >= params.vocab * quads) { return; }
    let v = e / quads;
    let j = 4u * (e % quads);
    let lanes = lanes_of(params.c, e % quads);
    var acc = vec4<f32>(0.0);
    for (var r = 0u; r < params.rows; r++) {
        if (u32(ld(params.tokens_off + r)) == v) { acc += ld_first(params.dout_off + r * params.c + j, lanes); }
    }
    let o = params.dtok_off + v * params.c + j;
    st_first(o, ld_first(o, lanes) + acc, lanes);
}
