//! Synthetic token streams for benchmarks at scale (no corpus needed).

use infoplane_estimator::rng::Philox;

/// `docs` documents of `len` tokens drawn independently from a Zipf(`exponent`) law over
/// `vocab` ranks, by inverse CDF on the portable RNG (the same corpus on every machine).
/// Independent draws repeat n-grams less than real text, so memory measured on them is an upper bound.
pub fn zipf_documents(docs: usize, len: usize, vocab: usize, exponent: f64, rng: &Philox) -> Vec<Vec<u32>> {
    let mut cdf: Vec<f64> = (1..=vocab).map(|r| (r as f64).powf(-exponent)).collect();
    let total: f64 = cdf.iter().sum();
    let mut acc = 0.0;
    for c in cdf.iter_mut() {
        acc += *c / total;
        *c = acc;
    }
    (0..docs)
        .map(|d| (0..len).map(|i| cdf.partition_point(|&c| c < rng.uniform((d * len + i) as u64)).min(vocab - 1) as u32).collect())
        .collect()
}
