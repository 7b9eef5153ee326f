//! Preference pairs (METHOD.md §5): JSONL (plain or gzip) of {prompt, chosen, rejected}, or
//! HH-RLHF {chosen, rejected} whole dialogues split at the last "\n\nAssistant:".
//!
//! A record with a string `prompt` is taken as given. A record without one is an HH-RLHF pair:
//! the prompt is each dialogue up to and including its last "\n\nAssistant:", and the two must
//! agree on it; a pair whose prompts differ (14 of the 4,666 HH-RLHF test pairs, where an earlier
//! turn differs too) is skipped and counted in `unshared_prompt_skipped`, never an error, since
//! it is well-formed data that has no single prompt. Lines follow the corpus rules (see
//! `corpus.rs`): invalid JSON, a missing or non-string `chosen`/`rejected`/`prompt`, non-UTF-8
//! bytes, or a dialogue with no "\n\nAssistant:" are errors naming the line unless
//! `skip_bad_lines`. Empty responses are kept (they are data).

use crate::corpus::{bad_line, for_each_line, json_object, json_string_field, select, Line, Tally};
use crate::{file_sha256, StoreError};
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
    if options.max_pairs == Some(0) {
        return Err(StoreError::Corpus { path: path.to_path_buf(), reason: "max_pairs must be at least 1".into() });
    }
    let skip = options.skip_bad_lines;
    let mut tally = Tally::default();
    let (mut explicit, mut dialogues, mut unshared) = (0u64, 0u64, 0u64);
    let mut pairs = Vec::new();
    tally.records = for_each_line(path, |line| {
        let (index, text) = match line {
            Line::Text(i, t) => (i, t),
            Line::NotUtf8(i, reason) => return bad_line(path, i, reason, skip, &mut tally),
        };
        if text.trim().is_empty() {
            return Ok(());
        }
        let object = match json_object(&text) {
            Ok(o) => o,
            Err(reason) => return bad_line(path, index, reason, skip, &mut tally),
        };
        let field = |name: &str| -> Result<String, String> { json_string_field(&object, name)?.ok_or_else(|| format!("no field {name:?}")) };
        let parsed = (|| -> Result<Option<PreferencePair>, String> {
            let chosen = field("chosen")?;
            let rejected = field("rejected")?;
            if let Some(prompt) = json_string_field(&object, "prompt")? {
                explicit += 1;
                return Ok(Some(PreferencePair { index, prompt, chosen, rejected }));
            }
            dialogues += 1;
            Ok(split_hh_dialogues(&chosen, &rejected)?.map(|(p, c, r)| PreferencePair { index, prompt: p.to_string(), chosen: c.to_string(), rejected: r.to_string() }))
        })();
        match parsed {
            Ok(Some(pair)) => pairs.push(pair),
            Ok(None) => unshared += 1,
            Err(reason) => return bad_line(path, index, reason, skip, &mut tally),
        }
        Ok(())
    })?;
    if pairs.is_empty() {
        return Err(StoreError::Corpus {
            path: path.to_path_buf(),
            reason: format!("no preference pairs ({} lines: {} bad lines skipped, {} pairs without a shared prompt)", tally.records, tally.bad, unshared),
        });
    }
    let format = match (explicit > 0, dialogues > 0) {
        (true, false) => PreferenceFormat::PromptChosenRejected,
        (false, true) => PreferenceFormat::HhRlhf,
        _ => PreferenceFormat::Mixed,
    };
    let available = pairs.len() as u64;
    let (pairs, indices_sha256) = select(pairs, options.max_pairs, options.seed, |p| p.index).map_err(|reason| StoreError::Corpus { path: path.to_path_buf(), reason })?;
    let selection = PreferenceSelection {
        path: path.display().to_string(),
        sha256: file_sha256(path)?,
        format,
        records: tally.records,
        pairs: available,
        bad_lines_skipped: tally.bad,
        unshared_prompt_skipped: unshared,
        max_pairs: options.max_pairs.map(|m| m as u64),
        seed: options.seed,
        selected: pairs.len() as u64,
        selected_indices_sha256: indices_sha256,
    };
    Ok(Preferences { pairs, selection })
}

/// Splits an HH-RLHF pair into (prompt, chosen response, rejected response); None when the two
/// dialogues do not share the prompt up to and including their last "\n\nAssistant:".
/// Err when a dialogue has no "\n\nAssistant:" at all.
pub fn split_hh_dialogues<'a>(chosen: &'a str, rejected: &'a str) -> Result<Option<(&'a str, &'a str, &'a str)>, String> {
    let end = |dialogue: &str, which: &str| -> Result<usize, String> {
        dialogue.rfind(HH_ASSISTANT_MARKER).map(|i| i + HH_ASSISTANT_MARKER.len()).ok_or_else(|| format!("{which} has no {HH_ASSISTANT_MARKER:?} to end the prompt"))
    };
    let (c, r) = (end(chosen, "chosen")?, end(rejected, "rejected")?);
    if chosen[..c] != rejected[..r] {
        return Ok(None);
    }
    Ok(Some((&chosen[..c], &chosen[c..], &rejected[r..])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hh_split_keeps_the_marker_in_the_prompt() {
        let c = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and?\n\nAssistant: yes";
        let r = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and?\n\nAssistant: no way";
        let (p, cc, rr) = split_hh_dialogues(c, r).unwrap().unwrap();
        assert_eq!(p, "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and?\n\nAssistant:");
        assert_eq!((cc, rr), (" yes", " no way"));
        assert_eq!(format!("{p}{cc}"), c);
        assert_eq!(split_hh_dialogues("\n\nHuman: a\n\nAssistant: x", "\n\nHuman: b\n\nAssistant: x").unwrap(), None);
        assert!(split_hh_dialogues("\n\nHuman: a", "\n\nHuman: a\n\nAssistant: x").is_err());
    }
}
