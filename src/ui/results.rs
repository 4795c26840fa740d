//! The results: a card per variant, the charts of everything measured, the per-block heatmaps,
//! the decision surfaces, and the explainer.

use super::app::AppState;
use super::charts::{heatmap, line_chart, surface, HeatmapStyle, Line};
use super::model::*;
use crate::config::ResidualKind;
use crate::program::{PROBE_EXTENT, PROBE_GRID};
use leptos::prelude::*;

#[component]
pub(super) fn Cards(state: AppState) -> impl IntoView {
    view! {
        <div class="cards">
            {move || state.config.with(|c| c.modes.clone()).into_iter().map(|kind| {
                let latest = move || state.history.with(|h| h.latest.iter().find(|m| m.mode == kind.name()).cloned());
                let series = move || state.history.with(|h| h.series(kind).cloned());
                let step = move || state.history.with(|h| h.last_step(kind).map(|s| s.to_string()).unwrap_or_else(|| "0".into()));
                let depth = state.config.with_untracked(|c| c.depth);
                view! {
                    <div class="card" style=format!("border-color:{}", color(kind))>
                        <h3 style=format!("color:{}", color(kind))>{mode_label(kind)}</h3>
                        <p>"step " <b data-testid=format!("step-{}", kind.name())>{step}</b></p>
                        <p>"loss " <span data-testid=format!("loss-{}", kind.name())>{move || format_value(latest().and_then(|m| m.loss).map(f64::from))}</span>
                           " · acc " {move || format_value(latest().and_then(|m| m.acc).map(f64::from))}</p>
                        <p>"composite gain " <b data-testid=format!("gain-{}", kind.name())>{move || format_value(latest().and_then(|m| m.gain_fwd).map(f64::from))}</b>
                           " · backward " <b data-testid=format!("gain-bwd-{}", kind.name())>{move || format_value(latest().and_then(|m| m.gain_bwd).map(f64::from))}</b></p>
                        {move || series().and_then(|s| s.diverged).map(|(step, block)| {
                            let place = if block >= depth { "the head".to_string() } else { format!("block {block}") };
                            view! {
                                <p class="diverged" data-testid=format!("diverged-{}", kind.name())>
                                    {format!("Diverged at step {step} in {place}: a value became infinite or NaN. Training of this variant stopped; the others go on.")}
                                </p>
                            }
                        })}
                    </div>
                }
            }).collect_view()}
        </div>
    }
}

/// Raw (faint) and smoothed lines of one scalar per variant.
fn scalar_lines(h: &History, smoothing: f64, pick: impl Fn(&Series) -> &Vec<Option<f32>>, dashed: bool, suffix: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    for s in &h.series {
        let Some(kind) = ResidualKind::parse(&s.mode) else { continue };
        let raw = pick(s);
        let smoothed = smooth(raw, smoothing);
        lines.push(Line {
            label: String::new(),
            color: color(kind),
            points: s.step.iter().zip(raw).filter_map(|(&x, y)| Some((x, (*y)? as f64))).collect(),
            faint: true,
            dashed: false,
            legend: None,
        });
        lines.push(Line {
            label: format!("{}{suffix}", mode_label(kind)),
            color: color(kind),
            points: s.step.iter().zip(smoothed).filter_map(|(&x, y)| Some((x, y?))).collect(),
            faint: false,
            dashed,
            legend: None,
        });
    }
    lines
}

/// An imported run's curve of one scalar per variant: dashed, named after its file.
fn imported_lines(state: AppState, smoothing: f64, pick: impl Fn(&Series) -> &Vec<Option<f32>>) -> Vec<Line> {
    state.imported.with(|run| {
        let Some(run) = run else { return Vec::new() };
        // One legend entry for the whole run: the colours name the variants.
        let mut lines: Vec<Line> =
            scalar_lines(&run.history, smoothing, pick, true, " (imported)").into_iter().filter(|l| !l.faint).collect();
        for (i, line) in lines.iter_mut().enumerate() {
            line.legend = Some(if i == 0 { format!("imported {}", run.name) } else { String::new() });
        }
        lines
    })
}

