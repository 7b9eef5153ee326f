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

#[allow(unused_imports)]
pub use infoplane_store::testing::shared_data;

pub fn infoplane(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infoplane")).args(args).current_dir(cwd).output().expect("the binary runs")
}

/// Runs a command that must fail: exit code 2, one line on stderr containing `needle`, no panic,
/// and none of `outputs` (relative to `dir`) left behind. Returns stderr for further checks.
pub fn refuses_leaving_nothing(dir: &Path, args: &[&str], needle: &str, outputs: &[&str]) -> String {
    let out = infoplane(args, dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: not one line: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr:?} does not mention {needle:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for o in outputs {
        assert!(!dir.join(o).exists(), "{args:?} left {o} behind");
    }
    stderr.into_owned()
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
