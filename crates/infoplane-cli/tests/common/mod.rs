//! Shared helpers for the CLI's integration tests: run the real binary, find fixtures and the
//! shared data directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixtures() -> PathBuf {
    repo_root().join("fixtures")
}

/// `../shared/data` beside the repository, or `$INFOPLANE_SHARED_DATA` (relative paths are taken
/// from the repository root). None, with a notice on stderr, when it is absent; a panic instead
/// when `INFOPLANE_REQUIRE_SHARED_DATA=1` (as `.ci/run` sets).
pub fn shared_data(test: &str) -> Option<PathBuf> {
    let configured = std::env::var_os("INFOPLANE_SHARED_DATA").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("../shared/data"));
    let dir = if configured.is_absolute() { configured } else { repo_root().join(configured) };
    if dir.is_dir() {
        return Some(dir);
    }
    let required = std::env::var("INFOPLANE_REQUIRE_SHARED_DATA").is_ok_and(|v| v == "1");
    assert!(!required, "{test}: shared data {} is missing and INFOPLANE_REQUIRE_SHARED_DATA=1", dir.display());
    eprintln!("SKIPPED {test}: shared data not found at {} (set INFOPLANE_SHARED_DATA)", dir.display());
    None
}

pub fn infoplane(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infoplane")).args(args).current_dir(cwd).output().expect("the binary runs")
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// A C-order little-endian .npy of `descr` ('<f4', '<i8', …) with the raw bytes given.
pub fn write_npy(path: &Path, descr: &str, shape: &[usize], body: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(body);
    std::fs::write(path, bytes).unwrap();
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
