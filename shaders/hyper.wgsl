// Hyper-connection coefficients of one block, per batch row, written as H: [rows, h_rs] with
// the layout [pre (n) | post (n) | res (n*n, [k][i])].
//
// HC (ByteDance dynamic HC; DESIGN.md section 1), thread per row:
//   input D: [rows, n, n+2] = Z @ [w_pre; w_res (n rows); w_post]^T, Z = per-stream X / rms(X)
//   small params at p_off: [s_alpha, s_beta, b_pre (n), b_res (n*n), b_post (n)]
//   H_pre[i] = s_alpha tanh(D[i,0]) + b_pre[i]
//   H_res[k,i] = s_alpha tanh(D[i,1+k]) + b_res[k,i]
//   H_post[k] = s_beta tanh(D[k,n+1]) + b_post[k]
//   backward: dD (=) and per-row partial gradients of the small params, [rows, 2+2n+n*n] (=),
//   summed into the parameter gradients (+=) by reduce_rows.
//
// mHC (DeepSeek, the paper's fused form), one workgroup per row:
//   input A: [rows, n*n+2n] = phi @ v, v = X[b] flattened stream-major: [n*c]
//   small params at p_off: [alpha (3), bias (n*n+2n)]; m = A / rms(v) (rms saved: [rows])
//   H_pre = sigmoid(alpha0 m_pre + bias_pre); H_post = 2 sigmoid(alpha1 m_post + bias_post)
//   H_res = sinkhorn(alpha2 m_res + bias_res): M = exp(L - max L); `iters` times divide
//   columns by (sum + eps), then rows by (sum + eps).
//   backward: reverse mode through every unrolled normalisation, recomputed on-chip from the
//   logits (for y = x / s: dx = (g - sum(g y)) / s); writes dA = dm / rms(v) (=), per-row
//   partials of [alpha, bias] (=), and adds the rms(v) path into dv (+=). The divisors of
//   every normalisation go to the arena at div_off ([rows, iters * 2 * n], scratch): up to
//   1600 values per row fit neither workgroup memory for a tile of rows nor private arrays
//   (which compilers such as lavapipe's turn into code that takes tens of seconds to build).
struct HcCoeffParams {
    rows: u32, n: u32, d_off: u32, p_off: u32,
    h_off: u32, h_rs: u32, dh_off: u32, dd_off: u32,
    part_off: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}
struct MhcCoeffParams {
    rows: u32, n: u32, c: u32, v_off: u32,
    a_off: u32, p_off: u32, r_off: u32, h_off: u32,
    h_rs: u32, iters: u32, eps: f32, dh_off: u32,
    da_off: u32, part_off: u32, dv_off: u32, div_off: u32,
}
@group(0) @binding(1) var<uniform> hc_params: HcCoeffParams;
@group(0) @binding(1) var<uniform> mhc_params: MhcCoeffParams;

// The row functions take their params as a value so that block.wgsl's fused kernels call them
// too; the entry points pass their uniform.
fn hc_d(hc: HcCoeffParams, b: u32, i: u32, j: u32) -> u32 {
    return (b * hc.n + i) * (hc.n + 2u) + j;
}

@compute @workgroup_size(WG_1D)
fn hc_coeff_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = flat_thread(gid, groups);
    if (b >= hc_params.rows) { return; }
    hc_coeff_forward_row(hc_params, b);
}

fn hc_coeff_forward_row(hc: HcCoeffParams, b: u32) {
    let n = hc.n;
    let sa = ld(hc.p_off);
    let sb = ld(hc.p_off + 1u);
    let b_pre = hc.p_off + 2u;
    let b_res = b_pre + n;
    let b_post = b_res + n * n;
    let h = hc.h_off + b * hc.h_rs;
    for (var i = 0u; i < n; i++) {
        st(h + i, sa * stable_tanh(ld(hc.d_off + hc_d(hc, b, i, 0u))) + ld(b_pre + i));
        st(h + n + i, sb * stable_tanh(ld(hc.d_off + hc_d(hc, b, i, n + 1u))) + ld(b_post + i));
        for (var k = 0u; k < n; k++) {
            st(h + 2u * n + k * n + i, sa * stable_tanh(ld(hc.d_off + hc_d(hc, b, i, 1u + k))) + ld(b_res + k * n + i));
        }
    }
}

@compute @workgroup_size(WG_1D)
fn hc_coeff_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = flat_thread(gid, groups);
    if (b >= hc_params.rows) { return; }
    hc_coeff_backward_row(hc_params, b);
}

