//! The sweep panel's plain-Rust side, tested natively: the presets that are sweeps, the
//! quantities a map can show, the heatmap grid with its log colour scale and labels, progress
//! with time left, and the CSV / JSON export (the runner's `sweep` columns).

use super::model::{format_value, mode_label};
use crate::config::{Config, ResidualKind};
use crate::sweep::{CellResult, Sweep, VariantSummary};

/// A one-click sweep that answers one question.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SweepPreset {
    pub name: &'static str,
    /// The experiment and the sweep, as a share query.
    pub query: &'static str,
    pub what: &'static str,
}

pub const SWEEP_PRESETS: &[SweepPreset] = &[
    SweepPreset {
        name: "Where HC breaks",
        query: "task=teacher&width=16&streams=4&batch=32&ffn=2&precision=f16&sweep_x=depth:4,8,16,32&sweep_y=lr:0.003,0.01,0.03&sweep_steps=100",
        what: "Depth against learning rate with f16 streams: HC's gain climbs with both and it overflows in the corner; mHC's gain stays at 1 everywhere.",
    },
    SweepPreset {
        name: "The manifold dial",
        query: "task=teacher&width=16&streams=4&batch=32&ffn=2&lr=0.01&sweep_x=sinkhorn_iters:1,2,3,5,10,20&sweep_y=depth:4,16&sweep_steps=100",
        what: "How much projection is enough: mHC's backward gain against Sinkhorn iterations at two depths (pick \"max gain backward\").",
    },
    SweepPreset {
        name: "Streams",
        query: "task=teacher&width=16&batch=32&ffn=2&depth=16&lr=0.01&sweep_x=streams:1,2,3,4,5,6,7,8&sweep_steps=100",
        what: "n = 1 to 8 streams at depth 16: with one stream HC is a residual network; more streams give H_res more room to grow.",
    },
];

/// The quantity a sweep map shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepMetric {
    GainFwd,
    GainBwd,
    FinalLoss,
    FinalTestLoss,
    DivergedAt,
}

impl SweepMetric {
    pub const ALL: [SweepMetric; 5] =
        [SweepMetric::GainFwd, SweepMetric::GainBwd, SweepMetric::FinalLoss, SweepMetric::FinalTestLoss, SweepMetric::DivergedAt];

    pub fn label(self) -> &'static str {
        match self {
            SweepMetric::GainFwd => "max composite gain, forward",
            SweepMetric::GainBwd => "max composite gain, backward",
            SweepMetric::FinalLoss => "final train loss",
            SweepMetric::FinalTestLoss => "final test loss",
            SweepMetric::DivergedAt => "divergence step",
        }
    }

    /// The spelling in the panel's drop-down.
    pub fn id(self) -> &'static str {
        match self {
            SweepMetric::GainFwd => "gain_fwd",
            SweepMetric::GainBwd => "gain_bwd",
            SweepMetric::FinalLoss => "loss",
            SweepMetric::FinalTestLoss => "test_loss",
            SweepMetric::DivergedAt => "diverged",
        }
    }

    pub fn parse(id: &str) -> Option<SweepMetric> {
        SweepMetric::ALL.into_iter().find(|m| m.id() == id)
    }

    fn value(self, v: &VariantSummary) -> Option<f64> {
        let x = match self {
            SweepMetric::GainFwd => v.max_gain_fwd,
            SweepMetric::GainBwd => v.max_gain_bwd,
            SweepMetric::FinalLoss => v.final_loss,
            SweepMetric::FinalTestLoss => v.final_test_loss,
            SweepMetric::DivergedAt => return v.diverged_at.map(|s| s as f64),
        };
        x.map(f64::from).filter(|x| x.is_finite())
    }
}

/// One square of a map.
#[derive(Clone, Debug, PartialEq)]
pub struct MapCell {
    /// Position in run order (opens that cell's experiment).
    pub cell: usize,
    /// What the square shows: the value, "diverged", "survived", or "…" while not run yet.
    pub text: String,
    /// CSS background colour.
    pub colour: String,
    /// Everything about the cell in one sentence (hover and screen readers).
    pub detail: String,
    /// The variant diverged in this cell (the square is outlined whatever it shows).
    pub diverged: bool,
}

