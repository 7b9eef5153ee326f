//! Files: `.npy` arrays, partial statistics, atomic writes and content hashes. The only crate
//! besides the CLI that touches the filesystem; it knows the estimator's plain-data types but
//! none of its maths.

mod atomic;
mod corpus;
mod npy;
mod partial;
mod preferences;
mod spill;
mod st_bytes;
mod ngram_file;
mod table;

pub use atomic::{write_atomic, write_atomic_with};
pub use corpus::{read_corpus, Corpus, CorpusFormat, CorpusOptions, CorpusSelection, Document};
pub use npy::{parse_npy, read_npy, write_npy_f32, write_npy_i64, NpyArray, NpyData};
pub use partial::{decode_partial, encode_partial, read_partial, write_partial};
pub use preferences::{read_preferences, split_hh_dialogues, PreferenceFormat, PreferenceOptions, PreferencePair, PreferenceSelection, Preferences, HH_ASSISTANT_MARKER};
pub use table::{format_f64, Column, Table};
pub use spill::{remove_spill, SpillReader, SpillWriter};
pub use ngram_file::{read_ngram_counts, write_ngram_counts};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not a valid .npy file: {reason}", path.display())]
    Npy { path: PathBuf, reason: String },
    #[error("{}: not a valid infoplane partial: {reason}", path.display())]
    Partial { path: PathBuf, reason: String },
    /// A record of a corpus or preference file (1-based line, or row for Parquet).
    #[error("{}, line {line}: {reason}", path.display())]
    Line { path: PathBuf, line: u64, reason: String },
    #[error("{}: {reason}", path.display())]
    Corpus { path: PathBuf, reason: String },
    #[error("{}: {reason}", path.display())]
    Table { path: PathBuf, reason: String },
    /// A table assembled in memory is malformed (duplicate column, unequal lengths).
    #[error("table: {0}")]
    TableShape(String),
    #[error("{}: spilled soft assignments are inconsistent: {reason}", path.display())]
    Spill { path: PathBuf, reason: String },
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io { path: path.to_path_buf(), source }
    }
}

/// sha256 of a file's bytes, hex.
pub fn file_sha256(path: &Path) -> Result<String, StoreError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let got = file.read(&mut buf).map_err(|e| StoreError::io(path, e))?;
        if got == 0 {
            break;
        }
        hasher.update(&buf[..got]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// For tests across the workspace: where the shared real data is.
pub mod testing {
    use std::path::PathBuf;

    /// The repository's root (this crate sits two folders below it).
    pub fn repo_root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// `../shared/data` beside the repository, or `$INFOPLANE_SHARED_DATA` (relative paths are
    /// taken from the repository root). None, with a `SKIPPED <test>` line on stderr, when it is
    /// absent; a panic instead when `INFOPLANE_REQUIRE_SHARED_DATA=1` (as `.ci/run` sets).
    pub fn shared_data(test: &str) -> Option<PathBuf> {
        let configured = std::env::var_os("INFOPLANE_SHARED_DATA").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("../shared/data"));
        let dir = if configured.is_absolute() { configured } else { repo_root().join(configured) };
        if dir.is_dir() {
            return Some(dir);
        }
        let required = std::env::var("INFOPLANE_REQUIRE_SHARED_DATA").is_ok_and(|v| v == "1");
        assert!(!required, "{test}: shared data {} is missing and INFOPLANE_REQUIRE_SHARED_DATA=1", dir.display());
        eprintln!("SKIPPED {test}: shared data not found at {} (set INFOPLANE_SHARED_DATA)", dir.display());
        None
    }
}
