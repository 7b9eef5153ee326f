//! Partial files: exact round trip, and refusal (never a panic) of damaged bytes.

use infoplane_estimator::{rng::Philox, Accumulator, Calibration, LabelBatch, LabelIndex, LabelSetSpec, ReferencePoints, Rows, Settings, SoftAssigner, Weighting};
use infoplane_store::{decode_partial, encode_partial};
use proptest::prelude::*;

fn accumulator(seed: u64, rows: usize, complete: bool, per_label: bool) -> Accumulator {
    let d = 6;
    let w = ReferencePoints::from_seed(seed, 8, d).unwrap();
    let assigner = SoftAssigner::new(&w, 0.2).unwrap();
    let mut acc = Accumulator::new(Settings::new(&assigner, &Calibration::Fixed(0.2)));
    let rng = Philox::new(seed, 9);
    let z: Vec<f32> = (0..rows * d).map(|i| rng.normal(i as u64) as f32).collect();
    let mut index = LabelIndex::new();
    let ids: Vec<u32> = (0..rows).map(|i| index.intern(&[rng.below(i as u64 + 1_000_000, 12) as i64, (i % 3) as i64])).collect();
    let null: Vec<u32> = ids.iter().rev().copied().collect();
    let spec = LabelSetSpec { name: "pair".into(), weighting: Weighting::Frequency, min_count: 1, null: true, per_label };
    acc.add_label_set(spec, index, complete).unwrap();
    acc.update(&assigner, Rows::F32(&z), &[LabelBatch { ids: &ids, null_ids: Some(&null) }]).unwrap();
    acc
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn round_trip_is_exact(seed in 0u64..500, rows in 1usize..200, complete in any::<bool>(), per_label in any::<bool>()) {
        let acc = accumulator(seed, rows, complete, per_label);
        let partial = acc.to_partial().unwrap();
        let back = decode_partial(&encode_partial(&partial)).unwrap();
        prop_assert_eq!(&back, &partial);
        let (a, b) = (acc.estimate().unwrap(), Accumulator::from_partial(back).unwrap().estimate().unwrap());
        prop_assert_eq!(a.entropy.to_bits(), b.entropy.to_bits());
        prop_assert_eq!(a.label_sets[0].mutual_information.to_bits(), b.label_sets[0].mutual_information.to_bits());
    }

    #[test]
    fn damaged_bytes_are_refused_without_panic(seed in 0u64..50, cut in 0.0f64..1.0, flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..6)) {
        let bytes = encode_partial(&accumulator(seed, 40, seed % 2 == 0, true).to_partial().unwrap());
        let mut damaged = bytes.clone();
        for (at, v) in flips {
            let i = (at * damaged.len() as f64) as usize % damaged.len();
            damaged[i] ^= v | 1;
        }
        damaged.truncate(((cut * bytes.len() as f64) as usize).max(1));
        if let Ok(p) = decode_partial(&damaged) {
            // Parsed: the accumulator's own checks must catch inconsistent content.
            let _ = Accumulator::from_partial(p).and_then(|a| a.estimate());
        }
    }
}
