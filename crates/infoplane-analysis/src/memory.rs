//! What a run will need, known right after the tokens-only pre-pass (before any forward pass):
//! the label vectors per hidden state follow exactly from the pre-pass counts, so a run that
//! cannot fit stops at once instead of being killed hours later.

use infoplane_estimator::LabelIndex;

/// Bytes a run will hold at its peak, by part, and the disk its spill needs.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryEstimate {
    /// The model's weights and its activations for the longest sequence (from the caller).
    pub model: u64,
    /// Tokens, label ids, label indexes and the null permutation, held for the whole run.
    pub labels: u64,
    /// One hidden state's label sums (phase 2 holds one state at a time) and its working buffers.
    pub per_state: u64,
    /// Spilled soft assignments at their largest (one layer group of one pass).
    pub spill_disk: u64,
}

impl MemoryEstimate {
    pub fn peak(&self) -> u64 {
        self.model + self.labels + self.per_state
    }

    pub fn describe(&self) -> String {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        format!(
            "estimated peak memory {:.2} GiB (model {:.2}, labels {:.2}, one layer's label sums {:.2}); spill {:.2} GiB of disk",
            gib(self.peak()),
            gib(self.model),
            gib(self.labels),
            gib(self.per_state),
            gib(self.spill_disk)
        )
    }
}

/// Bytes one hidden state's accumulator holds for a set with complete counts: per side (real and
/// null) a slot per distinct label, and n f64 sums + a count + bookkeeping per label seen at least
/// max(2, min_count) times (the estimator's memory model, ARCHITECTURE.md); plus the set's index,
/// which the accumulator owns a copy of.
pub(crate) fn accumulator_bytes(index: &LabelIndex, min_count: u64, n_bins: usize, null: bool) -> u64 {
    let sides = if null { 2 } else { 1 };
    let repeated = index.counts().iter().filter(|&&c| c >= min_count.max(2)).count() as u64;
    let distinct = index.len() as u64;
    let per_side = distinct * 4 + repeated * (8 * n_bins as u64 + 8 + 4 + 8);
    let index_copy = (index.values().len() * 8 + index.offsets().len() * 8 + index.counts().len() * 8 + index.len() * 6) as u64;
    sides * per_side + index_copy
}

/// Phase 2's working buffers: a block of spilled rows and its null ids.
pub(crate) fn absorb_buffer_bytes(rows: u64, n_bins: usize, sets: usize) -> u64 {
    rows * (4 * n_bins as u64 + 8) + rows * 4 * sets as u64
}
