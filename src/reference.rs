//! Plain-Rust reference of every kernel in `kernels.rs`: the test oracle for the WGSL kernels
//! and the `--backend cpu` implementation. Generic over the float type so the same code runs in
//! f64 for finite-difference gradient checks and in f32 as a backend.
//!
//! Each function mirrors one WGSL entry point, loop for loop, so that "GPU against CPU" compares
//! the same arithmetic (up to summation order in the tree reductions).

use crate::block::{block_backward_ops, block_forward_ops};
use crate::kernels::*;
use num_traits::Float;

/// A float the reference can run in (f32 as a backend, f64 for gradient checks).
pub trait Real: Float + std::fmt::Debug + Default + Send + Sync + 'static {
    fn of(x: f64) -> Self;
    fn f64(self) -> f64;
}
impl Real for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn f64(self) -> f64 {
        self as f64
    }
}
impl Real for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn f64(self) -> f64 {
        self
    }
}

/// Added under the square root of every RMS (DESIGN.md: `rms(v) = sqrt(mean(v^2) + 1e-6)`).
pub const RMS_EPS: f64 = 1e-6;
/// Adam's epsilon (PyTorch default).
pub const ADAM_EPS: f32 = 1e-8;

/// Nearest f16 value of `x` (round to nearest, ties to even; overflow to infinity), as f32.
/// Written with bit operations so the WGSL twin in `prelude.wgsl` matches it exactly.
pub fn round_to_f16(x: f32) -> f32 {
    let bits = x.to_bits();
    let sign = bits & 0x8000_0000;
    let magnitude = bits & 0x7fff_ffff;
    if magnitude >= 0x7f80_0000 {
        return x; // inf and NaN stay as they are
    }
    if magnitude >= 0x477f_f000 {
        // >= 65520 rounds past the largest f16 (65504).
        return f32::from_bits(sign | 0x7f80_0000);
    }
    if magnitude < 0x3880_0000 {
        // Below 2^-14 f16 is subnormal: a multiple of 2^-24. Scaling by 2^24 is exact.
        let scaled = f32::from_bits(magnitude) * 16_777_216.0;
        let rounded = scaled.round_ties_even();
        return f32::from_bits(sign | (rounded * 5.960_464_5e-8).to_bits());
    }
    // Normal: keep 10 of the 23 mantissa bits, ties to even.
    let lsb = (magnitude >> 13) & 1;
    let rounded = (magnitude + 0x0fff + lsb) & 0xffff_e000;
    f32::from_bits(sign | rounded)
}

fn is_finite<T: Real>(x: T) -> bool {
    x.is_finite()
}

fn u(i: u32) -> usize {
    i as usize
}

/// `1 - 2 / (exp(2x) + 1)`: tanh that saturates cleanly to +-1 for large |x| (the WGSL twin
/// avoids the inf/inf of the textbook formula).
pub fn stable_tanh<T: Real>(x: T) -> T {
    let two = T::of(2.0);
    T::one() - two / ((two * x).exp() + T::one())
}

fn sigmoid<T: Real>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

const GELU_C: f64 = 0.797_884_560_802_865_4; // sqrt(2/pi)
const GELU_K: f64 = 0.044715;

/// `act(x)` for the activation codes of `kernels.rs`.
pub fn activation<T: Real>(kind: u32, x: T) -> T {
    match kind {
        ACT_GELU => {
            let t = stable_tanh(T::of(GELU_C) * (x + T::of(GELU_K) * x * x * x));
            T::of(0.5) * x * (T::one() + t)
        }
        ACT_RELU => x.max(T::zero()),
        _ => stable_tanh(x),
    }
}

/// `act'(x)`.
pub fn activation_grad<T: Real>(kind: u32, x: T) -> T {
    match kind {
        ACT_GELU => {
            let c = T::of(GELU_C);
            let k = T::of(GELU_K);
            let t = stable_tanh(c * (x + k * x * x * x));
            let half = T::of(0.5);
            half * (T::one() + t) + half * x * (T::one() - t * t) * c * (T::one() + T::of(3.0) * k * x * x)
        }
        ACT_RELU => {
            if x > T::zero() {
                T::one()
            } else {
                T::zero()
            }
        }
        _ => {
            let t = stable_tanh(x);
            T::one() - t * t
        }
    }
}

/// Runs one op on the arena.
pub fn run_op<T: Real>(a: &mut [T], op: &Op) {
    run_op_in(a, op, &mut Workspace::default());
}

