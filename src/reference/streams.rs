//! The CPU twin of `streams.wgsl`: broadcast, combine and the stream update.

use super::*;

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
