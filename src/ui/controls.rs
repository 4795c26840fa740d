//! The controls: play / step / reset / share, exports and import, presets, and one control per
//! config key with its explanation.

use super::app::AppState;
use super::backend::prepare;
use super::driver;
use super::imported::parse_metrics;
use super::model::*;
use super::own_text::OwnTextInput;
use super::run::{play_loop, slice_once};
use crate::checkpoint::{save_checkpoint, TensorFile};
use crate::config::{Config, KeyKind, ResidualKind};
use crate::export::{stored_zip, torch_export};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Play: picks the backend for the experiment (which may scale it, or ask first), then trains.
pub(super) fn start(state: AppState) {
    state.message.set(None);
    state.playing.set(true);
    spawn_local(async move {
        if !prepare(state).await {
            return state.playing.set(false);
        }
        // Scaling the experiment resets the run, and with it Play.
        state.playing.set(true);
        play_loop(state).await
    });
}

#[component]
pub(super) fn Buttons(state: AppState) -> impl IntoView {
    let play = move |_| {
        if state.playing.get_untracked() {
            state.playing.set(false);
        } else {
            start(state);
        }
    };
    let step = move |_| {
        if state.playing.get_untracked() {
            return;
        }
        spawn_local(async move {
            if !prepare(state).await {
                return;
            }
            match state.session() {
                Ok(session) => {
                    if let Err(e) = slice_once(state, &session).await {
                        state.fail(e);
                    }
                }
                Err(e) => state.fail(e),
            }
        });
    };
    let share = move |_| {
        let url = driver::share_url(&state.share_query());
        spawn_local(async move {
            let copied = driver::copy(&url).await;
            state.message.set(Some(if copied { format!("Link copied: {url}") } else { format!("Copy this link: {url}") }));
        });
    };
    view! {
        <div class="buttons">
            <button class="primary" on:click=play data-testid="play">{move || if state.playing.get() { "Pause" } else { "Play" }}</button>
            <button on:click=step disabled=move || state.playing.get()>"Step"</button>
            <button on:click=move |_| state.reset()>"Reset"</button>
            <button on:click=share>"Share"</button>
            <Export state/>
            <span class="rate" data-testid="rate">{move || format!("{:.1} steps/s", state.rate.get())}</span>
            <span class="rate" data-testid="saved-step" title=move || {
                let size = state.persist.last_save.get().map(|(bytes, ms)| format!(" ({:.1} MB, written in {ms:.0} ms)", bytes as f64 / 1e6)).unwrap_or_default();
                format!("Saved in this browser{size}: a reload offers to resume from here.")
            }>
                {move || state.persist.saved_step.get().map(|s| format!("saved at step {s}"))}</span>
        </div>
    }
}

