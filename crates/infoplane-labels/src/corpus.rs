//! The tokens-only pre-pass over a corpus: every label set's [`LabelIndex`] with complete counts,
//! and the dense label id of every valid position under every set.
//!
//! Positions are numbered globally: document 0's valid positions first, in token order, then
//! document 1's, and so on (too-short documents contribute none). Every id vector is indexed by
//! this global position; [`DocPositions::global`] says which slice belongs to a document.
//!
//! Memory model (P valid positions, S label sets, K orders; paper: P ≈ 5M, S = 16, K = 4):
//! - ids: 4 bytes per position per set, P·S·4 B (320 MB for the paper), kept;
//! - label indexes: per distinct key of a set about 8k + 22 bytes (key as i64s, offset, count,
//!   hash slot), kept; fixed sets of high order approach one key per position (≲ 5M·(8k + 22)
//!   for in_k and out_k each), back-off sets have far fewer (rare n-grams back off);
//! - during the pre-pass only: [`NgramCounts`] (≈ 4k + 14 B per distinct n-gram, see there)
//!   and one back-off order per position and level (P·K bytes), both freed before returning.
//!
//! Label sets are built in parallel, one thread per set; each set is built sequentially in
//! global position order, so ids are assigned in first-seen order and never depend on threads.

use crate::{valid_positions, Backoff, LabelConfig, LabelError, LabelKind, LabelSetId, NgramCounts, Side};
use infoplane_estimator::LabelIndex;
use rayon::prelude::*;
use std::ops::Range;

/// Where one document's rows are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocPositions {
    /// Token positions i of the document whose hidden states are analysed (empty: too short).
    pub valid: Range<usize>,
    /// The same positions' global numbers (indexes into [`CorpusLabels::ids`]).
    pub global: Range<usize>,
}

/// The pre-pass result for a whole corpus.
#[derive(Clone, Debug)]
pub struct CorpusLabels {
    config: LabelConfig,
    sets: Vec<LabelSetId>,
    indexes: Vec<LabelIndex>,
    ids: Vec<Vec<u32>>,
    docs: Vec<DocPositions>,
    too_short: usize,
    counted_ngrams: Vec<usize>,
}

impl CorpusLabels {
    /// The whole pre-pass over `docs` (each a document's token ids, after truncation).
    pub fn build<D: AsRef<[u32]> + Sync>(config: &LabelConfig, docs: &[D]) -> Result<Self, LabelError> {
        config.validate()?;
        // Fixed orders alone need no counts; build them empty rather than count for nothing.
        let counts = match config.backoff {
            Backoff::Katz => NgramCounts::from_documents(config.orders, docs)?,
            Backoff::None => NgramCounts::new(config.orders)?,
        };
        Self::build_with_counts(config, &counts, docs)
    }

    /// The pre-pass with n-gram counts made elsewhere (e.g. merged from shards). `counts` must be
    /// the counts of exactly these documents for the back-off labels to follow METHOD.md; it is
    /// not consulted with `Backoff::None`.
    pub fn build_with_counts<D: AsRef<[u32]> + Sync>(config: &LabelConfig, counts: &NgramCounts, docs: &[D]) -> Result<Self, LabelError> {
        config.validate()?;
        let k_max = config.orders;
        if config.backoff == Backoff::Katz && counts.orders() < k_max {
            return Err(LabelError::CountOrders { counts: counts.orders(), needed: k_max });
        }
        let mut spans = Vec::with_capacity(docs.len());
        let (mut total, mut too_short) = (0usize, 0usize);
        for doc in docs {
            let valid = valid_positions(doc.as_ref().len(), k_max);
            if valid.is_empty() {
                too_short += 1;
            }
            spans.push(DocPositions { global: total..total + valid.len(), valid: valid.clone() });
            total += valid.len();
        }
        if total > u32::MAX as usize {
            return Err(LabelError::TooManyPositions(total as u64));
        }
        let backoff_orders = (config.backoff == Backoff::Katz).then(|| backoff_orders(docs, &spans, counts, config.backoff_min_count, k_max));
        let sets = config.label_sets();
        let built: Vec<(LabelIndex, Vec<u32>)> = sets
            .par_iter()
            .map(|set| {
                let mut index = LabelIndex::new();
                let mut ids = Vec::with_capacity(total);
                let mut key: Vec<i64> = Vec::with_capacity(k_max);
                for (doc, span) in docs.iter().zip(&spans) {
                    let t = doc.as_ref();
                    for (g, i) in span.global.clone().zip(span.valid.clone()) {
                        let order = match set.kind {
                            LabelKind::Fixed => set.order,
                            LabelKind::Backoff => backoff_orders.as_ref().expect("built with Katz")[g * k_max + set.order - 1] as usize,
                        };
                        let tokens = match set.side {
                            Side::Input => &t[i + 1 - order..=i],
                            Side::Output => &t[i + 1..=i + order],
                        };
                        key.clear();
                        key.extend(tokens.iter().map(|&x| x as i64));
                        ids.push(index.intern(&key));
                    }
                }
                (index, ids)
            })
            .collect();
        let (indexes, ids) = built.into_iter().unzip();
        let counted_ngrams = (1..=k_max).map(|k| counts.distinct(k)).collect();
        Ok(CorpusLabels { config: config.clone(), sets, indexes, ids, docs: spans, too_short, counted_ngrams })
    }

