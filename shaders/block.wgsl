// One whole block of one variant per dispatch, forward and backward side by side. The host
// prepends activation.wgsl and hyper.wgsl (kernels.rs: SHADER_LIBRARIES): the coefficient
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
// wrap_out_backward (the update's backward) and wrap_in_backward (norm, combine, coefficients);
// the update's forward is streams.wgsl's one kernel already. block.rs: wrap_*_ops are their twins.
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

const TILE_ROWS: u32 = 8u;  // kernels.rs: BLOCK_TILE_ROWS
// Threads of a workgroup, set per adapter (kernels.rs: block_threads): a workgroup's threads
// share its rows' work, so any count computes the same values. SwiftShader runs a workgroup's
// threads four at a time and switches between those groups at every barrier; with four threads
// there is nothing to switch (the default experiment 1.3x faster there), while lavapipe's
// eight-wide groups and real GPUs want 64.
override BLOCK_THREADS: u32 = 64u;
const COLS_PER_THREAD: u32 = 4u;
const BLOCK_HC: u32 = 1u;
const BLOCK_MHC: u32 = 2u;

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

// The register block both directions of a linear layer share: acc[r][q] = sum_e X(r, e) W(e, q)
// for BLOCK_ROWS rows and COLS_PER_THREAD columns, e in order, with
// X(r, e) = ld(x_base + min(r, last) * x_stride + e) (rows past `last` re-read it) and
// W(e, q) = ld(w_base + min(col0 + q, cols - 1) * w_col_stride + e * w_step).
// Per e a thread reads COLS_PER_THREAD weights and BLOCK_ROWS inputs for BLOCK_ROWS *
// COLS_PER_THREAD multiply-adds. The accumulators are four named vectors, not an indexed
// array: a software GPU keeps a dynamically indexed array in memory (that cost the block
// kernels 2.5x on SwiftShader). Eight rows a block measured no faster than four there.
const BLOCK_ROWS: u32 = 4u;
fn register_block(x_base: u32, x_stride: u32, last: u32, len: u32, w_base: u32, w_col_stride: u32,
                  w_step: u32, col0: u32, cols: u32) -> array<vec4<f32>, BLOCK_ROWS> {
    let x0 = x_base;
    let x1 = x_base + min(1u, last) * x_stride;
    let x2 = x_base + min(2u, last) * x_stride;
    let x3 = x_base + min(3u, last) * x_stride;
    let w0 = w_base + min(col0, cols - 1u) * w_col_stride;
    let w1 = w_base + min(col0 + 1u, cols - 1u) * w_col_stride;
    let w2 = w_base + min(col0 + 2u, cols - 1u) * w_col_stride;
    let w3 = w_base + min(col0 + 3u, cols - 1u) * w_col_stride;
    var acc = mat4x4<f32>();  // acc[r]: row r's COLS_PER_THREAD sums
    var e = 0u;
    // Aligned operands go four steps of e at a time, in vec4 loads (prelude.wgsl: arena).
    let x_runs = x_base % 4u == 0u && x_stride % 4u == 0u;
    // Each column's weights run along e (a forward layer), or each e's along the columns (an
    // input gradient).
    let w_runs = w_step == 1u && w_base % 4u == 0u && w_col_stride % 4u == 0u;
    let w_rows = w_col_stride == 1u && w_base % 4u == 0u && w_step % 4u == 0u && col0 + 3u < cols;
    if (x_runs && (w_runs || w_rows)) {
        for (; e + 4u <= len; e += 4u) {
            var w: mat4x4<f32>;
            if (w_runs) {
                w = transpose(runs4(w0 + e, w1 + e, w2 + e, w3 + e));
            } else {
                let s = w0 + e * w_step;
                w = runs4(s, s + w_step, s + 2u * w_step, s + 3u * w_step);
            }
            acc = quad_steps(acc, runs4(x0 + e, x1 + e, x2 + e, x3 + e), w);
        }
    }
    for (; e < len; e++) {
        let we = e * w_step;
        let w = vec4<f32>(ld(w0 + we), ld(w1 + we), ld(w2 + we), ld(w3 + we));
        acc[0] += ld(x0 + e) * w;
        acc[1] += ld(x1 + e) * w;
        acc[2] += ld(x2 + e) * w;
        acc[3] += ld(x3 + e) * w;
    }
    return array<vec4<f32>, BLOCK_ROWS>(acc[0], acc[1], acc[2], acc[3]);
}

