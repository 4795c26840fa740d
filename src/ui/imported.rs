//! A metrics file from another run, drawn dashed over the live curves: a PyTorch run of the
//! exported `train.py` (on a cluster, say), or the runner's `--metrics`. Both write the
//! playground's JSON-lines schema, one object per logged step and variant. Plain Rust, tested
//! natively; a hostile file gets a message naming its first bad line and changes nothing.

use super::model::{History, Series};
use crate::config::ResidualKind;
use crate::metrics::StepMetrics;
use serde_json::Value;

/// Largest file taken (a 1,000,000-step run logged every 10 steps is about 40 MB).
pub const MAX_IMPORT_BYTES: usize = 64 << 20;

/// Another run's curves, per variant.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedRun {
    /// The file's name, shown in the legend and the message.
    pub name: String,
    pub history: History,
    pub rows: usize,
    pub last_step: u64,
}

impl ImportedRun {
    /// One line for the page: what was read.
    pub fn summary(&self) -> String {
        let modes: Vec<&str> = self.history.series.iter().map(|s| s.mode.as_str()).collect();
        format!(
            "Drawn dashed over the live curves: {} rows of {} from {}, steps 0 to {}",
            self.rows,
            modes.join(", "),
            self.name,
            self.last_step
        )
    }
}

/// Reads a metrics `.jsonl`: every non-empty line an object with a whole `step` and a `mode` of
/// residual, hc or mhc; metric fields that are missing, null or not numbers are gaps.
pub fn parse_metrics(name: &str, bytes: &[u8]) -> Result<ImportedRun, String> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(format!("{name} is {:.0} MB; at most {} MB of metrics are read", bytes.len() as f64 / 1e6, MAX_IMPORT_BYTES >> 20));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{name} is not text: expected the JSON lines of `train.py --metrics`"))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |why: &str| format!("{name}, line {}: {why}; expected one JSON object per line with `step` and `mode`", i + 1);
        let value: Value = serde_json::from_str(line).map_err(|_| bad("not JSON"))?;
        let step = value.get("step").and_then(Value::as_u64).ok_or_else(|| bad("no whole `step`"))?;
        let mode = value
            .get("mode")
            .and_then(Value::as_str)
            .and_then(ResidualKind::parse)
            .ok_or_else(|| bad("`mode` is not residual, hc or mhc"))?;
        rows.push(row(&value, step, mode));
    }
    if rows.is_empty() {
        return Err(format!("{name} holds no metrics rows"));
    }
    let mut modes: Vec<ResidualKind> = rows.iter().filter_map(|r| ResidualKind::parse(r.mode)).collect();
    modes.sort();
    modes.dedup();
    let mut history = History {
        config: String::new(),
        series: modes.iter().map(|m| Series { mode: m.name().into(), ..Default::default() }).collect(),
        latest: Vec::new(),
        rows: Vec::new(),
    };
    let last_step = rows.iter().map(|r| r.step).max().unwrap_or(0);
    let count = rows.len();
    history.push(&rows);
    Ok(ImportedRun { name: name.to_string(), history, rows: count, last_step })
}

