//! Soft assignments kept on disk between the forward pass and label absorption.
//!
//! An analysis computes p = softmax(z̄Wᵀ/ε) for every hidden state while the model runs, but adds
//! them to label sums later, one hidden state at a time, so that only one state's label vectors
//! are ever in memory. In between the rows wait here: per state, one file of f32 soft
//! assignments `[rows, n]` and one of f64 row entropies `[rows]`, appended in position order.
//! Files only grow; a resumed run truncates them to the row count its last checkpoint recorded,
//! so rows written after that checkpoint (by a run that was killed) are dropped, never doubled.

use crate::StoreError;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Append side: one pair of files per state.
pub struct SpillWriter {
    n: usize,
    rows: u64,
    files: Vec<(PathBuf, BufWriter<File>, BufWriter<File>)>,
}

fn paths(dir: &Path, state: &str) -> (PathBuf, PathBuf) {
    (dir.join(format!("{state}.p.f32")), dir.join(format!("{state}.h.f64")))
}

impl SpillWriter {
    /// Opens the spill files of `states` in `dir` (created if needed) holding exactly
    /// `rows_done` rows: longer files are truncated (rows after the last checkpoint), shorter
    /// ones are an error (the checkpoint promised rows that are not there).
    pub fn open(dir: &Path, states: &[String], n: usize, rows_done: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let mut files = Vec::with_capacity(states.len());
        for state in states {
            let (p_path, h_path) = paths(dir, state);
            let open = |path: &Path, row_bytes: u64| -> Result<BufWriter<File>, StoreError> {
                let mut f = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(|e| StoreError::io(path, e))?;
                let want = rows_done * row_bytes;
                let have = f.metadata().map_err(|e| StoreError::io(path, e))?.len();
                if have < want {
                    return Err(StoreError::Spill { path: path.to_path_buf(), reason: format!("holds {have} bytes, the checkpoint needs {want}") });
                }
                f.set_len(want).map_err(|e| StoreError::io(path, e))?;
                f.seek(SeekFrom::End(0)).map_err(|e| StoreError::io(path, e))?;
                Ok(BufWriter::with_capacity(1 << 20, f))
            };
            let p = open(&p_path, 4 * n as u64)?;
            let h = open(&h_path, 8)?;
            files.push((p_path, p, h));
        }
        Ok(SpillWriter { n, rows: rows_done, files })
    }

    /// Appends the rows of one block to state `state` (the index in `states` given to `open`).
    /// Every state must receive the same rows before the next [`SpillWriter::sync`].
    pub fn append(&mut self, state: usize, p: &[f32], row_entropy: &[f64]) -> Result<(), StoreError> {
        let (path, pw, hw) = &mut self.files[state];
        if p.len() != row_entropy.len() * self.n {
            return Err(StoreError::Spill { path: path.clone(), reason: format!("{} values for {} rows of {} bins", p.len(), row_entropy.len(), self.n) });
        }
        pw.write_all(bytemuck::cast_slice(p)).map_err(|e| StoreError::io(path, e))?;
        hw.write_all(bytemuck::cast_slice(row_entropy)).map_err(|e| StoreError::io(path, e))?;
        if state == 0 {
            self.rows += row_entropy.len() as u64;
        }
        Ok(())
    }

    /// Rows appended so far (per state).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes and fsyncs every file: after this returns, a checkpoint may record `rows()`.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        for (path, p, h) in &mut self.files {
            for w in [p, h] {
                w.flush().map_err(|e| StoreError::io(path, e))?;
                w.get_ref().sync_data().map_err(|e| StoreError::io(path, e))?;
            }
        }
        Ok(())
    }
}

/// Read side: the rows of one state, in blocks, in the order they were written.
pub struct SpillReader {
    n: usize,
    left: u64,
    path: PathBuf,
    p: BufReader<File>,
    h: BufReader<File>,
}

