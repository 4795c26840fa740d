//! Reading a trained transformer (`src/sampler.rs`) agrees with what training measured: its
//! next-token log-likelihood over the text's test set is the engine's test loss, its greedy
//! answers are right exactly as often as the engine's whole-answer test accuracy says, and its
//! attention rows are the probabilities the forward pass used.

use mhc_playground::config::{Config, ResidualKind};
use mhc_playground::rng::Rng;
use mhc_playground::sampler::Sampler;
use mhc_playground::tasks::Dataset;
use mhc_playground::tokens::{self, NO_TARGET};
use mhc_playground::trainer::Trainer;

/// Trains `config` on the CPU for `steps` steps, evaluating at the last one; returns the trainer
/// and each variant's test (loss, accuracy) before that step's update.
fn train(config: &Config, steps: u64) -> (Trainer, Vec<(ResidualKind, f32, f32)>) {
    let mut trainer = Trainer::new(config, None).unwrap();
    let mut last = Vec::new();
    for t in 0..steps {
        trainer.submit_with(t + 1 == steps, false);
        let rows = pollster::block_on(trainer.read_metrics()).unwrap();
        if t + 1 == steps {
            last = rows.iter().map(|m| (ResidualKind::parse(m.mode).unwrap(), m.test_loss.unwrap(), m.test_acc.unwrap())).collect();
        }
    }
    (trainer, last)
}

/// A sampler holding the weights `trainer`'s variant `kind` had when it evaluated: the
/// evaluation runs before the last step's update, so the caller trains one step fewer first.
fn sampler(config: &Config, trainer: &Trainer, kind: ResidualKind) -> Sampler {
    let params = pollster::block_on(trainer.variant(kind).unwrap().params()).unwrap();
    let mut sampler = Sampler::new(config, kind).unwrap();
    sampler.load(&params).unwrap();
    sampler
}

fn log_softmax_at(logits: &[f32], target: usize) -> f64 {
    let top = logits.iter().cloned().fold(f32::MIN, f32::max) as f64;
    let z: f64 = logits.iter().map(|&v| (v as f64 - top).exp()).sum();
    logits[target] as f64 - top - z.ln()
}

#[test]
fn the_samplers_likelihood_of_the_test_text_is_the_engines_test_loss() {
    let (config, _) = Config::from_query("task=text&depth=2&width=16&ctx=12&batch=8&heads=2&lr=0.01&precision=f16");
    let steps = 40;
    let (_, measured) = train(&config, steps);
    let (trainer, _) = train(&config, steps - 1);
    let data = Dataset::new(&config);
    let ctx = config.ctx as usize;
    for (kind, test_loss, test_acc) in measured {
        let mut sampler = sampler(&config, &trainer, kind);
        let (mut nll, mut right, mut scored) = (0.0f64, 0usize, 0usize);
        for (inputs, targets) in data.test_y.chunks(ctx).enumerate().map(|(e, y)| {
            let x: Vec<u32> = data.test_x[e * ctx..(e + 1) * ctx].iter().map(|&v| v as u32).collect();
            (x, y)
        }) {
            let logits = sampler.logits(&inputs).unwrap();
            let k = sampler.vocabulary_size();
            for (i, &target) in targets.iter().enumerate() {
                let row = &logits[i * k..(i + 1) * k];
                nll -= log_softmax_at(row, target as usize);
                let best = row.iter().enumerate().fold(0, |b, (j, &v)| if v > row[b] { j } else { b });
                right += (best == target as usize) as usize;
                scored += 1;
            }
        }
        let (loss, acc) = ((nll / scored as f64) as f32, right as f32 / scored as f32);
        assert!((loss - test_loss).abs() <= 2e-5 * test_loss, "{kind:?}: sampler {loss}, engine {test_loss}");
        assert!((acc - test_acc).abs() <= 1.0 / scored as f32, "{kind:?}: sampler {acc}, engine {test_acc}");
        assert!(test_loss < 3.6, "{kind:?} learned something in {steps} steps: {test_loss}");
    }
}

