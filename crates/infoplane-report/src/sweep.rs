//! Plots of a sweep directory (models.csv): the information plane across models, trajectories
//! over checkpoints (the paper's Fig. 1 left), next-token loss against optimality (Fig. 1 right),
//! stacked proportions per context level per model (Fig. 4), preference information per model.

use crate::palette::{category, DARK, GREY};
use crate::plot::{BarLayer, BarPlot, Chart, ColorBar, Line, Marker, Plot, Point, Series, XyPlot};
use crate::run::{max_order, proportion_layers, IX_LABEL, IY_LABEL};
use crate::ReportError;
use infoplane_compare::{join_keys, read_scores, Table, BENCHMARK_MEAN};
use std::path::{Path, PathBuf};

/// Families beyond this many share one colour and get no legend entries.
const MAX_FAMILY_COLOURS: usize = 10;

#[derive(Debug, Clone)]
pub struct SweepData {
    pub dir: PathBuf,
    pub models: Table,
    /// Display label of each row: `name` when unique in the table, else `id`.
    pub labels: Vec<String>,
    pub families: Vec<String>,
    /// Training step, or tokens seen where no row has a step (with its axis name).
    pub progress: Option<(String, Vec<Option<f64>>)>,
}

/// A column to colour the plane by, with where it came from.
#[derive(Debug, Clone)]
pub struct ColorBy {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

impl SweepData {
    pub fn load(dir: &Path) -> Result<SweepData, ReportError> {
        let path = dir.join("models.csv");
        let models = Table::read_csv(&path)?;
        if models.is_empty() {
            return Err(ReportError::input(&path, "no model rows"));
        }
        let text = |name: &str| -> Result<Option<Vec<String>>, ReportError> { Ok(if models.has(name) { Some(models.texts(name)?) } else { None }) };
        let ids = match (text("id")?, text("model")?) {
            (Some(ids), _) | (None, Some(ids)) => ids,
            (None, None) => return Err(ReportError::input(&path, "has neither an `id` nor a `model` column")),
        };
        let labels = match text("name")? {
            Some(names) if names.iter().enumerate().all(|(i, n)| !n.is_empty() && !names[..i].contains(n)) => names,
            _ => ids.clone(),
        };
        let families = text("family")?.map(|f| f.into_iter().enumerate().map(|(i, f)| if f.is_empty() { ids[i].clone() } else { f }).collect()).unwrap_or_else(|| ids.clone());
        let numbers = |name: &str| -> Result<Option<Vec<Option<f64>>>, ReportError> { Ok(if models.has(name) { Some(models.numbers(name)?) } else { None }) };
        let progress = match (numbers("step")?, numbers("tokens")?) {
            (Some(s), _) if s.iter().any(Option::is_some) => Some(("training step".to_string(), s)),
            (_, Some(t)) if t.iter().any(Option::is_some) => Some(("tokens seen".to_string(), t)),
            _ => None,
        };
        Ok(SweepData { dir: dir.to_path_buf(), models, labels, families, progress })
    }

    fn column(&self, name: &str) -> Result<Option<Vec<Option<f64>>>, ReportError> {
        if !self.models.has(name) {
            return Ok(None);
        }
        let v = self.models.numbers(name)?;
        Ok(v.iter().any(Option::is_some).then_some(v))
    }

