//! Reading a trained transformer: the next token's distribution after a context, text sampled
//! at a temperature, greedy answers to the algorithmic tasks, and the attention pattern of one
//! head. It runs the program's own forward ops over one sequence on the CPU backend, so it
//! computes exactly what training computes, whichever backend trained the weights (they are
//! copied in with [`Sampler::load`]).
//!
//! A context shorter than `ctx` is padded after its end: attention is causal, so the outputs
//! at its positions do not depend on the padding. A longer one keeps its last `ctx` tokens.

use crate::config::{Arch, Config, ResidualKind};
use crate::cpu::{CpuArena, CpuKernels};
use crate::program::{label_value, OpList, Program};
use crate::reference::attention_probabilities;
use crate::rng::Rng;
use crate::tokens::NO_TARGET;
use crate::trainer::EngineError;

/// Below this temperature sampling is greedy (the most likely token, first on a tie).
pub const GREEDY_BELOW: f32 = 1e-3;

/// One variant's transformer, ready to read one sequence at a time.
pub struct Sampler {
    program: Program,
    arena: CpuArena,
}

impl Sampler {
    /// A sampler for variant `kind` of `config` (a transformer), with its initial weights.
    pub fn new(config: &Config, kind: ResidualKind) -> Result<Sampler, EngineError> {
        if config.arch != Arch::Transformer {
            return Err(EngineError::Input("only a transformer reads and writes tokens".into()));
        }
        crate::tokens::check_text(config)?;
        let one = Config { batch: 1, ..config.clone() };
        let program = Program::new(&one, kind, 0)?;
        let params = program.layout.initial_values(config.seed);
        let values = program.initial_arena(&params, &[], &[]);
        let arena = CpuArena::new(&program, values, CpuKernels::Fast);
        Ok(Sampler { program, arena })
    }

    pub fn ctx(&self) -> usize {
        self.program.dims.ctx
    }

    pub fn vocabulary_size(&self) -> usize {
        self.program.dims.classes
    }

    /// Copies in a variant's parameters (in the layout's order).
    pub fn load(&mut self, params: &[f32]) -> Result<(), EngineError> {
        let total = self.program.layout.total;
        if params.len() != total {
            return Err(EngineError::Input(format!("{} parameters given, {total} expected", params.len())));
        }
        let at = self.program.plan.params as usize;
        self.arena.values[at..at + total].copy_from_slice(params);
        Ok(())
    }

    /// Runs the forward over the window of `tokens` that ends at its last token; returns how
    /// many of its positions are real (the rest is padding).
    fn forward(&mut self, tokens: &[u32]) -> Result<usize, EngineError> {
        let (ctx, vocabulary) = (self.ctx(), self.vocabulary_size());
        if tokens.is_empty() {
            return Err(EngineError::Input("an empty context has no next token".into()));
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocabulary) {
            return Err(EngineError::Input(format!("token {bad} is outside the vocabulary 0..{vocabulary}")));
        }
        let window = &tokens[tokens.len().saturating_sub(ctx)..];
        let plan = &self.program.plan;
        let mut x: Vec<f32> = window.iter().map(|&t| t as f32).collect();
        x.resize(ctx, 0.0);
        let (bx, by) = (plan.batch_x as usize, plan.batch_y as usize);
        self.arena.values[bx..bx + ctx].copy_from_slice(&x);
        self.arena.values[by..by + ctx].fill(label_value(NO_TARGET));
        self.arena.submit(&[OpList::Forward]);
        Ok(window.len())
    }

    /// Logits at every position of `tokens` (their last `ctx`): `[len, vocabulary]`, row `i`
    /// predicting the token after position `i`.
    pub fn logits(&mut self, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        let len = self.forward(tokens)?;
        let at = self.program.plan.train.logits as usize;
        Ok(self.arena.values[at..at + len * self.vocabulary_size()].to_vec())
    }

    /// Logits of the token after `context` (its last `ctx` tokens).
    pub fn next_logits(&mut self, context: &[u32]) -> Result<Vec<f32>, EngineError> {
        let mut logits = self.logits(context)?;
        Ok(logits.split_off(logits.len() - self.vocabulary_size()))
    }

    /// `count` tokens following `prompt`, each drawn from the softmax of the logits divided by
    /// `temperature` (greedy below [`GREEDY_BELOW`]).
    pub fn sample(&mut self, prompt: &[u32], count: usize, temperature: f32, rng: &mut Rng) -> Result<Vec<u32>, EngineError> {
        let mut tokens = prompt.to_vec();
        for _ in 0..count {
            let logits = self.next_logits(&tokens)?;
            tokens.push(draw(&logits, temperature, rng));
        }
        Ok(tokens.split_off(prompt.len()))
    }

