//! The page's plain-Rust state, testable natively: the control table (one row per config key,
//! generated against the config's own key table), the presets, the run history the charts
//! draw, smoothing, axis ticks and the metrics export. No DOM here.

use crate::config::{key_specs, Arch, Config, KeyKind, ResidualKind};
use crate::metrics::{StepMetrics, CSV_HEADER};
use serde::{Deserialize, Serialize};

/// Where a control sits on the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Data,
    Model,
    Variants,
    Optimiser,
    Mhc,
}

impl Group {
    pub const ALL: [Group; 5] = [Group::Data, Group::Model, Group::Variants, Group::Optimiser, Group::Mhc];
    pub fn title(self) -> &'static str {
        match self {
            Group::Data => "Data",
            Group::Model => "Model",
            Group::Variants => "Variants",
            Group::Optimiser => "Optimiser",
            Group::Mhc => "mHC",
        }
    }
}

/// How a key is edited.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Widget {
    /// A range slider over the key's range with this step (`log`: the slider moves log10(value)).
    Slider { step: f64, log: bool },
    /// A number box (for wide ranges like seed and steps).
    Number,
    /// A drop-down of the key's choices.
    Select,
    /// One checkbox per variant (`modes`).
    Toggles,
    /// The `text` task's text: the book, or one the user pastes (the key holds its hash).
    OwnText,
}

/// One control: config key, visible label (also its accessible name), group, widget, whether
/// it is shown up front (the rest sit under "More settings"), and one sentence on what it does
/// and what to expect when it moves (from [`help_text`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Control {
    pub key: &'static str,
    pub label: &'static str,
    pub group: Group,
    pub widget: Widget,
    pub common: bool,
    pub help: &'static str,
}

const fn c(key: &'static str, label: &'static str, group: Group, widget: Widget, common: bool) -> Control {
    Control { key, label, group, widget, common, help: help_text(key) }
}

/// What a key does and what to expect when it moves, in one sentence.
pub const fn help_text(key: &str) -> &'static str {
    match key.as_bytes() {
        b"arch" => "The network: an MLP of residual blocks, or a small GPT whose attention and MLP sublayers each get the variant's residual connection.",
        b"task" => "Which data the networks learn: 2-D point sets (with a decision-boundary picture), a random teacher network, modular addition (grokking), or text and digit puzzles for the transformer.",
        b"noise" => "How much the 2-D points scatter around their class; more noise makes the boundary harder and the test loss higher.",
        b"train_frac" => "Share of the data used for training; the rest is held out for the test loss and accuracy.",
        b"p" => "The modulus of modular addition: the task has p x p pairs and p classes, so larger p means more to learn.",
        b"seed" => "Fixes the data, the initial weights and the batches: the same seed gives the same run, bit for bit.",
        b"modes" => "Which variants train side by side on the same batches: plain residual, Hyper-Connections (HC) and mHC.",
        b"depth" => "Number of residual blocks; more blocks multiply more H_res matrices, so HC's composite gain grows with depth.",
        b"streams" => "Parallel residual streams n of HC and mHC (H_res is n x n); with n = 1 both are a plain residual network.",
        b"width" => "Features per stream; wider blocks learn more per step and cost more per step.",
        b"ffn" => "Hidden width of each block's MLP as a multiple of the width.",
        b"act" => "The nonlinearity inside each block's MLP.",
        b"batch" => "Examples per training step, the same for every variant; bigger batches give smoother curves and cost more per step.",
        b"optimizer" => "AdamW adapts each weight's step size; SGD with momentum takes plain gradient steps.",
        b"lr" => "Step size of the optimiser; higher learning rates train faster until HC's gain explodes or the loss diverges.",
        b"wd" => "Weight decay pulls weights toward zero every step (needed for grokking on modular addition).",
        b"beta1" => "Adam's momentum: how much of the previous gradient direction each step keeps.",
        b"beta2" => "Adam's second-moment memory: how long it remembers gradient sizes when scaling steps.",
        b"momentum" => "SGD's momentum: how much of the previous step each step keeps.",
        b"clip" => "Scales the gradient down when its norm exceeds this value (0 turns clipping off); it tames spikes but hides gain growth.",
        b"warmup" => "The learning rate rises linearly from zero over this many steps.",
        b"steps" => "How many steps a run trains before it stops.",
        b"eval_every" => "How often the test loss and accuracy are computed, in steps.",
        b"sinkhorn_iters" => "Sinkhorn-Knopp iterations that project mHC's H_res onto doubly-stochastic matrices; too few leave column sums off and the backward gain drifts from 1.",
        b"sinkhorn_eps" => "A small number added before each Sinkhorn division so that no sum is ever zero.",
        b"precision" => "f16 rounds the residual streams to half precision after every block, as in large-model training: a growing gain then overflows.",
        b"ctx" => "Transformer: tokens each example holds (its context); longer contexts see more text and cost more per step.",
        b"heads" => "Transformer: attention heads per layer, each looking at a width / heads slice; they must divide the width.",
        b"text" => "Task text: what it learns to write. 0 is Cicero's De finibus (book I); paste your own and the link carries its hash, so a shared link says when the text differs (the text stays in your browser).",
        _ => "",
    }
}
const fn slider(step: f64) -> Widget {
    Widget::Slider { step, log: false }
}