fn test_lines(h: &History, accuracy: bool) -> Vec<Line> {
    h.series
        .iter()
        .filter_map(|s| {
            let kind = ResidualKind::parse(&s.mode)?;
            let points = s.test.iter().filter_map(|&(x, l, a)| Some((x, if accuracy { a? } else { l? } as f64))).collect();
            Some(Line { label: format!("{} test", mode_label(kind)), color: color(kind), points, faint: false, dashed: true, legend: None })
        })
        .collect()
}

#[component]
pub(super) fn Chart(state: AppState, id: &'static str, draw: impl Fn(&web_sys::HtmlCanvasElement, Option<f64>) + 'static) -> impl IntoView {
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    Effect::new(move |_| {
        let hover = state.hover.get().filter(|(chart, _)| *chart == id).map(|(_, x)| x);
        state.history.track();
        state.settings.track();
        state.surfaces.track();
        state.imported.track();
        if let Some(c) = canvas.get() {
            draw(&c, hover);
        }
    });
    view! {
        <canvas node_ref=canvas class="chart" data-chart=id role="img"
            on:mousemove=move |ev| state.hover.set(Some((id, ev.offset_x() as f64)))
            on:mouseleave=move |_| state.hover.set(None)></canvas>
    }
}

#[component]
pub(super) fn Charts(state: AppState) -> impl IntoView {
    let s = move || state.settings.get_untracked();
    let block_max = move || state.config.with(|c| c.depth.saturating_sub(1));
    let heat_kind = RwSignal::new(ResidualKind::Hc);
    view! {
        <div class="chart-settings">
            <label>"Smoothing" <input type="range" aria-label="Smoothing" min=0 max=0.99 step=0.01
                prop:value=move || state.settings.with(|s| s.smoothing)
                on:input=move |ev| { let v = event_target_value(&ev).parse().unwrap_or(0.6); state.settings.update(|s| s.smoothing = v) }/></label>
            <label><input type="checkbox" aria-label="Log loss axis" prop:checked=move || state.settings.with(|s| s.loss_log)
                on:change=move |ev| { let v = event_target_checked(&ev); state.settings.update(|s| s.loss_log = v) }/>"log loss axis"</label>
            <label title="A hidden tab pauses training unless this is on (browsers may slow a hidden tab down anyway)."><input type="checkbox" aria-label="Train in a hidden tab" prop:checked=move || state.settings.with(|s| s.train_hidden)
                on:change=move |ev| { let v = event_target_checked(&ev); state.settings.update(|s| s.train_hidden = v) }/>"train in a hidden tab"</label>
        </div>
        <div class="charts">
            <Chart state id="gain" draw=move |c, hover| state.history.with(|h| {
                let mut lines = scalar_lines(h, s().smoothing, |s| &s.gain_fwd, false, "");
                lines.extend(scalar_lines(h, s().smoothing, |s| &s.gain_bwd, true, " bwd").into_iter().filter(|l| !l.faint));
                lines.splice(0..0, imported_lines(state, s().smoothing, |s| &s.gain_fwd));
                line_chart(c, "Composite gain, log scale (solid forward, dashed backward): HC climbs, mHC stays at 1", &lines, true, hover)
            })/>
            <Chart state id="loss" draw=move |c, hover| state.history.with(|h| {
                let mut lines = scalar_lines(h, s().smoothing, |s| &s.loss, false, "");
                lines.extend(test_lines(h, false));
                lines.splice(0..0, imported_lines(state, s().smoothing, |s| &s.loss));
                line_chart(c, "Loss (train solid, test dashed)", &lines, s().loss_log, hover)
            })/>
            <Chart state id="acc" draw=move |c, hover| state.history.with(|h| {
                let mut lines = scalar_lines(h, s().smoothing, |s| &s.acc, false, "");
                lines.extend(test_lines(h, true));
                lines.splice(0..0, imported_lines(state, s().smoothing, |s| &s.acc));
                line_chart(c, "Accuracy", &lines, false, hover)
            })/>
            <Chart state id="grad" draw=move |c, hover| state.history.with(|h| {
                let mut lines = scalar_lines(h, s().smoothing, |s| &s.grad_norm, false, "");
                lines.splice(0..0, imported_lines(state, s().smoothing, |s| &s.grad_norm));
                line_chart(c, "Gradient norm (log scale)", &lines, true, hover)
            })/>
            <Chart state id="profile" draw=move |c, hover| state.history.with(|h| {
                let mut lines = Vec::new();
                for m in &h.latest {
                    let Some(kind) = ResidualKind::parse(m.mode) else { continue };
                    for (values, dashed, what) in [(&m.gain_fwd_blocks, false, "fwd"), (&m.gain_bwd_blocks, true, "bwd")] {
                        let points = values.iter().enumerate().filter_map(|(l, v)| Some((l as f64, (*v)? as f64))).collect();
                        lines.push(Line { label: format!("{} {what}", mode_label(kind)), color: color(kind), points, faint: false, dashed, legend: None });
                    }
                }
                line_chart(c, "Gain by block, latest step: prefix products H_l..H_0 (solid), suffix H_L-1..H_l (dashed)", &lines, true, hover)
            })/>
        </div>
        <div class="block-views">
            <div class="row">
                <label>"Variant" <select aria-label="Heatmap variant" on:change=move |ev| {
                    if let Some(k) = ResidualKind::parse(&event_target_value(&ev)) { heat_kind.set(k) }
                }>
                    {ResidualKind::ALL.into_iter().map(|k| view! { <option value=k.name() selected=move || heat_kind.get() == k>{mode_label(k)}</option> }).collect_view()}
                </select></label>
                <label>"Per block" <select aria-label="Per-block quantity" on:change=move |ev| {
                    let v = if event_target_value(&ev) == "grad" { HeatmapKind::GradNorm } else { HeatmapKind::StreamRms };
                    state.settings.update(|s| s.heatmap = v)
                }>
                    <option value="rms" selected=move || state.settings.with(|s| s.heatmap == HeatmapKind::StreamRms)>"stream RMS"</option>
                    <option value="grad" selected=move || state.settings.with(|s| s.heatmap == HeatmapKind::GradNorm)>"gradient norm"</option>
                </select></label>
                <label>"Block" <input type="range" aria-label="Block" min=0 max=block_max step=1
                    prop:value=move || state.settings.with(|s| s.block)
                    on:input=move |ev| { let v = event_target_value(&ev).parse().unwrap_or(0); state.settings.update(|s| s.block = v) }/>
                    <output>{move || state.settings.with(|s| s.block)}</output></label>
            </div>
            <Chart state id="depth-step" draw=move |c, _| state.history.with(|h| {
                heat_kind.track();
                let Some(series) = h.series(heat_kind.get_untracked()) else { return heatmap(c, "pick a variant that is being trained", &[], 0, 0, &HeatmapStyle { log: true, sums: false, y_label: "", x_label: "" }) };
                let grad = s().heatmap == HeatmapKind::GradNorm;
                let depth = series.blocks.first().map(|b| b.1.len()).unwrap_or(0);
                let cols = series.blocks.len();
                let mut values = vec![None; depth * cols];
                for (j, (_, rms, g)) in series.blocks.iter().enumerate() {
                    for (l, v) in (if grad { g } else { rms }).iter().enumerate().take(depth) {
                        values[l * cols + j] = *v;
                    }
                }
                let what = if grad { "gradient norm" } else { "stream RMS" };
                heatmap(c, &format!("{} per block (rows) over steps (columns), log colour", what), &values, depth, cols, &HeatmapStyle { log: true, sums: false, y_label: "block 0 at top", x_label: "step →" })
            })/>
            <Chart state id="h-res" draw=move |c, _| state.history.with(|h| {
                heat_kind.track();
                let kind = heat_kind.get_untracked();
                let block = s().block;
                let m = h.latest.iter().find(|m| m.mode == kind.name());
                let n = state.config.with_untracked(|c| c.streams as usize);
                match m.and_then(|m| m.h_res.get(block)) {
                    Some(row) if row.len() == n * n => {
                        let values: Vec<Option<f32>> = row.iter().map(|&v| Some(v)).collect();
                        heatmap(c, &format!("{} H_res of block {block} (mixes the streams), batch mean", mode_label(kind)), &values, n, n, &HeatmapStyle { log: false, sums: true, y_label: "", x_label: "column sums ↑" })
                    }
                    _ => heatmap(c, "H_res appears for HC and mHC after the first measured step", &[], 0, 0, &HeatmapStyle { log: false, sums: true, y_label: "", x_label: "" }),
                }
            })/>
            <Chart state id="h-pre-post" draw=move |c, _| state.history.with(|h| {
                heat_kind.track();
                let kind = heat_kind.get_untracked();
                let block = s().block;
                let m = h.latest.iter().find(|m| m.mode == kind.name());
                let n = state.config.with_untracked(|c| c.streams as usize);
                match m.and_then(|m| Some((m.h_pre.get(block)?, m.h_post.get(block)?))) {
                    Some((pre, post)) if pre.len() == n && post.len() == n => {
                        let values: Vec<Option<f32>> = pre.iter().chain(post).map(|&v| Some(v)).collect();
                        heatmap(c, &format!("{} H_pre (top: how block {block} reads the streams) and H_post (bottom: how it writes them)", mode_label(kind)), &values, 2, n, &HeatmapStyle { log: false, sums: true, y_label: "", x_label: "stream →" })
                    }
                    _ => heatmap(c, "H_pre and H_post appear for HC and mHC after the first measured step", &[], 0, 0, &HeatmapStyle { log: false, sums: true, y_label: "", x_label: "" }),
                }
            })/>
            <p class="caption" data-testid="ds-caption">{move || state.history.with(|h| {
                let m = h.latest.iter().find(|m| m.mode == "mhc")?;
                let (r, c) = (m.ds_err_row?, m.ds_err_col?);
                Some(format!(
                    "mHC's doubly-stochastic error: the largest |row sum − 1| ({}) and |column sum − 1| ({}) of H_res over every example of the batch and every block, at the last measured step.",
                    format_value(Some(r as f64)), format_value(Some(c as f64))
                ))
            })}</p>
        </div>
        <div class="surfaces">
            {move || state.config.with(|c| c.task.is_2d()).then(|| state.config.with(|c| c.modes.clone()).into_iter().map(|kind| view! {
                <Chart state id=kind.name() draw=move |c, _| {
                    let probs = state.surfaces.with(|s| s.iter().find(|(k, _)| *k == kind).map(|(_, p)| p.clone()).unwrap_or_default());
                    state.points.with(|p| surface(c, &format!("{} decision boundary", mode_label(kind)), &probs, PROBE_GRID, PROBE_EXTENT, p));
                }/>
            }).collect_view())}
        </div>
    }
}

