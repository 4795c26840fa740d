// matmul: C[m, n] (+)= sum_k A[m, k] * B[k, n] (+ bias[n])
// A(i, k) = arena[a_off + i*a_rs + k*a_cs], B(k, j) = arena[b_off + k*b_rs + j*b_cs],
// C(i, j) = arena[c_off + i*c_rs + j]. Strides express every transpose backward needs:
//   linear forward   y[B,out]  = x[B,in] @ W[out,in]^T + b
//   linear backward  dW[out,in] += dy^T @ x      dx[B,in] (+)= dy @ W
// Accumulate rule: parameter gradients +=, activation outputs = (the `accumulate` flag).
// Forward and backward are the same entry point. One 16x16 output tile per workgroup; the k
// loop runs in order, as the CPU reference does.
struct MatmulParams {
    m: u32, n: u32, k: u32,
    a_off: u32, a_rs: u32, a_cs: u32,
    b_off: u32, b_rs: u32, b_cs: u32,
    c_off: u32, c_rs: u32, bias_off: u32,
    accumulate: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}
@group(0) @binding(1) var<uniform> params: MatmulParams;

const TILE: u32 = 16u;
var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wid.y * TILE + lid.y;
    let col = wid.x * TILE + lid.x;
    var acc = 0.0;
    let tiles = (params.k + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t++) {
        let ka = t * TILE + lid.x;
        var av = 0.0;
        if (row < params.m && ka < params.k) {
            av = arena[params.a_off + row * params.a_rs + ka * params.a_cs];
        }
        tile_a[lid.y][lid.x] = av;
        let kb = t * TILE + lid.y;
        var bv = 0.0;
        if (col < params.n && kb < params.k) {
            bv = arena[params.b_off + kb * params.b_rs + col * params.b_cs];
        }
        tile_b[lid.y][lid.x] = bv;
        workgroupBarrier();
        let valid = min(TILE, params.k - t * TILE);
        for (var kk = 0u; kk < valid; kk++) {
            acc += tile_a[lid.y][kk] * tile_b[kk][lid.x];
        }
        workgroupBarrier();
    }
    if (row >= params.m || col >= params.n) { return; }
    if (params.bias_off != NONE) {
        acc += arena[params.bias_off + col];
    }
    let c = params.c_off + row * params.c_rs + col;
    if (params.accumulate != 0u) {
        arena[c] = arena[c] + acc;
    } else {
        arena[c] = acc;
    }
}