    /// The `--color-by` column: from models.csv, else from a scores table joined on `model`.
    pub fn color_by(&self, name: &str, scores: Option<&Path>) -> Result<ColorBy, ReportError> {
        if let Some(values) = self.column(name)? {
            return Ok(ColorBy { name: name.to_string(), values });
        }
        let path = self.models.path.clone();
        let Some(scores_path) = scores else {
            return Err(ReportError::input(&path, format!("--color-by {name}: no such numeric column (it has: {}); a benchmark score needs --scores FILE", self.models.numeric_columns().join(", "))));
        };
        let scores = read_scores(scores_path, None)?;
        // benchmark_mean is the mean of the default benchmark columns.
        let selected = if name == BENCHMARK_MEAN { scores.select(None)? } else { scores.select(Some(&[name.to_string()]))? };
        let Some(column) = selected.iter().position(|(n, _)| n == name) else {
            return Err(ReportError::input(scores_path, format!("--color-by {name}: no such column (numeric columns: {}, {BENCHMARK_MEAN})", scores.columns.join(", "))));
        };
        let key = if self.models.has("model") { "model" } else { "id" };
        let join = join_keys(&self.models.texts(key)?, &scores.keys);
        if join.pairs.is_empty() {
            return Err(ReportError::input(scores_path, format!("--color-by {name}: no model of {} (column `{key}`) is in this scores table", path.display())));
        }
        let mut values = vec![None; self.models.len()];
        for p in &join.pairs {
            values[p.result] = selected[column].1[p.score];
        }
        Ok(ColorBy { name: name.to_string(), values })
    }

    /// Rows grouped by family (first-seen order), each sorted by progress when there is one.
    fn families(&self) -> Vec<(String, Vec<usize>)> {
        let mut out: Vec<(String, Vec<usize>)> = Vec::new();
        for (r, f) in self.families.iter().enumerate() {
            match out.iter_mut().find(|(g, _)| g == f) {
                Some((_, rows)) => rows.push(r),
                None => out.push((f.clone(), vec![r])),
            }
        }
        if let Some((_, p)) = &self.progress {
            for (_, rows) in &mut out {
                rows.sort_by(|&a, &b| p[a].unwrap_or(f64::NEG_INFINITY).total_cmp(&p[b].unwrap_or(f64::NEG_INFINITY)));
            }
        }
        out
    }

    pub fn plots(&self, color_by: Option<&ColorBy>) -> Result<(Vec<Plot>, Vec<String>), ReportError> {
        let mut plots = Vec::new();
        let mut notes = Vec::new();
        let (cx, ey) = (self.column("complexity_1")?, self.column("expressivity_1")?);
        let families = self.families();

        if let (Some(cx), Some(ey)) = (&cx, &ey) {
            plots.push(self.plane(cx, ey, color_by, &families));
            match self.trajectories(cx, ey, &families) {
                Some(p) => plots.push(p),
                None => notes.push("no trajectory plot: no family has two or more checkpoints with a `step` or `tokens`".into()),
            }
        } else {
            notes.push("models.csv has no `complexity_1` / `expressivity_1` values: no information-plane plots".into());
        }

        match (self.column("optimality_1")?, self.column("next_token_loss")?) {
            (Some(opt), Some(loss)) => plots.push(self.loss_vs_optimality(&opt, &loss, &families)),
            _ => notes.push("models.csv lacks `optimality_1` or `next_token_loss` values: no loss-against-optimality plot".into()),
        }

        for (stem, side) in [("proportion", "input"), ("proportion_output", "output")] {
            let k = max_order(|c| self.models.has(c), stem);
            if k == 0 || self.column(&format!("{stem}_1"))?.is_none() {
                notes.push(format!("models.csv has no `{stem}_1` values: no {side}-side proportion plot"));
                continue;
            }
            let layers = proportion_layers(k, |name| self.column(&format!("{stem}_{name}")))?;
            plots.push(Plot::new(
                format!("proportions_{side}"),
                format!("Information per context level, {side} side"),
                format!("Share of each model's entropy H (mean over blocks) explained by the {side} context at each level: π₁ = I₁/H, π_k = (I_k − I_(k−1))/H, and the residual (H − I_K)/H; the parts sum to 1 (the paper's Fig. 4)."),
                Chart::Bars(BarPlot {
                    categories: self.labels.clone(),
                    horizontal: true,
                    stacked: true,
                    value_label: format!("share of H ({side} context)"),
                    category_label: String::new(),
                    layers,
                }),
            ));
        }

        match self.column("preference")? {
            Some(pref) => {
                let mut layers = vec![BarLayer { name: "I(Z; preference)".into(), color: category(2), values: pref }];
                if let Some(null) = self.column("preference_null")? {
                    layers.push(BarLayer { name: "shuffled null".into(), color: DARK, values: null });
                }
                plots.push(Plot::new(
                    "preference",
                    "Preference information per model",
                    "Information the hidden states carry (mean over blocks) about whether a response is the chosen or the rejected one of a preference pair; the narrow dark bar is the same with shuffled labels.",
                    Chart::Bars(BarPlot { categories: self.labels.clone(), horizontal: true, stacked: false, value_label: "I(Z; preference) / ln n".into(), category_label: String::new(), layers }),
                ));
            }
            None => notes.push("models.csv has no `preference` values: no preference plot".into()),
        }
        Ok((plots, notes))
    }

