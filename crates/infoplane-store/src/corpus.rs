//! Corpus readers (METHOD.md §4): JSONL (plain or gzip), plain text (a document per line, or a
//! directory of files, a document per file) and Parquet; empty documents skipped and counted;
//! seeded document sampling; provenance of the selection.
//!
//! Rules shared by every line-based file (corpus and preference pairs):
//! - gzip is recognised by its magic bytes, whatever the name (concatenated members are read);
//! - a line ends at `\n`, a trailing `\r` is dropped; lines are numbered from 1 in errors and
//!   from 0 in [`Document::index`];
//! - a line that is not UTF-8, not a JSON object, lacks the field or holds a non-string in it is
//!   an error naming the file and line, or with `skip_bad_lines` is skipped and counted;
//! - blank lines of a JSONL file are not records and are passed over silently;
//! - documents whose text is empty or whitespace-only are skipped and counted.
//!
//! Memory: every non-empty document is held once as text while sampling (C4's 10,000 documents
//! are ~22 MB); cut a much larger corpus to a sample file first.

use crate::{file_sha256, StoreError};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

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
        if path.is_dir() {
            return Ok(CorpusFormat::Directory);
        }
        let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        match name.rsplit_once('.').map(|(_, ext)| ext) {
            Some("jsonl" | "json" | "ndjson") => Ok(CorpusFormat::Jsonl),
            Some("txt" | "text") => Ok(CorpusFormat::Lines),
            Some("parquet" | "pq") => Ok(CorpusFormat::Parquet),
            _ => Err(StoreError::Corpus {
                path: path.to_path_buf(),
                reason: "cannot tell the corpus format from the name: expected a directory, .jsonl/.json/.ndjson (optionally .gz), .txt (optionally .gz) or .parquet".into(),
            }),
        }
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
    if options.max_docs == Some(0) {
        return Err(StoreError::Corpus { path: path.to_path_buf(), reason: "max_docs must be at least 1".into() });
    }
    let format = match options.format {
        Some(f) => f,
        None => CorpusFormat::detect(path)?,
    };
    let mut tally = Tally::default();
    let (documents, sha256) = match format {
        CorpusFormat::Jsonl => (read_jsonl(path, &options.text_field, options.skip_bad_lines, &mut tally)?, file_sha256(path)?),
        CorpusFormat::Lines => (read_lines_corpus(path, options.skip_bad_lines, &mut tally)?, file_sha256(path)?),
        CorpusFormat::Directory => read_directory(path, options.skip_bad_lines, &mut tally)?,
        CorpusFormat::Parquet => (read_parquet(path, &options.text_field, &mut tally)?, file_sha256(path)?),
    };
    if documents.is_empty() {
        return Err(StoreError::Corpus {
            path: path.to_path_buf(),
            reason: format!("no documents ({} records: {} empty, {} bad lines skipped)", tally.records, tally.empty, tally.bad),
        });
    }
    let available = documents.len() as u64;
    let (documents, indices_sha256) = select(documents, options.max_docs, options.seed, |d| d.index).map_err(|reason| StoreError::Corpus { path: path.to_path_buf(), reason })?;
    let selection = CorpusSelection {
        path: path.display().to_string(),
        format,
        sha256,
        text_field: matches!(format, CorpusFormat::Jsonl | CorpusFormat::Parquet).then(|| options.text_field.clone()),
        records: tally.records,
        documents: available,
        empty_skipped: tally.empty,
        bad_lines_skipped: tally.bad,
        max_docs: options.max_docs.map(|m| m as u64),
        seed: options.seed,
        selected: documents.len() as u64,
        selected_indices_sha256: indices_sha256,
    };
    Ok(Corpus { documents, selection })
}

#[derive(Default)]
pub(crate) struct Tally {
    pub records: u64,
    pub empty: u64,
    pub bad: u64,
}

