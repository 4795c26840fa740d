//! The CPU twin of `hyper.wgsl`: HC's and mHC's coefficients, with Sinkhorn unrolled.

use super::*;

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
