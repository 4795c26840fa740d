//! Every WGSL kernel against its CPU reference on awkward shapes (smaller than a workgroup, not
//! divisible by the tile, n = 1..8, C not a multiple of 4). Each case fills an arena with
//! random values, runs one op on both backends and compares the whole arena, so a kernel that
//! writes out of its bounds fails too.

mod common;

use common::{assert_close, gpu};
use mhc_playground::gpu::GpuArena;
use mhc_playground::kernels::*;
use mhc_playground::program::OpList;
use mhc_playground::reference::run_op;
use mhc_playground::rng::Rng;

/// An arena under construction: random regions, then ops over them.
struct Lab {
    arena: Vec<f32>,
    rng: Rng,
    /// Start every region at a multiple of 4 floats, as the arena plan does: the kernels' vec4
    /// paths need it (unaligned labs test their scalar fallbacks).
    aligned: bool,
}

impl Lab {
    fn new(seed: u64) -> Lab {
        Lab { arena: Vec::new(), rng: Rng::new(seed), aligned: false }
    }
    fn aligned_if(seed: u64, aligned: bool) -> Lab {
        Lab { aligned, ..Lab::new(seed) }
    }
    fn region(&mut self, len: u32, scale: f64) -> u32 {
        while self.aligned && !self.arena.len().is_multiple_of(4) {
            self.arena.push(f32::NAN);
        }
        let off = self.arena.len() as u32;
        for _ in 0..len {
            let v = (self.rng.normal() * scale) as f32;
            self.arena.push(v);
        }
        off
    }
    fn values(&mut self, values: &[f32]) -> u32 {
        let off = self.arena.len() as u32;
        self.arena.extend_from_slice(values);
        off
    }
    /// Runs `ops` on the CPU reference and on the GPU from the same arena and compares all of it.
    fn check(&self, what: &str, ops: &[Op], atol: f32, rtol: f32) {
        let mut want = self.arena.clone();
        for op in ops {
            run_op(&mut want, op);
        }
        let ctx = gpu();
        let arena = GpuArena::new(&ctx, what, &self.arena, &[ops]).unwrap_or_else(|e| panic!("{what}: {e}"));
        arena.run(&ctx, &[OpList::Train]); // the one list prepared sits in the first slot
        let got = pollster::block_on(arena.read(&ctx, 0, self.arena.len())).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_close(what, &got, &want, atol, rtol);
    }
}

#[test]
fn matmul_on_awkward_shapes_with_transposes() {
    // Unaligned shapes take the scalar loops; aligned ones (sides and regions multiples of 4)
    // the vec4 loads, with a tail of k past the last multiple of 4, and an edge block of rows
    // or columns past C's side.
    let unaligned = [(1, 1, 1), (3, 5, 7), (65, 63, 17), (130, 6, 64), (17, 129, 3), (64, 64, 33)].map(|s| (s, false));
    // With 8 or 16 column groups of 8 (64 or 128 columns) the 8 x 8 kernel shares the rows of
    // A through lavapipe's subgroups of 8 (where k is whole quads), with and without an edge
    // row block; 60 columns are 8 groups too, the last cut by the edge, so none share.
    let aligned = [(8, 12, 18), (64, 32, 20), (12, 8, 4), (20, 36, 7), (20, 64, 16), (16, 128, 8), (12, 60, 8)].map(|s| (s, true));
    for ((m, n, k), aligned) in unaligned.into_iter().chain(aligned) {
        for (transpose_a, transpose_b, bias, accumulate) in
            [(false, true, true, false), (true, false, false, true), (false, false, false, true), (true, true, false, false)]
        {
            let seed = m as u64 * 1000 + n as u64;
            let mut lab = Lab::aligned_if(seed, aligned);
            let a = lab.region(m * k, 1.0);
            let b = lab.region(k * n, 1.0);
            let bias_off = if bias { lab.region(n, 1.0) } else { NONE };
            let c = lab.region(m * n + 7, 1.0);
            let (a_rs, a_cs) = if transpose_a { (1, m) } else { (k, 1) };
            let (b_rs, b_cs) = if transpose_b { (1, k) } else { (n, 1) };
            // Every kernel on every shape (tiled, direct: a thread per output, registers in 4 x 4
            // and 8 x 8 blocks), with the arena seen as vec4s and as floats. Each runs as named:
            // the adapter's register block would run `Registers` as `Registers8` on lavapipe.
            for (kernel, view) in MatmulKernel::ALL.into_iter().flat_map(|k| ArenaView::ALL.map(|v| (k, v))) {
                gpu().set_tuning(TuningOverrides {
                    arena_view: Some(view),
                    register_block: Some(RegisterBlock::Four),
                    ..TuningOverrides::default()
                });
                let op = Op::Matmul(
                    MatmulParams {
                        m,
                        n,
                        k,
                        a_off: a,
                        a_rs,
                        a_cs,
                        b_off: b,
                        b_rs,
                        b_cs,
                        c_off: c,
                        c_rs: n,
                        bias_off,
                        accumulate: accumulate as u32,
                        ..Default::default()
                    }
                    .with_kernel(kernel),
                );
                // Bit for bit: every kernel, rows shared or not, sums k in the reference's order
                // (lavapipe and SwiftShader fuse no multiply-add into these).
                lab.check(&format!("matmul {m}x{n}x{k} tA={transpose_a} tB={transpose_b} {kernel:?} {view:?}"), &[op], 0.0, 0.0);
            }
            gpu().set_tuning(TuningOverrides::default());
        }
    }
}

