// One whole block of one variant per dispatch, forward and backward side by side. The host
// prepends activation.wgsl and hyper.wgsl (kernels/: SHADER_LIBRARIES): the coefficient
// math of HC and mHC (Sinkhorn included) and the activations are those functions, not copies.
//
// Why one dispatch: a block is 6 to 9 small kernels forward and 9 to 13 backward, and a
// dispatch costs tens of microseconds in a browser whatever its size. Everything here is
// row-parallel (each example's rows are independent), so a workgroup owns TILE_ROWS rows and
// carries them through every phase; between phases a storage barrier makes the workgroup's own
// arena writes visible to itself. Intermediates go to the arena exactly where the unfused op
// list puts them (the backward and the metrics read them, and the CPU twin,
// block.rs: unfused_twin, checks every one). Weight gradients sum
// over rows, so they are not here: program/ batches them over all blocks.
//
// forward:  H = coefficients(X)  [HC: Z = X_i / rms(X_i), D = Z W^T, tanh; mHC: A = phi v,
//           sigmoids, Sinkhorn]; u = sum_i pre_i X_i; normed = u / rms(u) * w;
//           hidden = act(normed W1^T + b1); y = hidden W2^T + b2; X' = res X + post y (f16).
// backward: dy, dX (=) and d post/res; d_hidden = dy W2; d_hidden_pre = d_hidden act';
//           d_normed = d_hidden_pre W1; du (=); dX += pre du and d pre; then HC: dD, partials,
//           dZ = dD W, dX += rmsnorm'(dZ); mHC: dA, partials, dX += rms path + dA phi.
// A sublayer that mixes rows (the transformer's attention) cannot live in a row tile, so the
// wrapping around it is fused on each side instead: wrap_in_forward (coefficients, combine, norm),
// wrap_out_forward (the update), wrap_out_backward (the update's backward) and wrap_in_backward
// (norm, combine, coefficients). block.rs: unfused_twin gives their twins.
// Every sum runs in the order of the CPU reference.
struct BlockParams {
    rows: u32, n: u32, c: u32, fc: u32,
    kind: u32, act: u32, round_f16: u32, iters: u32,
    eps: f32, x_off: u32, out_off: u32, h_off: u32,
    u_off: u32, normed_off: u32, norm_rms_off: u32, hidden_pre_off: u32,
    hidden_off: u32, y_off: u32, norm_w: u32, fc1_w: u32,
    fc1_b: u32, fc2_w: u32, fc2_b: u32, proj_w: u32,
    small_off: u32, proj_off: u32, z_off: u32, z_rms_off: u32,
    dout_off: u32, dx_off: u32, dy_off: u32, dhidden_off: u32,
    dhidden_pre_off: u32, dnormed_off: u32, du_off: u32, dh_off: u32,
    dproj_off: u32, dz_off: u32, part_off: u32, div_off: u32,
}
@group(0) @binding(1) var<uniform> blk: BlockParams;

const TILE_ROWS: u32 = 8u;  // kernels/: BLOCK_TILE_ROWS
// Threads of a workgroup, set per adapter (kernels/: block_threads): a workgroup's threads
// share its rows' work, so any count computes the same values. SwiftShader runs a workgroup's
// threads four at a time and switches between those groups at every barrier; with four threads
// there is nothing to switch (the default experiment 1.3x faster there), while lavapipe's
// eight-wide groups and real GPUs want 64.
override BLOCK_THREADS: u32 = 64u;
const BLOCK_HC: u32 = 1u;
const BLOCK_MHC: u32 = 2u;

// Set per op by the host (kernels/: BlockParams::quads): every tensor starts at a multiple of
// 4 floats and c and fc are multiples of 4, so the channel-wise phases move four channels at a
// time in vec4 loads and stores (kernels/: ArenaView), and so do the FFN's outputs and every
// linear layer's input gradient. Otherwise the same phases run on four channels from single
// loads, and the lanes past a row's end are neither stored nor summed.
override QUADS: bool = false;

// Channels i .. i + 3.
fn ld4(i: u32) -> vec4<f32> {
    if (QUADS) { return ld_vec4(i >> 2u); }
    return vec4<f32>(ld(i), ld(i + 1u), ld(i + 2u), ld(i + 3u));
}
// The first `count` (1 to 4) of v to i ...
fn st4(i: u32, v: vec4<f32>, count: u32) {
    if (QUADS) {
        st_vec4(i >> 2u, v);
    } else {
        st_first(i, v, count);
    }
}
// sum + v.x + v.y + ... over the first `count` (1 to 4) lanes, in that order.
fn add_lanes(sum: f32, v: vec4<f32>, count: u32) -> f32 {
    var s = sum + v.x;
    s = select(s, s + v.y, count > 1u);
    s = select(s, s + v.z, count > 2u);
    return select(s, s + v.w, count > 3u);
}
// Item t of a phase over rows of `len` channels in groups of four, rows numbered from `first`:
// its row, its first channel and how many of its lanes are real.
struct Quad { row: u32, e: u32, lanes: u32 }
fn quad_item(first: u32, t: u32, len: u32) -> Quad {
    let q = t % quads_of(len);
    return Quad(first + t / quads_of(len), 4u * q, lanes_of(len, q));
}
// sum_e a[e] * b[e] over a row of `len`, in order.
fn dot_at(a: u32, b: u32, len: u32) -> f32 {
    var acc = 0.0;
    for (var q = 0u; q < quads_of(len); q++) {
        acc = add_lanes(acc, ld4(a + 4u * q) * ld4(b + 4u * q), lanes_of(len, q));
    }
    return acc;
}

