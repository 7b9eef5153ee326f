//! Preference pairs (METHOD.md §5): JSONL (plain or gzip) of {prompt, chosen, rejected}, or
//! HH-RLHF {chosen, rejected} whole dialogues split at the last "\n\nAssistant:".

use crate::StoreError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The marker that ends an HH-RLHF prompt (kept in the prompt).
pub const HH_ASSISTANT_MARKER: &str = "\n\nAssistant:";

/// Which record layout the pairs came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PreferenceFormat {
    /// Every record has `prompt`, `chosen`, `rejected`.
    PromptChosenRejected,
    /// Every record has whole dialogues `chosen`, `rejected` (no `prompt`).
    HhRlhf,
    /// Both kinds of record occur.
    Mixed,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PreferenceOptions {
    /// Keep at most this many pairs, chosen by a seeded permutation.
    pub max_pairs: Option<usize>,
    pub seed: u64,
    /// Skip (and count) invalid lines instead of failing.
    pub skip_bad_lines: bool,
}

/// One pair: the sequences are prompt + chosen (label 1) and prompt + rejected (label 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreferencePair {
    /// 0-based line of the record.
    pub index: u64,
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferenceSelection {
    pub path: String,
    pub sha256: String,
    pub format: PreferenceFormat,
    /// Lines seen (blank ones included).
    pub records: u64,
    /// Valid pairs available for selection.
    pub pairs: u64,
    pub bad_lines_skipped: u64,
    /// HH-RLHF records whose two dialogues differ before their last "\n\nAssistant:".
    pub unshared_prompt_skipped: u64,
    pub max_pairs: Option<u64>,
    pub seed: u64,
    pub selected: u64,
    /// sha256 over the kept pairs' indices (u64 little-endian, ascending).
    pub selected_indices_sha256: String,
}

#[derive(Clone, Debug)]
pub struct Preferences {
    pub pairs: Vec<PreferencePair>,
    pub selection: PreferenceSelection,
}

/// Reads preference pairs from a JSONL(.gz) file.
pub fn read_preferences(path: &Path, options: &PreferenceOptions) -> Result<Preferences, StoreError> {
    todo!("{path:?} {options:?}")
}

/// Splits an HH-RLHF pair into (prompt, chosen response, rejected response); None when the two
/// dialogues do not share the prompt up to and including their last "\n\nAssistant:".
/// Err when a dialogue has no "\n\nAssistant:" at all.
pub fn split_hh_dialogues<'a>(chosen: &'a str, rejected: &'a str) -> Result<Option<(&'a str, &'a str, &'a str)>, String> {
    todo!("{chosen} {rejected}")
}