/// Keeps at most `max` items chosen by the seeded permutation (the first `max` entries of
/// `permutation(len, seed)`), in their original order; all when there are no more than `max`.
/// Also returns sha256 over the kept items' indices (u64 little-endian, in order).
pub(crate) fn select<T>(items: Vec<T>, max: Option<usize>, seed: u64, index: impl Fn(&T) -> u64) -> Result<(Vec<T>, String), String> {
    let kept = match max {
        Some(m) if items.len() > m => {
            if items.len() > u32::MAX as usize {
                return Err(format!("{} records are more than sampling can permute", items.len()));
            }
            let mut chosen: Vec<u32> = infoplane_estimator::rng::permutation(items.len(), seed)[..m].to_vec();
            chosen.sort_unstable();
            let mut keep = vec![false; items.len()];
            for c in chosen {
                keep[c as usize] = true;
            }
            items.into_iter().zip(keep).filter_map(|(item, k)| k.then_some(item)).collect()
        }
        _ => items,
    };
    let mut h = Sha256::new();
    for item in &kept {
        h.update(index(item).to_le_bytes());
    }
    Ok((kept, hex(&h.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader of `path`'s bytes, gunzipped when they start with the gzip magic.
pub(crate) fn open_maybe_gz(path: &Path) -> Result<Box<dyn BufRead>, StoreError> {
    let file = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let magic = reader.fill_buf().map_err(|e| StoreError::io(path, e))?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(1 << 16, flate2::bufread::MultiGzDecoder::new(reader))))
    } else {
        Ok(Box::new(reader))
    }
}

/// One line of a line-based file: its 0-based index and its text, or why it is not text.
pub(crate) enum Line {
    Text(u64, String),
    NotUtf8(u64, String),
}

/// Calls `each` on every line of `path` (gzip or not). Read failures (a damaged gzip stream)
/// are errors naming the line reached.
pub(crate) fn for_each_line(path: &Path, mut each: impl FnMut(Line) -> Result<(), StoreError>) -> Result<u64, StoreError> {
    let mut reader = open_maybe_gz(path)?;
    let mut buf = Vec::new();
    let mut index = 0u64;
    loop {
        buf.clear();
        let got = reader.read_until(b'\n', &mut buf).map_err(|e| StoreError::Line { path: path.to_path_buf(), line: index + 1, reason: format!("cannot read: {e}") })?;
        if got == 0 {
            return Ok(index);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        let line = match String::from_utf8(std::mem::take(&mut buf)) {
            Ok(text) => Line::Text(index, text),
            Err(e) => Line::NotUtf8(index, format!("not valid UTF-8 (byte {} of the line)", e.utf8_error().valid_up_to() + 1)),
        };
        each(line)?;
        index += 1;
    }
}

/// A bad line: an error, or counted when skipping.
pub(crate) fn bad_line(path: &Path, index: u64, reason: String, skip: bool, tally: &mut Tally) -> Result<(), StoreError> {
    if skip {
        tally.bad += 1;
        Ok(())
    } else {
        Err(StoreError::Line { path: path.to_path_buf(), line: index + 1, reason })
    }
}

/// The string in `field` of a JSON object line, or why there is none.
pub(crate) fn json_string_field(object: &serde_json::Map<String, serde_json::Value>, field: &str) -> Result<Option<String>, String> {
    match object.get(field) {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("field {field:?} is {}, not a string", json_kind(other))),
    }
}

pub(crate) fn json_object(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("a JSON {}, not an object", json_kind(&other))),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn keep_text(index: u64, text: String, docs: &mut Vec<Document>, tally: &mut Tally) {
    if text.trim().is_empty() {
        tally.empty += 1;
    } else {
        docs.push(Document { index, text });
    }
}

fn read_jsonl(path: &Path, field: &str, skip: bool, tally: &mut Tally) -> Result<Vec<Document>, StoreError> {
    let mut docs = Vec::new();
    tally.records = for_each_line(path, |line| {
        let (index, text) = match line {
            Line::Text(i, t) => (i, t),
            Line::NotUtf8(i, reason) => return bad_line(path, i, reason, skip, tally),
        };
        if text.trim().is_empty() {
            return Ok(());
        }
        let object = match json_object(&text) {
            Ok(o) => o,
            Err(reason) => return bad_line(path, index, reason, skip, tally),
        };
        match json_string_field(&object, field) {
            Ok(Some(doc)) => keep_text(index, doc, &mut docs, tally),
            Ok(None) => return bad_line(path, index, format!("no field {field:?}"), skip, tally),
            Err(reason) => return bad_line(path, index, reason, skip, tally),
        }
        Ok(())
    })?;
    Ok(docs)
}

fn read_lines_corpus(path: &Path, skip: bool, tally: &mut Tally) -> Result<Vec<Document>, StoreError> {
    let mut docs = Vec::new();
    tally.records = for_each_line(path, |line| {
        match line {
            Line::Text(i, t) => keep_text(i, t, &mut docs, tally),
            Line::NotUtf8(i, reason) => bad_line(path, i, reason, skip, tally)?,
        }
        Ok(())
    })?;
    Ok(docs)
}

/// Regular files under `dir`, recursively, hidden names (starting with '.') left out, sorted by
/// their path relative to `dir`.
fn list_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| StoreError::io(&d, e))? {
            let entry = entry.map_err(|e| StoreError::io(&d, e))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let meta = std::fs::metadata(&path).map_err(|e| StoreError::io(&path, e))?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read_directory(dir: &Path, skip: bool, tally: &mut Tally) -> Result<(Vec<Document>, String), StoreError> {
    let files = list_files(dir)?;
    let mut docs = Vec::new();
    let mut h = Sha256::new();
    for (index, file) in files.iter().enumerate() {
        let mut bytes = Vec::new();
        open_maybe_gz(file)?.read_to_end(&mut bytes).map_err(|e| StoreError::io(file, e))?;
        let relative = file.strip_prefix(dir).unwrap_or(file);
        h.update(relative.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(file_sha256(file)?.as_bytes());
        h.update([b'\n']);
        tally.records += 1;
        match String::from_utf8(bytes) {
            Ok(text) => keep_text(index as u64, text, &mut docs, tally),
            Err(_) if skip => tally.bad += 1,
            Err(e) => return Err(StoreError::Corpus { path: file.clone(), reason: format!("not valid UTF-8 (byte {})", e.utf8_error().valid_up_to() + 1) }),
        }
    }
    Ok((docs, hex(&h.finalize())))
}

fn read_parquet(path: &Path, column: &str, tally: &mut Tally) -> Result<Vec<Document>, StoreError> {
    let err = |reason: String| StoreError::Corpus { path: path.to_path_buf(), reason };
    let file = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| err(format!("not a readable Parquet file: {e}")))?;
    let root = reader.metadata().file_metadata().schema_descr().root_schema().clone();
    let Some(field) = root.get_fields().iter().find(|f| f.name() == column) else {
        let names: Vec<&str> = root.get_fields().iter().map(|f| f.name()).collect();
        return Err(err(format!("no column {column:?} (columns: {})", names.join(", "))));
    };
    if !field.is_primitive() || field.get_physical_type() != parquet::basic::Type::BYTE_ARRAY {
        return Err(err(format!("column {column:?} is not a string column")));
    }
    let projection = parquet::schema::types::Type::group_type_builder(root.name()).with_fields(vec![field.clone()]).build().map_err(|e| err(e.to_string()))?;
    let mut docs = Vec::new();
    for (row, record) in reader.get_row_iter(Some(projection)).map_err(|e| err(e.to_string()))?.enumerate() {
        let record = record.map_err(|e| err(format!("row {row}: {e}")))?;
        tally.records += 1;
        let text = match record.into_columns().into_iter().next().map(|(_, f)| f) {
            Some(Field::Str(s)) => s,
            Some(Field::Null) | None => String::new(),
            Some(Field::Bytes(b)) => String::from_utf8(b.data().to_vec()).map_err(|_| err(format!("row {row}: column {column:?} is not valid UTF-8")))?,
            Some(other) => return Err(err(format!("row {row}: column {column:?} holds {other}, not a string"))),
        };
        keep_text(row as u64, text, &mut docs, tally);
    }
    Ok(docs)
}
