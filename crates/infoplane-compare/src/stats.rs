//! Correlation coefficients and their two-sided p-values, computed as scipy.stats does:
//! Pearson r with p from Student's t on n − 2 degrees of freedom (= scipy's exact beta form),
//! Spearman = Pearson of average ranks, and partial Spearman = partial Pearson of the ranks of x,
//! y and a covariate z with p from t on n − 3 degrees of freedom.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// A coefficient with its p-value and the number of rows it used. `r` and `p` are None when
/// undefined: too few rows (n < 3, or n < 4 for the partial) or a constant variable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correlation {
    pub r: Option<f64>,
    pub p: Option<f64>,
    pub n: usize,
}

impl Correlation {
    fn undefined(n: usize) -> Self {
        Correlation { r: None, p: None, n }
    }
}

/// 1-based ranks, ties given the average of the ranks they span (scipy.stats.rankdata "average").
pub fn rank(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share the mean of ranks i+1..=j.
        let mean = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = mean;
        }
        i = j;
    }
    ranks
}

/// Pearson's r, centred and normalised before the dot product (as scipy does) for accuracy;
/// None for fewer than 2 values or a constant input.
pub fn pearson_r(x: &[f64], y: &[f64]) -> Option<f64> {
    assert_eq!(x.len(), y.len(), "pearson_r of unequal lengths");
    let n = x.len();
    if n < 2 {
        return None;
    }
    let centred = |v: &[f64]| -> Option<Vec<f64>> {
        let mean = v.iter().sum::<f64>() / n as f64;
        let c: Vec<f64> = v.iter().map(|a| a - mean).collect();
        let norm = c.iter().map(|a| a * a).sum::<f64>().sqrt();
        // A constant column (to rounding) has no correlation.
        (norm > 0.0 && norm > 1e-13 * mean.abs() * (n as f64).sqrt()).then(|| c.iter().map(|a| a / norm).collect())
    };
    let (cx, cy) = (centred(x)?, centred(y)?);
    let r: f64 = cx.iter().zip(&cy).map(|(a, b)| a * b).sum();
    Some(r.clamp(-1.0, 1.0))
}

/// Two-sided p of a correlation r with `dof` degrees of freedom: t = r √(dof / (1 − r²)),
/// p = 2 · sf(|t|) of Student's t (sf, not 1 − cdf, which underflows for strong correlations).
pub fn p_value(r: f64, dof: f64) -> Option<f64> {
    if dof.is_nan() || dof <= 0.0 || !r.is_finite() {
        return None;
    }
    let one_minus = 1.0 - r * r;
    if one_minus <= 0.0 {
        return Some(0.0);
    }
    let t = r.abs() * (dof / one_minus).sqrt();
    let dist = StudentsT::new(0.0, 1.0, dof).ok()?;
    Some((2.0 * dist.sf(t)).min(1.0))
}

pub fn pearson(x: &[f64], y: &[f64]) -> Correlation {
    let n = x.len();
    if n < 3 {
        return Correlation::undefined(n);
    }
    match pearson_r(x, y) {
        Some(r) => Correlation { r: Some(r), p: p_value(r, (n - 2) as f64), n },
        None => Correlation::undefined(n),
    }
}

pub fn spearman(x: &[f64], y: &[f64]) -> Correlation {
    pearson(&rank(x), &rank(y))
}

/// Partial Pearson of x and y given z: (r_xy − r_xz r_yz) / √((1 − r_xz²)(1 − r_yz²)).
pub fn partial_pearson_r(x: &[f64], y: &[f64], z: &[f64]) -> Option<f64> {
    let (rxy, rxz, ryz) = (pearson_r(x, y)?, pearson_r(x, z)?, pearson_r(y, z)?);
    let denom = ((1.0 - rxz * rxz) * (1.0 - ryz * ryz)).sqrt();
    (denom > 0.0).then(|| ((rxy - rxz * ryz) / denom).clamp(-1.0, 1.0))
}

