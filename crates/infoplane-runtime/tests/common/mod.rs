//! Helpers shared by the runtime's integration tests.
#![allow(dead_code)]

use infoplane_runtime::{DocStates, LoadOptions, Model, ModelSource};
use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// This crate's own fixtures (made by tests/make_fixtures.py).
pub fn own_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The repository's fixtures (made by scripts/make_model_fixtures.py).
pub fn fixtures() -> PathBuf {
    repo_root().join("fixtures")
}

#[allow(unused_imports)]
pub use infoplane_store::testing::shared_data;

/// A fixture directory that another script produces; None (with a SKIPPED line) when it has
/// not been generated yet.
pub fn optional_fixture(test: &str, dir: &Path) -> Option<PathBuf> {
    if dir.is_dir() {
        return Some(dir.to_path_buf());
    }
    eprintln!("SKIPPED {test}: fixture {} has not been generated", dir.display());
    None
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

pub fn npy_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let a = infoplane_store::read_npy(path).unwrap_or_else(|e| panic!("{e}"));
    match a.data {
        infoplane_store::NpyData::F32(v) => (a.shape, v),
        other => panic!("{}: expected float32, found {}", path.display(), other_dtype(&other)),
    }
}

fn other_dtype(d: &infoplane_store::NpyData) -> &'static str {
    match d {
        infoplane_store::NpyData::F32(_) => "f32",
        _ => "another dtype",
    }
}

/// max |a − b| ≤ tol × max(1, max |b|); panics with the worst index otherwise. Returns the
/// relative error.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: {} values, expected {}", got.len(), want.len());
    let scale = want.iter().fold(1f64, |m, &v| m.max((v as f64).abs()));
    let (mut worst, mut at) = (0f64, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g as f64 - w as f64).abs();
        if !(d <= worst) {
            worst = d;
            at = i;
        }
    }
    let rel = worst / scale;
    assert!(rel <= tol, "{what}: max |diff| {worst:.3e} at index {at} (got {}, want {}) is {rel:.3e} of scale {scale:.3e} > {tol:e}", got[at], want[at]);
    rel
}

pub fn load(src: &ModelSource) -> Model {
    Model::load(src, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Compares one document's states with `case{i}_*.npy` in `dir` (infoplane's layout).
pub fn compare_case(what: &str, dir: &Path, i: usize, got: &DocStates, tol: f64) -> f64 {
    let (shape, hidden) = npy_f32(&dir.join(format!("case{i}_hidden_states.npy")));
    let (l1, t, d) = (shape[0], shape[1], shape[2]);
    assert_eq!(got.tokens, t, "{what}: token count");
    assert_eq!(got.hidden.len(), l1, "{what}: number of hidden-state arrays");
    let mut worst = 0f64;
    for l in 0..l1 {
        worst = worst.max(assert_close(&format!("{what} hidden[{l}]"), &got.hidden[l], &hidden[l * t * d..(l + 1) * t * d], tol));
    }
    let (_, fnorm) = npy_f32(&dir.join(format!("case{i}_final_norm.npy")));
    worst = worst.max(assert_close(&format!("{what} final_norm"), &got.final_norm, &fnorm, tol));
    let logits_path = dir.join(format!("case{i}_logits.npy"));
    if logits_path.is_file() {
        let (_, logits) = npy_f32(&logits_path);
        worst = worst.max(assert_close(&format!("{what} logits"), got.logits.as_ref().expect("logits requested"), &logits, tol));
    }
    worst
}

pub fn ids_of(case: &serde_json::Value, key: &str) -> Vec<u32> {
    case[key].as_array().unwrap_or_else(|| panic!("case has no {key}")).iter().map(|v| v.as_u64().unwrap() as u32).collect()
}
