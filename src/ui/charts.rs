//! Hand-written canvas charts: line charts (linear or log y, raw series faint under the
//! smoothed line, a hover cursor with exact values), heatmaps with optional row/column sums,
//! and the decision surface of 2-D tasks. Drawing is immediate-mode: each call redraws all.

use super::model::{format_value, linear_ticks, log_ticks};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

const MARGIN_LEFT: f64 = 52.0;
const MARGIN_RIGHT: f64 = 10.0;
const MARGIN_TOP: f64 = 36.0;
/// Baselines of the title and the legend rows above the plot.
const TITLE_Y: f64 = 13.0;
const LEGEND_Y: f64 = 27.0;
const MARGIN_BOTTOM: f64 = 24.0;
const GRID: &str = "#e5e7eb";
const INK: &str = "#374151";
const FONT: &str = "11px system-ui, sans-serif";

/// One drawn line.
pub struct Line {
    pub label: String,
    pub color: &'static str,
    pub points: Vec<(f64, f64)>,
    pub faint: bool,
    pub dashed: bool,
    /// What the legend says instead of `label` (empty: not in the legend); the hover readout
    /// always uses `label`.
    pub legend: Option<String>,
}

/// The canvas's 2-D context, sized to its CSS box at the device's pixel ratio; returns the
/// context and the box size in CSS pixels.
fn prepare(canvas: &HtmlCanvasElement) -> Option<(CanvasRenderingContext2d, f64, f64)> {
    let ratio = web_sys::window().map(|w| w.device_pixel_ratio()).unwrap_or(1.0).max(1.0);
    let (w, h) = (canvas.client_width().max(50) as f64, canvas.client_height().max(50) as f64);
    let (pw, ph) = ((w * ratio) as u32, (h * ratio) as u32);
    if canvas.width() != pw || canvas.height() != ph {
        canvas.set_width(pw);
        canvas.set_height(ph);
    }
    let ctx: CanvasRenderingContext2d = canvas.get_context("2d").ok()??.dyn_into().ok()?;
    let _ = ctx.set_transform(ratio, 0.0, 0.0, ratio, 0.0, 0.0);
    ctx.clear_rect(0.0, 0.0, w, h);
    ctx.set_font(FONT);
    Some((ctx, w, h))
}

fn text(ctx: &CanvasRenderingContext2d, s: &str, x: f64, y: f64, align: &str, color: &str) {
    ctx.set_text_align(align);
    ctx.set_fill_style_str(color);
    let _ = ctx.fill_text(s, x, y);
}

fn dash(ctx: &CanvasRenderingContext2d, on: bool) {
    let pattern = js_sys::Array::new();
    if on {
        pattern.push(&JsValue::from_f64(5.0));
        pattern.push(&JsValue::from_f64(4.0));
    }
    let _ = ctx.set_line_dash(&pattern);
}

