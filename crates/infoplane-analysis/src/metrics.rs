//! Per-layer rows and model-level numbers (METHOD.md §3), named as they appear in `layers.csv`
//! and `summary.json`.
//!
//! Two kinds of column: additive ones (H, every I, its null and I − I_null, H(Z|X), preference
//! information), which are averaged over blocks for the model, and ratios (optimality,
//! regularity, proportions), which at model level are either the ratio of the block means
//! (`ratio-of-means`, the default) or the mean of the per-layer ratios (`mean-of-ratios`, as
//! soft_h 0.1.5's LLM pipeline). One function derives the ratios from additive values, so a
//! layer and the model-level ratio of means are computed by the same code.

use infoplane_estimator::{Estimate, LabelEstimate};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregate {
    #[default]
    RatioOfMeans,
    MeanOfRatios,
}

impl Aggregate {
    pub fn name(&self) -> &'static str {
        match self {
            Aggregate::RatioOfMeans => "ratio-of-means",
            Aggregate::MeanOfRatios => "mean-of-ratios",
        }
    }
}

/// One hidden state's numbers, in column order (`None`: not computed or undefined).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerRow {
    /// "0" (embedding output), "1".."L", or "final_norm".
    pub layer: String,
    pub values: Vec<(String, Option<f64>)>,
}

impl LayerRow {
    pub fn get(&self, column: &str) -> Option<f64> {
        self.values.iter().find(|(c, _)| c == column).and_then(|(_, v)| *v)
    }
}

/// Model-level numbers, in column order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelLevel {
    pub values: Vec<(String, Option<f64>)>,
}

impl ModelLevel {
    pub fn get(&self, column: &str) -> Option<f64> {
        self.values.iter().find(|(c, _)| c == column).and_then(|(_, v)| *v)
    }
}

fn additive_columns(orders: usize) -> Vec<String> {
    let mut c = vec!["entropy".to_string()];
    let per_order = |c: &mut Vec<String>, stem: &str| c.extend((1..=orders).map(|k| format!("{stem}_{k}")));
    for stem in [
        "complexity",
        "expressivity",
        "complexity_null",
        "expressivity_null",
        "complexity_corrected",
        "expressivity_corrected",
        "conditional_entropy",
        "complexity_backoff",
        "expressivity_backoff",
        "complexity_backoff_null",
        "expressivity_backoff_null",
    ] {
        per_order(&mut c, stem);
    }
    c.extend(["preference", "preference_null", "preference_corrected"].map(String::from));
    c
}

fn ratio_columns(orders: usize) -> Vec<String> {
    let mut c = Vec::new();
    for stem in ["optimality", "regularity", "proportion"] {
        c.extend((1..=orders).map(|k| format!("{stem}_{k}")));
    }
    c.push("proportion_residual".into());
    c.extend((1..=orders).map(|k| format!("proportion_output_{k}")));
    c.push("proportion_output_residual".into());
    c
}

/// The numeric columns of `layers.csv`, in order (after `layer`).
pub fn layer_columns(orders: usize) -> Vec<String> {
    let mut c = additive_columns(orders);
    c.extend(ratio_columns(orders));
    c
}

/// The model-level numbers of `summary.json` and `models.csv`, in order.
pub fn model_columns(orders: usize) -> Vec<String> {
    let mut c = layer_columns(orders);
    c.push("next_token_loss".into());
    c
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => finite(a / b),
        _ => None,
    }
}

/// The additive values of one state from its corpus estimate and (optionally) its preference
/// estimate.
fn additive_values(orders: usize, corpus: &Estimate, preference: Option<&Estimate>) -> Vec<(String, Option<f64>)> {
    let set = |name: String| corpus.label_sets.iter().find(|s| s.name == name);
    let mut v: Vec<(String, Option<f64>)> = vec![("entropy".into(), finite(corpus.entropy))];
    let mut per_order = |stem: &str, set_stem: &str, f: &dyn Fn(&LabelEstimate) -> Option<f64>| {
        for k in 1..=orders {
            v.push((format!("{stem}_{k}"), set(format!("{set_stem}_{k}")).and_then(f)));
        }
    };
    let mi = |s: &LabelEstimate| finite(s.mutual_information);
    let null = |s: &LabelEstimate| s.null_mutual_information.and_then(finite);
    let corrected = |s: &LabelEstimate| s.corrected_mutual_information.and_then(finite);
    let conditional = |s: &LabelEstimate| finite(s.conditional_entropy);
    per_order("complexity", "in", &mi);
    per_order("expressivity", "out", &mi);
    per_order("complexity_null", "in", &null);
    per_order("expressivity_null", "out", &null);
    per_order("complexity_corrected", "in", &corrected);
    per_order("expressivity_corrected", "out", &corrected);
    per_order("conditional_entropy", "in", &conditional);
    per_order("complexity_backoff", "in_backoff", &mi);
    per_order("expressivity_backoff", "out_backoff", &mi);
    per_order("complexity_backoff_null", "in_backoff", &null);
    per_order("expressivity_backoff_null", "out_backoff", &null);
    let pref = preference.and_then(|e| e.label_sets.iter().find(|s| s.name == infoplane_labels::PREFERENCE_SET));
    v.push(("preference".into(), pref.and_then(mi)));
    v.push(("preference_null".into(), pref.and_then(null)));
    v.push(("preference_corrected".into(), pref.and_then(corrected)));
    v
}