/// One variant's map: rows are the y values (top first), columns the x values.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepMap {
    pub kind: ResidualKind,
    pub x_key: &'static str,
    pub y_key: Option<&'static str>,
    pub x_labels: Vec<String>,
    pub y_labels: Vec<String>,
    /// `rows x columns`, row-major.
    pub cells: Vec<Vec<MapCell>>,
}

/// The least gain drawn in full red.
const GAIN_SCALE_TOP: f64 = 100.0;
const NOT_RUN: &str = "#f3f4f6";
const DIVERGED: &str = "#7f1d1d";
const SURVIVED: &str = "#d1fae5";

/// White (at `lo`) to deep red (at `hi`) on a log scale; both ends positive.
pub fn log_colour(value: f64, lo: f64, hi: f64) -> String {
    let t = if hi > lo && value > 0.0 { ((value.ln() - lo.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0) } else { 0.0 };
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!("rgb({},{},{})", mix(255.0, 190.0), mix(255.0, 24.0), mix(255.0, 38.0))
}

/// Whether text on `colour` (from [`log_colour`]) should be white.
fn dark(colour: &str) -> bool {
    colour == DIVERGED || colour.strip_prefix("rgb(").and_then(|c| c.split(',').nth(1)?.parse::<u8>().ok()).is_some_and(|g| g < 120)
}

/// The text colour for a square's background.
pub fn ink(colour: &str) -> &'static str {
    if dark(colour) {
        "#ffffff"
    } else {
        "#111827"
    }
}