fn hc_coeff_backward_row(hc: HcCoeffParams, b: u32) {
    let n = hc.n;
    let q = 2u + 2u * n + n * n;
    let sa = ld(hc.p_off);
    let sb = ld(hc.p_off + 1u);
    let dh = hc.dh_off + b * hc.h_rs;
    let part = hc.part_off + b * q;
    var dsa = 0.0;
    var dsb = 0.0;
    for (var i = 0u; i < n; i++) {
        let g_pre = ld(dh + i);
        let t_pre = stable_tanh(ld(hc.d_off + hc_d(hc, b, i, 0u)));
        st(hc.dd_off + hc_d(hc, b, i, 0u), g_pre * sa * (1.0 - t_pre * t_pre));
        dsa += g_pre * t_pre;
        st(part + 2u + i, g_pre);
        let g_post = ld(dh + n + i);
        let t_post = stable_tanh(ld(hc.d_off + hc_d(hc, b, i, n + 1u)));
        st(hc.dd_off + hc_d(hc, b, i, n + 1u), g_post * sb * (1.0 - t_post * t_post));
        dsb += g_post * t_post;
        st(part + 2u + n + n * n + i, g_post);
        for (var k = 0u; k < n; k++) {
            let g = ld(dh + 2u * n + k * n + i);
            let t = stable_tanh(ld(hc.d_off + hc_d(hc, b, i, 1u + k)));
            st(hc.dd_off + hc_d(hc, b, i, 1u + k), g * sa * (1.0 - t * t));
            dsa += g * t;
            st(part + 2u + n + k * n + i, g);
        }
    }
    st(part, dsa);
    st(part + 1u, dsb);
}

// ---- mHC: one row's n x n math is one thread's, so that the fused block kernel (block.wgsl)
// runs a tile's rows at once. Its state lives in workgroup memory at a slot per row (these
// kernels, one row per workgroup, use slot 0) and its divisors in the arena.
const MAX_N: u32 = 8u;
const MAX_ITERS: u32 = 100u;
const MHC_SLOTS: u32 = 8u;  // >= block.wgsl's TILE_ROWS
var<workgroup> row_scalars: array<f32, 2>;        // rms(v), and the rms path's dv coefficient
var<workgroup> mhc_m: array<f32, 640>;            // [slot][80]  m = A / rms(v): [n*n + 2n]
var<workgroup> mhc_logits: array<f32, 512>;       // [slot][64]  alpha2 m_res + bias_res
var<workgroup> mhc_sk: array<f32, 512>;           // [slot][64]  the matrix being normalised
var<workgroup> mhc_grad: array<f32, 512>;         // [slot][64]  its gradient

// rms(v) of row b over the whole workgroup (uniform control flow: barriers).
fn mhc_rms_workgroup(mhc: MhcCoeffParams, b: u32, lid: u32) -> f32 {
    let width = mhc.n * mhc.c;
    let v0 = mhc.v_off + b * width;
    var ss = 0.0;
    for (var e = lid; e < width; e += WG_ROW) {
        let v = ld(v0 + e);
        ss += v * v;
    }
    return sqrt(workgroup_sum(lid, ss) / f32(width) + RMS_EPS);
}

// m and the logits of row b at `slot`, given r = rms(v).
fn mhc_row_projection(mhc: MhcCoeffParams, b: u32, r: f32, slot: u32) {
    let n = mhc.n;
    for (var j = 0u; j < mhc.h_rs; j++) {
        mhc_m[slot * 80u + j] = ld(mhc.a_off + b * mhc.h_rs + j) / r;
    }
    let alpha2 = ld(mhc.p_off + 2u);
    for (var j = 0u; j < n * n; j++) {
        mhc_logits[slot * 64u + j] = alpha2 * mhc_m[slot * 80u + 2u * n + j] + ld(mhc.p_off + 3u + 2u * n + j);
    }
}

// ---- Sinkhorn in registers, for n <= 4 (the default four streams and fewer): a software GPU
// pays for every access to a workgroup array (lavapipe loops over its SIMD lanes for each), and
// the iterations cost the default experiment's mHC about a tenth of its step that way. Set per
// op by the host (kernels/: sinkhorn_in_registers); the other path compiles away.
// The matrix is a mat4x4 whose column k holds row k of the n x n matrix in lanes 0 .. n-1 and
// zeros beyond. Every sum runs in the loops' order (a zero lane adds exactly nothing), so both
// paths compute the same values.
override SINKHORN_IN_REGISTERS: bool = false;

