//! The shuffled-label null over a whole corpus.
//!
//! The null of METHOD.md §2 is a permutation of the label sequence over ALL valid positions of the
//! corpus, across documents: the null label of global position j is the real label of global
//! position perm[j], perm = `infoplane_estimator::rng::permutation(P, seed)` (Philox, domain
//! "null permutation"). One permutation serves every label set, as in `infoplane estimate`. The
//! null of a document's rows therefore draws labels from anywhere in the corpus, so it can only be
//! built once the pre-pass has labelled every position.
//!
//! Memory: 4 bytes per position (20 MB for the paper's 5M positions).

use crate::LabelError;
use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NullPermutation {
    seed: u64,
    perm: Vec<u32>,
}

impl NullPermutation {
    /// The permutation of `positions` global positions drawn from `seed`.
    pub fn new(positions: usize, seed: u64) -> Result<Self, LabelError> {
        if positions > u32::MAX as usize {
            return Err(LabelError::TooManyPositions(positions as u64));
        }
        Ok(NullPermutation { seed, perm: infoplane_estimator::rng::permutation(positions, seed) })
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// P, the number of positions permuted.
    pub fn len(&self) -> usize {
        self.perm.len()
    }
    pub fn is_empty(&self) -> bool {
        self.perm.is_empty()
    }
    /// The global position whose label position `j` takes in the null (perm[j]).
    pub fn source(&self, j: usize) -> usize {
        self.perm[j] as usize
    }
    pub fn as_slice(&self) -> &[u32] {
        &self.perm
    }

    /// The null ids of global positions `global` (e.g. one document's [`crate::DocPositions::global`]),
    /// given `ids`, a set's label ids at every global position: out[j − start] = ids[perm[j]].
    pub fn null_ids(&self, ids: &[u32], global: Range<usize>) -> Result<Vec<u32>, LabelError> {
        let mut out = Vec::with_capacity(global.len());
        self.null_ids_into(ids, global, &mut out)?;
        Ok(out)
    }

    /// [`NullPermutation::null_ids`] into a reused buffer (cleared first).
    pub fn null_ids_into(&self, ids: &[u32], global: Range<usize>, out: &mut Vec<u32>) -> Result<(), LabelError> {
        if ids.len() != self.perm.len() {
            return Err(LabelError::Length { what: "label ids for the null permutation".into(), expected: self.perm.len(), got: ids.len() });
        }
        if global.end > self.perm.len() || global.start > global.end {
            return Err(LabelError::Length { what: format!("null positions {}..{}", global.start, global.end), expected: self.perm.len(), got: global.end });
        }
        out.clear();
        out.extend(self.perm[global].iter().map(|&src| ids[src as usize]));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_is_a_permutation_of_the_labels_and_matches_the_estimator_rng() {
        let ids: Vec<u32> = (0..1000u32).map(|i| i % 7).collect();
        let null = NullPermutation::new(ids.len(), 3).unwrap();
        assert_eq!(null.as_slice(), infoplane_estimator::rng::permutation(1000, 3).as_slice());
        // Per document slices concatenate to the whole-corpus null.
        let whole = null.null_ids(&ids, 0..1000).unwrap();
        let mut pieces = null.null_ids(&ids, 0..400).unwrap();
        pieces.extend(null.null_ids(&ids, 400..1000).unwrap());
        assert_eq!(whole, pieces);
        let (mut a, mut b) = (ids.clone(), whole.clone());
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "same label multiset");
        assert_ne!(whole, ids, "shuffled");
        for j in [0, 17, 999] {
            assert_eq!(whole[j], ids[null.source(j)]);
        }
        assert!(null.null_ids(&ids[..10], 0..10).is_err());
        assert!(null.null_ids(&ids, 990..1001).is_err());
        assert_ne!(NullPermutation::new(1000, 4).unwrap(), null);
    }
}
