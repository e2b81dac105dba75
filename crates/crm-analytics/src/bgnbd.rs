//! The BG/NBD model of Fader, Hardie and Lee (2005), "Counting your customers the easy
//! way: an alternative to the Pareto/NBD model", Marketing Science 24(2), 275-284.
//!
//! While alive, a customer buys at rate λ (Poisson), λ ~ Gamma(r, α) across customers;
//! after each purchase the customer drops out with probability p, p ~ Beta(a, b).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::fit::maximise;
use crate::special::{hyp2f1, ln_gamma, log_add_exp};
use crate::FitError;

/// One customer's calibration figures: `x` repeat purchases, the last at `t_x`, observed
/// for `t` time units since the first purchase.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Repeat purchase occasions.
    pub x: f64,
    /// Time of the last purchase since the first (0 when `x` is 0).
    pub t_x: f64,
    /// Time observed since the first purchase (`T`).
    pub t: f64,
}

impl Observation {
    fn check(&self, i: usize) -> Result<(), FitError> {
        let ok = self.x.is_finite()
            && self.x >= 0.0
            && self.x.fract() == 0.0
            && self.t_x >= 0.0
            && self.t >= self.t_x
            && self.t.is_finite()
            && (self.x > 0.0 || self.t_x == 0.0);
        if ok {
            Ok(())
        } else {
            Err(FitError::BadObservation {
                index: i,
                reason: format!(
                    "need whole x >= 0, 0 <= t_x <= T (t_x = 0 when x = 0), got {self:?}"
                ),
            })
        }
    }
}

/// The four BG/NBD parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Scale of the purchase-rate distribution (in the fit's time unit).
    pub alpha: f64,
    /// First shape of the drop-out distribution.
    pub a: f64,
    /// Second shape of the drop-out distribution.
    pub b: f64,
}

/// A fitted BG/NBD model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BgNbdFit {
    /// The maximum-likelihood parameters.
    pub params: BgNbd,
    /// The log-likelihood at the optimum (summed over customers).
    pub log_likelihood: f64,
    /// Customers fitted.
    pub customers: usize,
    /// Optimiser iterations used.
    pub iterations: u64,
}

impl BgNbd {
    /// The log-likelihood of one observation.
    pub fn log_likelihood(&self, o: &Observation) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = o.x;
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
        let a3 = -(r + x) * (alpha + o.t).ln();
        let a4 = if x > 0.0 {
            a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + o.t_x).ln()
        } else {
            f64::NEG_INFINITY
        };
        a1 + a2 + log_add_exp(a3, a4)
    }

    /// Fits the model by maximum likelihood. Identical observations are grouped, so the
    /// cost grows with the number of distinct `(x, t_x, T)`, not of customers.
    pub fn fit(data: &[Observation]) -> Result<BgNbdFit, FitError> {
        const MIN_CUSTOMERS: usize = 10;
        if data.len() < MIN_CUSTOMERS {
            return Err(FitError::TooFewCustomers {
                got: data.len(),
                need: MIN_CUSTOMERS,
            });
        }
        for (i, o) in data.iter().enumerate() {
            o.check(i)?;
        }
        if data.iter().all(|o| o.x == 0.0) {
            return Err(FitError::NoRepeatPurchases);
        }
        let groups = group(data);
        let ll = |p: &[f64]| {
            let m = BgNbd {
                r: p[0],
                alpha: p[1],
                a: p[2],
                b: p[3],
            };
            groups
                .iter()
                .map(|(o, n)| n * m.log_likelihood(o))
                .sum::<f64>()
        };
        let opt = maximise(ll, &[1.0, 1.0, 1.0, 1.0], "BG/NBD likelihood")?;
        let params = BgNbd {
            r: opt.params[0],
            alpha: opt.params[1],
            a: opt.params[2],
            b: opt.params[3],
        };
        Ok(BgNbdFit {
            params,
            log_likelihood: opt.log_likelihood,
            customers: data.len(),
            iterations: opt.iterations,
        })
    }

    /// The probability that a customer with this history is still alive at `T`.
    pub fn p_alive(&self, o: &Observation) -> f64 {
        if o.x == 0.0 {
            return 1.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let log_ratio = (r + o.x) * ((alpha + o.t).ln() - (alpha + o.t_x).ln());
        let odds = (a / (b + o.x - 1.0)) * log_ratio.exp();
        1.0 / (1.0 + odds)
    }

    /// Expected purchases in the next `t` units by a customer with this history
    /// (equation 10 of the paper).
    pub fn expected_purchases(&self, t: f64, o: &Observation) -> Result<f64, FitError> {
        let BgNbd { r, alpha, a, b } = *self;
        if t <= 0.0 {
            return Ok(0.0);
        }
        if (a - 1.0).abs() < 1e-12 {
            return Err(FitError::NotFinite {
                what: "expected purchases are undefined at a = 1",
            });
        }
        let x = o.x;
        let z = t / (alpha + o.t + t);
        let f = hyp2f1(r + x, b + x, a + b + x - 1.0, z)?;
        let head = (a + b + x - 1.0) / (a - 1.0);
        let decay = ((alpha + o.t) / (alpha + o.t + t)).powf(r + x);
        let numerator = head * (1.0 - decay * f);
        let denominator = if x > 0.0 {
            1.0 + (a / (b + x - 1.0)) * ((alpha + o.t) / (alpha + o.t_x)).powf(r + x)
        } else {
            1.0
        };
        let value = numerator / denominator;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(FitError::NotFinite {
                what: "expected purchases",
            })
        }
    }
}

