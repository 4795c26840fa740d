//! The story the page tells, checked natively on the GPU (lavapipe in CI):
//! on the default config HC's composite gain passes 10 while mHC's stays at 1 and residual's is
//! exactly 1; on the crash config HC diverges (step and block named) while residual and mHC
//! keep training.

mod common;

use mhc_playground::config::{Config, ResidualKind};
use mhc_playground::metrics::StepMetrics;
use mhc_playground::trainer::Trainer;

fn by_mode(rows: &[StepMetrics], kind: ResidualKind) -> Option<&StepMetrics> {
    rows.iter().find(|m| m.mode == kind.name())
}

#[test]
fn default_config_hc_gain_explodes_while_mhc_stays_at_one() {
    let (config, notices) = Config::from_query("");
    assert!(notices.is_empty());
    assert_eq!((config.depth, config.width, config.streams, config.batch, config.lr), (24, 64, 4, 128, 0.003));
    let mut trainer = Trainer::new(&config, Some(common::gpu())).unwrap();
    let mut hc_gain = 0.0f32;
    let mut measured = 0;
    for t in 0..300u64 {
        let measure = t % 20 == 19;
        trainer.submit_step(measure);
        if !measure {
            continue;
        }
        let rows = pollster::block_on(trainer.read_metrics()).unwrap();
        assert_eq!(rows.len(), 3, "step {t}: every variant still trains");
        for m in &rows {
            assert!(m.diverged_at.is_none() && m.loss.is_some(), "step {t}: {} diverged", m.mode);
        }
        let residual = by_mode(&rows, ResidualKind::Residual).unwrap();
        assert_eq!((residual.gain_fwd, residual.gain_bwd), (Some(1.0), Some(1.0)), "step {t}: residual's gain is exactly 1");
        let mhc = by_mode(&rows, ResidualKind::Mhc).unwrap();
        let (fwd, bwd) = (mhc.gain_fwd.unwrap(), mhc.gain_bwd.unwrap());
        assert!((fwd - 1.0).abs() <= 1e-3, "step {t}: mHC forward gain {fwd}");
        assert!(bwd < 1.5, "step {t}: mHC backward gain {bwd}");
        assert!(mhc.ds_err_row.unwrap() <= 1e-3, "step {t}: mHC rows must sum to 1");
        hc_gain = by_mode(&rows, ResidualKind::Hc).unwrap().gain_fwd.unwrap();
        // The README's figures (HC's gain at steps 19, 39 and 59), to 1%.
        if let Some(&readme) = [17.6f32, 49.4, 122.7].get(measured) {
            assert!((hc_gain - readme).abs() <= 0.01 * readme, "step {t}: HC's gain {hc_gain}, the README says {readme}");
        }
        println!(
            "step {t}: hc gain {hc_gain:.2}, mhc {fwd:.5}/{bwd:.4}, losses {:?}",
            rows.iter().map(|m| m.loss.unwrap()).collect::<Vec<_>>()
        );
        measured += 1;
        if hc_gain > 10.0 && measured >= 3 {
            break;
        }
    }
    assert!(hc_gain > 10.0, "HC's composite gain only reached {hc_gain}");
}

#[test]
fn crash_config_hc_diverges_and_the_others_train_on() {
    let (config, notices) = Config::from_query("depth=32&lr=0.01&precision=f16");
    assert!(notices.is_empty());
    let mut trainer = Trainer::new(&config, Some(common::gpu())).unwrap();
    let mut hc_divergence = None;
    let mut last = Vec::new();
    for t in 0..16u64 {
        trainer.submit_step(t % 5 == 0);
        let rows = pollster::block_on(trainer.read_metrics()).unwrap();
        if let Some(hc) = by_mode(&rows, ResidualKind::Hc) {
            hc_divergence = hc_divergence.or(hc.divergence());
        }
        last = rows;
    }
    let d = hc_divergence.expect("HC must diverge on the crash config");
    // The README: "HC goes non-finite at step 9 in block 31".
    assert_eq!((d.step, d.block), (9, 31), "{d:?}");
    println!("HC diverged at step {} in block {}", d.step, d.block);
    assert!(by_mode(&last, ResidualKind::Hc).is_none(), "a diverged variant is stopped");
    for kind in [ResidualKind::Residual, ResidualKind::Mhc] {
        let m = by_mode(&last, kind).unwrap_or_else(|| panic!("{kind:?} must keep training"));
        assert_eq!(m.step, 15);
        assert!(m.loss.is_some() && m.diverged_at.is_none(), "{kind:?}: {m:?}");
    }
    // The frozen HC keeps its last finite weights (the optimiser skipped the bad step).
    let hc = trainer.variant(ResidualKind::Hc).unwrap();
    let params = pollster::block_on(hc.params()).unwrap();
    assert!(params.iter().all(|p| p.is_finite()), "HC's weights stay finite after it diverged");
}
