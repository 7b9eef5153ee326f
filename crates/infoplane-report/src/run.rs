//! Plots of one run directory (summary.json + layers.csv): per-layer H and I per order, the layers
//! on the plane, stacked proportions per layer, preference information per layer.

use crate::palette::{category, viridis, GREY, LIGHT_GREY};
use crate::plot::{BarLayer, BarPlot, Chart, ColorBar, Line, Marker, Plot, Point, Series, XyPlot};
use crate::ReportError;
use infoplane_compare::Table;
use std::path::{Path, PathBuf};

pub const H_LABEL: &str = "H(Z) / ln n";
pub const IX_LABEL: &str = "complexity I(X;Z) / ln n";
pub const IY_LABEL: &str = "expressivity I(Y;Z) / ln n";

/// A run directory's contents.
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    pub summary: serde_json::Value,
    pub layers: Table,
    /// x position of each row: the layer number, and L + 1 for `final_norm`.
    pub x: Vec<f64>,
    /// Row of `final_norm`, if any.
    pub final_norm: Option<usize>,
    /// Highest n-gram order K with a `complexity_K` column.
    pub orders: usize,
}

/// Highest k with a column `{stem}_{k}` (contiguous from 1).
pub fn max_order(has: impl Fn(&str) -> bool, stem: &str) -> usize {
    (1..).take_while(|k| has(&format!("{stem}_{k}"))).last().unwrap_or(0)
}

/// The display name of n-gram order k.
pub fn order_name(k: usize) -> String {
    match k {
        1 => "unigram".into(),
        2 => "bigram".into(),
        3 => "trigram".into(),
        k => format!("{k}-gram"),
    }
}

impl RunData {
    pub fn load(dir: &Path) -> Result<RunData, ReportError> {
        let summary_path = dir.join("summary.json");
        let text = std::fs::read_to_string(&summary_path).map_err(|source| ReportError::Io { path: summary_path.clone(), source })?;
        let summary: serde_json::Value = serde_json::from_str(&text).map_err(|e| ReportError::input(&summary_path, format!("not valid JSON: {e}")))?;
        if !summary.is_object() {
            return Err(ReportError::input(&summary_path, "not a JSON object"));
        }
        let layers_path = dir.join("layers.csv");
        let layers = Table::read_csv(&layers_path)?;
        let col = layers.require("layer")?;
        if layers.is_empty() {
            return Err(ReportError::input(&layers_path, "no layer rows"));
        }
        let mut numbered = Vec::with_capacity(layers.len());
        let mut final_norm = None;
        for r in 0..layers.len() {
            let name = layers.text(r, col);
            match name.parse::<u32>() {
                Ok(l) => numbered.push(Some(l as f64)),
                Err(_) if name == "final_norm" => {
                    final_norm = Some(r);
                    numbered.push(None);
                }
                Err(_) => {
                    return Err(ReportError::input(&layers_path, format!("line {}: layer {name:?} is neither a number nor final_norm", layers.lines[r])));
                }
            }
        }
        let last = numbered.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
        let x = numbered.iter().map(|v| v.unwrap_or(last + 1.0)).collect();
        let orders = max_order(|c| layers.has(c), "complexity");
        Ok(RunData { dir: dir.to_path_buf(), summary, layers, x, final_norm, orders })
    }

    /// A numeric column (None when the file lacks it).
    pub fn column(&self, name: &str) -> Result<Option<Vec<Option<f64>>>, ReportError> {
        if !self.layers.has(name) {
            return Ok(None);
        }
        Ok(Some(self.layers.numbers(name)?))
    }

    fn has_values(&self, name: &str) -> Result<bool, ReportError> {
        Ok(self.column(name)?.is_some_and(|v| v.iter().any(Option::is_some)))
    }

    /// I − I_null: the run's `{stem}_corrected_{k}` column, else computed from raw and null.
    fn corrected(&self, stem: &str, k: usize) -> Result<Option<Vec<Option<f64>>>, ReportError> {
        if let Some(c) = self.column(&format!("{stem}_corrected_{k}"))? {
            return Ok(Some(c));
        }
        match (self.column(&format!("{stem}_{k}"))?, self.column(&format!("{stem}_null_{k}"))?) {
            (Some(raw), Some(null)) => Ok(Some(raw.iter().zip(&null).map(|(a, b)| Some((*a)? - (*b)?)).collect())),
            _ => Ok(None),
        }
    }

    /// The model's id for plot titles: a Hugging Face id as it is, a local path by its last part.
    fn model_id(&self) -> String {
        let id = self.summary.pointer("/model/id").and_then(|v| v.as_str()).unwrap_or("model");
        let trimmed = id.trim_end_matches(['/', '\\']);
        let parts = trimmed.split(['/', '\\']).count();
        if id.starts_with(['/', '.', '~']) || parts > 2 {
            trimmed.rsplit(['/', '\\']).next().unwrap_or(trimmed).to_string()
        } else {
            id.to_string()
        }
    }

