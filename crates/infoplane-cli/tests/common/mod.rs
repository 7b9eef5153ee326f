//! Shared helpers for the CLI's integration tests: run the real binary, check its refusals, find
//! fixtures and the shared data directory.
#![allow(dead_code)]

use std::collections::BTreeMap;
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

#[derive(Debug, PartialEq)]
pub enum Entry {
    Dir,
    /// Length, modification time, and the bytes of files up to 8 MB (larger ones are copies of
    /// the 98 MB GGUF: length and time suffice).
    File(u64, std::time::SystemTime, Option<Vec<u8>>),
}

/// Everything under `dir`, recursively, by relative path.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                out.insert(rel, Entry::Dir);
                walk(root, &p, out);
            } else {
                let bytes = (meta.len() <= 8 << 20).then(|| std::fs::read(&p).unwrap());
                out.insert(rel, Entry::File(meta.len(), meta.modified().unwrap(), bytes));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

pub fn differences(before: &BTreeMap<PathBuf, Entry>, after: &BTreeMap<PathBuf, Entry>) -> Vec<String> {
    let mut d = Vec::new();
    for (p, e) in after {
        match before.get(p) {
            None => d.push(format!("created {}", p.display())),
            Some(b) if b != e => d.push(format!("changed {}", p.display())),
            _ => {}
        }
    }
    d.extend(before.keys().filter(|p| !after.contains_key(*p)).map(|p| format!("removed {}", p.display())));
    d
}

/// How much of stderr the refusal may take.
#[derive(Clone, Copy, PartialEq)]
pub enum Stderr {
    /// Only the error line: the input was refused before any work began.
    OneLine,
    /// Progress of work done before the failure may come first; the error is the last line.
    ErrorLast,
}

/// Runs `args` in `cwd` and checks the refusal: exit 2, no panic, the error on one line (the last)
/// containing every needle, and `watch` unchanged (nothing created, changed or removed: every
/// write is atomic). Returns the error line.
pub fn refuses_in(cwd: &Path, args: &[&str], needles: &[&str], stderr_rule: Stderr, watch: &Path) -> String {
    let before = snapshot(watch);
    let o = infoplane(args, cwd);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let shown = format!("infoplane {}\n{stderr}", args.join(" "));
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "panic: {shown}");
    assert_eq!(o.status.code(), Some(2), "exit code: {shown}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = *lines.last().unwrap_or_else(|| panic!("no message: {shown}"));
    assert!(last.starts_with("error: "), "the error is not the last line: {shown}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("error")).count(), 1, "one error line: {shown}");
    if stderr_rule == Stderr::OneLine {
        assert_eq!(lines.len(), 1, "one line on stderr: {shown}");
    }
    for n in needles {
        assert!(last.contains(n), "{n:?} is not named: {shown}");
    }
    let changes = differences(&before, &snapshot(watch));
    assert!(changes.is_empty(), "the refused command left {changes:?}: {shown}");
    last.to_string()
}

pub fn refuses(cwd: &Path, args: &[&str], needles: &[&str]) -> String {
    let line = refuses_in(cwd, args, needles, Stderr::OneLine, cwd);
    eprintln!("refused: {line}");
    line
}

pub fn refuses_after_work(cwd: &Path, args: &[&str], needles: &[&str]) -> String {
    let line = refuses_in(cwd, args, needles, Stderr::ErrorLast, cwd);
    eprintln!("refused: {line}");
    line
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