/// A line chart. `hover_x` is the pointer's x in CSS pixels; the chart then marks the nearest
/// step and lists every line's exact value there.
pub fn line_chart(canvas: &HtmlCanvasElement, title: &str, lines: &[Line], log_y: bool, hover_x: Option<f64>) {
    let Some((ctx, w, h)) = prepare(canvas) else { return };
    text(&ctx, title, 4.0, TITLE_Y, "left", INK);
    let _ = canvas.set_attribute("aria-label", title);
    // The readout under the pointer is also the canvas's text, for tests and screen readers.
    let _ = canvas.remove_attribute("data-hover");
    let usable = |y: f64| y.is_finite() && (!log_y || y > 0.0);
    let all = lines.iter().flat_map(|l| l.points.iter()).filter(|p| usable(p.1));
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        text(&ctx, "no data yet: press Play", w / 2.0, h / 2.0, "center", "#9ca3af");
        return;
    }
    if x1 == x0 {
        x1 = x0 + 1.0;
    }
    if log_y {
        // Whole decades, so a gain of exactly 1 sits on a grid line.
        y0 = 10f64.powf(y0.log10().floor());
        y1 = 10f64.powf(y1.log10().ceil().max(y0.log10() + 1.0));
    } else if y1 - y0 < 1e-9 {
        y0 -= 0.5;
        y1 += 0.5;
    }
    let (pl, pr, pt, pb) = (MARGIN_LEFT, w - MARGIN_RIGHT, MARGIN_TOP, h - MARGIN_BOTTOM);
    let sx = |x: f64| pl + (x - x0) / (x1 - x0) * (pr - pl);
    let sy = |y: f64| {
        let t = if log_y { (y.log10() - y0.log10()) / (y1.log10() - y0.log10()) } else { (y - y0) / (y1 - y0) };
        pb - t * (pb - pt)
    };
    ctx.set_line_width(1.0);
    dash(&ctx, false);
    let ticks = if log_y { log_ticks(y0, y1, 6) } else { linear_ticks(y0, y1, 5) };
    for t in ticks {
        let y = sy(t);
        ctx.set_stroke_style_str(GRID);
        ctx.begin_path();
        ctx.move_to(pl, y);
        ctx.line_to(pr, y);
        ctx.stroke();
        text(&ctx, &format_value(Some(t)), pl - 4.0, y + 4.0, "right", INK);
    }
    for t in linear_ticks(x0, x1, 5) {
        // Steps and blocks are whole numbers; a fractional tick (a depth-2 profile) gets two
        // decimals, not 0.6000000000000001.
        let label = if (t - t.round()).abs() < 1e-9 { format!("{}", t.round()) } else { format!("{t:.2}") };
        text(&ctx, &label, sx(t), h - 8.0, "center", INK);
    }
    for line in lines {
        ctx.set_stroke_style_str(line.color);
        ctx.set_global_alpha(if line.faint { 0.25 } else { 1.0 });
        ctx.set_line_width(if line.faint { 1.0 } else { 1.8 });
        dash(&ctx, line.dashed);
        ctx.begin_path();
        let mut pen_down = false;
        for &(x, y) in &line.points {
            if !usable(y) {
                pen_down = false;
                continue;
            }
            if pen_down {
                ctx.line_to(sx(x), sy(y));
            } else {
                ctx.move_to(sx(x), sy(y));
                pen_down = true;
            }
        }
        ctx.stroke();
    }
    ctx.set_global_alpha(1.0);
    dash(&ctx, false);
    // Legend of the labelled lines, on its own row under the title; what does not fit is cut
    // with an ellipsis (the hover readout names every line).
    let mut lx = pl;
    ctx.set_text_align("left");
    for line in lines.iter().filter(|l| !l.faint && l.legend.as_deref() != Some("")) {
        let shown = line.legend.as_deref().unwrap_or(&line.label);
        let label = if line.dashed { format!("┄ {shown}") } else { format!("— {shown}") };
        let width = ctx.measure_text(&label).map(|m| m.width()).unwrap_or(label.len() as f64 * 6.0);
        if lx + width > w - 4.0 {
            ctx.set_fill_style_str(INK);
            let _ = ctx.fill_text("…", lx, LEGEND_Y);
            break;
        }
        ctx.set_fill_style_str(line.color);
        let _ = ctx.fill_text(&label, lx, LEGEND_Y);
        lx += 10.0 + width;
    }
    let Some(hx) = hover_x.filter(|x| *x >= pl && *x <= pr) else { return };
    let step = x0 + (hx - pl) / (pr - pl) * (x1 - x0);
    ctx.set_stroke_style_str("#9ca3af");
    ctx.begin_path();
    ctx.move_to(sx(step), pt);
    ctx.line_to(sx(step), pb);
    ctx.stroke();
    let mut rows = Vec::new();
    for line in lines.iter().filter(|l| !l.faint) {
        let nearest = line.points.iter().min_by(|a, b| (a.0 - step).abs().total_cmp(&(b.0 - step).abs()));
        if let Some(&(x, y)) = nearest {
            rows.push((line.color, format!("{} @{}: {}", line.label, x, format_value(Some(y).filter(|v| v.is_finite())))));
        }
    }
    let readout = rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>().join("; ");
    let _ = canvas.set_attribute("data-hover", &readout);
    let box_w = rows.iter().map(|r| r.1.len()).max().unwrap_or(0) as f64 * 6.2 + 12.0;
    let bx = if sx(step) + box_w + 8.0 > pr { sx(step) - box_w - 8.0 } else { sx(step) + 8.0 };
    ctx.set_fill_style_str("rgba(255,255,255,0.92)");
    ctx.fill_rect(bx, pt + 4.0, box_w, rows.len() as f64 * 15.0 + 6.0);
    for (i, (color, row)) in rows.iter().enumerate() {
        text(&ctx, row, bx + 6.0, pt + 18.0 + i as f64 * 15.0, "left", color);
    }
}