    /// Tick names for the x axis: layer numbers, "norm" for final_norm.
    fn x_names(&self) -> Vec<(i64, String)> {
        (0..self.layers.len()).map(|r| (self.x[r] as i64, if Some(r) == self.final_norm { "norm".to_string() } else { format!("{}", self.x[r]) })).collect()
    }

    /// A per-layer curve through the blocks (embedding and 1..L), and the final-norm row as an
    /// unconnected square of the same colour.
    fn curve(&self, name: &str, color: plotters::style::RGBColor, values: &[Option<f64>], line: Line, marker: Marker) -> Vec<Series> {
        let mut blocks: Vec<(f64, f64)> = (0..values.len()).filter(|&r| Some(r) != self.final_norm).filter_map(|r| Some((self.x[r], values[r]?))).collect();
        blocks.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut out = vec![Series::new(Some(name.to_string()), color, blocks.into_iter().map(|(x, y)| Point::new(x, y)).collect(), line, marker)];
        if let Some(r) = self.final_norm {
            if let Some(v) = values[r] {
                out.push(Series::new(None, color, vec![Point::new(self.x[r], v)], Line::None, Marker::Square));
            }
        }
        out
    }

    pub fn plots(&self) -> Result<(Vec<Plot>, Vec<String>), ReportError> {
        let mut plots = Vec::new();
        let mut notes = Vec::new();
        let id = self.model_id();
        let layer_axis = "hidden state (0 = embedding output, norm = after the final norm)";
        let square_note = "Squares: the last block's output after the final norm (not part of the model-level mean).";

        if let Some(h) = self.column("entropy")? {
            let mut p = XyPlot::new(layer_axis, H_LABEL);
            p.series = self.curve("H(Z)", category(0), &h, Line::Solid, Marker::Circle);
            p.x_names = Some(self.x_names());
            plots.push(Plot::new("entropy_layers", format!("Entropy per layer — {id}"), format!("Soft entropy of each hidden state, normalised by ln n (1 = spread evenly over the n reference points). {square_note}"), Chart::Xy(p)));
        } else {
            notes.push("layers.csv has no `entropy` column: no entropy plot".into());
        }

        for (stem, label, what) in [("complexity", IX_LABEL, "input n-gram X (the token and its left context)"), ("expressivity", IY_LABEL, "output n-gram Y (the next tokens)")] {
            if self.orders == 0 || !self.has_values(&format!("{stem}_1"))? {
                notes.push(format!("layers.csv has no `{stem}_1` values: no {stem} plot"));
                continue;
            }
            let mut p = XyPlot::new(layer_axis, label);
            p.x_names = Some(self.x_names());
            let mut any_corrected = false;
            for k in 1..=self.orders {
                let color = category(k - 1);
                if let Some(raw) = self.column(&format!("{stem}_{k}"))? {
                    p.series.extend(self.curve(&format!("k={k} ({})", order_name(k)), color, &raw, Line::Solid, Marker::Circle));
                }
                if let Some(c) = self.corrected(stem, k)? {
                    if c.iter().any(Option::is_some) {
                        any_corrected = true;
                        let mut s = self.curve(&format!("k={k} − shuffled null"), color, &c, Line::Dashed, Marker::None);
                        s.truncate(1);
                        p.series.extend(s);
                    }
                }
            }
            let corrected = if any_corrected { " Dashed: the same minus its shuffled-label null (I − I_null), which removes the inflation rare labels cause." } else { " (No shuffled-label nulls in this run.)" };
            plots.push(Plot::new(
                format!("{stem}_layers"),
                format!("{} per layer — {id}", capitalise(stem)),
                format!("I between each hidden state Z and the {what}, per n-gram order k, normalised by ln n. Solid: raw estimate.{corrected} {square_note}"),
                Chart::Xy(p),
            ));
        }

        if self.has_values("complexity_1")? && self.has_values("expressivity_1")? {
            let (cx, ey) = (self.column("complexity_1")?.unwrap_or_default(), self.column("expressivity_1")?.unwrap_or_default());
            let mut rows: Vec<usize> = (0..self.layers.len()).filter(|&r| Some(r) != self.final_norm && cx[r].is_some() && ey[r].is_some()).collect();
            rows.sort_by(|&a, &b| self.x[a].total_cmp(&self.x[b]));
            let xs: Vec<f64> = rows.iter().map(|&r| self.x[r]).collect();
            let cb = ColorBar::for_values("layer", &xs).map(|c| ColorBar { log: false, lo: xs.first().copied().unwrap_or(0.0), hi: xs.last().copied().unwrap_or(1.0).max(xs.first().copied().unwrap_or(0.0) + 1.0), ..c });
            let mut p = XyPlot::new(IX_LABEL, IY_LABEL);
            p.diagonal = true;
            p.equal_axes = true;
            let points: Vec<Point> = rows
                .iter()
                .enumerate()
                .map(|(i, &r)| Point {
                    x: cx[r].unwrap_or_default(),
                    y: ey[r].unwrap_or_default(),
                    label: (i == 0 || i + 1 == rows.len()).then(|| if self.x[r] == 0.0 { "embedding".to_string() } else { format!("layer {}", self.x[r]) }),
                    color: cb.as_ref().map(|c| c.color(self.x[r])),
                    label_below: false,
                })
                .collect();
            p.series.push(Series::new(Some("layers, in order".into()), GREY, points, Line::Thin, Marker::Circle));
            if let Some(r) = self.final_norm.filter(|&r| cx[r].is_some() && ey[r].is_some()) {
                p.series.push(Series::new(Some("after final norm".into()), GREY, vec![Point { label: Some("final norm".into()), label_below: true, ..Point::new(cx[r].unwrap_or_default(), ey[r].unwrap_or_default()) }], Line::None, Marker::Square));
            }
            p.colorbar = cb;
            plots.push(Plot::new(
                "plane_layers",
                format!("Layers on the information plane — {id}"),
                "Each hidden state at (complexity, expressivity) for unigram labels, joined in layer order and coloured by depth. Dotted: the bound I(Y;Z) = I(X;Z); estimates may cross it and are shown as they are.",
                Chart::Xy(p),
            ));
        }

        for (stem, side) in [("proportion", "input"), ("proportion_output", "output")] {
            if let Some(bars) = self.proportion_bars(stem, side)? {
                plots.push(Plot::new(
                    format!("proportions_{side}_layers"),
                    format!("Information per context level, {side} side — {id}"),
                    format!("Share of each hidden state's entropy H explained by the {side} context at each level: π₁ = I₁/H, π_k = (I_k − I_(k−1))/H, and the residual (H − I_K)/H (the parts sum to 1; a negative part is drawn below zero)."),
                    Chart::Bars(bars),
                ));
            } else {
                notes.push(format!("layers.csv has no `{stem}_1` values: no {side}-side proportion plot"));
            }
        }

        if self.has_values("preference")? {
            let mut p = XyPlot::new(layer_axis, "I(Z; preference) / ln n");
            p.x_names = Some(self.x_names());
            p.series.extend(self.curve("I(Z; preference)", category(2), &self.column("preference")?.unwrap_or_default(), Line::Solid, Marker::Circle));
            if let Some(null) = self.column("preference_null")?.filter(|v| v.iter().any(Option::is_some)) {
                let mut s = self.curve("shuffled null", GREY, &null, Line::Dashed, Marker::None);
                s.truncate(1);
                p.series.extend(s);
            }
            plots.push(Plot::new(
                "preference_layers",
                format!("Preference information per layer — {id}"),
                "Information each hidden state carries about whether a response is the preferred (chosen) or the rejected one, with its shuffled-label null (dashed).",
                Chart::Xy(p),
            ));
        }
        Ok((plots, notes))
    }

