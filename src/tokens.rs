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

use crate::config::{Config, Task};
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

/// The `text` key's value for the built-in book.
pub const BOOK: u32 = 0;
/// Shortest text of a user's own: its last tenth must hold a test window at the longest context.
pub const MIN_TEXT_CHARS: usize = 3000;
/// Longest text of a user's own (a browser keeps it in local storage).
pub const MAX_TEXT_CHARS: usize = 1_000_000;
/// Most distinct characters a text may have (the transformer's vocabulary).
pub const MAX_VOCABULARY: usize = 256;

/// Why a text cannot be trained on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TextError {
    #[error("the text has {0} characters; it needs at least {MIN_TEXT_CHARS} (a tenth of it is the test split)")]
    TooShort(usize),
    #[error("the text has {0} characters; at most {MAX_TEXT_CHARS} fit")]
    TooLong(usize),
    #[error("the text has {0} different characters; at most {MAX_VOCABULARY} fit in the vocabulary")]
    TooManyCharacters(usize),
    #[error("this experiment trains on a text of its own (text={0}) that is not loaded here: paste that text again, or set text=0 for the built-in book")]
    Unknown(u32),
}

/// A text the `text` task trains on, with its vocabulary and its tokens.
pub struct Corpus {
    /// The `text` key's value: [`BOOK`], or the hash of the user's text ([`text_id`]).
    pub id: u32,
    pub text: String,
    /// Its distinct characters sorted by code point, in token order.
    pub vocabulary: Vec<char>,
    pub tokens: Vec<u32>,
}

impl Corpus {
    fn new(id: u32, text: &str) -> Corpus {
        let mut vocabulary: Vec<char> = text.chars().collect();
        vocabulary.sort_unstable();
        vocabulary.dedup();
        let tokens = text.chars().map(|ch| vocabulary.binary_search(&ch).expect("every character is in the vocabulary") as u32).collect();
        Corpus { id, text: text.to_string(), vocabulary, tokens }
    }
}

/// The `text` value that names `text`: FNV-1a (32 bits) of its UTF-8 bytes, never [`BOOK`].
pub fn text_id(text: &str) -> u32 {
    let hash = text.bytes().fold(0x811C_9DC5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193));
    hash.max(1)
}

/// Texts known in this process: the book first, then users' texts as they are registered.
fn texts() -> &'static std::sync::Mutex<Vec<std::sync::Arc<Corpus>>> {
    static TEXTS: std::sync::OnceLock<std::sync::Mutex<Vec<std::sync::Arc<Corpus>>>> = std::sync::OnceLock::new();
    TEXTS.get_or_init(|| std::sync::Mutex::new(vec![std::sync::Arc::new(Corpus::new(BOOK, lipsum::LIBER_PRIMUS))]))
}

/// Makes a user's text trainable in this process; returns its `text` value. Line endings are
/// kept as given; the same text always gets the same value.
pub fn register_text(text: &str) -> Result<u32, TextError> {
    let chars = text.chars().count();
    if chars < MIN_TEXT_CHARS {
        return Err(TextError::TooShort(chars));
    }
    if chars > MAX_TEXT_CHARS {
        return Err(TextError::TooLong(chars));
    }
    let id = text_id(text);
    let mut known = texts().lock().unwrap_or_else(|e| e.into_inner());
    if known.iter().any(|c| c.id == id) {
        return Ok(id);
    }
    let corpus = Corpus::new(id, text);
    if corpus.vocabulary.len() > MAX_VOCABULARY {
        return Err(TextError::TooManyCharacters(corpus.vocabulary.len()));
    }
    known.push(std::sync::Arc::new(corpus));
    Ok(id)
}

/// The text named by `id`, when it is the book or a registered text.
pub fn corpus(id: u32) -> Result<std::sync::Arc<Corpus>, TextError> {
    let known = texts().lock().unwrap_or_else(|e| e.into_inner());
    known.iter().find(|c| c.id == id).cloned().ok_or(TextError::Unknown(id))
}

/// The text `config` trains on; the book stands in for a text that is not loaded (a trainer
/// refuses it first: [`check_text`]).
fn corpus_of(config: &Config) -> std::sync::Arc<Corpus> {
    corpus(config.text).or_else(|_| corpus(BOOK)).expect("the book is always known")
}

/// Refuses a `text` experiment whose text is not loaded here.
pub fn check_text(config: &Config) -> Result<(), TextError> {
    if config.task == Task::Text {
        corpus(config.text)?;
    }
    Ok(())
}

/// The characters tokens stand for, in token order: the text's distinct characters sorted by
/// code point, or the digits and `| + = .` of the algorithmic tasks.
pub fn vocabulary(config: &Config) -> Vec<char> {
    match config.task {
        Task::Text => corpus_of(config).vocabulary.clone(),
        _ => ALGORITHMIC_SYMBOLS.to_vec(),
    }
}

/// Tokens of the vocabulary (the transformer's classes).
pub fn vocabulary_size(config: &Config) -> usize {
    match config.task {
        Task::Text => corpus_of(config).vocabulary.len(),
        _ => ALGORITHMIC_SYMBOLS.len(),
    }
}

