//! Sweeps (DESIGN.md sections 4 and 6): one or two config keys, each over a list of values.
//! Every cell of the grid is a lockstep run of `steps` steps of the experiment with those
//! values, summed up per variant in one row: the columns of `mhc-playground sweep` and of the
//! page's sweep CSV, so a shared sweep link reproduces the same table natively.

use crate::config::{echo, key_specs, query_values, Config, ConfigError, ConfigNotice, ResidualKind};
use crate::gpu::GpuContext;
use crate::metrics::StepMetrics;
use crate::trainer::{EngineError, Trainer};
use std::rc::Rc;

/// Most values on one axis.
pub const MAX_AXIS_VALUES: usize = 12;
/// Steps per cell when `sweep_steps` is not given, and its range.
pub const DEFAULT_STEPS: u32 = 200;
pub const MAX_STEPS: u32 = 100_000;
/// Gains are measured (and metrics read back) every this many steps of a cell, and at its
/// last step; `max_gain_*` is the largest of those readings.
pub const MEASURE_EVERY: u64 = 10;
/// Keys no sweep varies: the variants are the map's panels, and a cell's steps are `sweep_steps`.
const FIXED_KEYS: [&str; 2] = ["modes", "steps"];
/// The summary columns of every row, after the axis values.
pub const SUMMARY_COLUMNS: [&str; 10] = [
    "mode",
    "final_loss",
    "final_test_loss",
    "final_test_acc",
    "max_gain_fwd",
    "max_gain_bwd",
    "diverged_at",
    "diverged_block",
    "seconds",
    "cell",
];

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SweepError {
    #[error("{0}: expected KEY:VALUE,VALUE,... (e.g. depth:8,16,32)")]
    Malformed(String),
    #[error("`{0}` is not a setting")]
    UnknownKey(String),
    #[error("`{0}` cannot be swept: the variants are the map's panels and a cell's steps are sweep_steps")]
    FixedKey(&'static str),
    #[error("{key}={value}: {reason}")]
    BadValue { key: &'static str, value: String, reason: String },
    #[error("{key}: {count} values, at most {MAX_AXIS_VALUES}")]
    TooMany { key: &'static str, count: usize },
    #[error("{key}: {value} is given twice")]
    Duplicate { key: &'static str, value: String },
    #[error("both axes sweep {0}")]
    SameKey(&'static str),
    #[error("sweep_steps={0}: not a whole number in 1..{MAX_STEPS}")]
    Steps(String),
}

/// One axis: a config key and its values, each in the canonical spelling of share URLs.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: &'static str,
    pub values: Vec<String>,
}

/// The canonical spelling of `text` as a value of `key`, or why it is not one. A value
/// outside the key's range is refused rather than clamped: a cell must run what it is labelled.
fn canonical(key: &'static str, text: &str) -> Result<String, SweepError> {
    let mut config = Config::default();
    let bad = |reason: String| SweepError::BadValue { key, value: echo(text), reason };
    match config.set(key, text) {
        Ok(None) => Ok(config.get(key).unwrap_or_default()),
        Ok(Some(notice)) => {
            let reason = notice.message.split_once(": ").map_or(notice.message.clone(), |(_, why)| why.to_string());
            Err(bad(reason.replace(", clamped to", ", nearest allowed")))
        }
        Err(ConfigError::Invalid { reason, .. }) => Err(bad(reason)),
        Err(ConfigError::UnknownKey(name)) => Err(SweepError::UnknownKey(name)),
    }
}

impl Axis {
    /// A sweepable key of the config table.
    fn key(name: &str) -> Result<&'static str, SweepError> {
        let name = name.trim();
        let key = key_specs().into_iter().find(|k| k.name == name).map(|k| k.name).ok_or_else(|| SweepError::UnknownKey(echo(name)))?;
        match FIXED_KEYS.contains(&key) {
            true => Err(SweepError::FixedKey(key)),
            false => Ok(key),
        }
    }

    /// Reads `key` over the comma list `values`, every value exactly right.
    pub fn parse(key: &str, values: &str) -> Result<Axis, SweepError> {
        let mut problems = Vec::new();
        let axis = Axis::read(key, values, &mut problems)?;
        match problems.into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(axis),
        }
    }

    /// Reads an axis keeping every good value; each bad, repeated or surplus value is left out
    /// and reported. Fails on a bad key or when no value is left.
    fn read(key: &str, values: &str, problems: &mut Vec<SweepError>) -> Result<Axis, SweepError> {
        let key = Axis::key(key)?;
        let mut axis = Axis { key, values: Vec::new() };
        let listed: Vec<&str> = values.split(',').map(str::trim).filter(|v| !v.is_empty()).collect();
        for text in &listed {
            match canonical(key, text) {
                Ok(value) if axis.values.contains(&value) => problems.push(SweepError::Duplicate { key, value }),
                Ok(value) => axis.values.push(value),
                Err(problem) => problems.push(problem),
            }
        }
        if axis.values.len() > MAX_AXIS_VALUES {
            problems.push(SweepError::TooMany { key, count: axis.values.len() });
            axis.values.truncate(MAX_AXIS_VALUES);
        }
        if axis.values.is_empty() {
            return Err(problems.pop().unwrap_or_else(|| SweepError::Malformed(format!("{key}:{}", echo(values)))));
        }
        Ok(axis)
    }

    /// `key:v1,v2,...` as in a share URL.
    pub fn spelled(&self) -> String {
        format!("{}:{}", self.key, self.values.join(","))
    }
}

/// A grid of one or two axes and the steps each cell trains.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub x: Axis,
    pub y: Option<Axis>,
    pub steps: u32,
}

/// Splits `key:values` (URL) or `key=values` (command line).
fn split_axis(text: &str, separator: char) -> Result<(&str, &str), SweepError> {
    text.split_once(separator).ok_or_else(|| SweepError::Malformed(echo(text)))
}

impl Sweep {
    /// A sweep from exact axes (the command line's `--grid key=v1,v2`, at most two).
    pub fn new(axes: Vec<Axis>, steps: u32) -> Result<Sweep, SweepError> {
        if !(1..=MAX_STEPS).contains(&steps) {
            return Err(SweepError::Steps(steps.to_string()));
        }
        let mut axes = axes.into_iter();
        let x = axes.next().ok_or_else(|| SweepError::Malformed("no axis".into()))?;
        let y = axes.next();
        if axes.next().is_some() {
            return Err(SweepError::Malformed("more than two axes".into()));
        }
        if y.as_ref().is_some_and(|y| y.key == x.key) {
            return Err(SweepError::SameKey(x.key));
        }
        Ok(Sweep { x, y, steps })
    }

    /// Reads one `--grid key=v1,v2,...`.
    pub fn grid_axis(text: &str) -> Result<Axis, SweepError> {
        let (key, values) = split_axis(text, '=')?;
        Axis::parse(key, values)
    }

    /// The sweep in a query string or share URL (`sweep_x`, `sweep_y`, `sweep_steps`), if any.
    /// Never fails: a bad axis or value is left out and becomes a notice, like any other key.
    pub fn from_query(input: &str) -> (Option<Sweep>, Vec<ConfigNotice>) {
        let mut notices = Vec::new();
        let mut notice = |key: &str, message: String| notices.push(ConfigNotice { key: key.into(), message });
        let last = |key: &str| query_values(input, key).pop();
        let mut axes = Vec::new();
        for key in ["sweep_x", "sweep_y"] {
            let Some(value) = last(key) else { continue };
            let mut problems = Vec::new();
            let axis = value.map_err(|why| SweepError::Malformed(why.into())).and_then(|text| {
                let (name, values) = split_axis(&text, ':')?;
                Axis::read(name, values, &mut problems)
            });
            for problem in &problems {
                notice(key, format!("{key}: {problem}, left out"));
            }
            match axis {
                Ok(axis) if axes.iter().any(|a: &Axis| a.key == axis.key) => {
                    notice(key, format!("{key}: {}", SweepError::SameKey(axis.key)))
                }
                Ok(axis) => axes.push(axis),
                Err(problem) => notice(key, format!("{key}: {problem}, no sweep on this axis")),
            }
        }
        let steps = match last("sweep_steps") {
            None => DEFAULT_STEPS,
            Some(text) => match text.ok().and_then(|t| t.parse::<f64>().ok()).filter(|s| s.fract() == 0.0) {
                Some(s) if (1.0..=f64::from(MAX_STEPS)).contains(&s) => s as u32,
                Some(s) => {
                    let clamped = s.clamp(1.0, f64::from(MAX_STEPS)) as u32;
                    notice("sweep_steps", format!("sweep_steps={s}: out of range 1..{MAX_STEPS}, clamped to {clamped}"));
                    clamped
                }
                _ => {
                    notice("sweep_steps", format!("sweep_steps: not a whole number, kept {DEFAULT_STEPS}"));
                    DEFAULT_STEPS
                }
            },
        };
        let sweep = Sweep::new(axes, steps).ok();
        (sweep, notices)
    }

    /// `sweep_x=...&sweep_y=...&sweep_steps=...` (steps only when not the default).
    pub fn to_query(&self) -> String {
        let mut parts = vec![format!("sweep_x={}", self.x.spelled())];
        if let Some(y) = &self.y {
            parts.push(format!("sweep_y={}", y.spelled()));
        }
        if self.steps != DEFAULT_STEPS {
            parts.push(format!("sweep_steps={}", self.steps));
        }
        parts.join("&")
    }

    /// The whole share string: the experiment's keys, then the sweep's.
    pub fn share_query(&self, base: &Config) -> String {
        format!("{}&{}", base.to_query(), self.to_query())
    }

    /// The axes, x first.
    pub fn axes(&self) -> Vec<&Axis> {
        std::iter::once(&self.x).chain(self.y.as_ref()).collect()
    }

    /// `key=value` of each axis for a cell's values (x first), for labels and messages.
    pub fn settings(&self, values: &[String]) -> Vec<String> {
        self.axes().iter().zip(values).map(|(axis, value)| format!("{}={value}", axis.key)).collect()
    }

    /// Columns (x) and rows (y) of the grid; one row without a y axis.
    pub fn shape(&self) -> (usize, usize) {
        (self.x.values.len(), self.y.as_ref().map_or(1, |y| y.values.len()))
    }

    /// Every cell's experiment, row by row (y outer, x inner).
    pub fn cells(&self, base: &Config) -> Vec<Cell> {
        let (columns, rows) = self.shape();
        let mut cells = Vec::with_capacity(columns * rows);
        for y in 0..rows {
            for x in 0..columns {
                let mut config = base.clone();
                let mut values = vec![self.x.values[x].clone()];
                // Canonical values of sweepable keys: setting them cannot fail.
                let _ = config.set(self.x.key, &self.x.values[x]);
                if let Some(axis) = &self.y {
                    let _ = config.set(axis.key, &axis.values[y]);
                    values.push(axis.values[y].clone());
                }
                config.steps = self.steps;
                cells.push(Cell { index: cells.len(), x, y, values, config });
            }
        }
        cells
    }

    /// The CSV header: the axis keys, then [`SUMMARY_COLUMNS`].
    pub fn csv_header(&self) -> String {
        let axes = self.axes().into_iter().map(|a| a.key);
        axes.chain(SUMMARY_COLUMNS).collect::<Vec<_>>().join(",")
    }
}

/// One cell of the grid: its place, its axis values and the experiment it runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Position in run order.
    pub index: usize,
    pub x: usize,
    pub y: usize,
    /// The axis values, x first.
    pub values: Vec<String>,
    pub config: Config,
}