/// Groups identical observations: (observation, how many).
fn group(data: &[Observation]) -> Vec<(Observation, f64)> {
    let mut counts: HashMap<[u64; 3], (Observation, f64)> = HashMap::new();
    for o in data {
        counts
            .entry([o.x.to_bits(), o.t_x.to_bits(), o.t.to_bits()])
            .or_insert((*o, 0.0))
            .1 += 1.0;
    }
    let mut groups: Vec<_> = counts.into_values().collect();
    // A fixed order keeps the floating-point sum, and so the fit, reproducible.
    groups.sort_by(|p, q| {
        (p.0.x, p.0.t_x, p.0.t)
            .partial_cmp(&(q.0.x, q.0.t_x, q.0.t))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published parameters for CDNOW (Fader, Hardie and Lee 2005).
    const PAPER: BgNbd = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };

    #[test]
    fn paper_conditional_expectation() {
        let o = Observation {
            x: 2.0,
            t_x: 30.43,
            t: 38.86,
        };
        let e = PAPER.expected_purchases(39.0, &o).unwrap();
        assert!((e - 1.226).abs() < 0.005, "{e}");
        assert_eq!(PAPER.expected_purchases(0.0, &o).unwrap(), 0.0);
    }

    #[test]
    fn p_alive_is_one_without_repeat_purchases_and_falls_with_silence() {
        let fresh = Observation {
            x: 0.0,
            t_x: 0.0,
            t: 30.0,
        };
        assert_eq!(PAPER.p_alive(&fresh), 1.0);
        let recent = PAPER.p_alive(&Observation {
            x: 3.0,
            t_x: 29.0,
            t: 30.0,
        });
        let silent = PAPER.p_alive(&Observation {
            x: 3.0,
            t_x: 2.0,
            t: 30.0,
        });
        assert!(recent > silent && silent > 0.0 && recent < 1.0);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let few = vec![
            Observation {
                x: 1.0,
                t_x: 1.0,
                t: 2.0
            };
            3
        ];
        assert!(matches!(
            BgNbd::fit(&few),
            Err(FitError::TooFewCustomers { got: 3, .. })
        ));
        let none = vec![
            Observation {
                x: 0.0,
                t_x: 0.0,
                t: 2.0
            };
            30
        ];
        assert!(matches!(
            BgNbd::fit(&none),
            Err(FitError::NoRepeatPurchases)
        ));
        let mut bad = vec![
            Observation {
                x: 1.0,
                t_x: 1.0,
                t: 2.0
            };
            30
        ];
        bad[7].t_x = 5.0;
        assert!(matches!(
            BgNbd::fit(&bad),
            Err(FitError::BadObservation { index: 7, .. })
        ));
        bad[7] = Observation {
            x: f64::NAN,
            t_x: 0.0,
            t: 1.0,
        };
        assert!(matches!(
            BgNbd::fit(&bad),
            Err(FitError::BadObservation { index: 7, .. })
        ));
    }
}
