//! The CPU twin of `loss.wgsl`.

use super::*;

/// The row's label, or `None` where it is negative (no loss at this row).
fn label_of<T: Real>(a: &[T], p: &XentParams, b: u32) -> Option<u32> {
    let label = a[u(p.labels_off + b)].f64();
    (label >= 0.0).then_some(label as u32)
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
        let Some(y) = label_of(a, p, b) else {
            a[u(p.loss_off + b)] = T::zero();
            a[u(p.correct_off + b)] = T::zero();
            continue;
        };
        let max = logits[best];
        let sum = logits.iter().fold(T::zero(), |s, &x| s + (x - max).exp());
        let loss = max + sum.ln() - a[l0 + u(y)];
        a[u(p.loss_off + b)] = loss;
        a[u(p.correct_off + b)] = if best as u32 == y { T::one() } else { T::zero() };
    }
}

pub fn xent_backward<T: Real>(a: &mut [T], p: &XentParams) {
    for b in 0..p.rows {
        let l0 = u(p.logits_off + b * p.k);
        let Some(y) = label_of(a, p, b) else {
            a[u(p.dlogits_off + b * p.k)..u(p.dlogits_off + (b + 1) * p.k)].fill(T::zero());
            continue;
        };
        let max = a[l0..l0 + u(p.k)].iter().fold(T::neg_infinity(), |m, &x| m.max(x));
        let sum = a[l0..l0 + u(p.k)].iter().fold(T::zero(), |s, &x| s + (x - max).exp());
        for j in 0..p.k {
            let prob = (a[l0 + u(j)] - max).exp() / sum;
            let target = if j == y { T::one() } else { T::zero() };
            a[u(p.dlogits_off + b * p.k + j)] = T::of(p.scale as f64) * (prob - target);
        }
    }
}
