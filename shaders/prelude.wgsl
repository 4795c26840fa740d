// Prepended to every kernel file by the host (kernels/: shader_source).
// All kernels address one flat f32 arena per variant: parameters, gradients, moments,
// activations, scratch and metrics. Offsets in the params structs are element indices;
// NONE marks an absent operand. Labels live in the arena as exact small floats.
// The arena binding and ld / st / ld_vec4 / st_vec4 come first: arena_vec4s.wgsl or
// arena_floats.wgsl, by adapter (kernels/: ArenaView).

// Four aligned runs of four floats: run j starts at float index start[j] + k * step (each a
// multiple of 4), one vec4 load a run where the arena is seen as vec4s.
struct Runs { start: vec4<u32>, step: u32 }
fn runs_at(runs: Runs, k: u32) -> mat4x4<f32> {
    let s = (runs.start + vec4<u32>(k * runs.step)) >> vec4<u32>(2u);
    return mat4x4<f32>(ld_vec4(s.x), ld_vec4(s.y), ld_vec4(s.z), ld_vec4(s.w));
}
// Runs that each hold one step's four floats, steps `step` apart from `start` on.
fn runs_across(start: u32, step: u32) -> Runs {
    return Runs(vec4<u32>(start) + vec4<u32>(0u, 1u, 2u, 3u) * step, step);
}
// The runs of four rows' (or columns') operands whose first ones are at `first`: each its own
// four steps, or where `across` each one step's four rows, steps `step` apart.
fn runs_of(first: vec4<u32>, step: u32, across: bool) -> Runs {
    if (across) { return runs_across(first.x, step); }
    return Runs(first, 1u);
}

// The `count` (1 to 4) floats from i on as a vec4's first lanes; the lanes past them re-read
// the last (a software GPU runs a loop's every bound, so no lane loads past the run).
fn ld_first(i: u32, count: u32) -> vec4<f32> {
    let last = count - 1u;
    return vec4<f32>(ld(i), ld(i + min(1u, last)), ld(i + min(2u, last)), ld(i + min(3u, last)));
}
// The first `count` (1 to 4) lanes of v to i ...; the others are not stored.
fn st_first(i: u32, v: vec4<f32>, count: u32) {
    for (var j = 0u; j < count; j++) { st(i + j, v[j]); }
}
// Lanes 0 .. n-1 of a vec4 (n = 0 to 4).
fn first_lanes(n: u32) -> vec4<bool> {
    return vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n);
}
// Lanes 0 .. n-1 (n = 1 to 4) of the four floats from `at` on, `pad` beyond (nothing past them
// is read).
fn arena_lanes(at: u32, n: u32, pad: f32) -> vec4<f32> {
    return select(vec4<f32>(pad), ld_first(at, n), first_lanes(n));
}
// Groups of four channels in a row of `len`, and how many of group q's lanes are real.
fn quads_of(len: u32) -> u32 { return (len + 3u) / 4u; }
fn lanes_of(len: u32, q: u32) -> u32 { return min(4u, len - 4u * q); }

// m, or its transpose when `flip`, without a branch: a software GPU (lavapipe) runs both sides
// of an `if`, loads included.
fn flipped_if(m: mat4x4<f32>, flip: bool) -> mat4x4<f32> {
    let t = transpose(m);
    return mat4x4<f32>(select(m[0], t[0], flip), select(m[1], t[1], flip), select(m[2], t[2], flip),
                       select(m[3], t[3], flip));
}

// Four steps of a 4 x 4 register block: acc[r] += x[r][q] * w[q] for q = 0, 1, 2, 3 in turn,
// where column r of x holds row r's operands of the four steps and column q of w the four
// columns' operands of step q. Each output still sums its steps in order. Written out, not
// looped: a software GPU keeps a dynamically indexed matrix in memory.
fn quad_steps(acc: mat4x4<f32>, x: mat4x4<f32>, w: mat4x4<f32>) -> mat4x4<f32> {
    var a = acc;
    a[0] += x[0].x * w[0]; a[0] += x[0].y * w[1]; a[0] += x[0].z * w[2]; a[0] += x[0].w * w[3];
    a[1] += x[1].x * w[0]; a[1] += x[1].y * w[1]; a[1] += x[1].z * w[2]; a[1] += x[1].w * w[3];
    a[2] += x[2].x * w[0]; a[2] += x[2].y * w[1]; a[2] += x[2].z * w[2]; a[2] += x[2].w * w[3];
    a[3] += x[3].x * w[0]; a[3] += x[3].y * w[1]; a[3] += x[3].z * w[2]; a[3] += x[3].w * w[3];
    return a;
}

