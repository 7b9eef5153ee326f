//! The pre-pass at the paper's scale: 10,000 documents × 512 tokens (≈ 5M valid positions),
//! orders 1–4, Katz back-off (16 label sets). Tokens are drawn independently from a Zipf(1.1)
//! law over a 49,152-token vocabulary (SmolLM2's size): real text repeats n-grams more, so this
//! over-states the distinct n-grams and is an upper bound on memory.
//!
//!     cargo run --release -p infoplane-labels --example prepass_scale [DOCS] [TOKENS]
//!
//! Prints wall time, the structures' own byte counts and the process's peak RSS.

use infoplane_estimator::rng::Philox;
use infoplane_labels::{CorpusLabels, LabelConfig, NgramCounts};
use std::time::Instant;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()).map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("DOCS TOKENS")).collect();
    let (docs_n, len) = (args.first().copied().unwrap_or(10_000), args.get(1).copied().unwrap_or(512));
    let vocab = 49_152usize;
    let docs = infoplane_labels::synthetic::zipf_documents(docs_n, len, vocab, 1.1, &Philox::new(1, 99));
    println!("corpus: {docs_n} docs x {len} tokens; peak RSS so far {:.0} MiB", peak_rss_mib());
    let config = LabelConfig::default();
    // The counts alone, for their size (CorpusLabels::build makes and frees its own).
    let t = Instant::now();
    let counts = NgramCounts::from_documents(config.orders, &docs).unwrap();
    println!("n-gram counts alone: {:.2} s, {:.0} MiB", t.elapsed().as_secs_f64(), counts.memory_bytes() as f64 / 1048576.0);
    drop(counts);
    let t = Instant::now();
    let labels = CorpusLabels::build(&config, &docs).unwrap();
    let total_time = t.elapsed();
    println!("distinct n-grams per order {:?}", labels.counted_ngrams());
    println!("labels: {} positions, {} sets, {:.2} s total pre-pass, {:.0} MiB held (ids + indexes)", labels.positions(), labels.label_sets().len(), total_time.as_secs_f64(), labels.memory_bytes() as f64 / 1048576.0);
    for (s, set) in labels.label_sets().iter().enumerate() {
        println!("  {:<14} {:>9} distinct  orders {:?}", set.name(), labels.index(s).len(), labels.order_histogram(s));
    }
    println!("peak RSS {:.0} MiB (tokens alone: {:.0} MiB)", peak_rss_mib(), (docs_n * len * 4) as f64 / 1048576.0);
}
