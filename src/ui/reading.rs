//! What the transformers write: for `text`, a sample from each variant after the same prompt at
//! the chosen temperature; for the algorithmic tasks, each variant's greedy answer to a test
//! example; for both, the attention pattern of a chosen block and head. Read on the CPU from
//! each variant's current weights (`sampler.rs`), so it works on either backend.

use super::app::{AppState, Session};
use super::charts::{heatmap, HeatmapStyle};
use super::driver;
use super::model::{color, mode_label};
use super::results::Chart;
use crate::config::{Config, ResidualKind, Task};
use crate::rng::Rng;
use crate::sampler::{draw, AttentionMaps, Sampler};
use crate::tokens::{self, NO_TARGET};
use leptos::prelude::*;

/// Characters sampled per variant.
const SAMPLE_CHARS: usize = 120;
/// Work on the main thread between yields to the browser, in milliseconds.
const SLICE_MS: f64 = 8.0;

/// One variant's reading at one step.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct VariantReading {
    kind: ResidualKind,
    /// The sampled continuation, or the greedy answer.
    written: String,
    /// Algorithmic tasks: whether the answer is the right one.
    right: Option<bool>,
    attention: AttentionMaps,
}

/// What the variants wrote at one step.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Reading {
    step: u64,
    /// The text every variant continued, or the example's question.
    prompt: String,
    /// Algorithmic tasks: the right answer.
    expected: Option<String>,
    /// The characters the attention maps are over.
    attended: Vec<char>,
    variants: Vec<VariantReading>,
}

/// The panel's controls and its last reading. All handles are `Copy`.
#[derive(Clone, Copy)]
pub(super) struct ReadingState {
    pub(super) temperature: RwSignal<f32>,
    /// `None`: the default prompt of the task's text.
    prompt: RwSignal<Option<String>>,
    /// Test example shown for the algorithmic tasks (0-based).
    example: RwSignal<usize>,
    block: RwSignal<usize>,
    head: RwSignal<usize>,
    pub(super) reading: RwSignal<Option<Reading>>,
    /// Why the last reading failed, when it did.
    problem: RwSignal<Option<String>>,
    /// The samplers of the current experiment (made on first use, per generation).
    samplers: StoredValue<Option<(u64, Vec<Sampler>)>, LocalStorage>,
    busy: StoredValue<bool>,
}

impl ReadingState {
    pub(super) fn new() -> ReadingState {
        ReadingState {
            temperature: RwSignal::new(0.8),
            prompt: RwSignal::new(None),
            example: RwSignal::new(0),
            block: RwSignal::new(0),
            head: RwSignal::new(0),
            reading: RwSignal::new(None),
            problem: RwSignal::new(None),
            samplers: StoredValue::new_local(None),
            busy: StoredValue::new(false),
        }
    }

    /// A new experiment: nothing read yet.
    pub(super) fn reset(self) {
        self.reading.set(None);
        self.problem.set(None);
        self.samplers.set_value(None);
        self.block.set(0);
        self.head.set(0);
    }
}

/// The prompt of `text` when the user has not typed one: the start of a test-split sentence,
/// half a context long.
fn default_prompt(config: &Config) -> String {
    tokens::test_prompt(config, config.ctx as usize / 2)
}

/// Reads every running variant's weights and what they write. Skips quietly when the CPU is
/// mid-step or another reading is running; the next refresh catches up.
#[allow(clippy::await_holding_refcell_ref)]
pub(super) async fn refresh_reading(state: AppState, session: &Session) {
    let r = state.reading;
    let config = state.config.get_untracked();
    if !config.task.is_tokens() || r.busy.get_value() {
        return;
    }
    r.busy.set_value(true);
    let result = read(state, session, &config).await;
    r.busy.set_value(false);
    match result {
        Ok(Some(reading)) => {
            r.problem.set(None);
            r.reading.set(Some(reading));
        }
        Ok(None) => {}
        Err(e) => r.problem.set(Some(e)),
    }
}

