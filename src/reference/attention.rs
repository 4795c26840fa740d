//! The CPU twin of `attention.wgsl`: the same sums in the same order (the kernels keep a row of
//! scores where this recomputes them).

use super::*;

/// Offset of row `r`'s q (part 0), k (1) or v (2) for head `h`, from `base` (qkv or dqkv).
fn part_at(p: &AttentionParams, base: u32, r: u32, part: u32, h: u32) -> usize {
    let c = p.heads * p.dh;
    u(base + r * 3 * c + part * c + h * p.dh)
}

fn dot<T: Real>(a: &[T], x: usize, y: usize, len: usize) -> T {
    (0..len).fold(T::zero(), |acc, d| acc + a[x + d] * a[y + d])
}

fn scale<T: Real>(p: &AttentionParams) -> T {
    T::one() / T::of(p.dh as f64).sqrt()
}

fn score<T: Real>(a: &[T], p: &AttentionParams, b: u32, h: u32, i: u32, j: u32) -> T {
    dot(a, part_at(p, p.qkv_off, b * p.t + i, 0, h), part_at(p, p.qkv_off, b * p.t + j, 1, h), u(p.dh)) * scale(p)
}

fn out_at(p: &AttentionParams, base: u32, b: u32, h: u32, i: u32) -> usize {
    u(base + (b * p.t + i) * p.heads * p.dh + h * p.dh)
}

/// Every (sequence, head, position) in the kernels' thread order.
fn slots(p: &AttentionParams) -> impl Iterator<Item = (u32, u32, u32, u32)> {
    let (t, heads) = (p.t, p.heads);
    (0..p.batch * heads * t).map(move |e| {
        let g = e / t;
        (g / heads, g % heads, g, e % t)
    })
}

pub fn attention_forward<T: Real>(a: &mut [T], p: &AttentionParams) {
    let dh = u(p.dh);
    for (b, h, g, i) in slots(p) {
        let m = (1..=i).fold(score(a, p, b, h, i, 0), |m, j| m.max(score(a, p, b, h, i, j)));
        let l = (0..=i).fold(T::zero(), |l, j| l + (score(a, p, b, h, i, j) - m).exp());
        let out = out_at(p, p.out_off, b, h, i);
        a[out..out + dh].fill(T::zero());
        for j in 0..=i {
            let prob = (score(a, p, b, h, i, j) - m).exp() / l;
            let v = part_at(p, p.qkv_off, b * p.t + j, 2, h);
            for d in 0..dh {
                a[out + d] = a[out + d] + prob * a[v + d];
            }
        }
        a[u(p.lse_off + g * p.t + i)] = m + l.ln();
    }
}

/// The probabilities the forward used for head `h` of sequence `b`, from the saved log-sum-exp:
/// `[t, t]` row-major, row = query, zero above the diagonal (the attention heatmap).
pub fn attention_probabilities<T: Real>(a: &[T], p: &AttentionParams, b: u32, h: u32) -> Vec<T> {
    let t = p.t;
    let g = b * p.heads + h;
    let mut probs = vec![T::zero(); u(t * t)];
    for i in 0..t {
        let lse = a[u(p.lse_off + g * t + i)];
        for j in 0..=i {
            probs[u(i * t + j)] = (score(a, p, b, h, i, j) - lse).exp();
        }
    }
    probs
}

pub fn attention_backward_queries<T: Real>(a: &mut [T], p: &AttentionParams) {
    let dh = u(p.dh);
    for (b, h, g, i) in slots(p) {
        let lse = a[u(p.lse_off + g * p.t + i)];
        let dout = out_at(p, p.dout_off, b, h, i);
        let value_grad = |a: &[T], j: u32| dot(a, dout, part_at(p, p.qkv_off, b * p.t + j, 2, h), dh);
        let delta = (0..=i).fold(T::zero(), |acc, j| acc + (score(a, p, b, h, i, j) - lse).exp() * value_grad(a, j));
        a[u(p.delta_off + g * p.t + i)] = delta;
        let dq = part_at(p, p.dqkv_off, b * p.t + i, 0, h);
        a[dq..dq + dh].fill(T::zero());
        for j in 0..=i {
            let ds = (score(a, p, b, h, i, j) - lse).exp() * (value_grad(a, j) - delta);
            let k = part_at(p, p.qkv_off, b * p.t + j, 1, h);
            for d in 0..dh {
                a[dq + d] = a[dq + d] + ds * a[k + d] * scale(p);
            }
        }
    }
}

pub fn attention_backward_keys<T: Real>(a: &mut [T], p: &AttentionParams) {
    let dh = u(p.dh);
    for (b, h, g, j) in slots(p) {
        let v = part_at(p, p.qkv_off, b * p.t + j, 2, h);
        let (dk, dv) = (part_at(p, p.dqkv_off, b * p.t + j, 1, h), part_at(p, p.dqkv_off, b * p.t + j, 2, h));
        a[dk..dk + dh].fill(T::zero());
        a[dv..dv + dh].fill(T::zero());
        for i in j..p.t {
            let prob = (score(a, p, b, h, i, j) - a[u(p.lse_off + g * p.t + i)]).exp();
            let dout = out_at(p, p.dout_off, b, h, i);
            let ds = prob * (dot(a, dout, v, dh) - a[u(p.delta_off + g * p.t + i)]);
            let q = part_at(p, p.qkv_off, b * p.t + i, 0, h);
            for d in 0..dh {
                a[dk + d] = a[dk + d] + ds * a[q + d] * scale(p);
                a[dv + d] = a[dv + d] + prob * a[dout + d];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probabilities_are_the_ones_the_forward_averaged_the_values_with() {
        let p =
            AttentionParams { batch: 2, t: 5, heads: 3, dh: 4, qkv_off: 0, out_off: 2 * 5 * 36, lse_off: 2 * 5 * 48, ..Default::default() };
        let mut rng = crate::rng::Rng::new(9);
        let mut a: Vec<f64> = (0..2 * 5 * 48 + 2 * 3 * 5).map(|_| 2.0 * rng.normal()).collect();
        attention_forward(&mut a, &p);
        for (b, h) in [(0, 0), (1, 2)] {
            let probs = attention_probabilities(&a, &p, b, h);
            for i in 0..5 {
                assert!((probs[u(i * 5)..u(i * 5 + 5)].iter().sum::<f64>() - 1.0).abs() < 1e-12);
                for d in 0..4 {
                    let mixed: f64 = (0..5).map(|j| probs[u(i * 5 + j)] * a[part_at(&p, 0, b * 5 + j, 2, h) + d]).sum();
                    assert!((mixed - a[out_at(&p, p.out_off, b, h, i) + d]).abs() < 1e-12, "({b}, {h}, {i}, {d})");
                }
            }
        }
    }
}
