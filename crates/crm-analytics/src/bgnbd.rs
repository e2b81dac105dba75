//! The BG/NBD model of Fader, Hardie and Lee (2005), "Counting your customers the easy
//! way: an alternative to the Pareto/NBD model", Marketing Science 24(2), 275-284.
//!
//! While alive, a customer buys at rate λ (Poisson), λ ~ Gamma(r, α) across customers;
//! after each purchase the customer drops out with probability p, p ~ Beta(a, b).

use serde::{Deserialize, Serialize};

use crate::fit::{maximise_warm, LogLikelihood};
use crate::special::{digamma, hyp2f1, ln_gamma, log_add_exp};
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
        let opt = maximise_warm(
            data,
            Grouped::new,
            &[1.0, 1.0, 1.0, 1.0],
            "BG/NBD likelihood",
        )?;
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

/// The data prepared for fast likelihood evaluation: identical observations grouped, and
/// each group pointing at its distinct `x`, `t_x` and `T`, so that terms depending on one of
/// them alone (log-gammas, digammas, logarithms) are computed once per distinct value and
/// evaluation, not once per customer.
struct Grouped {
    xs: Vec<f64>,
    t_xs: Vec<f64>,
    ts: Vec<f64>,
    /// (index into xs, index into t_xs, index into ts, customers)
    groups: Vec<(u32, u32, u32, f64)>,
}

/// The index of `v` in the sorted distinct values `sorted`.
fn position(sorted: &[f64], v: f64) -> u32 {
    sorted.partition_point(|x| *x < v) as u32
}

