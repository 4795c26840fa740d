//! The transformer's token tasks (DESIGN.md section 1b): character-level language modelling on
//! Cicero's *De finibus*, Liber Primus (public domain, shipped by the `lipsum` crate), and three
//! algorithmic tasks on digit strings. An example is `ctx` input tokens and `ctx` targets, the
//! target of position `i` being the token that follows it, or [`NO_TARGET`] where nothing is
//! scored.
//!
//! - `text`: the first 90% of the book is the train split, the last 10% the test split. A batch
//!   row is a window of `ctx + 1` characters at a start drawn by the step's generator; the test
//!   set is the test split cut into consecutive windows. Every position is scored.
//! - `reverse` and `sort`: `k` digits, `|`, then the same digits reversed (sorted ascending),
//!   padded with `.`; `k = min(8, (ctx - 1) / 2)`. Only the answer's `k` digits are scored.
//! - `add`: two `k`-digit numbers (zero-padded) as `a+b=`, then their sum as `k + 1` digits,
//!   padded; `k = min(8, (ctx - 3) / 3)` (so `ctx >= 6`). The `k + 1` sum digits are scored.
//!
//! Training rows of the algorithmic tasks are fresh examples drawn from the step's generator
//! (`Rng::derive(seed, "batch", step)`); their test set is [`ALGORITHMIC_TEST_EXAMPLES`] fixed
//! examples from `Rng::derive(seed, "tokens-test", 0)`.

use crate::config::Task;
use crate::rng::Rng;

/// The target of a position where nothing is scored (`-1` in batch files and in the arena).
pub const NO_TARGET: u32 = u32::MAX;
/// Test examples of the algorithmic tasks.
pub const ALGORITHMIC_TEST_EXAMPLES: usize = 512;
/// Longest operand of the algorithmic tasks.
const MAX_DIGITS: usize = 8;

// Tokens of the algorithmic tasks: the digits are their own values.
const SEPARATOR: u32 = 10; // '|'
const PLUS: u32 = 11; // '+'
const EQUALS: u32 = 12; // '='
const PAD: u32 = 13; // '.'
const ALGORITHMIC_SYMBOLS: [char; 14] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '|', '+', '=', '.'];

/// The text of the `text` task.
pub fn corpus() -> &'static str {
    lipsum::LIBER_PRIMUS
}

/// The characters tokens stand for, in token order: the text's distinct characters sorted by
/// code point, or the digits and `| + = .` of the algorithmic tasks.
pub fn vocabulary(task: Task) -> Vec<char> {
    match task {
        Task::Text => {
            let mut chars: Vec<char> = corpus().chars().collect();
            chars.sort_unstable();
            chars.dedup();
            chars
        }
        _ => ALGORITHMIC_SYMBOLS.to_vec(),
    }
}

/// Tokens of the vocabulary (the transformer's classes).
pub fn vocabulary_size(task: Task) -> usize {
    match task {
        // Counted once: the page asks for it on every control change.
        Task::Text => {
            static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
            *SIZE.get_or_init(|| vocabulary(Task::Text).len())
        }
        _ => ALGORITHMIC_SYMBOLS.len(),
    }
}

/// Digits per operand of an algorithmic task at context `ctx`.
pub fn digits(task: Task, ctx: usize) -> usize {
    match task {
        Task::Add => MAX_DIGITS.min(ctx.saturating_sub(3) / 3).max(1),
        _ => MAX_DIGITS.min(ctx.saturating_sub(1) / 2).max(1),
    }
}

/// Shortest context a task fits in.
pub fn min_context(task: Task) -> usize {
    match task {
        Task::Add => 6,
        _ => 4,
    }
}

/// Scored positions per example.
pub fn scored_per_example(task: Task, ctx: usize) -> usize {
    match task {
        Task::Text => ctx,
        Task::Add => digits(task, ctx) + 1,
        _ => digits(task, ctx),
    }
}

/// Where an algorithmic example's answer starts (the position of its first token) and how many
/// tokens it has.
pub fn answer_span(task: Task, ctx: usize) -> (usize, usize) {
    let k = digits(task, ctx);
    let start = match task {
        Task::Add => 2 * k + 2,
        _ => k + 1,
    };
    (start, scored_per_example(task, ctx))
}

