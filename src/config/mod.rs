//! Experiment configuration: the one flat struct behind the page URL, the command line and
//! checkpoint metadata (DESIGN.md section 4).
//!
//! Every key lives in one declarative table, `KEYS`: its name, default, range or allowed
//! values, and how to read and write its field. Reading a share URL, writing one, the strict
//! command-line setter and the tests all walk that table, so a new key is one new row.

use std::fmt;

mod query;

pub use query::{echo, query_values};
use query::{group_pairs, percent_decode, query_part, shorten};

use serde::{Deserialize, Serialize};

/// Version of the key set; written as `v=` into every query string.
pub const SCHEMA_VERSION: u32 = 1;

/// Inputs are cut at this length: no real share link comes close, and it bounds the work and
/// the number of notices a hostile string can cause.
const MAX_INPUT_BYTES: usize = 64 * 1024;
/// Longest value any key accepts (the longest real one is `modes=residual,hc,mhc`).
const MAX_VALUE_BYTES: usize = 256;
/// How much of a user-supplied key or value a notice echoes back.
const ECHO_CHARS: usize = 24;
/// Caps on [`notices_line`]: the whole line, each notice in it, and room kept for its tail.
const MAX_LINE_CHARS: usize = 300;
const MAX_NOTICE_CHARS: usize = 120;
const TAIL_CHARS: usize = 20;
/// Keys of a sweep (DESIGN.md section 4) that share the experiment's query string.
pub const SWEEP_KEYS: [&str; 3] = ["sweep_x", "sweep_y", "sweep_steps"];
/// The `teacher` task's input features and classes (DESIGN.md section 2).
const TEACHER_INPUTS: usize = 16;
const TEACHER_CLASSES: usize = 10;

/// Declares an enum whose values are spelled in URLs as the given lowercase names, with
/// `ALL`, `name` and `parse`. Serde uses the same spellings.
macro_rules! url_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $url:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in canonical order.
            pub const ALL: [Self; [$($url),+].len()] = [$(Self::$variant),+];
            /// URL spellings, in the order of `ALL`.
            const NAMES: [&'static str; [$($url),+].len()] = [$($url),+];

            /// The spelling used in URLs, on the command line and in checkpoint metadata.
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $url),+ }
            }

            /// Reads a URL spelling; ASCII case is ignored because people type these by hand.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|value| value.name().eq_ignore_ascii_case(s))
            }
        }
    };
}

url_enum! {
    /// The dataset (DESIGN.md section 2).
    Task { Spiral = "spiral", Circles = "circles", Xor = "xor", Gauss = "gauss",
           Teacher = "teacher", Modadd = "modadd",
           Text = "text", Reverse = "reverse", Sort = "sort", Add = "add" }
}
url_enum! {
    /// The network: the MLP of DESIGN.md section 1 or the transformer of section 1b.
    Arch { Mlp = "mlp", Transformer = "transformer" }
}
url_enum! {
    /// How blocks combine their output with the residual stream(s) (DESIGN.md section 1).
    ResidualKind { Residual = "residual", Hc = "hc", Mhc = "mhc" }
}
url_enum! {
    /// The FFN's nonlinearity.
    Activation { Gelu = "gelu", Relu = "relu", Tanh = "tanh" }
}
url_enum! {
    /// The optimizer shared by every variant.
    OptimizerKind { AdamW = "adamw", Sgd = "sgd" }
}
url_enum! {
    /// Storage precision of the residual streams between blocks (the math stays f32).
    Precision { F32 = "f32", F16 = "f16" }
}

impl Task {
    /// The classic 2-D point sets, which have a noise setting and a decision-boundary plot.
    pub fn is_2d(self) -> bool {
        matches!(self, Task::Spiral | Task::Circles | Task::Xor | Task::Gauss)
    }

    /// The transformer's tasks: sequences of tokens (`src/tokens.rs`).
    pub fn is_tokens(self) -> bool {
        matches!(self, Task::Text | Task::Reverse | Task::Sort | Task::Add)
    }