/// Every config key's control, in the order of DESIGN.md's table.
pub const CONTROLS: &[Control] = &[
    c("arch", "Architecture", Group::Model, Widget::Select, true),
    c("task", "Task", Group::Data, Widget::Select, true),
    c("noise", "Noise", Group::Data, slider(0.01), false),
    c("train_frac", "Training fraction", Group::Data, slider(0.05), false),
    c("p", "Modulus p", Group::Data, Widget::Number, false),
    c("seed", "Seed", Group::Data, Widget::Number, true),
    c("modes", "Variants", Group::Variants, Widget::Toggles, true),
    c("depth", "Depth", Group::Model, slider(1.0), true),
    c("streams", "Streams", Group::Model, slider(1.0), true),
    c("width", "Width", Group::Model, Widget::Number, true),
    c("ffn", "FFN multiplier", Group::Model, slider(1.0), false),
    c("act", "Activation", Group::Model, Widget::Select, false),
    c("batch", "Batch size", Group::Optimiser, Widget::Number, true),
    c("optimizer", "Optimiser", Group::Optimiser, Widget::Select, false),
    c("lr", "Learning rate", Group::Optimiser, Widget::Slider { step: 0.05, log: true }, true),
    c("wd", "Weight decay", Group::Optimiser, slider(0.01), false),
    c("beta1", "Adam beta1", Group::Optimiser, slider(0.01), false),
    c("beta2", "Adam beta2", Group::Optimiser, slider(0.005), false),
    c("momentum", "SGD momentum", Group::Optimiser, slider(0.01), false),
    c("clip", "Gradient clipping", Group::Optimiser, Widget::Number, false),
    c("warmup", "Warmup steps", Group::Optimiser, Widget::Number, false),
    c("steps", "Steps", Group::Optimiser, Widget::Number, false),
    c("eval_every", "Evaluate every", Group::Optimiser, Widget::Number, false),
    c("sinkhorn_iters", "Sinkhorn iterations", Group::Mhc, slider(1.0), true),
    c("sinkhorn_eps", "Sinkhorn epsilon", Group::Mhc, Widget::Number, false),
    c("precision", "Precision", Group::Mhc, Widget::Select, true),
    c("ctx", "Context length", Group::Model, Widget::Number, false),
    c("heads", "Attention heads", Group::Model, slider(1.0), false),
    c("text", "Text", Group::Data, Widget::OwnText, false),
];

/// How the page names its CPU backend (one thread of WebAssembly with 128-bit SIMD).
pub const CPU_NAME: &str = "CPU (WebAssembly SIMD, one thread)";