/// One variant's outcome in one cell. `None` is null: not measured, or not finite.
#[derive(Clone, Debug, PartialEq)]
pub struct VariantSummary {
    pub mode: ResidualKind,
    pub final_loss: Option<f32>,
    pub final_test_loss: Option<f32>,
    pub final_test_acc: Option<f32>,
    pub max_gain_fwd: Option<f32>,
    pub max_gain_bwd: Option<f32>,
    pub diverged_at: Option<u64>,
    pub diverged_block: Option<u32>,
    /// A measured gain was not finite: the maximum is then reported as null, never dropped.
    gain_not_finite: bool,
}

impl VariantSummary {
    pub fn new(mode: ResidualKind) -> VariantSummary {
        VariantSummary {
            mode,
            final_loss: None,
            final_test_loss: None,
            final_test_acc: None,
            max_gain_fwd: None,
            max_gain_bwd: None,
            diverged_at: None,
            diverged_block: None,
            gain_not_finite: false,
        }
    }

    /// Takes in one metrics row of this variant (rows come in step order).
    pub fn absorb(&mut self, row: &StepMetrics) {
        self.final_loss = row.loss;
        if row.test_loss.is_some() || row.test_acc.is_some() {
            self.final_test_loss = row.test_loss;
            self.final_test_acc = row.test_acc;
        }
        if !row.gain_fwd_blocks.is_empty() {
            match (row.gain_fwd, row.gain_bwd) {
                (Some(fwd), Some(bwd)) => {
                    self.max_gain_fwd = Some(self.max_gain_fwd.map_or(fwd, |m| m.max(fwd)));
                    self.max_gain_bwd = Some(self.max_gain_bwd.map_or(bwd, |m| m.max(bwd)));
                }
                _ => self.gain_not_finite = true,
            }
            if self.gain_not_finite {
                self.max_gain_fwd = None;
                self.max_gain_bwd = None;
            }
        }
        if let (None, Some(d)) = (self.diverged_at, row.divergence()) {
            self.diverged_at = Some(d.step);
            self.diverged_block = Some(d.block);
        }
    }