    /// The architecture that trains on this task.
    pub fn arch(self) -> Arch {
        if self.is_tokens() {
            Arch::Transformer
        } else {
            Arch::Mlp
        }
    }
}

impl Arch {
    /// The task an experiment switched to this architecture starts with.
    pub fn default_task(self) -> Task {
        match self {
            Arch::Mlp => Task::Spiral,
            Arch::Transformer => Task::Text,
        }
    }
}

/// The whole experiment; field meanings, defaults and ranges are those of `KEYS` and
/// DESIGN.md section 4.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub arch: Arch,
    pub task: Task,
    /// Label noise of the 2-D tasks.
    pub noise: f32,
    /// Share of the data used for training; the rest is the test split.
    pub train_frac: f32,
    /// Modulus of `modadd`.
    pub p: u32,
    pub seed: u32,
    /// Variants trained in lockstep: non-empty, no duplicates, canonical order.
    pub modes: Vec<ResidualKind>,
    pub depth: u32,
    /// Residual streams of `hc` and `mhc` (residual always has one).
    pub streams: u32,
    pub width: u32,
    /// FFN hidden width multiplier.
    pub ffn: u32,
    pub act: Activation,
    pub batch: u32,
    pub optimizer: OptimizerKind,
    pub lr: f32,
    pub wd: f32,
    pub beta1: f32,
    pub beta2: f32,
    /// SGD momentum.
    pub momentum: f32,
    /// Global gradient-norm clip; 0 turns clipping off.
    pub clip: f32,
    /// Linear learning-rate warmup, in steps.
    pub warmup: u32,
    pub steps: u32,
    pub eval_every: u32,
    pub sinkhorn_iters: u32,
    pub sinkhorn_eps: f32,
    pub precision: Precision,
    /// Transformer: tokens per example (its context length).
    pub ctx: u32,
    /// Transformer: attention heads; they divide `width`.
    pub heads: u32,
    /// The `text` task's text: 0 for the built-in book, else the hash of a user's own text
    /// (`tokens::text_id`), so a link says when the text differs.
    pub text: u32,
}

