//! Training batches: fixed-length windows cut from the tokenised documents laid end to end.
//!
//! Every document starts with its BOS token, so documents are concatenated into one stream and
//! the BOS marks each boundary (as GPT-style pre-training does). A window of `context + 1`
//! tokens gives `context` inputs and the `context` next tokens as targets.
//!
//! Window starts come from Philox4x64-10 (`infoplane_estimator::rng`) under key
//! `[seed, DOMAIN_BATCHES]`: row `r` of step `s` (1-based) starts at
//! `below((s − 1)·batch + r, stream_len − context)`, a pure function of the seed, the step and the
//! row, so a run is reproducible from any step and independent of thread count.

use crate::error::TrainError;
use infoplane_estimator::rng::Philox;

/// Key word of the Philox stream that draws window starts (`key = [seed, DOMAIN_BATCHES]`).
pub const DOMAIN_BATCHES: u64 = 0x7472_6169_6e5f_6261; // "train_ba"

/// The tokenised training text as one stream.
#[derive(Debug, Clone)]
pub struct TokenStream {
    pub tokens: Vec<u32>,
    /// Documents that went into it.
    pub documents: usize,
}

impl TokenStream {
    pub fn new(docs: Vec<Vec<u32>>) -> Self {
        let documents = docs.len();
        TokenStream { tokens: docs.concat(), documents }
    }
    pub fn len(&self) -> usize {
        self.tokens.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// One batch: `inputs` and `targets`, each `batch × context` row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
    pub rows: usize,
    pub context: usize,
}

/// Draws the windows of each step.
#[derive(Debug, Clone)]
pub struct WindowSampler {
    rng: Philox,
    batch: usize,
    context: usize,
}

impl WindowSampler {
    pub fn new(stream: &TokenStream, seed: u64, batch: usize, context: usize) -> Result<Self, TrainError> {
        if stream.len() < context + 1 {
            return Err(TrainError::Data(format!(
                "the training documents hold {} tokens, fewer than one window of --context {context} + 1 (use more documents or a shorter context)",
                stream.len()
            )));
        }
        Ok(WindowSampler { rng: Philox::new(seed, DOMAIN_BATCHES), batch, context })
    }

    /// Start offsets of the windows of `step` (1-based).
    pub fn starts(&self, stream: &TokenStream, step: u64) -> Vec<usize> {
        let bound = (stream.len() - self.context) as u64;
        (0..self.batch as u64).map(|r| self.rng.below((step - 1) * self.batch as u64 + r, bound) as usize).collect()
    }

    pub fn batch(&self, stream: &TokenStream, step: u64) -> Batch {
        let t = self.context;
        let mut inputs = Vec::with_capacity(self.batch * t);
        let mut targets = Vec::with_capacity(self.batch * t);
        for start in self.starts(stream, step) {
            inputs.extend_from_slice(&stream.tokens[start..start + t]);
            targets.extend_from_slice(&stream.tokens[start + 1..start + t + 1]);
        }
        Batch { inputs, targets, rows: self.batch, context: t }
    }
}

/// Evaluation windows: consecutive, non-overlapping windows from the start of the held-out stream,
/// at most `max_windows` of them, grouped in batches of at most `batch` rows.
pub fn eval_batches(stream: &TokenStream, context: usize, batch: usize, max_windows: usize) -> Vec<Batch> {
    let t = context;
    let windows = if stream.len() > t { ((stream.len() - 1) / t).min(max_windows) } else { 0 };
    let mut out = Vec::new();
    let mut w = 0;
    while w < windows {
        let rows = batch.min(windows - w);
        let mut inputs = Vec::with_capacity(rows * t);
        let mut targets = Vec::with_capacity(rows * t);
        for r in 0..rows {
            let start = (w + r) * t;
            inputs.extend_from_slice(&stream.tokens[start..start + t]);
            targets.extend_from_slice(&stream.tokens[start + 1..start + t + 1]);
        }
        out.push(Batch { inputs, targets, rows, context: t });
        w += rows;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_shifted_by_one_and_reproducible() {
        let stream = TokenStream::new(vec![(0..50).collect(), (100..170).collect()]);
        let a = WindowSampler::new(&stream, 7, 4, 8).unwrap();
        let b = a.batch(&stream, 3);
        assert_eq!(b, WindowSampler::new(&stream, 7, 4, 8).unwrap().batch(&stream, 3));
        assert_ne!(b, a.batch(&stream, 4));
        assert_ne!(b, WindowSampler::new(&stream, 8, 4, 8).unwrap().batch(&stream, 3));
        for row in 0..4 {
            let start = a.starts(&stream, 3)[row];
            assert!(start + 8 < stream.len());
            assert_eq!(&b.inputs[row * 8..row * 8 + 8], &stream.tokens[start..start + 8]);
            assert_eq!(&b.targets[row * 8..row * 8 + 8], &stream.tokens[start + 1..start + 9]);
        }
    }

    #[test]
    fn every_start_is_reachable() {
        let stream = TokenStream::new(vec![(0..20).collect()]);
        let s = WindowSampler::new(&stream, 1, 16, 4).unwrap();
        let mut seen = [false; 16];
        for step in 1..40 {
            for start in s.starts(&stream, step) {
                seen[start] = true;
            }
        }
        assert!(seen.iter().all(|&x| x), "{seen:?}");
    }

    #[test]
    fn too_little_text_is_refused() {
        let stream = TokenStream::new(vec![(0..5).collect()]);
        assert!(WindowSampler::new(&stream, 1, 2, 5).is_err());
        let s = WindowSampler::new(&stream, 1, 2, 4).unwrap();
        assert_eq!(s.batch(&stream, 1).targets, vec![1, 2, 3, 4, 1, 2, 3, 4]);
    }

    #[test]
    fn eval_windows_tile_the_stream() {
        let stream = TokenStream::new(vec![(0..33).collect()]);
        let batches = eval_batches(&stream, 8, 3, 100);
        assert_eq!(batches.iter().map(|b| b.rows).collect::<Vec<_>>(), vec![3, 1]);
        assert_eq!(batches[1].inputs, (24..32).collect::<Vec<u32>>());
        assert_eq!(batches[1].targets, (25..33).collect::<Vec<u32>>());
        assert_eq!(eval_batches(&stream, 8, 3, 2).iter().map(|b| b.rows).sum::<usize>(), 2);
    }
}
