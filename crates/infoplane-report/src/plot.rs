//! Two kinds of chart, described as data and drawn by plotters on any backend, so one description
//! gives the SVG (inlined in the HTML) and the PNG: x–y charts (points, labels, lines, a diagonal,
//! a colour bar) and bar charts (stacked or overlaid, horizontal or vertical).

use crate::font::{ensure_registered, FAMILY};
use crate::palette::{viridis, DARK};
use crate::ReportError;
use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

type DrawResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    None,
    Circle,
    Square,
    Triangle,
    Cross,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    None,
    Solid,
    Dashed,
    /// A pale line in the series colour joining points that carry their own colours (a trajectory).
    Thin,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub label: Option<String>,
    /// Overrides the series colour (colour-mapped points).
    pub color: Option<RGBColor>,
    /// Put the label below the point instead of above (to keep two close labels apart).
    pub label_below: bool,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Self {
        Point { x, y, label: None, color: None, label_below: false }
    }
}

#[derive(Clone, Debug)]
pub struct Series {
    /// Legend entry (none when None).
    pub name: Option<String>,
    pub color: RGBColor,
    pub points: Vec<Point>,
    pub line: Line,
    pub marker: Marker,
}

impl Series {
    pub fn new(name: Option<String>, color: RGBColor, points: Vec<Point>, line: Line, marker: Marker) -> Self {
        Series { name, color, points, line, marker }
    }
}

/// A colour scale for values in [lo, hi], linear or logarithmic (lo > 0).
#[derive(Clone, Debug, PartialEq)]
pub struct ColorBar {
    pub label: String,
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
}

impl ColorBar {
    /// Linear, or logarithmic when the values span two decades or more and are all positive.
    pub fn for_values(label: impl Into<String>, values: &[f64]) -> Option<ColorBar> {
        let lo = values.iter().copied().filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().filter(|v| v.is_finite()).fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            return None;
        }
        let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, hi + 0.5) };
        let positive_lo = values.iter().copied().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
        let log = positive_lo.is_finite() && hi / positive_lo >= 100.0;
        Some(ColorBar { label: label.into(), lo: if log { positive_lo } else { lo }, hi, log })
    }

    /// Position in [0, 1] (values below a log scale's lo, e.g. step 0, take its colour).
    pub fn position(&self, v: f64) -> f64 {
        let t = if self.log { (v.max(self.lo).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln()) } else { (v - self.lo) / (self.hi - self.lo) };
        t.clamp(0.0, 1.0)
    }

    pub fn color(&self, v: f64) -> RGBColor {
        viridis(self.position(v))
    }
}

#[derive(Clone, Debug)]
pub struct XyPlot {
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// The dotted bound I(Y;Z) = I(X;Z).
    pub diagonal: bool,
    /// Same range on both axes (so the diagonal is at 45°).
    pub equal_axes: bool,
    pub colorbar: Option<ColorBar>,
    /// Names for integer x positions (layers); other ticks are left blank.
    pub x_names: Option<Vec<(i64, String)>>,
}

