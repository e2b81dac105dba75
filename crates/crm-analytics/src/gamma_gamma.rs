//! The Gamma-Gamma spend model, as used by Fader, Hardie and Lee (2005), "RFM and CLV:
//! using iso-value curves for customer base analysis", Journal of Marketing Research 42(4).
//!
//! A customer's purchase amounts are Gamma(p, ν) around their own mean, with ν ~ Gamma(q, γ)
//! across customers. Fitted on repeat customers' mean spend per repeat purchase.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::fit::{maximise_warm, LogLikelihood};
use crate::special::{digamma, ln_gamma};
use crate::FitError;

/// A repeat customer's spend: `x` repeat purchases with mean amount `mean`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendObservation {
    /// Repeat purchase occasions (at least 1).
    pub x: f64,
    /// Mean amount per repeat purchase occasion (positive).
    pub mean: f64,
}

/// The three Gamma-Gamma parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    /// Shape of the per-purchase amount distribution.
    pub p: f64,
    /// Shape of the distribution of the scale across customers.
    pub q: f64,
    /// Scale of the distribution of the scale across customers.
    pub gamma: f64,
}

/// A fitted Gamma-Gamma model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaFit {
    /// The maximum-likelihood parameters.
    pub params: GammaGamma,
    /// The log-likelihood at the optimum.
    pub log_likelihood: f64,
    /// Repeat customers fitted.
    pub customers: usize,
    /// Optimiser iterations used.
    pub iterations: u64,
}

impl GammaGamma {
    /// The log-likelihood of one customer's mean spend.
    pub fn log_likelihood(&self, o: &SpendObservation) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let px = p * o.x;
        ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q)
            + q * gamma.ln()
            + (px - 1.0) * o.mean.ln()
            + px * o.x.ln()
            - (px + q) * (gamma + o.mean * o.x).ln()
    }

    /// Fits the model by maximum likelihood on repeat customers.
    pub fn fit(data: &[SpendObservation]) -> Result<GammaGammaFit, FitError> {
        const MIN_CUSTOMERS: usize = 10;
        if data.len() < MIN_CUSTOMERS {
            return Err(FitError::TooFewCustomers {
                got: data.len(),
                need: MIN_CUSTOMERS,
            });
        }
        for (i, o) in data.iter().enumerate() {
            if !(o.x >= 1.0 && o.x.is_finite() && o.mean > 0.0 && o.mean.is_finite()) {
                return Err(FitError::BadObservation {
                    index: i,
                    reason: format!("need x >= 1 and a positive finite mean, got {o:?}"),
                });
            }
        }
        let opt = maximise_warm(
            data,
            Prepared::new,
            &[1.0, 1.0, 1.0],
            "Gamma-Gamma likelihood",
        )?;
        Ok(GammaGammaFit {
            params: GammaGamma {
                p: opt.params[0],
                q: opt.params[1],
                gamma: opt.params[2],
            },
            log_likelihood: opt.log_likelihood,
            customers: data.len(),
            iterations: opt.iterations,
        })
    }

    /// The population mean spend per purchase, `p γ / (q − 1)` (defined for q > 1).
    pub fn population_mean(&self) -> Option<f64> {
        (self.q > 1.0).then(|| self.p * self.gamma / (self.q - 1.0))
    }

    /// Expected mean spend per purchase of a customer with `x` repeat purchases of mean
    /// `mean` (with `x = 0`, the population mean). `None` when q ≤ 1.
    pub fn expected_spend(&self, x: f64, mean: f64) -> Option<f64> {
        let GammaGamma { p, q, gamma } = *self;
        if q <= 1.0 {
            return None;
        }
        let v = p * (gamma + x * mean) / (p * x + q - 1.0);
        v.is_finite().then_some(v)
    }
}

/// The data prepared for fast evaluation: customers grouped by `x` (terms in `x` alone are
/// computed once per distinct `x`), with `ln m` computed once.
struct Prepared {
    by_x: Vec<SameX>,
}

/// Customers with the same `x`: (x, ln x, each customer's (m, ln m)).
type SameX = (f64, f64, Vec<(f64, f64)>);

