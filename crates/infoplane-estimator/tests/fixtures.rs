//! Known answers produced by the reference implementations themselves (scripts/ makes them).

use infoplane_estimator::{rng::Philox, Calibration};
use serde_json::Value;
use std::path::PathBuf;

fn fixture(rel: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(rel);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn find_eps_matches_soft_h_to_1e_9_relative() {
    let eps = fixture("softh/epsilon.json");
    let cases = eps["find_eps"].as_array().unwrap();
    assert!(cases.len() > 50);
    for case in cases {
        let (n, d, want) = (case["n_bins"].as_u64().unwrap() as usize, case["d"].as_u64().unwrap() as usize, case["epsilon"].as_f64().unwrap());
        let got = Calibration::FindEps.epsilon(n, d).unwrap();
        assert!(((got - want) / want).abs() < 1e-9, "find-eps n={n} d={d}: {got} vs soft_h {want}");
    }
}

#[test]
fn exact_matches_scipy_bessel_where_scipy_works() {
    let eps = fixture("softh/epsilon.json");
    let cases = eps["exact"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let (n, d, want) = (case["n_bins"].as_u64().unwrap() as usize, case["d"].as_u64().unwrap() as usize, case["epsilon"].as_f64().unwrap());
        let got = Calibration::Exact.epsilon(n, d).unwrap();
        assert!(((got - want) / want).abs() < 1e-8, "exact n={n} d={d}: {got} vs scipy {want}");
    }
}

#[test]
fn philox_stream_equals_numpy() {
    let f = fixture("rng/philox_numpy.json");
    for stream in f["streams"].as_array().unwrap() {
        let seed: u64 = stream["seed"].as_str().unwrap().parse().unwrap();
        let domain = stream["domain"].as_u64().unwrap();
        let want: Vec<u64> = stream["raw"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().parse().unwrap()).collect();
        assert_eq!(Philox::new(seed, domain).numpy_stream(want.len()), want, "seed {seed} domain {domain}");
    }
}
