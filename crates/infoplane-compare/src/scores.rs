//! Benchmark scores keyed by model id: any CSV with a key column, and the Open LLM Leaderboard v2
//! table (rank, model, average, params_b, ifeval, bbh, math_lvl5, gpqa, musr, mmlu_pro) natively.

use crate::{table::Table, CompareError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The six Open LLM Leaderboard v2 benchmarks, the default score columns for that table.
pub const OLL_V2_BENCHMARKS: [&str; 6] = ["ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro"];
/// Named columns of values, one per kept row (None = missing).
pub type ScoreColumns = Vec<(String, Vec<Option<f64>>)>;

/// The name of the per-model mean of the chosen score columns.
pub const BENCHMARK_MEAN: &str = "benchmark_mean";

/// Columns that describe a row rather than score it: never a default score column.
const NOT_SCORES: [&str; 7] = ["rank", "params", "params_b", "average", "step", "tokens", "id"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoresFormat {
    OpenLlmLeaderboardV2,
    Generic,
}

#[derive(Debug, Clone)]
pub struct Scores {
    pub path: PathBuf,
    pub format: ScoresFormat,
    pub key_column: String,
    /// One per kept row (unique).
    pub keys: Vec<String>,
    /// Numeric columns that may serve as scores, in file order.
    pub columns: Vec<String>,
    /// values[row][column], None = missing.
    pub values: Vec<Vec<Option<f64>>>,
    /// Parameter count (from `params`, or `params_b` × 1e9; 0 means unknown).
    pub params: Vec<Option<f64>>,
    /// What was done to the input that a user should know (duplicates resolved…).
    pub notes: Vec<String>,
}

/// Reads a scores CSV. `key` names the model-id column (default `model`). A table with the Open LLM
/// Leaderboard v2 columns is recognised; in any table with a `rank` column, a model id that appears
/// more than once keeps its best-ranked (lowest rank) row, with a note; without `rank` a
/// duplicate id is an error.
pub fn read_scores(path: &Path, key: Option<&str>) -> Result<Scores, CompareError> {
    let table = Table::read_csv(path)?;
    let key_column = key.unwrap_or("model").to_string();
    let key_idx = table.require(&key_column)?;
    let oll = ["rank", "model", "params_b"].iter().chain(OLL_V2_BENCHMARKS.iter()).all(|c| table.has(c));
    let format = if oll { ScoresFormat::OpenLlmLeaderboardV2 } else { ScoresFormat::Generic };

    let columns: Vec<String> = table.numeric_columns().into_iter().filter(|c| *c != key_column && !NOT_SCORES.contains(&c.as_str())).collect();
    let ranks = if table.has("rank") { Some(table.numbers("rank")?) } else { None };
    let params: Vec<Option<f64>> = if table.has("params") {
        table.numbers("params")?
    } else if table.has("params_b") {
        table.numbers("params_b")?.into_iter().map(|v| v.map(|b| b * 1e9)).collect()
    } else {
        vec![None; table.len()]
    };
    let params: Vec<Option<f64>> = params.into_iter().map(|v| v.filter(|&p| p > 0.0)).collect();
    let mut values: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(columns.len()); table.len()];
    for c in &columns {
        for (row, v) in table.numbers(c)?.into_iter().enumerate() {
            values[row].push(v);
        }
    }

    // Keep one row per key: the first, or the best-ranked when there is a rank column.
    let mut kept: Vec<usize> = Vec::new();
    let mut by_key: HashMap<&str, usize> = HashMap::new(); // key → index into `kept`
    let mut duplicates: Vec<(String, Vec<usize>)> = Vec::new();
    for row in 0..table.len() {
        let k = table.text(row, key_idx);
        if k.is_empty() {
            return Err(CompareError::Csv { path: path.to_path_buf(), line: table.lines[row], reason: format!("empty `{key_column}`") });
        }
        match by_key.get(k) {
            None => {
                by_key.insert(k, kept.len());
                kept.push(row);
            }
            Some(&slot) => {
                let Some(ranks) = &ranks else {
                    return Err(CompareError::Csv {
                        path: path.to_path_buf(),
                        line: table.lines[row],
                        reason: format!("model {k:?} appears again (first on line {}); keep one row per model or add a `rank` column", table.lines[kept[slot]]),
                    });
                };
                match duplicates.iter_mut().find(|(d, _)| d == k) {
                    Some((_, rows)) => rows.push(row),
                    None => duplicates.push((k.to_string(), vec![kept[slot], row])),
                }
                let rank = |r: usize| ranks[r].unwrap_or(f64::INFINITY);
                if rank(row) < rank(kept[slot]) {
                    kept[slot] = row;
                }
            }
        }
    }
    let mut notes = Vec::new();
    if !duplicates.is_empty() {
        let ranks = ranks.as_ref().expect("duplicates are kept only with ranks");
        let list: Vec<String> = duplicates
            .iter()
            .map(|(k, rows)| {
                let rs: Vec<String> = rows.iter().map(|&r| ranks[r].map_or("?".into(), |v| format!("{v}"))).collect();
                format!("{k} (ranks {})", rs.join(", "))
            })
            .collect();
        notes.push(format!(
            "{}: {} model id(s) appear more than once; kept the best-ranked (lowest rank) row of each: {}",
            path.display(),
            duplicates.len(),
            list.join("; ")
        ));
    }
    Ok(Scores {
        path: path.to_path_buf(),
        format,
        key_column,
        keys: kept.iter().map(|&r| table.text(r, key_idx).to_string()).collect(),
        columns,
        params: kept.iter().map(|&r| params[r]).collect(),
        values: kept.iter().map(|&r| values[r].clone()).collect(),
        notes,
    })
}

impl Scores {
    /// The default score columns: the six benchmarks of the leaderboard table, else every numeric
    /// column that is not a rank, a parameter count or an average.
    pub fn default_columns(&self) -> Vec<String> {
        match self.format {
            ScoresFormat::OpenLlmLeaderboardV2 => OLL_V2_BENCHMARKS.iter().map(|s| s.to_string()).collect(),
            ScoresFormat::Generic => self.columns.clone(),
        }
    }

    /// The chosen score columns (default: `default_columns`), each as (name, value per kept row),
    /// followed by `benchmark_mean` (their mean; missing where any is missing) when there are two
    /// or more. An unknown or non-numeric column is an error that lists the numeric ones.
    pub fn select(&self, wanted: Option<&[String]>) -> Result<ScoreColumns, CompareError> {
        let names = wanted.map(<[String]>::to_vec).unwrap_or_else(|| self.default_columns());
        if names.is_empty() {
            return Err(CompareError::table(&self.path, "no numeric score columns"));
        }
        let mut out = Vec::new();
        for name in &names {
            let c = if name == "params" || name == "params_b" {
                None
            } else {
                self.columns.iter().position(|c| c == name)
            };
            let Some(c) = c else {
                return Err(CompareError::MissingColumn {
                    path: self.path.clone(),
                    column: name.clone(),
                    available: format!("numeric score columns {}", self.columns.join(", ")),
                });
            };
            out.push((name.clone(), self.values.iter().map(|row| row[c]).collect::<Vec<_>>()));
        }
        if out.len() >= 2 && !names.iter().any(|n| n == BENCHMARK_MEAN) {
            let mean = (0..self.keys.len())
                .map(|r| {
                    let vals: Option<Vec<f64>> = out.iter().map(|(_, v)| v[r]).collect();
                    vals.map(|v| v.iter().sum::<f64>() / v.len() as f64)
                })
                .collect();
            out.push((BENCHMARK_MEAN.to_string(), mean));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn leaderboard_duplicates_keep_the_best_rank() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "oll.csv",
            "rank,model,average,params_b,ifeval,bbh,math_lvl5,gpqa,musr,mmlu_pro\n\
             7,org/a,10,0.1,1,2,3,4,5,6\n\
             3,org/b,20,0.0,2,3,4,5,6,7\n\
             2,org/a,11,0.1,9,9,9,9,9,9\n\
             9,org/a,12,0.1,0,0,0,0,0,0\n",
        );
        let s = read_scores(&p, None).unwrap();
        assert_eq!(s.format, ScoresFormat::OpenLlmLeaderboardV2);
        assert_eq!(s.keys, vec!["org/a", "org/b"]);
        assert_eq!(s.values[0][s.columns.iter().position(|c| c == "ifeval").unwrap()], Some(9.0));
        assert_eq!(s.params, vec![Some(0.1e9), None], "params_b 0.0 means unknown");
        assert_eq!(s.notes.len(), 1);
        assert!(s.notes[0].contains("org/a (ranks 7, 2, 9)"), "{}", s.notes[0]);
        let sel = s.select(None).unwrap();
        let names: Vec<&str> = sel.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro", "benchmark_mean"]);
        assert_eq!(sel[6].1, vec![Some(9.0), Some(4.5)]);
        let e = s.select(Some(&["mmlu".to_string()])).unwrap_err().to_string();
        assert!(e.contains("no column `mmlu`") && e.contains("mmlu_pro"), "{e}");
        assert_eq!(s.select(Some(&["bbh".to_string()])).unwrap().len(), 1, "one column, no mean");
    }

    #[test]
    fn generic_tables() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "s.csv", "name,score,params,notes\nm1,0.5,1e9,x\nm2,,2e9,y\n");
        let s = read_scores(&p, Some("name")).unwrap();
        assert_eq!(s.format, ScoresFormat::Generic);
        assert_eq!(s.columns, vec!["score"]);
        assert_eq!(s.params, vec![Some(1e9), Some(2e9)]);
        assert!(read_scores(&p, None).unwrap_err().to_string().contains("no column `model`"));
        let p = write(dir.path(), "d.csv", "model,score\nm1,1\nm1,2\n");
        let e = read_scores(&p, None).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("\"m1\" appears again (first on line 2)"), "{e}");
    }
}
