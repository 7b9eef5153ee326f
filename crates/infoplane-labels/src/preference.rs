//! Preference labels (METHOD.md §5): each pair gives two teacher-forced sequences, prompt+chosen
//! (label 1) and prompt+rejected (label 0); the positions of a sequence that are samples depend on
//! `--pref-tokens`.

use crate::LabelError;
use infoplane_estimator::LabelIndex;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// The label-set name of I(Z; pref).
pub const PREFERENCE_SET: &str = "preference";
/// The key of positions in a chosen sequence.
pub const CHOSEN_KEY: [i64; 1] = [1];
/// The key of positions in a rejected sequence.
pub const REJECTED_KEY: [i64; 1] = [0];

/// Which positions of a preference sequence are samples (`--pref-tokens`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrefTokens {
    /// Every response token position.
    #[default]
    Response,
    /// Every position, prompt included.
    All,
    /// The last token only (one sample per sequence).
    Last,
}

impl PrefTokens {
    pub fn name(&self) -> &'static str {
        match self {
            PrefTokens::Response => "response",
            PrefTokens::All => "all",
            PrefTokens::Last => "last",
        }
    }
}

/// The sample positions of a sequence of `len` tokens (after truncation) whose first
/// `prompt_tokens` are the prompt. `Response` is empty when truncation left no response token;
/// `Last` is empty only for an empty sequence.
pub fn preference_positions(prompt_tokens: usize, len: usize, mode: PrefTokens) -> Range<usize> {
    match mode {
        PrefTokens::Response => prompt_tokens.min(len)..len,
        PrefTokens::All => 0..len,
        PrefTokens::Last => len.saturating_sub(1)..len,
    }
}

/// One teacher-forced sequence, as tokenised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceLengths {
    /// prompt+chosen (label 1) or prompt+rejected (label 0).
    pub chosen: bool,
    /// Tokens of the prompt at the start of the sequence (its own count: tokenising prompt+response
    /// may merge tokens across the boundary, so chosen and rejected may differ). May exceed `len`
    /// when truncation cut into the prompt.
    pub prompt_tokens: usize,
    /// Tokens in the sequence after truncation.
    pub len: usize,
}

/// Where one sequence's samples are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefSequence {
    pub chosen: bool,
    /// Token positions whose hidden states are samples.
    pub positions: Range<usize>,
    /// Their global numbers (indexes into [`PreferenceLabels::ids`]).
    pub global: Range<usize>,
}

/// The preference label set over a list of sequences: keys [`CHOSEN_KEY`] and [`REJECTED_KEY`]
/// with complete counts, and the id of every sample position (global numbering as for
/// [`crate::CorpusLabels`]: sequence by sequence, in the order given).
#[derive(Clone, Debug)]
pub struct PreferenceLabels {
    mode: PrefTokens,
    index: LabelIndex,
    ids: Vec<u32>,
    sequences: Vec<PrefSequence>,
}

impl PreferenceLabels {
    pub fn build(sequences: &[SequenceLengths], mode: PrefTokens) -> Result<Self, LabelError> {
        let mut index = LabelIndex::new();
        // Fixed ids whatever the order of the data: 0 = rejected, 1 = chosen.
        index.insert(&REJECTED_KEY);
        index.insert(&CHOSEN_KEY);
        let mut ids = Vec::new();
        let mut spans = Vec::with_capacity(sequences.len());
        for seq in sequences {
            let positions = preference_positions(seq.prompt_tokens, seq.len, mode);
            let start = ids.len();
            let key: &[i64] = if seq.chosen { &CHOSEN_KEY } else { &REJECTED_KEY };
            for _ in positions.clone() {
                ids.push(index.intern(key));
            }
            if ids.len() > u32::MAX as usize {
                return Err(LabelError::TooManyPositions(ids.len() as u64));
            }
            spans.push(PrefSequence { chosen: seq.chosen, positions, global: start..ids.len() });
        }
        Ok(PreferenceLabels { mode, index, ids, sequences: spans })
    }

    pub fn mode(&self) -> PrefTokens {
        self.mode
    }
    /// Keys `[0]` (id 0, rejected) and `[1]` (id 1, chosen) with their sample counts.
    pub fn index(&self) -> &LabelIndex {
        &self.index
    }
    /// The label id of every sample, in global order.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
    pub fn sequences(&self) -> &[PrefSequence] {
        &self.sequences
    }
    pub fn sequence(&self, s: usize) -> &PrefSequence {
        &self.sequences[s]
    }
    /// Samples in all sequences.
    pub fn positions(&self) -> usize {
        self.ids.len()
    }
    /// Sequences that contribute no sample (e.g. the response was truncated away).
    pub fn empty_sequences(&self) -> usize {
        self.sequences.iter().filter(|s| s.positions.is_empty()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_per_mode() {
        assert_eq!(preference_positions(3, 8, PrefTokens::Response), 3..8);
        assert_eq!(preference_positions(3, 8, PrefTokens::All), 0..8);
        assert_eq!(preference_positions(3, 8, PrefTokens::Last), 7..8);
        // Truncation inside the prompt leaves no response.
        assert!(preference_positions(10, 8, PrefTokens::Response).is_empty());
        assert_eq!(preference_positions(10, 8, PrefTokens::Last), 7..8);
        assert!(preference_positions(0, 0, PrefTokens::Last).is_empty());
        assert_eq!(preference_positions(0, 4, PrefTokens::Response), 0..4);
    }

    #[test]
    fn labels_count_samples_per_side() {
        let seqs = [
            SequenceLengths { chosen: true, prompt_tokens: 2, len: 5 },
            SequenceLengths { chosen: false, prompt_tokens: 2, len: 4 },
            SequenceLengths { chosen: true, prompt_tokens: 6, len: 6 },
        ];
        let labels = PreferenceLabels::build(&seqs, PrefTokens::Response).unwrap();
        assert_eq!(labels.positions(), 3 + 2);
        assert_eq!(labels.ids(), [1, 1, 1, 0, 0]);
        assert_eq!(labels.index().key(1), CHOSEN_KEY);
        assert_eq!(labels.index().counts(), [2, 3]);
        assert_eq!(labels.sequence(1), &PrefSequence { chosen: false, positions: 2..4, global: 3..5 });
        assert_eq!(labels.empty_sequences(), 1);
        let last = PreferenceLabels::build(&seqs, PrefTokens::Last).unwrap();
        assert_eq!(last.ids(), [1, 0, 1]);
        let all = PreferenceLabels::build(&seqs, PrefTokens::All).unwrap();
        assert_eq!(all.positions(), 15);
        // A prompt longer than the truncated sequence is legal: no response, but `all`/`last` still sample.
        let cut = [SequenceLengths { chosen: false, prompt_tokens: 7, len: 6 }];
        assert_eq!(PreferenceLabels::build(&cut, PrefTokens::All).unwrap().positions(), 6);
        assert_eq!(PreferenceLabels::build(&cut, PrefTokens::Response).unwrap().empty_sequences(), 1);
    }
}
