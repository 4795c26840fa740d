//! The CPU twin of `optimizer.wgsl`.

use super::*;

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