impl SpillReader {
    /// Opens state `state`'s files in `dir`, expecting exactly `rows` rows.
    pub fn open(dir: &Path, state: &str, n: usize, rows: u64) -> Result<Self, StoreError> {
        let (p_path, h_path) = paths(dir, state);
        let open = |path: &Path, row_bytes: u64| -> Result<BufReader<File>, StoreError> {
            let f = File::open(path).map_err(|e| StoreError::io(path, e))?;
            let have = f.metadata().map_err(|e| StoreError::io(path, e))?.len();
            if have != rows * row_bytes {
                return Err(StoreError::Spill { path: path.to_path_buf(), reason: format!("holds {have} bytes, expected {}", rows * row_bytes) });
            }
            Ok(BufReader::with_capacity(1 << 20, f))
        };
        Ok(SpillReader { n, left: rows, p: open(&p_path, 4 * n as u64)?, h: open(&h_path, 8)?, path: p_path })
    }

    /// Reads up to `max_rows` rows into the buffers (resized); 0 at the end.
    pub fn read_block(&mut self, max_rows: usize, p: &mut Vec<f32>, row_entropy: &mut Vec<f64>) -> Result<usize, StoreError> {
        let rows = (max_rows as u64).min(self.left) as usize;
        p.resize(rows * self.n, 0.0);
        row_entropy.resize(rows, 0.0);
        self.p.read_exact(bytemuck::cast_slice_mut(p)).map_err(|e| StoreError::io(&self.path, e))?;
        self.h.read_exact(bytemuck::cast_slice_mut(row_entropy)).map_err(|e| StoreError::io(&self.path, e))?;
        self.left -= rows as u64;
        Ok(rows)
    }
}

/// Deletes the spill files of `state` (after its statistics are safely written).
pub fn remove_spill(dir: &Path, state: &str) -> Result<(), StoreError> {
    let (p, h) = paths(dir, state);
    for path in [p, h] {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&path, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_in_order_and_a_resume_drops_rows_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let states = vec!["0".to_string(), "final_norm".to_string()];
        let n = 3;
        let mut w = SpillWriter::open(dir.path(), &states, n, 0).unwrap();
        for s in 0..2 {
            w.append(s, &[0.1, 0.2, 0.7, 0.3, 0.3, 0.4], &[1.0, 2.0]).unwrap();
        }
        w.sync().unwrap();
        assert_eq!(w.rows(), 2);
        // Rows written after the checkpoint, then a crash: the resume must forget them.
        for s in 0..2 {
            w.append(s, &[0.5, 0.5, 0.0], &[9.0]).unwrap();
        }
        w.sync().unwrap();
        drop(w);
        let mut w = SpillWriter::open(dir.path(), &states, n, 2).unwrap();
        for s in 0..2 {
            w.append(s, &[0.0, 0.0, 1.0], &[3.0]).unwrap();
        }
        w.sync().unwrap();
        let mut r = SpillReader::open(dir.path(), "final_norm", n, 3).unwrap();
        let (mut p, mut h) = (Vec::new(), Vec::new());
        assert_eq!(r.read_block(2, &mut p, &mut h).unwrap(), 2);
        assert_eq!(h, vec![1.0, 2.0]);
        assert_eq!(r.read_block(2, &mut p, &mut h).unwrap(), 1);
        assert_eq!((p.as_slice(), h.as_slice()), ([0.0, 0.0, 1.0].as_slice(), [3.0].as_slice()));
        assert_eq!(r.read_block(2, &mut p, &mut h).unwrap(), 0);
        // A checkpoint that promises more rows than the files hold is refused, naming the file.
        let err = SpillWriter::open(dir.path(), &states, n, 10).err().unwrap().to_string();
        assert!(err.contains("0.p.f32"), "{err}");
        assert!(SpillReader::open(dir.path(), "0", n, 4).is_err());
        remove_spill(dir.path(), "0").unwrap();
        assert!(SpillReader::open(dir.path(), "0", n, 3).is_err());
    }
}
