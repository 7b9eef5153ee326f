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
//! - during the pre-pass only: every n-gram of the documents interned per order (≈ 4k + 14 B
//!   per distinct k-gram, as in [`NgramCounts`]; freed once back-off orders are known), the
//!   n-gram id at every token for every order (4·K bytes per token), one back-off order per
//!   position and level (P·K bytes), and per label set being built a map from n-gram id to
//!   label id (4 B per distinct n-gram of the orders it uses).
//!
//! Measured (`examples/prepass_scale.rs`: 10,000 × 512 Zipf(1.1) tokens over 49,152 ids,
//! K = 4, 16 sets, 2 cores): 5.05M positions, 4.8M distinct quadgrams; ids 308 MiB + indexes
//! ≈ 0.95 GiB held, peak RSS 1.57 GB, 9 s. Independent Zipf tokens have more distinct n-grams
//! than text, so C4 needs less.
//!
//! Time: one hash per token and order (the n-gram tables), then array reads only; each label
//! index hashes each of its distinct keys once ([`LabelIndex::from_parts`]). Label sets are
//! built in parallel, one task per set; each set is built sequentially in global position
//! order, so ids are assigned in first-seen order and never depend on threads.

use crate::ngrams::OrderTable;
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
    /// The whole pre-pass over `docs` (each a document's token ids, after truncation); back-off
    /// counts are those of these documents.
    pub fn build<D: AsRef<[u32]> + Sync>(config: &LabelConfig, docs: &[D]) -> Result<Self, LabelError> {
        Self::build_inner(config, None, docs)
    }

    /// The pre-pass with back-off counts made elsewhere (e.g. merged from shards, or over a whole
    /// corpus of which `docs` is a part). An n-gram absent from `counts` counts 0. Not consulted
    /// with `Backoff::None`.
    pub fn build_with_counts<D: AsRef<[u32]> + Sync>(config: &LabelConfig, counts: &NgramCounts, docs: &[D]) -> Result<Self, LabelError> {
        if config.backoff == Backoff::Katz && counts.orders() < config.orders {
            return Err(LabelError::CountOrders { counts: counts.orders(), needed: config.orders });
        }
        Self::build_inner(config, Some(counts), docs)
    }

    fn build_inner<D: AsRef<[u32]> + Sync>(config: &LabelConfig, counts: Option<&NgramCounts>, docs: &[D]) -> Result<Self, LabelError> {
        config.validate()?;
        let k_max = config.orders;
        let layout = Layout::new(docs, k_max)?;
        let mut grams = LocalGrams::new(docs, &layout, k_max);
        let counted_ngrams: Vec<usize> = match counts {
            Some(c) => (1..=k_max).map(|k| c.distinct(k)).collect(),
            None => grams.tables.iter().map(|t| t.counts.len()).collect(),
        };
        let backoff_orders = (config.backoff == Backoff::Katz).then(|| {
            // Whether each local n-gram reaches τ, then the orders per position from array reads.
            let qualifies: Vec<Vec<bool>> = grams
                .tables
                .par_iter()
                .map(|t| match counts {
                    None => t.counts.iter().map(|&c| c >= config.backoff_min_count).collect(),
                    Some(c) => (0..t.counts.len() as u32).map(|id| c.count(t.key(id)) >= config.backoff_min_count).collect(),
                })
                .collect();
            backoff_orders(&layout, &grams, &qualifies, k_max)
        });
        // Keys are read from the documents from here on: the tables can go.
        let distinct: Vec<usize> = grams.tables.iter().map(|t| t.counts.len()).collect();
        grams.tables = Vec::new();
        let sets = config.label_sets();
        let built: Vec<Result<(LabelIndex, Vec<u32>), LabelError>> = sets
            .par_iter()
            .map(|set| {
                // Dense ids in first-seen order through a per-order map from local n-gram ids: no
                // hashing per position; the index hashes each distinct key once.
                let mut remap: Vec<Vec<u32>> = vec![Vec::new(); k_max];
                let (mut values, mut offsets, mut label_counts) = (Vec::new(), vec![0usize], Vec::<u64>::new());
                let mut ids = Vec::with_capacity(layout.total);
                for ((doc, span), &offset) in docs.iter().zip(&layout.spans).zip(&layout.token_offsets) {
                    let t = doc.as_ref();
                    for (g, i) in span.global.clone().zip(span.valid.clone()) {
                        let k = match set.kind {
                            LabelKind::Fixed => set.order,
                            LabelKind::Backoff => backoff_orders.as_ref().expect("back-off orders exist with Katz")[g * k_max + set.order - 1] as usize,
                        };
                        let start = match set.side {
                            Side::Input => i + 1 - k,
                            Side::Output => i + 1,
                        };
                        let local = grams.id(k, offset + start);
                        let map = &mut remap[k - 1];
                        if map.is_empty() {
                            map.resize(distinct[k - 1], u32::MAX);
                        }
                        let mut dense = map[local as usize];
                        if dense == u32::MAX {
                            dense = label_counts.len() as u32;
                            map[local as usize] = dense;
                            values.extend(t[start..start + k].iter().map(|&x| x as i64));
                            offsets.push(values.len());
                            label_counts.push(0);
                        }
                        label_counts[dense as usize] += 1;
                        ids.push(dense);
                    }
                }
                drop(remap);
                values.shrink_to_fit();
                let index = LabelIndex::from_parts(values, offsets, label_counts).map_err(|reason| LabelError::Index { set: set.name(), reason })?;
                Ok((index, ids))
            })
            .collect();
        drop(grams);
        let mut indexes = Vec::with_capacity(sets.len());
        let mut ids = Vec::with_capacity(sets.len());
        for b in built {
            let (index, set_ids) = b?;
            indexes.push(index);
            ids.push(set_ids);
        }
        let Layout { spans, too_short, .. } = layout;
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

/// Where every document's valid positions are, globally, and where its tokens start in the
/// flat per-token arrays of [`LocalGrams`].
struct Layout {
    spans: Vec<DocPositions>,
    token_offsets: Vec<usize>,
    total: usize,
    tokens: usize,
    too_short: usize,
}

impl Layout {
    fn new<D: AsRef<[u32]>>(docs: &[D], k_max: usize) -> Result<Self, LabelError> {
        let mut spans = Vec::with_capacity(docs.len());
        let mut token_offsets = Vec::with_capacity(docs.len());
        let (mut total, mut tokens, mut too_short) = (0usize, 0usize, 0usize);
        for doc in docs {
            let len = doc.as_ref().len();
            let valid = valid_positions(len, k_max);
            if valid.is_empty() {
                too_short += 1;
            }
            spans.push(DocPositions { global: total..total + valid.len(), valid: valid.clone() });
            token_offsets.push(tokens);
            total += valid.len();
            // Too-short documents are not analysed and take no room in the per-token arrays.
            if !valid.is_empty() {
                tokens += len;
            }
        }
        if total > u32::MAX as usize {
            return Err(LabelError::TooManyPositions(total as u64));
        }
        Ok(Layout { spans, token_offsets, total, tokens, too_short })
    }
}

/// Every n-gram of orders 1..=K of the analysed documents, interned per order (u32 tokens), and
/// the id of the n-gram starting at every token: one hash per token and order for the whole
/// pre-pass. Memory: the tables (≈ 4k + 14 B per distinct k-gram) and 4·K bytes per token.
struct LocalGrams {
    tables: Vec<OrderTable>,
    /// Per order k (entry k − 1), per flat token offset: the id of the k-gram starting there.
    starts: Vec<Vec<u32>>,
}

impl LocalGrams {
    fn new<D: AsRef<[u32]> + Sync>(docs: &[D], layout: &Layout, k_max: usize) -> Self {
        let (tables, starts) = (1..=k_max)
            .into_par_iter()
            .map(|k| {
                let mut table = OrderTable::new(k);
                let mut starts = vec![u32::MAX; layout.tokens];
                for ((doc, span), &offset) in docs.iter().zip(&layout.spans).zip(&layout.token_offsets) {
                    if span.valid.is_empty() {
                        continue;
                    }
                    let t = doc.as_ref();
                    for (s, w) in t.windows(k).enumerate() {
                        starts[offset + s] = table.add(w, 1);
                    }
                }
                (table, starts)
            })
            .unzip();
        LocalGrams { tables, starts }
    }

    #[inline]
    fn id(&self, k: usize, token: usize) -> u32 {
        self.starts[k - 1][token]
    }
}

/// For each global position and level L = 1..=K, the synchronised back-off order
/// k_i(L) = min(longest qualifying input order ≤ L, longest qualifying output order ≤ L),
/// where order k qualifies when its n-gram occurs ≥ τ times; order 1 always qualifies.
/// Flat, K entries per position.
fn backoff_orders(layout: &Layout, grams: &LocalGrams, qualifies: &[Vec<bool>], k_max: usize) -> Vec<u8> {
    let per_doc: Vec<Vec<u8>> = layout
        .spans
        .par_iter()
        .enumerate()
        .map(|(d, span)| {
            let offset = layout.token_offsets[d];
            let mut out = Vec::with_capacity(span.valid.len() * k_max);
            for i in span.valid.clone() {
                // Bit k − 1 set when order k qualifies on that side.
                let (mut q_in, mut q_out) = (1u32, 1u32);
                for k in 2..=k_max {
                    if qualifies[k - 1][grams.id(k, offset + i + 1 - k) as usize] {
                        q_in |= 1 << (k - 1);
                    }
                    if qualifies[k - 1][grams.id(k, offset + i + 1) as usize] {
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