#[component]
pub(super) fn Explainer() -> impl IntoView {
    view! {
        <section class="explain">
            <h2>"What you are looking at"</h2>
            <p><b>"Residual networks"</b>" add each block's output to one stream: "<i>"x ← x + F(x)"</i>". The identity path keeps signals and gradients flowing through many layers."</p>
            <p><b>"Hyper-Connections (HC)"</b>" widen that stream into n parallel streams and learn, per block, how to read them ("<i>"H_pre"</i>"), where to write ("<i>"H_post"</i>") and how to mix them ("<i>"H_res"</i>", an n × n matrix). At initialisation HC is exactly a residual network, and it can learn better connections."</p>
            <p>"But across L blocks the mixing matrices multiply. Nothing keeps the product near the identity, so its size, the "<b>"composite gain"</b>" (largest absolute row sum of the product, forward; column sum, backward), can grow layer after layer. In DeepSeek's 27B model it reached about 3000 and training spiked."</p>
            <p><b>"mHC"</b>" (DeepSeek, 2025) projects each "<i>"H_res"</i>" onto the doubly-stochastic matrices (non-negative, every row and column summing to 1) with 20 iterations of "<b>"Sinkhorn-Knopp"</b>": divide every column by its sum, then every row by its sum, and repeat. Products of such matrices stay doubly stochastic, so the composite gain stays at 1 however deep the network. Fewer iterations leave the column sums slightly off: watch the backward gain."</p>
            <p>"Read more: "<a href="https://arxiv.org/abs/2512.24880">"mHC, arXiv 2512.24880"</a>" · "<a href="https://arxiv.org/abs/2409.19606">"Hyper-Connections, arXiv 2409.19606"</a>"."</p>
        </section>
    }
}