#[test]
fn reduce_sum_and_max() {
    // The last two take several workgroups (kernels/: REDUCE_WORKGROUP), the last ending inside one.
    let cases =
        [(1, 1, 1, 0, 0), (130, 7, 1, 0, 1), (5, 3, 4, 0, 0), (257, 2, 1, 1, 0), (0, 5, 1, 0, 0), (33, 200, 1, 0, 1), (9, 70, 3, 1, 0)];
    for (rows, cols, groups, op, accumulate) in cases {
        let mut lab = Lab::new(7);
        let input = lab.region(rows * cols * groups + 1, 1.0);
        let out = lab.region(cols * groups, 1.0);
        let p = ReduceParams {
            rows,
            cols,
            groups,
            in_off: input,
            in_rs: cols,
            in_gs: rows * cols,
            out_off: out,
            out_gs: cols,
            accumulate,
            op,
            scale: 0.5,
            ..Default::default()
        };
        lab.check(&format!("reduce {rows}x{cols}x{groups} op={op}"), &[Op::Reduce(p)], 1e-5, 1e-5);
    }
}

#[test]
fn rmsnorm_forward_and_backward() {
    // Both kernels: a thread per row up to RMSNORM_ROW_MAX_COLS (128), a workgroup per row beyond.
    for (rows, cols, weighted, accumulate) in [
        (1, 1, true, 0),
        (5, 63, true, 1),
        (3, 130, false, 0),
        (70, 4, true, 0),
        (300, 128, false, 1),
        (9, 129, true, 0),
        (513, 32, true, 0),
    ] {
        let mut lab = Lab::new(11);
        let x = lab.region(rows * cols, 2.0);
        let w = if weighted { lab.region(cols, 1.0) } else { NONE };
        let y = lab.region(rows * cols, 1.0);
        let r = lab.region(rows, 1.0);
        let dy = lab.region(rows * cols, 1.0);
        let dx = lab.region(rows * cols, 1.0);
        let dw = if weighted { lab.region(cols, 1.0) } else { NONE };
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
            accumulate,
            ..Default::default()
        };
        let mut ops = vec![Op::RmsNormForward(p), Op::RmsNormBackward(p)];
        if weighted {
            ops.push(Op::RmsNormWeightGrad(p));
        }
        lab.check(&format!("rmsnorm {rows}x{cols} weighted={weighted}"), &ops, 1e-5, 1e-4);
    }
}

#[test]
fn activations_forward_and_backward() {
    for kind in [ACT_GELU, ACT_RELU, ACT_TANH] {
        for len in [1u32, 300] {
            let mut lab = Lab::new(13);
            let x = lab.region(len, 3.0);
            // Saturation: large inputs must give +-1 / x, never NaN.
            lab.arena[x as usize] = 60.0;
            let y = lab.region(len, 1.0);
            let dy = lab.region(len, 1.0);
            let dx = lab.region(len, 1.0);
            let p = ActParams { len, kind, x_off: x, y_off: y, dy_off: dy, dx_off: dx, ..Default::default() };
            lab.check(&format!("activation {kind} len {len}"), &[Op::ActForward(p), Op::ActBackward(p)], 1e-6, 1e-5);
        }
    }
}

#[test]
fn stream_ops_for_every_stream_count() {
    for n in 1..=8u32 {
        for (c, identity, round_f16) in [(5u32, false, 0u32), (67, false, 1), (6, true, 0)] {
            let rows = 3;
            let pc = n * n + 2 * n;
            let mut lab = Lab::new(17 + n as u64);
            let xs = lab.region(rows * n * c, 1.0);
            let y = lab.region(rows * c, 1.0);
            let h = if identity { NONE } else { lab.region(rows * pc, 1.0) };
            let u = lab.region(rows * c, 1.0);
            let out = lab.region(rows * n * c, 1.0);
            let dout = lab.region(rows * n * c, 1.0);
            let du = lab.region(rows * c, 1.0);
            let dx = lab.region(rows * n * c, 1.0);
            let dy = lab.region(rows * c, 1.0);
            let dh = if identity { NONE } else { lab.region(rows * pc, 1.0) };
            let s = StreamParams {
                rows,
                n,
                c,
                x_off: xs,
                y_off: y,
                h_off: h,
                h_rs: pc,
                out_off: out,
                dout_off: dout,
                dx_off: dx,
                dy_off: dy,
                dh_off: dh,
                dh_rs: pc,
                round_f16,
                ..Default::default()
            };
            let mut ops = vec![
                Op::CombineForward(StreamParams { out_off: u, ..s }),
                Op::UpdateForward(s),
                Op::UpdateBackward(s),
                Op::CombineBackward(StreamParams { dout_off: du, ..s }),
                Op::Broadcast(StreamParams { x_off: y, ..s }),
            ];
            if !identity {
                ops.push(Op::UpdateBackwardCoeff(s));
                ops.push(Op::CombineBackwardCoeff(StreamParams { dout_off: du, ..s }));
            }
            lab.check(&format!("streams n={n} c={c} identity={identity} f16={round_f16}"), &ops, 1e-5, 1e-5);
        }
    }
}

