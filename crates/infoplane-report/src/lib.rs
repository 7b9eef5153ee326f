//! Pictures of results: information plane, trajectories, per-layer profiles, proportions; one
//! self-contained HTML report (inline SVG, no script, no network).
//!
//! `write_report(dir)` reads a run directory (summary.json + layers.csv) or a sweep directory
//! (models.csv), writes every plot as SVG and PNG under `dir/plots/` and `dir/report.html`.

mod font;
pub mod html;
pub mod palette;
pub mod plot;
pub mod run;
pub mod sweep;

pub use plot::{BarLayer, BarPlot, Chart, ColorBar, Line, Marker, Plot, Point, Series, XyPlot};
pub use run::RunData;
pub use sweep::{ColorBy, SweepData};

use html::{cell, Figure, Page};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {reason}", path.display())]
    Input { path: PathBuf, reason: String },
    #[error("plot {plot}: {reason}")]
    Draw { plot: String, reason: String },
    #[error(transparent)]
    Compare(#[from] infoplane_compare::CompareError),
    #[error(transparent)]
    Store(#[from] infoplane_store::StoreError),
}

impl ReportError {
    pub(crate) fn input(path: &Path, reason: impl Into<String>) -> Self {
        ReportError::Input { path: path.to_path_buf(), reason: reason.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One model: summary.json and layers.csv.
    Run,
    /// Many models: models.csv.
    Sweep,
}

/// A sweep directory has models.csv; a run directory has summary.json (models.csv wins if both).
pub fn detect(dir: &Path) -> Result<Kind, ReportError> {
    if !dir.is_dir() {
        return Err(ReportError::input(dir, "not a directory"));
    }
    if dir.join("models.csv").is_file() {
        Ok(Kind::Sweep)
    } else if dir.join("summary.json").is_file() {
        Ok(Kind::Run)
    } else {
        Err(ReportError::input(dir, "neither a run directory (summary.json) nor a sweep directory (models.csv)"))
    }
}

#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Colour the sweep's information plane by this column (of models.csv, or of `scores`).
    pub color_by: Option<String>,
    /// A benchmark scores CSV (e.g. the Open LLM Leaderboard v2 table) for `color_by`.
    pub scores: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ReportOutput {
    pub kind: Kind,
    pub html: PathBuf,
    /// Every SVG and PNG written.
    pub files: Vec<PathBuf>,
    /// Plots left out and why.
    pub notes: Vec<String>,
}

/// A plot written as `dir/NAME.svg` and `dir/NAME.png` (atomically); returns the SVG text.
pub fn write_plot(dir: &Path, plot: &Plot) -> Result<(String, [PathBuf; 2]), ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
    let svg = plot.svg()?;
    let png = plot.png()?;
    let (svg_path, png_path) = (dir.join(format!("{}.svg", plot.name)), dir.join(format!("{}.png", plot.name)));
    infoplane_store::write_atomic(&svg_path, svg.as_bytes())?;
    infoplane_store::write_atomic(&png_path, &png)?;
    Ok((svg, [svg_path, png_path]))
}

/// Writes `dir/plots/*.{svg,png}` and `dir/report.html` for a run or a sweep directory.
pub fn write_report(dir: &Path, options: &ReportOptions) -> Result<ReportOutput, ReportError> {
    let kind = detect(dir)?;
    let (plots, mut notes, mut page) = match kind {
        Kind::Run => {
            let run = RunData::load(dir)?;
            if options.color_by.is_some() {
                return Err(ReportError::input(dir, "--color-by applies to a sweep (models.csv); this is a run directory"));
            }
            let (plots, notes) = run.plots()?;
            (plots, notes, run_page(&run)?)
        }
        Kind::Sweep => {
            let sweep = SweepData::load(dir)?;
            let color_by = match &options.color_by {
                Some(name) => Some(sweep.color_by(name, options.scores.as_deref())?),
                None => None,
            };
            let (plots, notes) = sweep.plots(color_by.as_ref())?;
            (plots, notes, sweep_page(&sweep, color_by.as_ref())?)
        }
    };
    let plots_dir = dir.join("plots");
    let mut files = Vec::new();
    for plot in &plots {
        let (svg, written) = write_plot(&plots_dir, plot)?;
        page.figures.push(Figure {
            id: format!("plot-{}", plot.name),
            title: plot.title.clone(),
            caption: plot.caption.clone(),
            svg,
            files: vec![format!("plots/{}.svg", plot.name), format!("plots/{}.png", plot.name)],
        });
        files.extend(written);
    }
    page.notes.append(&mut notes.clone());
    notes.sort();
    let html = dir.join("report.html");
    infoplane_store::write_atomic(&html, page.render().as_bytes())?;
    Ok(ReportOutput { kind, html, files, notes })
}

fn json_text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        // Counts print as integers (large ones with SI suffixes), other numbers to 4 figures.
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(match n.as_f64() {
            Some(f) if f.abs() >= 1e4 => plot::tick(f),
            _ => n.to_string(),
        }),
        serde_json::Value::Number(n) => Some(n.as_f64().map(|f| cell(Some(f))).unwrap_or_else(|| n.to_string())),
        other => Some(other.to_string()),
    }
}