impl XyPlot {
    pub fn new(x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        XyPlot {
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            diagonal: false,
            equal_axes: false,
            colorbar: None,
            x_names: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct BarLayer {
    pub name: String,
    pub color: RGBColor,
    pub values: Vec<Option<f64>>,
}

#[derive(Clone, Debug)]
pub struct BarPlot {
    pub categories: Vec<String>,
    /// Categories down the y axis (first at the top), values along x.
    pub horizontal: bool,
    /// Stacked (positive parts from 0 up, negative parts from 0 down), else overlaid with each
    /// later layer drawn narrower on top of the earlier ones.
    pub stacked: bool,
    pub value_label: String,
    pub category_label: String,
    pub layers: Vec<BarLayer>,
}

#[derive(Clone, Debug)]
pub enum Chart {
    Xy(XyPlot),
    Bars(BarPlot),
}

/// A chart with its file name (without extension), title and the caption the HTML shows.
#[derive(Clone, Debug)]
pub struct Plot {
    pub name: String,
    pub title: String,
    pub caption: String,
    pub chart: Chart,
    pub size: (u32, u32),
}

impl Plot {
    pub fn new(name: impl Into<String>, title: impl Into<String>, caption: impl Into<String>, chart: Chart) -> Self {
        let side = side_width(&chart);
        let size = match &chart {
            Chart::Bars(b) if b.horizontal => (760 + side, (150 + 22 * b.categories.len() as u32).clamp(360, 2400)),
            Chart::Bars(b) => ((220 + 26 * b.categories.len() as u32).clamp(640, 2400) + side, 560),
            Chart::Xy(_) => (760 + side, 600),
        };
        Plot { name: name.into(), title: title.into(), caption: caption.into(), chart, size }
    }

    /// The chart as an SVG document.
    pub fn svg(&self) -> Result<String, ReportError> {
        ensure_registered();
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size).into_drawing_area();
            self.draw(&root).map_err(|e| ReportError::Draw { plot: self.name.clone(), reason: e.to_string() })?;
            root.present().map_err(|e| ReportError::Draw { plot: self.name.clone(), reason: e.to_string() })?;
        }
        Ok(out)
    }

    /// The chart as PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>, ReportError> {
        ensure_registered();
        let (w, h) = self.size;
        let mut pixels = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            self.draw(&root).map_err(|e| ReportError::Draw { plot: self.name.clone(), reason: e.to_string() })?;
            root.present().map_err(|e| ReportError::Draw { plot: self.name.clone(), reason: e.to_string() })?;
        }
        let image = image::RgbImage::from_raw(w, h, pixels).expect("buffer has w·h·3 bytes");
        let mut png = Vec::new();
        image
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| ReportError::Draw { plot: self.name.clone(), reason: e.to_string() })?;
        Ok(png)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        match &self.chart {
            Chart::Xy(p) => draw_xy(&self.chart, p, &self.title, root),
            Chart::Bars(b) => draw_bars(&self.chart, b, &self.title, root),
        }
    }
}

/// A tick label: SI suffixes for large numbers (steps, tokens, parameters), else up to four
/// decimals without trailing zeros.
pub fn tick(v: f64) -> String {
    let a = v.abs();
    let si = |div: f64, suffix: &str| {
        let s = format!("{:.2}", v / div);
        format!("{}{suffix}", s.trim_end_matches('0').trim_end_matches('.'))
    };
    if a >= 1e12 {
        si(1e12, "T")
    } else if a >= 1e9 {
        si(1e9, "B")
    } else if a >= 1e6 {
        si(1e6, "M")
    } else if a >= 1e4 {
        si(1e3, "k")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.to_string() }
    }
}

