//! The results table joined to benchmark scores, and every metric correlated with every score.

use crate::join::{join_keys, Join, MatchKind};
use crate::scores::Scores;
use crate::stats::{self, Correlation};
use crate::table::{csv_bytes, format_number, Table};
use crate::CompareError;

/// Columns of a results table that describe a model rather than measure it.
const NOT_METRICS: [&str; 7] = ["step", "tokens", "params", "log_params", "rank", "positions", "documents"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Covariate {
    /// ln(parameter count): the results' `params` where given, else the scores' (params_b × 1e9).
    LogParams,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Pearson,
    Spearman,
    PartialSpearman,
}

pub const METHODS: [Method; 3] = [Method::Pearson, Method::Spearman, Method::PartialSpearman];

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Pearson => "pearson",
            Method::Spearman => "spearman",
            Method::PartialSpearman => "partial_spearman",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationRow {
    pub metric: String,
    pub score: String,
    pub method: Method,
    pub correlation: Correlation,
}

/// One row per matched result: its metrics, its scores and the covariate, side by side.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The results' `id` column (else the key).
    pub ids: Vec<String>,
    pub result_keys: Vec<String>,
    pub score_keys: Vec<String>,
    pub kinds: Vec<MatchKind>,
    pub key_column: String,
    pub metrics: Vec<(String, Vec<Option<f64>>)>,
    pub scores: Vec<(String, Vec<Option<f64>>)>,
    /// Parameter counts used for the covariate (None where unknown).
    pub params: Vec<Option<f64>>,
    pub covariate: Option<(String, Vec<Option<f64>>)>,
    pub join: Join,
    /// From reading the scores and from the join.
    pub notes: Vec<String>,
}