/// [`run_op`] with the temporaries in `ws` (kept by the CPU backend across steps).
pub fn run_op_in<T: Real>(a: &mut [T], op: &Op, ws: &mut Workspace<T>) {
    match op {
        Op::Matmul(p) => matmul(a, p),
        Op::Reduce(p) => reduce_rows(a, p),
        Op::RmsNormForward(p) => rmsnorm_forward(a, p),
        Op::RmsNormBackward(p) => rmsnorm_backward(a, p),
        Op::RmsNormWeightGrad(p) => rmsnorm_backward_weight(a, p),
        Op::ActForward(p) => {
            for e in 0..u(p.len) {
                a[u(p.y_off) + e] = activation(p.kind, a[u(p.x_off) + e]);
            }
        }
        Op::ActBackward(p) => {
            for e in 0..u(p.len) {
                a[u(p.dx_off) + e] = a[u(p.dy_off) + e] * activation_grad(p.kind, a[u(p.x_off) + e]);
            }
        }
        Op::Broadcast(p) => broadcast(a, p),
        Op::CombineForward(p) => combine_forward(a, p),
        Op::CombineBackward(p) => combine_backward(a, p),
        Op::CombineBackwardCoeff(p) => combine_backward_coeff(a, p),
        Op::UpdateForward(p) => update_forward(a, p),
        Op::UpdateBackward(p) => update_backward(a, p),
        Op::UpdateBackwardCoeff(p) => update_backward_coeff(a, p),
        Op::HcCoeffForward(p) => hc_coeff_forward(a, p),
        Op::HcCoeffBackward(p) => hc_coeff_backward(a, p),
        Op::MhcCoeffForward(p) => mhc_coeff_forward(a, p, ws),
        Op::MhcCoeffBackward(p) => mhc_coeff_backward(a, p, ws),
        Op::XentForward(p) => xent_forward(a, p),
        Op::XentBackward(p) => xent_backward(a, p),
        Op::SegmentStats(p) => segment_stats(a, p),
        Op::StepFinalize(p) => step_finalize(a, p),
        Op::Gains(p) => gains(a, p, ws),
        Op::Optimizer(p) => optimizer_step(a, p),
        // The fused kernels' twin is the unfused ops they replace.
        Op::BlockForward(p) => block_forward_ops(p).iter().for_each(|op| run_op_in(a, op, ws)),
        Op::BlockBackward(p) => block_backward_ops(p).iter().for_each(|op| run_op_in(a, op, ws)),
    }
}

// ---------------------------------------------------------------- matmul.wgsl

pub fn matmul<T: Real>(a: &mut [T], p: &MatmulParams) {
    for z in 0..p.batch.max(1) {
        let (a_off, b_off, c_off) = (p.a_off + z * p.a_bs, p.b_off + z * p.b_bs, p.c_off + z * p.c_bs);
        for i in 0..p.m {
            for j in 0..p.n {
                let mut acc = T::zero();
                for kk in 0..p.k {
                    acc = acc + a[u(a_off + i * p.a_rs + kk * p.a_cs)] * a[u(b_off + kk * p.b_rs + j * p.b_cs)];
                }
                if p.bias_off != NONE {
                    acc = acc + a[u(p.bias_off + j)];
                }
                let c = u(c_off + i * p.c_rs + j);
                a[c] = if p.accumulate != 0 { a[c] + acc } else { acc };
            }
        }
    }
}

// ---------------------------------------------------------------- reduce.wgsl

pub fn reduce_rows<T: Real>(a: &mut [T], p: &ReduceParams) {
    for g in 0..p.groups {
        for j in 0..p.cols {
            let base = p.in_off + g * p.in_gs + j;
            let mut acc = if p.op == REDUCE_MAX { T::neg_infinity() } else { T::zero() };
            for i in 0..p.rows {
                let x = a[u(base + i * p.in_rs)];
                acc = if p.op != REDUCE_MAX {
                    acc + x
                } else if !is_finite(x) || x > acc {
                    // A non-finite value must show in a maximum (Float::max would drop NaN).
                    x
                } else {
                    acc
                };
            }
            let value = acc * T::of(p.scale as f64);
            let o = u(p.out_off + g * p.out_gs + j);
            a[o] = match (p.accumulate != 0, p.op == REDUCE_MAX) {
                (false, _) => value,
                (true, false) => a[o] + value,
                (true, true) => a[o].max(value),
            };
        }
    }
}

// ---------------------------------------------------------------- rmsnorm.wgsl

fn rms_of<T: Real>(xs: &[T]) -> T {
    let ss = xs.iter().fold(T::zero(), |s, &x| s + x * x);
    (ss / T::of(xs.len() as f64) + T::of(RMS_EPS)).sqrt()
}

fn weight<T: Real>(a: &[T], w_off: u32, c: u32) -> T {
    if w_off == NONE {
        T::one()
    } else {
        a[u(w_off + c)]
    }
}