/// Tick labels for an axis over [lo, hi]: decimals to resolve span/40 (trailing zeros trimmed), SI
/// suffixes for large numbers, scientific notation for tiny ones.
pub fn axis_tick(lo: f64, hi: f64) -> impl Fn(&f64) -> String {
    let span = (hi - lo).abs();
    let big = lo.abs().max(hi.abs()) >= 1e4;
    let decimals = if span > 0.0 { (-(span / 40.0).log10()).ceil().max(0.0) as usize } else { 4 };
    move |v: &f64| {
        if big || *v == 0.0 {
            tick(*v)
        } else if decimals > 5 {
            // Significant digits enough for the spacing, then trim: 1.25e-4.
            let digits = (decimals as i32 + v.abs().log10().floor() as i32).clamp(1, 6) as usize;
            let s = format!("{v:.digits$e}");
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let m = if m.contains('.') { m.trim_end_matches('0').trim_end_matches('.') } else { m };
            format!("{m}e{e}")
        } else {
            let s = format!("{v:.decimals$}");
            let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
            if s == "-0" { "0".into() } else { s }
        }
    }
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    if hi > lo {
        let pad = (hi - lo) * 0.06;
        (lo - pad, hi + pad)
    } else {
        let pad = if lo == 0.0 { 0.5 } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// One legend line: a glyph and its text.
#[derive(Clone, Debug)]
enum Glyph {
    Line(RGBColor, bool),
    Marker(RGBColor, Marker),
    Bar(RGBColor),
}

fn legend_entries(chart: &Chart) -> Vec<(Glyph, String)> {
    match chart {
        Chart::Xy(p) => {
            let mut out = Vec::new();
            if p.diagonal {
                out.push((Glyph::Line(DARK, true), "bound I(Y;Z) = I(X;Z)".to_string()));
            }
            for s in &p.series {
                let Some(name) = &s.name else { continue };
                let glyph = match (s.marker, s.line) {
                    (Marker::None, line) => Glyph::Line(s.color, line == Line::Dashed),
                    // Colour-mapped points joined by a line in the series colour: the line names it.
                    (_, Line::Thin) => Glyph::Line(s.color, false),
                    (m, _) => Glyph::Marker(s.color, m),
                };
                out.push((glyph, name.clone()));
            }
            out
        }
        Chart::Bars(b) => b.layers.iter().map(|l| (Glyph::Bar(l.color), l.name.clone())).collect(),
    }
}

const LEGEND_FONT: u32 = 13;
const CHAR_PX: u32 = 8;

/// Width of the column right of the chart that holds the legend and the colour bar (0: none).
fn side_width(chart: &Chart) -> u32 {
    let entries = legend_entries(chart);
    let legend = entries.iter().map(|(_, t)| t.chars().count() as u32 * CHAR_PX + 44).max().unwrap_or(0);
    let bar = match chart {
        Chart::Xy(XyPlot { colorbar: Some(cb), .. }) => (cb.label.chars().count() as u32 * CHAR_PX + 24).max(120),
        _ => 0,
    };
    if legend == 0 && bar == 0 {
        0
    } else {
        legend.max(bar).clamp(120, 340)
    }
}

/// Splits off the legend column (if any) on the right.
fn split_side<DB: DrawingBackend>(chart: &Chart, root: &DrawingArea<DB, Shift>) -> (DrawingArea<DB, Shift>, Option<DrawingArea<DB, Shift>>) {
    let side = side_width(chart);
    if side == 0 {
        return (root.clone(), None);
    }
    let (w, _) = root.dim_in_pixel();
    let (a, b) = root.split_horizontally(w.saturating_sub(side));
    (a, Some(b))
}

/// Draws the legend from the top of the side column; returns the y below it.
fn draw_legend<DB: DrawingBackend>(entries: &[(Glyph, String)], area: &DrawingArea<DB, Shift>) -> Result<i32, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let font = (FAMILY, LEGEND_FONT).into_font().color(&DARK).pos(Pos::new(HPos::Left, VPos::Center));
    let mut y = 56;
    for (glyph, text) in entries {
        let (x0, x1, xc) = (4, 26, 15);
        match glyph {
            Glyph::Line(c, false) => area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(2)))?,
            Glyph::Line(c, true) => area.draw(&DashedPathElement::new(vec![(x0, y), (x1, y)], 5, 3, c.stroke_width(2)))?,
            Glyph::Bar(c) => area.draw(&Rectangle::new([(x0 + 2, y - 6), (x1 - 2, y + 6)], c.filled()))?,
            Glyph::Marker(c, m) => draw_marker(area, (xc, y), *m, *c)?,
        }
        area.draw(&Text::new(text.clone(), (x1 + 8, y), font.clone()))?;
        y += 22;
    }
    Ok(y)
}

fn draw_marker<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, at: (i32, i32), marker: Marker, color: RGBColor) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (x, y) = at;
    let fill = ShapeStyle::from(color).filled();
    match marker {
        Marker::None => {}
        Marker::Circle => area.draw(&Circle::new((x, y), 5, fill))?,
        Marker::Square => area.draw(&Rectangle::new([(x - 5, y - 5), (x + 5, y + 5)], fill))?,
        Marker::Triangle => area.draw(&TriangleMarker::new((x, y), 7, fill))?,
        Marker::Cross => area.draw(&Cross::new((x, y), 5, color.stroke_width(2)))?,
    }
    Ok(())
}

