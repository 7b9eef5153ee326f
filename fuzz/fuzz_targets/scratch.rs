//! A per-process scratch directory in memory (/dev/shm when present) for parsers whose entry point
//! takes a path: each input is written there and read back through the real loader.

use std::path::PathBuf;
use std::sync::OnceLock;

pub fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let d = base.join(format!("infoplane-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch directory");
        d
    })
}

/// Writes `bytes` to `name` in the scratch directory and returns its path.
#[allow(dead_code)]
pub fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir().join(name);
    std::fs::write(&p, bytes).expect("scratch write");
    p
}