pub fn rmsnorm_forward<T: Real>(a: &mut [T], p: &RmsNormParams) {
    for row in 0..p.rows {
        let x0 = p.x_off + row * p.cols;
        let r = rms_of(&a[u(x0)..u(x0 + p.cols)]);
        a[u(p.r_off + row)] = r;
        for c in 0..p.cols {
            a[u(p.y_off + row * p.cols + c)] = a[u(x0 + c)] / r * weight(a, p.w_off, c);
        }
    }
}

pub fn rmsnorm_backward<T: Real>(a: &mut [T], p: &RmsNormParams) {
    for row in 0..p.rows {
        let r = a[u(p.r_off + row)];
        let x0 = p.x_off + row * p.cols;
        let dy0 = p.dy_off + row * p.cols;
        let mut dot = T::zero();
        for c in 0..p.cols {
            dot = dot + a[u(dy0 + c)] * weight(a, p.w_off, c) * (a[u(x0 + c)] / r);
        }
        let mean = dot / T::of(p.cols as f64);
        for c in 0..p.cols {
            let g = a[u(dy0 + c)] * weight(a, p.w_off, c);
            let dx = (g - a[u(x0 + c)] / r * mean) / r;
            let o = u(p.dx_off + row * p.cols + c);
            a[o] = if p.accumulate != 0 { a[o] + dx } else { dx };
        }
    }
}

pub fn rmsnorm_backward_weight<T: Real>(a: &mut [T], p: &RmsNormParams) {
    for g in 0..p.groups.max(1) {
        let (values, r_off) = (g * p.rows * p.cols, p.r_off + g * p.rows);
        for c in 0..p.cols {
            let mut acc = T::zero();
            for row in 0..p.rows {
                let at = values + row * p.cols + c;
                acc = acc + a[u(p.dy_off + at)] * (a[u(p.x_off + at)] / a[u(r_off + row)]);
            }
            let o = u(p.dw_off + g * p.dw_gs + c);
            a[o] = a[o] + acc;
        }
    }
}

// ---------------------------------------------------------------- streams.wgsl

/// Coefficient `j` of row `b` (`[pre | post | res]`), or the identity's when `h_off == NONE`.
fn pre<T: Real>(a: &[T], p: &StreamParams, b: u32, i: u32) -> T {
    if p.h_off == NONE {
        T::one()
    } else {
        a[u(p.h_off + b * p.h_rs + i)]
    }
}
fn post<T: Real>(a: &[T], p: &StreamParams, b: u32, k: u32) -> T {
    if p.h_off == NONE {
        T::one()
    } else {
        a[u(p.h_off + b * p.h_rs + p.n + k)]
    }
}
fn res<T: Real>(a: &[T], p: &StreamParams, b: u32, k: u32, i: u32) -> T {
    if p.h_off == NONE {
        if k == i {
            T::one()
        } else {
            T::zero()
        }
    } else {
        a[u(p.h_off + b * p.h_rs + 2 * p.n + k * p.n + i)]
    }
}

pub fn broadcast<T: Real>(a: &mut [T], p: &StreamParams) {
    for b in 0..p.rows {
        for c in 0..p.c {
            let v = a[u(p.x_off + b * p.c + c)];
            for k in 0..p.n {
                a[u(p.out_off + (b * p.n + k) * p.c + c)] = v;
            }
        }
    }
}

pub fn combine_forward<T: Real>(a: &mut [T], p: &StreamParams) {
    for b in 0..p.rows {
        for c in 0..p.c {
            let mut acc = T::zero();
            for i in 0..p.n {
                acc = acc + pre(a, p, b, i) * a[u(p.x_off + (b * p.n + i) * p.c + c)];
            }
            a[u(p.out_off + b * p.c + c)] = acc;
        }
    }
}

pub fn combine_backward<T: Real>(a: &mut [T], p: &StreamParams) {
    for b in 0..p.rows {
        for c in 0..p.c {
            let du = a[u(p.dout_off + b * p.c + c)];
            for i in 0..p.n {
                let o = u(p.dx_off + (b * p.n + i) * p.c + c);
                a[o] = a[o] + pre(a, p, b, i) * du;
            }
        }
    }
}

pub fn combine_backward_coeff<T: Real>(a: &mut [T], p: &StreamParams) {
    for b in 0..p.rows {
        for i in 0..p.n {
            let mut acc = T::zero();
            for c in 0..p.c {
                acc = acc + a[u(p.dout_off + b * p.c + c)] * a[u(p.x_off + (b * p.n + i) * p.c + c)];
            }
            a[u(p.dh_off + b * p.dh_rs + i)] = acc;
        }
    }
}

pub fn update_forward<T: Real>(a: &mut [T], p: &StreamParams) {
    for b in 0..p.rows {
        for c in 0..p.c {
            let y = a[u(p.y_off + b * p.c + c)];
            for k in 0..p.n {
                let mut acc = post(a, p, b, k) * y;
                for i in 0..p.n {
                    acc = acc + res(a, p, b, k, i) * a[u(p.x_off + (b * p.n + i) * p.c + c)];
                }
                if p.round_f16 != 0 {
                    acc = T::of(round_to_f16(acc.f64() as f32) as f64);
                }
                a[u(p.out_off + (b * p.n + k) * p.c + c)] = acc;
            }
        }
    }
}

