//! Reference points W: n unit vectors in R^d, drawn from the portable RNG or given by the user.

use crate::rng::{Philox, DOMAIN_REFERENCE_POINTS};
use crate::EstimatorError;
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, PartialEq)]
pub enum ReferenceOrigin {
    /// g_j ~ N(0, I_d) from Philox4x64-10 with key [seed, 0]; entry (j, c) is normal number j·d + c.
    Seed(u64),
    /// Rows given by the user (normalised here when they are not unit vectors already).
    Provided,
}

#[derive(Clone, Debug)]
pub struct ReferencePoints {
    n: usize,
    d: usize,
    rows: Vec<f32>,
    sha256: String,
    origin: ReferenceOrigin,
}

impl ReferencePoints {
    /// Draws W for (seed, n, d). The same arguments give the same bits on every machine.
    pub fn from_seed(seed: u64, n: usize, d: usize) -> Result<Self, EstimatorError> {
        check_shape(n, d)?;
        let rng = Philox::new(seed, DOMAIN_REFERENCE_POINTS);
        let mut rows = Vec::with_capacity(n * d);
        let mut g = vec![0f64; d];
        for j in 0..n {
            for (c, v) in g.iter_mut().enumerate() {
                *v = rng.normal((j * d + c) as u64);
            }
            let norm = libm::sqrt(g.iter().map(|v| v * v).sum::<f64>());
            rows.extend(g.iter().map(|v| (v / norm) as f32));
        }
        Ok(Self::build(n, d, rows, ReferenceOrigin::Seed(seed)))
    }

    /// W from user data (row-major [n, d]). Rows already on the sphere to f32 precision keep their
    /// bits (so a saved W reloads with the same hash); other rows are normalised in f64.
    pub fn from_rows(rows: Vec<f32>, n: usize, d: usize) -> Result<Self, EstimatorError> {
        check_shape(n, d)?;
        if rows.len() != n * d {
            return Err(EstimatorError::ReferencePoints(format!(
                "expected {n}×{d} = {} values, got {}",
                n * d,
                rows.len()
            )));
        }
        let mut rows = rows;
        for (j, row) in rows.chunks_exact_mut(d).enumerate() {
            let sq: f64 = row.iter().map(|&v| (v as f64) * (v as f64)).sum();
            if !sq.is_finite() || sq == 0.0 {
                return Err(EstimatorError::ReferencePoints(format!(
                    "row {j} is {}",
                    if sq == 0.0 { "zero" } else { "not finite" }
                )));
            }
            let norm = sq.sqrt();
            if (norm - 1.0).abs() > 1e-5 {
                for v in row.iter_mut() {
                    *v = (*v as f64 / norm) as f32;
                }
            }
        }
        Ok(Self::build(n, d, rows, ReferenceOrigin::Provided))
    }

    fn build(n: usize, d: usize, rows: Vec<f32>, origin: ReferenceOrigin) -> Self {
        let mut hasher = Sha256::new();
        for v in &rows {
            hasher.update(v.to_le_bytes());
        }
        let sha256 = hex(&hasher.finalize());
        ReferencePoints { n, d, rows, sha256, origin }
    }

    pub fn n(&self) -> usize {
        self.n
    }
    pub fn dim(&self) -> usize {
        self.d
    }
    /// Row-major [n, d] f32.
    pub fn rows(&self) -> &[f32] {
        &self.rows
    }
    /// sha256 of W's little-endian f32 bytes, row-major.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    pub fn origin(&self) -> &ReferenceOrigin {
        &self.origin
    }
}

fn check_shape(n: usize, d: usize) -> Result<(), EstimatorError> {
    if n < 2 || d < 2 {
        return Err(EstimatorError::ReferencePoints(format!("need n ≥ 2 and d ≥ 2, got n={n}, d={d}")));
    }
    Ok(())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_points_are_unit_reproducible_and_reload_with_the_same_hash() {
        let w = ReferencePoints::from_seed(0, 100, 64).unwrap();
        for row in w.rows().chunks(64) {
            let norm: f64 = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-6);
        }
        let again = ReferencePoints::from_seed(0, 100, 64).unwrap();
        assert_eq!(w.sha256(), again.sha256());
        assert_ne!(w.sha256(), ReferencePoints::from_seed(1, 100, 64).unwrap().sha256());
        let reloaded = ReferencePoints::from_rows(w.rows().to_vec(), 100, 64).unwrap();
        assert_eq!(reloaded.sha256(), w.sha256());
    }

    #[test]
    fn rows_are_a_prefix_of_the_normal_stream() {
        // Entry (j, c) is normal number j·d + c: growing n keeps the first rows' directions.
        let small = ReferencePoints::from_seed(5, 3, 16).unwrap();
        let big = ReferencePoints::from_seed(5, 7, 16).unwrap();
        assert_eq!(&big.rows()[..48], small.rows());
    }

    #[test]
    fn bad_rows_are_named() {
        let mut rows = vec![1.0f32; 3 * 4];
        rows[4..8].fill(0.0);
        let err = ReferencePoints::from_rows(rows, 3, 4).unwrap_err().to_string();
        assert!(err.contains("row 1 is zero"), "{err}");
        assert!(ReferencePoints::from_rows(vec![1.0; 5], 2, 4).is_err());
    }
}
