//! Partial statistics whose counts cannot be right are refused when loaded or merged, instead of
//! overflowing (a panic with overflow checks, silently wrapped counts without). Found by the
//! `partial` fuzz target (fuzz/, docs/fuzzing.md).

use infoplane_estimator::{rng, Accumulator, Calibration, LabelBatch, LabelIndex, LabelSetSpec, PartialState, ReferencePoints, Rows, Settings, SoftAssigner, Weighting};

/// A small accumulator: 64 rows of width 8, one label set of 5 labels with its null; with
/// `streaming` the label counts are local (as `estimate --partial-output` writes them).
fn partial(streaming: bool) -> PartialState {
    let (rows, d) = (64, 8);
    let w = ReferencePoints::from_seed(1, 10, d).unwrap();
    let calibration = Calibration::FindEps;
    let assigner = SoftAssigner::new(&w, calibration.epsilon(w.n(), d).unwrap()).unwrap();
    let mut acc = Accumulator::new(Settings::new(&assigner, &calibration));
    let mut index = LabelIndex::new();
    let ids: Vec<u32> = (0..rows).map(|i| index.intern(&[(i % 5) as i64])).collect();
    let spec = LabelSetSpec { name: "t".into(), weighting: Weighting::Frequency, min_count: 1, null: true, per_label: false };
    acc.add_label_set(spec, index, !streaming).unwrap();
    let perm = rng::permutation(rows, 3);
    let null: Vec<u32> = perm.iter().map(|&j| ids[j as usize]).collect();
    let z: Vec<f32> = (0..rows * d).map(|k| ((k * 37 % 11) as f32 - 5.0) / 3.0 + 0.1).collect();
    acc.update(&assigner, Rows::F32(&z), &[LabelBatch { ids: &ids, null_ids: Some(&null) }]).unwrap();
    acc.to_partial().unwrap()
}

#[test]
fn label_counts_beyond_the_positions_are_refused() {
    for streaming in [false, true] {
        let good = partial(streaming);
        let acc = Accumulator::from_partial(good.clone()).unwrap();
        let mut twice = acc.clone();
        twice.merge(&acc).unwrap();
        assert_eq!(twice.positions(), 128);

        let mut bad = good.clone();
        bad.label_sets[0].real.slot_n[0] = u64::MAX - 3;
        let e = Accumulator::from_partial(bad).expect_err("refused").to_string();
        assert!(e.contains("label set \"t\"") && e.contains("64 positions"), "{e}");

        let mut bad = good.clone();
        bad.label_sets[0].null.as_mut().unwrap().singleton_count = 65;
        assert!(Accumulator::from_partial(bad).is_err());
    }
}

#[test]
fn merged_counts_that_overflow_are_refused() {
    let mut huge = partial(true);
    huge.positions = u64::MAX / 2 + 1;
    let a = Accumulator::from_partial(huge).unwrap();
    let mut m = a.clone();
    let e = m.merge(&a).expect_err("refused").to_string();
    assert!(e.contains("overflow"), "{e}");
    // Nothing was half-merged.
    assert_eq!(m.positions(), u64::MAX / 2 + 1);

    let mut counts = partial(true);
    counts.label_sets[0].key_counts[0] = u64::MAX - 10;
    assert!(Accumulator::from_partial(counts.clone()).expect_err("refused").to_string().contains("overflow"));
    counts.label_sets[0].key_counts[0] = u64::MAX / 2 + 1;
    let c = Accumulator::from_partial(counts).unwrap_or_else(|e| panic!("{e}"));
    let mut m = c.clone();
    let e = m.merge(&c).expect_err("refused").to_string();
    assert!(e.contains("overflow"), "{e}");
}