/// Spearman's correlation of x and y controlling for z: partial Pearson of the three rank
/// vectors, p from t with n − 3 degrees of freedom.
pub fn partial_spearman(x: &[f64], y: &[f64], z: &[f64]) -> Correlation {
    let n = x.len();
    if n < 4 {
        return Correlation::undefined(n);
    }
    match partial_pearson_r(&rank(x), &rank(y), &rank(z)) {
        Some(r) => Correlation { r: Some(r), p: p_value(r, (n - 3) as f64), n },
        None => Correlation::undefined(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(rank(&[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0]), vec![4.0, 1.5, 5.0, 1.5, 6.5, 9.0, 3.0, 8.0, 6.5]);
        assert_eq!(rank(&[2.0, 2.0, 2.0]), vec![2.0, 2.0, 2.0]);
    }

    #[test]
    fn known_values() {
        // r = 0.8 exactly for this pair; t = 0.8·√(3/0.36) = 2.3094, two-sided p (3 dof): scipy.stats.pearsonr gives 0.10408803866182799.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [1.0, 3.0, 2.0, 5.0, 4.0];
        let c = pearson(&x, &y);
        assert!((c.r.unwrap() - 0.8).abs() < 1e-15);
        assert!((c.p.unwrap() - 0.10408803866182799).abs() < 1e-14, "{:?}", c.p);
        assert_eq!(pearson(&x, &x).p, Some(0.0));
        assert_eq!(pearson(&x, &[2.0; 5]).r, None, "constant input");
        assert_eq!(pearson(&x[..2], &y[..2]), Correlation { r: None, p: None, n: 2 });
        assert_eq!(partial_spearman(&x[..3], &y[..3], &x[..3]).r, None);
    }

    #[test]
    fn partial_removes_a_shared_cause() {
        // x and y both follow z; given z they are unrelated noise.
        let z: Vec<f64> = (0..40).map(|i| i as f64).collect();
        let x: Vec<f64> = z.iter().enumerate().map(|(i, v)| v + ((i * 7 % 11) as f64 - 5.0)).collect();
        let y: Vec<f64> = z.iter().enumerate().map(|(i, v)| v + ((i * 5 % 13) as f64 - 6.0)).collect();
        assert!(spearman(&x, &y).r.unwrap() > 0.8);
        assert!(partial_spearman(&x, &y, &z).r.unwrap().abs() < 0.3);
    }

    proptest! {
        #[test]
        fn invariances(v in proptest::collection::vec((-1e3f64..1e3, -1e3f64..1e3, -1e3f64..1e3), 5..40), scale in 0.01f64..100.0, shift in -50.0f64..50.0) {
            let x: Vec<f64> = v.iter().map(|t| t.0).collect();
            let y: Vec<f64> = v.iter().map(|t| t.1 + 0.5 * t.0).collect();
            let z: Vec<f64> = v.iter().map(|t| t.2).collect();
            let p = pearson(&x, &y);
            // Affine maps keep r; monotone maps keep Spearman; swapping arguments is symmetric.
            let xs: Vec<f64> = x.iter().map(|a| a * scale + shift).collect();
            prop_assert!((pearson(&xs, &y).r.unwrap() - p.r.unwrap()).abs() < 1e-9);
            prop_assert!((pearson(&y, &x).r.unwrap() - p.r.unwrap()).abs() < 1e-12);
            let cubed: Vec<f64> = x.iter().map(|a| a * a * a + a).collect();
            prop_assert_eq!(spearman(&cubed, &y).r, spearman(&x, &y).r);
            let s = partial_spearman(&x, &y, &z);
            if let (Some(r), Some(p)) = (s.r, s.p) {
                prop_assert!((-1.0..=1.0).contains(&r) && (0.0..=1.0).contains(&p));
            }
            // Flipping the sign of y flips r and keeps p.
            let neg: Vec<f64> = y.iter().map(|a| -a).collect();
            let q = pearson(&x, &neg);
            prop_assert!((q.r.unwrap() + p.r.unwrap()).abs() < 1e-12);
            prop_assert!((q.p.unwrap() - p.p.unwrap()).abs() <= 1e-12 * p.p.unwrap().max(1e-300));
        }
    }
}