// Per-row (or per row and stream) scalars of the tile, shared between phases.
var<workgroup> tile_scalars: array<f32, 64>;  // TILE_ROWS * MAX_N

// The workgroup's arena writes so far are visible to all of its threads after this.
fn phase_end() {
    storageBarrier();
    workgroupBarrier();
}

fn hc_of_block() -> HcCoeffParams {
    let pc = blk.n * blk.n + 2u * blk.n;
    return HcCoeffParams(blk.rows, blk.n, blk.proj_off, blk.small_off, blk.h_off, pc, blk.dh_off,
                         blk.dproj_off, blk.part_off, 0u, 0u, 0u);
}

fn mhc_of_block() -> MhcCoeffParams {
    let pc = blk.n * blk.n + 2u * blk.n;
    return MhcCoeffParams(blk.rows, blk.n, blk.c, blk.x_off, blk.proj_off, blk.small_off, blk.z_rms_off,
                          blk.h_off, pc, blk.iters, blk.eps, blk.dh_off, blk.dproj_off, blk.part_off,
                          blk.dx_off, blk.div_off);
}

// Element (row b, stream i, channel e) of a [rows, n, c] tensor.
fn at_stream(base: u32, b: u32, i: u32, e: u32) -> u32 {
    return base + (b * blk.n + i) * blk.c + e;
}

// Coefficient j of row b in [pre (n) | post (n) | res (n*n)]; the identity's without H.
fn coefficient(b: u32, j: u32, identity: f32) -> f32 {
    if (blk.h_off == NONE) { return identity; }
    return ld(blk.h_off + b * (blk.n * blk.n + 2u * blk.n) + j);
}
fn h_pre(b: u32, i: u32) -> f32 { return coefficient(b, i, 1.0); }
fn h_post(b: u32, k: u32) -> f32 { return coefficient(b, blk.n + k, 1.0); }
fn h_res(b: u32, k: u32, i: u32) -> f32 {
    return coefficient(b, 2u * blk.n + k * blk.n + i, select(0.0, 1.0, k == i));
}

// ---- Stream mixing in registers, for 1 <= n <= 4 with coefficients. The loops of the other
// path load a coefficient at every use and a stream once per output stream; here an item loads
// its row's coefficients once and each quad of its streams once. Columns and lanes past n hold
// zeros, which change no value (at most a -0 sum becomes +0), so both paths sum the same values
// in the same order. Without coefficients (residual's one stream) the loops load nothing but
// that stream. A test on the params, not an override, so that residual, HC and mHC keep sharing
// their pipelines (as an override it made the page compile the fused ones twice); the test is
// uniform, so a workgroup only ever runs one of the two paths.
fn streams_in_registers() -> bool {
    return blk.n <= 4u && blk.h_off != NONE;
}
// An item of those phases: one row, all its channels (ROW_ITEMS: the coefficients loaded once
// for all of them, and the d post / d res / d pre dots summed on the way), or one quad of a row
// (a thread per quad, the dots then loops of their own over each row's coefficients). Set per
// adapter (kernels/: StreamItems): a software GPU pays per load whichever lanes are busy, a
// hardware one wants the threads.
override ROW_ITEMS: bool = false;