fn sorted_distinct(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

impl Grouped {
    fn new(data: &[Observation]) -> Self {
        // Sorting and counting runs is cheaper than hashing every observation.
        let mut rows: Vec<(f64, f64, f64)> = data.iter().map(|o| (o.x, o.t_x, o.t)).collect();
        rows.sort_unstable_by(|p, q| {
            p.0.total_cmp(&q.0)
                .then(p.1.total_cmp(&q.1))
                .then(p.2.total_cmp(&q.2))
        });
        let mut runs: Vec<((f64, f64, f64), f64)> = Vec::new();
        for row in rows {
            match runs.last_mut() {
                Some((last, n)) if *last == row => *n += 1.0,
                _ => runs.push((row, 1.0)),
            }
        }
        let xs = sorted_distinct(runs.iter().map(|r| r.0 .0));
        let t_xs = sorted_distinct(runs.iter().map(|r| r.0 .1));
        let ts = sorted_distinct(runs.iter().map(|r| r.0 .2));
        let groups = runs
            .iter()
            .map(|((x, t_x, t), n)| {
                (
                    position(&xs, *x),
                    position(&t_xs, *t_x),
                    position(&ts, *t),
                    *n,
                )
            })
            .collect();
        Grouped {
            xs,
            t_xs,
            ts,
            groups,
        }
    }
}

impl LogLikelihood for Grouped {
    /// Per customer, LL = A + ln(e^B + [x > 0] e^C) with
    /// A = lnΓ(r+x) − lnΓ(r) + r ln α + lnΓ(a+b) + lnΓ(b+x) − lnΓ(b) − lnΓ(a+b+x),
    /// B = −(r+x) ln(α+T), C = ln a − ln(b+x−1) − (r+x) ln(α+t_x);
    /// the gradient weighs the B and C branches by their shares w_B, w_C of the sum.
    fn value_and_gradient(&self, p: &[f64]) -> (f64, Vec<f64>) {
        let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
        let common = -ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) - ln_gamma(b);
        let (dr0, da0, db0) = (
            -digamma(r) + alpha.ln(),
            digamma(a + b),
            digamma(a + b) - digamma(b),
        );
        // Per distinct x: A, dA/dr, dA/da, dA/db, and ln a − ln(b+x−1).
        let per_x: Vec<[f64; 5]> = self
            .xs
            .iter()
            .map(|&x| {
                let lg = ln_gamma(r + x) + ln_gamma(b + x) - ln_gamma(a + b + x);
                let c = if x > 0.0 {
                    a.ln() - (b + x - 1.0).ln()
                } else {
                    f64::NEG_INFINITY
                };
                [
                    common + lg,
                    dr0 + digamma(r + x),
                    da0 - digamma(a + b + x),
                    db0 + digamma(b + x) - digamma(a + b + x),
                    c,
                ]
            })
            .collect();
        // Per distinct time: ln(α + t) and 1 / (α + t).
        let logs = |v: &[f64]| -> Vec<(f64, f64)> {
            v.iter()
                .map(|t| ((alpha + t).ln(), 1.0 / (alpha + t)))
                .collect()
        };
        let (at_tx, at_t) = (logs(&self.t_xs), logs(&self.ts));
        let (mut ll, mut g) = (0.0, [0.0; 4]);
        for &(xi, txi, ti, n) in &self.groups {
            let x = self.xs[xi as usize];
            let [base, d_r, d_a, d_b, c0] = per_x[xi as usize];
            let ((ln_t, inv_t), (ln_tx, inv_tx)) = (at_t[ti as usize], at_tx[txi as usize]);
            let bterm = -(r + x) * ln_t;
            if x == 0.0 {
                ll += n * (base + bterm);
                g[0] += n * (d_r - ln_t);
                g[1] += n * (r / alpha - r * inv_t);
                g[2] += n * d_a;
                g[3] += n * d_b;
                continue;
            }
            // ln(e^B + e^C) = B + softplus(C − B); the C branch's share is sigmoid(C − B).
            let d = c0 - (r + x) * ln_tx - bterm;
            let e = (-d.abs()).exp();
            let softplus = d.max(0.0) + e.ln_1p();
            let w_c = if d >= 0.0 {
                1.0 / (1.0 + e)
            } else {
                e / (1.0 + e)
            };
            let w_b = 1.0 - w_c;
            ll += n * (base + bterm + softplus);
            g[0] += n * (d_r - w_b * ln_t - w_c * ln_tx);
            g[1] += n * (r / alpha - (r + x) * (w_b * inv_t + w_c * inv_tx));
            g[2] += n * (d_a + w_c / a);
            g[3] += n * (d_b - w_c / (b + x - 1.0));
        }
        (ll, g.to_vec())
    }

    fn weight(&self) -> f64 {
        self.groups.iter().map(|g| g.3).sum()
    }
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
    fn gradient_matches_finite_differences() {
        let data: Vec<Observation> = (0..40)
            .map(|i| {
                let x = f64::from(i % 5);
                let t = 20.0 + f64::from(i % 7);
                Observation {
                    x,
                    t_x: if x > 0.0 {
                        t * 0.1 * f64::from(i % 9 + 1)
                    } else {
                        0.0
                    },
                    t,
                }
            })
            .collect();
        let g = Grouped::new(&data);
        let p = [0.4, 3.0, 0.8, 2.5];
        let (ll, grad) = g.value_and_gradient(&p);
        let direct: f64 = data
            .iter()
            .map(|o| {
                BgNbd {
                    r: p[0],
                    alpha: p[1],
                    a: p[2],
                    b: p[3],
                }
                .log_likelihood(o)
            })
            .sum();
        assert!((ll - direct).abs() < 1e-9 * direct.abs());
        for i in 0..4 {
            let h = 1e-6 * p[i];
            let (mut up, mut down) = (p, p);
            up[i] += h;
            down[i] -= h;
            let numeric = (g.value_and_gradient(&up).0 - g.value_and_gradient(&down).0) / (2.0 * h);
            assert!(
                (grad[i] - numeric).abs() < 1e-4 * (1.0 + numeric.abs()),
                "d/dp{i}: {} vs {numeric}",
                grad[i]
            );
        }
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
