//! `infoplane demo --synthetic`: the estimator alone on an embedded synthetic corpus with known
//! structure. Tokens follow a Zipf law; each position's vector is `signal · e(token) + noise`, so
//! the information the vectors carry about the token grows with the signal, while a label drawn
//! independently of the vectors carries none. The table shows H, I, the shuffled null and I − I_null.

use anyhow::{Context, Result};
use infoplane_estimator::{rng::{permutation, Philox}, Accumulator, Calibration, LabelBatch, LabelIndex, LabelSetSpec, ReferencePoints, Rows, Settings, SoftAssigner, Weighting};
use serde_json::json;
use std::path::PathBuf;

pub struct SyntheticArgs {
    pub output: PathBuf,
    pub positions: usize,
}

pub fn synthetic(args: SyntheticArgs) -> Result<()> {
    std::fs::create_dir_all(&args.output).with_context(|| format!("{}: cannot create the demo directory", args.output.display()))?;
    let (rows, d, vocab) = (args.positions.max(100), 64usize, 2000u64);
    let rng = Philox::new(2026, 42);
    // Zipf(1.1)-like tokens by inverse-CDF on a precomputed table.
    let weights: Vec<f64> = (1..=vocab).map(|r| (r as f64).powf(-1.1)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }
    let tokens: Vec<i64> = (0..rows as u64 + 1).map(|i| cdf.partition_point(|&c| c < rng.uniform(i)).min(vocab as usize - 1) as i64).collect();
    let random: Vec<i64> = (0..rows as u64).map(|i| rng.below(i + (1 << 40), 50) as i64).collect();
    let w = ReferencePoints::from_seed(0, 100, d)?;
    let calibration = Calibration::FindEps;
    let assigner = SoftAssigner::new(&w, calibration.epsilon(100, d)?)?;
    let perm = permutation(rows, 0);

    println!("infoplane demo: {rows} synthetic positions, d = {d}, n = 100 reference points, ε = {:.6}", assigner.epsilon());
    println!("vectors = signal · e(token) + N(0, I); 'random' labels are independent of the vectors.\n");
    println!("{:>6}  {:>6}  {:<7} {:>8} {:>8} {:>8}", "signal", "H(Z)", "labels", "I", "I_null", "I−I_null");
    let mut results = Vec::new();
    for signal in [0.0, 0.5, 1.0, 2.0, 4.0] {
        let mut z = Vec::with_capacity(rows * d);
        for (i, &t) in tokens[..rows].iter().enumerate() {
            let direction = Philox::new(t as u64, 7);
            for c in 0..d {
                let noise = rng.normal(((i * d + c) as u64) + (1 << 44));
                z.push((signal * direction.normal(c as u64) + noise) as f32);
            }
        }
        let sets: [(&str, Vec<Vec<i64>>); 3] = [
            ("token", tokens[..rows].iter().map(|&t| vec![t]).collect()),
            ("bigram", (0..rows).map(|i| vec![tokens[i], tokens[i + 1]]).collect()),
            ("random", random.iter().map(|&r| vec![r]).collect()),
        ];
        let mut acc = Accumulator::new(Settings::new(&assigner, &calibration));
        let mut ids = Vec::new();
        for (name, keys) in &sets {
            let mut index = LabelIndex::new();
            let real: Vec<u32> = keys.iter().map(|k| index.intern(k)).collect();
            let null: Vec<u32> = perm.iter().map(|&j| real[j as usize]).collect();
            acc.add_label_set(LabelSetSpec { name: name.to_string(), weighting: Weighting::Frequency, min_count: 1, null: true, per_label: false }, index, true)?;
            ids.push((real, null));
        }
        let batches: Vec<LabelBatch<'_>> = ids.iter().map(|(r, n)| LabelBatch { ids: r, null_ids: Some(n) }).collect();
        acc.update(&assigner, Rows::F32(&z), &batches)?;
        let e = acc.estimate()?;
        for set in &e.label_sets {
            let null = set.null_mutual_information.unwrap_or(f64::NAN);
            println!("{signal:>6.1}  {:>6.3}  {:<7} {:>8.4} {:>8.4} {:>8.4}", e.entropy, set.name, set.mutual_information, null, set.mutual_information - null);
        }
        results.push(json!({"signal": signal, "estimate": e}));
    }
    let path = args.output.join("results.json");
    infoplane_store::write_atomic(&path, (serde_json::to_string_pretty(&results)? + "\n").as_bytes())?;
    println!("\nRaw I grows with label rarity even at signal 0 (bigrams are rarer than tokens); I − I_null does not.");
    println!("wrote {}", path.display());
    Ok(())
}