// Row b's coefficients: pre and post over the streams, res[k] = row k of H_res (over i).
struct Mixing { pre: vec4<f32>, post: vec4<f32>, res: mat4x4<f32> }
fn mixing_of(b: u32) -> Mixing {
    let n = blk.n;
    let h = blk.h_off + b * (n * n + 2u * n);
    let res = h + 2u * n;
    let whole = rows_in_vec4s(n, blk.h_off);
    return Mixing(lanes_at(h, n, 0.0, whole), lanes_at(h + n, n, 0.0, whole),
                  mat4x4<f32>(arena_row(res, n, 0u, whole), arena_row(res, n, 1u, whole), arena_row(res, n, 2u, whole),
                              arena_row(res, n, 3u, whole)));
}
// Channels e .. e + 3 of row b's streams at base: column i is stream i's, zeros past n.
fn stream_quads(base: u32, b: u32, e: u32) -> mat4x4<f32> {
    let n = blk.n;
    let zero = vec4<f32>(0.0);
    let last = n - 1u;
    return mat4x4<f32>(ld4(at_stream(base, b, 0u, e)), select(zero, ld4(at_stream(base, b, min(1u, last), e)), n > 1u),
                       select(zero, ld4(at_stream(base, b, min(2u, last), e)), n > 2u),
                       select(zero, ld4(at_stream(base, b, min(3u, last), e)), n > 3u));
}
// Columns 0 .. n-1 of m to row b's streams at base, channels e .. e + lanes - 1.
fn store_streams(base: u32, b: u32, e: u32, lanes: u32, m: mat4x4<f32>) {
    st4(at_stream(base, b, 0u, e), m[0], lanes);
    if (blk.n > 1u) { st4(at_stream(base, b, 1u, e), m[1], lanes); }
    if (blk.n > 2u) { st4(at_stream(base, b, 2u, e), m[2], lanes); }
    if (blk.n > 3u) { st4(at_stream(base, b, 3u, e), m[3], lanes); }
}
// first + w.x m[0] + w.y m[1] + w.z m[2] + w.w m[3], in that order.
fn mix4(first: vec4<f32>, w: vec4<f32>, m: mat4x4<f32>) -> vec4<f32> {
    return first + w.x * m[0] + w.y * m[1] + w.z * m[2] + w.w * m[3];
}
// acc + m[0] v.x + m[1] v.y + ... over the first `lanes` lanes of v, in order: lane k of the
// result is a running dot over channels (m[l] holds channel l of four dots' left operands).
fn dot_step(acc: vec4<f32>, m: mat4x4<f32>, v: vec4<f32>, lanes: u32) -> vec4<f32> {
    var s = acc + m[0] * v.x;
    s = select(s, s + m[1] * v.y, lanes > 1u);
    s = select(s, s + m[2] * v.z, lanes > 2u);
    return select(s, s + m[3] * v.w, lanes > 3u);
}
fn rounded_if_f16(v: vec4<f32>) -> vec4<f32> {
    if (blk.round_f16 == 0u) { return v; }
    return vec4<f32>(round_to_f16(v.x), round_to_f16(v.y), round_to_f16(v.z), round_to_f16(v.w));
}
// Item t of a stream phase over rows r0 .. r0 + tile: its row and its quads q0 .. q1 - 1.
struct StreamItem { row: u32, q0: u32, q1: u32 }
fn stream_items(tile: u32, quads: u32) -> u32 { return select(tile * quads, tile, ROW_ITEMS); }
fn stream_item(r0: u32, t: u32, quads: u32) -> StreamItem {
    if (ROW_ITEMS) { return StreamItem(r0 + t, 0u, quads); }
    return StreamItem(r0 + t / quads, t % quads, t % quads + 1u);
}

// The register block both directions of a linear layer share: row r, column q of it sums
// X(r, e) W(e, q) over e in order, for block_side() rows and columns, with
// X(r, e) = ld(x_base + min(r, last) * x_stride + e) (rows past `last` re-read it) and
// W(e, q) = ld(w_base + min(col0 + q, cols - 1) * w_col_stride + e * w_step).
// The accumulators are named matrices (prelude.wgsl: Block8), not an indexed array: a software
// GPU keeps a dynamically indexed array in memory (that cost the block kernels 2.5x on
// SwiftShader).
// 4 x 4 blocks (a 64-thread workgroup's fc1 is two rounds of 64 threads) or, where
// WIDE_BLOCKS, 8 x 8 (a round of 32): set per adapter (kernels/: RegisterBlock).
override WIDE_BLOCKS: bool = false;
// Rows and columns of a register block.
fn block_side() -> u32 { return select(4u, 8u, WIDE_BLOCKS); }
fn register_block(x_base: u32, x_stride: u32, last: u32, len: u32, w_base: u32, w_col_stride: u32,
                  w_step: u32, col0: u32, cols: u32) -> Block8 {
    // Each row's and each column's first operand: rows 0-3, 4-7; columns 0-3, 4-7.
    let x_lo = clamped_starts(x_base, 0u, last, x_stride);
    let x_hi = clamped_starts(x_base, 4u, last, x_stride);
    let w_a = clamped_starts(w_base, col0, cols - 1u, w_col_stride);
    let w_b = clamped_starts(w_base, col0 + 4u, cols - 1u, w_col_stride);
    // Rows 4-7 and columns 4-7 are summed only in a wide block, and rows 4-7 only where the
    // block has them.
    let rows_hi = WIDE_BLOCKS && last > 3u;
    // Aligned operands go four steps of e at a time in vec4 loads (kernels/: ArenaView): a run
    // of x is one row's four e's; a run of w one column's four e's (a forward layer) or one e's
    // four columns (an input gradient).
    let x_runs = x_base % 4u == 0u && x_stride % 4u == 0u;
    let w_along_e = w_step == 1u && w_base % 4u == 0u && w_col_stride % 4u == 0u;
    let w_across = w_col_stride == 1u && w_base % 4u == 0u && w_step % 4u == 0u && col0 + block_side() - 1u < cols;
    let quads = select(0u, len / 4u, x_runs && (w_along_e || w_across));
    if (rows_shared(cols) && quads * 4u == len) {
        return shared_block8_sum(x_lo, x_hi, 1u, false, w_a, w_b, w_step, w_across, quads, rows_hi);
    }
    return block8_sum(x_lo, x_hi, 1u, false, w_a, w_b, w_step, w_across, quads, len, rows_hi, WIDE_BLOCKS);
}

