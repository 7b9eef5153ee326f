//! Label keys (tuples of integers, e.g. token-id n-grams) interned to dense ids, with counts.
//! Keys are stored whole and compared whole: no base-V packing, no silent collisions.

use hashbrown::HashTable;
use rustc_hash::FxHasher;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};

#[derive(Clone, Default)]
pub struct LabelIndex {
    table: HashTable<u32>,
    values: Vec<i64>,
    offsets: Vec<usize>,
    counts: Vec<u64>,
}

impl std::fmt::Debug for LabelIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LabelIndex({} labels)", self.len())
    }
}

fn hash_key(key: &[i64]) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

impl LabelIndex {
    pub fn new() -> Self {
        LabelIndex { offsets: vec![0], ..Default::default() }
    }

    /// Rebuilds an index from stored keys (flat values, `offsets` of length len + 1) and counts.
    pub fn from_parts(values: Vec<i64>, offsets: Vec<usize>, counts: Vec<u64>) -> Result<Self, String> {
        if offsets.first() != Some(&0)
            || offsets.windows(2).any(|w| w[0] > w[1])
            || offsets.last() != Some(&values.len())
            || counts.len() + 1 != offsets.len()
        {
            return Err("label keys: offsets and counts do not describe the key values".into());
        }
        let mut index = LabelIndex { table: HashTable::with_capacity(counts.len()), values, offsets, counts };
        for id in 0..index.counts.len() as u32 {
            let key = index.key(id);
            let h = hash_key(key);
            if index.table.find(h, |&other| index.key_of(other) == key).is_some() {
                return Err(format!("label keys: key {key:?} is stored twice"));
            }
            let (values, offsets) = (&index.values, &index.offsets);
            index.table.insert_unique(h, id, |&i| hash_key(&values[offsets[i as usize]..offsets[i as usize + 1]]));
        }
        Ok(index)
    }

    fn key_of(&self, id: u32) -> &[i64] {
        &self.values[self.offsets[id as usize]..self.offsets[id as usize + 1]]
    }

    /// The dense id of `key`, adding it if new; counts one occurrence.
    pub fn intern(&mut self, key: &[i64]) -> u32 {
        let id = self.insert(key);
        self.counts[id as usize] += 1;
        id
    }

    /// The dense id of `key`, adding it with count 0 if new.
    pub fn insert(&mut self, key: &[i64]) -> u32 {
        let h = hash_key(key);
        let (values, offsets) = (&self.values, &self.offsets);
        if let Some(&id) = self.table.find(h, |&id| &values[offsets[id as usize]..offsets[id as usize + 1]] == key) {
            return id;
        }
        let id = self.counts.len() as u32;
        self.values.extend_from_slice(key);
        self.offsets.push(self.values.len());
        self.counts.push(0);
        let (values, offsets) = (&self.values, &self.offsets);
        self.table.insert_unique(h, id, |&i| hash_key(&values[offsets[i as usize]..offsets[i as usize + 1]]));
        id
    }

    pub(crate) fn add_count(&mut self, id: u32, count: u64) {
        self.counts[id as usize] += count;
    }

    pub fn get(&self, key: &[i64]) -> Option<u32> {
        self.table.find(hash_key(key), |&id| self.key_of(id) == key).copied()
    }
    pub fn len(&self) -> usize {
        self.counts.len()
    }
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
    pub fn key(&self, id: u32) -> &[i64] {
        self.key_of(id)
    }
    pub fn count(&self, id: u32) -> u64 {
        self.counts[id as usize]
    }
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }
    pub fn values(&self) -> &[i64] {
        &self.values
    }
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// sha256 over every key and its count, in id order: two indexes agree on which labels are
    /// singletons exactly when their fingerprints agree.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for id in 0..self.len() as u32 {
            let key = self.key(id);
            h.update((key.len() as u64).to_le_bytes());
            for v in key {
                h.update(v.to_le_bytes());
            }
            h.update(self.counts[id as usize].to_le_bytes());
        }
        crate::reference::hex(&h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_any_length_are_distinct_and_counted() {
        let mut ix = LabelIndex::new();
        let a = ix.intern(&[1, 2]);
        let b = ix.intern(&[1, 2, 0]);
        let c = ix.intern(&[i64::MAX, -5]);
        assert_eq!(ix.intern(&[1, 2]), a);
        assert!(a != b && b != c);
        assert_eq!(ix.count(a), 2);
        assert_eq!(ix.key(c), &[i64::MAX, -5]);
        let back = LabelIndex::from_parts(ix.values().to_vec(), ix.offsets().to_vec(), ix.counts().to_vec()).unwrap();
        assert_eq!(back.get(&[1, 2, 0]), Some(b));
        assert_eq!(back.fingerprint(), ix.fingerprint());
        assert!(LabelIndex::from_parts(vec![1, 1], vec![0, 1, 2], vec![1, 1]).is_err());
    }
}