// out[b, j] (=) sum_e x[b, e] * w[j, e] (+ bias[j]) for rows r0 .. r0 + rows and every
// j < outs. (A row-major linear layer forward: y = x W^T + b.) With `activate`, act_out gets
// act(out). A thread computes a register block of BLOCK_ROWS rows and COLS_PER_THREAD outputs.
fn tile_linear(r0: u32, rows: u32, lid: u32, x_off: u32, inputs: u32, w_off: u32, bias_off: u32,
               outs: u32, out_off: u32, activate: bool, act_out: u32) {
    let col_groups = (outs + COLS_PER_THREAD - 1u) / COLS_PER_THREAD;
    let row_groups = (rows + BLOCK_ROWS - 1u) / BLOCK_ROWS;
    for (var item = lid; item < row_groups * col_groups; item += BLOCK_THREADS) {
        let first = r0 + (item / col_groups) * BLOCK_ROWS;
        let last = min(BLOCK_ROWS, r0 + rows - first) - 1u;
        let col0 = (item % col_groups) * COLS_PER_THREAD;
        let acc = register_block(x_off + first * inputs, inputs, last, inputs, w_off, inputs, 1u, col0, outs);
        for (var q = 0u; q < COLS_PER_THREAD; q++) {
            let j = col0 + q;
            if (j < outs) {
                var bias = 0.0;
                if (bias_off != NONE) { bias = ld(bias_off + j); }
                for (var r = 0u; r <= last; r++) {
                    var value = acc[r][q];
                    if (bias_off != NONE) { value += bias; }
                    let o = (first + r) * outs + j;
                    st(out_off + o, value);
                    if (activate) { st(act_out + o, activation(blk.act, value)); }
                }
            }
        }
    }
}

// dx[b, e] (= or +=) sum_j dy[b, j] * w[j, e] for rows r0 .. r0 + rows (a linear layer's input
// gradient, w: [outs, inputs]). Register blocks as in tile_linear, over inputs e.
fn tile_linear_input_grad(r0: u32, rows: u32, lid: u32, dy_off: u32, outs: u32, w_off: u32,
                          inputs: u32, dx_off: u32, accumulate: bool) {
    let col_groups = (inputs + COLS_PER_THREAD - 1u) / COLS_PER_THREAD;
    let row_groups = (rows + BLOCK_ROWS - 1u) / BLOCK_ROWS;
    for (var item = lid; item < row_groups * col_groups; item += BLOCK_THREADS) {
        let first = r0 + (item / col_groups) * BLOCK_ROWS;
        let last = min(BLOCK_ROWS, r0 + rows - first) - 1u;
        let col0 = (item % col_groups) * COLS_PER_THREAD;
        let acc = register_block(dy_off + first * outs, outs, last, outs, w_off, 1u, inputs, col0, inputs);
        for (var q = 0u; q < COLS_PER_THREAD; q++) {
            let e = col0 + q;
            if (e < inputs) {
                for (var r = 0u; r <= last; r++) {
                    let o = dx_off + (first + r) * inputs + e;
                    let value = acc[r][q];
                    if (accumulate) { st(o, ld(o) + value); } else { st(o, value); }
                }
            }
        }
    }
}

// rms of `len` values at `off`, summed in order.
fn rms_at(off: u32, len: u32) -> f32 {
    var ss = 0.0;
    for (var e = 0u; e < len; e++) {
        let x = ld(off + e);
        ss += x * x;
    }
    return sqrt(ss / f32(len) + RMS_EPS);
}

// RMSNorm backward of `items` rows of `len` values (x, saved rms r, optional weight w):
// dx (= or +=) (g - xhat mean(g xhat)) / r with g = dy w. Rows are numbered from `first`.
fn tile_rmsnorm_backward(lid: u32, first: u32, items: u32, len: u32, x_off: u32, w_off: u32,
                         r_off: u32, dy_off: u32, dx_off: u32, accumulate: bool) {
    for (var item = lid; item < items; item += BLOCK_THREADS) {
        let row = first + item;
        let r = ld(r_off + row);
        var dot = 0.0;
        for (var e = 0u; e < len; e++) {
            var w = 1.0;
            if (w_off != NONE) { w = ld(w_off + e); }
            dot += ld(dy_off + row * len + e) * w * (ld(x_off + row * len + e) / r);
        }
        tile_scalars[item] = dot / f32(len);
    }
    phase_end();
    for (var t = lid; t < items * len; t += BLOCK_THREADS) {
        let item = t / len;
        let e = t % len;
        let row = first + item;
        let r = ld(r_off + row);
        var w = 1.0;
        if (w_off != NONE) { w = ld(w_off + e); }
        let g = ld(dy_off + row * len + e) * w;
        let dx = (g - ld(x_off + row * len + e) / r * tile_scalars[item]) / r;
        let o = dx_off + row * len + e;
        if (accumulate) { st(o, ld(o) + dx); } else { st(o, dx); }
    }
    phase_end();
}