// Whether the threads of this subgroup compute register blocks of the same rows, so that they
// can share the rows' loads (shared_rows.wgsl): 8 x 8 blocks in workgroups of BLOCK_THREADS, a
// subgroup's items (lid, lid + BLOCK_THREADS, ...) then being one run of neighbouring column
// groups of one row group.
fn rows_shared(cols: u32) -> bool {
    return rows_shareable(WIDE_BLOCKS, BLOCK_THREADS, cols);
}

// Register block `item` of a tile phase over rows r0 .. r0 + rows by `cols` columns: its first
// row, last row within the block (0 to block_side() - 1) and first column. Neighbouring items
// take neighbouring column groups of the same rows.
struct BlockItem { first: u32, last: u32, col0: u32 }
fn block_items(rows: u32, cols: u32) -> u32 {
    return ((rows + block_side() - 1u) / block_side()) * ((cols + block_side() - 1u) / block_side());
}
fn block_item(r0: u32, rows: u32, cols: u32, item: u32) -> BlockItem {
    let col_groups = (cols + block_side() - 1u) / block_side();
    let first = r0 + (item / col_groups) * block_side();
    return BlockItem(first, min(block_side(), r0 + rows - first) - 1u, (item % col_groups) * block_side());
}

// out[b, j] (=) sum_e x[b, e] * w[j, e] (+ bias[j]) for rows r0 .. r0 + rows and every
// j < outs. (A row-major linear layer forward: y = x W^T + b.) With `activate`, act_out gets
// act(out). A thread computes a register block of rows by outputs.
// `quad_outs` says outs is a multiple of 4 under QUADS (the FFN's c and fc; not HC's n + 2 or
// mHC's n * n + 2n coefficient projections): with the arena seen as vec4s each row's four
// outputs are then one vec4 store, a quarter of the store instructions (lavapipe pays per
// instruction, whatever its width). The floats view keeps a store per output: there a vec4 is
// four stores anyway, and SwiftShader ran the default experiment about 10% slower this way.
fn tile_linear(r0: u32, rows: u32, lid: u32, x_off: u32, inputs: u32, w_off: u32, bias_off: u32,
               outs: u32, out_off: u32, activate: bool, act_out: u32, quad_outs: bool) {
    for (var item = lid; item < block_items(rows, outs); item += BLOCK_THREADS) {
        let at = block_item(r0, rows, outs, item);
        let acc = register_block(x_off + at.first * inputs, inputs, at.last, inputs, w_off, inputs, 1u, at.col0, outs);
        if (QUADS && quad_outs && ARENA_VEC4S) {
            // Column groups of four past outs (a wide block of a width 4 mod 8) are not stored.
            for (var half = 0u; half < block_side() / 4u && at.col0 + 4u * half < outs; half++) {
                let j = at.col0 + 4u * half;
                var bias = vec4<f32>(0.0);
                if (bias_off != NONE) { bias = ld_vec4((bias_off + j) >> 2u); }
                for (var r = 0u; r <= at.last; r++) {
                    var value = block8_row(acc, r, half);
                    if (bias_off != NONE) { value += bias; }
                    let o = (at.first + r) * outs + j;
                    st_vec4((out_off + o) >> 2u, value);
                    if (activate) { st_vec4((act_out + o) >> 2u, activation4(blk.act, value)); }
                }
            }
            continue;
        }
        for (var q = 0u; q < block_side(); q++) {
            let j = at.col0 + q;
            if (j < outs) {
                var bias = 0.0;
                if (bias_off != NONE) { bias = ld(bias_off + j); }
                for (var r = 0u; r <= at.last; r++) {
                    var value = block8_row(acc, r, q / 4u)[q % 4u];
                    if (bias_off != NONE) { value += bias; }
                    let o = (at.first + r) * outs + j;
                    st(out_off + o, value);
                    if (activate) { st(act_out + o, activation(blk.act, value)); }
                }
            }
        }
    }
}