// An 8 x 8 register block: rows 0-3 (lo) and 4-7 (hi) by columns 0-3 (a) and 4-7 (b), row r of
// each quarter a vec4 of its four columns. With more outputs a thread each operand load feeds
// more multiply-adds: 16 vec4 loads per 256 where a 4 x 4 block takes 8 per 64, and a software
// GPU pays per load instruction, not per multiply-add (kernels/: RegisterBlock).
struct Block8 { lo_a: mat4x4<f32>, hi_a: mat4x4<f32>, lo_b: mat4x4<f32>, hi_b: mat4x4<f32> }

// Four steps of a Block8, as quad_steps: x_lo / x_hi hold rows 0-3 / 4-7's operands, w_a / w_b
// columns 0-3 / 4-7's. Only the quarters asked for are summed (a 4 x 4 block is lo_a alone).
fn block8_steps(acc: Block8, x_lo: mat4x4<f32>, x_hi: mat4x4<f32>, w_a: mat4x4<f32>, w_b: mat4x4<f32>,
                rows_hi: bool, cols_b: bool) -> Block8 {
    var b = acc;
    b.lo_a = quad_steps(b.lo_a, x_lo, w_a);
    if (cols_b) { b.lo_b = quad_steps(b.lo_b, x_lo, w_b); }
    if (rows_hi) {
        b.hi_a = quad_steps(b.hi_a, x_hi, w_a);
        if (cols_b) { b.hi_b = quad_steps(b.hi_b, x_hi, w_b); }
    }
    return b;
}

// m[r] += x[r] * w for each of the four rows: one step of a 4 x 4 quarter (x: the rows'
// operands, w: the columns').
fn rank1_step(m: mat4x4<f32>, x: vec4<f32>, w: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(m[0] + x.x * w, m[1] + x.y * w, m[2] + x.z * w, m[3] + x.w * w);
}

// base + min(first + i, last) * stride for i = 0 .. 3: four rows' or columns' first operands,
// those past `last` re-reading it.
fn clamped_starts(base: u32, first: u32, last: u32, stride: u32) -> vec4<u32> {
    return vec4<u32>(base) + min(vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last)) * stride;
}

fn gather4(at: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(ld(at.x), ld(at.y), ld(at.z), ld(at.w));
}

// One step of a Block8 from single loads: the rows' operands at x_lo / x_hi, the columns' at
// w_a / w_b (float indices); quarters as in block8_steps.
fn block8_step(acc: Block8, x_lo: vec4<u32>, x_hi: vec4<u32>, w_a: vec4<u32>, w_b: vec4<u32>, rows_hi: bool,
               cols_b: bool) -> Block8 {
    var b = acc;
    let wa = gather4(w_a);
    let xl = gather4(x_lo);
    b.lo_a = rank1_step(b.lo_a, xl, wa);
    if (cols_b) {
        let wb = gather4(w_b);
        b.lo_b = rank1_step(b.lo_b, xl, wb);
        if (rows_hi) {
            let xh = gather4(x_hi);
            b.hi_a = rank1_step(b.hi_a, xh, wa);
            b.hi_b = rank1_step(b.hi_b, xh, wb);
        }
    }
    return b;
}

