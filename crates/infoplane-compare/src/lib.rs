//! Across models (METHOD.md §6): sweep manifests, model tables, benchmark scores, the join of the
//! two, and correlations (Pearson, Spearman, partial Spearman controlling for log parameter count).

mod correlate;
mod join;
mod manifest;
mod scores;
pub mod stats;
mod table;

pub use correlate::{correlate, correlations_csv, Covariate, CorrelationRow, Joined, Method, METHODS};
pub use join::{join_keys, Join, MatchKind, Pair};
pub use manifest::{slug, Manifest, ModelEntry, MANIFEST_FIELDS};
pub use scores::{read_scores, ScoreColumns, Scores, ScoresFormat, BENCHMARK_MEAN, OLL_V2_BENCHMARKS};
pub use stats::Correlation;
pub use table::{format_number, parse_number, NotANumber, Table};

use std::path::{Path, PathBuf};

/// Every failure of this crate names the file and, where there is one, the line, entry or column.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {reason}", path.display())]
    Manifest { path: PathBuf, reason: String },
    #[error("{}: line {line}: {reason}", path.display())]
    Csv { path: PathBuf, line: u64, reason: String },
    #[error("{}: no column `{column}` (it has: {available})", path.display())]
    MissingColumn { path: PathBuf, column: String, available: String },
    #[error("{}: {reason}", path.display())]
    Table { path: PathBuf, reason: String },
    /// Input that is well-formed but cannot be used (e.g. no results row matches a score row).
    #[error("{0}")]
    Invalid(String),
}

impl CompareError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        CompareError::Io { path: path.to_path_buf(), source }
    }
    pub(crate) fn table(path: &Path, reason: impl Into<String>) -> Self {
        CompareError::Table { path: path.to_path_buf(), reason: reason.into() }
    }
}
