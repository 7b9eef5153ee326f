//! The analysis at the paper's scale without a model: DOCS documents × TOKENS tokens of Zipf(1.1)
//! tokens over a 49,152-token vocabulary, STATES hidden states of width DIM (token embedding plus
//! noise, so labels carry information), orders 1–4 with Katz back-off and nulls (16 label sets),
//! n = 100. Runs the real two-phase pipeline (spill to WORK_DIR, then one state at a time) and
//! prints time per phase and the process's peak RSS.
//!
//!     cargo run --release -p infoplane-analysis --example scale -- [DOCS] [TOKENS] [STATES] [DIM] [WORK_DIR]
//!
//! Paper scale: 10000 512 32 64 (≈ 5M positions, 31 layers + final norm); the spill then needs
//! positions × states × (4n + 8) bytes of disk (≈ 65 GB): point WORK_DIR at a disk with room.

use infoplane_analysis::{analyze, Aggregate, AnalysisError, AnalysisInput, AnalysisSettings, Checkpointing, LayerSelection, Progress, ReferenceSpec, SequenceStates, StateSource};
use infoplane_estimator::{rng::Philox, Calibration, Weighting};
use infoplane_labels::LabelConfig;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Instant;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()).map_or(f64::NAN, |kb| kb / 1024.0)
}

struct Synthetic {
    states: usize,
    dim: usize,
    /// A fixed random vector per token (a hashed index into this table).
    table: Vec<f32>,
}

const TABLE_ROWS: usize = 4096;

impl StateSource for Synthetic {
    fn state_names(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.states - 1).map(|s| s.to_string()).collect();
        v.push("final_norm".into());
        v
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn forward(&self, tokens: &[u32], nll: bool) -> Result<SequenceStates, AnalysisError> {
        let d = self.dim;
        let mut x: u64 = tokens.iter().fold(0x9E37_79B9_7F4A_7C15, |h, &t| (h ^ t as u64).wrapping_mul(0x100_0000_01B3));
        let mut noise = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let states = (0..self.states)
            .map(|s| {
                let mut rows = Vec::with_capacity(tokens.len() * d);
                for (i, &t) in tokens.iter().enumerate() {
                    let row = (t as usize * 31 + s) % TABLE_ROWS;
                    let prev = if i > 0 { (tokens[i - 1] as usize * 17) % TABLE_ROWS } else { 0 };
                    for c in 0..d {
                        rows.push(self.table[row * d + c] + 0.5 * self.table[prev * d + c] + 0.8 * noise());
                    }
                }
                rows
            })
            .collect();
        Ok(SequenceStates { states, next_token_nll: nll.then(|| vec![1.0; tokens.len().saturating_sub(1)]) })
    }
}

struct Phases(Mutex<Option<(String, Instant)>>);

impl Progress for Phases {
    fn start(&self, phase: &str, _: u64, _: u64) {
        *self.0.lock().unwrap() = Some((phase.to_string(), Instant::now()));
    }
    fn advance(&self, _: u64, _: u64) {}
    fn finish(&self) {
        if let Some((phase, t)) = self.0.lock().unwrap().take() {
            println!("  {phase:<16} {:>8.1} s   peak RSS so far {:>7.0} MiB", t.elapsed().as_secs_f64(), peak_rss_mib());
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: usize| args.get(i).map_or(default, |a| a.parse().expect("DOCS TOKENS STATES DIM WORK_DIR"));
    let (docs_n, len, states, dim) = (num(0, 10_000), num(1, 512), num(2, 32), num(3, 64));
    let work = args.get(4).map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let vocab = 49_152usize;
    let docs = infoplane_labels::synthetic::zipf_documents(docs_n, len, vocab, 1.1, &Philox::new(1, 99));
    let table: Vec<f32> = (0..TABLE_ROWS * dim).map(|i| Philox::new(7, 7).normal(i as u64) as f32).collect();
    let source = Synthetic { states, dim, table };
    let run_dir = tempfile::Builder::new().prefix("infoplane-scale-").tempdir_in(&work).expect("a work directory");
    println!("{docs_n} docs × {len} tokens, {states} states of width {dim}, n = 100, 16 label sets with nulls; work in {}", run_dir.path().display());
    let settings = AnalysisSettings {
        labels: LabelConfig::default(),
        weighting: Weighting::Frequency,
        min_count: 1,
        n_bins: 100,
        reference: ReferenceSpec::Seed(0),
        calibration: Calibration::FindEps,
        null_seed: 0,
        aggregate: Aggregate::RatioOfMeans,
        layers: LayerSelection::All,
        checkpointing: Checkpointing::default(),
        keep_partials: std::env::var("KEEP_PARTIALS").is_ok_and(|v| v == "1"),
        layer_groups: std::env::var("LAYER_GROUPS").ok().and_then(|v| v.parse().ok()).unwrap_or(1),
        max_memory: None,
        estimate_time: true,
    };
    let t = Instant::now();
    let input = AnalysisInput { source: &source, documents: &docs, preference: None, identity: serde_json::json!({"synthetic": true}), run_dir: run_dir.path(), shard: None, ngram_counts: None, model_bytes: 0 };
    let out = analyze(input, settings, &Phases(Mutex::new(None)), &AtomicBool::new(false)).expect("the analysis runs");
    println!("positions {}, distinct labels {:?}", out.counts.positions, out.counts.distinct_labels);
    let e = &out.estimates[out.estimates.len() / 2];
    for s in &e.label_sets {
        println!("  {:<14} repeated {:>9}  singletons {:>9}  I {:.4}  I_null {:.4}", s.name, s.repeated_labels, s.singleton_labels, s.mutual_information, s.null_mutual_information.unwrap_or(f64::NAN));
    }
    println!("total {:.1} s, peak RSS {:.0} MiB", t.elapsed().as_secs_f64(), peak_rss_mib());
}