/// The maps of a sweep in progress or done, one per variant, on one colour scale so that HC
/// and mHC can be compared square by square.
pub fn sweep_maps(sweep: &Sweep, base: &Config, results: &[CellResult], metric: SweepMetric) -> Vec<SweepMap> {
    let (columns, rows) = sweep.shape();
    let values = results.iter().flat_map(|r| r.variants.iter().filter_map(|v| metric.value(v))).filter(|v| *v > 0.0);
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    // Gains: white at 1 and full red from 100 up at the earliest, so a gain of 1.02 never looks
    // alarming just because it is the largest on the map.
    let (lo, hi) = match metric {
        SweepMetric::GainFwd | SweepMetric::GainBwd => (1.0, hi.max(GAIN_SCALE_TOP)),
        _ => (lo, hi),
    };
    base.modes
        .iter()
        .map(|&kind| {
            let cells = (0..rows)
                .map(|y| {
                    (0..columns)
                        .map(|x| {
                            let index = y * columns + x;
                            let found = results.iter().find(|r| r.cell.index == index);
                            let summary = found.and_then(|r| r.variants.iter().find(|v| v.mode == kind));
                            map_cell(sweep, index, x, y, found, summary, metric, (lo, hi))
                        })
                        .collect()
                })
                .collect();
            SweepMap {
                kind,
                x_key: sweep.x.key,
                y_key: sweep.y.as_ref().map(|a| a.key),
                x_labels: sweep.x.values.clone(),
                y_labels: sweep.y.as_ref().map_or(vec![String::new()], |a| a.values.clone()),
                cells,
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn map_cell(
    sweep: &Sweep,
    index: usize,
    x: usize,
    y: usize,
    result: Option<&CellResult>,
    summary: Option<&VariantSummary>,
    metric: SweepMetric,
    (lo, hi): (f64, f64),
) -> MapCell {
    let values: Vec<String> = std::iter::once(&sweep.x.values[x]).chain(sweep.y.as_ref().map(|axis| &axis.values[y])).cloned().collect();
    let place = sweep.settings(&values).join(", ");
    let (Some(result), Some(v)) = (result, summary) else {
        return MapCell {
            cell: index, text: "…".into(), colour: NOT_RUN.into(), detail: format!("{place}: not run yet"), diverged: false
        };
    };
    let fate = match (v.diverged_at, v.diverged_block) {
        (Some(step), Some(block)) => format!("diverged at step {step} in block {block}"),
        (Some(step), None) => format!("diverged at step {step}"),
        _ => format!("survived {} steps", result.cell.config.steps),
    };
    let f = |x: Option<f32>| format_value(x.map(f64::from));
    let detail = format!(
        "{} at {place}: {fate}; max gain forward {}, backward {}; final loss {}, test loss {}, test accuracy {}; {:.1} s. Click to open this run.",
        mode_label(v.mode),
        f(v.max_gain_fwd),
        f(v.max_gain_bwd),
        f(v.final_loss),
        f(v.final_test_loss),
        f(v.final_test_acc),
        result.seconds
    );
    let (text, colour) = match (metric, metric.value(v)) {
        (SweepMetric::DivergedAt, None) => ("survived".to_string(), SURVIVED.to_string()),
        (SweepMetric::DivergedAt, Some(step)) => (format!("step {step}"), DIVERGED.to_string()),
        (_, Some(value)) => (format_value(Some(value)), log_colour(value, lo, hi)),
        (_, None) if !v.survived() => ("diverged".to_string(), DIVERGED.to_string()),
        (_, None) => ("–".to_string(), NOT_RUN.to_string()),
    };
    MapCell { cell: index, text, colour, detail, diverged: !v.survived() }
}

/// The whole sweep as CSV: the runner's `sweep` header and rows, in run order.
pub fn sweep_csv(sweep: &Sweep, results: &[CellResult]) -> String {
    let mut out = sweep.csv_header() + "\n";
    for line in results.iter().flat_map(|r| r.csv_lines(sweep)) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The whole sweep as JSON lines (the runner's `--out sweep.jsonl`).
pub fn sweep_jsonl(sweep: &Sweep, results: &[CellResult]) -> String {
    results.iter().flat_map(|r| r.json_lines(sweep)).map(|l| l + "\n").collect()
}

/// "cell 3 of 9 · about 1 min 20 s left": the remaining steps at the pace so far.
pub fn progress_line(cell: usize, cells: usize, steps_done: u64, steps_total: u64, elapsed_ms: f64) -> String {
    let mut line = format!("cell {} of {cells}", (cell + 1).min(cells));
    if steps_done > 0 && steps_total > steps_done && elapsed_ms > 0.0 {
        let left_s = (elapsed_ms / steps_done as f64 * (steps_total - steps_done) as f64 / 1000.0).ceil() as u64;
        let left = if left_s >= 60 { format!("{} min {} s", left_s / 60, left_s % 60) } else { format!("{left_s} s") };
        line.push_str(&format!(" · about {left} left"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::{Cell, VariantSummary};

    fn result(sweep: &Sweep, base: &Config, index: usize, gains: [f32; 3], diverged: Option<u64>) -> CellResult {
        let cell: Cell = sweep.cells(base).remove(index);
        let variants = ResidualKind::ALL
            .into_iter()
            .zip(gains)
            .map(|(kind, gain)| {
                let mut v = VariantSummary::new(kind);
                v.final_loss = Some(0.5);
                v.max_gain_fwd = (gain.is_finite()).then_some(gain);
                if kind == ResidualKind::Hc {
                    v.diverged_at = diverged;
                    v.diverged_block = diverged.map(|_| 3);
                }
                v
            })
            .collect();
        CellResult { cell, variants, seconds: 1.5 }
    }

    #[test]
    fn presets_are_sweeps_without_notices() {
        for preset in SWEEP_PRESETS {
            let (sweep, notices) = Sweep::from_query(preset.query);
            let (_, config_notices) = Config::from_query(preset.query);
            assert!(notices.is_empty() && config_notices.is_empty(), "{}: {notices:?} {config_notices:?}", preset.name);
            assert!(sweep.is_some(), "{}", preset.name);
        }
        let dial = Sweep::from_query(SWEEP_PRESETS[1].query).0.unwrap();
        assert_eq!(dial.x.values, ["1", "2", "3", "5", "10", "20"]);
        let streams = Sweep::from_query(SWEEP_PRESETS[2].query).0.unwrap();
        assert_eq!(streams.x.values.len(), 8);
    }

    #[test]
    fn maps_share_one_log_scale_and_mark_divergence_and_cells_not_run() {
        let (base, _) = Config::from_query("depth=2");
        let sweep = Sweep::from_query("sweep_x=depth:2,4&sweep_y=lr:0.01,0.1").0.unwrap();
        let results =
            vec![result(&sweep, &base, 0, [1.0, 1000.0, 1.0], None), result(&sweep, &base, 1, [1.0, f32::INFINITY, 1.0], Some(42))];
        let maps = sweep_maps(&sweep, &base, &results, SweepMetric::GainFwd);
        assert_eq!(maps.len(), 3);
        let hc = &maps[1];
        assert_eq!((hc.x_labels.clone(), hc.y_labels.clone()), (vec!["2".into(), "4".into()], vec!["0.01".into(), "0.1".into()]));
        assert_eq!(hc.cells[0][0].text, "1000.0");
        assert_eq!(hc.cells[0][0].colour, "rgb(190,24,38)", "the largest value is the darkest");
        assert_eq!(maps[2].cells[0][0].colour, "rgb(255,255,255)", "a gain of 1 is white");
        assert_eq!(hc.cells[0][1].text, "diverged");
        assert!(hc.cells[0][1].diverged && !hc.cells[0][0].diverged);
        assert!(hc.cells[0][1].detail.contains("diverged at step 42 in block 3"), "{}", hc.cells[0][1].detail);
        assert_eq!((hc.cells[1][0].text.as_str(), hc.cells[1][0].cell), ("…", 2));
        let small = vec![result(&sweep, &base, 0, [1.0, 10.0, 1.02], None)];
        let calm = sweep_maps(&sweep, &base, &small, SweepMetric::GainFwd);
        assert_eq!(calm[1].cells[0][0].colour, "rgb(223,140,147)", "10 is half way from 1 to 100");
        assert_eq!(calm[2].cells[0][0].colour, "rgb(255,254,254)", "1.02 is nearly white");
        assert!(hc.cells.iter().flatten().all(|c| !c.text.contains("NaN") && !c.detail.contains("NaN")));
        let fate = sweep_maps(&sweep, &base, &results, SweepMetric::DivergedAt);
        assert_eq!((fate[1].cells[0][0].text.as_str(), fate[1].cells[0][1].text.as_str()), ("survived", "step 42"));
        assert_eq!(ink(&fate[1].cells[0][1].colour), "#ffffff");
        assert_eq!(ink(&maps[2].cells[0][0].colour), "#111827");
        let halfway = log_colour(10f64.sqrt(), 1.0, 10.0);
        assert_eq!(halfway, "rgb(223,140,147)", "log scale: the geometric midpoint is half way");
    }

    #[test]
    fn exports_have_the_runner_columns_and_one_row_per_cell_and_variant() {
        let (base, _) = Config::from_query("");
        let sweep = Sweep::from_query("sweep_x=streams:2,4").0.unwrap();
        let results = vec![result(&sweep, &base, 0, [1.0, 3.0, 1.0], None), result(&sweep, &base, 1, [1.0, 7.0, 1.0], None)];
        let csv = sweep_csv(&sweep, &results);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 7);
        assert!(lines[0].starts_with("streams,mode,final_loss,"));
        assert!(lines[5].starts_with("4,hc,0.5,,,7,"), "{}", lines[5]);
        assert_eq!(sweep_jsonl(&sweep, &results).lines().count(), 6);
    }

    #[test]
    fn progress_says_which_cell_and_the_time_left() {
        assert_eq!(progress_line(0, 4, 0, 400, 0.0), "cell 1 of 4");
        assert_eq!(progress_line(2, 4, 200, 400, 50_000.0), "cell 3 of 4 · about 50 s left");
        assert_eq!(progress_line(1, 4, 100, 400, 40_000.0), "cell 2 of 4 · about 2 min 0 s left");
    }
}