/// How one key's value is stored, validated and written.
enum Field {
    /// An `f32` clamped into `min..=max`.
    Float { default: f32, min: f32, max: f32, get: fn(&Config) -> f32, put: fn(&mut Config, f32) },
    /// A `u32` clamped into `min..=max`. A key whose range is all of `u32` cannot be clamped,
    /// so for it a value outside `u32` is malformed instead.
    Int { default: u32, min: u32, max: u32, get: fn(&Config) -> u32, put: fn(&mut Config, u32) },
    /// One name out of `names`; `put` returns false for an unknown name.
    Choice { default: &'static str, names: &'static [&'static str], get: fn(&Config) -> &'static str, put: fn(&mut Config, &str) -> bool },
    /// The comma list of variants trained in lockstep.
    Modes { default: &'static [ResidualKind] },
}

/// One row of the key table.
struct Key {
    name: &'static str,
    field: Field,
}

/// A `Float` or `Int` row: key (also the field's name), default, min, max.
macro_rules! number_key {
    ($kind:ident, $name:ident, $default:expr, $min:expr, $max:expr) => {
        Key {
            name: stringify!($name),
            field: Field::$kind {
                default: $default,
                min: $min,
                max: $max,
                get: |config| config.$name,
                put: |config, value| config.$name = value,
            },
        }
    };
}
/// A `Choice` row: key (also the field's name), the field's enum type, default.
macro_rules! choice_key {
    ($name:ident, $type:ident, $default:literal) => {
        Key {
            name: stringify!($name),
            field: Field::Choice {
                default: $default,
                names: &$type::NAMES,
                get: |config| config.$name.name(),
                put: |config, text| $type::parse(text).map(|value| config.$name = value).is_some(),
            },
        }
    };
}

/// Every key, in the order of DESIGN.md's table (which is also the order `to_query` writes).
#[rustfmt::skip]
static KEYS: &[Key] = &[
    //                 key             default  min   max
    choice_key!(arch, Arch, "mlp"),
    choice_key!(task, Task, "spiral"),
    number_key!(Float, noise,          0.1,     0.0,  0.5),
    number_key!(Float, train_frac,     0.5,     0.1,  0.9),
    number_key!(Int,   p,              97,      5,    257),
    number_key!(Int,   seed,           1,       0,    u32::MAX),
    Key { name: "modes", field: Field::Modes { default: &ResidualKind::ALL } },
    number_key!(Int,   depth,          24,      1,    256),
    number_key!(Int,   streams,        4,       1,    8),
    number_key!(Int,   width,          64,      4,    1024),
    number_key!(Int,   ffn,            4,       1,    8),
    choice_key!(act, Activation, "gelu"),
    number_key!(Int,   batch,          128,     1,    4096),
    choice_key!(optimizer, OptimizerKind, "adamw"),
    number_key!(Float, lr,             0.003,   1e-5, 1.0),
    number_key!(Float, wd,             0.0,     0.0,  1.0),
    number_key!(Float, beta1,          0.9,     0.0,  0.9999),
    number_key!(Float, beta2,          0.95,    0.0,  0.9999),
    number_key!(Float, momentum,       0.9,     0.0,  0.999),
    number_key!(Float, clip,           0.0,     0.0,  100.0),
    number_key!(Int,   warmup,         0,       0,    100_000),
    number_key!(Int,   steps,          2000,    1,    1_000_000),
    number_key!(Int,   eval_every,     50,      1,    100_000),
    number_key!(Int,   sinkhorn_iters, 20,      1,    100),
    number_key!(Float, sinkhorn_eps,   1e-6,    0.0,  0.01),
    choice_key!(precision, Precision, "f32"),
    number_key!(Int,   ctx,            64,      4,    crate::kernels::ATTENTION_MAX_CTX),
    number_key!(Int,   heads,          4,       1,    16),
    number_key!(Int,   text,           0,       0,    u32::MAX),
];

/// The kind of value a key holds, for tools that build controls from the key table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyKind {
    Float {
        min: f32,
        max: f32,
    },
    Int {
        min: u32,
        max: u32,
    },
    /// One of these URL spellings.
    Choice(&'static [&'static str]),
    /// A non-empty comma list of variants.
    Modes,
}

/// One key of the table as seen from outside: its name and kind, in DESIGN.md's order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeySpec {
    pub name: &'static str,
    pub kind: KeyKind,
}

/// Every key of the table (the page generates its controls from this).
pub fn key_specs() -> Vec<KeySpec> {
    KEYS.iter()
        .map(|key| KeySpec {
            name: key.name,
            kind: match key.field {
                Field::Float { min, max, .. } => KeyKind::Float { min, max },
                Field::Int { min, max, .. } => KeyKind::Int { min, max },
                Field::Choice { names, .. } => KeyKind::Choice(names),
                Field::Modes { .. } => KeyKind::Modes,
            },
        })
        .collect()
}

/// Whether a list value may be partly repaired (URLs) or must be exactly right (`set`).
#[derive(Clone, Copy, PartialEq)]
enum Strictness {
    Lenient,
    Strict,
}

/// Outcome of reading one value: `Ok(None)` taken as is, `Ok(Some(what))` taken after an
/// adjustment, `Err(why)` rejected with the field left untouched.
type ReadResult = Result<Option<String>, String>;

