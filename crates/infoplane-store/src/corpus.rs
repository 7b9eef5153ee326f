//! Corpus readers (METHOD.md §4): JSONL (plain or gzip), plain text (a document per line, or a
//! directory of files, a document per file) and Parquet; empty documents skipped and counted;
//! seeded document sampling; provenance of the selection.

use crate::StoreError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How a corpus file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CorpusFormat {
    /// One JSON object a line with a string field (`.jsonl`, `.json`, `.ndjson`, each also `.gz`).
    Jsonl,
    /// One document a line (`.txt`, also `.gz`).
    Lines,
    /// A directory: each regular file one document, files sorted by path (recursively).
    Directory,
    /// A Parquet file with a string column (`.parquet`).
    Parquet,
}

impl CorpusFormat {
    /// The format a path implies: a directory, or the extension (before any `.gz`).
    pub fn detect(path: &Path) -> Result<Self, StoreError> {
        todo!("{path:?}")
    }
    pub fn name(&self) -> &'static str {
        match self {
            CorpusFormat::Jsonl => "jsonl",
            CorpusFormat::Lines => "lines",
            CorpusFormat::Directory => "directory",
            CorpusFormat::Parquet => "parquet",
        }
    }
}

/// How to read and sample a corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorpusOptions {
    /// None: detect from the path.
    pub format: Option<CorpusFormat>,
    /// The JSON field or Parquet column holding the text (`--text-field`, default "text").
    pub text_field: String,
    /// Keep at most this many documents, chosen by a seeded permutation (`--max-docs`).
    pub max_docs: Option<usize>,
    /// Seed of that permutation (`--doc-seed`).
    pub seed: u64,
    /// Skip (and count) invalid lines instead of failing (`--skip-bad-lines`).
    pub skip_bad_lines: bool,
}

impl Default for CorpusOptions {
    fn default() -> Self {
        CorpusOptions { format: None, text_field: "text".into(), max_docs: None, seed: 0, skip_bad_lines: false }
    }
}

/// One document as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// 0-based position of its record in the source: line (JSONL and text, every line counted),
    /// row (Parquet) or file in sorted order (directory).
    pub index: u64,
    pub text: String,
}

/// What was read and which documents were kept, for provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusSelection {
    pub path: String,
    pub format: CorpusFormat,
    /// sha256 of the file; for a directory, sha256 over each file's relative path and sha256.
    pub sha256: String,
    /// The field or column read (None for plain text).
    pub text_field: Option<String>,
    /// Records seen: lines (blank ones included), rows or files.
    pub records: u64,
    /// Non-empty documents available for selection.
    pub documents: u64,
    /// Documents that were empty or whitespace-only.
    pub empty_skipped: u64,
    /// Invalid lines skipped under `skip_bad_lines`.
    pub bad_lines_skipped: u64,
    pub max_docs: Option<u64>,
    pub seed: u64,
    /// Documents kept.
    pub selected: u64,
    /// sha256 over the kept documents' indices (u64 little-endian, ascending).
    pub selected_indices_sha256: String,
}

/// The kept documents, in source order, and how they were chosen.
#[derive(Clone, Debug)]
pub struct Corpus {
    pub documents: Vec<Document>,
    pub selection: CorpusSelection,
}

/// Reads the corpus at `path` and samples it as `options` say.
pub fn read_corpus(path: &Path, options: &CorpusOptions) -> Result<Corpus, StoreError> {
    todo!("{path:?} {options:?}")
}