/// Ratios from additive values (one layer's, or block means). Proportions come from the
/// back-off levels when they exist, else from the fixed orders.
fn ratio_values(orders: usize, additive: &[(String, Option<f64>)]) -> Vec<(String, Option<f64>)> {
    let get = |name: &str| additive.iter().find(|(c, _)| c == name).and_then(|(_, v)| *v);
    let h = get("entropy");
    let mut v = Vec::new();
    for k in 1..=orders {
        v.push((format!("optimality_{k}"), div(get(&format!("expressivity_{k}")), get(&format!("complexity_{k}")))));
    }
    for k in 1..=orders {
        v.push((format!("regularity_{k}"), div(get(&format!("complexity_{k}")), h)));
    }
    for (side, prefix) in [("complexity", "proportion"), ("expressivity", "proportion_output")] {
        let backoff = get(&format!("{side}_backoff_1")).is_some();
        let level = |k: usize| if backoff { get(&format!("{side}_backoff_{k}")) } else { get(&format!("{side}_{k}")) };
        for k in 1..=orders {
            let gain = if k == 1 { level(1) } else { level(k).zip(level(k - 1)).map(|(a, b)| a - b) };
            v.push((format!("{prefix}_{k}"), div(gain, h)));
        }
        v.push((format!("{prefix}_residual"), div(h.zip(level(orders)).map(|(h, i)| h - i), h)));
    }
    v
}

/// The row of one hidden state.
pub fn layer_row(layer: &str, orders: usize, corpus: &Estimate, preference: Option<&Estimate>) -> LayerRow {
    let mut values = additive_values(orders, corpus, preference);
    let ratios = ratio_values(orders, &values);
    values.extend(ratios);
    LayerRow { layer: layer.to_string(), values }
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let (mut sum, mut count) = (0.0, 0usize);
    for v in values {
        sum += v?;
        count += 1;
    }
    (count > 0).then(|| sum / count as f64)
}

/// Model-level numbers from the rows of the transformer blocks (never the embedding output or
/// `final_norm`, METHOD.md §3). A column is missing when any block lacks it.
pub fn aggregate(blocks: &[&LayerRow], orders: usize, mode: Aggregate, next_token_loss: Option<f64>) -> ModelLevel {
    let additive: Vec<(String, Option<f64>)> = additive_columns(orders).into_iter().map(|c| {
        let m = mean(blocks.iter().map(|r| r.get(&c)));
        (c, m)
    }).collect();
    let ratios = match mode {
        Aggregate::RatioOfMeans => ratio_values(orders, &additive),
        Aggregate::MeanOfRatios => ratio_columns(orders).into_iter().map(|c| {
            let m = mean(blocks.iter().map(|r| r.get(&c)));
            (c, m)
        }).collect(),
    };
    let mut values = additive;
    values.extend(ratios);
    values.push(("next_token_loss".into(), next_token_loss.and_then(finite)));
    ModelLevel { values }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[(&str, f64)]) -> LayerRow {
        let additive: Vec<(String, Option<f64>)> = additive_columns(2)
            .into_iter()
            .map(|c| {
                let v = values.iter().find(|(n, _)| *n == c).map(|(_, v)| *v);
                (c, v)
            })
            .collect();
        let mut all = additive.clone();
        all.extend(ratio_values(2, &additive));
        LayerRow { layer: "1".into(), values: all }
    }

    #[test]
    fn proportions_sum_to_one_and_use_backoff_levels_when_present() {
        let fixed = row(&[("entropy", 0.8), ("complexity_1", 0.2), ("complexity_2", 0.5)]);
        let parts: f64 = ["proportion_1", "proportion_2", "proportion_residual"].iter().map(|c| fixed.get(c).unwrap()).sum();
        assert!((parts - 1.0).abs() < 1e-15);
        assert!((fixed.get("proportion_2").unwrap() - 0.3 / 0.8).abs() < 1e-15);
        let backoff = row(&[("entropy", 0.8), ("complexity_1", 0.2), ("complexity_2", 0.5), ("complexity_backoff_1", 0.2), ("complexity_backoff_2", 0.4)]);
        assert!((backoff.get("proportion_2").unwrap() - 0.2 / 0.8).abs() < 1e-15);
        assert_eq!(fixed.get("proportion_output_1"), None, "no expressivity, no output proportions");
    }

    #[test]
    fn ratio_of_means_differs_from_mean_of_ratios_and_skips_nothing() {
        let a = row(&[("entropy", 1.0), ("complexity_1", 0.1), ("expressivity_1", 0.1)]);
        let b = row(&[("entropy", 1.0), ("complexity_1", 0.3), ("expressivity_1", 0.1)]);
        let rom = aggregate(&[&a, &b], 2, Aggregate::RatioOfMeans, Some(2.5));
        let mor = aggregate(&[&a, &b], 2, Aggregate::MeanOfRatios, None);
        assert!((rom.get("optimality_1").unwrap() - 0.1 / 0.2).abs() < 1e-15);
        assert!((mor.get("optimality_1").unwrap() - (1.0 + 1.0 / 3.0) / 2.0).abs() < 1e-15);
        assert_eq!(rom.get("complexity_1"), Some(0.2));
        assert_eq!(rom.get("next_token_loss"), Some(2.5));
        assert_eq!(mor.get("next_token_loss"), None);
        // A column one block lacks is missing for the model, never averaged over fewer blocks.
        assert_eq!(rom.get("preference"), None);
        assert_eq!(model_columns(2).len(), rom.values.len());
        assert_eq!(rom.values.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>(), model_columns(2));
    }
}