    pub fn config(&self) -> &LabelConfig {
        &self.config
    }
    /// The label sets, in the documented order; set `s` below is an index into this.
    pub fn label_sets(&self) -> &[LabelSetId] {
        &self.sets
    }
    /// The names of the label sets (`in_1`, …), in order.
    pub fn names(&self) -> Vec<String> {
        self.sets.iter().map(LabelSetId::name).collect()
    }
    /// The index of the set called `name`, if built.
    pub fn set_index(&self, name: &str) -> Option<usize> {
        self.sets.iter().position(|s| s.name() == name)
    }
    #[allow(clippy::should_implement_trait)]
    /// Set `s`'s keys and their complete counts over all valid positions (for
    /// `Accumulator::add_label_set(spec, index.clone(), true)`).
    pub fn index(&self, set: usize) -> &LabelIndex {
        &self.indexes[set]
    }
    pub fn indexes(&self) -> &[LabelIndex] {
        &self.indexes
    }
    /// Set `s`'s label id at every global position.
    pub fn ids(&self, set: usize) -> &[u32] {
        &self.ids[set]
    }
    /// Set `s`'s label ids at document `doc`'s valid positions, in token order.
    pub fn doc_ids(&self, set: usize, doc: usize) -> &[u32] {
        &self.ids[set][self.docs[doc].global.clone()]
    }
    /// Where document `doc` (numbered as given to the build) has its rows.
    pub fn document(&self, doc: usize) -> &DocPositions {
        &self.docs[doc]
    }
    /// Documents given to the build, too-short ones included.
    pub fn documents(&self) -> usize {
        self.docs.len()
    }
    /// Documents with no valid position (fewer than 2K tokens).
    pub fn too_short(&self) -> usize {
        self.too_short
    }
    /// P: valid positions in the whole corpus.
    pub fn positions(&self) -> usize {
        self.docs.last().map_or(0, |d| d.global.end)
    }
    /// Distinct n-grams of each order 1..=K counted for back-off (zeros with `Backoff::None`).
    pub fn counted_ngrams(&self) -> &[usize] {
        &self.counted_ngrams
    }
    /// For set `s`, how many positions carry a key of each order 1..=K (entry k − 1): for a fixed
    /// set all at its order, for a back-off level the orders it backed off to.
    pub fn order_histogram(&self, set: usize) -> Vec<u64> {
        let index = &self.indexes[set];
        let mut hist = vec![0u64; self.config.orders];
        for id in 0..index.len() as u32 {
            hist[index.key(id).len() - 1] += index.count(id);
        }
        hist
    }
    /// Approximate heap bytes held (ids and indexes).
    pub fn memory_bytes(&self) -> usize {
        let ids: usize = self.ids.iter().map(|v| v.capacity() * 4).sum();
        let indexes: usize = self.indexes.iter().map(|ix| ix.values().len() * 8 + ix.offsets().len() * 8 + ix.counts().len() * 8 + ix.len() * 6).sum();
        ids + indexes
    }
}

