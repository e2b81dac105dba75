//! Special functions the models need.

use crate::FitError;

/// ln Γ(x) for x > 0 (from `libm`, a port of the well-tested musl implementation).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// The digamma function ψ(x) = d/dx ln Γ(x) for x > 0: the recurrence ψ(x) = ψ(x + 1) − 1/x
/// up to x ≥ 10, then the asymptotic series (truncation error below 1e-13 there).
pub(crate) fn digamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let series = inv2
        * (1.0 / 12.0
            - inv2
                * (1.0 / 120.0
                    - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0)))));
    shift + x.ln() - 0.5 * inv - series
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
    fn digamma_matches_known_values_and_ln_gamma() {
        let euler = 0.577_215_664_901_532_9;
        assert!(
            (digamma(1.0) + euler).abs() < 1e-12,
            "{}",
            digamma(1.0) + euler
        );
        assert!((digamma(0.5) + euler + 2.0 * 2f64.ln()).abs() < 1e-12);
        for x in [0.05f64, 0.3, 1.7, 4.2, 9.9, 55.0, 1234.5] {
            let h = 1e-5 * x.max(1.0);
            let numeric = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!(
                (digamma(x) - numeric).abs() < 1e-6 * (1.0 + digamma(x).abs()),
                "{x}"
            );
        }
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