#[component]
fn Export(state: AppState) -> impl IntoView {
    let export_metrics = move |json: bool| {
        let result = state.history.with_untracked(|h| {
            if json {
                driver::download("mhc-metrics.jsonl", "application/json", h.to_jsonl().as_bytes())
            } else {
                driver::download("mhc-metrics.csv", "text/csv", h.to_csv().as_bytes())
            }
        });
        if let Err(e) = result {
            state.message.set(Some(e));
        }
    };
    let export_weights = move |kind: ResidualKind| {
        spawn_local(async move {
            let Some(session) = state.session.get_value() else {
                return state.message.set(Some("nothing trained yet: press Play or Step first".into()));
            };
            #[allow(clippy::await_holding_refcell_ref)]
            let result = async {
                let trainer = session.try_borrow().map_err(|_| "busy, try again".to_string())?;
                let variant = trainer.variant(kind).ok_or("that variant is not being trained")?;
                let values = variant.params().await.map_err(|e| e.to_string())?;
                let bytes = save_checkpoint(&variant.program.layout, &values, &trainer.config).map_err(|e| e.to_string())?;
                driver::download(&format!("mhc-{}.safetensors", kind.name()), "application/octet-stream", &bytes)
            }
            .await;
            if let Err(e) = result {
                state.message.set(Some(e));
            }
        });
    };
    let import = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
        spawn_local(async move {
            let result: Result<String, String> = async {
                let bytes = driver::read_file(&file).await?;
                let tensors = TensorFile::parse(&bytes).map_err(|e| e.to_string())?;
                let (ckpt, _) = tensors.experiment().map_err(|e| e.to_string())?;
                let kind = match ckpt.modes.as_slice() {
                    [k] => *k,
                    _ => return Err("the checkpoint must be for one variant".into()),
                };
                state.playing.set(false);
                let session = state.session()?;
                let mut trainer = session.try_borrow_mut().map_err(|_| "busy, try again".to_string())?;
                let layout =
                    trainer.variant(kind).ok_or(format!("{} is not among the variants being trained", kind.name()))?.program.layout.clone();
                let values = tensors.params(&layout).map_err(|e| format!("{e} (depth, width, streams, ffn and task must match)"))?;
                trainer.load_params(kind, &values).map_err(|e| e.to_string())?;
                Ok(format!("loaded {} weights from {}", kind.name(), file.name()))
            }
            .await;
            state.message.set(Some(result.unwrap_or_else(|e| format!("import failed: {e}"))));
        });
    };
    let export_torch = move |_| {
        let config = state.config.get_untracked();
        let result = torch_export(&config)
            .map_err(|e| e.to_string())
            .and_then(|files| driver::download("mhc-pytorch.zip", "application/zip", &stored_zip(&files)).map(|_| files.len()));
        state.message.set(Some(match result {
            Ok(count) => format!(
                "PyTorch project downloaded ({count} files): unzip it and run `python train.py`, or `torchrun --nproc_per_node=N train.py`"
            ),
            Err(e) => format!("export failed: {e}"),
        }));
    };
    let import_metrics = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
        input.set_value("");
        spawn_local(async move {
            let result = driver::read_file(&file).await.and_then(|bytes| parse_metrics(&file.name(), &bytes));
            match result {
                Ok(run) => {
                    state.message.set(Some(run.summary()));
                    state.imported.set(Some(run));
                }
                Err(e) => state.message.set(Some(format!("import failed: {e}"))),
            }
        });
    };
    view! {
        <details class="export">
            <summary>"Export"</summary>
            <button on:click=export_torch title="train.py (torch only) with the three variants, this experiment's initial weights and data: the same run on your GPUs or a cluster">"PyTorch (.zip)"</button>
            <button on:click=move |_| export_metrics(false)>"Metrics CSV"</button>
            <button on:click=move |_| export_metrics(true)>"Metrics JSON"</button>
            {ResidualKind::ALL.into_iter().map(|k| view! {
                <button on:click=move |_| export_weights(k)>{format!("Weights: {}", k.name())}</button>
            }).collect_view()}
            <label class="import">"Import weights" <input type="file" accept=".safetensors" on:change=import/></label>
            <label class="import" title="metrics.jsonl of `python train.py --metrics` or of the runner: drawn dashed over the live curves">
                "Import metrics" <input type="file" accept=".jsonl,.json" on:change=import_metrics/></label>
            {move || state.imported.with(|r| r.is_some()).then(|| view! {
                <button on:click=move |_| state.imported.set(None)>"Remove imported curves"</button>
            })}
        </details>
    }
}

#[component]
pub(super) fn Presets(state: AppState) -> impl IntoView {
    view! {
        <div class="presets" role="group" aria-label="Presets">
            {PRESETS.iter().map(|p| {
                let (config, _) = Config::from_query(p.query);
                view! {
                    <button title=p.what on:click=move |_| {
                        // "The story" is the bare link's experiment: on a CPU it may be scaled.
                        // Every other preset is sized to tell its story as it is (scaling the
                        // crash would lose the crash), so picking one answers the heavy-CPU
                        // question before it is asked.
                        let implicit = p.query.is_empty();
                        state.backend.experiment_changed(implicit);
                        if !implicit {
                            state.backend.confirm(&config);
                        }
                        state.config.set(config.clone());
                        state.reset();
                        state.message.set(Some(p.what.to_string()));
                    }>{p.name}</button>
                }
            }).collect_view()}
        </div>
    }
}