// The rows r0 .. r0 + tile a workgroup owns; tile = 0 past the end.
struct Tile { r0: u32, rows: u32 }
fn tile_of(wid: vec3<u32>, groups: vec3<u32>) -> Tile {
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
            for (var e = 0u; e < c; e++) {
                st(blk.z_off + row * c + e, ld(blk.x_off + row * c + e) / r);
            }
        }
        phase_end();
        // D = Z W^T over the rows (b, i).
        tile_linear(r0 * n, tile * n, lid, blk.z_off, c, blk.proj_w, NONE, n + 2u, blk.proj_off, false, NONE);
        phase_end();
        for (var r = lid; r < tile; r += BLOCK_THREADS) { hc_coeff_forward_row(hc_of_block(), r0 + r); }
        phase_end();
    } else if (blk.kind == BLOCK_MHC) {
        // A = phi v, v = X_l[b] flattened.
        tile_linear(r0, tile, lid, blk.x_off, n * c, blk.proj_w, NONE, n * n + 2u * n, blk.proj_off, false, NONE);
        phase_end();
        // Each row's coefficients (Sinkhorn included) by one thread: the tile's rows at once.
        for (var r = lid; r < tile; r += BLOCK_THREADS) {
            let b = r0 + r;
            mhc_row_forward(mhc_of_block(), b, rms_at(blk.x_off + b * n * c, n * c), r);
        }
        phase_end();
    }

    for (var t = lid; t < tile * c; t += BLOCK_THREADS) {
        let b = r0 + t / c;
        let e = t % c;
        var acc = 0.0;
        for (var i = 0u; i < n; i++) { acc += h_pre(b, i) * ld(at_stream(blk.x_off, b, i, e)); }
        st(blk.u_off + b * c + e, acc);
    }
    phase_end();
    for (var r = lid; r < tile; r += BLOCK_THREADS) {
        st(blk.norm_rms_off + r0 + r, rms_at(blk.u_off + (r0 + r) * c, c));
    }
    phase_end();
    for (var t = lid; t < tile * c; t += BLOCK_THREADS) {
        let b = r0 + t / c;
        let e = t % c;
        st(blk.normed_off + b * c + e, ld(blk.u_off + b * c + e) / ld(blk.norm_rms_off + b) * ld(blk.norm_w + e));
    }
    phase_end();
}

@compute @workgroup_size(BLOCK_THREADS)
fn block_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let tile = tile_of(wid, groups);
    if (tile.rows == 0u) { return; }
    let r0 = tile.r0;
    let n = blk.n;
    let c = blk.c;
    tile_wrap_in_forward(r0, tile.rows, lid);

    // The FFN: fc1 with bias and activation, fc2 with bias.
    tile_linear(r0, tile.rows, lid, blk.normed_off, c, blk.fc1_w, blk.fc1_b, blk.fc, blk.hidden_pre_off, true, blk.hidden_off);
    phase_end();
    tile_linear(r0, tile.rows, lid, blk.hidden_off, blk.fc, blk.fc2_w, blk.fc2_b, c, blk.y_off, false, NONE);
    phase_end();

    // X' = res X + post y, optionally rounded to f16.
    for (var t = lid; t < tile.rows * c; t += BLOCK_THREADS) {
        let b = r0 + t / c;
        let e = t % c;
        let y = ld(blk.y_off + b * c + e);
        for (var k = 0u; k < n; k++) {
            var acc = h_post(b, k) * y;
            for (var i = 0u; i < n; i++) { acc += h_res(b, k, i) * ld(at_stream(blk.x_off, b, i, e)); }
            if (blk.round_f16 != 0u) { acc = round_to_f16(acc); }
            st(at_stream(blk.out_off, b, k, e), acc);
        }
    }
}

// A sublayer that mixes rows (attention) between the wrapping's two halves: its input here.
@compute @workgroup_size(BLOCK_THREADS)
fn wrap_in_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let tile = tile_of(wid, groups);
    if (tile.rows == 0u) { return; }
    tile_wrap_in_forward(tile.r0, tile.rows, lid);
}

