//! N-gram counts over the analysed corpus, for back-off.
//!
//! "Count in the analysed corpus" (METHOD.md §3) is read as: the number of occurrences of the
//! token n-gram anywhere in the analysed documents (every start position, the whole truncated
//! document, not only valid positions), whichever side it is later used on. Analysed documents
//! are those with at least one valid position; too-short documents are not analysed and not
//! counted. With this reading counts are nested: every occurrence of a k-gram contains one of its
//! (k−1)-gram prefix and one of its suffix, so count(suffix) ≥ count(k-gram) and the orders that
//! qualify for back-off at a position are always 1..m for some m.
//!
//! Memory: one open-addressing table per order k; per distinct k-gram 4k bytes of token ids, an
//! 8-byte count and a 4-byte slot plus a control byte in the hash table (load ≤ 7/8), i.e. about
//! 4k + 14 bytes. For 5M tokens of C4 with K = 4 that is at most Σ_k 5M·(4k + 14) ≈ 0.5 GB (every
//! n-gram distinct), in practice less. Keys are whole token tuples, never packed into one integer.

use crate::{valid_positions, LabelError, MAX_ORDERS};
use hashbrown::HashTable;
use rayon::prelude::*;
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};

fn hash_tokens(key: &[u32]) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// Counts of every n-gram of one order (keys of equal length, stored flat).
#[derive(Clone, Debug, Default)]
pub(crate) struct OrderTable {
    pub(crate) order: usize,
    table: HashTable<u32>,
    pub(crate) tokens: Vec<u32>,
    pub(crate) counts: Vec<u64>,
}

impl OrderTable {
    pub(crate) fn new(order: usize) -> Self {
        OrderTable { order, ..Default::default() }
    }

    pub(crate) fn key(&self, id: u32) -> &[u32] {
        let k = self.order;
        &self.tokens[id as usize * k..(id as usize + 1) * k]
    }

    /// Adds `count` occurrences of `key`; its id (first-seen order).
    pub(crate) fn add(&mut self, key: &[u32], count: u64) -> u32 {
        debug_assert_eq!(key.len(), self.order);
        let h = hash_tokens(key);
        let k = self.order;
        let tokens = &self.tokens;
        if let Some(&id) = self.table.find(h, |&id| &tokens[id as usize * k..(id as usize + 1) * k] == key) {
            self.counts[id as usize] += count;
            return id;
        }
        let id = self.counts.len() as u32;
        self.tokens.extend_from_slice(key);
        self.counts.push(count);
        let tokens = &self.tokens;
        self.table.insert_unique(h, id, |&i| hash_tokens(&tokens[i as usize * k..(i as usize + 1) * k]));
        id
    }


    fn get(&self, key: &[u32]) -> u64 {
        if key.len() != self.order {
            return 0;
        }
        let k = self.order;
        self.table
            .find(hash_tokens(key), |&id| &self.tokens[id as usize * k..(id as usize + 1) * k] == key)
            .map_or(0, |&id| self.counts[id as usize])
    }

    fn bytes(&self) -> usize {
        self.tokens.capacity() * 4 + self.counts.capacity() * 8 + self.table.capacity() * 5
    }
}

/// Occurrence counts of every token n-gram of orders 1..=K in the analysed documents.
/// Built document by document ([`NgramCounts::add_document`]) or in one go
/// ([`NgramCounts::from_documents`], one thread per order); shards merge exactly
/// ([`NgramCounts::merge`]), and the counts never depend on the split.
#[derive(Clone, Debug)]
pub struct NgramCounts {
    orders: usize,
    tables: Vec<OrderTable>,
    documents: u64,
    tokens: u64,
}

impl NgramCounts {
    /// Empty counts for orders 1..=`orders`.
    pub fn new(orders: usize) -> Result<Self, LabelError> {
        if orders == 0 || orders > MAX_ORDERS {
            return Err(LabelError::Orders(orders));
        }
        Ok(NgramCounts { orders, tables: (1..=orders).map(OrderTable::new).collect(), documents: 0, tokens: 0 })
    }

    /// Counts of all `docs` (the same as adding them one by one, in any order).
    pub fn from_documents<D: AsRef<[u32]> + Sync>(orders: usize, docs: &[D]) -> Result<Self, LabelError> {
        let mut counts = NgramCounts::new(orders)?;
        let analysed = |d: &&D| !valid_positions(d.as_ref().len(), orders).is_empty();
        counts.tables.par_iter_mut().for_each(|table| {
            let k = table.order;
            for doc in docs.iter().filter(analysed) {
                for w in doc.as_ref().windows(k) {
                    table.add(w, 1);
                }
            }
        });
        for doc in docs.iter().filter(analysed) {
            counts.documents += 1;
            counts.tokens += doc.as_ref().len() as u64;
        }
        Ok(counts)
    }

    /// Counts every n-gram of `tokens` if the document is analysed (has a valid position at
    /// K = `orders`); returns whether it was.
    pub fn add_document(&mut self, tokens: &[u32]) -> bool {
        if valid_positions(tokens.len(), self.orders).is_empty() {
            return false;
        }
        for table in &mut self.tables {
            for w in tokens.windows(table.order) {
                table.add(w, 1);
            }
        }
        self.documents += 1;
        self.tokens += tokens.len() as u64;
        true
    }