    /// Whether the variant trained through every step of its cell.
    pub fn survived(&self) -> bool {
        self.diverged_at.is_none()
    }
}

/// A finished cell: every variant's summary and the cell's wall time (all variants in lockstep).
#[derive(Clone, Debug, PartialEq)]
pub struct CellResult {
    pub cell: Cell,
    pub variants: Vec<VariantSummary>,
    pub seconds: f64,
}

/// One field of a row: its column, its CSV text (empty for null) and its JSON value.
type Field = (&'static str, String, serde_json::Value);

/// A field from text: JSON gets a number where the text reads as one, else a string.
fn text_field(column: &'static str, text: &str) -> Field {
    let json = match (text.parse::<i64>(), text.parse::<f64>()) {
        (Ok(whole), _) => serde_json::json!(whole),
        (_, Ok(v)) if v.is_finite() => serde_json::json!(v),
        _ => serde_json::json!(text),
    };
    (column, text.to_string(), json)
}

/// A field from a number that may be null; written in its shortest round-trip spelling.
fn number_field(column: &'static str, value: Option<impl ToString>) -> Field {
    match value {
        Some(v) => text_field(column, &v.to_string()),
        None => (column, String::new(), serde_json::Value::Null),
    }
}

impl CellResult {
    /// One field list per variant, in [`Sweep::csv_header`] order.
    fn records(&self, sweep: &Sweep) -> Vec<Vec<Field>> {
        let seconds = format!("{:.3}", self.seconds);
        self.variants
            .iter()
            .map(|v| {
                let mut record: Vec<Field> =
                    sweep.axes().iter().zip(&self.cell.values).map(|(axis, value)| text_field(axis.key, value)).collect();
                record.extend([
                    (SUMMARY_COLUMNS[0], v.mode.name().to_string(), serde_json::json!(v.mode.name())),
                    number_field(SUMMARY_COLUMNS[1], v.final_loss),
                    number_field(SUMMARY_COLUMNS[2], v.final_test_loss),
                    number_field(SUMMARY_COLUMNS[3], v.final_test_acc),
                    number_field(SUMMARY_COLUMNS[4], v.max_gain_fwd),
                    number_field(SUMMARY_COLUMNS[5], v.max_gain_bwd),
                    number_field(SUMMARY_COLUMNS[6], v.diverged_at),
                    number_field(SUMMARY_COLUMNS[7], v.diverged_block),
                    text_field(SUMMARY_COLUMNS[8], &seconds),
                    number_field(SUMMARY_COLUMNS[9], Some(self.cell.index)),
                ]);
                record
            })
            .collect()
    }

    /// CSV lines, one per variant (empty where null).
    pub fn csv_lines(&self, sweep: &Sweep) -> Vec<String> {
        self.records(sweep).into_iter().map(|record| record.into_iter().map(|(_, text, _)| text).collect::<Vec<_>>().join(",")).collect()
    }

    /// JSON lines, one object per variant with the CSV's columns in the same order.
    pub fn json_lines(&self, sweep: &Sweep) -> Vec<String> {
        self.records(sweep)
            .into_iter()
            .map(|record| {
                let fields: Vec<String> =
                    record.into_iter().map(|(column, _, json)| format!("{}:{json}", serde_json::Value::from(column))).collect();
                format!("{{{}}}", fields.join(","))
            })
            .collect()
    }
}

/// One cell being trained: the caller drives it step by step (the page in slices, the runner
/// in a loop) and reads metrics back when a step says they are due.
pub struct CellRun {
    pub trainer: Trainer,
    summaries: Vec<VariantSummary>,
}

impl CellRun {
    pub fn new(config: &Config, gpu: Option<Rc<GpuContext>>) -> Result<CellRun, EngineError> {
        let trainer = Trainer::new(config, gpu)?;
        let summaries = config.modes.iter().map(|&m| VariantSummary::new(m)).collect();
        Ok(CellRun { trainer, summaries })
    }

    pub fn steps_done(&self) -> u64 {
        self.trainer.next_step
    }

    /// Every step run, or every variant stopped.
    pub fn finished(&self) -> bool {
        self.trainer.all_stopped() || self.trainer.next_step >= u64::from(self.trainer.config.steps)
    }

    /// Submits the next step (evaluating at the last one); true when its metrics must be read
    /// with [`CellRun::collect`] before the next step.
    pub fn submit_step(&mut self) -> bool {
        let t = self.trainer.next_step;
        let last = t + 1 >= u64::from(self.trainer.config.steps);
        let due = last || (t + 1).is_multiple_of(MEASURE_EVERY);
        self.trainer.submit_with(last, due);
        due
    }

    /// Reads the last step's metrics into the summaries.
    pub async fn collect(&mut self) -> Result<(), EngineError> {
        for row in self.trainer.read_metrics().await? {
            if let Some(summary) = self.summaries.iter_mut().find(|s| s.mode.name() == row.mode) {
                summary.absorb(&row);
            }
        }
        Ok(())
    }

    pub fn summaries(&self) -> &[VariantSummary] {
        &self.summaries
    }

    pub fn into_summaries(self) -> Vec<VariantSummary> {
        self.summaries
    }
}

/// Trains one cell to the end and returns its summaries (the runner's loop; the page slices).
pub async fn run_cell(config: &Config, gpu: Option<Rc<GpuContext>>) -> Result<Vec<VariantSummary>, EngineError> {
    let mut run = CellRun::new(config, gpu)?;
    while !run.finished() {
        if run.submit_step() {
            run.collect().await?;
        }
    }
    Ok(run.into_summaries())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_sweep_url_round_trips_and_the_experiment_ignores_its_keys() {
        let url = "https://x.test/?depth=8&sweep_x=depth:8,16,32&sweep_y=streams:2,4,8&sweep_steps=50";
        let (sweep, notices) = Sweep::from_query(url);
        assert!(notices.is_empty(), "{notices:?}");
        let sweep = sweep.unwrap();
        assert_eq!(sweep.x, Axis { key: "depth", values: vec!["8".into(), "16".into(), "32".into()] });
        assert_eq!(sweep.y.as_ref().unwrap().values, ["2", "4", "8"]);
        assert_eq!(sweep.steps, 50);
        assert_eq!(sweep.to_query(), "sweep_x=depth:8,16,32&sweep_y=streams:2,4,8&sweep_steps=50");
        let (config, config_notices) = Config::from_query(url);
        assert!(config_notices.is_empty(), "{config_notices:?}");
        let again = Sweep::from_query(&sweep.share_query(&config)).0.unwrap();
        assert_eq!(again, sweep);
        assert_eq!(Sweep::from_query("depth=8").0, None);
    }

    #[test]
    fn values_are_canonical_and_bad_ones_are_left_out_with_a_notice() {
        let (sweep, notices) = Sweep::from_query("sweep_x=lr:1e-2,0.0100,abc,5&sweep_steps=0");
        let sweep = sweep.unwrap();
        assert_eq!(sweep.x.values, ["0.01"], "1e-2 and 0.0100 are one value; abc and 5 are refused");
        assert_eq!(sweep.steps, 1);
        let text: Vec<_> = notices.iter().map(|n| n.message.as_str()).collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text[0].contains("given twice"), "{text:?}");
        assert!(text[1].contains("lr=abc: not a number"), "{text:?}");
        assert!(text[2].contains("lr=5: out of range"), "{text:?}");
        assert!(text[3].contains("sweep_steps=0"), "{text:?}");
        let (none, notices) = Sweep::from_query("sweep_x=modes:hc&sweep_y=bogus:1");
        assert_eq!(none, None);
        assert_eq!(notices.len(), 2);
        assert!(notices[0].message.contains("cannot be swept"));
        assert!(notices[1].message.contains("`bogus` is not a setting"));
    }

    #[test]
    fn strict_axes_refuse_what_urls_repair() {
        assert!(matches!(Sweep::grid_axis("depth=8,999"), Err(SweepError::BadValue { key: "depth", .. })));
        assert!(matches!(Sweep::grid_axis("depth=8,8"), Err(SweepError::Duplicate { .. })));
        assert!(matches!(Sweep::grid_axis("depth"), Err(SweepError::Malformed(_))));
        assert!(matches!(Sweep::grid_axis("steps=1,2"), Err(SweepError::FixedKey("steps"))));
        let many = (1..=13).map(|d| d.to_string()).collect::<Vec<_>>().join(",");
        assert!(matches!(Sweep::grid_axis(&format!("depth={many}")), Err(SweepError::TooMany { count: 13, .. })));
        let depth = Sweep::grid_axis("depth=2,4").unwrap();
        assert_eq!(Sweep::new(vec![depth.clone(), depth.clone()], 10), Err(SweepError::SameKey("depth")));
        assert_eq!(Sweep::new(vec![depth], 0), Err(SweepError::Steps("0".into())));
    }

    #[test]
    fn cells_cover_the_grid_row_by_row_with_the_sweep_steps() {
        let sweep = Sweep::new(vec![Sweep::grid_axis("depth=2,3").unwrap(), Sweep::grid_axis("precision=f32,f16").unwrap()], 7).unwrap();
        let base = Config::from_query("width=8&lr=0.01").0;
        let cells = sweep.cells(&base);
        let got: Vec<_> = cells.iter().map(|c| (c.index, c.x, c.y, c.config.depth, c.config.precision.name(), c.config.steps)).collect();
        assert_eq!(got, [(0, 0, 0, 2, "f32", 7), (1, 1, 0, 3, "f32", 7), (2, 0, 1, 2, "f16", 7), (3, 1, 1, 3, "f16", 7)]);
        assert!(cells.iter().all(|c| c.config.width == 8 && c.config.lr == 0.01));
        assert_eq!(sweep.csv_header(), "depth,precision,mode,final_loss,final_test_loss,final_test_acc,max_gain_fwd,max_gain_bwd,diverged_at,diverged_block,seconds,cell");
    }

    #[test]
    fn a_cell_on_the_cpu_summarises_every_variant_and_writes_its_rows() {
        let sweep = Sweep::new(vec![Sweep::grid_axis("depth=3").unwrap()], 12).unwrap();
        let base = Config::from_query("task=teacher&width=8&streams=2&batch=8&ffn=2&lr=0.01").0;
        let cell = sweep.cells(&base).remove(0);
        let variants = pollster::block_on(run_cell(&cell.config, None)).unwrap();
        assert_eq!(variants.iter().map(|v| v.mode).collect::<Vec<_>>(), ResidualKind::ALL);
        for v in &variants {
            assert!(v.final_loss.is_some_and(|l| l > 0.0) && v.final_test_loss.is_some() && v.final_test_acc.is_some(), "{v:?}");
            assert!(v.max_gain_fwd.is_some_and(|g| g >= 1.0 - 1e-3) && v.survived(), "{v:?}");
        }
        let result = CellResult { cell, variants, seconds: 0.25 };
        let lines = result.csv_lines(&sweep);
        assert_eq!(lines.len(), 3);
        assert!(lines[2].starts_with("3,mhc,") && lines[2].ends_with(",,,0.250,0"), "{}", lines[2]);
        let loss = result.variants[2].final_loss.unwrap();
        assert_eq!(lines[2].split(',').nth(2), Some(loss.to_string().as_str()), "shortest f32 spelling");
        let json: serde_json::Value = serde_json::from_str(&result.json_lines(&sweep)[1]).unwrap();
        assert_eq!(json["depth"], 3);
        assert_eq!(json["seconds"], 0.25);
        assert_eq!(json["mode"], "hc");
        assert_eq!(json["diverged_at"], serde_json::Value::Null);
    }

    #[test]
    fn a_non_finite_gain_makes_the_maximum_null_and_divergence_is_kept() {
        let (config, _) = Config::from_query("modes=hc&depth=2&streams=2");
        let program = crate::program::Program::new(&config, ResidualKind::Hc, 0).unwrap();
        let mut block = vec![0.5f32; program.metrics.len as usize];
        block[crate::kernels::slot::DIVERGED_STEP as usize] = -1.0;
        let mut summary = VariantSummary::new(ResidualKind::Hc);
        summary.absorb(&StepMetrics::decode(&program, &block, 9, false, true));
        assert_eq!(summary.max_gain_fwd, Some(0.5));
        block[program.metrics.gains as usize] = f32::INFINITY;
        block[crate::kernels::slot::DIVERGED_STEP as usize] = 12.0;
        block[crate::kernels::slot::DIVERGED_BLOCK as usize] = 1.0;
        summary.absorb(&StepMetrics::decode(&program, &block, 19, false, true));
        block[program.metrics.gains as usize] = 0.5;
        summary.absorb(&StepMetrics::decode(&program, &block, 29, false, true));
        assert_eq!((summary.max_gain_fwd, summary.max_gain_bwd), (None, None));
        assert_eq!((summary.diverged_at, summary.diverged_block), (Some(12), Some(1)));
        assert!(!summary.survived());
    }
}
