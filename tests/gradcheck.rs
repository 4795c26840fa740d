//! Finite-difference gradient checks of the CPU reference in f64, one per op family, with
//! random upstream gradients (an all-ones upstream through Sinkhorn checks nothing: its row
//! sums are constant). Each case: L = sum(G * outputs(forward(inputs))); the backward ops must
//! give dL/d(input) for every input, compared with central differences.

use mhc_playground::kernels::*;
use mhc_playground::reference::{run_op, sinkhorn_backward, sinkhorn_forward};
use mhc_playground::rng::Rng;

/// A small arena with named regions, the op lists of one family, and what to compare.
struct Case {
    arena: Vec<f64>,
    forward: Vec<Op>,
    backward: Vec<Op>,
    /// (value region, upstream-gradient region), each (offset, len).
    outputs: Vec<((u32, u32), u32)>,
    /// (input region, gradient region).
    inputs: Vec<((u32, u32), u32)>,
    rng: Rng,
}

impl Case {
    fn new(seed: u64) -> Case {
        Case { arena: Vec::new(), forward: vec![], backward: vec![], outputs: vec![], inputs: vec![], rng: Rng::new(seed) }
    }
    /// A region of `len` values drawn from N(0, scale^2) (scale 0: zeros).
    fn region(&mut self, len: u32, scale: f64) -> u32 {
        let off = self.arena.len() as u32;
        for _ in 0..len {
            let v = self.rng.normal() * scale;
            self.arena.push(v);
        }
        off
    }
    /// An input with its gradient region.
    fn input(&mut self, len: u32, scale: f64) -> (u32, u32) {
        let x = self.region(len, scale);
        let g = self.region(len, 0.0);
        self.inputs.push(((x, len), g));
        (x, g)
    }
    /// An output with a random upstream gradient.
    fn output(&mut self, len: u32) -> (u32, u32) {
        let y = self.region(len, 0.0);
        let g = self.region(len, 1.0);
        self.outputs.push(((y, len), g));
        (y, g)
    }

    fn loss(&self, arena: &mut [f64]) -> f64 {
        for op in &self.forward {
            run_op(arena, op);
        }
        self.outputs.iter().map(|&((y, len), g)| (0..len).map(|i| arena[(y + i) as usize] * arena[(g + i) as usize]).sum::<f64>()).sum()
    }

    /// Every input element must satisfy |analytic - numeric| <= 1e-8 + rtol * |numeric| (the
    /// absolute part covers central differences' own round-off, about 1e-10 here).
    fn check(&self, name: &str, rtol: f64) {
        let mut arena = self.arena.clone();
        self.loss(&mut arena);
        for &((_, len), g) in &self.inputs {
            arena[g as usize..(g + len) as usize].fill(0.0);
        }
        for op in &self.backward {
            run_op(&mut arena, op);
        }
        let mut worst = (0.0f64, String::new());
        for (n, &((x, len), g)) in self.inputs.iter().enumerate() {
            for i in 0..len {
                let h = 1e-6;
                let mut plus = self.arena.clone();
                plus[(x + i) as usize] += h;
                let mut minus = self.arena.clone();
                minus[(x + i) as usize] -= h;
                let numeric = (self.loss(&mut plus) - self.loss(&mut minus)) / (2.0 * h);
                let analytic = arena[(g + i) as usize];
                let err = (analytic - numeric).abs() / (1e-8 + rtol * numeric.abs());
                assert!(analytic.is_finite(), "{name}: input {n}[{i}] gradient not finite");
                if err > worst.0 {
                    worst = (err, format!("input {n}[{i}]: analytic {analytic:.9e} numeric {numeric:.9e}"));
                }
            }
        }
        assert!(worst.0 <= 1.0, "{name}: error {:.2}x the tolerance at {}", worst.0, worst.1);
    }
}