#[test]
fn greedy_answers_are_right_as_often_as_the_whole_answer_accuracy_says() {
    let (config, _) = Config::from_query("task=reverse&depth=2&width=32&ctx=8&batch=32&heads=2&lr=0.01");
    let steps = 150;
    let (_, measured) = train(&config, steps);
    let (trainer, _) = train(&config, steps - 1);
    let data = Dataset::new(&config);
    let ctx = config.ctx as usize;
    let (start, len) = tokens::answer_span(config.task, ctx);
    for (kind, _, test_acc) in measured {
        let mut sampler = sampler(&config, &trainer, kind);
        let mut right = 0;
        let examples = data.test_y.len() / ctx;
        for e in 0..examples {
            let x: Vec<u32> = data.test_x[e * ctx..(e + 1) * ctx].iter().map(|&v| v as u32).collect();
            let want: Vec<u32> = data.test_y[e * ctx..(e + 1) * ctx].iter().copied().filter(|&t| t != NO_TARGET).collect();
            // The answer starts after the prompt: position start - 1 predicts its first token.
            let answer = sampler.answer(&x[..start], len).unwrap();
            right += (answer == want) as usize;
        }
        // Right at every answer position given the true prefix is the same as right when
        // decoding greedily: each step's prefix is then the true one.
        assert_eq!(right as f32 / examples as f32, test_acc, "{kind:?}");
        assert!(test_acc > 0.2, "{kind:?} answers some reversals right after {steps} steps: {test_acc}");
    }
}

#[test]
fn padding_never_changes_the_outputs_and_sampling_is_reproducible() {
    let (config, _) = Config::from_query("task=text&depth=2&width=16&ctx=10&batch=4&heads=4&modes=hc");
    let mut sampler = Sampler::new(&config, ResidualKind::Hc).unwrap();
    let (prompt, unknown) = tokens::encode(&config, "Sed ut per");
    assert!(unknown.is_empty());
    let k = sampler.vocabulary_size();
    let full = sampler.logits(&prompt).unwrap();
    for len in 1..prompt.len() {
        let next = sampler.next_logits(&prompt[..len]).unwrap();
        assert_eq!(next, full[(len - 1) * k..len * k], "prefix of {len}");
    }
    // A context longer than ctx keeps its last ctx tokens.
    let mut longer = tokens::encode(&config, "Quis ").0;
    longer.extend(&prompt);
    assert_eq!(sampler.next_logits(&longer).unwrap(), full[(prompt.len() - 1) * k..]);
    // Attention: causal rows that sum to 1, the same for a prefix.
    let maps = sampler.attention(&prompt).unwrap();
    let part = sampler.attention(&prompt[..4]).unwrap();
    assert_eq!((maps.depth, maps.heads, maps.len, part.len), (2, 4, prompt.len(), 4));
    for (block, head) in [(0, 0), (1, 3)] {
        let a = maps.map(block, head).unwrap();
        let n = prompt.len();
        for i in 0..n {
            let sum: f32 = a[i * n..(i + 1) * n].iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "row {i} sums to {sum}");
            assert!(a[i * n + i + 1..(i + 1) * n].iter().all(|&p| p == 0.0), "row {i} looks ahead");
        }
        let part = part.map(block, head).unwrap();
        for i in 0..4 {
            assert_eq!(part[i * 4..i * 4 + 4], a[i * n..i * n + 4]);
        }
    }
    assert!(maps.map(2, 0).is_none() && maps.map(0, 4).is_none());
    assert!(sampler.next_logits(&[]).is_err());
    assert!(sampler.next_logits(&[k as u32]).is_err());
    // Seeded draws repeat; another seed or temperature gives other text.
    let draw = |s: &mut Sampler, seed, temperature| s.sample(&prompt, 20, temperature, &mut Rng::new(seed)).unwrap();
    let a = draw(&mut sampler, 1, 1.0);
    assert_eq!(a.len(), 20);
    assert!(a.iter().all(|&t| (t as usize) < k));
    assert_eq!(a, draw(&mut sampler, 1, 1.0));
    assert_ne!(a, draw(&mut sampler, 2, 1.0));
    assert_eq!(draw(&mut sampler, 1, 0.0), draw(&mut sampler, 2, 0.0), "greedy ignores the generator");
    let mlp = Config::default();
    assert!(Sampler::new(&mlp, ResidualKind::Mhc).is_err());
}