impl Key {
    fn find(name: &str) -> Option<&'static Key> {
        KEYS.iter().find(|key| key.name == name)
    }

    fn reset(&self, config: &mut Config) {
        match self.field {
            Field::Float { default, put, .. } => put(config, default),
            Field::Int { default, put, .. } => put(config, default),
            Field::Choice { default, put, .. } => {
                put(config, default);
            }
            Field::Modes { default } => config.modes = default.to_vec(),
        }
    }

    fn is_default(&self, config: &Config) -> bool {
        match self.field {
            Field::Float { default, get, .. } => get(config) == default,
            Field::Int { default, get, .. } => get(config) == default,
            Field::Choice { default, get, .. } => get(config) == default,
            Field::Modes { default } => config.modes == default,
        }
    }

    /// The value as written in a query string. Every possible output is made of letters,
    /// digits, '.', '-' and ',', so nothing needs percent-encoding.
    fn format(&self, config: &Config) -> String {
        match self.field {
            Field::Float { get, .. } => get(config).to_string(),
            Field::Int { get, .. } => get(config).to_string(),
            Field::Choice { get, .. } => get(config).to_string(),
            Field::Modes { .. } => config.modes.iter().map(|kind| kind.name()).collect::<Vec<_>>().join(","),
        }
    }

    fn read(&self, config: &mut Config, text: &str, strictness: Strictness) -> ReadResult {
        if text.len() > MAX_VALUE_BYTES {
            return Err(format!("too long ({} bytes)", text.len()));
        }
        match self.field {
            Field::Float { min, max, put, .. } => {
                // Parsed straight as f32 so that `to_query`'s shortest round-trip output comes
                // back bit for bit; overflow gives an infinity, which clamps like any big number.
                let value: f32 = text.parse().map_err(|_| "not a number".to_string())?;
                if value.is_nan() {
                    return Err("not a number".into());
                }
                let clamped = value.clamp(min, max) + 0.0; // `+ 0.0` turns -0 into 0
                put(config, clamped);
                Ok((clamped != value).then(|| format!("out of range {min}..{max}, clamped to {clamped}")))
            }
            Field::Int { min, max, put, .. } => {
                // Read as f64 so `1e9` and `-5` are understood (and clamped) rather than
                // rejected; f64 holds every u32 exactly.
                let value: f64 = text.parse().map_err(|_| "not a number".to_string())?;
                if value.is_nan() {
                    return Err("not a number".into());
                }
                if value.is_finite() && value.fract() != 0.0 {
                    return Err("not a whole number".into());
                }
                let unclampable = min == 0 && max == u32::MAX;
                if unclampable && !(0.0..=f64::from(u32::MAX)).contains(&value) {
                    return Err(format!("not in 0..{max}"));
                }
                let clamped = value.clamp(f64::from(min), f64::from(max));
                put(config, clamped as u32);
                Ok((clamped != value).then(|| format!("out of range {min}..{max}, clamped to {clamped}")))
            }
            Field::Choice { names, put, .. } => match put(config, text) {
                true => Ok(None),
                false => Err(format!("not one of {}", names.join(", "))),
            },
            Field::Modes { .. } => read_modes(config, text, strictness),
        }
    }
}

/// Reads `modes`: a comma list kept deduplicated in canonical order. Leniently, unknown names
/// are dropped (and reported); strictly they are an error.
fn read_modes(config: &mut Config, text: &str, strictness: Strictness) -> ReadResult {
    let mut chosen = [false; ResidualKind::ALL.len()];
    let mut problems: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        let problem = match ResidualKind::parse(name) {
            Some(kind) if chosen[kind as usize] => format!("removed duplicate {}", kind.name()),
            Some(kind) => {
                chosen[kind as usize] = true;
                continue;
            }
            None if strictness == Strictness::Strict => {
                return Err(format!("unknown mode {}", shorten(name, ECHO_CHARS)));
            }
            None => format!("dropped unknown {}", shorten(name, ECHO_CHARS)),
        };
        if !problems.contains(&problem) {
            problems.push(problem);
        }
    }
    if !chosen.contains(&true) {
        return Err(format!("no known mode ({})", ResidualKind::NAMES.join(", ")));
    }
    config.modes = ResidualKind::ALL.into_iter().filter(|kind| chosen[*kind as usize]).collect();
    // Two problems say enough; a list of hundreds would drown the notice line.
    if problems.len() > 2 {
        let more = problems.len() - 2;
        problems.truncate(2);
        problems.push(format!("{more} more"));
    }
    Ok((!problems.is_empty()).then(|| problems.join(", ")))
}