/// For each global position and level L = 1..=K, the synchronised back-off order
/// k_i(L) = min(longest qualifying input order ≤ L, longest qualifying output order ≤ L),
/// where order k qualifies when its n-gram occurs ≥ τ times; order 1 always qualifies.
/// Flat, K entries per position.
fn backoff_orders<D: AsRef<[u32]> + Sync>(docs: &[D], spans: &[DocPositions], counts: &NgramCounts, min_count: u64, k_max: usize) -> Vec<u8> {
    let per_doc: Vec<Vec<u8>> = docs
        .par_iter()
        .zip(spans)
        .map(|(doc, span)| {
            let t = doc.as_ref();
            let mut out = Vec::with_capacity(span.valid.len() * k_max);
            for i in span.valid.clone() {
                // Bit k − 1 set when order k qualifies on that side.
                let (mut q_in, mut q_out) = (1u32, 1u32);
                for k in 2..=k_max {
                    if counts.count(&t[i + 1 - k..=i]) >= min_count {
                        q_in |= 1 << (k - 1);
                    }
                    if counts.count(&t[i + 1..=i + k]) >= min_count {
                        q_out |= 1 << (k - 1);
                    }
                }
                for level in 1..=k_max {
                    let mask = (1u32 << level) - 1;
                    let longest = |q: u32| 32 - (q & mask).leading_zeros();
                    out.push(longest(q_in).min(longest(q_out)) as u8);
                }
            }
            out
        })
        .collect();
    per_doc.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_keys_and_backoff_on_a_small_corpus() {
        // K = 2, τ = 2. Doc 0: 1 2 3 1 2 3 (valid i = 1..4); doc 1 too short; doc 2: 1 2 9 9 (i = 1..2).
        let docs: Vec<Vec<u32>> = vec![vec![1, 2, 3, 1, 2, 3], vec![5, 6, 7], vec![1, 2, 9, 9]];
        let config = LabelConfig { orders: 2, backoff: Backoff::Katz, backoff_min_count: 2 };
        let labels = CorpusLabels::build(&config, &docs).unwrap();
        assert_eq!(labels.names(), ["in_1", "in_2", "out_1", "out_2", "in_backoff_1", "in_backoff_2", "out_backoff_1", "out_backoff_2"]);
        assert_eq!(labels.too_short(), 1);
        assert_eq!(labels.positions(), 3 + 1, "the short document adds none");
        assert_eq!(labels.document(0), &DocPositions { valid: 1..4, global: 0..3 });
        assert_eq!(labels.document(1).global, 3..3);
        assert_eq!(labels.document(2), &DocPositions { valid: 1..2, global: 3..4 });
        let keys = |set: &str| -> Vec<Vec<i64>> {
            let s = labels.set_index(set).unwrap();
            labels.ids(s).iter().map(|&id| labels.index(s).key(id).to_vec()).collect()
        };
        assert_eq!(keys("in_2"), [vec![1, 2], vec![2, 3], vec![3, 1], vec![1, 2]]);
        assert_eq!(keys("out_2"), [vec![3, 1], vec![1, 2], vec![2, 3], vec![9, 9]]);
        // Counts (analysed docs 0 and 2): 12 ×3, 23 ×2, 31 ×1, 29 ×1, 99 ×1.
        // i=1: in 12 (3) ok, out 31 (1) no → order 1. i=2: in 23 ok, out 12 ok → 2.
        // i=3: in 31 no → 1. doc 2 i=1: in 12 ok, out 99 (1) no → 1.
        assert_eq!(keys("in_backoff_2"), [vec![2], vec![2, 3], vec![1], vec![2]]);
        assert_eq!(keys("out_backoff_2"), [vec![3], vec![1, 2], vec![2], vec![9]]);
        assert_eq!(keys("in_backoff_1"), keys("in_1"));
        assert_eq!(labels.ids(labels.set_index("out_backoff_1").unwrap()), labels.ids(labels.set_index("out_1").unwrap()));
        assert_eq!(labels.order_histogram(labels.set_index("in_backoff_2").unwrap()), [3, 1]);
        assert_eq!(labels.doc_ids(1, 2).len(), 1);
        assert!(labels.doc_ids(0, 1).is_empty());
    }

    #[test]
    fn no_backoff_builds_fixed_sets_only_and_refuses_bad_orders() {
        let docs = vec![vec![1u32, 2, 3, 4]];
        let labels = CorpusLabels::build(&LabelConfig { orders: 1, backoff: Backoff::None, backoff_min_count: 5 }, &docs).unwrap();
        assert_eq!(labels.names(), ["in_1", "out_1"]);
        assert_eq!(labels.positions(), 3);
        assert!(CorpusLabels::build(&LabelConfig { orders: 0, ..Default::default() }, &docs).is_err());
        let counts = NgramCounts::new(1).unwrap();
        assert!(matches!(CorpusLabels::build_with_counts(&LabelConfig::default(), &counts, &docs), Err(LabelError::CountOrders { .. })));
    }
}