#[allow(clippy::await_holding_refcell_ref)]
async fn read(state: AppState, session: &Session, config: &Config) -> Result<Option<Reading>, String> {
    let r = state.reading;
    let generation = state.generation.get_untracked();
    let (step, kinds, example) = {
        let Ok(trainer) = session.try_borrow() else { return Ok(None) };
        let kinds: Vec<ResidualKind> = trainer.variants.iter().map(|v| v.kind).collect();
        let ctx = config.ctx as usize;
        let count = trainer.dataset.test_y.len() / ctx.max(1);
        let e = r.example.get_untracked() % count.max(1);
        let x: Vec<u32> = trainer.dataset.test_x.get(e * ctx..(e + 1) * ctx).unwrap_or(&[]).iter().map(|&v| v as u32).collect();
        let y: Vec<u32> = trainer.dataset.test_y.get(e * ctx..(e + 1) * ctx).unwrap_or(&[]).to_vec();
        (trainer.next_step, kinds, (x, y))
    };
    let mut params = Vec::new();
    for &kind in &kinds {
        let values = {
            let Ok(trainer) = session.try_borrow() else { return Ok(None) };
            let Some(variant) = trainer.variant(kind) else { continue };
            match variant.params().await {
                Ok(values) => values,
                // The CPU is mid-step: read at the next refresh.
                Err(crate::trainer::EngineError::Busy) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            }
        };
        params.push((kind, values));
    }
    if state.generation.get_untracked() != generation {
        return Ok(None);
    }
    let mut samplers = match r.samplers.try_update_value(|s| s.take()).flatten() {
        Some((g, samplers)) if g == generation => samplers,
        _ => kinds.iter().map(|&kind| Sampler::new(config, kind)).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?,
    };
    let result = write_with(state, config, step, &mut samplers, &params, example).await;
    if state.generation.get_untracked() == generation {
        r.samplers.set_value(Some((generation, samplers)));
    }
    result
}

async fn write_with(
    state: AppState,
    config: &Config,
    step: u64,
    samplers: &mut [Sampler],
    params: &[(ResidualKind, Vec<f32>)],
    (example_x, example_y): (Vec<u32>, Vec<u32>),
) -> Result<Option<Reading>, String> {
    let r = state.reading;
    let task = config.task;
    let (prompt, expected, attend) = if task == Task::Text {
        let typed = r.prompt.get_untracked().unwrap_or_else(|| default_prompt(config));
        let (tokens, _) = tokens::encode(config, &typed);
        if tokens.is_empty() {
            return Err("the prompt has no character of the text's alphabet: type a few letters".into());
        }
        (tokens.clone(), None, tokens)
    } else {
        let (start, len) = tokens::answer_span(task, config.ctx as usize);
        let want: Vec<u32> = example_y.iter().copied().filter(|&t| t != NO_TARGET).collect();
        if example_x.len() < start || want.len() != len {
            return Ok(None);
        }
        let mut whole = example_x[..start].to_vec();
        whole.extend(&want);
        (example_x[..start].to_vec(), Some(want), whole)
    };
    let temperature = r.temperature.get_untracked();
    let mut variants = Vec::new();
    let mut started = driver::now();
    for (sampler, (kind, values)) in samplers.iter_mut().zip(params) {
        sampler.load(values).map_err(|e| e.to_string())?;
        // The same draws for every variant: differences are the models', not luck's.
        let mut rng = Rng::derive(config.seed, "sample", step);
        let (count, temperature) = match &expected {
            Some(want) => (want.len(), 0.0),
            None => (SAMPLE_CHARS, temperature),
        };
        let mut context = prompt.clone();
        for _ in 0..count {
            let logits = sampler.next_logits(&context).map_err(|e| e.to_string())?;
            context.push(draw(&logits, temperature, &mut rng));
            if driver::now() - started > SLICE_MS {
                driver::yield_now().await;
                started = driver::now();
            }
        }
        let written = context.split_off(prompt.len());
        let attention = sampler.attention(&attend).map_err(|e| e.to_string())?;
        variants.push(VariantReading {
            kind: *kind,
            written: tokens::decode(config, &written),
            right: expected.as_ref().map(|want| *want == written),
            attention,
        });
    }
    let shown = &attend[attend.len().saturating_sub(config.ctx as usize)..];
    Ok(Some(Reading {
        step,
        prompt: tokens::decode(config, &prompt),
        expected: expected.map(|want| tokens::decode(config, &want)),
        attended: tokens::decode(config, shown).chars().collect(),
        variants,
    }))
}

fn attention_chart(kind: ResidualKind) -> &'static str {
    match kind {
        ResidualKind::Residual => "attention-residual",
        ResidualKind::Hc => "attention-hc",
        ResidualKind::Mhc => "attention-mhc",
    }
}

/// Re-reads now when nothing is training (while training, the play loop refreshes).
fn reread(state: AppState) {
    if state.playing.get_untracked() {
        return;
    }
    if let Some(session) = state.session.get_value() {
        leptos::task::spawn_local(async move { refresh_reading(state, &session).await });
    }
}