// dx[b, e] (= or +=) sum_j dy[b, j] * w[j, e] for rows r0 .. r0 + rows (a linear layer's input
// gradient, w: [outs, inputs]). Register blocks as in tile_linear, over inputs e.
// With `scaled_off` (accumulating only), dx[b, e] + k_b * s[b, e] with k_b = tile_scalars[b - r0]
// comes first, then the sum: mHC's rms path folded into dA phi, in the order of the two phases it
// was (a pass over the tile's n * c channels fewer).
// `quad_inputs` as tile_linear's `quad_outs`, for inputs: every caller's inputs (the FFN's c and
// fc, HC's c for dZ, mHC's n * c for dX += dA phi) are multiples of 4 under QUADS.
fn tile_linear_input_grad(r0: u32, rows: u32, lid: u32, dy_off: u32, outs: u32, w_off: u32,
                          inputs: u32, dx_off: u32, accumulate: bool, scaled_off: u32, quad_inputs: bool) {
    for (var item = lid; item < block_items(rows, inputs); item += BLOCK_THREADS) {
        let at = block_item(r0, rows, inputs, item);
        let acc = register_block(dy_off + at.first * outs, outs, at.last, outs, w_off, 1u, inputs, at.col0, inputs);
        if (QUADS && quad_inputs && ARENA_VEC4S) {
            for (var half = 0u; half < block_side() / 4u && at.col0 + 4u * half < inputs; half++) {
                for (var r = 0u; r <= at.last; r++) {
                    let e = (at.first + r) * inputs + at.col0 + 4u * half;
                    let o = (dx_off + e) >> 2u;
                    var value = block8_row(acc, r, half);
                    if (accumulate) {
                        var before = ld_vec4(o);
                        if (scaled_off != NONE) { before += tile_scalars[at.first + r - r0] * ld_vec4((scaled_off + e) >> 2u); }
                        value = before + value;
                    }
                    st_vec4(o, value);
                }
            }
            continue;
        }
        for (var q = 0u; q < block_side(); q++) {
            let e = at.col0 + q;
            if (e < inputs) {
                for (var r = 0u; r <= at.last; r++) {
                    let i = (at.first + r) * inputs + e;
                    let value = block8_row(acc, r, q / 4u)[q % 4u];
                    if (accumulate) {
                        var before = ld(dx_off + i);
                        if (scaled_off != NONE) { before += tile_scalars[at.first + r - r0] * ld(scaled_off + i); }
                        st(dx_off + i, before + value);
                    } else {
                        st(dx_off + i, value);
                    }
                }
            }
        }
    }
}

// rms of `len` values at `off`, summed in order.
fn rms_at(off: u32, len: u32) -> f32 {
    var ss = 0.0;
    for (var q = 0u; q < quads_of(len); q++) {
        let x = ld4(off + 4u * q);
        ss = add_lanes(ss, x * x, lanes_of(len, q));
    }
    return sqrt(ss / f32(len) + RMS_EPS);
}

// RMSNorm backward of `items` rows of `len` values (x, saved rms r, optional weight w):
// dx (= or +=) (g - xhat mean(g xhat)) / r with g = dy w. Rows are numbered from `first`.
fn tile_rmsnorm_backward(lid: u32, first: u32, items: u32, len: u32, x_off: u32, w_off: u32,
                         r_off: u32, dy_off: u32, dx_off: u32, accumulate: bool) {
    let quads = quads_of(len);
    for (var item = lid; item < items; item += BLOCK_THREADS) {
        let row = first + item;
        let r = ld(r_off + row);
        var dot = 0.0;
        for (var q = 0u; q < quads; q++) {
            let e = 4u * q;
            let w = select(vec4<f32>(1.0), ld4(w_off + e), w_off != NONE);
            dot = add_lanes(dot, ld4(dy_off + row * len + e) * w * (ld4(x_off + row * len + e) / r), lanes_of(len, q));
        }
        tile_scalars[item] = dot / f32(len);
    }
    phase_end();
    for (var t = lid; t < items * quads; t += BLOCK_THREADS) {
        let at = quad_item(first, t, len);
        let row = at.row;
        let r = ld(r_off + row);
        let w = select(vec4<f32>(1.0), ld4(w_off + at.e), w_off != NONE);
        let g = ld4(dy_off + row * len + at.e) * w;
        let o = dx_off + row * len + at.e;
        var dx = (g - ld4(x_off + row * len + at.e) / r * tile_scalars[row - first]) / r;
        if (accumulate) { dx = ld4(o) + dx; }
        st4(o, dx, at.lanes);
    }
    phase_end();
}

// The rows r0 .. r0 + tile a workgroup owns; tile = 0 past the end. Every entry point starts
// here, with all its threads: the subgroup's sharing is set up on the way (subgroups.wgsl).
struct Tile { r0: u32, rows: u32 }
fn tile_of(wid: vec3<u32>, groups: vec3<u32>, lid: u32) -> Tile {
    subgroup_begin(lid);
    let r0 = flat_group(wid, groups) * TILE_ROWS;
    if (r0 >= blk.rows) { return Tile(r0, 0u); }
    return Tile(r0, min(TILE_ROWS, blk.rows - r0));
}

