//! The CPU backend's matrix product: the reference's `matmul` (same sum, same order, so the
//! same bits) computed a register tile at a time from packed operands.
//!
//! Each output is still `((0 + a0*b0) + a1*b1) + ...` in `k` order, then `+ bias`, then added
//! to C when accumulating, exactly as `reference::matmul` does; what changes is only which
//! outputs are computed together. A tile of `MR x NR` outputs lives in registers while `k`
//! runs, so every loaded value of A is used `NR` times and every value of B `MR` times, and
//! the `NR`-wide rows vectorise (SSE natively, `simd128` in the browser). There is no fused
//! multiply-add anywhere, so the result does not depend on the instruction set.

use crate::kernels::{MatmulParams, NONE};

/// Rows of C per register tile.
const MR: usize = 4;
/// Columns of C per register tile: two 4-lane vectors.
const NR: usize = 8;

/// Packed copies of one product's operands, kept between calls so a step allocates nothing
/// once every shape has been seen.
#[derive(Default)]
pub struct MatmulScratch {
    /// A in row panels of `MR`: `[m / MR][k][MR]`, zero rows past `m`.
    a: Vec<f32>,
    /// B in column panels of `NR`: `[n / NR][k][NR]`, zero columns past `n`.
    b: Vec<f32>,
}

/// One product (`p.batch` must be 0 or 1: the backend splits batches into single products).
pub fn matmul(arena: &mut [f32], p: &MatmulParams, scratch: &mut MatmulScratch) {
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    if m == 0 || n == 0 {
        return;
    }
    let (row_panels, col_panels) = (m.div_ceil(MR), n.div_ceil(NR));
    let bias = (p.bias_off != NONE).then_some(p.bias_off as usize);
    if k == 0 {
        // Empty sums: C gets the bias (or zero), as in the reference.
        for (ip, jp) in (0..row_panels).flat_map(|ip| (0..col_panels).map(move |jp| (ip, jp))) {
            store_tile(arena, p, ip * MR, jp * NR, &[[0.0; NR]; MR], bias);
        }
        return;
    }
    pack_a(arena, p, row_panels, &mut scratch.a);
    pack_b(arena, p, col_panels, &mut scratch.b);
    for jp in 0..col_panels {
        let b_panel = &scratch.b[jp * k * NR..][..k * NR];
        for ip in 0..row_panels {
            let a_panel = &scratch.a[ip * k * MR..][..k * MR];
            let tile = tile_product(a_panel, b_panel);
            store_tile(arena, p, ip * MR, jp * NR, &tile, bias);
        }
    }
}

fn pack_a(arena: &[f32], p: &MatmulParams, panels: usize, out: &mut Vec<f32>) {
    let (m, k) = (p.m as usize, p.k as usize);
    let (off, rs, cs) = (p.a_off as usize, p.a_rs as usize, p.a_cs as usize);
    out.clear();
    out.resize(panels * k * MR, 0.0);
    for (ip, panel) in out.chunks_exact_mut(k * MR).enumerate() {
        for r in 0..MR.min(m - ip * MR) {
            let row = off + (ip * MR + r) * rs;
            for kk in 0..k {
                panel[kk * MR + r] = arena[row + kk * cs];
            }
        }
    }
}

fn pack_b(arena: &[f32], p: &MatmulParams, panels: usize, out: &mut Vec<f32>) {
    let (n, k) = (p.n as usize, p.k as usize);
    let (off, rs, cs) = (p.b_off as usize, p.b_rs as usize, p.b_cs as usize);
    out.clear();
    out.resize(panels * k * NR, 0.0);
    for (jp, panel) in out.chunks_exact_mut(k * NR).enumerate() {
        let cols = NR.min(n - jp * NR);
        for kk in 0..k {
            let row = off + kk * rs + jp * NR * cs;
            let dst = &mut panel[kk * NR..][..cols];
            if cs == 1 {
                dst.copy_from_slice(&arena[row..row + cols]);
            } else {
                for (c, d) in dst.iter_mut().enumerate() {
                    *d = arena[row + c * cs];
                }
            }
        }
    }
}

/// `MR x NR` sums over `k`, in `k` order, from one A panel and one B panel.
#[inline(always)]
fn tile_product(a_panel: &[f32], b_panel: &[f32]) -> [[f32; NR]; MR] {
    let mut acc = [[0.0f32; NR]; MR];
    for (a, b) in a_panel.chunks_exact(MR).zip(b_panel.chunks_exact(NR)) {
        let b: &[f32; NR] = b.try_into().expect("panel rows are NR wide");
        for r in 0..MR {
            for c in 0..NR {
                acc[r][c] += a[r] * b[c];
            }
        }
    }
    acc
}

fn store_tile(arena: &mut [f32], p: &MatmulParams, i0: usize, j0: usize, tile: &[[f32; NR]; MR], bias: Option<usize>) {
    let rows = MR.min(p.m as usize - i0);
    let cols = NR.min(p.n as usize - j0);
    for (r, values) in tile.iter().enumerate().take(rows) {
        let out = p.c_off as usize + (i0 + r) * p.c_rs as usize + j0;
        for c in 0..cols {
            let mut v = values[c];
            if let Some(b) = bias {
                v += arena[b + j0 + c];
            }
            let dst = &mut arena[out + c];
            *dst = if p.accumulate != 0 { *dst + v } else { v };
        }
    }
}