// A Block8's sums over `len` steps: the rows' operands of the first step at x_lo / x_hi (float
// indices), each next step x_step further; the columns' at w_a / w_b, w_step further. The first
// 4 * quads steps (the caller's alignment test gives quads: len / 4 or 0) go four at a time in
// vec4 loads: a run of four is one row's (column's) four steps (x_step or w_step is 1) or,
// where *_across, one step's four rows (columns) side by side. Single loads do the rest. Each
// output sums its steps in order, whichever way they are loaded.
fn block8_sum(x_lo: vec4<u32>, x_hi: vec4<u32>, x_step: u32, x_across: bool, w_a: vec4<u32>, w_b: vec4<u32>,
              w_step: u32, w_across: bool, quads: u32, len: u32, rows_hi: bool, cols_b: bool) -> Block8 {
    let xr_lo = runs_of(x_lo, x_step, x_across);
    let xr_hi = runs_of(x_hi, x_step, x_across);
    let wr_a = runs_of(w_a, w_step, w_across);
    let wr_b = runs_of(w_b, w_step, w_across);
    // quad_steps wants a run per row of x's steps and a run per step of w's columns.
    var acc = Block8(mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>());
    for (var q = 0u; q < quads; q++) {
        let k = 4u * q;
        var xh = mat4x4<f32>();
        var wb = mat4x4<f32>();
        if (rows_hi) { xh = flipped_if(runs_at(xr_hi, k), x_across); }
        if (cols_b) { wb = flipped_if(runs_at(wr_b, k), !w_across); }
        acc = block8_steps(acc, flipped_if(runs_at(xr_lo, k), x_across), xh, flipped_if(runs_at(wr_a, k), !w_across), wb,
                           rows_hi, cols_b);
    }
    for (var k = 4u * quads; k < len; k++) {
        let kx = vec4<u32>(k * x_step);
        let kw = vec4<u32>(k * w_step);
        acc = block8_step(acc, x_lo + kx, x_hi + kx, w_a + kw, w_b + kw, rows_hi, cols_b);
    }
    return acc;
}

// Columns 4 * half .. 4 * half + 3 of row r (0 to 7) of a Block8.
fn block8_row(acc: Block8, r: u32, half: u32) -> vec4<f32> {
    let b = half != 0u;
    switch (r) {
        case 0u: { return select(acc.lo_a[0], acc.lo_b[0], b); }
        case 1u: { return select(acc.lo_a[1], acc.lo_b[1], b); }
        case 2u: { return select(acc.lo_a[2], acc.lo_b[2], b); }
        case 3u: { return select(acc.lo_a[3], acc.lo_b[3], b); }
        case 4u: { return select(acc.hi_a[0], acc.hi_b[0], b); }
        case 5u: { return select(acc.hi_a[1], acc.hi_b[1], b); }
        case 6u: { return select(acc.hi_a[2], acc.hi_b[2], b); }
        default: { return select(acc.hi_a[3], acc.hi_b[3], b); }
    }
}

const NONE: u32 = 0xffffffffu;
const RMS_EPS: f32 = 1e-6;

// Threads per workgroup of the 1-D kernels (the browser allows 256 at most).
override WG_1D: u32 = 256u;
// Threads per workgroup of the one-workgroup-per-row kernels.
const WG_ROW: u32 = 64u;

// Sum of `value` over a WG_ROW-thread workgroup (every thread gets the result). Call it from
// uniform control flow: it has barriers.
var<workgroup> row_partial: array<f32, WG_ROW>;
fn workgroup_sum(lid: u32, value: f32) -> f32 {
    row_partial[lid] = value;
    workgroupBarrier();
    for (var stride = WG_ROW / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) { row_partial[lid] += row_partial[lid + stride]; }
        workgroupBarrier();
    }
    let total = row_partial[0];
    workgroupBarrier();
    return total;
}

// Dispatches wider than 65535 workgroups fold into y; this flattens them back.
fn flat_thread(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * WG_1D;
}
fn flat_group(wid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return wid.x + wid.y * groups.x;
}

// A bit test, not x != x: fast-math compilers may fold the comparison away.
fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// Nearest f16 value (ties to even, overflow to inf) as f32; twin of reference::round_to_f16.
fn round_to_f16(x: f32) -> f32 {
    let bits = bitcast<u32>(x);
    let sign = bits & 0x80000000u;
    let magnitude = bits & 0x7fffffffu;
    if (magnitude >= 0x7f800000u) { return x; }
    if (magnitude >= 0x477ff000u) { return bitcast<f32>(sign | 0x7f800000u); }
    if (magnitude < 0x38800000u) {
        // f16 subnormal range: multiples of 2^-24; round() ties to even.
        let rounded = round(bitcast<f32>(magnitude) * 16777216.0);
        return bitcast<f32>(sign | bitcast<u32>(rounded * 5.9604645e-8));
    }
    let lsb = (magnitude >> 13u) & 1u;
    return bitcast<f32>(sign | ((magnitude + 0x0fffu + lsb) & 0xffffe000u));
}

// Saturates to +-1 where the textbook (e^2x - 1) / (e^2x + 1) gives inf / inf.
fn stable_tanh(x: f32) -> f32 {
    return 1.0 - 2.0 / (exp(2.0 * x) + 1.0);
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}