// Everything in front of the sublayer: the coefficients, u = sum_i pre_i X_i and its RMSNorm.
fn tile_wrap_in_forward(r0: u32, tile: u32, lid: u32) {
    let n = blk.n;
    let c = blk.c;
    if (blk.kind == BLOCK_HC) {
        for (var item = lid; item < tile * n; item += BLOCK_THREADS) {
            let row = r0 * n + item;  // (b, i) flattened
            let r = rms_at(blk.x_off + row * c, c);
            st(blk.z_rms_off + row, r);
            for (var q = 0u; q < quads_of(c); q++) {
                st4(blk.z_off + row * c + 4u * q, ld4(blk.x_off + row * c + 4u * q) / r, lanes_of(c, q));
            }
        }
        phase_end();
        // D = Z W^T over the rows (b, i).
        tile_linear(r0 * n, tile * n, lid, blk.z_off, c, blk.proj_w, NONE, n + 2u, blk.proj_off, false, NONE, false);
        phase_end();
        for (var r = lid; r < tile; r += BLOCK_THREADS) { hc_coeff_forward_row(hc_of_block(), r0 + r); }
        phase_end();
    } else if (blk.kind == BLOCK_MHC) {
        // A = phi v, v = X_l[b] flattened.
        tile_linear(r0, tile, lid, blk.x_off, n * c, blk.proj_w, NONE, n * n + 2u * n, blk.proj_off, false, NONE, false);
        phase_end();
        // Each row's coefficients (Sinkhorn included) by one thread: the tile's rows at once.
        for (var r = lid; r < tile; r += BLOCK_THREADS) {
            let b = r0 + r;
            mhc_row_forward(mhc_of_block(), b, rms_at(blk.x_off + b * n * c, n * c), r);
        }
        phase_end();
    }

    let quads = quads_of(c);
    if (streams_in_registers()) {
        for (var t = lid; t < stream_items(tile, quads); t += BLOCK_THREADS) {
            let it = stream_item(r0, t, quads);
            let pre = mixing_of(it.row).pre;
            for (var q = it.q0; q < it.q1; q++) {
                let e = 4u * q;
                st4(blk.u_off + it.row * c + e, mix4(vec4<f32>(0.0), pre, stream_quads(blk.x_off, it.row, e)), lanes_of(c, q));
            }
        }
    } else {
        for (var t = lid; t < tile * quads; t += BLOCK_THREADS) {
            let at = quad_item(r0, t, c);
            var acc = vec4<f32>(0.0);
            for (var i = 0u; i < n; i++) { acc += h_pre(at.row, i) * ld4(at_stream(blk.x_off, at.row, i, at.e)); }
            st4(blk.u_off + at.row * c + at.e, acc, at.lanes);
        }
    }
    phase_end();
    for (var r = lid; r < tile; r += BLOCK_THREADS) {
        st(blk.norm_rms_off + r0 + r, rms_at(blk.u_off + (r0 + r) * c, c));
    }
    phase_end();
    for (var t = lid; t < tile * quads; t += BLOCK_THREADS) {
        let at = quad_item(r0, t, c);
        let o = at.row * c + at.e;
        st4(blk.normed_off + o, ld4(blk.u_off + o) / ld(blk.norm_rms_off + at.row) * ld4(blk.norm_w + at.e), at.lanes);
    }
    phase_end();
}

// Everything behind the sublayer: X' = res X + post y, optionally rounded to f16.
fn tile_wrap_out_forward(r0: u32, tile: u32, lid: u32) {
    let n = blk.n;
    let c = blk.c;
    let quads = quads_of(c);
    if (streams_in_registers()) {
        for (var t = lid; t < stream_items(tile, quads); t += BLOCK_THREADS) {
            let it = stream_item(r0, t, quads);
            let b = it.row;
            let h = mixing_of(b);
            for (var q = it.q0; q < it.q1; q++) {
                let e = 4u * q;
                let y = ld4(blk.y_off + b * c + e);
                let xs = stream_quads(blk.x_off, b, e);
                store_streams(blk.out_off, b, e, lanes_of(c, q),
                              mat4x4<f32>(rounded_if_f16(mix4(h.post.x * y, h.res[0], xs)), rounded_if_f16(mix4(h.post.y * y, h.res[1], xs)),
                                          rounded_if_f16(mix4(h.post.z * y, h.res[2], xs)), rounded_if_f16(mix4(h.post.w * y, h.res[3], xs))));
            }
        }
        return;
    }
    for (var t = lid; t < tile * quads; t += BLOCK_THREADS) {
        let at = quad_item(r0, t, c);
        let b = at.row;
        let e = at.e;
        let y = ld4(blk.y_off + b * c + e);
        for (var k = 0u; k < n; k++) {
            var acc = h_post(b, k) * y;
            for (var i = 0u; i < n; i++) { acc += h_res(b, k, i) * ld4(at_stream(blk.x_off, b, i, e)); }
            st4(at_stream(blk.out_off, b, k, e), rounded_if_f16(acc), at.lanes);
        }
    }
}

@compute @workgroup_size(BLOCK_THREADS)
fn block_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let tile = tile_of(wid, groups, lid);
    if (tile.rows == 0u) { return; }
    let r0 = tile.r0;
    let c = blk.c;
    tile_wrap_in_forward(r0, tile.rows, lid);

    // The FFN: fc1 with bias and activation, fc2 with bias.
    tile_linear(r0, tile.rows, lid, blk.normed_off, c, blk.fc1_w, blk.fc1_b, blk.fc, blk.hidden_pre_off, true, blk.hidden_off, true);
    phase_end();
    tile_linear(r0, tile.rows, lid, blk.hidden_off, blk.fc, blk.fc2_w, blk.fc2_b, c, blk.y_off, false, NONE, true);
    phase_end();

    tile_wrap_out_forward(r0, tile.rows, lid);
}

// A sublayer that mixes rows (attention) between the wrapping's two halves: its input here.
@compute @workgroup_size(BLOCK_THREADS)
fn wrap_in_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let tile = tile_of(wid, groups, lid);
    if (tile.rows == 0u) { return; }
    tile_wrap_in_forward(tile.r0, tile.rows, lid);
}