#[test]
fn matmul_as_linear_layer() {
    for (rows, inp, out) in [(3, 5, 7), (1, 1, 1), (17, 3, 18)] {
        let mut c = Case::new(1);
        let (x, dx) = c.input(rows * inp, 1.0);
        let (w, dw) = c.input(out * inp, 1.0);
        let (b, db) = c.input(out, 1.0);
        let (y, dy) = c.output(rows * out);
        c.forward.push(Op::Matmul(MatmulParams {
            m: rows,
            n: out,
            k: inp,
            a_off: x,
            a_rs: inp,
            a_cs: 1,
            b_off: w,
            b_rs: 1,
            b_cs: inp,
            c_off: y,
            c_rs: out,
            bias_off: b,
            ..Default::default()
        }));
        c.backward.push(Op::Matmul(MatmulParams {
            m: out,
            n: inp,
            k: rows,
            a_off: dy,
            a_rs: 1,
            a_cs: out,
            b_off: x,
            b_rs: inp,
            b_cs: 1,
            c_off: dw,
            c_rs: inp,
            bias_off: NONE,
            accumulate: 1,
            ..Default::default()
        }));
        c.backward.push(Op::Reduce(ReduceParams {
            rows,
            cols: out,
            groups: 1,
            in_off: dy,
            in_rs: out,
            out_off: db,
            accumulate: 1,
            scale: 1.0,
            ..Default::default()
        }));
        c.backward.push(Op::Matmul(MatmulParams {
            m: rows,
            n: inp,
            k: out,
            a_off: dy,
            a_rs: out,
            a_cs: 1,
            b_off: w,
            b_rs: inp,
            b_cs: 1,
            c_off: dx,
            c_rs: inp,
            bias_off: NONE,
            ..Default::default()
        }));
        c.check(&format!("linear {rows}x{inp}->{out}"), 1e-6);
    }
}

#[test]
fn rmsnorm_with_and_without_weight() {
    for (rows, cols, weighted) in [(3, 7, true), (4, 5, false), (1, 1, true)] {
        let mut c = Case::new(2);
        let (x, dx) = c.input(rows * cols, 1.0);
        let (w, dw) = if weighted { c.input(cols, 1.0) } else { (NONE, NONE) };
        let r = c.region(rows, 0.0);
        let (y, dy) = c.output(rows * cols);
        let p = RmsNormParams {
            rows,
            cols,
            x_off: x,
            w_off: w,
            y_off: y,
            r_off: r,
            dy_off: dy,
            dx_off: dx,
            dw_off: dw,
            accumulate: 1,
            ..Default::default()
        };
        c.forward.push(Op::RmsNormForward(p));
        c.backward.push(Op::RmsNormBackward(p));
        if weighted {
            c.backward.push(Op::RmsNormWeightGrad(p));
        }
        c.check(&format!("rmsnorm {rows}x{cols} weight={weighted}"), 1e-6);
    }
}

#[test]
fn activations() {
    for kind in [ACT_GELU, ACT_RELU, ACT_TANH] {
        let mut c = Case::new(3);
        let (x, dx) = c.input(40, 2.0);
        let (y, dy) = c.output(40);
        let p = ActParams { len: 40, kind, x_off: x, y_off: y, dy_off: dy, dx_off: dx, ..Default::default() };
        c.forward.push(Op::ActForward(p));
        c.backward.push(Op::ActBackward(p));
        c.check(&format!("activation {kind}"), 1e-6);
    }
}

