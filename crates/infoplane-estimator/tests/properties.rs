//! Invariants of the estimator, on data drawn from the crate's own portable RNG.

use infoplane_estimator::{
    rng::{permutation, Philox},
    Accumulator, Calibration, Estimate, LabelBatch, LabelIndex, LabelSetSpec, ReferencePoints, Rows, Settings, SoftAssigner,
    Weighting,
};
use proptest::prelude::*;

struct Data {
    d: usize,
    z: Vec<f32>,
    /// Two label sets: a 1-tuple with few values and a 2-tuple with many (mostly singletons).
    labels: Vec<Vec<Vec<i64>>>,
}

fn data(seed: u64, rows: usize, d: usize, classes: i64, signal: f64) -> Data {
    let rng = Philox::new(seed, 77);
    let tok: Vec<i64> = (0..rows).map(|i| rng.below(i as u64, classes as u64) as i64).collect();
    let mut z = Vec::with_capacity(rows * d);
    for (i, &t) in tok.iter().enumerate() {
        for c in 0..d {
            let mean = signal * Philox::new(1000 + t as u64, 5).normal(c as u64);
            z.push((mean + rng.normal((1 + i * d + c) as u64 + (1 << 40))) as f32);
        }
    }
    let pair: Vec<Vec<i64>> = (0..rows).map(|i| vec![tok[i], tok[(i + 1) % rows] + rng.below(i as u64 + (1 << 41), 7) as i64]).collect();
    Data { d, z, labels: vec![tok.iter().map(|&t| vec![t]).collect(), pair] }
}

struct Run {
    assigner: SoftAssigner,
    settings: Settings,
}

fn setup(d: usize, n: usize, seed: u64) -> Run {
    let w = ReferencePoints::from_seed(seed, n, d).unwrap();
    let cal = Calibration::FindEps;
    let assigner = SoftAssigner::new(&w, cal.epsilon(n, d).unwrap()).unwrap();
    let settings = Settings::new(&assigner, &cal);
    Run { assigner, settings }
}

/// Accumulates rows `range` of `data`. With `complete`, every part shares the global index (as
/// after a pre-pass); without, each part interns its own keys.
fn accumulate(run: &Run, data: &Data, range: std::ops::Range<usize>, weighting: Weighting, min_count: u64, complete: bool, null_seed: u64) -> Accumulator {
    let z = &data.z[range.start * data.d..range.end * data.d];
    accumulate_by(run, data, range, weighting, min_count, complete, null_seed, |acc, batches| acc.update(&run.assigner, Rows::F32(z), batches).unwrap())
}

