// matmul: C[m, n] (+)= sum_k A[m, k] * B[k, n] (+ bias[n])
// A(i, k) = ld(a_off + i*a_rs + k*a_cs), B(k, j) = ld(b_off + k*b_rs + j*b_cs),
// C(i, j) = ld(c_off + i*c_rs + j). Strides express every transpose backward needs:
//   linear forward   y[B,out]  = x[B,in] @ W[out,in]^T + b
//   linear backward  dW[out,in] += dy^T @ x      dx[B,in] (+)= dy @ W
// Accumulate rule: parameter gradients +=, activation outputs = (the `accumulate` flag).
// Forward and backward are the same entry point. A workgroup of 16x16 threads computes a
// 64x64 tile of C (or 32x64, 16x64 for short products), each thread a 4x4 (2x4, 1x4) block
// held in registers; A and B pass through workgroup
// memory 16 values of k at a time. Every output still sums k in order, as the CPU reference.
// Batched: workgroup z computes product z, operands offset by z * (a_bs, b_bs, c_bs); the
// weight gradients of all blocks are one dispatch this way.
// matmul_direct: the same products, a thread per output straight from the arena.
// matmul_registers (every product's kernel, kernels/: MatmulKernel): the same products, a
// thread per 4 x 4 block of C straight from the arena: no workgroup memory and so no barrier,
// which software GPUs (SwiftShader, lavapipe) pay for dearly; 8 operand loads per 16
// multiply-adds where matmul_direct needs 32, and where operands are aligned (every side a
// multiple of 4, as the arena plan lays them out) 8 vec4 loads per 64.
// matmul_registers8: the same with a thread per 8 x 8 block, 16 vec4 loads per 256
// multiply-adds: what matmul_registers runs as on a software adapter (kernels/: RegisterBlock).
// Every entry point sums k in the same order, so all four give the same values.
struct MatmulParams {
    m: u32, n: u32, k: u32,
    a_off: u32, a_rs: u32, a_cs: u32,
    b_off: u32, b_rs: u32, b_cs: u32,
    c_off: u32, c_rs: u32, bias_off: u32,
    accumulate: u32, batch: u32, a_bs: u32, b_bs: u32,
    c_bs: u32, kernel: u32, _pad1: u32, _pad2: u32,
}
@group(0) @binding(1) var<uniform> params: MatmulParams;

// Output (row, col) of product z: its sum over k plus the bias, stored or added (every entry
// point's epilogue).
fn store_product(z: u32, row: u32, col: u32, sum: f32) {
    var value = sum;
    if (params.bias_off != NONE) {
        value += ld(params.bias_off + col);
    }
    let o = params.c_off + z * params.c_bs + row * params.c_rs + col;
    if (params.accumulate != 0u) {
        st(o, ld(o) + value);
    } else {
        st(o, value);
    }
}

const TILE: u32 = 64u;      // output tile width, and the most rows (kernels/: MATMUL_TILE)
const TILE_K: u32 = 16u;
const THREADS: u32 = 256u;  // 16 x 16
// Rows of C per thread: 4 (a 64 x 64 tile), or 2 or 1 (32 or 16 rows) for products that short:
// the projections' and the head's weight gradients have 2 to 80 rows, which a 64-row tile
// would mostly pad. Set per pipeline (kernels/: matmul_rows_per_thread).
override ROWS_PER_THREAD: u32 = 4u;
var<workgroup> tile_a: array<f32, 1024>;  // [TILE_K][TILE]: A[row0 + r, k0 + kk] at kk*TILE + r
var<workgroup> tile_b: array<f32, 1024>;  // [TILE_K][TILE]: B[k0 + kk, col0 + c] at kk*TILE + c

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(local_invocation_index) lidx: u32) {
    let row0 = wid.y * 16u * ROWS_PER_THREAD;
    let col0 = wid.x * TILE;
    let a_off = params.a_off + wid.z * params.a_bs;
    let b_off = params.b_off + wid.z * params.b_bs;
    var acc = array<f32, 16>();
    let tiles = (params.k + TILE_K - 1u) / TILE_K;
    for (var t = 0u; t < tiles; t++) {
        let k0 = t * TILE_K;
        for (var j = 0u; j < ROWS_PER_THREAD; j++) {
            // A: consecutive threads walk k (contiguous for row-major A).
            let e = lidx + THREADS * j;
            let r = e / TILE_K;
            let ka = e % TILE_K;
            var av = 0.0;
            if (row0 + r < params.m && k0 + ka < params.k) {
                av = ld(a_off + (row0 + r) * params.a_rs + (k0 + ka) * params.a_cs);
            }
            tile_a[ka * TILE + r] = av;
        }
        for (var j = 0u; j < 4u; j++) {
            // B: consecutive threads walk columns.
            let e = lidx + THREADS * j;
            let kb = e / TILE;
            let c = e % TILE;
            var bv = 0.0;
            if (col0 + c < params.n && k0 + kb < params.k) {
                bv = ld(b_off + (k0 + kb) * params.b_rs + (col0 + c) * params.b_cs);
            }
            tile_b[kb * TILE + c] = bv;
        }
        workgroupBarrier();
        let valid = min(TILE_K, params.k - k0);
        for (var kk = 0u; kk < valid; kk++) {
            let b = vec4<f32>(tile_b[kk * TILE + lid.x * 4u], tile_b[kk * TILE + lid.x * 4u + 1u],
                              tile_b[kk * TILE + lid.x * 4u + 2u], tile_b[kk * TILE + lid.x * 4u + 3u]);
            for (var i = 0u; i < ROWS_PER_THREAD; i++) {
                let a = tile_a[kk * TILE + lid.y * ROWS_PER_THREAD + i];
                acc[i * 4u] += a * b.x;
                acc[i * 4u + 1u] += a * b.y;
                acc[i * 4u + 2u] += a * b.z;
                acc[i * 4u + 3u] += a * b.w;
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < ROWS_PER_THREAD; i++) {
        let row = row0 + lid.y * ROWS_PER_THREAD + i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x * 4u + j;
            if (row < params.m && col < params.n) {
                store_product(wid.z, row, col, acc[i * 4u + j]);
            }
        }
    }
}

@compute @workgroup_size(WG_1D)
fn matmul_direct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = flat_thread(gid, groups);
    let outputs = params.m * params.n;
    if (t >= outputs * max(params.batch, 1u)) { return; }
    let z = t / outputs;
    let row = (t % outputs) / params.n;
    let col = t % params.n;
    let a0 = params.a_off + z * params.a_bs + row * params.a_rs;
    let b0 = params.b_off + z * params.b_bs + col * params.b_cs;
    var value = 0.0;
    for (var k = 0u; k < params.k; k++) {
        value += ld(a0 + k * params.a_cs) * ld(b0 + k * params.b_rs);
    }
    store_product(z, row, col, value);
}

