//! The CPU twin of `embed.wgsl`.

use super::*;

fn token_of<T: Real>(a: &[T], p: &EmbedParams, r: u32) -> usize {
    a[u(p.tokens_off + r)].f64() as usize
}

pub fn embed_forward<T: Real>(a: &mut [T], p: &EmbedParams) {
    let c = u(p.c);
    for r in 0..p.rows {
        let (tok, pos, out) = (u(p.tok_off) + token_of(a, p, r) * c, u(p.pos_off + (r % p.t) * p.c), u(p.out_off + r * p.c));
        for j in 0..c {
            a[out + j] = a[tok + j] + a[pos + j];
        }
    }
}

pub fn embed_backward_tokens<T: Real>(a: &mut [T], p: &EmbedParams) {
    let c = u(p.c);
    for v in 0..u(p.vocab) {
        for j in 0..c {
            let mut acc = T::zero();
            for r in 0..p.rows {
                if token_of(a, p, r) == v {
                    acc = acc + a[u(p.dout_off + r * p.c) + j];
                }
            }
            let at = u(p.dtok_off) + v * c + j;
            a[at] = a[at] + acc;
        }
    }
}