    /// Adds `other`'s counts (a shard of other documents) to these.
    pub fn merge(&mut self, other: &NgramCounts) -> Result<(), LabelError> {
        if other.orders != self.orders {
            return Err(LabelError::CountOrders { counts: other.orders, needed: self.orders });
        }
        for (mine, theirs) in self.tables.iter_mut().zip(&other.tables) {
            for id in 0..theirs.counts.len() as u32 {
                mine.add(theirs.key(id), theirs.counts[id as usize]);
            }
        }
        self.documents += other.documents;
        self.tokens += other.tokens;
        Ok(())
    }

    /// The largest order counted.
    pub fn orders(&self) -> usize {
        self.orders
    }
    /// How many occurrences of `ngram` the analysed documents hold (0 for an order not counted).
    pub fn count(&self, ngram: &[u32]) -> u64 {
        match ngram.len() {
            0 => 0,
            k if k > self.orders => 0,
            k => self.tables[k - 1].get(ngram),
        }
    }
    /// Distinct n-grams of `order` (0 for an order not counted).
    pub fn distinct(&self, order: usize) -> usize {
        if order == 0 || order > self.orders {
            return 0;
        }
        self.tables[order - 1].counts.len()
    }
    /// Documents counted (analysed documents).
    pub fn documents(&self) -> u64 {
        self.documents
    }
    /// Tokens in the documents counted.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }
    /// Approximate heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.tables.iter().map(OrderTable::bytes).sum()
    }

    /// The counts as plain data, for a store to write: per order k (entry k − 1) the n-grams
    /// flat (k tokens each, in first-seen order) and their counts.
    pub fn to_parts(&self) -> NgramParts {
        NgramParts {
            orders: self.orders,
            documents: self.documents,
            tokens: self.tokens,
            tables: self.tables.iter().map(|t| (t.tokens.clone(), t.counts.clone())).collect(),
        }
    }

    /// Rebuilds counts from [`NgramCounts::to_parts`], checking every length; the same n-gram
    /// twice in one order, or a zero count, is refused.
    pub fn from_parts(parts: NgramParts) -> Result<Self, LabelError> {
        let mut counts = NgramCounts::new(parts.orders)?;
        if parts.tables.len() != parts.orders {
            return Err(LabelError::Length { what: "n-gram count tables".into(), expected: parts.orders, got: parts.tables.len() });
        }
        for (table, (tokens, values)) in counts.tables.iter_mut().zip(parts.tables) {
            let k = table.order;
            if tokens.len() != values.len() * k {
                return Err(LabelError::Length { what: format!("tokens of the {k}-gram counts"), expected: values.len() * k, got: tokens.len() });
            }
            for (key, &c) in tokens.chunks_exact(k).zip(&values) {
                if c == 0 || table.get(key) != 0 {
                    return Err(LabelError::Length { what: format!("{k}-gram {key:?} (zero or repeated)"), expected: 1, got: 0 });
                }
                table.add(key, c);
            }
        }
        counts.documents = parts.documents;
        counts.tokens = parts.tokens;
        Ok(counts)
    }
}

/// Plain-data form of [`NgramCounts`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NgramParts {
    pub orders: usize,
    pub documents: u64,
    pub tokens: u64,
    /// Per order k: (flat k-token keys, counts).
    pub tables: Vec<(Vec<u32>, Vec<u64>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_and_refuse_inconsistent_data() {
        let docs: Vec<Vec<u32>> = vec![vec![1, 2, 1, 2, 1, 2, 5], vec![2, 1, 2, 3, 3, 3, 3]];
        let counts = NgramCounts::from_documents(3, &docs).unwrap();
        let back = NgramCounts::from_parts(counts.to_parts()).unwrap();
        assert_eq!(back.to_parts(), counts.to_parts());
        assert_eq!(back.count(&[3, 3, 3]), 2);
        let mut bad = counts.to_parts();
        bad.tables[1].0.pop();
        assert!(NgramCounts::from_parts(bad).is_err());
        let mut repeated = counts.to_parts();
        let first = repeated.tables[0].0[0];
        repeated.tables[0].0.push(first);
        repeated.tables[0].1.push(1);
        assert!(NgramCounts::from_parts(repeated).is_err());
    }

    #[test]
    fn counts_every_occurrence_and_merges_like_one_pass() {
        let a: Vec<u32> = vec![1, 2, 1, 2, 1, 2];
        let b: Vec<u32> = vec![2, 1, 2, 3, 3, 3, 3];
        let short: Vec<u32> = vec![1, 2, 1];
        let all = NgramCounts::from_documents(2, &[a.clone(), short.clone(), b.clone()]).unwrap();
        assert_eq!(all.documents(), 2, "the 3-token document has no valid position at K = 2");
        assert_eq!(all.count(&[1]), 3 + 1);
        assert_eq!(all.count(&[1, 2]), 3 + 1);
        assert_eq!(all.count(&[2, 1]), 2 + 1);
        assert_eq!(all.count(&[3, 3]), 3);
        assert_eq!(all.count(&[3, 3, 3]), 0, "order 3 is not counted");
        assert_eq!(all.count(&[]), 0);
        assert_eq!(all.distinct(1), 3);
        let mut x = NgramCounts::new(2).unwrap();
        assert!(x.add_document(&b));
        assert!(!x.add_document(&short));
        let mut y = NgramCounts::new(2).unwrap();
        y.add_document(&a);
        y.merge(&x).unwrap();
        for key in [&[1u32][..], &[2], &[3], &[1, 2], &[2, 1], &[2, 3], &[3, 3], &[9]] {
            assert_eq!(y.count(key), all.count(key), "{key:?}");
        }
        assert_eq!(y.tokens(), all.tokens());
        assert!(y.merge(&NgramCounts::new(3).unwrap()).is_err());
        assert!(NgramCounts::new(0).is_err());
    }
}