#[test]
fn stream_combine_update_and_broadcast() {
    for n in [1u32, 3, 4] {
        let (rows, ch) = (2u32, 5u32);
        let pc = n * n + 2 * n;
        let mut c = Case::new(4 + n as u64);
        let (xs, dxs) = c.input(rows * n * ch, 1.0);
        let (h, dh) = c.input(rows * pc, 1.0);
        let (y, dy) = c.input(rows * ch, 1.0);
        let (u, du) = c.output(rows * ch);
        let (out, dout) = c.output(rows * n * ch);
        let s = StreamParams {
            rows,
            n,
            c: ch,
            x_off: xs,
            y_off: y,
            h_off: h,
            h_rs: pc,
            dh_rs: pc,
            dx_off: dxs,
            dy_off: dy,
            dh_off: dh,
            ..Default::default()
        };
        c.forward.push(Op::CombineForward(StreamParams { out_off: u, ..s }));
        c.forward.push(Op::UpdateForward(StreamParams { out_off: out, ..s }));
        // The update backward writes dX and dy with `=`, so it runs before the `+=` of combine.
        c.backward.push(Op::UpdateBackward(StreamParams { dout_off: dout, ..s }));
        c.backward.push(Op::UpdateBackwardCoeff(StreamParams { dout_off: dout, ..s }));
        c.backward.push(Op::CombineBackward(StreamParams { dout_off: du, ..s }));
        c.backward.push(Op::CombineBackwardCoeff(StreamParams { dout_off: du, ..s }));
        c.check(&format!("streams n={n}"), 1e-6);

        // Expand (broadcast) and collapse (combine with identity coefficients) are each other's backward.
        let mut c = Case::new(9);
        let (x, dx) = c.input(rows * ch, 1.0);
        let (xs, dxs) = c.output(rows * n * ch);
        let base = StreamParams { rows, n, c: ch, h_off: NONE, dh_off: NONE, ..Default::default() };
        c.forward.push(Op::Broadcast(StreamParams { x_off: x, out_off: xs, ..base }));
        c.backward.push(Op::CombineForward(StreamParams { x_off: dxs, out_off: dx, ..base }));
        c.check(&format!("expand n={n}"), 1e-6);
    }
}

#[test]
fn hc_coefficients() {
    for n in [1u32, 2, 4] {
        let rows = 3;
        let q = 2 + 2 * n + n * n;
        let pc = n * n + 2 * n;
        let mut c = Case::new(20 + n as u64);
        let (d, dd) = c.input(rows * n * (n + 2), 1.0);
        let (small, dsmall) = c.input(q, 0.7);
        let part = c.region(rows * q, 0.0);
        let (h, dh) = c.output(rows * pc);
        let p = HcCoeffParams {
            rows,
            n,
            d_off: d,
            p_off: small,
            h_off: h,
            h_rs: pc,
            dh_off: dh,
            dd_off: dd,
            part_off: part,
            ..Default::default()
        };
        c.forward.push(Op::HcCoeffForward(p));
        c.backward.push(Op::HcCoeffBackward(p));
        c.backward.push(Op::Reduce(ReduceParams {
            rows,
            cols: q,
            groups: 1,
            in_off: part,
            in_rs: q,
            out_off: dsmall,
            accumulate: 1,
            scale: 1.0,
            ..Default::default()
        }));
        c.check(&format!("hc coefficients n={n}"), 1e-6);
    }
}

#[test]
fn mhc_coefficients_through_sinkhorn() {
    for (n, iters, eps) in [(1u32, 3u32, 1e-6f32), (2, 1, 0.0), (3, 7, 1e-3), (4, 20, 1e-6), (8, 2, 1e-6)] {
        let (rows, ch) = (2u32, 3u32);
        let pc = n * n + 2 * n;
        let mut c = Case::new(40 + n as u64);
        let (v, dv) = c.input(rows * n * ch, 1.0);
        let (a, da) = c.input(rows * pc, 1.0);
        // alpha large enough that the logits vary: the gradient is then not dominated by eps.
        let (small, dsmall) = c.input(3 + pc, 1.0);
        let r = c.region(rows, 0.0);
        let part = c.region(rows * (3 + pc), 0.0);
        let div = c.region(rows * iters * 2 * n, 0.0);
        let (h, dh) = c.output(rows * pc);
        let p = MhcCoeffParams {
            rows,
            n,
            c: ch,
            v_off: v,
            a_off: a,
            p_off: small,
            r_off: r,
            h_off: h,
            h_rs: pc,
            iters,
            eps,
            dh_off: dh,
            da_off: da,
            part_off: part,
            dv_off: dv,
            div_off: div,
        };
        c.forward.push(Op::MhcCoeffForward(p));
        c.backward.push(Op::MhcCoeffBackward(p));
        c.backward.push(Op::Reduce(ReduceParams {
            rows,
            cols: 3 + pc,
            groups: 1,
            in_off: part,
            in_rs: 3 + pc,
            out_off: dsmall,
            accumulate: 1,
            scale: 1.0,
            ..Default::default()
        }));
        c.check(&format!("mhc coefficients n={n} iters={iters} eps={eps}"), 1e-6);
    }
}