/// "Nice" tick values in [lo, hi]: steps of 1, 2 or 5 × 10^k, about five of them; decades (and
/// 2×, 5× when the range is short) for a log scale.
pub fn ticks(lo: f64, hi: f64, log: bool) -> Vec<f64> {
    if hi.is_nan() || lo.is_nan() || hi <= lo {
        return vec![lo];
    }
    if log {
        let mut out = Vec::new();
        let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        let mults: &[f64] = if b - a <= 2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
        for e in a..=b {
            for m in mults {
                let v = m * 10f64.powi(e);
                if v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                    out.push(v);
                }
            }
        }
        return out;
    }
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A vertical colour bar with its title and ticks, from `top` down in the side column.
fn draw_colorbar<DB: DrawingBackend>(cb: &ColorBar, area: &DrawingArea<DB, Shift>, top: i32) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (_, h) = area.dim_in_pixel();
    let (x0, x1) = (6, 26);
    let (y0, y1) = (top + 28, h as i32 - 70);
    if y1 - y0 < 60 {
        return Ok(());
    }
    let title = (FAMILY, LEGEND_FONT).into_font().color(&DARK).pos(Pos::new(HPos::Left, VPos::Bottom));
    area.draw(&Text::new(cb.label.clone(), (x0, y0 - 8), title))?;
    let span = (y1 - y0) as f64;
    // Top = hi, bottom = lo; one strip per pixel row.
    for py in y0..y1 {
        let t = 1.0 - (py - y0) as f64 / span;
        area.draw(&Rectangle::new([(x0, py), (x1, py + 1)], viridis(t).filled()))?;
    }
    area.draw(&Rectangle::new([(x0, y0), (x1, y1)], DARK.stroke_width(1)))?;
    let font = (FAMILY, 12).into_font().color(&DARK).pos(Pos::new(HPos::Left, VPos::Center));
    let label = axis_tick(cb.lo, cb.hi);
    for v in ticks(cb.lo, cb.hi, cb.log) {
        let py = y1 - (cb.position(v) * span).round() as i32;
        area.draw(&PathElement::new(vec![(x1, py), (x1 + 4, py)], DARK.stroke_width(1)))?;
        area.draw(&Text::new(if cb.log { tick(v) } else { label(&v) }, (x1 + 7, py), font.clone()))?;
    }
    Ok(())
}

fn draw_side<DB: DrawingBackend>(chart: &Chart, side: Option<DrawingArea<DB, Shift>>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let Some(side) = side else { return Ok(()) };
    let below = draw_legend(&legend_entries(chart), &side)?;
    if let Chart::Xy(XyPlot { colorbar: Some(cb), .. }) = chart {
        draw_colorbar(cb, &side, below + 10)?;
    }
    Ok(())
}

/// The title shortened (from the front, where paths are least informative) to fit `width` pixels.
fn fit_title(title: &str, width: u32) -> String {
    let max = ((width.saturating_sub(40)) / 10).max(12) as usize;
    let n = title.chars().count();
    if n <= max {
        title.to_string()
    } else {
        let tail: String = title.chars().skip(n - (max - 1)).collect();
        format!("…{tail}")
    }
}