impl Default for Config {
    /// Every key at its default from `KEYS`.
    fn default() -> Self {
        // Placeholder values only: each one is overwritten from the table just below.
        #[rustfmt::skip]
        let mut config = Config {
            arch: Arch::Mlp, task: Task::Spiral, noise: 0.0, train_frac: 0.0, p: 0, seed: 0, modes: Vec::new(),
            depth: 0, streams: 0, width: 0, ffn: 0, act: Activation::Gelu, batch: 0,
            optimizer: OptimizerKind::AdamW, lr: 0.0, wd: 0.0, beta1: 0.0, beta2: 0.0,
            momentum: 0.0, clip: 0.0, warmup: 0, steps: 0, eval_every: 0, sinkhorn_iters: 0,
            sinkhorn_eps: 0.0, precision: Precision::F32, ctx: 0, heads: 0, text: 0,
        };
        for key in KEYS {
            key.reset(&mut config);
        }
        config
    }
}

/// One problem found while reading input: which key, what was wrong, what was done about it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigNotice {
    /// The key concerned (echoed input is shortened), or `query` for the input as a whole.
    pub key: String,
    /// A complete sentence that names the key itself, e.g.
    /// `depth=1e9: out of range 1..256, clamped to 256`.
    pub message: String,
}

impl ConfigNotice {
    pub fn new(key: &str, message: String) -> Self {
        ConfigNotice { key: shorten(key, ECHO_CHARS), message: shorten(&message, MAX_NOTICE_CHARS) }
    }
}

impl fmt::Display for ConfigNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One human line summarising all notices (`None` when there are none), short even for hostile
/// input: each notice is capped and, past about 300 characters, the rest are only counted.
pub fn notices_line(notices: &[ConfigNotice]) -> Option<String> {
    if notices.is_empty() {
        return None;
    }
    let plural = if notices.len() == 1 { "" } else { "s" };
    let mut line = format!("Ignored or adjusted {} setting{plural}: ", notices.len());
    let mut line_chars = line.chars().count();
    for (index, notice) in notices.iter().enumerate() {
        let text = shorten(&notice.message, MAX_NOTICE_CHARS);
        let separator = if index == 0 { "" } else { "; " };
        // Keep room for the "… and N more" tail whenever more notices would follow this one.
        let tail_room = if index + 1 < notices.len() { TAIL_CHARS } else { 0 };
        let needed = separator.len() + text.chars().count() + tail_room;
        if index > 0 && line_chars + needed > MAX_LINE_CHARS {
            line.push_str(&format!("; … and {} more", notices.len() - index));
            break;
        }
        line.push_str(separator);
        line.push_str(&text);
        line_chars += separator.len() + text.chars().count();
    }
    Some(line)
}

/// Errors of the strict [`Config::set`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown setting `{0}` (known: {known})", known = key_names())]
    UnknownKey(String),
    #[error("{key}={value}: {reason}")]
    Invalid { key: String, value: String, reason: String },
}

fn key_names() -> String {
    KEYS.iter().map(|key| key.name).collect::<Vec<_>>().join(", ")
}