#[component]
pub(super) fn ReadingPanel(state: AppState) -> impl IntoView {
    let r = state.reading;
    let task = move || state.config.with(|c| c.task);
    let text = move || task() == Task::Text;
    view! {
        <Show when=move || task().is_tokens()>
            <section class="reading" data-testid="reading">
                <h2>{move || if text() { "What each variant writes" } else { "Each variant's answer" }}</h2>
                <div class="row">
                    <Show when=text>
                        <label>"Prompt " <input type="text" aria-label="Prompt" maxlength=200
                            prop:value=move || r.prompt.get().unwrap_or_else(|| state.config.with(default_prompt))
                            on:change=move |ev| { r.prompt.set(Some(event_target_value(&ev))); reread(state) }/></label>
                        <label title="0 always picks the most likely character; higher is more adventurous.">"Temperature "
                            <input type="range" aria-label="Temperature" min=0 max=2 step=0.05
                                prop:value=move || r.temperature.get()
                                on:change=move |ev| { r.temperature.set(event_target_value(&ev).parse().unwrap_or(0.8)); reread(state) }/>
                            <output data-testid="temperature">{move || {
                                let t = r.temperature.get();
                                if t < crate::sampler::GREEDY_BELOW { "0 (greedy)".to_string() } else { format!("{t:.2}") }
                            }}</output></label>
                    </Show>
                    <Show when=move || !text()>
                        <button data-testid="next-example" on:click=move |_| { r.example.update(|e| *e += 1); reread(state) }>"Another test example"</button>
                    </Show>
                    <button data-testid="read-now" on:click=move |_| reread(state)>"Read again"</button>
                </div>
                {move || r.problem.get().map(|p| view! { <p class="message" role="alert" data-testid="reading-problem">{p}</p> })}
                {move || match r.reading.get() {
                    None => view! { <p class="caption" data-testid="reading-empty">"Press Play (or Step): the variants' writing appears here as they learn."</p> }.into_any(),
                    Some(reading) => view! {
                        <p class="caption">{format!("Step {}. ", reading.step)}{match &reading.expected {
                            None => format!("Each variant continues “{}” at temperature {:.2}, with the same random draws.", reading.prompt, r.temperature.get_untracked()),
                            Some(want) => format!("Test example #{}: {} → right answer {}.", r.example.get_untracked() + 1, reading.prompt, want),
                        }}</p>
                        <div class="writing">
                            {reading.variants.iter().map(|v| {
                                let verdict = v.right.map(|ok| if ok { " ✓ right" } else { " ✗ wrong" });
                                view! {
                                    <div class="written" style=format!("border-color:{}", color(v.kind))>
                                        <h3 style=format!("color:{}", color(v.kind))>{mode_label(v.kind)}{verdict}</h3>
                                        <pre data-testid=format!("written-{}", v.kind.name())><span class="prompt">{reading.prompt.clone()}</span>{v.written.clone()}</pre>
                                    </div>
                                }
                            }).collect_view()}
                        </div>
                    }.into_any(),
                }}
                <h3>"Attention"</h3>
                <div class="row">
                    <label>"Block " <input type="range" aria-label="Attention block" min=0 max=move || state.config.with(|c| c.depth.saturating_sub(1)) step=1
                        prop:value=move || r.block.get()
                        on:input=move |ev| r.block.set(event_target_value(&ev).parse().unwrap_or(0))/>
                        <output>{move || r.block.get()}</output></label>
                    <label>"Head " <input type="range" aria-label="Attention head" min=0 max=move || state.config.with(|c| c.heads.saturating_sub(1)) step=1
                        prop:value=move || r.head.get()
                        on:input=move |ev| r.head.set(event_target_value(&ev).parse().unwrap_or(0))/>
                        <output>{move || r.head.get()}</output></label>
                </div>
                <div class="surfaces">
                    {move || state.config.with(|c| c.modes.clone()).into_iter().map(|kind| view! {
                        <Chart state id=attention_chart(kind) draw=move |c, _| r.reading.with(|reading| {
                            let (block, head) = (r.block.get(), r.head.get());
                            let found = reading.as_ref().and_then(|reading| {
                                let v = reading.variants.iter().find(|v| v.kind == kind)?;
                                Some((reading, v.attention.map(block, head)?, v.attention.len))
                            });
                            let title = format!("{} attention, block {block} head {head}", mode_label(kind));
                            match found {
                                Some((reading, map, len)) => {
                                    let values: Vec<Option<f32>> = map.iter().map(|&p| Some(p)).collect();
                                    let shown: String = reading.attended.iter().collect();
                                    heatmap(c, &title, &values, len, len, &HeatmapStyle { log: false, sums: false, y_label: "query ↓", x_label: &format!("key →  over “{shown}”") })
                                }
                                None => heatmap(c, &title, &[], 0, 0, &HeatmapStyle { log: false, sums: false, y_label: "", x_label: "" }),
                            }
                        })/>
                    }).collect_view()}
                </div>
            </section>
        </Show>
    }
}