// A thread per `side` x `side` block of C, side 4 (matmul_registers) or 8 (matmul_registers8:
// prelude.wgsl's Block8, of which a 4 x 4 block is the lo_a quarter); rows and columns past C's
// edge re-read its last row or column (so the loop has no branch) and are not written.
fn register_product(t: u32, lid: u32, wide: bool) {
    // Only 8 x 8 blocks share rows (a constant per entry point, so every thread comes here).
    if (wide) { subgroup_begin(lid); }
    let side = select(4u, 8u, wide);
    let row_blocks = (params.m + side - 1u) / side;
    let col_blocks = (params.n + side - 1u) / side;
    let blocks = row_blocks * col_blocks;
    // Past the last block a whole subgroup leaves where rows are shared (its blocks are a
    // multiple of SHARE_WIDTH a row group, so of every product too).
    if (t >= blocks * max(params.batch, 1u)) { return; }
    let z = t / blocks;
    // Neighbouring threads take neighbouring column blocks: they share A's rows and read B's
    // columns side by side.
    let row0 = ((t % blocks) / col_blocks) * side;
    let col0 = (t % col_blocks) * side;
    let a_base = params.a_off + z * params.a_bs;
    let b_base = params.b_off + z * params.b_bs;
    // Each row's and each column's first operand: rows 0-3, 4-7; columns 0-3, 4-7.
    let a_lo = clamped_starts(a_base, row0, params.m - 1u, params.a_rs);
    let a_hi = clamped_starts(a_base, row0 + 4u, params.m - 1u, params.a_rs);
    let b_a = clamped_starts(b_base, col0, params.n - 1u, params.b_cs);
    let b_b = clamped_starts(b_base, col0 + 4u, params.n - 1u, params.b_cs);
    // Rows 4-7 are summed only where C has them; columns past C's edge re-read its last one.
    let rows_hi = wide && row0 + 4u < params.m;
    // Aligned operands go four steps of k at a time in vec4 loads (kernels/: ArenaView): a run
    // of A is one row's four k's (a_along_k) or one k's four rows (a_across); a run of B one
    // column's four k's (b_along_k) or one k's four columns (b_across).
    let a_along_k = params.a_cs == 1u && a_base % 4u == 0u && params.a_rs % 4u == 0u;
    let a_across = params.a_rs == 1u && a_base % 4u == 0u && params.a_cs % 4u == 0u && row0 + side - 1u < params.m;
    let b_along_k = params.b_rs == 1u && b_base % 4u == 0u && params.b_cs % 4u == 0u;
    let b_across = params.b_cs == 1u && b_base % 4u == 0u && params.b_rs % 4u == 0u && col0 + side - 1u < params.n;
    let quads = select(0u, params.k / 4u, (a_along_k || a_across) && (b_along_k || b_across));
    var acc: Block8;
    // The threads of a subgroup then all have A's rows row0 .. row0 + 7 and the same quads
    // (shared_rows.wgsl).
    if (rows_shareable(wide, WG_1D, params.n) && quads * 4u == params.k) {
        acc = shared_block8_sum(a_lo, a_hi, params.a_cs, a_across, b_a, b_b, params.b_rs, b_across, quads, rows_hi);
    } else {
        acc = block8_sum(a_lo, a_hi, params.a_cs, a_across, b_a, b_b, params.b_rs, b_across, quads, params.k, rows_hi, wide);
    }
    for (var i = 0u; i < side; i++) {
        let row = row0 + i;
        for (var j = 0u; j < side; j++) {
            let col = col0 + j;
            if (row < params.m && col < params.n) {
                store_product(z, row, col, block8_row(acc, i, j / 4u)[j % 4u]);
            }
        }
    }
}

@compute @workgroup_size(WG_1D)
fn matmul_registers(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    register_product(flat_thread(gid, groups), lid, false);
}

@compute @workgroup_size(WG_1D)
fn matmul_registers8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    register_product(flat_thread(gid, groups), lid, true);
}