/// The tokens of `text`, and the characters that are not in the vocabulary (left out).
pub fn encode(task: Task, text: &str) -> (Vec<u32>, Vec<char>) {
    let vocabulary = vocabulary(task);
    let (mut tokens, mut unknown) = (Vec::new(), Vec::new());
    for ch in text.chars() {
        match vocabulary.iter().position(|&v| v == ch) {
            Some(t) => tokens.push(t as u32),
            None => unknown.push(ch),
        }
    }
    (tokens, unknown)
}

/// The token sequences of one split of a token task.
pub struct TokenSet {
    pub ctx: usize,
    /// Examples back to back: `[examples, ctx]` inputs and targets.
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
}

impl TokenSet {
    pub fn examples(&self) -> usize {
        self.targets.len() / self.ctx.max(1)
    }
}

/// A token task's data: the text's two splits as token streams, or the algorithmic test set.
pub struct TokenData {
    pub task: Task,
    pub ctx: usize,
    seed: u32,
    /// `text`: the train split's tokens, windows of which are drawn per batch.
    train_stream: Vec<u32>,
    pub test: TokenSet,
}

impl TokenData {
    pub fn new(task: Task, ctx: usize, seed: u32) -> TokenData {
        let (train_stream, test) = match task {
            Task::Text => {
                let mut stream = text_tokens();
                let split = stream.len() * 9 / 10;
                let windows = (stream.len() - split - 1) / ctx;
                let mut set = TokenSet { ctx, inputs: Vec::new(), targets: Vec::new() };
                for w in 0..windows {
                    let start = split + w * ctx;
                    set.inputs.extend_from_slice(&stream[start..start + ctx]);
                    set.targets.extend_from_slice(&stream[start + 1..start + ctx + 1]);
                }
                stream.truncate(split);
                (stream, set)
            }
            _ => (Vec::new(), algorithmic_set(task, ctx, &mut Rng::derive(seed, "tokens-test", 0), ALGORITHMIC_TEST_EXAMPLES)),
        };
        TokenData { task, ctx, seed, train_stream, test }
    }

    /// The training batch of step `step`: `rows` examples (`[rows, ctx]` inputs and targets).
    pub fn batch(&self, step: u64, rows: usize) -> TokenSet {
        let mut rng = Rng::derive(self.seed, "batch", step);
        let ctx = self.ctx;
        match self.task {
            Task::Text => {
                let mut set = TokenSet { ctx, inputs: Vec::with_capacity(rows * ctx), targets: Vec::with_capacity(rows * ctx) };
                let starts = (self.train_stream.len() - ctx) as u64;
                for _ in 0..rows {
                    let start = rng.below(starts) as usize;
                    set.inputs.extend_from_slice(&self.train_stream[start..start + ctx]);
                    set.targets.extend_from_slice(&self.train_stream[start + 1..start + ctx + 1]);
                }
                set
            }
            task => algorithmic_set(task, ctx, &mut rng, rows),
        }
    }
}

/// The whole text as tokens.
fn text_tokens() -> Vec<u32> {
    let vocabulary = vocabulary(Task::Text);
    corpus().chars().map(|ch| vocabulary.binary_search(&ch).expect("every character is in the vocabulary") as u32).collect()
}

/// `examples` fresh examples of an algorithmic task.
fn algorithmic_set(task: Task, ctx: usize, rng: &mut Rng, examples: usize) -> TokenSet {
    let k = digits(task, ctx);
    let mut set = TokenSet { ctx, inputs: Vec::with_capacity(examples * ctx), targets: Vec::with_capacity(examples * ctx) };
    let mut sequence = Vec::with_capacity(ctx + 1);
    for _ in 0..examples {
        sequence.clear();
        let operand = |rng: &mut Rng| -> Vec<u32> { (0..k).map(|_| rng.below(10) as u32).collect() };
        let answer_start = match task {
            Task::Add => {
                let (a, b) = (operand(rng), operand(rng));
                let value = |digits: &[u32]| digits.iter().fold(0u64, |v, &d| v * 10 + d as u64);
                let sum = value(&a) + value(&b);
                sequence.extend(a.iter().chain(&[PLUS]).chain(&b).chain(&[EQUALS]));
                let answer_start = sequence.len();
                sequence.extend((0..=k).rev().map(|p| (sum / 10u64.pow(p as u32) % 10) as u32));
                answer_start
            }
            _ => {
                let a = operand(rng);
                let mut answer = a.clone();
                if task == Task::Sort {
                    answer.sort_unstable();
                } else {
                    answer.reverse();
                }
                sequence.extend(a.iter().chain(&[SEPARATOR]));
                let answer_start = sequence.len();
                sequence.extend(answer);
                answer_start
            }
        };
        sequence.resize(ctx + 1, PAD);
        let full = &sequence;
        set.inputs.extend_from_slice(&full[..ctx]);
        // Position i predicts token i + 1; only the answer's tokens are scored.
        set.targets.extend((0..ctx).map(|i| {
            if i + 1 >= answer_start && i + 1 < answer_start + scored_per_example(task, ctx) {
                full[i + 1]
            } else {
                NO_TARGET
            }
        }));
    }
    set
}