#[test]
fn sinkhorn_backward_matches_finite_differences_and_rows_sum_to_one() {
    let mut rng = Rng::new(77);
    for n in 1..=8usize {
        for iters in [1usize, 5, 20] {
            let logits: Vec<f64> = (0..n * n).map(|_| rng.normal() * 2.0).collect();
            let upstream: Vec<f64> = (0..n * n).map(|_| rng.normal()).collect();
            let (m, divisors) = sinkhorn_forward(&logits, n, iters, 1e-6);
            for k in 0..n {
                let row: f64 = (0..n).map(|i| m[k * n + i]).sum();
                assert!((row - 1.0).abs() < 1e-5, "n={n} iters={iters}: row {k} sums to {row}");
            }
            let analytic = sinkhorn_backward(&logits, &m, &divisors, &upstream, n, iters);
            let objective = |l: &[f64]| -> f64 {
                let (m, _) = sinkhorn_forward(l, n, iters, 1e-6);
                m.iter().zip(&upstream).map(|(a, b)| a * b).sum()
            };
            for j in 0..n * n {
                let h = 1e-6;
                let mut plus = logits.clone();
                plus[j] += h;
                let mut minus = logits.clone();
                minus[j] -= h;
                let numeric = (objective(&plus) - objective(&minus)) / (2.0 * h);
                let err = (analytic[j] - numeric).abs() / (1e-8 + 1e-6 * numeric.abs());
                assert!(err <= 1.0, "n={n} iters={iters} logit {j}: analytic {} numeric {numeric}", analytic[j]);
            }
        }
    }
}

#[test]
fn softmax_cross_entropy() {
    let (rows, k) = (4u32, 5u32);
    let mut c = Case::new(60);
    let (logits, dlogits) = c.input(rows * k, 2.0);
    let labels = c.region(rows, 0.0);
    for b in 0..rows {
        c.arena[(labels + b) as usize] = ((b * 3) % k) as f64;
    }
    let loss = c.region(rows, 0.0);
    let correct = c.region(rows, 0.0);
    // The loss is a mean over rows: its upstream gradient is 1/rows on every row.
    let upstream = c.region(rows, 0.0);
    c.arena[upstream as usize..(upstream + rows) as usize].fill(1.0 / rows as f64);
    c.outputs.push(((loss, rows), upstream));
    let p = XentParams {
        rows,
        k,
        logits_off: logits,
        labels_off: labels,
        loss_off: loss,
        correct_off: correct,
        dlogits_off: dlogits,
        scale: 1.0 / rows as f32,
    };
    c.forward.push(Op::XentForward(p));
    c.backward.push(Op::XentBackward(p));
    c.check("softmax cross-entropy", 1e-6);
}

#[test]
fn softmax_cross_entropy_skips_negative_labels() {
    // The transformer's unscored positions: label -1 gives no loss and no gradient.
    let (rows, k) = (5u32, 4u32);
    let mut c = Case::new(61);
    let (logits, dlogits) = c.input(rows * k, 2.0);
    let labels = c.region(rows, 0.0);
    for (b, label) in [2.0, -1.0, 0.0, -1.0, 3.0].into_iter().enumerate() {
        c.arena[labels as usize + b] = label;
    }
    let loss = c.region(rows, 0.0);
    let correct = c.region(rows, 0.0);
    let upstream = c.region(rows, 0.0);
    c.arena[upstream as usize..(upstream + rows) as usize].fill(1.0 / 3.0);
    c.outputs.push(((loss, rows), upstream));
    let p = XentParams {
        rows,
        k,
        logits_off: logits,
        labels_off: labels,
        loss_off: loss,
        correct_off: correct,
        dlogits_off: dlogits,
        scale: 1.0 / 3.0,
    };
    c.forward.push(Op::XentForward(p));
    c.backward.push(Op::XentBackward(p));
    c.check("masked softmax cross-entropy", 1e-6);
    let mut arena = c.arena.clone();
    c.loss(&mut arena);
    run_op(&mut arena, &Op::XentBackward(p));
    for b in [1usize, 3] {
        assert_eq!(arena[loss as usize + b], 0.0, "row {b} has no loss");
        assert!(arena[dlogits as usize + b * k as usize..][..k as usize].iter().all(|&g| g == 0.0), "row {b} has no gradient");
    }
    assert!(arena[loss as usize] > 0.0);
}

