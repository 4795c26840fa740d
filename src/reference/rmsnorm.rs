//! The CPU twin of `rmsnorm.wgsl`.

use super::*;

pub(super) fn rms_of<T: Real>(xs: &[T]) -> T {
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