pub fn update_backward<T: Real>(a: &mut [T], p: &StreamParams) {
    for b in 0..p.rows {
        for c in 0..p.c {
            let mut dy = T::zero();
            for k in 0..p.n {
                dy = dy + post(a, p, b, k) * a[u(p.dout_off + (b * p.n + k) * p.c + c)];
            }
            a[u(p.dy_off + b * p.c + c)] = dy;
            for i in 0..p.n {
                let mut acc = T::zero();
                for k in 0..p.n {
                    acc = acc + res(a, p, b, k, i) * a[u(p.dout_off + (b * p.n + k) * p.c + c)];
                }
                a[u(p.dx_off + (b * p.n + i) * p.c + c)] = acc;
            }
        }
    }
}

pub fn update_backward_coeff<T: Real>(a: &mut [T], p: &StreamParams) {
    for b in 0..p.rows {
        for j in 0..p.n + p.n * p.n {
            let mut acc = T::zero();
            if j < p.n {
                for c in 0..p.c {
                    acc = acc + a[u(p.dout_off + (b * p.n + j) * p.c + c)] * a[u(p.y_off + b * p.c + c)];
                }
            } else {
                let (k, i) = ((j - p.n) / p.n, (j - p.n) % p.n);
                for c in 0..p.c {
                    acc = acc + a[u(p.dout_off + (b * p.n + k) * p.c + c)] * a[u(p.x_off + (b * p.n + i) * p.c + c)];
                }
            }
            a[u(p.dh_off + b * p.dh_rs + p.n + j)] = acc;
        }
    }
}

// ---------------------------------------------------------------- hyper.wgsl

pub fn hc_coeff_forward<T: Real>(a: &mut [T], p: &HcCoeffParams) {
    let n = p.n;
    let (sa, sb) = (a[u(p.p_off)], a[u(p.p_off + 1)]);
    let (b_pre, b_res, b_post) = (p.p_off + 2, p.p_off + 2 + n, p.p_off + 2 + n + n * n);
    for b in 0..p.rows {
        let d = |a: &[T], i: u32, j: u32| a[u(p.d_off + (b * n + i) * (n + 2) + j)];
        let h = p.h_off + b * p.h_rs;
        for i in 0..n {
            a[u(h + i)] = sa * stable_tanh(d(a, i, 0)) + a[u(b_pre + i)];
            a[u(h + n + i)] = sb * stable_tanh(d(a, i, n + 1)) + a[u(b_post + i)];
            for k in 0..n {
                a[u(h + 2 * n + k * n + i)] = sa * stable_tanh(d(a, i, 1 + k)) + a[u(b_res + k * n + i)];
            }
        }
    }
}

pub fn hc_coeff_backward<T: Real>(a: &mut [T], p: &HcCoeffParams) {
    let n = p.n;
    let q = 2 + 2 * n + n * n;
    let (sa, sb) = (a[u(p.p_off)], a[u(p.p_off + 1)]);
    for b in 0..p.rows {
        let dh = p.dh_off + b * p.h_rs;
        let part = p.part_off + b * q;
        let (mut dsa, mut dsb) = (T::zero(), T::zero());
        for i in 0..n {
            // (coefficient index in H, column j of D, scale, partial slot of its bias)
            let terms = [(i, 0, sa, 2 + i), (n + i, n + 1, sb, 2 + n + n * n + i)];
            for (hj, dj, s, bias_slot) in terms {
                let g = a[u(dh + hj)];
                let t = stable_tanh(a[u(p.d_off + (b * n + i) * (n + 2) + dj)]);
                a[u(p.dd_off + (b * n + i) * (n + 2) + dj)] = g * s * (T::one() - t * t);
                if dj == 0 {
                    dsa = dsa + g * t;
                } else {
                    dsb = dsb + g * t;
                }
                a[u(part + bias_slot)] = g;
            }
            for k in 0..n {
                let g = a[u(dh + 2 * n + k * n + i)];
                let t = stable_tanh(a[u(p.d_off + (b * n + i) * (n + 2) + 1 + k)]);
                a[u(p.dd_off + (b * n + i) * (n + 2) + 1 + k)] = g * sa * (T::one() - t * t);
                dsa = dsa + g * t;
                a[u(part + 2 + n + k * n + i)] = g;
            }
        }
        a[u(part)] = dsa;
        a[u(part + 1)] = dsb;
    }
}

