//! The CPU twins of `matmul.wgsl` and `reduce.wgsl`.

use super::*;

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
