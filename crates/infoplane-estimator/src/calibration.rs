//! Temperature ε of the soft assignment (METHOD.md §1, the paper's eq. 7): ε solves
//! KL(vMF(κ = 1/ε) on S^{d−1} ‖ uniform) = ln n.

use crate::EstimatorError;

/// How ε is chosen. Every result records the mode and the value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Calibration {
    /// Brent root of the Amos lower bound of the KL on [1e-5, 1] (soft_h 0.1.5's `find_eps`).
    FindEps,
    /// Brent root of the exact KL (Bessel form), evaluated without overflow at any width.
    Exact,
    /// ε = 1/√(2 d ln n).
    LeadingOrder,
    /// A value given by the user.
    Fixed(f64),
}

impl Calibration {
    /// The spelling used on the command line and in results: `find-eps`, `exact`,
    /// `leading-order`, `fixed:EPS`.
    pub fn name(&self) -> String {
        match self {
            Calibration::FindEps => "find-eps".into(),
            Calibration::Exact => "exact".into(),
            Calibration::LeadingOrder => "leading-order".into(),
            Calibration::Fixed(e) => format!("fixed:{e}"),
        }
    }

    pub fn parse(text: &str) -> Result<Self, EstimatorError> {
        match text {
            "find-eps" => Ok(Calibration::FindEps),
            "exact" => Ok(Calibration::Exact),
            "leading-order" => Ok(Calibration::LeadingOrder),
            _ => match text.strip_prefix("fixed:").map(str::parse::<f64>) {
                Some(Ok(e)) if e.is_finite() && e > 0.0 => Ok(Calibration::Fixed(e)),
                _ => Err(EstimatorError::Calibration(format!(
                    "unknown calibration {text:?}: expected find-eps, exact, leading-order or fixed:EPS with EPS > 0"
                ))),
            },
        }
    }

    /// ε for `n_bins` reference points in dimension `dim`.
    pub fn epsilon(&self, n_bins: usize, dim: usize) -> Result<f64, EstimatorError> {
        if n_bins < 2 {
            return Err(EstimatorError::Calibration(format!("n_bins must be ≥ 2, got {n_bins}")));
        }
        let target = (n_bins as f64).ln();
        let d = dim as f64;
        match *self {
            Calibration::Fixed(e) => Ok(e),
            Calibration::LeadingOrder => Ok(1.0 / (2.0 * d * target).sqrt()),
            Calibration::FindEps => {
                if dim <= 2 {
                    return Err(EstimatorError::Calibration(format!(
                        "find-eps needs dim > 2 (the Amos bound is singular at d = 2), got {dim}"
                    )));
                }
                solve(|e| kl_lower_bound(e, d) - target, dim)
            }
            Calibration::Exact => {
                if dim < 2 {
                    return Err(EstimatorError::Calibration(format!("exact needs dim ≥ 2, got {dim}")));
                }
                solve(|e| kl_exact(e, d) - target, dim)
            }
        }
    }
}

const BRACKET: (f64, f64) = (1e-5, 1.0);

fn solve(f: impl Fn(f64) -> f64, dim: usize) -> Result<f64, EstimatorError> {
    brentq(&f, BRACKET.0, BRACKET.1, 1e-12, 1e-10, 100).ok_or_else(|| {
        EstimatorError::Calibration(format!(
            "no temperature in [{}, {}] reaches KL = ln n at dim {dim}",
            BRACKET.0, BRACKET.1
        ))
    })
}

/// Amos bound G(α, β, κ) = κ / (α + √(κ² + β²)).
fn amos_g(alpha: f64, beta: f64, kappa: f64) -> f64 {
    kappa / (alpha + (kappa * kappa + beta * beta).sqrt())
}

/// Upper Amos envelope of ln Z_d(ε) (soft_h's `Phi_plus`).
fn phi_plus(eps: f64, d: f64) -> f64 {
    let nu = d / 2.0 - 1.0;
    let inv = 1.0 / eps;
    let root = (inv * inv + nu * nu).sqrt();
    root - nu + nu * ((d - 2.0) / (nu + root)).ln()
}

/// The lower bound of KL(vMF_ε ‖ U) whose root soft_h's `find_eps` returns.
pub fn kl_lower_bound(eps: f64, d: f64) -> f64 {
    amos_g(d / 2.0, d / 2.0, 1.0 / eps) / eps - phi_plus(eps, d)
}

/// The exact KL(vMF_ε ‖ U) = κ A_ν(κ) − ln Z with ν = d/2 − 1, κ = 1/ε.
///
/// With the series I_ν(κ) = (κ/2)^ν / Γ(ν+1) · S, S = Σ_k u_k, u_0 = 1,
/// u_{k+1} = u_k (κ²/4) / ((k+1)(k+ν+1)), the terms ν ln(2ε) + ln Γ(d/2) of ln Z cancel exactly
/// against the prefactor, leaving KL = κ A_ν(κ) − ln S, and A_ν = I_{ν+1}/I_ν =
/// (κ/2) Σ_k u_k/(k+ν+1) / Σ_k u_k. The sum is taken in log space around its largest term, so
/// nothing overflows at any width (d = 16384 and κ = 10⁵ included).
pub fn kl_exact(eps: f64, d: f64) -> f64 {
    let nu = d / 2.0 - 1.0;
    let kappa = 1.0 / eps;
    let log_q = 2.0 * (kappa / 2.0).ln();
    // Online log-sum-exp of ln u_k, and of ln u_k − ln(k+ν+1) for the ratio.
    let (mut log_u, mut max) = (0.0f64, 0.0f64);
    let (mut s, mut t) = (0.0f64, 0.0f64);
    let mut k = 0u64;
    loop {
        let kf = k as f64;
        if log_u > max {
            let scale = (max - log_u).exp();
            s *= scale;
            t *= scale;
            max = log_u;
        }
        let w = (log_u - max).exp();
        s += w;
        t += w / (kf + nu + 1.0);
        let step = log_q - (kf + 1.0).ln() - (kf + nu + 1.0).ln();
        log_u += step;
        k += 1;
        // Past the peak (terms now shrink) and negligible: stop.
        if step < 0.0 && log_u < max - 40.0 {
            break;
        }
    }
    let amos = (kappa / 2.0) * t / s;
    kappa * amos - (max + s.ln())
}