    fn plane(&self, cx: &[Option<f64>], ey: &[Option<f64>], color_by: Option<&ColorBy>, families: &[(String, Vec<usize>)]) -> Plot {
        let mut p = XyPlot::new(IX_LABEL, IY_LABEL);
        p.diagonal = true;
        p.equal_axes = true;
        // A single model is labelled with its name; a run of checkpoints once, at its last one.
        let label = |r: usize| -> Option<String> {
            let (family, rows) = families.iter().find(|(_, rows)| rows.contains(&r))?;
            match rows.as_slice() {
                [_] => Some(self.labels[r].clone()),
                [.., last] if *last == r => Some(family.clone()),
                _ => None,
            }
        };
        let point = |r: usize, color| -> Option<Point> { Some(Point { x: cx[r]?, y: ey[r]?, label: label(r), color, label_below: false }) };
        let caption;
        match color_by {
            Some(c) => {
                let present: Vec<f64> = c.values.iter().flatten().copied().collect();
                let cb = ColorBar::for_values(c.name.clone(), &present).map(|b| ColorBar { log: false, lo: present.iter().copied().fold(f64::INFINITY, f64::min), ..b });
                let with: Vec<Point> = (0..self.models.len()).filter(|&r| c.values[r].is_some()).filter_map(|r| point(r, cb.as_ref().map(|b| b.color(c.values[r].unwrap_or_default())))).collect();
                let without: Vec<Point> = (0..self.models.len()).filter(|&r| c.values[r].is_none()).filter_map(|r| point(r, None)).collect();
                if !without.is_empty() {
                    p.series.push(Series::new(Some(format!("no {}", c.name)), GREY, without, Line::None, Marker::Cross));
                }
                p.series.push(Series::new(None, DARK, with, Line::None, Marker::Circle));
                p.colorbar = cb;
                caption = format!("Coloured by {}.", c.name);
            }
            None => {
                let coloured = families.len() <= MAX_FAMILY_COLOURS;
                for (i, (family, rows)) in families.iter().enumerate() {
                    let pts: Vec<Point> = rows.iter().filter_map(|&r| point(r, None)).collect();
                    p.series.push(Series::new(coloured.then(|| family.clone()), if coloured { category(i) } else { category(0) }, pts, Line::None, Marker::Circle));
                }
                caption = if coloured { "Coloured by family.".to_string() } else { String::new() };
            }
        }
        Plot::new(
            "plane",
            "Models on the information plane",
            format!("Each model at (complexity, expressivity) for unigram labels, averaged over its blocks. Dotted: the bound I(Y;Z) = I(X;Z); estimates may cross it and are shown as they are. {caption}"),
            Chart::Xy(p),
        )
    }

