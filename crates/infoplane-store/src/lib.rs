//! Files: `.npy` arrays, partial statistics, atomic writes and content hashes. The only crate
//! besides the CLI that touches the filesystem; it knows the estimator's plain-data types but
//! none of its maths.

mod atomic;
mod corpus;
mod npy;
mod partial;
mod preferences;
mod spill;
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
