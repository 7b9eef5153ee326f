//! Files: `.npy` arrays, partial statistics, atomic writes and content hashes. The only crate
//! besides the CLI that touches the filesystem; it knows the estimator's plain-data types but
//! none of its maths.

mod atomic;
mod npy;
mod partial;
mod spill;

pub use atomic::{write_atomic, write_atomic_with};
pub use npy::{parse_npy, read_npy, write_npy_f32, NpyArray, NpyData};
pub use partial::{decode_partial, encode_partial, read_partial, write_partial};
pub use spill::{remove_spill, SpillReader, SpillWriter};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not a valid .npy file: {reason}", path.display())]
    Npy { path: PathBuf, reason: String },
    #[error("{}: not a valid infoplane partial: {reason}", path.display())]
    Partial { path: PathBuf, reason: String },
    #[error("{}: spilled soft assignments are inconsistent: {reason}", path.display())]
    Spill { path: PathBuf, reason: String },
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io { path: path.to_path_buf(), source }
    }
}

/// sha256 of a file's bytes, hex.
pub fn file_sha256(path: &Path) -> Result<String, StoreError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let got = file.read(&mut buf).map_err(|e| StoreError::io(path, e))?;
        if got == 0 {
            break;
        }
        hasher.update(&buf[..got]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