    /// The greedy continuation of `prompt`, `count` tokens long (an algorithmic task's answer).
    pub fn answer(&mut self, prompt: &[u32], count: usize) -> Result<Vec<u32>, EngineError> {
        self.sample(prompt, count, 0.0, &mut Rng::new(0))
    }

    /// The attention probabilities of every block and head over `tokens` (their last `ctx`).
    pub fn attention(&mut self, tokens: &[u32]) -> Result<AttentionMaps, EngineError> {
        let len = self.forward(tokens)?;
        let dims = self.program.dims;
        let act = &self.program.plan.train;
        let (c, t, heads) = (dims.width as u32, dims.ctx, dims.heads);
        let mut probs = Vec::with_capacity(dims.depth * heads * len * len);
        for block in 0..dims.depth as u32 {
            let p = crate::kernels::AttentionParams {
                batch: 1,
                t: t as u32,
                heads: heads as u32,
                dh: c / heads as u32,
                qkv_off: act.at(act.qkv, block, 3 * c),
                lse_off: act.at(act.lse, block, heads as u32),
                ..Default::default()
            };
            for head in 0..heads as u32 {
                let full = attention_probabilities(&self.arena.values, &p, 0, head);
                probs.extend((0..len).flat_map(|i| full[i * t..i * t + len].iter().copied()));
            }
        }
        Ok(AttentionMaps { len, depth: dims.depth, heads, probs })
    }
}

/// Attention probabilities over one sequence: `[depth, heads, len, len]`, row = query, zero
/// above the diagonal.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionMaps {
    pub len: usize,
    pub depth: usize,
    pub heads: usize,
    pub probs: Vec<f32>,
}

impl AttentionMaps {
    /// The `[len, len]` map of one head, or `None` when there is no such head.
    pub fn map(&self, block: usize, head: usize) -> Option<&[f32]> {
        (block < self.depth && head < self.heads).then(|| {
            let size = self.len * self.len;
            &self.probs[(block * self.heads + head) * size..][..size]
        })
    }
}

/// A token drawn from `softmax(logits / temperature)` with one uniform draw (greedy below
/// [`GREEDY_BELOW`]; a non-finite logit is never drawn, and all of them non-finite gives 0).
pub fn draw(logits: &[f32], temperature: f32, rng: &mut Rng) -> u32 {
    let finite = || logits.iter().enumerate().filter(|(_, v)| v.is_finite());
    let Some((best, &top)) = finite().fold(None, |best: Option<(usize, &f32)>, (i, v)| match best {
        Some((_, b)) if b >= v => best,
        _ => Some((i, v)),
    }) else {
        return 0;
    };
    if temperature.is_nan() || temperature < GREEDY_BELOW {
        return best as u32;
    }
    let weight = |v: f32| (((v - top) / temperature) as f64).exp();
    let total: f64 = finite().map(|(_, &v)| weight(v)).sum();
    let mut left = rng.next_f64() * total;
    for (i, &v) in finite() {
        left -= weight(v);
        if left < 0.0 {
            return i as u32;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_is_greedy_when_cold_and_follows_the_softmax_when_warm() {
        let logits = [0.0, 2.0, 1.0, f32::NAN];
        let mut rng = Rng::new(5);
        assert_eq!(draw(&logits, 0.0, &mut rng), 1);
        assert_eq!(draw(&[f32::NAN, f32::INFINITY * 0.0], 1.0, &mut rng), 0);
        // Frequencies at temperature 1 match the softmax within 1% over 20000 draws.
        let mut counts = [0usize; 4];
        for _ in 0..20000 {
            counts[draw(&logits, 1.0, &mut rng) as usize] += 1;
        }
        let z: f64 = [0.0f64, 2.0, 1.0].iter().map(|v| v.exp()).sum();
        for (i, &v) in [0.0f64, 2.0, 1.0].iter().enumerate() {
            let share = counts[i] as f64 / 20000.0;
            assert!((share - v.exp() / z).abs() < 0.01, "token {i}: {share}");
        }
        assert_eq!(counts[3], 0, "a NaN logit is never drawn");
        // A high temperature flattens the distribution.
        let mut hot = [0usize; 4];
        for _ in 0..20000 {
            hot[draw(&logits, 100.0, &mut rng) as usize] += 1;
        }
        assert!(hot[0] > 6000 && hot[1] < 7500, "{hot:?}");
    }
}