impl Prepared {
    fn new(data: &[SpendObservation]) -> Self {
        let mut by_x: BTreeMap<u64, Vec<(f64, f64)>> = BTreeMap::new();
        for o in data {
            by_x.entry(o.x.to_bits())
                .or_default()
                .push((o.mean, o.mean.ln()));
        }
        let by_x = by_x
            .into_iter()
            .map(|(bits, ms)| {
                let x = f64::from_bits(bits);
                (x, x.ln(), ms)
            })
            .collect();
        Prepared { by_x }
    }
}

impl LogLikelihood for Prepared {
    fn value_and_gradient(&self, v: &[f64]) -> (f64, Vec<f64>) {
        let (p, q, gamma) = (v[0], v[1], v[2]);
        let (ln_g, lg_q, dg_q) = (gamma.ln(), ln_gamma(q), digamma(q));
        let (mut ll, mut g) = (0.0, [0.0; 3]);
        for (x, ln_x, customers) in &self.by_x {
            let (x, ln_x) = (*x, *ln_x);
            let px = p * x;
            let n = customers.len() as f64;
            let (dg_pxq, dg_px) = (digamma(px + q), digamma(px));
            ll += n * (ln_gamma(px + q) - ln_gamma(px) - lg_q + q * ln_g + px * ln_x);
            g[0] += n * x * (dg_pxq - dg_px + ln_x);
            g[1] += n * (dg_pxq - dg_q + ln_g);
            g[2] += n * q / gamma;
            for &(m, ln_m) in customers {
                let s = gamma + m * x;
                let ln_s = s.ln();
                ll += (px - 1.0) * ln_m - (px + q) * ln_s;
                g[0] += x * (ln_m - ln_s);
                g[1] -= ln_s;
                g[2] -= (px + q) / s;
            }
        }
        (ll, g.to_vec())
    }

    fn weight(&self) -> f64 {
        self.by_x.iter().map(|(_, _, c)| c.len() as f64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_spend_shrinks_towards_the_population_mean() {
        let m = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let pop = m.population_mean().unwrap();
        assert!((m.expected_spend(0.0, 0.0).unwrap() - pop).abs() < 1e-9);
        let one = m.expected_spend(1.0, 100.0).unwrap();
        let many = m.expected_spend(20.0, 100.0).unwrap();
        assert!(pop < one && one < many && many < 100.0);
        assert!(GammaGamma { q: 0.9, ..m }
            .expected_spend(1.0, 1.0)
            .is_none());
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let data: Vec<SpendObservation> = (0..30)
            .map(|i| SpendObservation {
                x: f64::from(i % 4 + 1),
                mean: 5.0 + f64::from(i * 7 % 40),
            })
            .collect();
        let prepared = Prepared::new(&data);
        let v = [5.0, 3.5, 14.0];
        let (ll, grad) = prepared.value_and_gradient(&v);
        let m = GammaGamma {
            p: v[0],
            q: v[1],
            gamma: v[2],
        };
        let direct: f64 = data.iter().map(|o| m.log_likelihood(o)).sum();
        assert!((ll - direct).abs() < 1e-9 * direct.abs());
        for i in 0..3 {
            let h = 1e-6 * v[i];
            let (mut up, mut down) = (v, v);
            up[i] += h;
            down[i] -= h;
            let numeric = (prepared.value_and_gradient(&up).0
                - prepared.value_and_gradient(&down).0)
                / (2.0 * h);
            assert!(
                (grad[i] - numeric).abs() < 1e-4 * (1.0 + numeric.abs()),
                "d/dv{i}: {} vs {numeric}",
                grad[i]
            );
        }
    }

    #[test]
    fn bad_spend_data_is_a_clear_error() {
        let mut data = vec![SpendObservation { x: 2.0, mean: 10.0 }; 20];
        data[4].mean = 0.0;
        assert!(matches!(
            GammaGamma::fit(&data),
            Err(FitError::BadObservation { index: 4, .. })
        ));
        assert!(matches!(
            GammaGamma::fit(&data[..5]),
            Err(FitError::TooFewCustomers { .. })
        ));
    }
}