fn run_page(run: &RunData) -> Result<Page, ReportError> {
    let s = &run.summary;
    let id = s.pointer("/model/id").and_then(|v| v.as_str()).unwrap_or("model");
    let mut intro = Vec::new();
    let facts: Vec<String> = [("family", "/model/family"), ("layers", "/model/n_layers"), ("width d", "/model/dim"), ("parameters", "/model/params"), ("documents", "/counts/documents"), ("positions", "/counts/positions")]
        .iter()
        .filter_map(|(name, ptr)| json_text(s.pointer(ptr)).map(|v| format!("{name}: {v}")))
        .collect();
    if !facts.is_empty() {
        intro.push(facts.join(" · "));
    }
    if let (Some(name), Some(version)) = (json_text(s.pointer("/tool/name")), json_text(s.pointer("/tool/version"))) {
        intro.push(format!("Computed by {name} {version}. Every entropy and mutual information is divided by ln n (n reference points)."));
    }
    let mut tables = Vec::new();
    if let Some(ml) = s.get("model_level").and_then(|v| v.as_object()) {
        let rows: Vec<Vec<String>> = ml.iter().map(|(k, v)| vec![k.clone(), v.as_f64().map(|f| cell(Some(f))).unwrap_or_else(|| "—".into())]).collect();
        tables.push(("Model-level numbers (mean over blocks 1…L)".to_string(), vec!["quantity".to_string(), "value".to_string()], rows));
    }
    let mut columns = vec!["entropy".to_string()];
    for stem in ["complexity", "expressivity", "optimality"] {
        columns.extend((1..=run.orders).map(|k| format!("{stem}_{k}")).filter(|c| run.layers.has(c)));
    }
    columns.extend(["preference"].iter().map(|c| c.to_string()).filter(|c| run.layers.has(c)));
    columns.retain(|c| run.layers.has(c));
    let mut order: Vec<usize> = (0..run.layers.len()).collect();
    order.sort_by(|&a, &b| run.x[a].total_cmp(&run.x[b]));
    let layer_col = run.layers.require("layer")?;
    let mut data = Vec::new();
    for c in &columns {
        data.push(run.layers.numbers(c)?);
    }
    let rows = order.iter().map(|&r| std::iter::once(run.layers.text(r, layer_col).to_string()).chain(data.iter().map(|v| cell(v[r]))).collect()).collect();
    tables.push(("Per-layer numbers".to_string(), std::iter::once("layer".to_string()).chain(columns).collect(), rows));
    let mut details = Vec::new();
    for key in ["settings", "provenance", "counts"] {
        if let Some(v) = s.get(key) {
            details.push((key.to_string(), serde_json::to_string_pretty(v).unwrap_or_default()));
        }
    }
    Ok(Page { title: format!("infoplane report: {id}"), intro, figures: Vec::new(), tables, notes: Vec::new(), details })
}