// ... and its output here, from the sublayer's y.
@compute @workgroup_size(BLOCK_THREADS)
fn wrap_out_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let tile = tile_of(wid, groups, lid);
    if (tile.rows == 0u) { return; }
    tile_wrap_out_forward(tile.r0, tile.rows, lid);
}

// Backward of the stream update: dy and dX (=), then d post and d res.
fn tile_wrap_out_backward(r0: u32, tile: u32, lid: u32) {
    let n = blk.n;
    let c = blk.c;
    let pc = n * n + 2u * n;
    let quads = quads_of(c);
    if (streams_in_registers()) {
        for (var t = lid; t < stream_items(tile, quads); t += BLOCK_THREADS) {
            let it = stream_item(r0, t, quads);
            let b = it.row;
            let h = mixing_of(b);
            let res_t = transpose(h.res);  // column i: res_ki over k
            // With a row an item, its d post (lane k) and d res (column i, lane k) on the way.
            var d_post = vec4<f32>(0.0);
            var d_res = mat4x4<f32>();
            for (var q = it.q0; q < it.q1; q++) {
                let e = 4u * q;
                let lanes = lanes_of(c, q);
                let dout = stream_quads(blk.dout_off, b, e);
                let zero = vec4<f32>(0.0);
                st4(blk.dy_off + b * c + e, mix4(zero, h.post, dout), lanes);
                store_streams(blk.dx_off, b, e, lanes, mat4x4<f32>(mix4(zero, res_t[0], dout), mix4(zero, res_t[1], dout),
                                                                   mix4(zero, res_t[2], dout), mix4(zero, res_t[3], dout)));
                if (ROW_ITEMS) {
                    let by_channel = transpose(dout);  // column l: channel e + l of every dout_k
                    let xs = stream_quads(blk.x_off, b, e);
                    d_post = dot_step(d_post, by_channel, ld4(blk.y_off + b * c + e), lanes);
                    d_res = mat4x4<f32>(dot_step(d_res[0], by_channel, xs[0], lanes), dot_step(d_res[1], by_channel, xs[1], lanes),
                                        dot_step(d_res[2], by_channel, xs[2], lanes), dot_step(d_res[3], by_channel, xs[3], lanes));
                }
            }
            if (ROW_ITEMS) {
                let dh = blk.dh_off + b * pc;
                st_first(dh + n, d_post, n);
                // Row k of d res is lane k of every column: the transpose's column k.
                let rows = transpose(d_res);
                st_first(dh + 2u * n, rows[0], n);
                if (n > 1u) { st_first(dh + 3u * n, rows[1], n); }
                if (n > 2u) { st_first(dh + 4u * n, rows[2], n); }
                if (n > 3u) { st_first(dh + 5u * n, rows[3], n); }
            }
        }
        if (ROW_ITEMS) {
            phase_end();
            return;
        }
    } else {
        for (var t = lid; t < tile * quads; t += BLOCK_THREADS) {
            let at = quad_item(r0, t, c);
            let b = at.row;
            let e = at.e;
            let lanes = at.lanes;
            var dy = vec4<f32>(0.0);
            for (var k = 0u; k < n; k++) { dy += h_post(b, k) * ld4(at_stream(blk.dout_off, b, k, e)); }
            st4(blk.dy_off + b * c + e, dy, lanes);
            for (var i = 0u; i < n; i++) {
                var acc = vec4<f32>(0.0);
                for (var k = 0u; k < n; k++) { acc += h_res(b, k, i) * ld4(at_stream(blk.dout_off, b, k, e)); }
                st4(at_stream(blk.dx_off, b, i, e), acc, lanes);
            }
        }
    }
    if (blk.h_off != NONE) {
        let per_row = n + n * n;
        for (var t = lid; t < tile * per_row; t += BLOCK_THREADS) {
            let b = r0 + t / per_row;
            let j = t % per_row;
            // d post_j = dout_j . y; d res_ki = dout_k . X_i (one dot, its operands picked by j).
            let k = select((j - n) / n, j, j < n);
            let other = select(at_stream(blk.x_off, b, (j - n) % n, 0u), blk.y_off + b * c, j < n);
            st(blk.dh_off + b * pc + n + j, dot_at(at_stream(blk.dout_off, b, k, 0u), other, c));
        }
    }
    phase_end();
}