// Backward of the stream update: dy and dX (=), then d post and d res.
fn tile_wrap_out_backward(r0: u32, tile: u32, lid: u32) {
    let n = blk.n;
    let c = blk.c;
    let pc = n * n + 2u * n;
    for (var t = lid; t < tile * c; t += BLOCK_THREADS) {
        let b = r0 + t / c;
        let e = t % c;
        var dy = 0.0;
        for (var k = 0u; k < n; k++) { dy += h_post(b, k) * ld(at_stream(blk.dout_off, b, k, e)); }
        st(blk.dy_off + b * c + e, dy);
        for (var i = 0u; i < n; i++) {
            var acc = 0.0;
            for (var k = 0u; k < n; k++) { acc += h_res(b, k, i) * ld(at_stream(blk.dout_off, b, k, e)); }
            st(at_stream(blk.dx_off, b, i, e), acc);
        }
    }
    if (blk.h_off != NONE) {
        let per_row = n + n * n;
        for (var t = lid; t < tile * per_row; t += BLOCK_THREADS) {
            let b = r0 + t / per_row;
            let j = t % per_row;
            var acc = 0.0;
            if (j < n) {
                for (var e = 0u; e < c; e++) { acc += ld(at_stream(blk.dout_off, b, j, e)) * ld(blk.y_off + b * c + e); }
            } else {
                let k = (j - n) / n;
                let i = (j - n) % n;
                for (var e = 0u; e < c; e++) { acc += ld(at_stream(blk.dout_off, b, k, e)) * ld(at_stream(blk.x_off, b, i, e)); }
            }
            st(blk.dh_off + b * pc + n + j, acc);
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
    for (var t = lid; t < tile * c; t += BLOCK_THREADS) {
        let b = r0 + t / c;
        let e = t % c;
        let du = ld(blk.du_off + b * c + e);
        for (var i = 0u; i < n; i++) {
            let o = at_stream(blk.dx_off, b, i, e);
            st(o, ld(o) + h_pre(b, i) * du);
        }
    }
    if (blk.h_off != NONE) {
        for (var t = lid; t < tile * n; t += BLOCK_THREADS) {
            let b = r0 + t / n;
            let i = t % n;
            var acc = 0.0;
            for (var e = 0u; e < c; e++) { acc += ld(blk.du_off + b * c + e) * ld(at_stream(blk.x_off, b, i, e)); }
            st(blk.dh_off + b * pc + i, acc);
        }
    }
    phase_end();

    if (blk.kind == BLOCK_HC) {
        for (var r = lid; r < tile; r += BLOCK_THREADS) { hc_coeff_backward_row(hc_of_block(), r0 + r); }
        phase_end();
        // dZ = dD W: rows (b, i), W: [n+2, c].
        tile_linear_input_grad(r0 * n, tile * n, lid, blk.dproj_off, n + 2u, blk.proj_w, c, blk.dz_off, false);
        phase_end();
        tile_rmsnorm_backward(lid, r0 * n, tile * n, c, blk.x_off, NONE, blk.z_rms_off, blk.dz_off, blk.dx_off, true);
    } else if (blk.kind == BLOCK_MHC) {
        let width = n * c;
        for (var r = lid; r < tile; r += BLOCK_THREADS) {
            let b = r0 + r;
            tile_scalars[r] = mhc_row_backward(mhc_of_block(), b, rms_at(blk.x_off + b * width, width), r);
        }
        phase_end();
        // The rms path (dX += k X), then dX += dA phi, in the unfused kernels' order.
        for (var t = lid; t < tile * width; t += BLOCK_THREADS) {
            let o = r0 * width + t;
            st(blk.dx_off + o, ld(blk.dx_off + o) + tile_scalars[t / width] * ld(blk.x_off + o));
        }
        phase_end();
        tile_linear_input_grad(r0, tile, lid, blk.dproj_off, pc, blk.proj_w, n * c, blk.dx_off, true);
    }
}

@compute @workgroup_size(BLOCK_THREADS)
fn block_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let tile = tile_of(wid, groups);
    if (tile.rows == 0u) { return; }
    let r0 = tile.r0;
    let c = blk.c;
    tile_wrap_out_backward(r0, tile.rows, lid);

    // The FFN's input gradients: through fc2, the activation, fc1.
    tile_linear_input_grad(r0, tile.rows, lid, blk.dy_off, c, blk.fc2_w, blk.fc, blk.dhidden_off, false);
    phase_end();
    for (var t = lid; t < tile.rows * blk.fc; t += BLOCK_THREADS) {
        let o = r0 * blk.fc + t;
        st(blk.dhidden_pre_off + o, ld(blk.dhidden_off + o) * activation_grad(blk.act, ld(blk.hidden_pre_off + o)));
    }
    phase_end();
    tile_linear_input_grad(r0, tile.rows, lid, blk.dhidden_pre_off, blk.fc, blk.fc1_w, c, blk.dnormed_off, false);
    phase_end();

    tile_wrap_in_backward(r0, tile.rows, lid);
}

// The two backward halves of a wrapping around a sublayer that mixes rows.
@compute @workgroup_size(BLOCK_THREADS)
fn wrap_out_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let tile = tile_of(wid, groups);
    if (tile.rows == 0u) { return; }
    tile_wrap_out_backward(tile.r0, tile.rows, lid);
}

@compute @workgroup_size(BLOCK_THREADS)
fn wrap_in_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let tile = tile_of(wid, groups);
    if (tile.rows == 0u) { return; }
    tile_wrap_in_backward(tile.r0, tile.rows, lid);
}