/// Brent's method exactly as scipy's `brentq` (scipy/optimize/Zeros/brentq.c), so the root matches
/// soft_h's to the last few ulps. Returns None when the bracket has no sign change or it does not
/// converge.
fn brentq(f: &impl Fn(f64) -> f64, xa: f64, xb: f64, xtol: f64, rtol: f64, iter: usize) -> Option<f64> {
    let (mut xpre, mut xcur) = (xa, xb);
    let (mut xblk, mut fblk, mut spre, mut scur) = (0.0, 0.0, 0.0, 0.0);
    let mut fpre = f(xpre);
    let mut fcur = f(xcur);
    if !fpre.is_finite() || !fcur.is_finite() {
        return None;
    }
    if fpre == 0.0 {
        return Some(xpre);
    }
    if fcur == 0.0 {
        return Some(xcur);
    }
    if fpre.is_sign_negative() == fcur.is_sign_negative() {
        return None;
    }
    for _ in 0..iter {
        if fpre != 0.0 && fcur != 0.0 && fpre.is_sign_negative() != fcur.is_sign_negative() {
            xblk = xpre;
            fblk = fpre;
            spre = xcur - xpre;
            scur = spre;
        }
        if fblk.abs() < fcur.abs() {
            xpre = xcur;
            xcur = xblk;
            xblk = xpre;
            fpre = fcur;
            fcur = fblk;
            fblk = fpre;
        }
        let delta = (xtol + rtol * xcur.abs()) / 2.0;
        let sbis = (xblk - xcur) / 2.0;
        if fcur == 0.0 || sbis.abs() < delta {
            return Some(xcur);
        }
        if spre.abs() > delta && fcur.abs() < fpre.abs() {
            let stry = if xpre == xblk {
                -fcur * (xcur - xpre) / (fcur - fpre)
            } else {
                let dpre = (fpre - fcur) / (xpre - xcur);
                let dblk = (fblk - fcur) / (xblk - xcur);
                -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            };
            if 2.0 * stry.abs() < spre.abs().min(3.0 * sbis.abs() - delta) {
                spre = scur;
                scur = stry;
            } else {
                spre = sbis;
                scur = sbis;
            }
        } else {
            spre = sbis;
            scur = sbis;
        }
        xpre = xcur;
        fpre = fcur;
        if scur.abs() > delta {
            xcur += scur;
        } else {
            xcur += if sbis > 0.0 { delta } else { -delta };
        }
        fcur = f(xcur);
        if !fcur.is_finite() {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(mode: Calibration, n: usize, d: usize, expected: f64, digits_rel: f64) {
        let eps = mode.epsilon(n, d).unwrap();
        let rel = (eps - expected).abs() / expected;
        assert!(rel < digits_rel, "{} n={n} d={d}: {eps} vs {expected} (rel {rel:e})", mode.name());
    }

    /// The check values printed in METHOD.md §1 (given to 5 significant digits).
    #[test]
    fn method_check_values() {
        for (d, e) in [(64, 0.036230), (576, 0.013541), (768, 0.011768), (2048, 0.0072530), (4096, 0.0051386)] {
            check(Calibration::FindEps, 100, d, e, 5e-5);
        }
        check(Calibration::FindEps, 50, 4096, 0.005577, 1e-4);
        for (d, e) in [(8, 0.048079), (16, 0.054033), (32, 0.047209), (64, 0.037050), (128, 0.027611), (256, 0.020049)] {
            check(Calibration::Exact, 100, d, e, 5e-5);
        }
        check(Calibration::LeadingOrder, 100, 768, 0.011890, 5e-5);
    }

    #[test]
    fn exact_is_finite_and_between_the_bounds_at_llm_widths() {
        for d in [512usize, 1024, 2048, 4096, 8192, 16384] {
            let exact = Calibration::Exact.epsilon(100, d).unwrap();
            let lower = Calibration::FindEps.epsilon(100, d).unwrap();
            assert!(exact.is_finite() && exact > 0.0);
            // The lower bound of the KL reaches ln n at a smaller ε than the true KL does.
            assert!(lower <= exact * (1.0 + 1e-9), "d={d}: find-eps {lower} > exact {exact}");
            assert!(exact / lower < 1.2, "d={d}: exact {exact} far from find-eps {lower}");
        }
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(Calibration::FindEps.epsilon(100, 2).is_err());
        assert!(Calibration::FindEps.epsilon(1, 64).is_err());
        assert!(Calibration::parse("fixed:-1").is_err());
        assert!(Calibration::parse("nope").is_err());
        assert_eq!(Calibration::parse("fixed:0.05").unwrap(), Calibration::Fixed(0.05));
    }
}