/// A sweep on the CPU takes cells up to this many multiply-adds per lockstep step (about 40 ms
/// a step in the browser here: the CPU backend does about 8e9 a second on one thread).
pub const CPU_SWEEP_BUDGET: f64 = 3e8;

/// Multiply-adds of one lockstep training step (forward and backward): the CPU's workload.
pub fn multiply_adds(config: &Config) -> f64 {
    let c = config.width as f64;
    let coefficients = (config.streams as f64 * c).powi(2);
    let ffn = 2.0 * c * c * config.ffn as f64 + coefficients;
    let (per_block, rows) = match config.arch {
        Arch::Mlp => (ffn, config.batch as f64),
        // Per position: qkv and the projection, scores and values over the context on
        // average half-way back, and a second set of coefficients.
        Arch::Transformer => (ffn + 4.0 * c * c + config.ctx as f64 * c + coefficients, config.batch as f64 * config.ctx as f64),
    };
    3.0 * config.depth as f64 * per_block * rows * config.modes.len() as f64
}

/// Half the work of `config` for a "try this" message after the GPU ran out of memory: the
/// batch halved down to 32 first, then depth down to 8, then width down to 16. `None` when
/// nothing is left to halve.
pub fn halved(config: &Config) -> Option<Config> {
    let mut smaller = config.clone();
    match () {
        _ if smaller.batch > 32 => smaller.batch /= 2,
        _ if smaller.depth > 8 => smaller.depth /= 2,
        _ if smaller.width > 16 => smaller.width /= 2,
        _ => return None,
    }
    Some(smaller)
}

/// The key's kind from the config's table.
pub fn kind_of(key: &str) -> Option<KeyKind> {
    key_specs().into_iter().find(|k| k.name == key).map(|k| k.kind)
}

/// A one-click experiment that tells part of the story.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    pub query: &'static str,
    pub what: &'static str,
}

/// The default transformer: text, 4 blocks of width 32, context 32.
pub const TINY_GPT: &str = "task=text&depth=4&width=32&ctx=32&batch=16&heads=4&lr=0.01";
/// A transformer where HC diverges and mHC does not (`tests/transformer.rs` checks it).
pub const TRANSFORMER_CRASH: &str = "task=text&depth=6&width=32&ctx=32&batch=16&heads=4&lr=0.03&precision=f16";

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "The story",
        query: "",
        what: "Default: losses alike, HC's composite gain climbs by orders of magnitude, mHC's stays at 1.",
    },
    Preset {
        name: "HC crashes",
        query: "depth=24&width=32&batch=32&lr=0.02&precision=f16",
        what: "Residual streams held in f16, higher learning rate, more depth: HC overflows and stops; residual and mHC train on.",
    },
    Preset {
        name: "Sinkhorn iterations",
        query: "sinkhorn_iters=2&lr=0.01",
        what: "Only 2 Sinkhorn iterations: mHC's rows still sum to 1 but its column sums drift, so the backward gain moves off 1.",
    },
    Preset {
        name: "Deep spiral",
        query: "task=spiral&depth=48&width=32&streams=4&noise=0.05&lr=0.005",
        what: "A 48-block network on the 2-D spiral with its decision boundary.",
    },
    Preset {
        name: "Grokking",
        query: "task=modadd&p=23&depth=4&width=64&lr=0.003&wd=1&train_frac=0.4&eval_every=20",
        what: "Modular addition: train accuracy first, test accuracy much later.",
    },
    Preset {
        name: "Tiny GPT",
        query: TINY_GPT,
        what: "A 4-block character-level transformer learning Cicero's Latin: HC's gain climbs into the hundreds while mHC's stays at 1.",
    },
    Preset {
        name: "HC crashes in a transformer",
        query: TRANSFORMER_CRASH,
        what: "A 6-block transformer with f16 streams and lr 0.03: HC overflows within 30 steps; residual and mHC learn on.",
    },
];

