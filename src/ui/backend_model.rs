//! Which backend trains, in plain Rust (tested natively): the user's choice, what a measured
//! step time says about an experiment's weight on the CPU, and the CPU-sized version of the
//! story for the bare link.

use crate::config::Config;
use serde::{Deserialize, Serialize};

/// The user's say over the backend (the "Train on" control, or `backend=` in the link).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendChoice {
    /// The GPU, unless there is none or it is a software one that the CPU outruns.
    #[default]
    Auto,
    Gpu,
    Cpu,
}

impl BackendChoice {
    pub const ALL: [BackendChoice; 3] = [BackendChoice::Auto, BackendChoice::Gpu, BackendChoice::Cpu];

    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Gpu => "gpu",
            BackendChoice::Cpu => "cpu",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            BackendChoice::Auto => "The faster (auto)",
            BackendChoice::Gpu => "GPU (WebGPU)",
            BackendChoice::Cpu => "CPU",
        }
    }

    pub fn parse(value: &str) -> Option<BackendChoice> {
        BackendChoice::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(value.trim()))
    }
}

/// A lockstep step slower than this on the CPU makes an experiment "heavy": the bare link is
/// scaled to [`cpu_sized`], an explicit link asks before it runs if [`offers_smaller`] (300
/// steps take 45 s).
pub const CPU_HEAVY_MS: f64 = 150.0;

/// The CPU-sized version of `config`: the same story (HC's gain still climbs past 10 within
/// about 20 steps, mHC's stays at 1) at a fraction of the work: at most 16 blocks of width 32
/// and batches of 64, and batches halved down to 32 while `too_heavy` says so.
pub fn cpu_sized(config: &Config, too_heavy: impl Fn(&Config) -> bool) -> Config {
    let mut small = config.clone();
    small.depth = small.depth.min(16);
    small.width = small.width.min(32);
    small.batch = small.batch.min(64);
    while small.batch > 32 && too_heavy(&small) {
        small.batch /= 2;
    }
    small
}

/// Whether a heavy explicit link has a CPU-sized version to offer: one that [`cpu_sized`]
/// makes smaller. Without one the question's second answer would train the same experiment,
/// so it is not asked (the small transformer is heavy on a slow CPU, and already CPU-sized).
pub fn offers_smaller(config: &Config) -> bool {
    cpu_sized(config, |_| false) != *config
}

/// What changed from `full` to `small`, for the notice: "depth 24 → 16, width 64 → 32".
pub fn describe_changes(full: &Config, small: &Config) -> String {
    ["depth", "width", "batch"]
        .iter()
        .filter_map(|&key| {
            let (from, to) = (full.get(key)?, small.get(key)?);
            (from != to).then(|| format!("{key} {from} → {to}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// "about 1.2 s per step, 6 min for 300 steps" (never NaN: a bad reading says nothing).
pub fn describe_time(ms_per_step: f64, steps: u32) -> String {
    if !ms_per_step.is_finite() || ms_per_step <= 0.0 {
        return "time per step unknown".into();
    }
    let per_step = if ms_per_step < 1000.0 { format!("{ms_per_step:.0} ms") } else { format!("{:.1} s", ms_per_step / 1000.0) };
    let total_s = ms_per_step * steps as f64 / 1000.0;
    let total = match total_s {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    };
    format!("about {per_step} per step, {total} for {steps} steps")
}

/// Time of a step of `config` estimated from a step of its [`timing_proxy`]: the work grows
/// with blocks and rows (the rest is small beside them).
pub fn scale_from_proxy(proxy_ms: f64, proxy: &Config, config: &Config) -> f64 {
    let ratio = |full: u32, cut: u32| full as f64 / cut.max(1) as f64;
    proxy_ms * ratio(config.depth, proxy.depth) * ratio(config.batch, proxy.batch)
}

/// The experiment a backend is timed on: at most two blocks and 64 rows of it, so timing
/// costs a fraction of one step however large the experiment is.
pub fn timing_proxy(config: &Config) -> Config {
    let mut proxy = config.clone();
    proxy.depth = proxy.depth.min(2);
    proxy.batch = proxy.batch.min(64);
    proxy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_round_trip_and_refuse_anything_else() {
        for choice in BackendChoice::ALL {
            assert_eq!(BackendChoice::parse(choice.name()), Some(choice));
        }
        assert_eq!(BackendChoice::parse(" CPU "), Some(BackendChoice::Cpu));
        assert_eq!(BackendChoice::parse("tpu"), None);
        assert_eq!(BackendChoice::parse(""), None);
    }

    #[test]
    fn the_default_story_shrinks_to_the_cpu_sized_one() {
        let full = Config::default();
        let small = cpu_sized(&full, |_| false);
        assert_eq!((small.depth, small.width, small.batch), (16, 32, 64));
        assert_eq!((small.streams, small.modes.clone(), small.lr), (full.streams, full.modes.clone(), full.lr));
        assert_eq!(describe_changes(&full, &small), "depth 24 → 16, width 64 → 32, batch 128 → 64");
        // A slow machine halves the batch, down to 32 and no further.
        assert_eq!(cpu_sized(&full, |_| true).batch, 32);
        // Already small: nothing changes.
        let (tiny, _) = Config::from_query("depth=4&width=16&batch=32");
        assert_eq!(cpu_sized(&tiny, |_| true), tiny);
        assert_eq!(describe_changes(&tiny, &tiny), "");
    }

    #[test]
    fn only_a_link_with_a_smaller_version_is_offered_one() {
        assert!(offers_smaller(&Config::default()));
        assert!(offers_smaller(&Config::from_query("depth=32&width=96&streams=4&lr=0.005").0));
        // Any one of depth, width and batch past the CPU size is enough.
        assert!(offers_smaller(&Config::from_query("depth=17&width=32&batch=64").0));
        assert!(offers_smaller(&Config::from_query("depth=16&width=32&batch=65").0));
        // At the CPU size already: nothing smaller to offer.
        assert!(!offers_smaller(&Config::from_query("task=text&depth=2&width=32&ctx=32&batch=16&heads=4").0));
        assert!(!offers_smaller(&Config::from_query("depth=16&width=32&batch=64").0));
    }

    #[test]
    fn times_read_plainly_and_never_as_nan() {
        assert_eq!(describe_time(1234.0, 300), "about 1.2 s per step, 6 min for 300 steps");
        assert_eq!(describe_time(80.0, 300), "about 80 ms per step, 24 s for 300 steps");
        assert_eq!(describe_time(20_000.0, 1000), "about 20.0 s per step, 5.6 h for 1000 steps");
        assert_eq!(describe_time(f64::NAN, 300), "time per step unknown");
        assert_eq!(describe_time(0.0, 300), "time per step unknown");
        let full = Config::default();
        let proxy = timing_proxy(&full);
        assert_eq!((proxy.depth, proxy.batch, proxy.width), (2, 64, full.width));
        assert_eq!(scale_from_proxy(50.0, &proxy, &full), 50.0 * 12.0 * 2.0);
    }
}