// The real entries of row k of an n x n matrix: lanes 0 .. n-1 of a row k < n.
fn real_entries(n: u32, k: u32) -> vec4<bool> {
    return first_lanes(n) & vec4<bool>(k < n);
}
// Row k of the n x n matrix at `at` in the arena, zeros beyond (all zeros for k >= n).
// `whole` as lanes_at's.
fn arena_row(at: u32, n: u32, k: u32, whole: bool) -> vec4<f32> {
    return select(vec4<f32>(0.0), lanes_at(at + min(k, n - 1u) * n, n, 0.0, whole), real_entries(n, k));
}
// Row k of the n x n logits at workgroup slot `s` in lanes 0 .. n-1, zeros beyond (all zeros
// for k >= n).
fn logits_row(s: u32, n: u32, k: u32) -> vec4<f32> {
    let last = n - 1u;
    let row = s + min(k, last) * n;
    let v = vec4<f32>(mhc_logits[row], mhc_logits[row + min(1u, last)], mhc_logits[row + min(2u, last)],
                      mhc_logits[row + min(3u, last)]);
    return select(vec4<f32>(0.0), v, real_entries(n, k));
}
// In lane order, as the loops sum a row.
fn sum_lanes(v: vec4<f32>) -> f32 {
    return v.x + v.y + v.z + v.w;
}
// Whether a tensor of per-row vectors of n at `base` holds aligned vec4s, one load or store
// each where the arena is seen as vec4s: with n = 4 each row's [n] or [n*n + 2n] starts at a
// multiple of 4 from base. Callers test only uniform values, so a software GPU runs one side.
fn rows_in_vec4s(n: u32, base: u32) -> bool {
    return ARENA_VEC4S && n == 4u && base % 4u == 0u;
}
// arena_lanes(at, n, pad), from one vec4 load where `whole` (rows_in_vec4s).
fn lanes_at(at: u32, n: u32, pad: f32, whole: bool) -> vec4<f32> {
    if (whole) { return ld_vec4(at >> 2u); }
    return arena_lanes(at, n, pad);
}
// st_first(at, v, n), as one vec4 store where `whole`.
fn store_lanes(at: u32, v: vec4<f32>, n: u32, whole: bool) {
    if (whole) {
        st_vec4(at >> 2u, v);
    } else {
        st_first(at, v, n);
    }
}

// sinkhorn(logits) of row b at `slot`, recording every divisor in the arena.
fn sinkhorn_registers(mhc: MhcCoeffParams, b: u32, slot: u32) -> mat4x4<f32> {
    let n = mhc.n;
    let s = slot * 64u;
    let div = mhc.div_off + b * mhc.iters * 2u * n;
    let l = mat4x4<f32>(logits_row(s, n, 0u), logits_row(s, n, 1u), logits_row(s, n, 2u), logits_row(s, n, 3u));
    // The max over real entries: padding takes a real entry's value.
    let any = vec4<f32>(l[0].x);
    let highest = max(max(select(any, l[0], real_entries(n, 0u)), select(any, l[1], real_entries(n, 1u))),
                      max(select(any, l[2], real_entries(n, 2u)), select(any, l[3], real_entries(n, 3u))));
    let max_logit = max(max(highest.x, highest.y), max(highest.z, highest.w));
    let zero = vec4<f32>(0.0);
    var m0 = select(zero, exp(l[0] - max_logit), real_entries(n, 0u));
    var m1 = select(zero, exp(l[1] - max_logit), real_entries(n, 1u));
    var m2 = select(zero, exp(l[2] - max_logit), real_entries(n, 2u));
    var m3 = select(zero, exp(l[3] - max_logit), real_entries(n, 3u));
    // A row's real entries are lanes 0 .. n-1, so this mask serves columns and rows alike.
    let lanes = first_lanes(n);
    let whole = rows_in_vec4s(n, mhc.div_off);
    for (var t = 0u; t < mhc.iters; t++) {
        // Columns: padding divides by 1, so it stays 0.
        let col = select(vec4<f32>(1.0), m0 + m1 + m2 + m3 + mhc.eps, lanes);
        store_lanes(div + (t * 2u) * n, col, n, whole);
        m0 = m0 / col;
        m1 = m1 / col;
        m2 = m2 / col;
        m3 = m3 / col;
        let row = select(vec4<f32>(1.0), vec4<f32>(sum_lanes(m0), sum_lanes(m1), sum_lanes(m2), sum_lanes(m3)) + mhc.eps, lanes);
        store_lanes(div + (t * 2u + 1u) * n, row, n, whole);
        m0 = m0 / row.x;
        m1 = m1 / row.y;
        m2 = m2 / row.z;
        m3 = m3 / row.w;
    }
    return mat4x4<f32>(m0, m1, m2, m3);
}