/// One step's per-block values: (step, stream RMS per block, gradient norm per block).
pub type BlockColumn = (f64, Vec<Option<f32>>, Vec<Option<f32>>);

/// One variant's scalar series, thinned as it grows so drawing stays cheap.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub mode: String,
    pub step: Vec<f64>,
    pub loss: Vec<Option<f32>>,
    pub acc: Vec<Option<f32>>,
    pub grad_norm: Vec<Option<f32>>,
    pub gain_fwd: Vec<Option<f32>>,
    pub gain_bwd: Vec<Option<f32>>,
    /// Evaluation points: (step, test loss, test accuracy).
    pub test: Vec<(f64, Option<f32>, Option<f32>)>,
    /// Per-block columns for the depth x step heatmaps.
    pub blocks: Vec<BlockColumn>,
    pub diverged: Option<(u64, u32)>,
}

/// Most points kept per series; past this every other point is dropped (the newest stays).
pub const MAX_POINTS: usize = 1500;
/// Most depth x step heatmap columns kept.
pub const MAX_COLUMNS: usize = 300;

fn thin<T>(v: &mut Vec<T>) {
    let mut i = 0;
    v.retain(|_| {
        i += 1;
        i % 2 == 1
    });
}

/// What the charts draw: one series per variant plus the latest full metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub config: String,
    pub series: Vec<Series>,
    #[serde(skip)]
    pub latest: Vec<StepMetrics>,
    /// Every row as read, for the metrics export (thinned like the series).
    #[serde(skip)]
    pub rows: Vec<StepMetrics>,
}

impl History {
    pub fn new(config: &Config) -> History {
        History {
            config: config.to_query(),
            series: config.modes.iter().map(|m| Series { mode: m.name().into(), ..Default::default() }).collect(),
            latest: Vec::new(),
            rows: Vec::new(),
        }
    }

    pub fn series(&self, kind: ResidualKind) -> Option<&Series> {
        self.series.iter().find(|s| s.mode == kind.name())
    }

    /// The last step recorded for a variant.
    pub fn last_step(&self, kind: ResidualKind) -> Option<u64> {
        self.series(kind).and_then(|s| s.step.last()).map(|&s| s as u64)
    }

    pub fn push(&mut self, rows: &[StepMetrics]) {
        for row in rows {
            let Some(s) = self.series.iter_mut().find(|s| s.mode == row.mode) else { continue };
            s.step.push(row.step as f64);
            s.loss.push(row.loss);
            s.acc.push(row.acc);
            s.grad_norm.push(row.grad_norm);
            s.gain_fwd.push(row.gain_fwd);
            s.gain_bwd.push(row.gain_bwd);
            if row.test_loss.is_some() || row.test_acc.is_some() {
                s.test.push((row.step as f64, row.test_loss, row.test_acc));
            }
            s.blocks.push((row.step as f64, row.stream_rms.clone(), row.grad_norm_blocks.clone()));
            if let Some(d) = row.divergence() {
                s.diverged.get_or_insert((d.step, d.block));
            }
            if s.step.len() > MAX_POINTS {
                thin(&mut s.step);
                thin(&mut s.loss);
                thin(&mut s.acc);
                thin(&mut s.grad_norm);
                thin(&mut s.gain_fwd);
                thin(&mut s.gain_bwd);
            }
            if s.blocks.len() > MAX_COLUMNS {
                thin(&mut s.blocks);
            }
            match self.latest.iter_mut().find(|m| m.mode == row.mode) {
                // Keep the last measured gains and coefficients when a row has none.
                Some(m) => {
                    let keep = m.clone();
                    *m = row.clone();
                    if m.gain_fwd_blocks.is_empty() {
                        m.gain_fwd_blocks = keep.gain_fwd_blocks;
                        m.gain_bwd_blocks = keep.gain_bwd_blocks;
                        m.h_pre = keep.h_pre;
                        m.h_post = keep.h_post;
                        m.h_res = keep.h_res;
                        m.ds_err_row = m.ds_err_row.or(keep.ds_err_row);
                        m.ds_err_col = m.ds_err_col.or(keep.ds_err_col);
                    }
                }
                None => self.latest.push(row.clone()),
            }
            self.rows.push(row.clone());
        }
        if self.rows.len() > MAX_POINTS * self.series.len().max(1) {
            thin(&mut self.rows);
        }
    }

