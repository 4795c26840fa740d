//! The CPU twin of `metrics.wgsl`: statistics, the step's record and the composite gains.

use super::*;

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
    let mut loss = T::zero();
    let mut correct = T::zero();
    for b in 0..p.rows {
        loss = loss + a[u(p.loss_off + b)];
    }
    for b in 0..p.acc_rows {
        correct = correct + a[u(p.correct_off + b)];
    }
    a[u(mo + slot::LOSS)] = loss / T::of(p.loss_divisor as f64);
    a[u(mo + slot::ACC)] = correct / T::of(p.acc_divisor as f64);
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

pub fn answer_correct<T: Real>(a: &mut [T], p: &AnswerParams) {
    for s in 0..p.sequences {
        let right = (0..p.len).fold(T::zero(), |acc, i| acc + a[u(p.in_off + s * p.len + i)]);
        a[u(p.out_off + s)] = if right == T::of(p.answer as f64) { T::one() } else { T::zero() };
    }
}
