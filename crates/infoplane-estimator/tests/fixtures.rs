//! Known answers produced by the reference implementations themselves (scripts/ makes them).

use infoplane_estimator::{rng::Philox, Calibration};
use serde_json::Value;
use std::path::PathBuf;

fn fixture(rel: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(rel);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Every (n_bins, d) of one table in epsilon.json, within `rel` of the reference's ε.
fn check_epsilon_table(table: &str, mode: Calibration, rel: f64) {
    let eps = fixture("softh/epsilon.json");
    let cases = eps[table].as_array().unwrap();
    assert!(cases.len() >= 10, "{table}: only {} cases", cases.len());
    for case in cases {
        let (n, d, want) = (case["n_bins"].as_u64().unwrap() as usize, case["d"].as_u64().unwrap() as usize, case["epsilon"].as_f64().unwrap());
        let got = mode.epsilon(n, d).unwrap();
        assert!(((got - want) / want).abs() < rel, "{} n={n} d={d}: {got} vs reference {want}", mode.name());
    }
}

#[test]
fn find_eps_matches_soft_h_to_1e_9_relative() {
    check_epsilon_table("find_eps", Calibration::FindEps, 1e-9);
}

#[test]
fn exact_matches_scipy_bessel_where_scipy_works() {
    check_epsilon_table("exact", Calibration::Exact, 1e-8);
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

#[test]
fn find_eps_fails_where_soft_h_fails() {
    let eps = fixture("softh/epsilon.json");
    let failed = eps["failed"].as_array().unwrap();
    assert!(!failed.is_empty());
    for case in failed {
        let (n, d) = (case["n_bins"].as_u64().unwrap() as usize, case["d"].as_u64().unwrap() as usize);
        let err = Calibration::FindEps.epsilon(n, d).unwrap_err().to_string();
        assert!(err.contains("no temperature"), "n={n} d={d}: {err}");
    }
}