fn sweep_page(sweep: &SweepData, color_by: Option<&ColorBy>) -> Result<Page, ReportError> {
    let n = sweep.models.len();
    let families = {
        let mut f = sweep.families.clone();
        f.sort();
        f.dedup();
        f.len()
    };
    let intro = vec![
        format!("{n} models or checkpoints in {families} families, from {}.", sweep.models.path.display()),
        "Every entropy and mutual information is divided by ln n (n reference points); model-level numbers are means over each model's blocks 1…L.".to_string(),
    ];
    let mut header: Vec<String> = ["id", "name", "family", "step", "tokens", "params"].iter().map(|s| s.to_string()).filter(|c| sweep.models.has(c)).collect();
    let text_cols = header.clone();
    let numeric = ["entropy", "complexity_1", "expressivity_1", "optimality_1", "next_token_loss", "preference"];
    let metric_cols: Vec<String> = numeric.iter().map(|s| s.to_string()).filter(|c| sweep.models.has(c)).collect();
    header.extend(metric_cols.iter().cloned());
    let mut data = Vec::new();
    for c in &metric_cols {
        data.push(sweep.models.numbers(c)?);
    }
    if let Some(cb) = color_by.filter(|cb| !sweep.models.has(&cb.name)) {
        header.push(cb.name.clone());
        data.push(cb.values.clone());
    }
    let mut text_data = Vec::new();
    for c in &text_cols {
        text_data.push(sweep.models.texts(c)?);
    }
    let rows = (0..n)
        .map(|r| {
            text_data
                .iter()
                .zip(&text_cols)
                .map(|(v, c)| if ["step", "tokens", "params"].contains(&c.as_str()) { v[r].parse::<f64>().map(plot::tick).unwrap_or_else(|_| v[r].clone()) } else { v[r].clone() })
                .chain(data.iter().map(|v| cell(v[r])))
                .collect()
        })
        .collect();
    Ok(Page {
        title: format!("infoplane report: {n} models"),
        intro,
        figures: Vec::new(),
        tables: vec![("Models".to_string(), header, rows)],
        notes: Vec::new(),
        details: Vec::new(),
    })
}

/// A metric against a benchmark score, one point per model (labelled when there are at most 30),
/// with a least-squares line; `headline` (e.g. "Spearman ρ = 0.71") goes into the title and
/// `summary` into the caption.
pub fn correlation_scatter(metric: &str, score: &str, points: &[(String, f64, f64)], headline: &str, summary: &str) -> Plot {
    let mut p = XyPlot::new(metric_label(metric), score.to_string());
    let label = points.len() <= 30;
    let pts: Vec<Point> = points.iter().map(|(id, x, y)| Point { x: *x, y: *y, label: label.then(|| short_id(id)), color: None, label_below: false }).collect();
    p.series.push(Series::new(None, palette::category(0), pts, Line::None, Marker::Circle));
    if let Some((a, b)) = least_squares(points) {
        let (lo, hi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), (_, x, _)| (l.min(*x), h.max(*x)));
        p.series.push(Series::new(Some("least-squares line".into()), palette::GREY, vec![Point::new(lo, a + b * lo), Point::new(hi, a + b * hi)], Line::Dashed, Marker::None));
    }
    let title = if headline.is_empty() { format!("{metric} vs {score}") } else { format!("{metric} vs {score} ({headline})") };
    Plot::new(format!("{metric}__{score}"), title, format!("{} models. {summary}", points.len()), Chart::Xy(p))
}

/// An axis label that says what a metric column is and its unit.
pub fn metric_label(metric: &str) -> String {
    let order = metric.rsplit('_').next().filter(|s| s.chars().all(|c| c.is_ascii_digit())).unwrap_or("");
    match metric.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches('_') {
        "complexity" => format!("complexity I(X;Z) / ln n, k = {order}"),
        "expressivity" => format!("expressivity I(Y;Z) / ln n, k = {order}"),
        "optimality" => format!("optimality I(Y;Z) / I(X;Z), k = {order}"),
        "entropy" => "H(Z) / ln n".into(),
        "preference" => "I(Z; preference) / ln n".into(),
        "next_token_loss" => "next-token loss (nats)".into(),
        _ => metric.to_string(),
    }
}

fn short_id(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_string()
}

/// Intercept and slope of y on x; None when x is constant or there are fewer than 2 points.
fn least_squares(points: &[(String, f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.1).sum::<f64>() / n;
    let my = points.iter().map(|p| p.2).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.1 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.1 - mx) * (p.2 - my)).sum();
    (sxx > 0.0).then(|| (my - sxy / sxx * mx, sxy / sxx))
}
