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

/// The same partial encodes to the same bytes every time (the metadata used to be written in a
/// HashMap's order, which changes with every map, so reruns gave different files), and the bytes
/// are a safetensors file other readers take: header keys sorted, data 8-byte aligned.
#[test]
fn encoding_is_byte_identical_every_time() {
    let partial = accumulator(7, 120, false, true).to_partial().unwrap();
    let first = encode_partial(&partial);
    for _ in 0..8 {
        assert_eq!(encode_partial(&partial), first);
    }
    let n = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0);
    let header: serde_json::Value = serde_json::from_slice(&first[8..8 + n]).unwrap();
    let keys: Vec<&String> = header["__metadata__"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["format", "format_version", "header"]);
    let st = safetensors::SafeTensors::deserialize(&first).unwrap();
    assert_eq!(st.tensor("set0.real.sums").unwrap().dtype(), safetensors::Dtype::F64);
    assert_eq!(decode_partial(&first).unwrap(), partial);
}
