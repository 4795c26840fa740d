//! The config table against DESIGN.md section 4, and hostile share URLs.

use super::*;

fn notices_of(query: &str) -> Vec<ConfigNotice> {
    Config::from_query(query).1
}

#[test]
fn defaults_match_design_table() {
    #[rustfmt::skip]
    let expected = Config {
        arch: Arch::Mlp, task: Task::Spiral, noise: 0.1, train_frac: 0.5, p: 97, seed: 1,
        modes: vec![ResidualKind::Residual, ResidualKind::Hc, ResidualKind::Mhc],
        depth: 24, streams: 4, width: 64, ffn: 4, act: Activation::Gelu, batch: 128,
        optimizer: OptimizerKind::AdamW, lr: 0.003, wd: 0.0, beta1: 0.9, beta2: 0.95,
        momentum: 0.9, clip: 0.0, warmup: 0, steps: 2000, eval_every: 50, sinkhorn_iters: 20,
        sinkhorn_eps: 1e-6, precision: Precision::F32, ctx: 64, heads: 4, text: 0,
    };
    assert_eq!(Config::default(), expected);
    assert_eq!(Config::default().to_query(), "v=1&seed=1");
    for key in KEYS {
        assert!(key.is_default(&expected), "{}", key.name);
    }
}

#[test]
fn the_task_and_the_architecture_agree() {
    let read = |q: &str| {
        let (c, n) = Config::from_query(q);
        (c.arch, c.task, n.iter().map(|n| n.message.clone()).collect::<Vec<_>>().join("; "))
    };
    // A token task means the transformer; the transformer alone means text.
    assert_eq!(read("task=text"), (Arch::Transformer, Task::Text, String::new()));
    assert_eq!(read("arch=transformer"), (Arch::Transformer, Task::Text, String::new()));
    assert_eq!(read("task=add&arch=transformer"), (Arch::Transformer, Task::Add, String::new()));
    let (arch, task, said) = read("arch=transformer&task=xor");
    assert_eq!((arch, task), (Arch::Transformer, Task::Text));
    assert!(said.contains("task=xor is an MLP task"), "{said}");
    // A hand-set key wins: arch=mlp on a text experiment goes back to the MLP's task.
    let mut c = Config::from_query("task=reverse").0;
    let notice = c.set("arch", "mlp").unwrap().unwrap();
    assert_eq!((c.arch, c.task), (Arch::Mlp, Task::Spiral));
    assert!(notice.message.contains("needs arch=transformer"), "{}", notice.message);
    c.set("task", "sort").unwrap();
    assert_eq!((c.arch, c.task), (Arch::Transformer, Task::Sort));
    // Heads divide the width; the context fits the task.
    let (c, n) = Config::from_query("task=text&width=48&heads=5");
    assert_eq!(c.heads, 4);
    assert!(n[0].message.contains("heads=5 does not divide width=48, so heads=4"), "{n:?}");
    let (c, n) = Config::from_query("task=add&ctx=4");
    assert_eq!(c.ctx, 6);
    assert!(n[0].message.contains("needs at least 6"), "{n:?}");
    // An MLP experiment ignores the transformer's keys.
    assert_eq!(Config::from_query("width=48&heads=5").1, vec![]);
    // And the query round-trips.
    let c = Config::from_query("task=sort&ctx=32&heads=2&width=32").0;
    assert_eq!(Config::from_query(&c.to_query()).0, c);
}

#[test]
fn enum_names_round_trip() {
    for task in Task::ALL {
        assert_eq!(Task::parse(task.name()), Some(task));
    }
    for kind in ResidualKind::ALL {
        assert_eq!(ResidualKind::parse(kind.name()), Some(kind));
    }
    assert_eq!(OptimizerKind::parse("AdamW"), Some(OptimizerKind::AdamW));
    assert_eq!(Precision::parse("f16"), Some(Precision::F16));
    assert_eq!(Activation::parse("swish"), None);
    assert!(Task::Xor.is_2d() && !Task::Teacher.is_2d());
}

#[test]
fn round_trips_default_and_fully_changed_config() {
    let default = Config::default();
    assert_eq!(Config::from_query(&default.to_query()), (default, vec![]));

    let changed = "task=modadd&noise=0.25&train_frac=0.3&p=113&seed=4294967295&modes=residual,mhc\
        &depth=48&streams=2&width=128&ffn=2&act=tanh&batch=64&optimizer=sgd&lr=0.01&wd=0.1\
        &beta1=0.8&beta2=0.9999&momentum=0.5&clip=1&warmup=100&steps=5000&eval_every=10\
        &sinkhorn_iters=5&sinkhorn_eps=0.001&precision=f16&ctx=32&heads=2&text=77";
    let (config, notices) = Config::from_query(changed);
    assert_eq!(notices, vec![]);
    // An MLP task keeps the MLP (`the_task_and_the_architecture_agree` covers `arch`).
    for key in KEYS.iter().filter(|key| key.name != "arch") {
        assert!(!key.is_default(&config), "{} was not changed", key.name);
    }
    assert_eq!(config.to_query(), format!("v=1&{changed}"));
    assert_eq!(Config::from_query(&config.to_query()), (config, vec![]));
}