/// Blue (low) to white to red (high), `t` in 0..=1.
fn diverging(t: f64) -> String {
    let [r, g, b] = diverging_rgb(t);
    format!("rgb({r},{g},{b})")
}

fn diverging_rgb(t: f64) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let (r, g, b) = if t < 0.5 {
        let u = t / 0.5;
        (40.0 + u * 215.0, 90.0 + u * 165.0, 200.0 + u * 55.0)
    } else {
        let u = (t - 0.5) / 0.5;
        (255.0, 255.0 - u * 170.0, 255.0 - u * 200.0)
    };
    [r as u8, g as u8, b as u8]
}

/// How a heatmap is drawn: colour on a log scale, or each cell's value written with the row and
/// column sums at the edges; axis captions.
pub struct HeatmapStyle<'a> {
    pub log: bool,
    pub sums: bool,
    pub y_label: &'a str,
    pub x_label: &'a str,
}

/// A `rows x cols` heatmap of row-major `values`.
pub fn heatmap(canvas: &HtmlCanvasElement, title: &str, values: &[Option<f32>], rows: usize, cols: usize, style: &HeatmapStyle) {
    let HeatmapStyle { log, sums, y_label, x_label } = *style;
    let Some((ctx, w, h)) = prepare(canvas) else { return };
    text(&ctx, title, 4.0, TITLE_Y, "left", INK);
    let _ = canvas.set_attribute("aria-label", title);
    if rows == 0 || cols == 0 || values.len() < rows * cols {
        text(&ctx, "no data yet: press Play", w / 2.0, h / 2.0, "center", "#9ca3af");
        return;
    }
    let map = |v: f32| if log { (v.abs().max(1e-12) as f64).log10() } else { v as f64 };
    let finite: Vec<f64> = values.iter().flatten().filter(|v| v.is_finite()).map(|&v| map(v)).collect();
    let lo = finite.iter().cloned().fold(f64::MAX, f64::min);
    let hi = finite.iter().cloned().fold(f64::MIN, f64::max);
    let extra = if sums { 44.0 } else { 0.0 };
    let (pl, pr, pt, pb) = (MARGIN_LEFT, w - MARGIN_RIGHT - extra, MARGIN_TOP, h - MARGIN_BOTTOM - if sums { 16.0 } else { 0.0 });
    let (cw, ch) = ((pr - pl) / cols as f64, (pb - pt) / rows as f64);
    for r in 0..rows {
        for c in 0..cols {
            let color = match values[r * cols + c] {
                Some(v) if v.is_finite() => diverging(if hi > lo { (map(v) - lo) / (hi - lo) } else { 0.5 }),
                _ => "#111827".to_string(),
            };
            ctx.set_fill_style_str(&color);
            ctx.fill_rect(pl + c as f64 * cw, pt + r as f64 * ch, cw + 0.5, ch + 0.5);
            if sums && cw > 30.0 && ch > 14.0 {
                let v = values[r * cols + c].map(|v| v as f64);
                text(&ctx, &format_value(v), pl + (c as f64 + 0.5) * cw, pt + (r as f64 + 0.5) * ch + 4.0, "center", INK);
            }
        }
    }
    if sums {
        for r in 0..rows {
            let s: f32 = (0..cols).filter_map(|c| values[r * cols + c]).sum();
            text(&ctx, &format!("{s:.3}"), pr + 4.0, pt + (r as f64 + 0.5) * ch + 4.0, "left", INK);
        }
        for c in 0..cols {
            let s: f32 = (0..rows).filter_map(|r| values[r * cols + c]).sum();
            text(&ctx, &format!("{s:.3}"), pl + (c as f64 + 0.5) * cw, pb + 13.0, "center", INK);
        }
        text(&ctx, "row sums", pr + 4.0, pt - 4.0, "left", "#6b7280");
    }
    text(&ctx, y_label, 4.0, pt + 10.0, "left", "#6b7280");
    text(&ctx, x_label, pr, h - 6.0, "right", "#6b7280");
    if finite.is_empty() {
        return;
    }
    let legend = if log {
        format!("{} … {}", format_value(Some(10f64.powf(lo))), format_value(Some(10f64.powf(hi))))
    } else {
        format!("{} … {}", format_value(Some(lo)), format_value(Some(hi)))
    };
    text(&ctx, &format!("colour: {legend}"), MARGIN_LEFT, LEGEND_Y, "left", "#6b7280");
}