/// Sinkhorn-Knopp on an `n x n` logit matrix (DESIGN.md section 1). Returns the result and
/// the divisors of every step (`[iter][0 = columns, 1 = rows][index]`), which is all backward
/// needs to run the normalisations in reverse.
pub fn sinkhorn_forward<T: Real>(logits: &[T], n: usize, iters: usize, eps: T) -> (Vec<T>, Vec<T>) {
    let (mut m, mut divisors) = (Vec::new(), Vec::new());
    sinkhorn_forward_into(logits, n, iters, eps, &mut m, &mut divisors);
    (m, divisors)
}

/// [`sinkhorn_forward`] into the caller's buffers (resized here), so a backend that keeps them
/// allocates nothing.
pub fn sinkhorn_forward_into<T: Real>(logits: &[T], n: usize, iters: usize, eps: T, m: &mut Vec<T>, divisors: &mut Vec<T>) {
    let max = logits.iter().fold(T::neg_infinity(), |m, &x| m.max(x));
    m.clear();
    m.extend(logits.iter().map(|&x| (x - max).exp()));
    divisors.clear();
    divisors.resize(iters * 2 * n, T::zero());
    for t in 0..iters {
        for i in 0..n {
            let s = (0..n).fold(T::zero(), |s, k| s + m[k * n + i]) + eps;
            divisors[(t * 2) * n + i] = s;
            for k in 0..n {
                m[k * n + i] = m[k * n + i] / s;
            }
        }
        for k in 0..n {
            let s = (0..n).fold(T::zero(), |s, i| s + m[k * n + i]) + eps;
            divisors[(t * 2 + 1) * n + k] = s;
            for i in 0..n {
                m[k * n + i] = m[k * n + i] / s;
            }
        }
    }
}

/// Reverse mode through every unrolled normalisation (`y = x / s`: `dx = (g - sum(g*y)) / s`),
/// rebuilding each step's output from the next one and its divisor, then through
/// `exp(L - max L)` (the max's gradient goes to its first index).
pub fn sinkhorn_backward<T: Real>(logits: &[T], result: &[T], divisors: &[T], grad: &[T], n: usize, iters: usize) -> Vec<T> {
    let (mut g, mut y) = (Vec::new(), Vec::new());
    sinkhorn_backward_into(logits, result, divisors, grad, n, iters, &mut g, &mut y);
    g
}

/// [`sinkhorn_backward`] in the caller's buffers: `g` ends as the logits' gradient, `y` is scratch.
#[allow(clippy::too_many_arguments)]
pub fn sinkhorn_backward_into<T: Real>(
    logits: &[T],
    result: &[T],
    divisors: &[T],
    grad: &[T],
    n: usize,
    iters: usize,
    g: &mut Vec<T>,
    y: &mut Vec<T>,
) {
    g.clear();
    g.extend_from_slice(grad);
    y.clear();
    y.extend_from_slice(result);
    for t in (0..iters).rev() {
        for k in 0..n {
            let s = divisors[(t * 2 + 1) * n + k];
            let dot = (0..n).fold(T::zero(), |acc, i| acc + g[k * n + i] * y[k * n + i]);
            for i in 0..n {
                g[k * n + i] = (g[k * n + i] - dot) / s;
                y[k * n + i] = y[k * n + i] * s;
            }
        }
        for i in 0..n {
            let s = divisors[(t * 2) * n + i];
            let dot = (0..n).fold(T::zero(), |acc, k| acc + g[k * n + i] * y[k * n + i]);
            for k in 0..n {
                g[k * n + i] = (g[k * n + i] - dot) / s;
                y[k * n + i] = y[k * n + i] * s;
            }
        }
    }
    let mut argmax = 0;
    for j in 1..n * n {
        if logits[j] > logits[argmax] {
            argmax = j;
        }
    }
    let max = logits[argmax];
    let mut total = T::zero();
    for j in 0..n * n {
        let d = g[j] * (logits[j] - max).exp();
        total = total + d;
        g[j] = d;
    }
    g[argmax] = g[argmax] - total;
}

/// Temporaries of the ops that need them (the mHC coefficient path and the gains), sized on
/// first use: the CPU backend keeps one across steps, so a step allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct Workspace<T> {
    m: Vec<T>,
    logits: Vec<T>,
    hres: Vec<T>,
    divisors: Vec<T>,
    upstream: Vec<T>,
    dlogits: Vec<T>,
    y: Vec<T>,
    dm: Vec<T>,
    prefix: Vec<T>,
    next: Vec<T>,
}

/// mHC pre-activations of row `b` into `m` (`m = A / rms(v)`); returns `rms(v)`.
fn mhc_projection<T: Real>(a: &[T], p: &MhcCoeffParams, b: u32, m: &mut Vec<T>) -> T {
    let width = p.n * p.c;
    let v0 = p.v_off + b * width;
    let r = rms_of(&a[u(v0)..u(v0 + width)]);
    m.clear();
    m.extend((0..p.h_rs).map(|j| a[u(p.a_off + b * p.h_rs + j)] / r));
    r
}