impl Config {
    /// Reads a query string (`depth=48&lr=0.01`, `?depth=48`, or a full share URL with
    /// fragment). Never fails: bad values keep the default, out-of-range numbers are clamped,
    /// unknown keys are ignored, and each such event becomes a notice.
    pub fn from_query(input: &str) -> (Config, Vec<ConfigNotice>) {
        let mut config = Config::default();
        let mut notices = Vec::new();
        let mut report = |key: &str, message: String| notices.push(ConfigNotice::new(key, message));
        let mut input = input;
        if input.len() > MAX_INPUT_BYTES {
            input = &input[..input.floor_char_boundary(MAX_INPUT_BYTES)];
            let message = format!("input longer than {MAX_INPUT_BYTES} bytes, the rest ignored");
            report("query", message);
        }
        for (key, count, raw_value) in group_pairs(query_part(input), &mut report) {
            let known = Key::find(&key);
            if count > 1 && (known.is_some() || key == "v") {
                report(&key, format!("{key} given {count} times, used the last"));
            }
            let echoed = shorten(raw_value, ECHO_CHARS);
            let decoded = percent_decode(raw_value);
            match (key.as_str(), known) {
                // Reserved for the page (benchmark mode, its kernel choice, the backend to train
                // on): accepted, never written back.
                ("bench", _) | ("kernels", _) | ("matmul", _) | ("matmul_reps", _) | ("backend", _) => {}
                // A sweep's own keys: read (and reported on) by `Sweep::from_query`.
                (key, _) if SWEEP_KEYS.contains(&key) => {}
                ("v", _) => match decoded.ok().and_then(|text| text.trim().parse::<u32>().ok()) {
                    Some(SCHEMA_VERSION) => {}
                    Some(other) => report("v", format!("made for schema v{other}, read as v{SCHEMA_VERSION}")),
                    None => report("v", format!("v={echoed}: not a schema version, read as v{SCHEMA_VERSION}")),
                },
                (_, None) => report(&key, format!("unknown key {} ignored", shorten(&key, ECHO_CHARS))),
                (_, Some(field)) => {
                    let outcome = decoded.map_err(String::from).and_then(|text| field.read(&mut config, text.trim(), Strictness::Lenient));
                    match outcome {
                        Ok(None) => {}
                        Ok(Some(what)) => report(&key, format!("{key}={echoed}: {what}")),
                        Err(why) => {
                            let kept = field.format(&config);
                            report(&key, format!("{key}={echoed}: {why}, kept {kept}"));
                        }
                    }
                }
            }
        }
        notices.extend(config.reconcile(None));
        (config, notices)
    }