/// The scalars of one row (per-block values are not drawn for an imported run).
fn row(value: &Value, step: u64, mode: ResidualKind) -> StepMetrics {
    let number = |key: &str| value.get(key).and_then(Value::as_f64).map(|v| v as f32).filter(|v| v.is_finite());
    let diverged_at = value.get("diverged_at").and_then(Value::as_u64);
    StepMetrics {
        step,
        mode: mode.name(),
        loss: number("loss"),
        acc: number("acc"),
        test_loss: number("test_loss"),
        test_acc: number("test_acc"),
        grad_norm: number("grad_norm"),
        grad_norm_blocks: Vec::new(),
        stream_rms: Vec::new(),
        gain_fwd: number("gain_fwd"),
        gain_bwd: number("gain_bwd"),
        gain_fwd_blocks: Vec::new(),
        gain_bwd_blocks: Vec::new(),
        ds_err_row: number("ds_err_row"),
        ds_err_col: number("ds_err_col"),
        diverged_at,
        diverged_block: diverged_at.and(value.get("diverged_block").and_then(Value::as_u64).map(|b| b.min(u32::MAX as u64) as u32)),
        lr: number("lr"),
        h_pre: Vec::new(),
        h_post: Vec::new(),
        h_res: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_ROWS: &str = concat!(
        r#"{"step": 0, "mode": "hc", "loss": 0.7, "acc": 0.5, "test_loss": 0.69, "test_acc": 0.5, "grad_norm": 1.5, "gain_fwd": 1.0, "gain_bwd": 1.0, "diverged_at": null}"#,
        "\n\n",
        r#"{"step": 10, "mode": "mhc", "loss": null, "acc": "x", "gain_fwd": 1.0, "diverged_at": 7, "diverged_block": 3}"#,
        "\n"
    );

    #[test]
    fn reads_the_playground_schema_into_series() {
        let run = parse_metrics("m.jsonl", TWO_ROWS.as_bytes()).unwrap();
        assert_eq!(run.rows, 2);
        assert_eq!(run.last_step, 10);
        let modes: Vec<&str> = run.history.series.iter().map(|s| s.mode.as_str()).collect();
        assert_eq!(modes, ["hc", "mhc"]);
        let hc = &run.history.series[0];
        assert_eq!((hc.step.as_slice(), hc.loss.as_slice(), hc.grad_norm.as_slice()), (&[0.0][..], &[Some(0.7)][..], &[Some(1.5)][..]));
        assert_eq!(hc.test, vec![(0.0, Some(0.69), Some(0.5))]);
        let mhc = &run.history.series[1];
        assert_eq!((mhc.loss.as_slice(), mhc.acc.as_slice()), (&[None][..], &[None][..]), "null and non-numbers are gaps");
        assert_eq!(mhc.diverged, Some((7, 3)));
        assert!(run.summary().contains("2 rows of hc, mhc from m.jsonl, steps 0 to 10"), "{}", run.summary());
    }

    #[test]
    fn the_runners_own_metrics_read_back() {
        let row = StepMetrics {
            step: 4,
            mode: "residual",
            loss: Some(0.25),
            acc: Some(1.0),
            test_loss: None,
            test_acc: None,
            grad_norm: Some(2.0),
            grad_norm_blocks: vec![Some(1.0)],
            stream_rms: vec![Some(1.0)],
            gain_fwd: Some(1.0),
            gain_bwd: Some(1.0),
            gain_fwd_blocks: vec![Some(1.0)],
            gain_bwd_blocks: vec![Some(1.0)],
            ds_err_row: None,
            ds_err_col: None,
            diverged_at: None,
            diverged_block: None,
            lr: Some(0.003),
            h_pre: vec![],
            h_post: vec![],
            h_res: vec![],
        };
        let text = serde_json::to_string(&row).unwrap();
        let run = parse_metrics("r.jsonl", text.as_bytes()).unwrap();
        assert_eq!(run.history.rows[0].loss, Some(0.25));
        assert_eq!(run.history.rows[0].lr, Some(0.003));
    }

    #[test]
    fn hostile_files_name_their_first_bad_line() {
        for (text, expect) in [
            ("", "holds no metrics rows"),
            ("\n  \n", "holds no metrics rows"),
            ("{\"step\": 0, \"mode\": \"hc\"}\nnot json", "line 2: not JSON"),
            ("{\"step\": -1, \"mode\": \"hc\"}", "line 1: no whole `step`"),
            ("{\"step\": 1.5, \"mode\": \"hc\"}", "line 1: no whole `step`"),
            ("{\"step\": 0, \"mode\": \"resnet\"}", "line 1: `mode` is not"),
            ("[1, 2]", "line 1: no whole `step`"),
            ("{\"step\": 0, \"mode\": \"hc\", \"loss\": 1e999}", "line 1: not JSON"),
        ] {
            let err = parse_metrics("f.jsonl", text.as_bytes()).unwrap_err();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
        assert!(parse_metrics("f.jsonl", &[0xff, 0xfe]).unwrap_err().contains("not text"));
        let huge = vec![b' '; MAX_IMPORT_BYTES + 1];
        assert!(parse_metrics("big.jsonl", &huge).unwrap_err().contains("at most 64 MB"));
    }
}
