//! One variant's measurements at one step, decoded from the metrics block the kernels fill
//! (DESIGN.md section 3). Non-finite values become `None` (JSON null): a value shown to a
//! person is never NaN.

use crate::config::ResidualKind;
use crate::kernels::slot;
use crate::program::Program;
use serde::Serialize;

/// Where and when a variant first produced a non-finite value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Divergence {
    pub step: u64,
    /// Block index; equal to the depth when it appeared in the head or the loss.
    pub block: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepMetrics {
    pub step: u64,
    pub mode: &'static str,
    pub loss: Option<f32>,
    pub acc: Option<f32>,
    /// Set on evaluation steps only.
    pub test_loss: Option<f32>,
    pub test_acc: Option<f32>,
    pub grad_norm: Option<f32>,
    pub grad_norm_blocks: Vec<Option<f32>>,
    /// RMS of the streams after each block.
    pub stream_rms: Vec<Option<f32>>,
    /// Composite gains (max over blocks of the batch-mean per-block gains); set on measured steps.
    pub gain_fwd: Option<f32>,
    pub gain_bwd: Option<f32>,
    pub gain_fwd_blocks: Vec<Option<f32>>,
    pub gain_bwd_blocks: Vec<Option<f32>>,
    /// Doubly-stochastic error of mHC's H_res (max over tokens and blocks); mhc only.
    pub ds_err_row: Option<f32>,
    pub ds_err_col: Option<f32>,
    pub diverged_at: Option<u64>,
    pub diverged_block: Option<u32>,
    pub lr: Option<f32>,
    /// Batch-mean coefficients per block (hc and mhc, measured steps): `[L][n]`, `[L][n]`, `[L][n*n]`.
    pub h_pre: Vec<Vec<f32>>,
    pub h_post: Vec<Vec<f32>>,
    pub h_res: Vec<Vec<f32>>,
}

fn finite(x: f32) -> Option<f32> {
    x.is_finite().then_some(x)
}

impl StepMetrics {
    /// Decodes a metrics block read back from the arena.
    pub fn decode(program: &Program, block: &[f32], step: u64, evaluated: bool, measured: bool) -> StepMetrics {
        let kind = program.dims.kind;
        // Per residual unit: the MLP's blocks, the transformer's sublayers.
        let depth = program.dims.units();
        let mp = &program.metrics;
        let at = |s: u32| block[s as usize];
        let grad_norm_blocks = (0..depth).map(|l| finite(at(mp.grad_stats + 2 + 2 * l as u32).sqrt())).collect();
        let stream_len = (program.rows() * program.dims.streams * program.dims.width) as f32;
        let stream_rms = (0..depth).map(|l| finite((at(mp.stream_stats + 2 * l as u32) / stream_len).sqrt())).collect();
        let blocks = |base: u32| -> Vec<Option<f32>> { (0..depth).map(|l| finite(at(base + l as u32))).collect() };
        let (gain_fwd_blocks, gain_bwd_blocks) =
            if measured { (blocks(mp.gains), blocks(mp.gains + depth as u32)) } else { (Vec::new(), Vec::new()) };
        let max_of = |v: &[Option<f32>]| -> Option<f32> {
            if v.is_empty() || v.iter().any(|x| x.is_none()) {
                return None;
            }
            v.iter().flatten().copied().reduce(f32::max)
        };
        let diverged_step = at(slot::DIVERGED_STEP);
        let diverged = diverged_step >= 0.0;
        let is_mhc = kind == ResidualKind::Mhc;
        let (mut h_pre, mut h_post, mut h_res) = (Vec::new(), Vec::new(), Vec::new());
        if measured && kind != ResidualKind::Residual {
            let n = program.dims.streams;
            let pc = program.dims.coeffs();
            for l in 0..depth {
                let row = &block[mp.coeff_mean as usize + l * pc..][..pc];
                h_pre.push(row[..n].to_vec());
                h_post.push(row[n..2 * n].to_vec());
                h_res.push(row[2 * n..].to_vec());
            }
        }
        StepMetrics {
            step,
            mode: kind.name(),
            loss: finite(at(slot::LOSS)),
            acc: finite(at(slot::ACC)),
            test_loss: if evaluated { finite(at(slot::TEST_LOSS)) } else { None },
            test_acc: if evaluated { finite(at(slot::TEST_ACC)) } else { None },
            grad_norm: finite(at(slot::GRAD_NORM)),
            grad_norm_blocks,
            stream_rms,
            gain_fwd: max_of(&gain_fwd_blocks),
            gain_bwd: max_of(&gain_bwd_blocks),
            gain_fwd_blocks,
            gain_bwd_blocks,
            ds_err_row: if measured && is_mhc { finite(at(slot::DS_ROW)) } else { None },
            ds_err_col: if measured && is_mhc { finite(at(slot::DS_COL)) } else { None },
            diverged_at: diverged.then_some(diverged_step as u64),
            diverged_block: diverged.then_some(at(slot::DIVERGED_BLOCK) as u32),
            lr: finite(at(slot::LR)),
            h_pre,
            h_post,
            h_res,
        }
    }

    pub fn divergence(&self) -> Option<Divergence> {
        Some(Divergence { step: self.diverged_at?, block: self.diverged_block? })
    }

    /// Scalar columns for CSV output, in [`CSV_HEADER`] order; empty where null.
    pub fn csv_row(&self) -> String {
        let f = |x: Option<f32>| x.map(|v| v.to_string()).unwrap_or_default();
        let u = |x: Option<u64>| x.map(|v| v.to_string()).unwrap_or_default();
        [
            self.step.to_string(),
            self.mode.to_string(),
            f(self.loss),
            f(self.acc),
            f(self.test_loss),
            f(self.test_acc),
            f(self.grad_norm),
            f(self.gain_fwd),
            f(self.gain_bwd),
            f(self.ds_err_row),
            f(self.ds_err_col),
            u(self.diverged_at),
            u(self.diverged_block.map(u64::from)),
            f(self.lr),
        ]
        .join(",")
    }
}

pub const CSV_HEADER: &str =
    "step,mode,loss,acc,test_loss,test_acc,grad_norm,gain_fwd,gain_bwd,ds_err_row,ds_err_col,diverged_at,diverged_block,lr";