    /// The share string: `v` first, then `seed` and every non-default key in table order, as
    /// `key=value` joined by `&`, without a leading '?'.
    pub fn to_query(&self) -> String {
        let written = KEYS.iter().filter(|key| key.name == "seed" || !key.is_default(self));
        std::iter::once(format!("v={SCHEMA_VERSION}"))
            .chain(written.map(|key| format!("{}={}", key.name, key.format(self))))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// `key=value` of every key whose value differs in `other`, in table order (other's values).
    pub fn changes_to(&self, other: &Config) -> Vec<String> {
        KEYS.iter().filter(|key| key.format(self) != key.format(other)).map(|key| format!("{}={}", key.name, key.format(other))).collect()
    }

    /// The value of `key` as written in URLs (`None` for an unknown key).
    pub fn get(&self, key: &str) -> Option<String> {
        KEYS.iter().find(|k| k.name == key).map(|k| k.format(self))
    }

    /// Strict single-key setter for the command line's `--set key=value` (no percent-decoding):
    /// `Err` on an unknown key or unusable value, `Ok(Some(notice))` when the value was clamped
    /// or repaired, `Ok(None)` when taken as is.
    pub fn set(&mut self, key: &str, value: &str) -> Result<Option<ConfigNotice>, ConfigError> {
        let field = Key::find(key.trim()).ok_or_else(|| ConfigError::UnknownKey(shorten(key, ECHO_CHARS)))?;
        let echoed = shorten(value, ECHO_CHARS);
        match field.read(self, value.trim(), Strictness::Strict) {
            Ok(adjusted) => {
                let mut notices: Vec<ConfigNotice> =
                    adjusted.map(|what| ConfigNotice::new(field.name, format!("{}={echoed}: {what}", field.name))).into_iter().collect();
                notices.extend(self.reconcile(Some(field.name)));
                Ok(notices.into_iter().reduce(|a, b| ConfigNotice { key: a.key, message: format!("{}; {}", a.message, b.message) }))
            }
            Err(reason) => Err(ConfigError::Invalid { key: field.name.to_string(), value: echoed, reason }),
        }
    }

    /// Input features per example: 2 for the 2-D tasks, 16 for `teacher`, `2p` for `modadd`;
    /// the `ctx` tokens of a token task.
    pub fn d_in(&self) -> usize {
        match self.task {
            Task::Spiral | Task::Circles | Task::Xor | Task::Gauss => 2,
            Task::Teacher => TEACHER_INPUTS,
            Task::Modadd => 2 * self.p as usize,
            Task::Text | Task::Reverse | Task::Sort | Task::Add => self.ctx as usize,
        }
    }

    /// Number of classes: 2 for the 2-D tasks, 10 for `teacher`, `p` for `modadd`; the
    /// vocabulary of a token task.
    pub fn classes(&self) -> usize {
        match self.task {
            Task::Spiral | Task::Circles | Task::Xor | Task::Gauss => 2,
            Task::Teacher => TEACHER_CLASSES,
            Task::Modadd => self.p as usize,
            Task::Text | Task::Reverse | Task::Sort | Task::Add => crate::tokens::vocabulary_size(self),
        }
    }

    /// Keeps the keys that depend on each other consistent: the task decides the architecture
    /// (a token task is the transformer's), a transformer's `heads` divide `width` and its
    /// `ctx` fits the task. `changed` is the key just set by hand, which wins a conflict.
    /// Returns a notice per adjustment a user did not ask for.
    fn reconcile(&mut self, changed: Option<&str>) -> Vec<ConfigNotice> {
        let mut notices = Vec::new();
        if self.task.arch() != self.arch {
            match (changed, self.arch) {
                (Some("arch"), arch) => {
                    let task = arch.default_task();
                    let message = format!(
                        "arch={}: task={} needs arch={}, so task={}",
                        arch.name(),
                        self.task.name(),
                        self.task.arch().name(),
                        task.name()
                    );
                    notices.push(ConfigNotice::new("task", message));
                    self.task = task;
                }
                // `arch=transformer` alone: the default task is the MLP's, so take the text.
                (None, Arch::Transformer) if self.task == Task::Spiral => self.task = Task::Text,
                (None, Arch::Transformer) => {
                    let message = format!("task={} is an MLP task; the transformer trains on text", self.task.name());
                    notices.push(ConfigNotice::new("task", message));
                    self.task = Task::Text;
                }
                // The task was set, or a token task came without `arch`: the task decides.
                _ => self.arch = self.task.arch(),
            }
        }
        if self.arch == Arch::Transformer {
            if !self.width.is_multiple_of(self.heads) {
                let heads = (1..=self.heads).rev().find(|h| self.width.is_multiple_of(*h)).unwrap_or(1);
                let message = format!("heads={} does not divide width={}, so heads={heads}", self.heads, self.width);
                notices.push(ConfigNotice::new("heads", message));
                self.heads = heads;
            }
            let least = crate::tokens::min_context(self.task) as u32;
            if self.ctx < least {
                notices.push(ConfigNotice::new(
                    "ctx",
                    format!("ctx={}: task={} needs at least {least}, so ctx={least}", self.ctx, self.task.name()),
                ));
                self.ctx = least;
            }
        }
        notices
    }

    /// Residual streams of a variant: always 1 for `residual`, else `streams`.
    pub fn streams_for(&self, kind: ResidualKind) -> usize {
        match kind {
            ResidualKind::Residual => 1,
            ResidualKind::Hc | ResidualKind::Mhc => self.streams as usize,
        }
    }

    /// A copy that trains only `kind` (checkpoints, `batch` and `grad` name one variant).
    pub fn with_single_mode(&self, kind: ResidualKind) -> Config {
        Config { modes: vec![kind], ..self.clone() }
    }
}

#[cfg(test)]
mod tests;