/// Token sequences as the text they stand for.
pub fn decode(task: Task, tokens: &[u32]) -> String {
    let vocabulary = vocabulary(task);
    tokens.iter().map(|&t| vocabulary.get(t as usize).copied().unwrap_or('?')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_splits_and_windows_follow_the_book() {
        let data = TokenData::new(Task::Text, 16, 1);
        let vocabulary = vocabulary(Task::Text);
        assert!(vocabulary.len() > 40 && vocabulary.len() < 100, "{} characters", vocabulary.len());
        assert!(corpus().len() > 40_000);
        // Test windows: consecutive pieces of the last tenth, targets shifted by one.
        let first = decode(Task::Text, &data.test.inputs[..16]);
        let start = corpus().chars().count() * 9 / 10;
        assert_eq!(first, corpus().chars().skip(start).take(16).collect::<String>());
        assert_eq!(&data.test.targets[..15], &data.test.inputs[1..16]);
        assert!(data.test.examples() > 100);
        // A batch row is a window of the train split, deterministic in (seed, step).
        let batch = data.batch(3, 4);
        assert_eq!(batch.examples(), 4);
        assert_eq!(&batch.targets[..15], &batch.inputs[1..16]);
        let row = decode(Task::Text, &batch.inputs[..16]);
        let train: String = corpus().chars().take(start).collect();
        assert!(train.contains(&row), "{row:?} is not in the train split");
        assert_eq!(batch.inputs, data.batch(3, 4).inputs);
        assert_ne!(batch.inputs, data.batch(4, 4).inputs);
    }

    #[test]
    fn algorithmic_examples_are_right_and_score_only_the_answer() {
        for (task, ctx) in [(Task::Reverse, 20), (Task::Sort, 20), (Task::Add, 32), (Task::Reverse, 4), (Task::Add, 6)] {
            let data = TokenData::new(task, ctx, 7);
            let set = data.batch(0, 50);
            let k = digits(task, ctx);
            for e in 0..50 {
                let inputs = &set.inputs[e * ctx..(e + 1) * ctx];
                let targets = &set.targets[e * ctx..(e + 1) * ctx];
                let text = decode(task, inputs);
                let scored: String = targets.iter().filter(|&&t| t != NO_TARGET).map(|&t| decode(task, &[t])).collect();
                assert_eq!(scored.len(), scored_per_example(task, ctx), "{text}");
                match task {
                    Task::Add => {
                        let (a, rest) = text.split_once('+').unwrap();
                        let (b, _) = rest.split_once('=').unwrap();
                        assert_eq!((a.len(), b.len()), (k, k), "{text}");
                        let sum: u64 = a.parse::<u64>().unwrap() + b.parse::<u64>().unwrap();
                        assert_eq!(scored, format!("{sum:0width$}", width = k + 1), "{text}");
                    }
                    _ => {
                        let (question, _) = text.split_once('|').unwrap();
                        let mut want: Vec<char> = question.chars().collect();
                        if task == Task::Sort {
                            want.sort_unstable();
                        } else {
                            want.reverse();
                        }
                        assert_eq!(scored, want.into_iter().collect::<String>(), "{text}");
                    }
                }
            }
            assert_eq!(data.test.examples(), ALGORITHMIC_TEST_EXAMPLES);
        }
    }
}
