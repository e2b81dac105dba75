//! Special functions the models need.

use crate::FitError;

/// ln Γ(x) for x > 0 (from `libm`, a port of the well-tested musl implementation).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// ln(e^a + e^b) without overflow.
pub(crate) fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// The Gauss hypergeometric function ₂F₁(a, b; c; z) for 0 ≤ z < 1 by its power series,
/// summed until a term no longer changes the sum.
pub(crate) fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64, FitError> {
    if !(0.0..1.0).contains(&z) {
        return Err(FitError::NotFinite {
            what: "hypergeometric argument outside [0, 1)",
        });
    }
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 0..1_000_000u32 {
        let n = f64::from(n);
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        let next = sum + term;
        if next == sum || !next.is_finite() {
            return if next.is_finite() {
                Ok(next)
            } else {
                Err(FitError::NotFinite {
                    what: "hypergeometric series",
                })
            };
        }
        sum = next;
    }
    Err(FitError::NotFinite {
        what: "hypergeometric series did not converge",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        // 2F1(1, 1; 2; z) = -ln(1 - z) / z
        for z in [0.0001, 0.3, 0.9] {
            let expected: f64 = -(1.0f64 - z).ln() / z;
            assert!(
                (hyp2f1(1.0, 1.0, 2.0, z).unwrap() - expected).abs() < 1e-10,
                "{z}"
            );
        }
        // 2F1(a, b; b; z) = (1 - z)^-a
        assert!((hyp2f1(2.5, 3.0, 3.0, 0.4).unwrap() - 0.6f64.powf(-2.5)).abs() < 1e-10);
        assert!(hyp2f1(1.0, 1.0, 2.0, 1.0).is_err());
        assert_eq!(
            log_add_exp(f64::NEG_INFINITY, f64::NEG_INFINITY),
            f64::NEG_INFINITY
        );
        assert!((log_add_exp(0.0, 0.0) - 2f64.ln()).abs() < 1e-15);
    }
}