fn mhc_res_logits<T: Real>(a: &[T], p: &MhcCoeffParams, m: &[T], logits: &mut Vec<T>) {
    let n = p.n;
    let alpha2 = a[u(p.p_off + 2)];
    logits.clear();
    logits.extend((0..n * n).map(|j| alpha2 * m[u(2 * n + j)] + a[u(p.p_off + 3 + 2 * n + j)]));
}

/// The kernels keep Sinkhorn's divisors in the arena (scratch between the forward pass and its
/// unwinding); the twin writes the same values there.
fn save_divisors<T: Real>(a: &mut [T], p: &MhcCoeffParams, b: u32, divisors: &[T]) {
    let at = u(p.div_off) + u(b) * divisors.len();
    a[at..at + divisors.len()].copy_from_slice(divisors);
}

pub fn mhc_coeff_forward<T: Real>(a: &mut [T], p: &MhcCoeffParams, ws: &mut Workspace<T>) {
    let n = p.n;
    let (alpha0, alpha1) = (a[u(p.p_off)], a[u(p.p_off + 1)]);
    let bias = p.p_off + 3;
    let Workspace { m, logits, hres, divisors, .. } = ws;
    for b in 0..p.rows {
        let r = mhc_projection(a, p, b, m);
        a[u(p.r_off + b)] = r;
        let h = p.h_off + b * p.h_rs;
        for i in 0..n {
            a[u(h + i)] = sigmoid(alpha0 * m[u(i)] + a[u(bias + i)]);
            a[u(h + n + i)] = T::of(2.0) * sigmoid(alpha1 * m[u(n + i)] + a[u(bias + n + i)]);
        }
        mhc_res_logits(a, p, m, logits);
        sinkhorn_forward_into(logits, u(n), u(p.iters), T::of(p.eps as f64), hres, divisors);
        save_divisors(a, p, b, divisors);
        a[u(h + 2 * n)..][..hres.len()].copy_from_slice(hres);
    }
}

pub fn mhc_coeff_backward<T: Real>(a: &mut [T], p: &MhcCoeffParams, ws: &mut Workspace<T>) {
    let n = p.n;
    let pc = p.h_rs;
    let q = 3 + pc;
    let alpha = [a[u(p.p_off)], a[u(p.p_off + 1)], a[u(p.p_off + 2)]];
    let bias = p.p_off + 3;
    let Workspace { m, logits, hres, divisors, upstream, dlogits, y, dm, .. } = ws;
    for b in 0..p.rows {
        let r = mhc_projection(a, p, b, m);
        let dh = p.dh_off + b * p.h_rs;
        let part = p.part_off + b * q;
        dm.clear();
        dm.resize(u(pc), T::zero());
        let mut dalpha = [T::zero(); 3];
        for i in 0..n {
            // pre: sigmoid; post: 2 * sigmoid.
            for (which, j, gain) in [(0usize, i, 1.0), (1usize, n + i, 2.0)] {
                let s = sigmoid(alpha[which] * m[u(j)] + a[u(bias + j)]);
                let dz = a[u(dh + j)] * T::of(gain) * s * (T::one() - s);
                dalpha[which] = dalpha[which] + dz * m[u(j)];
                dm[u(j)] = dz * alpha[which];
                a[u(part + 3 + j)] = dz;
            }
        }
        mhc_res_logits(a, p, m, logits);
        sinkhorn_forward_into(logits, u(n), u(p.iters), T::of(p.eps as f64), hres, divisors);
        save_divisors(a, p, b, divisors);
        upstream.clear();
        upstream.extend((0..n * n).map(|j| a[u(dh + 2 * n + j)]));
        sinkhorn_backward_into(logits, hres, divisors, upstream, u(n), u(p.iters), dlogits, y);
        for (j, &dl) in dlogits.iter().enumerate() {
            let slot = u(2 * n) + j;
            dalpha[2] = dalpha[2] + dl * m[slot];
            dm[slot] = dl * alpha[2];
            a[u(part + 3) + slot] = dl;
        }
        for w in 0..3 {
            a[u(part) + w] = dalpha[w];
        }
        // m = A / r: dA = dm / r, and r = rms(v) feeds back into v.
        let mut dm_dot_m = T::zero();
        for j in 0..u(pc) {
            a[u(p.da_off + b * pc) + j] = dm[j] / r;
            dm_dot_m = dm_dot_m + dm[j] * m[j];
        }
        let width = p.n * p.c;
        let dr = -dm_dot_m / r;
        let k = dr / (T::of(width as f64) * r);
        for e in 0..width {
            let o = u(p.dv_off + b * width + e);
            a[o] = a[o] + k * a[u(p.v_off + b * width + e)];
        }
    }
}