    fn proportion_bars(&self, stem: &str, side: &str) -> Result<Option<BarPlot>, ReportError> {
        let k = max_order(|c| self.layers.has(c), stem);
        if k == 0 || !self.has_values(&format!("{stem}_1"))? {
            return Ok(None);
        }
        let mut order: Vec<usize> = (0..self.layers.len()).collect();
        order.sort_by(|&a, &b| self.x[a].total_cmp(&self.x[b]));
        let categories = order.iter().map(|&r| if Some(r) == self.final_norm { "norm".to_string() } else { format!("{}", self.x[r]) }).collect();
        Ok(Some(BarPlot {
            categories,
            horizontal: false,
            stacked: true,
            value_label: format!("share of H ({side} context)"),
            category_label: "hidden state".into(),
            layers: proportion_layers(k, |name| Ok(self.column(&format!("{stem}_{name}"))?.map(|v| order.iter().map(|&r| v[r]).collect())))?,
        }))
    }
}

/// The K context levels (viridis) and the residual (light grey) as bar layers; `get("1")`,
/// `get("residual")` return a column in category order.
pub(crate) fn proportion_layers(k: usize, get: impl Fn(&str) -> Result<Option<Vec<Option<f64>>>, ReportError>) -> Result<Vec<BarLayer>, ReportError> {
    let mut layers = Vec::new();
    for j in 1..=k {
        if let Some(values) = get(&j.to_string())? {
            let name = if j == 1 { "π₁: the token itself".to_string() } else { format!("π{}: {} context", subscript(j), order_name(j)) };
            layers.push(BarLayer { name, color: viridis(0.15 + 0.7 * (j - 1) as f64 / (k.max(2) - 1) as f64), values });
        }
    }
    if let Some(values) = get("residual")? {
        layers.push(BarLayer { name: format!("residual (H − I{})/H", subscript(k)), color: LIGHT_GREY, values });
    }
    Ok(layers)
}

fn subscript(k: usize) -> String {
    k.to_string().chars().map(|c| char::from_u32(0x2080 + c.to_digit(10).unwrap_or(0)).unwrap_or(c)).collect()
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}