// mhc_grad at `slot` (=) the gradient of Sinkhorn's input exp(L - max L) of row b, given dH_res:
// the forward recomputed, then every normalisation unwound (for y = x / s: dx = (g - sum(g y)) / s).
fn sinkhorn_unwind_registers(mhc: MhcCoeffParams, b: u32, slot: u32) {
    let n = mhc.n;
    let s = slot * 64u;
    let div = mhc.div_off + b * mhc.iters * 2u * n;
    let lanes = first_lanes(n);
    let m = sinkhorn_registers(mhc, b, slot);
    var y0 = m[0];
    var y1 = m[1];
    var y2 = m[2];
    var y3 = m[3];
    let g_res = mhc.dh_off + b * mhc.h_rs + 2u * n;
    let zero = vec4<f32>(0.0);
    let whole_g = rows_in_vec4s(n, mhc.dh_off);
    var g0 = arena_row(g_res, n, 0u, whole_g);
    var g1 = arena_row(g_res, n, 1u, whole_g);
    var g2 = arena_row(g_res, n, 2u, whole_g);
    var g3 = arena_row(g_res, n, 3u, whole_g);
    let whole_div = rows_in_vec4s(n, mhc.div_off);
    for (var tt = 0u; tt < mhc.iters; tt++) {
        let t = mhc.iters - 1u - tt;
        // Rows, each row's dot over its entries in order.
        let row = lanes_at(div + (t * 2u + 1u) * n, n, 1.0, whole_div);
        let dot = vec4<f32>(sum_lanes(g0 * y0), sum_lanes(g1 * y1), sum_lanes(g2 * y2), sum_lanes(g3 * y3));
        g0 = select(zero, (g0 - dot.x) / row.x, lanes);
        g1 = select(zero, (g1 - dot.y) / row.y, lanes);
        g2 = select(zero, (g2 - dot.z) / row.z, lanes);
        g3 = select(zero, (g3 - dot.w) / row.w, lanes);
        y0 = y0 * row.x;
        y1 = y1 * row.y;
        y2 = y2 * row.z;
        y3 = y3 * row.w;
        // Columns, each column's dot over the rows in order.
        let col = lanes_at(div + (t * 2u) * n, n, 1.0, whole_div);
        let col_dot = g0 * y0 + g1 * y1 + g2 * y2 + g3 * y3;
        g0 = (g0 - col_dot) / col;
        g1 = (g1 - col_dot) / col;
        g2 = (g2 - col_dot) / col;
        g3 = (g3 - col_dot) / col;
        y0 = y0 * col;
        y1 = y1 * col;
        y2 = y2 * col;
        y3 = y3 * col;
    }
    let g = mat4x4<f32>(g0, g1, g2, g3);
    for (var k = 0u; k < n; k++) {
        for (var i = 0u; i < n; i++) { mhc_grad[s + k * n + i] = g[k][i]; }
    }
}

// sk = sinkhorn(logits) of row b at `slot`, recording every divisor in the arena.
fn sinkhorn_forward(mhc: MhcCoeffParams, b: u32, slot: u32) {
    let n = mhc.n;
    let sk = slot * 64u;
    if (SINKHORN_IN_REGISTERS) {
        let m = sinkhorn_registers(mhc, b, slot);
        for (var k = 0u; k < n; k++) {
            for (var i = 0u; i < n; i++) { mhc_sk[sk + k * n + i] = m[k][i]; }
        }
        return;
    }
    let div = mhc.div_off + b * mhc.iters * 2u * n;
    var max_logit = mhc_logits[sk];
    for (var j = 1u; j < n * n; j++) { max_logit = max(max_logit, mhc_logits[sk + j]); }
    for (var j = 0u; j < n * n; j++) { mhc_sk[sk + j] = exp(mhc_logits[sk + j] - max_logit); }
    for (var t = 0u; t < mhc.iters; t++) {
        for (var i = 0u; i < n; i++) {
            var col = 0.0;
            for (var k = 0u; k < n; k++) { col += mhc_sk[sk + k * n + i]; }
            let s = col + mhc.eps;
            st(div + (t * 2u) * n + i, s);
            for (var k = 0u; k < n; k++) { mhc_sk[sk + k * n + i] = mhc_sk[sk + k * n + i] / s; }
        }
        for (var k = 0u; k < n; k++) {
            var sum = 0.0;
            for (var i = 0u; i < n; i++) { sum += mhc_sk[sk + k * n + i]; }
            let s = sum + mhc.eps;
            st(div + (t * 2u + 1u) * n + k, s);
            for (var i = 0u; i < n; i++) { mhc_sk[sk + k * n + i] = mhc_sk[sk + k * n + i] / s; }
        }
    }
}