#[test]
fn hc_coefficients_for_every_stream_count() {
    for n in 1..=8u32 {
        let rows = 5;
        let pc = n * n + 2 * n;
        let q = 2 + 2 * n + n * n;
        let mut lab = Lab::new(23 + n as u64);
        let d = lab.region(rows * n * (n + 2), 1.5);
        let small = lab.region(q, 1.0);
        let h = lab.region(rows * pc, 1.0);
        let dh = lab.region(rows * pc, 1.0);
        let dd = lab.region(rows * n * (n + 2), 1.0);
        let part = lab.region(rows * q, 1.0);
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
        lab.check(&format!("hc n={n}"), &[Op::HcCoeffForward(p), Op::HcCoeffBackward(p)], 1e-5, 1e-4);
    }
}

#[test]
fn mhc_coefficients_for_every_stream_count_and_iteration_count() {
    // Both kernels: a thread per row up to n * C = MHC_ROW_MAX_WIDTH (256), a workgroup beyond;
    // 37 rows are several workgroups of the first.
    for n in 1..=8u32 {
        for (iters, eps, rows, c) in [(1u32, 1e-6f32, 3u32, 5u32), (7, 1e-3, 37, 5), (20, 1e-6, 3, 5), (20, 1e-6, 5, 70)] {
            let pc = n * n + 2 * n;
            let mut lab = Lab::new(29 + n as u64 * 7 + iters as u64);
            let v = lab.region(rows * n * c, 1.0);
            let a = lab.region(rows * pc, 1.0);
            let small = lab.region(3 + pc, 1.0);
            let r = lab.region(rows, 1.0);
            let h = lab.region(rows * pc, 1.0);
            let dh = lab.region(rows * pc, 1.0);
            let da = lab.region(rows * pc, 1.0);
            let part = lab.region(rows * (3 + pc), 1.0);
            let dv = lab.region(rows * n * c, 1.0);
            let div = lab.region(rows * iters * 2 * n, 1.0);
            let p = MhcCoeffParams {
                rows,
                n,
                c,
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
            lab.check(&format!("mhc n={n} iters={iters}"), &[Op::MhcCoeffForward(p), Op::MhcCoeffBackward(p)], 1e-5, 2e-4);
        }
    }
}

#[test]
fn softmax_cross_entropy() {
    for (rows, k) in [(1u32, 2u32), (5, 10), (300, 97)] {
        let mut lab = Lab::new(31);
        let logits = lab.region(rows * k, 3.0);
        // Every fifth row unscored (label -1), as the transformer's positions without a target.
        let labels: Vec<f32> = (0..rows).map(|b| if b % 5 == 3 { -1.0 } else { ((b * 7) % k) as f32 }).collect();
        let labels = lab.values(&labels);
        let loss = lab.region(rows, 1.0);
        let correct = lab.region(rows, 1.0);
        let dl = lab.region(rows * k, 1.0);
        let p = XentParams {
            rows,
            k,
            logits_off: logits,
            labels_off: labels,
            loss_off: loss,
            correct_off: correct,
            dlogits_off: dl,
            scale: 1.0 / rows as f32,
        };
        lab.check(&format!("xent {rows}x{k}"), &[Op::XentForward(p), Op::XentBackward(p)], 1e-5, 1e-4);
    }
}

/// A metrics block with sane step scalars (lr, bias corrections) and "not diverged".
fn metrics_block(lab: &mut Lab, step: f32) -> u32 {
    let mo = lab.region(slot::SCALARS, 0.0);
    let m = mo as usize;
    lab.arena[m + slot::STEP as usize] = step;
    lab.arena[m + slot::LR as usize] = 0.01;
    lab.arena[m + slot::BC1 as usize] = 0.19;
    lab.arena[m + slot::BC2 as usize] = 0.0975;
    lab.arena[m + slot::CLIP_SCALE as usize] = 0.5;
    lab.arena[m + slot::DIVERGED_STEP as usize] = -1.0;
    lab.arena[m + slot::DIVERGED_BLOCK as usize] = -1.0;
    mo
}

#[test]
fn stats_finalize_and_divergence_record() {
    for (depth, poison) in [(3u32, None), (3, Some("stream")), (4, Some("grad")), (1, Some("loss"))] {
        let rows = 5;
        let mut lab = Lab::new(37);
        let mo = metrics_block(&mut lab, 12.0);
        let loss = lab.region(rows, 1.0);
        let correct = lab.values(&[1.0, 0.0, 1.0, 1.0, 0.0]);
        let grads = lab.region(1000, 1.0);
        let streams = lab.region(depth * 77, 1.0);
        let grad_stats = lab.region(2 * (depth + 2), 0.0);
        let stream_stats = lab.region(2 * depth, 0.0);
        match poison {
            Some("stream") => lab.arena[streams as usize + 77 + 5] = f32::INFINITY,
            Some("grad") => lab.arena[grads as usize + 10 + 3 * 200 + 1] = f32::NAN,
            Some("loss") => lab.arena[loss as usize + 2] = f32::INFINITY,
            _ => {}
        }
        let block_len = 200;
        let ops = [
            Op::SegmentStats(StatsParams {
                count: 1,
                seg_len: 10,
                seg_stride: 0,
                in_off: grads,
                out_off: grad_stats,
                ..Default::default()
            }),
            Op::SegmentStats(StatsParams {
                count: depth,
                seg_len: block_len,
                seg_stride: block_len,
                in_off: grads + 10,
                out_off: grad_stats + 2,
                ..Default::default()
            }),
            Op::SegmentStats(StatsParams {
                count: 1,
                seg_len: 5,
                seg_stride: 0,
                in_off: grads + 10 + depth * block_len,
                out_off: grad_stats + 2 * (depth + 1),
                ..Default::default()
            }),
            Op::SegmentStats(StatsParams {
                count: depth,
                seg_len: 77,
                seg_stride: 77,
                in_off: streams,
                out_off: stream_stats,
                ..Default::default()
            }),
            Op::StepFinalize(FinalizeParams {
                rows,
                depth,
                loss_off: loss,
                correct_off: correct,
                grad_stats_off: grad_stats,
                stream_stats_off: stream_stats,
                metrics_off: mo,
                clip: 3.0,
                loss_divisor: rows,
                acc_rows: rows,
                acc_divisor: rows,
                ..Default::default()
            }),
        ];
        lab.check(&format!("stats depth={depth} poison={poison:?}"), &ops, 1e-5, 1e-4);
        // The reference itself records the right step and block.
        let mut a = lab.arena.clone();
        for op in &ops {
            run_op(&mut a, op);
        }
        let record = (a[(mo + slot::DIVERGED_STEP) as usize], a[(mo + slot::DIVERGED_BLOCK) as usize]);
        let expected = match poison {
            None => (-1.0, -1.0),
            Some("stream") => (12.0, 1.0),
            Some("grad") => (12.0, 3.0),
            _ => (12.0, depth as f32),
        };
        assert_eq!(record, expected, "divergence record for {poison:?}");
    }
}

#[test]
fn composite_gains_and_doubly_stochastic_error() {
    for n in 1..=8u32 {
        for identity in [false, true] {
            let (rows, depth) = (4u32, 5u32);
            let pc = n * n + 2 * n;
            let mut lab = Lab::new(41 + n as u64);
            let h = lab.region(depth * rows * pc, 0.6);
            let out = lab.region(rows * 2 * depth, 1.0);
            let ds = lab.region(rows * 2, 1.0);
            let p = GainsParams {
                rows,
                n,
                depth,
                h_off: if identity { NONE } else { h },
                h_block_stride: rows * pc,
                h_rs: pc,
                out_off: out,
                ds_off: ds,
            };
            lab.check(&format!("gains n={n} identity={identity}"), &[Op::Gains(p)], 1e-5, 1e-4);
            if identity {
                continue;
            }
            // A non-finite H_res in row 1 of block 2 (an infinity, then a NaN): that row's gains
            // from block 2 on forward, up to block 2 backward, and its errors are non-finite on
            // both sides, never a finite number; the other rows are untouched.
            for poison in [f32::INFINITY, f32::NAN] {
                let mut poisoned = Lab::new(0);
                poisoned.arena = lab.arena.clone();
                poisoned.arena[(h + 2 * rows * pc + pc + 2 * n) as usize] = poison;
                poisoned.check(&format!("gains n={n} with {poison} in H_res"), &[Op::Gains(p)], 1e-5, 1e-4);
                let mut a = poisoned.arena.clone();
                run_op(&mut a, &Op::Gains(p));
                let row1 = &a[(out + 2 * depth) as usize..][..2 * depth as usize];
                let poisoned_blocks: Vec<bool> = (0..depth).map(|l| l >= 2).chain((0..depth).map(|l| l <= 2)).collect();
                assert_eq!(row1.iter().map(|g| !g.is_finite()).collect::<Vec<_>>(), poisoned_blocks, "n={n}: {row1:?}");
                assert!(!a[(ds + 2) as usize].is_finite() && !a[(ds + 3) as usize].is_finite());
                assert!(a[out as usize..][..2 * depth as usize].iter().all(|g| g.is_finite()), "row 0 untouched");
            }
        }
    }
}

#[test]
fn optimizers_update_and_zero_gradients() {
    // Aligned regions take four parameters a thread (vec4 loads), with 1 to 3 left over at the
    // end when len is not a multiple of 4; unaligned ones a thread per parameter.
    let cases = [(OPT_ADAMW, false, 1000, true), (OPT_SGD, false, 1001, true), (OPT_ADAMW, true, 1002, true), (OPT_ADAMW, false, 3, true)];
    let unaligned = [(OPT_ADAMW, false, 1000, false), (OPT_SGD, false, 999, false), (OPT_ADAMW, true, 1000, false)];
    for (kind, diverged, len, aligned) in cases.into_iter().chain(unaligned) {
        let mut lab = Lab::aligned_if(43, aligned);
        let mo = metrics_block(&mut lab, 4.0);
        if diverged {
            lab.arena[(mo + slot::DIVERGED_STEP) as usize] = 2.0;
        }
        if !aligned && lab.arena.len().is_multiple_of(4) {
            lab.region(1, 1.0); // off the grid: the thread-per-parameter path
        }
        let p = lab.region(len, 1.0);
        let g = lab.region(len, 1.0);
        let m = lab.region(len, 0.1);
        let v = lab.region(len, 0.0);
        lab.arena[v as usize..].copy_from_slice(&(0..len).map(|i| 0.01 + (i % 7) as f32 * 0.001).collect::<Vec<f32>>());
        let mask = lab.region(len, 0.0);
        lab.arena[mask as usize..].copy_from_slice(&(0..len).map(|i| (i % 3 == 0) as u32 as f32).collect::<Vec<f32>>());
        let params = OptimizerParams {
            len,
            p_off: p,
            g_off: g,
            m_off: m,
            v_off: v,
            mask_off: mask,
            metrics_off: mo,
            kind,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            wd: 0.1,
            momentum: 0.9,
            ..Default::default()
        };
        assert_eq!(params.quads(), aligned, "len {len}");
        lab.check(&format!("optimizer {kind} diverged={diverged} len={len} aligned={aligned}"), &[Op::Optimizer(params)], 1e-6, 1e-5);
    }
}

#[test]
fn f16_rounding_matches_the_half_crate_and_the_gpu() {
    let mut values: Vec<f32> =
        vec![0.0, -0.0, 1.0, 65504.0, 65519.99, 65520.0, -70000.0, 6.1e-5, 5.96e-8, 2.98e-8, 1e-9, 0.1, 1.0 / 3.0, f32::INFINITY];
    let mut rng = Rng::new(5);
    for _ in 0..2000 {
        let scale = 10f64.powf(rng.uniform(-9.0, 5.0));
        values.push((rng.normal() * scale) as f32);
    }
    for &x in &values {
        let ours = mhc_playground::reference::round_to_f16(x);
        let half = half::f16::from_f32(x).to_f32();
        assert_eq!(ours.to_bits(), half.to_bits(), "round_to_f16({x:e}) = {ours:e}, half says {half:e}");
    }
    // On the GPU through the stream update with identity coefficients and y = 0.
    let mut lab = Lab::new(1);
    let xs = lab.values(&values);
    let y = lab.values(&vec![0.0; values.len()]);
    let out = lab.region(values.len() as u32, 0.0);
    let s = StreamParams {
        rows: values.len() as u32,
        n: 1,
        c: 1,
        x_off: xs,
        y_off: y,
        h_off: NONE,
        out_off: out,
        round_f16: 1,
        dh_off: NONE,
        ..Default::default()
    };
    lab.check("f16 rounding on the GPU", &[Op::UpdateForward(s)], 0.0, 0.0);
}

#[test]
fn batched_matmul_and_grouped_norm_weight_gradients() {
    // The last is a weight gradient's layout, aligned (gaps of 4): 8 column groups, so the rows
    // of A (dy^T, four rows a vec4) are shared through lavapipe's subgroups of 8.
    for (m, n, k, batch, aligned) in [(3, 5, 7, 2, false), (65, 6, 17, 3, false), (20, 64, 12, 3, true)] {
        let mut lab = Lab::aligned_if(m as u64 * 31 + batch as u64, aligned);
        // Every product's operands sit a stride apart, with a gap so strides are not lengths.
        let gap = |unaligned: u32| if aligned { 4 } else { unaligned };
        let (a_bs, b_bs, c_bs) = (m * k + gap(3), k * n + gap(1), m * n + gap(5));
        let a = lab.region(batch * a_bs, 1.0);
        let b = lab.region(batch * b_bs, 1.0);
        let c = lab.region(batch * c_bs, 1.0);
        let op = Op::Matmul(MatmulParams {
            m,
            n,
            k,
            a_off: a,
            a_rs: 1,
            a_cs: m,
            b_off: b,
            b_rs: n,
            b_cs: 1,
            c_off: c,
            c_rs: n,
            bias_off: NONE,
            accumulate: 1,
            batch,
            a_bs,
            b_bs,
            c_bs,
            ..Default::default()
        });
        // Bit for bit, as the single products.
        lab.check(&format!("batched matmul {m}x{n}x{k} x{batch}"), &[op], 0.0, 0.0);
        if let Op::Matmul(p) = op {
            // Each as named (the adapter's register block would run Registers as Registers8).
            // Registers8 with rows shared through the subgroup where the shape allows, and not.
            for subgroups in [true, false] {
                gpu().set_tuning(TuningOverrides {
                    register_block: Some(RegisterBlock::Four),
                    subgroups: Some(subgroups),
                    ..TuningOverrides::default()
                });
                for kernel in [MatmulKernel::Direct, MatmulKernel::Registers, MatmulKernel::Registers8] {
                    let what = format!("batched matmul {m}x{n}x{k} x{batch} {kernel:?} subgroups={subgroups}");
                    lab.check(&what, &[Op::Matmul(p.with_kernel(kernel))], 0.0, 0.0);
                }
            }
            gpu().set_tuning(TuningOverrides::default());
        }
    }
    for (rows, cols, groups) in [(1, 1, 1), (9, 13, 3), (130, 5, 2)] {
        let mut lab = Lab::new(rows as u64 + 77);
        let x = lab.region(groups * rows * cols, 1.0);
        let r: Vec<f32> = (0..groups * rows).map(|i| 0.5 + (i % 7) as f32 * 0.25).collect();
        let r = lab.values(&r);
        let dy = lab.region(groups * rows * cols, 1.0);
        let dw = lab.region(groups * (cols + 2), 1.0);
        let p = RmsNormParams { rows, cols, x_off: x, r_off: r, dy_off: dy, dw_off: dw, groups, dw_gs: cols + 2, ..Default::default() };
        lab.check(&format!("norm weight grads {rows}x{cols} x{groups}"), &[Op::RmsNormWeightGrad(p)], 1e-5, 1e-5);
    }
}

/// The block of `shape` (its sizes and settings) over random tensors, every region its own so
/// a stray write shows.
fn random_block(lab: &mut Lab, shape: BlockParams) -> BlockParams {
    let BlockParams { kind, rows, n, c, fc, iters, .. } = shape;
    let pc = n * n + 2 * n;
    let (hc, mhc) = (kind == BLOCK_HC, kind == BLOCK_MHC);
    let mut when = |yes: bool, len: u32, scale: f64| if yes { lab.region(len, scale) } else { NONE };
    let h_off = when(hc || mhc, rows * pc, 0.6);
    let proj_w = if hc { when(true, (n + 2) * c, 0.5) } else { when(mhc, pc * n * c, 0.3) };
    let small_off = if hc { when(true, 2 + 2 * n + n * n, 0.8) } else { when(mhc, 3 + pc, 0.8) };
    let proj_off = if hc { when(true, rows * n * (n + 2), 1.0) } else { when(mhc, rows * pc, 1.0) };
    let z_off = when(hc, rows * n * c, 1.0);
    let z_rms_off = if hc { when(true, rows * n, 1.0) } else { when(mhc, rows, 1.0) };
    let dh_off = when(hc || mhc, rows * pc, 1.0);
    let dproj_off = if hc { when(true, rows * n * (n + 2), 1.0) } else { when(mhc, rows * pc, 1.0) };
    let dz_off = when(hc, rows * n * c, 1.0);
    let part_off = if hc { when(true, rows * (2 + 2 * n + n * n), 1.0) } else { when(mhc, rows * (3 + pc), 1.0) };
    let div_off = when(mhc, rows * iters * 2 * n, 1.0);
    BlockParams {
        x_off: lab.region(rows * n * c, 1.0),
        out_off: lab.region(rows * n * c, 1.0),
        h_off,
        u_off: lab.region(rows * c, 1.0),
        normed_off: lab.region(rows * c, 1.0),
        norm_rms_off: lab.region(rows, 1.0),
        hidden_pre_off: lab.region(rows * fc, 1.0),
        hidden_off: lab.region(rows * fc, 1.0),
        y_off: lab.region(rows * c, 1.0),
        norm_w: lab.region(c, 1.0),
        fc1_w: lab.region(fc * c, 0.4),
        fc1_b: lab.region(fc, 0.1),
        fc2_w: lab.region(c * fc, 0.2),
        fc2_b: lab.region(c, 0.1),
        proj_w,
        small_off,
        proj_off,
        z_off,
        z_rms_off,
        dout_off: lab.region(rows * n * c, 1.0),
        dx_off: lab.region(rows * n * c, 1.0),
        dy_off: lab.region(rows * c, 1.0),
        dhidden_off: lab.region(rows * fc, 1.0),
        dhidden_pre_off: lab.region(rows * fc, 1.0),
        dnormed_off: lab.region(rows * c, 1.0),
        du_off: lab.region(rows * c, 1.0),
        dh_off,
        dproj_off,
        dz_off,
        part_off,
        div_off,
        ..shape
    }
}

#[test]
fn fused_block_and_wrap_kernels_equal_their_unfused_ops_on_awkward_shapes() {
    // Rows below, at and across the 8-row tile; widths not a multiple of 4; n = 1..8.
    let cases = [
        (BLOCK_RESIDUAL, 1, 1, 5, 7, ACT_GELU, 0, 0),
        (BLOCK_RESIDUAL, 17, 1, 13, 70, ACT_RELU, 1, 0),
        (BLOCK_HC, 9, 3, 5, 11, ACT_TANH, 0, 0),
        (BLOCK_HC, 8, 8, 13, 20, ACT_GELU, 1, 0),
        (BLOCK_HC, 3, 1, 6, 9, ACT_GELU, 0, 0),
        (BLOCK_MHC, 9, 4, 5, 10, ACT_GELU, 0, 20),
        (BLOCK_MHC, 2, 8, 3, 6, ACT_RELU, 1, 7),
        (BLOCK_MHC, 17, 1, 7, 12, ACT_TANH, 0, 1),
        (BLOCK_MHC, 8, 2, 66, 130, ACT_GELU, 0, 20),
    ]
    .map(|case| (case, false));
    // Widths and regions multiples of 4: the linear layers' vec4 loads, with rows that end
    // inside a register block and HC's n + 2 projections that end inside a column group.
    let aligned = [
        (BLOCK_RESIDUAL, 9, 1, 8, 20, ACT_GELU, 0, 0),
        // 13 rows: a tile's second register block of 8 rows holds 5, one past its lower half.
        (BLOCK_HC, 13, 4, 8, 16, ACT_GELU, 1, 0),
        (BLOCK_HC, 8, 2, 12, 24, ACT_TANH, 0, 0),
        (BLOCK_MHC, 17, 4, 12, 24, ACT_GELU, 0, 20),
        (BLOCK_MHC, 6, 3, 16, 36, ACT_RELU, 1, 3),
        // Layers of 8 column groups (fc1's 64 outputs, fc2's 64 inputs, dA phi's 4 x 16): the
        // rows of a register block shared through subgroups of 4 and of 8 threads.
        (BLOCK_MHC, 13, 4, 16, 64, ACT_GELU, 0, 5),
        (BLOCK_RESIDUAL, 9, 1, 32, 64, ACT_TANH, 0, 0),
        // fc1's input gradient of 60 columns: 8 column groups, the last cut by the edge.
        (BLOCK_RESIDUAL, 9, 1, 60, 64, ACT_GELU, 0, 0),
        // Aligned, but hidden rows of 18: no vec4 paths at all.
        (BLOCK_RESIDUAL, 9, 1, 8, 18, ACT_TANH, 0, 0),
    ]
    .map(|case| (case, true));
    for ((kind, rows, n, c, fc, act, round_f16, iters), aligned) in cases.into_iter().chain(aligned) {
        let seed = rows as u64 * 100 + n as u64 * 10 + kind as u64;
        let mut lab = Lab::aligned_if(seed, aligned);
        let p = random_block(&mut lab, BlockParams { kind, rows, n, c, fc, act, round_f16, iters, eps: 1e-6, ..Default::default() });
        assert_eq!(p.quads(), aligned && fc % 4 == 0, "which paths run: c={c} fc={fc}");
        // Every workgroup size, arena view, register block and stream item an adapter may get:
        // SwiftShader's in a browser (4 threads, floats, 8 x 8, rows), lavapipe's (64, vec4s,
        // 8 x 8, rows) and a hardware GPU's (64, vec4s, 4 x 4, quads), and 16 threads, which
        // shares neither's multiples of the tile, with quads. Rows shared through subgroups (of
        // 4 threads where the workgroup has 4, else lavapipe's 8) and not.
        let setups = [
            (block_threads(true), ArenaView::Floats, RegisterBlock::Eight, StreamItems::Rows, true),
            (block_threads(false), ArenaView::Vec4s, RegisterBlock::Eight, StreamItems::Rows, true),
            (block_threads(false), ArenaView::Vec4s, RegisterBlock::Eight, StreamItems::Rows, false),
            (block_threads(false), ArenaView::Vec4s, RegisterBlock::Four, StreamItems::Quads, false),
            (16, ArenaView::Vec4s, RegisterBlock::Eight, StreamItems::Quads, true),
        ];
        assert!(gpu().has_subgroups(), "the lab's device has no subgroup operations: the shared rows would go untested");
        for (threads, view, block, items, subgroups) in setups {
            gpu().set_tuning(TuningOverrides {
                arena_view: Some(view),
                block_threads: Some(threads),
                register_block: Some(block),
                stream_items: Some(items),
                matmul: None,
                subgroups: Some(subgroups),
            });
            assert_eq!(gpu().subgroups(), subgroups);
            let what = format!(
                "block kind={kind} rows={rows} n={n} c={c} fc={fc} act={act} f16={round_f16} iters={iters} threads={threads} {view:?} {block:?} {items:?} subgroups={subgroups}"
            );
            lab.check(&format!("{what} forward"), &[Op::Fused(FusedKernel::BlockForward, p)], 1e-4, 1e-4);
            // Backward after forward: the saved tensors are then the real ones.
            lab.check(
                &format!("{what} forward+backward"),
                &[Op::Fused(FusedKernel::BlockForward, p), Op::Fused(FusedKernel::BlockBackward, p)],
                1e-4,
                1e-4,
            );
            // The wrapping around a sublayer that mixes rows, each side on its own.
            let wraps =
                [FusedKernel::WrapInForward, FusedKernel::WrapOutForward, FusedKernel::WrapOutBackward, FusedKernel::WrapInBackward]
                    .map(|k| Op::Fused(k, p));
            lab.check(&format!("{what} wrap in forward"), &wraps[..1], 1e-4, 1e-4);
            lab.check(&format!("{what} wrap out forward"), &wraps[1..2], 1e-4, 1e-4);
            lab.check(&format!("{what} wraps forward+backward"), &wraps, 1e-4, 1e-4);
        }
        gpu().set_tuning(TuningOverrides::default());
    }
}

#[test]
fn token_and_position_embeddings() {
    // rows not a multiple of the workgroup, c not a multiple of 4, unused and repeated tokens.
    for (batch, t, c, vocab) in [(1u32, 1u32, 1u32, 1u32), (3, 5, 7, 11), (4, 64, 33, 90), (2, 256, 5, 300)] {
        let rows = batch * t;
        let mut lab = Lab::new(41 + vocab as u64);
        let tokens: Vec<f32> = (0..rows).map(|r| ((r * 7 + r / 3) % vocab.min(rows + 1)) as f32).collect();
        let tokens = lab.values(&tokens);
        let tok = lab.region(vocab * c, 1.0);
        let pos = lab.region(t * c, 1.0);
        let out = lab.region(rows * c, 1.0);
        let dout = lab.region(rows * c, 1.0);
        let dtok = lab.region(vocab * c + 3, 1.0);
        let p = EmbedParams {
            rows,
            c,
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
        lab.check(&format!("embed {batch}x{t} c {c} vocab {vocab}"), &[Op::EmbedForward(p), Op::EmbedBackwardTokens(p)], 1e-5, 1e-5);
    }
}

#[test]
fn causal_attention_forward_and_backward() {
    // One position; a head wider than a workgroup (dh 300); the longest context (the kernels
    // keep a row of scores up to it) at two head sizes; odd shapes.
    for (batch, t, heads, dh) in
        [(1u32, 1u32, 1u32, 1u32), (3, 5, 2, 3), (2, 17, 3, 300), (1, ATTENTION_MAX_CTX, 2, 8), (5, 9, 4, 16), (2, ATTENTION_MAX_CTX, 1, 5)]
    {
        let mut lab = Lab::new(51 + t as u64);
        let width = heads * dh;
        let qkv = lab.region(batch * t * 3 * width, 1.0);
        let out = lab.region(batch * t * width, 1.0);
        let lse = lab.region(batch * heads * t, 1.0);
        let dout = lab.region(batch * t * width, 1.0);
        let dqkv = lab.region(batch * t * 3 * width + 5, 1.0);
        let delta = lab.region(batch * heads * t, 1.0);
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
        lab.check(
            &format!("attention {batch}x{t} heads {heads} dh {dh}"),
            &[Op::AttentionForward(p), Op::AttentionBackwardQueries(p), Op::AttentionBackwardKeys(p)],
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn whole_answer_correctness_per_sequence() {
    for (sequences, len, answer) in [(1u32, 1u32, 1u32), (7, 5, 3), (300, 16, 9)] {
        let mut lab = Lab::new(61);
        let flags: Vec<f32> = (0..sequences * len).map(|e| if e % 7 == 0 || (e / len) % 3 == 0 { 1.0 } else { 0.0 }).collect();
        let flags = lab.values(&flags);
        let out = lab.region(sequences + 2, 1.0);
        let p = AnswerParams { sequences, len, answer, in_off: flags, out_off: out, ..Default::default() };
        lab.check(&format!("answers {sequences}x{len}"), &[Op::AnswerCorrect(p)], 0.0, 0.0);
    }
}