#[test]
fn token_and_position_embeddings() {
    // 2 sequences of 3 positions, vocabulary 5 (token 4 unused, token 1 three times).
    let (batch, t, c_, vocab) = (2u32, 3u32, 4u32, 5u32);
    let rows = batch * t;
    let mut c = Case::new(62);
    let tokens = c.region(rows, 0.0);
    for (r, token) in [1.0, 0.0, 1.0, 3.0, 2.0, 1.0].into_iter().enumerate() {
        c.arena[tokens as usize + r] = token;
    }
    let (tok, dtok) = c.input(vocab * c_, 1.0);
    let (pos, dpos) = c.input(t * c_, 1.0);
    let (out, dout) = c.output(rows * c_);
    let p = EmbedParams {
        rows,
        c: c_,
        t,
        vocab,
        tokens_off: tokens,
        tok_off: tok,
        pos_off: pos,
        out_off: out,
        dout_off: dout,
        dtok_off: dtok,
        ..Default::default()
    };
    c.forward.push(Op::EmbedForward(p));
    c.backward.push(Op::EmbedBackwardTokens(p));
    // The position gradient: a sum over the batch.
    c.backward.push(Op::Reduce(ReduceParams {
        rows: batch,
        cols: t * c_,
        groups: 1,
        in_off: dout,
        in_rs: t * c_,
        out_off: dpos,
        accumulate: 1,
        op: REDUCE_SUM,
        scale: 1.0,
        ..Default::default()
    }));
    c.check("token and position embeddings", 1e-7);
}

#[test]
fn causal_multi_head_attention() {
    for (batch, t, heads, dh) in [(1u32, 1u32, 1u32, 3u32), (2, 5, 2, 3), (1, 7, 3, 2)] {
        let mut c = Case::new(63 + t as u64);
        let width = heads * dh;
        let (qkv, dqkv) = c.input(batch * t * 3 * width, 1.0);
        let (out, dout) = c.output(batch * t * width);
        let lse = c.region(batch * heads * t, 0.0);
        let delta = c.region(batch * heads * t, 0.0);
        let p = AttentionParams {
            batch,
            t,
            heads,
            dh,
            qkv_off: qkv,
            out_off: out,
            lse_off: lse,
            dout_off: dout,
            dqkv_off: dqkv,
            delta_off: delta,
            ..Default::default()
        };
        c.forward.push(Op::AttentionForward(p));
        c.backward.push(Op::AttentionBackwardQueries(p));
        c.backward.push(Op::AttentionBackwardKeys(p));
        c.check(&format!("attention batch {batch} t {t} heads {heads} dh {dh}"), 1e-6);
    }
}

#[test]
fn attention_is_causal() {
    // Changing a later position's key or value leaves every earlier output unchanged.
    let (t, heads, dh) = (6u32, 2u32, 3u32);
    let width = heads * dh;
    let mut c = Case::new(70);
    let qkv = c.region(t * 3 * width, 1.0);
    let out = c.region(t * width, 0.0);
    let lse = c.region(heads * t, 0.0);
    let p = AttentionParams { batch: 1, t, heads, dh, qkv_off: qkv, out_off: out, lse_off: lse, ..Default::default() };
    let mut before = c.arena.clone();
    run_op(&mut before, &Op::AttentionForward(p));
    let mut after = c.arena.clone();
    for e in 0..2 * width {
        after[(qkv + 4 * 3 * width + width + e) as usize] += 1.0; // k and v of position 4
    }
    run_op(&mut after, &Op::AttentionForward(p));
    let row = |a: &[f64], i: u32| a[(out + i * width) as usize..(out + (i + 1) * width) as usize].to_vec();
    for i in 0..4 {
        assert_eq!(row(&before, i), row(&after, i), "position {i} sees position 4");
    }
    assert_ne!(row(&before, 4), row(&after, 4));
    // The first position attends to itself alone: its output is its own value.
    for h in 0..heads {
        for d in 0..dh {
            assert!((before[(out + h * dh + d) as usize] - c.arena[(qkv + 2 * width + h * dh + d) as usize]).abs() < 1e-12);
        }
    }
}