fn draw_xy<DB: DrawingBackend>(chart_spec: &Chart, p: &XyPlot, title: &str, root: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (main, side) = split_side(chart_spec, root);
    let title = &fit_title(title, main.dim_in_pixel().0);
    let points = || p.series.iter().flat_map(|s| s.points.iter());
    let (mut x, mut y) = (bounds(points().map(|q| q.x)), bounds(points().map(|q| q.y)));
    if p.equal_axes {
        let both = (x.0.min(y.0), x.1.max(y.1));
        (x, y) = (both, both);
    }
    let (mut x, y) = (padded(x.0, x.1), padded(y.0, y.1));
    // Labels sit to the right of their points: widen the range so the rightmost ones fit.
    let plot_px = (main.dim_in_pixel().0 as f64 - 110.0).max(200.0);
    let span = x.1 - x.0;
    let needed = points()
        .filter(|q| q.x > x.0 + 0.6 * span)
        .filter_map(|q| q.label.as_ref().map(|l| (l.chars().count() as f64 * 7.0 + 12.0) / plot_px - (x.1 - q.x) / span))
        .fold(0.0f64, f64::max)
        .min(0.45);
    if needed > 0.0 {
        x.1 += span * needed / (1.0 - needed);
    }
    let mut chart = ChartBuilder::on(&main)
        .caption(title, (FAMILY, 20))
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    let names = p.x_names.clone();
    let (x_num, y_num) = (axis_tick(x.0, x.1), axis_tick(y.0, y.1));
    let x_fmt = move |v: &f64| match &names {
        Some(names) => {
            let i = v.round();
            if (v - i).abs() < 1e-6 {
                names.iter().find(|(k, _)| *k as f64 == i).map(|(_, n)| n.clone()).unwrap_or_default()
            } else {
                String::new()
            }
        }
        None => x_num(v),
    };
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 15))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_num)
        .bold_line_style(RGBColor(232, 232, 232))
        .light_line_style(WHITE);
    if let Some(names) = &p.x_names {
        // One tick per named position when they fit (every layer up to ~40 states).
        let span = (x.1 - x.0).ceil() as usize;
        mesh.x_labels(if names.len() <= 40 { span + 1 } else { 12 });
    }
    mesh.draw()?;

    if p.diagonal {
        let (lo, hi) = (x.0.max(y.0), x.1.min(y.1));
        if lo < hi {
            chart.draw_series(DashedLineSeries::new(vec![(lo, lo), (hi, hi)], 2, 5, DARK.stroke_width(2)))?;
        }
    }
    for s in &p.series {
        let coords: Vec<(f64, f64)> = s.points.iter().map(|q| (q.x, q.y)).collect();
        let color = s.color;
        match s.line {
            Line::None => {}
            Line::Solid => {
                chart.draw_series(LineSeries::new(coords.clone(), color.stroke_width(2)))?;
            }
            Line::Thin => {
                chart.draw_series(LineSeries::new(coords.clone(), color.mix(0.45).stroke_width(2)))?;
            }
            Line::Dashed => {
                chart.draw_series(DashedLineSeries::new(coords.clone(), 7, 5, color.stroke_width(2)))?;
            }
        }
        let style = |q: &Point| ShapeStyle::from(q.color.unwrap_or(color)).filled();
        match s.marker {
            Marker::None => {}
            Marker::Circle => {
                chart.draw_series(s.points.iter().map(|q| Circle::new((q.x, q.y), 5, style(q))))?;
            }
            Marker::Square => {
                chart.draw_series(s.points.iter().map(|q| EmptyElement::at((q.x, q.y)) + Rectangle::new([(-5, -5), (5, 5)], style(q))))?;
            }
            Marker::Triangle => {
                chart.draw_series(s.points.iter().map(|q| TriangleMarker::new((q.x, q.y), 7, style(q))))?;
            }
            Marker::Cross => {
                chart.draw_series(s.points.iter().map(|q| Cross::new((q.x, q.y), 5, ShapeStyle::from(q.color.unwrap_or(color)).stroke_width(2))))?;
            }
        }
        let text = (FAMILY, 12).into_font().color(&DARK);
        chart.draw_series(
            s.points
                .iter()
                .filter_map(|q| q.label.as_ref().map(|l| EmptyElement::at((q.x, q.y)) + Text::new(l.clone(), (7, if q.label_below { 5 } else { -15 }), text.clone()))),
        )?;
    }
    draw_side(chart_spec, side)
}