// Backward of tile_wrap_in_forward: the RMSNorm's (dnormed to du), the combine's (dX += pre du,
// d pre), then the coefficients' own gradients flow back into X.
fn tile_wrap_in_backward(r0: u32, tile: u32, lid: u32) {
    let n = blk.n;
    let c = blk.c;
    let pc = n * n + 2u * n;
    tile_rmsnorm_backward(lid, r0, tile, c, blk.u_off, blk.norm_w, blk.norm_rms_off, blk.dnormed_off, blk.du_off, false);
    let quads = quads_of(c);
    if (streams_in_registers()) {
        for (var t = lid; t < stream_items(tile, quads); t += BLOCK_THREADS) {
            let it = stream_item(r0, t, quads);
            let b = it.row;
            let pre = mixing_of(b).pre;
            var d_pre = vec4<f32>(0.0);  // with a row an item: lane i, du . X_i
            for (var q = it.q0; q < it.q1; q++) {
                let e = 4u * q;
                let lanes = lanes_of(c, q);
                let du = ld4(blk.du_off + b * c + e);
                let dx = stream_quads(blk.dx_off, b, e);
                store_streams(blk.dx_off, b, e, lanes, mat4x4<f32>(dx[0] + pre.x * du, dx[1] + pre.y * du, dx[2] + pre.z * du, dx[3] + pre.w * du));
                if (ROW_ITEMS) { d_pre = dot_step(d_pre, transpose(stream_quads(blk.x_off, b, e)), du, lanes); }
            }
            if (ROW_ITEMS) { st_first(blk.dh_off + b * pc, d_pre, n); }
        }
    } else {
        for (var t = lid; t < tile * quads; t += BLOCK_THREADS) {
            let at = quad_item(r0, t, c);
            let du = ld4(blk.du_off + at.row * c + at.e);
            for (var i = 0u; i < n; i++) {
                let o = at_stream(blk.dx_off, at.row, i, at.e);
                st4(o, ld4(o) + h_pre(at.row, i) * du, at.lanes);
            }
        }
    }
    if (blk.h_off != NONE && !(streams_in_registers() && ROW_ITEMS)) {
        for (var t = lid; t < tile * n; t += BLOCK_THREADS) {
            let b = r0 + t / n;
            let i = t % n;
            st(blk.dh_off + b * pc + i, dot_at(blk.du_off + b * c, at_stream(blk.x_off, b, i, 0u), c));
        }
    }
    phase_end();

    if (blk.kind == BLOCK_HC) {
        for (var r = lid; r < tile; r += BLOCK_THREADS) { hc_coeff_backward_row(hc_of_block(), r0 + r); }
        phase_end();
        // dZ = dD W: rows (b, i), W: [n+2, c].
        tile_linear_input_grad(r0 * n, tile * n, lid, blk.dproj_off, n + 2u, blk.proj_w, c, blk.dz_off, false, NONE, true);
        phase_end();
        tile_rmsnorm_backward(lid, r0 * n, tile * n, c, blk.x_off, NONE, blk.z_rms_off, blk.dz_off, blk.dx_off, true);
    } else if (blk.kind == BLOCK_MHC) {
        // rms(v) as the forward saved it (the same value rms_at gives: a pass over the row fewer).
        for (var r = lid; r < tile; r += BLOCK_THREADS) {
            let b = r0 + r;
            tile_scalars[r] = mhc_row_backward(mhc_of_block(), b, ld(blk.z_rms_off + b), r);
        }
        phase_end();
        // The rms path (dX += k X), then dX += dA phi, in the unfused kernels' order.
        tile_linear_input_grad(r0, tile, lid, blk.dproj_off, pc, blk.proj_w, n * c, blk.dx_off, true, blk.x_off, true);
    }
}

@compute @workgroup_size(BLOCK_THREADS)
fn block_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let tile = tile_of(wid, groups, lid);
    if (tile.rows == 0u) { return; }
    let r0 = tile.r0;
    let c = blk.c;
    tile_wrap_out_backward(r0, tile.rows, lid);

    // The FFN's input gradients: through fc2, the activation, fc1.
    tile_linear_input_grad(r0, tile.rows, lid, blk.dy_off, c, blk.fc2_w, blk.fc, blk.dhidden_off, false, NONE, true);
    phase_end();
    if (QUADS && ARENA_VEC4S) {
        for (var t = lid; t < tile.rows * blk.fc / 4u; t += BLOCK_THREADS) {
            let o = r0 * blk.fc + 4u * t;
            let g = ld_vec4((blk.dhidden_off + o) >> 2u) * activation_grad4(blk.act, ld_vec4((blk.hidden_pre_off + o) >> 2u));
            st_vec4((blk.dhidden_pre_off + o) >> 2u, g);
        }
    } else {
        for (var t = lid; t < tile.rows * blk.fc; t += BLOCK_THREADS) {
            let o = r0 * blk.fc + t;
            st(blk.dhidden_pre_off + o, ld(blk.dhidden_off + o) * activation_grad(blk.act, ld(blk.hidden_pre_off + o)));
        }
    }
    phase_end();
    tile_linear_input_grad(r0, tile.rows, lid, blk.dhidden_pre_off, blk.fc, blk.fc1_w, c, blk.dnormed_off, false, NONE, true);
    phase_end();

    tile_wrap_in_backward(r0, tile.rows, lid);
}

// The two backward halves of a wrapping around a sublayer that mixes rows.
@compute @workgroup_size(BLOCK_THREADS)
fn wrap_out_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let tile = tile_of(wid, groups, lid);
    if (tile.rows == 0u) { return; }
    tile_wrap_out_backward(tile.r0, tile.rows, lid);
}

@compute @workgroup_size(BLOCK_THREADS)
fn wrap_in_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let tile = tile_of(wid, groups, lid);
    if (tile.rows == 0u) { return; }
    tile_wrap_in_backward(tile.r0, tile.rows, lid);
}