// ---------------------------------------------------------------- loss.wgsl

fn label_of<T: Real>(a: &[T], p: &XentParams, b: u32) -> u32 {
    a[u(p.labels_off + b)].f64() as u32
}

pub fn xent_forward<T: Real>(a: &mut [T], p: &XentParams) {
    for b in 0..p.rows {
        let l0 = u(p.logits_off + b * p.k);
        let logits = &a[l0..l0 + u(p.k)];
        let mut best = 0;
        for j in 1..logits.len() {
            if logits[j] > logits[best] {
                best = j;
            }
        }
        let max = logits[best];
        let sum = logits.iter().fold(T::zero(), |s, &x| s + (x - max).exp());
        let y = label_of(a, p, b);
        let loss = max + sum.ln() - a[l0 + u(y)];
        a[u(p.loss_off + b)] = loss;
        a[u(p.correct_off + b)] = if best as u32 == y { T::one() } else { T::zero() };
    }
}

pub fn xent_backward<T: Real>(a: &mut [T], p: &XentParams) {
    for b in 0..p.rows {
        let l0 = u(p.logits_off + b * p.k);
        let max = a[l0..l0 + u(p.k)].iter().fold(T::neg_infinity(), |m, &x| m.max(x));
        let sum = a[l0..l0 + u(p.k)].iter().fold(T::zero(), |s, &x| s + (x - max).exp());
        let y = label_of(a, p, b);
        for j in 0..p.k {
            let prob = (a[l0 + u(j)] - max).exp() / sum;
            let target = if j == y { T::one() } else { T::zero() };
            a[u(p.dlogits_off + b * p.k + j)] = T::of(p.scale as f64) * (prob - target);
        }
    }
}

// ---------------------------------------------------------------- metrics.wgsl

pub fn segment_stats<T: Real>(a: &mut [T], p: &StatsParams) {
    for s in 0..p.count {
        let start = u(p.in_off + s * p.seg_stride);
        let (mut sumsq, mut nonfinite) = (T::zero(), 0u32);
        for &x in &a[start..start + u(p.seg_len)] {
            sumsq = sumsq + x * x;
            nonfinite += u32::from(!is_finite(x));
        }
        a[u(p.out_off + 2 * s)] = sumsq;
        a[u(p.out_off + 2 * s + 1)] = T::of(nonfinite as f64);
    }
}

pub fn step_finalize<T: Real>(a: &mut [T], p: &FinalizeParams) {
    let mo = p.metrics_off;
    let rows = T::of(p.rows as f64);
    let mut loss = T::zero();
    let mut correct = T::zero();
    for b in 0..p.rows {
        loss = loss + a[u(p.loss_off + b)];
        correct = correct + a[u(p.correct_off + b)];
    }
    a[u(mo + slot::LOSS)] = loss / rows;
    a[u(mo + slot::ACC)] = correct / rows;
    // Gradient stats: embed (segment 0), blocks (1..=depth), head (depth+1).
    let segments = p.depth + 2;
    let mut sumsq = T::zero();
    for s in 0..segments {
        sumsq = sumsq + a[u(p.grad_stats_off + 2 * s)];
    }
    let norm = sumsq.sqrt();
    a[u(mo + slot::GRAD_NORM)] = norm;
    let clip = T::of(p.clip as f64);
    a[u(mo + slot::CLIP_SCALE)] = if clip > T::zero() { T::one().min(clip / (norm + T::of(1e-6))) } else { T::one() };
    if a[u(mo + slot::DIVERGED_STEP)] >= T::zero() {
        return;
    }
    let grad_bad = |s: u32| a[u(p.grad_stats_off + 2 * s + 1)] > T::zero();
    let mut block: Option<u32> = (0..p.depth).find(|&l| a[u(p.stream_stats_off + 2 * l + 1)] > T::zero());
    if block.is_none() && !is_finite(loss) {
        block = Some(p.depth);
    }
    if block.is_none() && grad_bad(p.depth + 1) {
        block = Some(p.depth);
    }
    if block.is_none() {
        block = (0..p.depth).rev().find(|&l| grad_bad(1 + l));
    }
    if block.is_none() && grad_bad(0) {
        block = Some(0);
    }
    if let Some(l) = block {
        a[u(mo + slot::DIVERGED_STEP)] = a[u(mo + slot::STEP)];
        a[u(mo + slot::DIVERGED_BLOCK)] = T::of(l as f64);
    }
}