/// Shortens a category name for an axis label.
fn short(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

fn draw_bars<DB: DrawingBackend>(chart_spec: &Chart, b: &BarPlot, title: &str, root: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (main, side) = split_side(chart_spec, root);
    let title = &fit_title(title, main.dim_in_pixel().0);
    let n = b.categories.len().max(1);
    // Value range: stacked sums (positive and negative parts separately) or the layers themselves.
    let mut lo: f64 = 0.0;
    let mut hi: f64 = 0.0;
    for c in 0..b.categories.len() {
        if b.stacked {
            let pos: f64 = b.layers.iter().filter_map(|l| l.values[c]).filter(|v| *v > 0.0).sum();
            let neg: f64 = b.layers.iter().filter_map(|l| l.values[c]).filter(|v| *v < 0.0).sum();
            (lo, hi) = (lo.min(neg), hi.max(pos));
        } else {
            for v in b.layers.iter().filter_map(|l| l.values[c]) {
                (lo, hi) = (lo.min(v), hi.max(v));
            }
        }
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    let span = hi - lo;
    let (lo, hi) = (if lo < 0.0 { lo - 0.03 * span } else { 0.0 }, hi + 0.03 * span);
    let names: Vec<String> = b.categories.iter().map(|c| short(c, 34)).collect();
    let label_room = if b.horizontal { (names.iter().map(|c| c.chars().count()).max().unwrap_or(4) as u32 * 7 + 16).clamp(40, 260) } else { 50 };
    let cat_range = (0..n as i32 - 1).into_segmented();
    // Segment i holds category i (vertical) or category n-1-i (horizontal: first at the top).
    let slot = |c: usize| if b.horizontal { (n - 1 - c) as i32 } else { c as i32 };
    let cat_fmt = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) if (*i as usize) < n => {
            let c = if b.horizontal { n - 1 - *i as usize } else { *i as usize };
            names.get(c).cloned().unwrap_or_default()
        }
        _ => String::new(),
    };
    let mut builder = ChartBuilder::on(&main);
    builder.caption(title, (FAMILY, 20)).margin(14);
    let gap = |layer: usize| -> u32 { if b.stacked { 3 } else { 3 + 4 * layer as u32 } };
    if b.horizontal {
        let mut chart = builder.x_label_area_size(46).y_label_area_size(label_room).build_cartesian_2d(lo..hi, cat_range)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n + 1)
            .y_label_formatter(&cat_fmt)
            .x_label_formatter(&axis_tick(lo, hi))
            .x_desc(b.value_label.as_str())
            .y_desc(b.category_label.as_str())
            .label_style((FAMILY, 12))
            .axis_desc_style((FAMILY, 15))
            .bold_line_style(RGBColor(232, 232, 232))
            .light_line_style(WHITE)
            .draw()?;
        for (li, layer) in b.layers.iter().enumerate() {
            chart.draw_series(bar_spans(b, li).into_iter().map(|(c, a, z)| {
                let mut r = Rectangle::new([(a, SegmentValue::Exact(slot(c))), (z, SegmentValue::Exact(slot(c) + 1))], layer.color.filled());
                r.set_margin(gap(li), gap(li), 0, 0);
                r
            }))?;
        }
    } else {
        let mut chart = builder.x_label_area_size(50).y_label_area_size(70).build_cartesian_2d(cat_range, lo..hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n + 1)
            .x_label_formatter(&cat_fmt)
            .y_label_formatter(&axis_tick(lo, hi))
            .y_desc(b.value_label.as_str())
            .x_desc(b.category_label.as_str())
            .label_style((FAMILY, 12))
            .axis_desc_style((FAMILY, 15))
            .bold_line_style(RGBColor(232, 232, 232))
            .light_line_style(WHITE)
            .draw()?;
        for (li, layer) in b.layers.iter().enumerate() {
            chart.draw_series(bar_spans(b, li).into_iter().map(|(c, a, z)| {
                let mut r = Rectangle::new([(SegmentValue::Exact(slot(c)), a), (SegmentValue::Exact(slot(c) + 1), z)], layer.color.filled());
                r.set_margin(0, 0, gap(li), gap(li));
                r
            }))?;
        }
    }
    draw_side(chart_spec, side)
}

