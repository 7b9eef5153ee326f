//! Contexts and labels (METHOD.md §3–5): which positions of a tokenised document are analysed,
//! the n-gram keys each position gets on the input and output side, synchronised Katz back-off,
//! the shuffled-null permutation over all positions of a corpus, and preference labels.
//! No IO, no models: documents arrive as token-id slices (`&[u32]`).
//!
//! Typical use (the analysis stage):
//! 1. [`CorpusLabels::build`] runs the tokens-only pre-pass over every document: it counts the
//!    n-grams of orders 1..K ([`NgramCounts`], for back-off), then builds one
//!    [`infoplane_estimator::LabelIndex`] per label set with complete counts over all valid
//!    positions, and the dense id of every valid position under every set.
//! 2. For each document, [`CorpusLabels::document`] gives the token positions whose hidden states
//!    are rows, and [`CorpusLabels::doc_ids`] the ids for those rows (a `LabelBatch::ids`).
//! 3. [`NullPermutation`] gives the shuffled-null ids of the same rows (`LabelBatch::null_ids`).
//!
//! Label sets and their names, in this order ([`LabelConfig::label_sets`]):
//! `in_1..in_K`, `out_1..out_K`, then with `Backoff::Katz` `in_backoff_1..K`, `out_backoff_1..K`.

mod corpus;
mod ngrams;
mod null;
mod preference;
mod sets;
pub mod synthetic;

pub use corpus::{CorpusLabels, DocPositions};
pub use ngrams::{NgramCounts, NgramParts};
pub use null::NullPermutation;
pub use preference::{preference_positions, PrefSequence, PrefTokens, PreferenceLabels, SequenceLengths, CHOSEN_KEY, PREFERENCE_SET, REJECTED_KEY};
pub use sets::{LabelKind, LabelSetId, Side};

use serde::{Deserialize, Serialize};
use std::ops::Range;

/// The paper's orders: token, bigram, trigram, quadgram.
pub const DEFAULT_ORDERS: usize = 4;
/// Back-off orders are kept per position in a bit mask; 16 is far beyond any useful n-gram order.
pub const MAX_ORDERS: usize = 16;
/// τ of METHOD.md §3: an n-gram must occur this often in the analysed corpus to be backed off to.
pub const DEFAULT_BACKOFF_MIN_COUNT: u64 = 5;

/// Whether the back-off label sets are built (`--backoff`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backoff {
    /// Only the fixed-order label sets.
    None,
    /// Also the synchronised Katz back-off levels 1..K.
    #[default]
    Katz,
}

impl Backoff {
    pub fn name(&self) -> &'static str {
        match self {
            Backoff::None => "none",
            Backoff::Katz => "katz",
        }
    }
}

/// What the pre-pass labels: orders 1..=`orders` on both sides, and the back-off levels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelConfig {
    /// K: the largest n-gram order (`--orders`).
    pub orders: usize,
    pub backoff: Backoff,
    /// τ (`--backoff-min-count`): the count an n-gram needs in the analysed corpus to qualify.
    pub backoff_min_count: u64,
}

impl Default for LabelConfig {
    fn default() -> Self {
        LabelConfig { orders: DEFAULT_ORDERS, backoff: Backoff::Katz, backoff_min_count: DEFAULT_BACKOFF_MIN_COUNT }
    }
}

impl LabelConfig {
    pub fn validate(&self) -> Result<(), LabelError> {
        if self.orders == 0 || self.orders > MAX_ORDERS {
            return Err(LabelError::Orders(self.orders));
        }
        Ok(())
    }

    /// Every label set, in the fixed order the pre-pass builds them (see the crate docs).
    pub fn label_sets(&self) -> Vec<LabelSetId> {
        sets::label_sets(self.orders, self.backoff)
    }

    /// The valid positions of a document of `len` tokens under this config's K.
    pub fn valid_positions(&self, len: usize) -> Range<usize> {
        valid_positions(len, self.orders)
    }
}

/// The token positions i where every n-gram of order ≤ `orders` is defined on both sides:
/// i ∈ [K − 1, len − K). Empty (a "too short" document) when len < 2K.
///
/// At i the input n-gram of order k is `tokens[i+1-k..=i]` and the output n-gram
/// `tokens[i+1..=i+k]`; the last position len − 1 has no next token, hence the open end.
pub fn valid_positions(len: usize, orders: usize) -> Range<usize> {
    let start = orders.saturating_sub(1);
    let end = len.saturating_sub(orders);
    if end > start {
        start..end
    } else {
        0..0
    }
}

/// Everything the labelling stage refuses.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("n-gram orders must be between 1 and {MAX_ORDERS}, not {0}")]
    Orders(usize),
    #[error("n-gram counts are for orders up to {counts}, the labels need {needed}")]
    CountOrders { counts: usize, needed: usize },
    #[error("{0} valid positions: a corpus may have at most 4,294,967,295 (label ids and permutations are 32-bit)")]
    TooManyPositions(u64),
    #[error("label set {set}: {reason}")]
    Index { set: String, reason: String },
    #[error("{what}: {got} values for {expected} positions")]
    Length { what: String, expected: usize, got: usize },
}