impl Joined {
    /// Joins `results` (column `key_column`) to `scores`. Metrics are the results' numeric columns
    /// except step, tokens, params, counts (positions, documents) and the key. No matched row is
    /// an error.
    pub fn build(results: &Table, key_column: &str, scores: &Scores, score_columns: Option<&[String]>, covariate: Covariate) -> Result<Joined, CompareError> {
        let keys = results.texts(key_column)?;
        let selected = scores.select(score_columns)?;
        let join = join_keys(&keys, &scores.keys);
        if join.pairs.is_empty() {
            let sample = |v: &[String]| v.iter().take(3).map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ");
            return Err(CompareError::Invalid(format!(
                "no row of {} (column `{key_column}`: {}) matches a model of {} ({}…)",
                results.path.display(),
                sample(&keys),
                scores.path.display(),
                sample(&scores.keys)
            )));
        }
        let ids = if results.has("id") && key_column != "id" { results.texts("id")? } else { keys.clone() };
        let metric_names: Vec<String> = results
            .numeric_columns()
            .into_iter()
            .filter(|c| c != key_column && c != "id" && !NOT_METRICS.contains(&c.as_str()))
            .collect();
        let mut metrics = Vec::with_capacity(metric_names.len());
        for name in metric_names {
            let all = results.numbers(&name)?;
            metrics.push((name, join.pairs.iter().map(|p| all[p.result]).collect::<Vec<_>>()));
        }
        let result_params = if results.has("params") { Some(results.numbers("params")?) } else { None };
        let params: Vec<Option<f64>> = join
            .pairs
            .iter()
            .map(|p| result_params.as_ref().and_then(|v| v[p.result]).filter(|&v| v > 0.0).or(scores.params[p.score]))
            .collect();
        let covariate = match covariate {
            Covariate::None => None,
            Covariate::LogParams => {
                if params.iter().all(Option::is_none) {
                    return Err(CompareError::Invalid(format!(
                        "--covariate log_params: no parameter count for any matched model (no `params` in {}, no params/params_b in {}); use --covariate none",
                        results.path.display(),
                        scores.path.display()
                    )));
                }
                Some(("log_params".to_string(), params.iter().map(|p| p.map(f64::ln)).collect()))
            }
        };
        let mut notes = scores.notes.clone();
        notes.extend(join.notes.iter().cloned());
        Ok(Joined {
            ids: join.pairs.iter().map(|p| ids[p.result].clone()).collect(),
            result_keys: join.pairs.iter().map(|p| keys[p.result].clone()).collect(),
            score_keys: join.pairs.iter().map(|p| scores.keys[p.score].clone()).collect(),
            kinds: join.pairs.iter().map(|p| p.kind).collect(),
            key_column: key_column.to_string(),
            metrics,
            scores: selected.into_iter().map(|(name, v)| (name, join.pairs.iter().map(|p| v[p.score]).collect())).collect(),
            params,
            covariate,
            join,
            notes,
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn metric(&self, name: &str) -> Option<&[Option<f64>]> {
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    pub fn score(&self, name: &str) -> Option<&[Option<f64>]> {
        self.scores.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// joined.csv: id, the key, the matched score id and how it matched, metrics, scores,
    /// params and the covariate. A score named like a metric is written as `score:NAME`.
    pub fn csv(&self) -> Vec<u8> {
        let with_key = self.key_column != "id";
        let mut columns = vec!["id".to_string()];
        if with_key {
            columns.push(self.key_column.clone());
        }
        columns.extend(["score_model".to_string(), "match".to_string()]);
        columns.extend(self.metrics.iter().map(|(n, _)| n.clone()));
        for (n, _) in &self.scores {
            columns.push(if columns.contains(n) { format!("score:{n}") } else { n.clone() });
        }
        columns.push("params".into());
        if let Some((n, _)) = &self.covariate {
            columns.push(n.clone());
        }
        let rows: Vec<Vec<String>> = (0..self.len())
            .map(|i| {
                let mut row = vec![self.ids[i].clone()];
                if with_key {
                    row.push(self.result_keys[i].clone());
                }
                row.extend([self.score_keys[i].clone(), self.kinds[i].as_str().to_string()]);
                row.extend(self.metrics.iter().chain(&self.scores).map(|(_, v)| format_number(v[i])));
                row.push(format_number(self.params[i]));
                if let Some((_, v)) = &self.covariate {
                    row.push(format_number(v[i]));
                }
                row
            })
            .collect();
        csv_bytes(&columns, &rows)
    }

    /// unmatched.txt: notes, then the unmatched ids of each side, one per line.
    pub fn unmatched_text(&self) -> String {
        let mut s = String::new();
        for note in &self.notes {
            s.push_str(&format!("# note: {note}\n"));
        }
        s.push_str(&format!("# results without a score ({}):\n", self.join.unmatched_results.len()));
        for k in &self.join.unmatched_results {
            s.push_str(&format!("{k}\n"));
        }
        s.push_str(&format!("# scores without a result ({}):\n", self.join.unmatched_scores.len()));
        for k in &self.join.unmatched_scores {
            s.push_str(&format!("{k}\n"));
        }
        s
    }
}

/// Every metric against every score with each method; rows missing a value in any column a
/// statistic involves are dropped for that statistic (n says how many remain).
pub fn correlate(joined: &Joined) -> Vec<CorrelationRow> {
    let mut out = Vec::new();
    for (metric, m) in &joined.metrics {
        for (score, s) in &joined.scores {
            let pairs: Vec<(f64, f64)> = m.iter().zip(s).filter_map(|(a, b)| Some(((*a)?, (*b)?))).collect();
            let (x, y): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
            let mut push = |method: Method, correlation: Correlation| out.push(CorrelationRow { metric: metric.clone(), score: score.clone(), method, correlation });
            push(Method::Pearson, stats::pearson(&x, &y));
            push(Method::Spearman, stats::spearman(&x, &y));
            if let Some((_, z)) = &joined.covariate {
                let triples: Vec<[f64; 3]> = (0..m.len()).filter_map(|i| Some([m[i]?, s[i]?, z[i]?])).collect();
                let col = |k: usize| triples.iter().map(|t| t[k]).collect::<Vec<f64>>();
                push(Method::PartialSpearman, stats::partial_spearman(&col(0), &col(1), &col(2)));
            }
        }
    }
    out
}

/// correlations.csv: metric, score, method, r, p, n (r and p empty where undefined).
pub fn correlations_csv(rows: &[CorrelationRow]) -> Vec<u8> {
    let columns: Vec<String> = ["metric", "score", "method", "r", "p", "n"].iter().map(|s| s.to_string()).collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.metric.clone(),
                r.score.clone(),
                r.method.as_str().to_string(),
                format_number(r.correlation.r),
                format_number(r.correlation.p),
                r.correlation.n.to_string(),
            ]
        })
        .collect();
    csv_bytes(&columns, &body)
}