/// As [`accumulate`], with the rows fed to the accumulator by `feed`.
#[allow(clippy::too_many_arguments)]
fn accumulate_by(run: &Run, data: &Data, range: std::ops::Range<usize>, weighting: Weighting, min_count: u64, complete: bool, null_seed: u64, feed: impl FnOnce(&mut Accumulator, &[LabelBatch<'_>])) -> Accumulator {
    let rows = data.z.len() / data.d;
    let perm = permutation(rows, null_seed);
    let mut acc = Accumulator::new(run.settings.clone());
    let mut ids = Vec::new();
    for (s, set) in data.labels.iter().enumerate() {
        let mut index = LabelIndex::new();
        let all: Vec<u32> = if complete {
            set.iter().map(|k| index.intern(k)).collect()
        } else {
            let mut v = vec![u32::MAX; rows];
            for i in range.clone().chain(range.clone().map(|i| perm[i] as usize)) {
                v[i] = index.intern(&set[i]);
            }
            v
        };
        let null: Vec<u32> = range.clone().map(|i| all[perm[i] as usize]).collect();
        ids.push((all[range.clone()].to_vec(), null));
        let spec = LabelSetSpec { name: format!("set{s}"), weighting, min_count, null: true, per_label: false };
        acc.add_label_set(spec, index, complete).unwrap();
    }
    let batches: Vec<LabelBatch<'_>> = ids.iter().map(|(a, b)| LabelBatch { ids: a, null_ids: Some(b) }).collect();
    feed(&mut acc, &batches);
    acc
}

/// Equal to `rel`, or both NaN (no label kept under min_count: the information is undefined).
fn close(a: f64, b: f64, rel: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

fn assert_same(a: &Estimate, b: &Estimate, rel: f64) {
    assert_eq!(a.positions, b.positions);
    assert!(close(a.entropy, b.entropy, rel), "H {} vs {}", a.entropy, b.entropy);
    for (x, y) in a.label_sets.iter().zip(&b.label_sets) {
        assert!(close(x.mutual_information, y.mutual_information, rel), "{}: I {} vs {}", x.name, x.mutual_information, y.mutual_information);
        let (xn, yn) = (x.null_mutual_information.unwrap(), y.null_mutual_information.unwrap());
        assert!(close(xn, yn, rel), "{}: I_null {xn} vs {yn}", x.name);
        assert_eq!(x.distinct_labels, y.distinct_labels);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn entropy_is_in_unit_interval_and_bounds_information(seed in 0u64..1000, rows in 1usize..400, d in 3usize..40, signal in 0.0f64..4.0, uniform in any::<bool>()) {
        let run = setup(d, 20, seed);
        let data = data(seed, rows, d, 9, signal);
        let weighting = if uniform { Weighting::Uniform } else { Weighting::Frequency };
        let e = accumulate(&run, &data, 0..rows, weighting, 1, true, seed).estimate().unwrap();
        prop_assert!((0.0..=1.0 + 1e-12).contains(&e.entropy), "H = {}", e.entropy);
        for set in &e.label_sets {
            prop_assert!(set.mutual_information <= e.entropy + 1e-12);
            prop_assert!(set.null_mutual_information.unwrap() <= e.entropy + 1e-12);
            prop_assert!(set.conditional_entropy >= -1e-12 && set.conditional_entropy <= 1.0 + 1e-12);
        }
    }

    #[test]
    fn merged_parts_equal_one_pass_in_any_order(seed in 0u64..1000, rows in 8usize..500, cuts in proptest::collection::vec(0.0f64..1.0, 1..4), complete in any::<bool>(), uniform in any::<bool>()) {
        let d = 12;
        let run = setup(d, 16, seed);
        let data = data(seed, rows, d, 11, 1.5);
        let weighting = if uniform { Weighting::Uniform } else { Weighting::Frequency };
        let min_count = if uniform { 2 } else { 1 };
        let whole = accumulate(&run, &data, 0..rows, weighting, min_count, complete, 3).estimate().unwrap();
        let mut bounds: Vec<usize> = cuts.iter().map(|c| (c * rows as f64) as usize).collect();
        bounds.extend([0, rows]);
        bounds.sort();
        bounds.dedup();
        let parts: Vec<Accumulator> = bounds.windows(2).map(|w| accumulate(&run, &data, w[0]..w[1], weighting, min_count, complete, 3)).collect();
        // Left to right, right to left, and nested the other way.
        let mut forward = parts[0].clone();
        for p in &parts[1..] { forward.merge(p).unwrap(); }
        let mut backward = parts[parts.len() - 1].clone();
        for p in parts[..parts.len() - 1].iter().rev() { backward.merge(p).unwrap(); }
        let mut nested = parts[parts.len() - 1].clone();
        if parts.len() > 2 {
            let mut inner = parts[1].clone();
            for p in &parts[2..parts.len() - 1] { inner.merge(p).unwrap(); }
            nested = parts[0].clone();
            nested.merge(&inner).unwrap();
            nested.merge(&parts[parts.len() - 1]).unwrap();
        } else if parts.len() == 2 {
            nested.merge(&parts[0]).unwrap();
        }
        for merged in [forward, backward, nested] {
            assert_same(&merged.estimate().unwrap(), &whole, 1e-12);
        }
    }

    #[test]
    fn assigning_apart_then_absorbing_equals_update_bit_for_bit(seed in 0u64..1000, rows in 1usize..600, block in 1usize..300, label_block in 1usize..700, complete in any::<bool>()) {
        // What a spilled run does: soft assignments computed block by block (bin sums added per
        // block), kept, and absorbed into label sums later in blocks of another size.
        let d = 9;
        let run = setup(d, 14, seed);
        let data = data(seed, rows, d, 13, 1.0);
        let by_update = accumulate_by(&run, &data, 0..rows, Weighting::Frequency, 1, complete, 5, |acc, batches| {
            for start in (0..rows).step_by(block) {
                let end = (start + block).min(rows);
                let part: Vec<LabelBatch<'_>> = batches.iter().map(|b| LabelBatch { ids: &b.ids[start..end], null_ids: b.null_ids.map(|n| &n[start..end]) }).collect();
                acc.update(&run.assigner, Rows::F32(&data.z[start * d..end * d]), &part).unwrap();
            }
        });
        let apart = accumulate_by(&run, &data, 0..rows, Weighting::Frequency, 1, complete, 5, |acc, batches| {
            let (mut p, mut h) = (Vec::new(), Vec::new());
            for start in (0..rows).step_by(block) {
                let end = (start + block).min(rows);
                let a = run.assigner.assign(Rows::F32(&data.z[start * d..end * d]), start as u64, true).unwrap();
                acc.add_bin_sums(&a.column_sums, (end - start) as u64).unwrap();
                p.extend(a.p);
                h.extend(a.row_entropy.unwrap());
            }
            let n = run.assigner.n_bins();
            for start in (0..rows).step_by(label_block) {
                let end = (start + label_block).min(rows);
                let part: Vec<LabelBatch<'_>> = batches.iter().map(|b| LabelBatch { ids: &b.ids[start..end], null_ids: b.null_ids.map(|n| &n[start..end]) }).collect();
                acc.absorb_labels(&p[start * n..end * n], Some(&h[start..end]), &part).unwrap();
            }
        });
        let (a, b) = (by_update.estimate().unwrap(), apart.estimate().unwrap());
        prop_assert_eq!(a.positions, b.positions);
        prop_assert_eq!(a.entropy.to_bits(), b.entropy.to_bits());
        for (x, y) in a.label_sets.iter().zip(&b.label_sets) {
            prop_assert_eq!(x.mutual_information.to_bits(), y.mutual_information.to_bits());
            prop_assert_eq!(x.null_mutual_information.unwrap().to_bits(), y.null_mutual_information.unwrap().to_bits());
        }
    }

    #[test]
    fn permuting_positions_changes_nothing(seed in 0u64..1000, rows in 2usize..300) {
        let d = 10;
        let run = setup(d, 12, seed);
        let a = data(seed, rows, d, 6, 2.0);
        let perm = permutation(rows, seed + 1);
        let b = Data {
            d,
            z: perm.iter().flat_map(|&i| a.z[i as usize * d..(i as usize + 1) * d].to_vec()).collect(),
            labels: a.labels.iter().map(|set| perm.iter().map(|&i| set[i as usize].clone()).collect()).collect(),
        };
        let ea = accumulate(&run, &a, 0..rows, Weighting::Frequency, 1, true, 0).estimate().unwrap();
        let eb = accumulate(&run, &b, 0..rows, Weighting::Frequency, 1, true, 0).estimate().unwrap();
        prop_assert!(close(ea.entropy, eb.entropy, 1e-12));
        for (x, y) in ea.label_sets.iter().zip(&eb.label_sets) {
            prop_assert!(close(x.mutual_information, y.mutual_information, 1e-12), "{} vs {}", x.mutual_information, y.mutual_information);
        }
    }
}

#[test]
fn labels_independent_of_z_carry_no_information_beyond_their_null() {
    for seed in 0..4 {
        let (rows, d) = (20_000, 16);
        let run = setup(d, 50, seed);
        let data = data(seed, rows, d, 40, 0.0); // signal 0: Z is independent of every label
        let e = accumulate(&run, &data, 0..rows, Weighting::Frequency, 1, true, seed).estimate().unwrap();
        for set in &e.label_sets {
            let corrected = set.corrected_mutual_information.unwrap();
            assert!(set.mutual_information > 0.001, "the raw estimate is biased upwards ({})", set.mutual_information);
            assert!(corrected.abs() < 0.2 * set.mutual_information, "{}: I − I_null = {corrected} (I = {})", set.name, set.mutual_information);
        }
        let informative = accumulate(&run, &self::data(seed, rows, d, 40, 2.0), 0..rows, Weighting::Frequency, 1, true, seed).estimate().unwrap();
        assert!(informative.label_sets[0].corrected_mutual_information.unwrap() > 0.05);
    }
}

#[test]
fn singleton_scalars_equal_full_vectors() {
    let (rows, d) = (3000, 8);
    let run = setup(d, 30, 9);
    let data = data(9, rows, d, 500, 1.0);
    let scalar = accumulate(&run, &data, 0..rows, Weighting::Frequency, 1, true, 1);
    let vectors = accumulate(&run, &data, 0..rows, Weighting::Frequency, 1, false, 1);
    let (a, b) = (scalar.estimate().unwrap(), vectors.estimate().unwrap());
    assert!(a.label_sets[1].singleton_labels > 100, "the 2-tuple set must have singletons");
    assert_eq!(b.label_sets[1].singleton_labels, 0);
    assert!(a.label_sets[1].repeated_labels < b.label_sets[1].repeated_labels);
    assert_same(&a, &b, 1e-6);
}

#[test]
fn mismatched_partials_refuse_to_merge() {
    let d = 8;
    let data = data(1, 50, d, 5, 1.0);
    let base = accumulate(&setup(d, 10, 1), &data, 0..50, Weighting::Frequency, 1, true, 0);
    let other_w = accumulate(&setup(d, 10, 2), &data, 0..50, Weighting::Frequency, 1, true, 0);
    let err = base.clone().merge(&other_w).unwrap_err().to_string();
    assert!(err.contains("reference points"), "{err}");
    let other_n = accumulate(&setup(d, 12, 1), &data, 0..50, Weighting::Frequency, 1, true, 0);
    assert!(base.clone().merge(&other_n).is_err());
    let other_weighting = accumulate(&setup(d, 10, 1), &data, 0..50, Weighting::Uniform, 1, true, 0);
    let err = base.clone().merge(&other_weighting).unwrap_err().to_string();
    assert!(err.contains("settings"), "{err}");
    let mut run = setup(d, 10, 1);
    run.settings.epsilon *= 1.5;
    run.assigner = SoftAssigner::new(&ReferencePoints::from_seed(1, 10, d).unwrap(), run.settings.epsilon).unwrap();
    let other_eps = accumulate(&run, &data, 0..50, Weighting::Frequency, 1, true, 0);
    assert!(base.clone().merge(&other_eps).unwrap_err().to_string().contains("epsilon"));
    let half = accumulate(&setup(d, 10, 1), &data, 0..25, Weighting::Frequency, 1, false, 0);
    assert!(base.clone().merge(&half).unwrap_err().to_string().contains("pre-pass"));
}

#[test]
fn thread_count_does_not_change_a_bit() {
    // 5000 rows are 20 chunks: threads claim them in turn and add them to the label sums (real
    // and null) in whatever interleaving the run takes, so this holds the ordering to account.
    let (rows, d) = (5000, 24);
    let run = setup(d, 40, 4);
    let data = data(4, rows, d, 30, 1.0);
    let on = |threads: usize| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| accumulate(&run, &data, 0..rows, Weighting::Frequency, 1, true, 0).estimate().unwrap());
    let one = on(1);
    for threads in [2, 3, 7] {
        let many = on(threads);
        assert_eq!(one.entropy.to_bits(), many.entropy.to_bits(), "{threads} threads");
        for (a, b) in one.label_sets.iter().zip(&many.label_sets) {
            assert_eq!(a.mutual_information.to_bits(), b.mutual_information.to_bits(), "{threads} threads");
            assert_eq!(a.null_mutual_information.unwrap().to_bits(), b.null_mutual_information.unwrap().to_bits(), "{threads} threads");
        }
    }
}

#[test]
fn a_bad_row_fails_the_update_naming_the_first_and_counts_nothing_of_it() {
    let (rows, d) = (2000, 16);
    let run = setup(d, 20, 6);
    let good = data(6, rows, d, 30, 1.0);
    let fresh = accumulate(&run, &good, 0..rows, Weighting::Frequency, 1, true, 0).estimate().unwrap();
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        // Bad rows in the first chunk: no label sums are touched, so the same accumulator takes
        // the good rows afterwards and reports what a fresh one does.
        let mut bad = data(6, rows, d, 30, 1.0);
        bad.z[d * 10] = f32::NAN;
        bad.z[d * 1500..d * 1501].fill(0.0);
        let recovered = accumulate_by(&run, &good, 0..rows, Weighting::Frequency, 1, true, 0, |acc, batches| {
            let err = pool.install(|| acc.update(&run.assigner, Rows::F32(&bad.z), batches)).unwrap_err().to_string();
            assert!(err.contains("row 10:") && err.contains("non-finite"), "{err}");
            assert_eq!(acc.positions(), 0);
            pool.install(|| acc.update(&run.assigner, Rows::F32(&good.z), batches)).unwrap();
        });
        assert_same(&recovered.estimate().unwrap(), &fresh, 0.0);
        // A bad row seven chunks in: the chunks before it reached the label sums, so the
        // accumulator refuses to report anything rather than report part of an update.
        bad.z[d * 10] = good.z[d * 10];
        bad.z[d * 1900] = f32::INFINITY;
        let poisoned = accumulate_by(&run, &good, 0..rows, Weighting::Frequency, 1, true, 0, |acc, batches| {
            let err = pool.install(|| acc.update(&run.assigner, Rows::F32(&bad.z), batches)).unwrap_err().to_string();
            assert!(err.contains("row 1500:") && err.contains("zero"), "{err}");
        });
        let refusal = poisoned.estimate().unwrap_err().to_string();
        assert!(refusal.contains("incomplete"), "{refusal}");
    }
}