    /// The metrics as CSV (the runner's `--metrics x.csv` columns).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(CSV_HEADER);
        out.push('\n');
        for row in &self.rows {
            out.push_str(&row.csv_row());
            out.push('\n');
        }
        out
    }

    /// The metrics as JSON lines (the runner's `--metrics x.jsonl` objects).
    pub fn to_jsonl(&self) -> String {
        self.rows.iter().filter_map(|r| serde_json::to_string(r).ok()).map(|l| l + "\n").collect()
    }
}

/// Exponential moving average with TensorBoard's debiasing; gaps (None) are carried over.
pub fn smooth(values: &[Option<f32>], weight: f64) -> Vec<Option<f64>> {
    let weight = weight.clamp(0.0, 0.999);
    let mut last = 0.0;
    let mut count = 0;
    values
        .iter()
        .map(|v| {
            let x = (*v)? as f64;
            if !x.is_finite() {
                return None;
            }
            last = last * weight + (1.0 - weight) * x;
            count += 1;
            Some(last / (1.0 - weight.powi(count)))
        })
        .collect()
}

/// About `count` round tick values covering `lo..=hi`.
pub fn linear_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() * step;
    (0..).map(|i| first + i as f64 * step).take_while(|t| *t <= hi + step * 1e-9).collect()
}

/// Powers of ten covering `lo..=hi` (both > 0), thinned to at most about `count`.
pub fn log_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if !(lo > 0.0 && hi >= lo && hi.is_finite()) {
        return vec![1.0];
    }
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let stride = ((b - a) as usize / count.max(1)).max(1);
    (a..=b).step_by(stride).map(|e| 10f64.powi(e)).collect()
}

/// A number for a label: short, never "NaN".
pub fn format_value(x: Option<f64>) -> String {
    match x {
        None => "–".into(),
        Some(v) if !v.is_finite() => "–".into(),
        Some(v) if v != 0.0 && (v.abs() >= 1e4 || v.abs() < 1e-3) => format!("{v:.2e}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.4}"),
    }
}

/// The variant's name as the page writes it.
pub fn mode_label(kind: ResidualKind) -> &'static str {
    match kind {
        ResidualKind::Residual => "Residual",
        ResidualKind::Hc => "HC",
        ResidualKind::Mhc => "mHC",
    }
}

/// Colour of a variant, the same in every chart and card.
pub fn color(kind: ResidualKind) -> &'static str {
    match kind {
        ResidualKind::Residual => "#6b7280",
        ResidualKind::Hc => "#e4572e",
        ResidualKind::Mhc => "#1b998b",
    }
}

/// Settings of the charts that survive a reload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChartSettings {
    pub smoothing: f64,
    pub loss_log: bool,
    pub block: usize,
    pub heatmap: HeatmapKind,
    /// Keep training while the tab is hidden (by default a hidden tab pauses).
    #[serde(default)]
    pub train_hidden: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeatmapKind {
    StreamRms,
    GradNorm,
}