/// (category, from, to) of each bar of one layer: stacked on the earlier layers' parts of the same
/// sign, or from 0.
fn bar_spans(b: &BarPlot, layer: usize) -> Vec<(usize, f64, f64)> {
    let mut out = Vec::new();
    for c in 0..b.categories.len() {
        let Some(v) = b.layers[layer].values[c] else { continue };
        if !b.stacked {
            out.push((c, 0.0, v));
            continue;
        }
        let below: f64 = b.layers[..layer].iter().filter_map(|l| l.values[c]).filter(|w| (*w < 0.0) == (v < 0.0)).sum();
        out.push((c, below, below + v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_titles_keep_their_end() {
        assert_eq!(fit_title("short", 800), "short");
        let t = fit_title(&format!("Complexity per layer — {}", "/a/very/long/path".repeat(8)), 400);
        assert_eq!(t.chars().count(), 36);
        assert!(t.starts_with('…') && t.ends_with("long/path"));
    }

    #[test]
    fn axis_ticks_resolve_their_spacing() {
        let f = axis_tick(0.000095, 0.000145);
        assert_eq!((f(&0.0001), f(&0.000125), f(&0.00014)), ("1e-4".to_string(), "1.25e-4".to_string(), "1.4e-4".to_string()));
        let f = axis_tick(0.27, 0.46);
        assert_eq!((f(&0.3), f(&0.35000000000000003), f(&0.0)), ("0.3".to_string(), "0.35".to_string(), "0".to_string()));
        let f = axis_tick(0.0, 0.026);
        assert_eq!(f(&0.0125), "0.0125");
        let f = axis_tick(3.0, 7.0);
        assert_eq!((f(&3.5), f(&4.0)), ("3.5".to_string(), "4".to_string()));
        let f = axis_tick(0.0, 2e6);
        assert_eq!(f(&1.5e6), "1.5M");
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(0.30000000000000004), "0.3");
        assert_eq!(tick(-0.0), "0");
        assert_eq!(tick(20_000.0), "20k");
        assert_eq!(tick(1_500_000.0), "1.5M");
        assert_eq!(tick(7.6e9), "7.6B");
        assert_eq!(tick(2.0), "2");
    }

    #[test]
    fn nice_ticks() {
        let near = |a: Vec<f64>, b: &[f64]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(near(ticks(0.27, 0.46, false), &[0.3, 0.35, 0.4, 0.45]), "{:?}", ticks(0.27, 0.46, false));
        assert_eq!(ticks(0.0, 10.0, false), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(1000.0, 143000.0, true), vec![1000.0, 10000.0, 100000.0]);
        assert_eq!(ticks(1000.0, 64000.0, true), vec![1000.0, 2000.0, 5000.0, 10000.0, 20000.0, 50000.0]);
        assert_eq!(ticks(1.0, 1e6, true), vec![1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0]);
        assert_eq!(ticks(3.0, 3.0, false), vec![3.0]);
    }

    #[test]
    fn colour_scales() {
        let cb = ColorBar::for_values("step", &[0.0, 1000.0, 10000.0, 100000.0]).unwrap();
        assert!(cb.log && cb.lo == 1000.0);
        assert_eq!(cb.position(0.0), 0.0);
        assert!((cb.position(10000.0) - 0.5).abs() < 1e-12);
        let cb = ColorBar::for_values("x", &[1.0, 2.0, 3.0]).unwrap();
        assert!(!cb.log && cb.position(2.0) == 0.5);
        assert!(ColorBar::for_values("x", &[f64::NAN]).is_none());
        let one = ColorBar::for_values("x", &[4.0]).unwrap();
        assert_eq!(one.position(4.0), 0.5);
    }

    #[test]
    fn stacks_keep_signs_apart() {
        let b = BarPlot {
            categories: vec!["a".into(), "b".into()],
            horizontal: true,
            stacked: true,
            value_label: String::new(),
            category_label: String::new(),
            layers: vec![
                BarLayer { name: "1".into(), color: DARK, values: vec![Some(0.5), Some(0.2)] },
                BarLayer { name: "2".into(), color: DARK, values: vec![Some(-0.1), None] },
                BarLayer { name: "3".into(), color: DARK, values: vec![Some(0.6), Some(0.8)] },
            ],
        };
        assert_eq!(bar_spans(&b, 1), vec![(0, 0.0, -0.1)]);
        assert_eq!(bar_spans(&b, 2), vec![(0, 0.5, 1.1), (1, 0.2, 1.0)]);
    }

    #[test]
    fn renders_svg_and_png() {
        let mut p = XyPlot::new("x", "y");
        p.diagonal = true;
        p.series.push(Series::new(Some("s".into()), DARK, vec![Point { label: Some("a".into()), ..Point::new(0.1, 0.2) }, Point::new(0.3, 0.1)], Line::Solid, Marker::Circle));
        p.colorbar = ColorBar::for_values("c", &[1.0, 5.0]);
        let plot = Plot::new("t", "Title", "", Chart::Xy(p));
        let svg = plot.svg().unwrap();
        let texts: Vec<&str> = svg.split("<text").skip(1).map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].trim()).collect();
        assert!(svg.starts_with("<svg") && texts.contains(&"Title") && texts.contains(&"a") && texts.contains(&"bound I(Y;Z) = I(X;Z)") && texts.contains(&"s"), "{texts:?}");
        assert!(texts.contains(&"c") && texts.contains(&"5"), "colour bar title and ticks: {texts:?}");
        let png = plot.png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