#[test]
fn reads_full_share_url_with_fragment() {
    let (config, notices) = Config::from_query("  https://example.org/mhc/?v=1&seed=7&depth=48&act=relu#plot=loss?x=1 ");
    assert_eq!(notices, vec![]);
    assert_eq!((config.seed, config.depth, config.act), (7, 48, Activation::Relu));
    assert_eq!(Config::from_query("?lr=0.01").0.lr, 0.01);
    assert_eq!(Config::from_query("https://example.org/page"), (Config::default(), vec![]));
}

/// Each case: query, key whose written value is checked, that value, and a fragment the
/// single notice must contain (`None`: no notice at all).
#[test]
fn hostile_values_are_repaired_or_rejected() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        ("depth=1e9", "depth", "256", Some("depth=1e9: out of range 1..256, clamped to 256")),
        ("depth=2.5", "depth", "24", Some("not a whole number, kept 24")),
        ("depth=inf", "depth", "256", Some("clamped to 256")),
        ("lr=NaN", "lr", "0.003", Some("lr=NaN: not a number, kept 0.003")),
        ("lr=inf", "lr", "1", Some("clamped to 1")),
        ("lr=-1", "lr", "0.00001", Some("clamped to 0.00001")),
        ("lr=1e999", "lr", "1", Some("clamped to 1")),
        ("wd=-0", "wd", "0", None),
        ("streams=0", "streams", "1", Some("clamped to 1")),
        ("batch=-5", "batch", "1", Some("clamped to 1")),
        ("batch=+64", "batch", "64", None),
        ("seed=4294967295", "seed", "4294967295", None),
        ("seed=4294967296", "seed", "1", Some("not in 0..4294967295, kept 1")),
        ("seed=-1", "seed", "1", Some("kept 1")),
        ("depth=%zz", "depth", "24", Some("broken %-escape")),
        ("depth=4%", "depth", "24", Some("broken %-escape")),
        ("depth=%00", "depth", "24", Some("control characters")),
        ("depth=%FF", "depth", "24", Some("not valid UTF-8")),
        ("depth=%34%38", "depth", "48", None),
        ("act=%C3%A9", "act", "gelu", Some("not one of gelu, relu, tanh, kept gelu")),
        ("modes=", "modes", "residual,hc,mhc", Some("no known mode")),
        ("modes=foo", "modes", "residual,hc,mhc", Some("kept residual,hc,mhc")),
        ("modes=mhc,hc,mhc", "modes", "hc,mhc", Some("removed duplicate mhc")),
        ("modes=mhc,foo,bar,mhc,residual", "modes", "residual,mhc", Some("dropped unknown foo, dropped unknown bar, 1 more")),
        ("modes=mhc,residual", "modes", "residual,mhc", None),
        ("depth=3&depth=5", "depth", "5", Some("depth given 2 times, used the last")),
        ("v=2&depth=5", "depth", "5", Some("made for schema v2, read as v1")),
        ("v=two", "depth", "24", Some("v=two: not a schema version")),
        ("bench=1&bench=2&&depth=6&", "depth", "6", None),
        ("depth", "depth", "24", Some("depth: no '=', ignored")),
        ("foo=1&depth=7", "depth", "7", Some("unknown key foo ignored")),
        ("%ZZ=1", "depth", "24", Some("key %ZZ: broken %-escape, ignored")),
        ("+=1", "depth", "24", Some("key +: empty, ignored")),
    ];
    for &(query, key, value, fragment) in cases {
        let (config, notices) = Config::from_query(query);
        let written = Key::find(key).map(|field| field.format(&config));
        assert_eq!(written.as_deref(), Some(value), "{query}");
        match fragment {
            None => assert_eq!(notices, vec![], "{query}"),
            Some(fragment) => {
                assert_eq!(notices.len(), 1, "{query}: {notices:?}");
                assert!(notices[0].to_string().contains(fragment), "{query}: {}", notices[0]);
            }
        }
    }
}

#[test]
fn huge_inputs_give_short_reports() {
    let long_value = format!("depth={}", "9".repeat(10_000));
    let notices = notices_of(&long_value);
    assert!(notices[0].message.contains("too long (10000 bytes), kept 24"), "{}", notices[0]);
    assert!(notices[0].message.len() < 100);

    let many_keys: String = (0..50_000).map(|i| format!("k{i}é=1&")).collect();
    let notices = notices_of(&many_keys);
    assert_eq!(notices[0].key, "query");
    let line = notices_line(&notices).unwrap_or_default();
    assert!(line.chars().count() <= MAX_LINE_CHARS, "{line}");
    assert!(line.ends_with(" more"), "{line}");
    assert!(line.starts_with(&format!("Ignored or adjusted {} settings: ", notices.len())));
}