// One thread: H and rms(v) of row b, given r = rms(v), with workgroup state at `slot`.
fn mhc_row_forward(mhc: MhcCoeffParams, b: u32, r: f32, slot: u32) {
    mhc_row_projection(mhc, b, r, slot);
    let m = slot * 80u;
    let sk = slot * 64u;
    let n = mhc.n;
    let h = mhc.h_off + b * mhc.h_rs;
    st(mhc.r_off + b, r);
    let alpha0 = ld(mhc.p_off);
    let alpha1 = ld(mhc.p_off + 1u);
    let bias = mhc.p_off + 3u;
    for (var i = 0u; i < n; i++) {
        st(h + i, sigmoid(alpha0 * mhc_m[m + i] + ld(bias + i)));
        st(h + n + i, 2.0 * sigmoid(alpha1 * mhc_m[m + n + i] + ld(bias + n + i)));
    }
    sinkhorn_forward(mhc, b, slot);
    for (var j = 0u; j < n * n; j++) { st(h + 2u * n + j, mhc_sk[sk + j]); }
}

// What sinkhorn_unwind_registers leaves in mhc_grad, for any n, through workgroup memory.
fn sinkhorn_unwind(mhc: MhcCoeffParams, b: u32, slot: u32) {
    let sk = slot * 64u;
    let div = mhc.div_off + b * mhc.iters * 2u * mhc.n;
    let n = mhc.n;
    let dh = mhc.dh_off + b * mhc.h_rs;
    sinkhorn_forward(mhc, b, slot);
    for (var j = 0u; j < n * n; j++) { mhc_grad[sk + j] = ld(dh + 2u * n + j); }
    for (var tt = 0u; tt < mhc.iters; tt++) {
        let t = mhc.iters - 1u - tt;
        for (var k = 0u; k < n; k++) {
            let s = ld(div + (t * 2u + 1u) * n + k);
            var dot = 0.0;
            for (var i = 0u; i < n; i++) { dot += mhc_grad[sk + k * n + i] * mhc_sk[sk + k * n + i]; }
            for (var i = 0u; i < n; i++) {
                mhc_grad[sk + k * n + i] = (mhc_grad[sk + k * n + i] - dot) / s;
                mhc_sk[sk + k * n + i] = mhc_sk[sk + k * n + i] * s;
            }
        }
        for (var i = 0u; i < n; i++) {
            let s = ld(div + (t * 2u) * n + i);
            var dot = 0.0;
            for (var k = 0u; k < n; k++) { dot += mhc_grad[sk + k * n + i] * mhc_sk[sk + k * n + i]; }
            for (var k = 0u; k < n; k++) {
                mhc_grad[sk + k * n + i] = (mhc_grad[sk + k * n + i] - dot) / s;
                mhc_sk[sk + k * n + i] = mhc_sk[sk + k * n + i] * s;
            }
        }
    }
}