#[component]
fn ControlView(state: AppState, control: Control) -> impl IntoView {
    let key = control.key;
    // The explanation is always the control's description; the "?" button shows it on screen.
    let help_id = format!("help-{key}");
    let open = RwSignal::new(false);
    let value = move || state.config.with(|c| c.get(key).unwrap_or_default());
    let kind = kind_of(key);
    let (lo, hi) = match kind {
        // Through the shortest decimal: 0.1f32 as f64 is 0.10000000149, which would shift the
        // slider's step grid off the round values.
        Some(KeyKind::Float { min, max }) => (min.to_string().parse().unwrap_or(0.0), max.to_string().parse().unwrap_or(1.0)),
        Some(KeyKind::Int { min, max }) => (min as f64, max as f64),
        _ => (0.0, 1.0),
    };
    let input = match control.widget {
        Widget::Slider { step, log } => {
            let (min, max) = if log { (lo.log10(), hi.log10()) } else { (lo, hi) };
            view! {
                <input type="range" aria-label=control.label aria-describedby=help_id.clone() min=min max=max step=step
                    prop:value=move || {
                        let v: f64 = value().parse().unwrap_or(0.0);
                        if log { v.log10() } else { v }
                    }
                    on:input=move |ev| {
                        let raw: f64 = event_target_value(&ev).parse().unwrap_or(0.0);
                        let v = if log { format!("{:.3e}", 10f64.powf(raw)) } else { format!("{raw}") };
                        state.set_key(key, &v);
                    }/>
                <output>{value}</output>
            }
            .into_any()
        }
        Widget::Number => view! {
            <input type="number" aria-label=control.label aria-describedby=help_id.clone() min=lo max=hi step="any" prop:value=value
                on:change=move |ev| state.set_key(key, &event_target_value(&ev))/>
        }
        .into_any(),
        Widget::Select => {
            let names: &[&str] = match kind {
                Some(KeyKind::Choice(names)) => names,
                _ => &[],
            };
            view! {
                <select aria-label=control.label aria-describedby=help_id.clone() prop:value=value on:change=move |ev| state.set_key(key, &event_target_value(&ev))>
                    {names.iter().map(|&n| view! { <option value=n selected=move || value() == n>{n}</option> }).collect_view()}
                </select>
            }
            .into_any()
        }
        Widget::OwnText => view! { <OwnTextInput state label=control.label help_id=help_id.clone()/> }.into_any(),
        Widget::Toggles => view! {
            <span class="toggles" role="group" aria-label=control.label aria-describedby=help_id.clone()>
                {ResidualKind::ALL.into_iter().map(|kind| {
                    let on = move || state.config.with(|c| c.modes.contains(&kind));
                    view! {
                        <label style=format!("color:{}", color(kind))>
                            <input type="checkbox" aria-label=mode_label(kind) prop:checked=on on:change=move |ev| {
                                let mut modes = state.config.get_untracked().modes;
                                if event_target_checked(&ev) { modes.push(kind) } else { modes.retain(|m| *m != kind) }
                                if modes.is_empty() {
                                    return state.message.set(Some("keep at least one variant".into()));
                                }
                                let list = ResidualKind::ALL.into_iter().filter(|k| modes.contains(k)).map(|k| k.name()).collect::<Vec<_>>().join(",");
                                state.set_key("modes", &list);
                            }/>
                            {mode_label(kind)}
                        </label>
                    }
                }).collect_view()}
            </span>
        }
        .into_any(),
    };
    view! {
        <div class="control" title=control.help>
            <span class="label">{control.label}</span>
            {input}
            <button class="help-toggle" aria-label=format!("What {} does", control.label) aria-expanded=move || open.get().to_string()
                aria-controls=help_id.clone() on:click=move |_| open.update(|o| *o = !*o)>"?"</button>
            <p class="help" id=help_id.clone() data-help=key hidden=move || !open.get()>{control.help}</p>
        </div>
    }
}

#[component]
pub(super) fn Controls(state: AppState) -> impl IntoView {
    let group = move |g: Group, common: bool| {
        CONTROLS
            .iter()
            .filter(move |c| c.group == g && c.common == common)
            .map(move |&control| view! { <ControlView state control/> })
            .collect_view()
    };
    view! {
        <div class="groups">
            {Group::ALL.into_iter().map(|g| view! {
                <fieldset><legend>{g.title()}</legend>{group(g, true)}</fieldset>
            }).collect_view()}
            <details class="more">
                <summary>"More settings"</summary>
                {Group::ALL.into_iter().map(|g| view! {
                    <fieldset><legend>{g.title()}</legend>{group(g, false)}</fieldset>
                }).collect_view()}
            </details>
        </div>
    }
}
