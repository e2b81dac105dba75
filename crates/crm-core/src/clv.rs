//! Customer-value results as data: fitted value models and per-customer value scores.
//!
//! The fitting itself lives in the `crm-analytics` crate (it needs numerical code); the
//! core only defines what is stored, so rules, segments and hosts can read the scores
//! (`p_alive < 0.3 and predicted_clv > 500`: valuable and probably lapsing).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::value::Money;
use crate::value_class::{AbcClass, RfmSegment};

/// Parameters of a fitted BG/NBD purchase model (Fader, Hardie and Lee 2005).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PurchaseModel {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Scale of the purchase-rate distribution, in the model's time unit.
    pub alpha: f64,
    /// First shape of the drop-out distribution.
    pub a: f64,
    /// Second shape of the drop-out distribution.
    pub b: f64,
    /// Log-likelihood at the fit.
    pub log_likelihood: f64,
}

/// Parameters of a fitted Gamma-Gamma spend model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendModel {
    /// Shape of the per-purchase amount distribution.
    pub p: f64,
    /// Shape of the distribution of the scale across customers.
    pub q: f64,
    /// Scale of the distribution of the scale across customers.
    pub gamma: f64,
    /// Log-likelihood at the fit.
    pub log_likelihood: f64,
}

/// A tenant's fitted customer-value model, stored with its fit date.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueModel {
    /// When it was fitted.
    pub fitted_at: DateTime<Utc>,
    /// Last day of the calibration period.
    pub calibration_end: NaiveDate,
    /// Days in the models' time unit (1 or 7).
    pub unit_days: u32,
    /// Customers the purchase model was fitted on.
    pub customers: u64,
    /// Repeat customers the spend model was fitted on.
    pub repeat_customers: u64,
    /// The purchase model.
    pub purchases: PurchaseModel,
    /// The spend model.
    pub spend: SpendModel,
}

impl ValueModel {
    /// Checks that every figure is finite and every parameter positive.
    pub fn validate(&self) -> Result<(), Error> {
        let positive = [
            ("purchases.r", self.purchases.r),
            ("purchases.alpha", self.purchases.alpha),
            ("purchases.a", self.purchases.a),
            ("purchases.b", self.purchases.b),
            ("spend.p", self.spend.p),
            ("spend.q", self.spend.q),
            ("spend.gamma", self.spend.gamma),
        ];
        for (field, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::validation(
                    field,
                    format!("must be positive and finite, got {v}"),
                ));
            }
        }
        for (field, v) in [
            ("purchases.log_likelihood", self.purchases.log_likelihood),
            ("spend.log_likelihood", self.spend.log_likelihood),
        ] {
            if !v.is_finite() {
                return Err(Error::validation(field, "must be finite"));
            }
        }
        if self.unit_days == 0 {
            return Err(Error::validation("unit_days", "must be at least 1"));
        }
        Ok(())
    }
}

/// A customer's predicted value, from a [`ValueModel`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueScores {
    /// Probability the customer is still active, 0 to 1.
    pub p_alive: f64,
    /// Expected purchases in the next 90 days.
    pub expected_purchases_90d: f64,
    /// Predicted lifetime value (discounted margin over the model's horizon).
    pub predicted_clv: Money,
    /// When the scores were computed.
    pub scored_at: DateTime<Utc>,
}

impl ValueScores {
    /// Checks the ranges: `p_alive` in [0, 1], expected purchases finite and not negative.
    pub fn validate(&self) -> Result<(), Error> {
        if !(0.0..=1.0).contains(&self.p_alive) {
            return Err(Error::validation(
                "p_alive",
                format!("must be within 0 and 1, got {}", self.p_alive),
            ));
        }
        if !(self.expected_purchases_90d.is_finite() && self.expected_purchases_90d >= 0.0) {
            return Err(Error::validation(
                "expected_purchases_90d",
                format!(
                    "must be finite and not negative, got {}",
                    self.expected_purchases_90d
                ),
            ));
        }
        Ok(())
    }
}

/// A customer's value classes as of a date: RFM scores and segment, and ABC class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueClasses {
    /// Recency score, 1 to 5.
    pub r: u8,
    /// Frequency score, 1 to 5.
    pub f: u8,
    /// Monetary score, 1 to 5.
    pub m: u8,
    /// RFM segment.
    pub segment: RfmSegment,
    /// ABC class.
    pub abc: AbcClass,
    /// The day the classes were computed as of.
    pub as_of: NaiveDate,
}

impl ValueClasses {
    /// Checks that the scores are 1 to 5.
    pub fn validate(&self) -> Result<(), Error> {
        for (field, v) in [("r", self.r), ("f", self.f), ("m", self.m)] {
            if !(1..=5).contains(&v) {
                return Err(Error::validation(field, format!("must be 1 to 5, got {v}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_models_are_checked() {
        let ok = ValueScores {
            p_alive: 0.5,
            expected_purchases_90d: 1.2,
            predicted_clv: Money::parse("10", "EUR").unwrap(),
            scored_at: DateTime::UNIX_EPOCH,
        };
        assert!(ok.validate().is_ok());
        assert_eq!(
            ValueScores {
                p_alive: f64::NAN,
                ..ok
            }
            .validate()
            .unwrap_err()
            .field(),
            Some("p_alive")
        );
        assert_eq!(
            ValueScores {
                expected_purchases_90d: -1.0,
                ..ok
            }
            .validate()
            .unwrap_err()
            .field(),
            Some("expected_purchases_90d")
        );
        let model = ValueModel {
            fitted_at: DateTime::UNIX_EPOCH,
            calibration_end: NaiveDate::from_ymd_opt(1997, 9, 30).unwrap(),
            unit_days: 7,
            customers: 2357,
            repeat_customers: 946,
            purchases: PurchaseModel {
                r: 0.243,
                alpha: 4.414,
                a: 0.793,
                b: 2.426,
                log_likelihood: -9582.4,
            },
            spend: SpendModel {
                p: 6.25,
                q: 3.74,
                gamma: 15.44,
                log_likelihood: -4000.0,
            },
        };
        assert!(model.validate().is_ok());
        let bad = ValueModel {
            spend: SpendModel {
                q: 0.0,
                ..model.spend
            },
            ..model.clone()
        };
        assert_eq!(bad.validate().unwrap_err().field(), Some("spend.q"));
        let json = serde_json::to_string(&model).unwrap();
        assert_eq!(serde_json::from_str::<ValueModel>(&json).unwrap(), model);
    }
}