// One thread: dA (=) and the per-row partials (=) of row b, given r = rms(v); returns the
// coefficient k of the rms path, dv += k v, which the caller adds over the row.
fn mhc_row_backward(mhc: MhcCoeffParams, b: u32, r: f32, slot: u32) -> f32 {
    mhc_row_projection(mhc, b, r, slot);
    let m = slot * 80u;
    let sk = slot * 64u;
    let n = mhc.n;
    let width = n * mhc.c;
    let pc = mhc.h_rs;
    let dh = mhc.dh_off + b * pc;
    let part = mhc.part_off + b * (3u + pc);
    let bias = mhc.p_off + 3u;
    var dalpha = array<f32, 3>(0.0, 0.0, 0.0);
    var dm_dot_m = 0.0;
    // pre (sigmoid) and post (2 sigmoid): dA = dm / r with dm = alpha dz.
    for (var j = 0u; j < 2u * n; j++) {
        let which = j / n;
        let alpha = ld(mhc.p_off + which);
        let s = sigmoid(alpha * mhc_m[m + j] + ld(bias + j));
        let dz = ld(dh + j) * f32(which + 1u) * s * (1.0 - s);
        dalpha[which] += dz * mhc_m[m + j];
        let dm = dz * alpha;
        st(part + 3u + j, dz);
        st(mhc.da_off + b * pc + j, dm / r);
        dm_dot_m += dm * mhc_m[m + j];
    }
    // res: recompute the forward, then unwind it (for y = x / s: dx = (g - sum(g y)) / s).
    if (SINKHORN_IN_REGISTERS) {
        sinkhorn_unwind_registers(mhc, b, slot);
    } else {
        sinkhorn_unwind(mhc, b, slot);
    }
    // Through exp(L - max L): the max's gradient goes to its first index.
    var argmax = 0u;
    for (var j = 1u; j < n * n; j++) {
        if (mhc_logits[sk + j] > mhc_logits[sk + argmax]) { argmax = j; }
    }
    let max_logit = mhc_logits[sk + argmax];
    var total = 0.0;
    for (var j = 0u; j < n * n; j++) {
        let d = mhc_grad[sk + j] * exp(mhc_logits[sk + j] - max_logit);
        mhc_grad[sk + j] = d;
        total += d;
    }
    mhc_grad[sk + argmax] -= total;
    let alpha2 = ld(mhc.p_off + 2u);
    for (var j = 0u; j < n * n; j++) {
        let coeff = 2u * n + j;
        let dl = mhc_grad[sk + j];
        dalpha[2] += dl * mhc_m[m + coeff];
        let dm = dl * alpha2;
        st(part + 3u + coeff, dl);
        st(mhc.da_off + b * pc + coeff, dm / r);
        dm_dot_m += dm * mhc_m[m + coeff];
    }
    for (var w = 0u; w < 3u; w++) { st(part + w, dalpha[w]); }
    // r = rms(v): dr = -sum(dm m) / r, dv += dr v / (width r).
    return (-dm_dot_m / r) / (f32(width) * r);
}

@compute @workgroup_size(WG_ROW)
fn mhc_coeff_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let b = flat_group(wid, groups);
    if (b >= mhc_params.rows) { return; }
    let r = mhc_rms_workgroup(mhc_params, b, lid);
    if (lid == 0u) { mhc_row_forward(mhc_params, b, r, 0u); }
}

@compute @workgroup_size(WG_ROW)
fn mhc_coeff_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let b = flat_group(wid, groups);
    if (b >= mhc_params.rows) { return; }
    let r = mhc_rms_workgroup(mhc_params, b, lid);
    if (lid == 0u) { row_scalars[1] = mhc_row_backward(mhc_params, b, r, 0u); }
    workgroupBarrier();
    let k = row_scalars[1];
    let width = mhc_params.n * mhc_params.c;
    for (var e = lid; e < width; e += WG_ROW) {
        let o = mhc_params.dv_off + b * width + e;
        st(o, ld(o) + k * ld(mhc_params.v_off + b * width + e));
    }
}

// The same a thread per row, in workgroups of MHC_SLOTS threads, each with its state at its own
// slot: no barriers, which CPU-emulated GPUs pay dearly for (kernels/: MHC_ROW_MAX_WIDTH).
// rms(v) sums in the reference's order.
fn mhc_rms_thread(mhc: MhcCoeffParams, b: u32) -> f32 {
    let width = mhc.n * mhc.c;
    let v0 = mhc.v_off + b * width;
    var ss = 0.0;
    for (var e = 0u; e < width; e++) {
        let v = ld(v0 + e);
        ss += v * v;
    }
    return sqrt(ss / f32(width) + RMS_EPS);
}

@compute @workgroup_size(MHC_SLOTS)
fn mhc_coeff_forward_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    let b = flat_group(wid, groups) * MHC_SLOTS + lid;
    if (b >= mhc_params.rows) { return; }
    mhc_row_forward(mhc_params, b, mhc_rms_thread(mhc_params, b), lid);
}

@compute @workgroup_size(MHC_SLOTS)
fn mhc_coeff_backward_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    let b = flat_group(wid, groups) * MHC_SLOTS + lid;
    if (b >= mhc_params.rows) { return; }
    let k = mhc_row_backward(mhc_params, b, mhc_rms_thread(mhc_params, b), lid);
    let width = mhc_params.n * mhc_params.c;
    for (var e = 0u; e < width; e++) {
        let o = mhc_params.dv_off + b * width + e;
        st(o, ld(o) + k * ld(mhc_params.v_off + b * width + e));
    }
}