/// A `grid x grid` canvas holding `rgba` (row-major, four bytes a pixel).
fn cell_canvas(rgba: &[u8], grid: usize) -> Option<HtmlCanvasElement> {
    let canvas: HtmlCanvasElement = web_sys::window()?.document()?.create_element("canvas").ok()?.dyn_into().ok()?;
    canvas.set_width(grid as u32);
    canvas.set_height(grid as u32);
    let ctx: CanvasRenderingContext2d = canvas.get_context("2d").ok()??.dyn_into().ok()?;
    let image = web_sys::ImageData::new_with_u8_clamped_array_and_sh(wasm_bindgen::Clamped(rgba), grid as u32, grid as u32).ok()?;
    ctx.put_image_data(&image, 0.0, 0.0).ok()?;
    Some(canvas)
}

/// Class-1 probability on the probe grid (`grid x grid`, spanning `[-extent, extent]^2`), with
/// the training points on top.
pub fn surface(canvas: &HtmlCanvasElement, title: &str, probs: &[f32], grid: usize, extent: f32, points: &[(f32, f32, u32)]) {
    let Some((ctx, w, h)) = prepare(canvas) else { return };
    text(&ctx, title, 4.0, TITLE_Y, "left", INK);
    let _ = canvas.set_attribute("aria-label", title);
    let side = (w.min(h - MARGIN_TOP) - 4.0).max(10.0);
    let (ox, oy) = ((w - side) / 2.0, MARGIN_TOP);
    if probs.len() == grid * grid {
        // One pixel a cell, scaled up in one drawImage: a fillRect and a parsed colour string
        // per cell took about 50 ms for three surfaces here, a long task while training.
        let pixels: Vec<u8> = probs
            .iter()
            .flat_map(|&p| {
                let [r, g, b] = diverging_rgb(1.0 - p as f64);
                [r, g, b, 191] // three quarters opaque, as the cells always were
            })
            .collect();
        if let Some(cells) = cell_canvas(&pixels, grid) {
            ctx.set_image_smoothing_enabled(false);
            let _ = ctx.draw_image_with_html_canvas_element_and_dw_and_dh(&cells, ox, oy, side, side);
        }
    } else {
        text(&ctx, "decision boundary appears while training", w / 2.0, h / 2.0, "center", "#9ca3af");
    }
    let to = |v: f32, flip: bool| {
        let t = (v / extent + 1.0) as f64 / 2.0;
        if flip {
            oy + (1.0 - t) * side
        } else {
            ox + t * side
        }
    };
    // One path a class: a fill per point cost as much as the cells.
    for (class, colour) in [(0, "#c2410c"), (1, "#1d4ed8")] {
        ctx.set_fill_style_str(colour);
        ctx.begin_path();
        for &(x, y, _) in points.iter().filter(|&&(_, _, label)| (label == 1) == (class == 1)) {
            let (px, py) = (to(x, false), to(y, true));
            ctx.move_to(px + 2.0, py);
            let _ = ctx.arc(px, py, 2.0, 0.0, std::f64::consts::TAU);
        }
        ctx.fill();
    }
}