pub fn gains<T: Real>(a: &mut [T], p: &GainsParams, ws: &mut Workspace<T>) {
    let Workspace { prefix, next, .. } = ws;
    let n = u(p.n);
    let depth = u(p.depth);
    for b in 0..p.rows {
        let h = |a: &[T], l: usize, k: usize, i: usize| -> T {
            if p.h_off == NONE {
                if k == i {
                    T::one()
                } else {
                    T::zero()
                }
            } else {
                a[u(p.h_off + l as u32 * p.h_block_stride + b * p.h_rs + 2 * p.n) + k * n + i]
            }
        };
        let out = u(p.out_off + b * 2 * p.depth);
        set_identity(prefix, n);
        let (mut row_err, mut col_err) = (T::zero(), T::zero());
        for l in 0..depth {
            next.clear();
            next.resize(n * n, T::zero());
            for k in 0..n {
                for i in 0..n {
                    let mut acc = T::zero();
                    for j in 0..n {
                        acc = acc + h(a, l, k, j) * prefix[j * n + i];
                    }
                    next[k * n + i] = acc;
                }
            }
            std::mem::swap(prefix, next);
            a[out + l] = max_abs_row_sum(prefix, n);
            for k in 0..n {
                let rs = (0..n).fold(T::zero(), |s, i| s + h(a, l, k, i));
                let cs = (0..n).fold(T::zero(), |s, i| s + h(a, l, i, k));
                row_err = max_keep_non_finite(row_err, (rs - T::one()).abs());
                col_err = max_keep_non_finite(col_err, (cs - T::one()).abs());
            }
        }
        // The suffix products reuse the prefix's buffer.
        let suffix = &mut *prefix;
        set_identity(suffix, n);
        for l in (0..depth).rev() {
            next.clear();
            next.resize(n * n, T::zero());
            for k in 0..n {
                for i in 0..n {
                    let mut acc = T::zero();
                    for j in 0..n {
                        acc = acc + suffix[k * n + j] * h(a, l, j, i);
                    }
                    next[k * n + i] = acc;
                }
            }
            std::mem::swap(suffix, next);
            a[out + depth + l] = max_abs_col_sum(suffix, n);
        }
        a[u(p.ds_off + 2 * b)] = row_err;
        a[u(p.ds_off + 2 * b + 1)] = col_err;
    }
}

fn set_identity<T: Real>(m: &mut Vec<T>, n: usize) {
    m.clear();
    m.extend((0..n * n).map(|j| if j % (n + 1) == 0 { T::one() } else { T::zero() }));
}

/// A maximum that a non-finite value poisons: `Float::max` drops a NaN, which would report a
/// finite gain for a row that has none (DESIGN.md section 3: null, never dropped). The first
/// non-finite value seen is kept, as the kernel does.
pub fn max_keep_non_finite<T: Real>(best: T, x: T) -> T {
    if !best.is_finite() {
        best
    } else if !x.is_finite() {
        x
    } else {
        best.max(x)
    }
}

fn max_abs_row_sum<T: Real>(m: &[T], n: usize) -> T {
    (0..n).fold(T::zero(), |best, k| max_keep_non_finite(best, (0..n).fold(T::zero(), |s, i| s + m[k * n + i].abs())))
}

fn max_abs_col_sum<T: Real>(m: &[T], n: usize) -> T {
    (0..n).fold(T::zero(), |best, i| max_keep_non_finite(best, (0..n).fold(T::zero(), |s, k| s + m[k * n + i].abs())))
}

// ---------------------------------------------------------------- optimizer.wgsl

pub fn optimizer_step<T: Real>(a: &mut [T], p: &OptimizerParams) {
    let mo = u(p.metrics_off);
    let diverged = a[mo + u(slot::DIVERGED_STEP)] >= T::zero();
    let lr = a[mo + u(slot::LR)];
    let (bc1, bc2) = (a[mo + u(slot::BC1)], a[mo + u(slot::BC2)]);
    let scale = a[mo + u(slot::CLIP_SCALE)];
    let f = |x: f32| T::of(x as f64);
    for e in 0..u(p.len) {
        let gi = u(p.g_off) + e;
        if diverged {
            a[gi] = T::zero();
            continue;
        }
        let g = a[gi] * scale;
        let (pi, mi, vi) = (u(p.p_off) + e, u(p.m_off) + e, u(p.v_off) + e);
        let mut w = a[pi];
        if a[u(p.mask_off) + e] > T::zero() {
            w = w - lr * f(p.wd) * w;
        }
        if p.kind == OPT_ADAMW {
            let m = f(p.beta1) * a[mi] + (T::one() - f(p.beta1)) * g;
            let v = f(p.beta2) * a[vi] + (T::one() - f(p.beta2)) * g * g;
            a[mi] = m;
            a[vi] = v;
            let denom = v.sqrt() / bc2.sqrt() + f(p.eps);
            w = w - (lr / bc1) * (m / denom);
        } else {
            let m = f(p.momentum) * a[mi] + g;
            a[mi] = m;
            w = w - lr * m;
        }
        a[pi] = w;
        a[gi] = T::zero();
    }
}