/// The start of the test split's first sentence, `chars` characters long: a prompt to write
/// after that the model has not trained on.
pub fn test_prompt(config: &Config, chars: usize) -> String {
    let corpus = corpus_of(config);
    let text = corpus.text.as_str();
    let split = text.char_indices().nth(corpus.tokens.len() * 9 / 10).map_or(0, |(i, _)| i);
    let rest = &text[split..];
    let start = rest.find(". ").map_or(0, |i| i + 2);
    rest[start..].chars().take(chars.max(1)).collect()
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
pub fn encode(config: &Config, text: &str) -> (Vec<u32>, Vec<char>) {
    let vocabulary = vocabulary(config);
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
    /// The data of `config`'s token task (for `text`, call [`check_text`] first: a text that is
    /// not loaded is replaced by the book).
    pub fn new(config: &Config) -> TokenData {
        let (task, ctx, seed) = (config.task, config.ctx as usize, config.seed);
        let (train_stream, test) = match task {
            Task::Text => {
                let mut stream = corpus_of(config).tokens.clone();
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
pub fn decode(config: &Config, tokens: &[u32]) -> String {
    let vocabulary = vocabulary(config);
    tokens.iter().map(|&t| vocabulary.get(t as usize).copied().unwrap_or('?')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_config(task: Task, ctx: u32, seed: u32) -> Config {
        Config { task, ctx, seed, ..Config::default() }
    }

    #[test]
    fn a_users_text_is_named_by_its_hash_and_trains_like_the_book() {
        let text: String = (0..800).map(|i| format!("ab{} ", i % 7)).collect::<String>() + "zz\n";
        let id = register_text(&text).unwrap();
        assert_eq!(id, text_id(&text));
        assert_eq!(register_text(&text), Ok(id), "the same text, the same value");
        assert_ne!(id, BOOK);
        let config = Config { text: id, ..token_config(Task::Text, 8, 3) };
        assert_eq!(vocabulary(&config), ['\n', ' ', '0', '1', '2', '3', '4', '5', '6', 'a', 'b', 'z']);
        assert_eq!(config.classes(), 12);
        let data = TokenData::new(&config);
        assert_eq!(decode(&config, &data.batch(0, 1).inputs).len(), 8);
        let start = text.chars().count() * 9 / 10;
        assert_eq!(decode(&config, &data.test.inputs[..8]), text.chars().skip(start).take(8).collect::<String>());
        assert_eq!(encode(&config, "ab9c"), (vec![9, 10], vec!['9', 'c']));
        // Refusals, in words.
        assert_eq!(register_text("short"), Err(TextError::TooShort(5)));
        let wide: String = (0..3000u32).map(|i| char::from_u32(0x4e00 + i).unwrap()).collect();
        assert_eq!(register_text(&wide), Err(TextError::TooManyCharacters(3000)));
        let unknown = Config { text: 12345, ..config.clone() };
        assert_eq!(check_text(&unknown).unwrap_err(), TextError::Unknown(12345));
        assert!(check_text(&Config { task: Task::Add, ..unknown }).is_ok(), "only `text` reads it");
        assert!(check_text(&Config { text: BOOK, ..config }).is_ok());
    }

    #[test]
    fn text_splits_and_windows_follow_the_book() {
        let config = token_config(Task::Text, 16, 1);
        let data = TokenData::new(&config);
        let vocabulary = vocabulary(&config);
        assert!(vocabulary.len() > 40 && vocabulary.len() < 100, "{} characters", vocabulary.len());
        let book = lipsum::LIBER_PRIMUS;
        assert!(book.len() > 40_000);
        // Test windows: consecutive pieces of the last tenth, targets shifted by one.
        let first = decode(&config, &data.test.inputs[..16]);
        let start = book.chars().count() * 9 / 10;
        assert_eq!(first, book.chars().skip(start).take(16).collect::<String>());
        assert_eq!(&data.test.targets[..15], &data.test.inputs[1..16]);
        assert!(data.test.examples() > 100);
        // A batch row is a window of the train split, deterministic in (seed, step).
        let batch = data.batch(3, 4);
        assert_eq!(batch.examples(), 4);
        assert_eq!(&batch.targets[..15], &batch.inputs[1..16]);
        let row = decode(&config, &batch.inputs[..16]);
        let train: String = book.chars().take(start).collect();
        assert!(train.contains(&row), "{row:?} is not in the train split");
        assert_eq!(batch.inputs, data.batch(3, 4).inputs);
        assert_ne!(batch.inputs, data.batch(4, 4).inputs);
    }

    #[test]
    fn algorithmic_examples_are_right_and_score_only_the_answer() {
        for (task, ctx) in [(Task::Reverse, 20), (Task::Sort, 20), (Task::Add, 32), (Task::Reverse, 4), (Task::Add, 6)] {
            let config = token_config(task, ctx as u32, 7);
            let data = TokenData::new(&config);
            let set = data.batch(0, 50);
            let k = digits(task, ctx);
            for e in 0..50 {
                let inputs = &set.inputs[e * ctx..(e + 1) * ctx];
                let targets = &set.targets[e * ctx..(e + 1) * ctx];
                let text = decode(&config, inputs);
                let scored: String = targets.iter().filter(|&&t| t != NO_TARGET).map(|&t| decode(&config, &[t])).collect();
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