impl Default for ChartSettings {
    fn default() -> Self {
        ChartSettings { smoothing: 0.6, loss_log: false, block: 0, heatmap: HeatmapKind::StreamRms, train_hidden: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_takes_batch_then_depth_then_width_and_stops() {
        let mut config = Config::default();
        let mut seen = Vec::new();
        while let Some(smaller) = halved(&config) {
            seen.push((smaller.batch, smaller.depth, smaller.width));
            config = smaller;
        }
        assert_eq!(seen, [(64, 24, 64), (32, 24, 64), (32, 12, 64), (32, 6, 64), (32, 6, 32), (32, 6, 16)]);
    }

    #[test]
    fn every_config_key_has_exactly_one_labelled_control() {
        let keys: Vec<_> = key_specs().into_iter().map(|k| k.name).collect();
        let controls: Vec<_> = CONTROLS.iter().map(|c| c.key).collect();
        assert_eq!(keys, controls, "controls follow the config table, in order");
        let mut labels: Vec<_> = CONTROLS.iter().map(|c| c.label).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), CONTROLS.len(), "labels are unique accessible names");
        for control in CONTROLS {
            let kind = kind_of(control.key).unwrap();
            let fits = matches!(
                (control.widget, kind),
                (Widget::Select, KeyKind::Choice(_))
                    | (Widget::Toggles, KeyKind::Modes)
                    | (Widget::Slider { .. } | Widget::Number, KeyKind::Float { .. } | KeyKind::Int { .. })
                    | (Widget::OwnText, KeyKind::Int { .. })
            );
            assert!(fits, "{} has a {:?} for a {:?}", control.key, control.widget, kind);
        }
        for control in CONTROLS {
            assert!(control.help.len() > 30 && control.help.ends_with('.'), "{} needs a one-sentence explanation", control.key);
        }
        for label in ["Depth", "Streams", "Learning rate", "Width", "Batch size", "Sinkhorn iterations", "Precision", "Seed", "Task"] {
            assert!(CONTROLS.iter().any(|c| c.label == label && c.common), "{label} is up front");
        }
    }

    #[test]
    fn presets_parse_without_notices() {
        for preset in PRESETS {
            let (_, notices) = Config::from_query(preset.query);
            assert!(notices.is_empty(), "{}: {notices:?}", preset.name);
        }
    }

    #[test]
    fn smoothing_tracks_a_constant_exactly_and_skips_gaps() {
        let s = smooth(&[Some(2.0), None, Some(2.0), Some(f32::NAN), Some(2.0)], 0.9);
        assert_eq!(s[0], Some(2.0));
        assert_eq!(s[1], None);
        assert!((s[4].unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(s[3], None);
        let raw = smooth(&[Some(1.0), Some(3.0)], 0.0);
        assert_eq!(raw, vec![Some(1.0), Some(3.0)]);
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(linear_ticks(0.0, 1.0, 5), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(log_ticks(0.9, 1500.0, 6), vec![0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]);
        assert_eq!(format_value(Some(f64::NAN)), "–");
        assert_eq!(format_value(Some(4231.7)), "4231.7");
        assert_eq!(format_value(Some(52_000.0)), "5.20e4");
    }

    #[test]
    fn history_thins_long_runs_and_exports_every_kept_row() {
        let (config, _) = Config::from_query("modes=mhc&depth=2");
        let program = crate::program::Program::new(&config, ResidualKind::Mhc, 0).unwrap();
        let block = vec![0.5f32; program.metrics.len as usize];
        let mut history = History::new(&config);
        for t in 0..(MAX_POINTS as u64 + 10) {
            history.push(&[StepMetrics::decode(&program, &block, t, t % 50 == 0, false)]);
        }
        let s = history.series(ResidualKind::Mhc).unwrap();
        assert!(s.step.len() <= MAX_POINTS && s.step.len() > MAX_POINTS / 2);
        assert_eq!(s.step.len(), s.loss.len());
        assert_eq!(*s.step.last().unwrap() as usize, MAX_POINTS + 9, "the newest point stays");
        assert!(s.blocks.len() <= MAX_COLUMNS);
        let csv = history.to_csv();
        assert_eq!(csv.lines().count(), history.rows.len() + 1);
        assert!(!csv.contains("NaN"));
        assert_eq!(history.to_jsonl().lines().count(), history.rows.len());
    }
}