    /// Families with two or more checkpoints that have a progress value, as thin lines through
    /// points coloured by progress.
    fn progress_series(&self, x: &[Option<f64>], y: &[Option<f64>], families: &[(String, Vec<usize>)]) -> Option<(Vec<Series>, ColorBar)> {
        let (name, progress) = self.progress.as_ref()?;
        let multi: Vec<&(String, Vec<usize>)> = families.iter().filter(|(_, rows)| rows.iter().filter(|&&r| progress[r].is_some() && x[r].is_some() && y[r].is_some()).count() >= 2).collect();
        if multi.is_empty() {
            return None;
        }
        let values: Vec<f64> = multi.iter().flat_map(|(_, rows)| rows.iter().filter_map(|&r| progress[r])).collect();
        let cb = ColorBar::for_values(name.clone(), &values)?;
        let several = multi.len() > 1;
        let mut series = Vec::new();
        for (i, (family, rows)) in multi.into_iter().enumerate() {
            let rows: Vec<usize> = rows.iter().copied().filter(|&r| progress[r].is_some() && x[r].is_some() && y[r].is_some()).collect();
            let last = rows.len() - 1;
            let pts = rows
                .iter()
                .enumerate()
                .map(|(i, &r)| {
                    let step = progress[r].unwrap_or_default();
                    let label = match (i == 0, i == last) {
                        (true, _) => Some(crate::plot::tick(step)),
                        (_, true) if several => Some(format!("{family} ({})", crate::plot::tick(step))),
                        (_, true) => Some(crate::plot::tick(step)),
                        _ => None,
                    };
                    Point { x: x[r].unwrap_or_default(), y: y[r].unwrap_or_default(), label, color: Some(cb.color(step)), label_below: false }
                })
                .collect();
            // Several runs: each line in its own colour, named in the legend.
            let (name, color) = if several { (Some(family.clone()), category(i)) } else { (None, GREY) };
            series.push(Series::new(name, color, pts, Line::Thin, Marker::Circle));
        }
        Some((series, cb))
    }

    /// " (log scale; …)" when the colour scale is logarithmic, saying where step 0 goes.
    fn scale_note(&self, cb: &ColorBar) -> String {
        if !cb.log {
            return String::new();
        }
        let below = self.progress.as_ref().is_some_and(|(_, v)| v.iter().flatten().any(|&x| x < cb.lo));
        if below {
            format!(" (log scale; {} 0 takes the colour of {})", cb.label, crate::plot::tick(cb.lo))
        } else {
            " (log scale)".to_string()
        }
    }

    fn trajectories(&self, cx: &[Option<f64>], ey: &[Option<f64>], families: &[(String, Vec<usize>)]) -> Option<Plot> {
        let (series, cb) = self.progress_series(cx, ey, families)?;
        let mut p = XyPlot::new(IX_LABEL, IY_LABEL);
        p.diagonal = true;
        p.series = series;
        let what = cb.label.clone();
        let scale = self.scale_note(&cb);
        p.colorbar = Some(cb);
        Some(Plot::new(
            "trajectories",
            "Training trajectories on the information plane",
            format!("Checkpoints of each training run (family) joined in order and coloured by {what}{scale}; the first and last are labelled (the paper's Fig. 1, left). Dotted: I(Y;Z) = I(X;Z)."),
            Chart::Xy(p),
        ))
    }

    fn loss_vs_optimality(&self, opt: &[Option<f64>], loss: &[Option<f64>], families: &[(String, Vec<usize>)]) -> Plot {
        let mut p = XyPlot::new("optimality I(Y;Z) / I(X;Z)", "next-token loss (nats)");
        let caption = match self.progress_series(opt, loss, families) {
            Some((series, cb)) => {
                let what = format!("{}{}", cb.label, self.scale_note(&cb));
                p.series = series;
                p.colorbar = Some(cb);
                format!("Each checkpoint's mean next-token cross-entropy against its optimality (expressivity / complexity, unigram), joined in order and coloured by {what} (the paper's Fig. 1, right).")
            }
            None => {
                let coloured = families.len() <= MAX_FAMILY_COLOURS;
                for (i, (family, rows)) in families.iter().enumerate() {
                    let pts: Vec<Point> = rows.iter().filter_map(|&r| Some(Point { x: opt[r]?, y: loss[r]?, label: Some(self.labels[r].clone()), color: None, label_below: false })).collect();
                    p.series.push(Series::new(coloured.then(|| family.clone()), category(if coloured { i } else { 0 }), pts, Line::None, Marker::Circle));
                }
                "Each model's mean next-token cross-entropy against its optimality (expressivity / complexity, unigram).".to_string()
            }
        };
        Plot::new("loss_optimality", "Next-token loss against optimality", caption, Chart::Xy(p))
    }
}