#[test]
fn notices_line_summarises() {
    assert_eq!(notices_line(&[]), None);
    let notices = notices_of("depth=1e9&foo=1&lr=NaN");
    assert_eq!(
        notices_line(&notices).as_deref(),
        Some(
            "Ignored or adjusted 3 settings: depth=1e9: out of range 1..256, clamped to 256; \
              unknown key foo ignored; lr=NaN: not a number, kept 0.003"
        )
    );
    let long = ConfigNotice { key: "x".into(), message: "x".repeat(1000) };
    let line = notices_line(&[long.clone(), long.clone(), long]).unwrap_or_default();
    assert!(line.chars().count() <= MAX_LINE_CHARS && line.ends_with("… and 1 more"), "{line}");
}

#[test]
fn strict_set() {
    let mut config = Config::default();
    assert!(matches!(config.set("nope", "1"), Err(ConfigError::UnknownKey(_))));
    let mut set = |key: &str, value: &str| {
        let outcome = config.set(key, value);
        outcome.map(|notice| notice.map(|notice| notice.message)).map_err(|error| error.to_string())
    };
    assert_eq!(set("depth", " 48"), Ok(None));
    assert_eq!(set("lr", "5"), Ok(Some("lr=5: out of range 0.00001..1, clamped to 1".into())));
    assert_eq!(set("modes", "mhc,mhc"), Ok(Some("modes=mhc,mhc: removed duplicate mhc".into())));
    assert_eq!(set("lr", "fast"), Err("lr=fast: not a number".into()));
    assert_eq!(set("modes", "mhc,foo"), Err("modes=mhc,foo: unknown mode foo".into()));
    assert_eq!(set("act", "%67elu"), Err("act=%67elu: not one of gelu, relu, tanh".into()));
    let unknown = set("v", "1").unwrap_err();
    assert!(unknown.starts_with("unknown setting `v` (known: arch, task, noise, train_frac"), "{unknown}");
    assert_eq!((config.depth, config.lr, config.modes), (48, 1.0, vec![ResidualKind::Mhc]));
}

#[test]
fn derived_sizes() {
    let mut config = Config::default();
    assert_eq!((config.d_in(), config.classes()), (2, 2));
    config.task = Task::Teacher;
    assert_eq!((config.d_in(), config.classes()), (16, 10));
    config.task = Task::Modadd;
    assert_eq!((config.d_in(), config.classes()), (194, 97));
    assert_eq!(config.streams_for(ResidualKind::Residual), 1);
    assert_eq!(config.streams_for(ResidualKind::Mhc), 4);
    let single = config.with_single_mode(ResidualKind::Hc);
    assert_eq!((single.modes, single.depth), (vec![ResidualKind::Hc], config.depth));
}

/// Random garbage never panics, always yields an in-range, finite config that round-trips
/// without notices, and keeps its report short.
#[test]
fn garbage_always_gives_a_valid_config() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    // Fragments that stress every path: escapes, separators, numbers, names, multi-byte.
    let pieces = "=|&|%|%0|%00|%FF|%e2%82|%41|+|#|?|,|.|-|e|1e9|NaN|inf|0|7|4294967296|1e-40\
        |hc|mhc|residual|é|😀|v|bench|https://h/p?|\u{0}| ";
    let keys = KEYS.iter().map(|key| key.name);
    let tokens: Vec<&str> = pieces.split('|').chain(keys).collect();
    for _ in 0..3000 {
        let garbage: String = (0..next(40)).map(|_| tokens[next(tokens.len())]).collect();
        let (config, notices) = Config::from_query(&garbage);
        for key in KEYS {
            match key.field {
                Field::Float { min, max, get, .. } => {
                    let value = get(&config);
                    assert!(value.is_finite() && (min..=max).contains(&value), "{garbage:?}: {}", key.name);
                }
                Field::Int { min, max, get, .. } => {
                    assert!((min..=max).contains(&get(&config)), "{garbage:?}")
                }
                Field::Choice { .. } => {}
                Field::Modes { .. } => {
                    assert!(!config.modes.is_empty() && config.modes.windows(2).all(|pair| pair[0] < pair[1]));
                }
            }
        }
        assert_eq!(Config::from_query(&config.to_query()), (config, vec![]), "{garbage:?}");
        assert!(notices.iter().all(|notice| notice.message.chars().count() <= MAX_NOTICE_CHARS), "{notices:?}");
        let line = notices_line(&notices).unwrap_or_default();
        assert!(line.chars().count() <= MAX_LINE_CHARS, "{line}");
    }
}
