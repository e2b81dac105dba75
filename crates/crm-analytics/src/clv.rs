//! Customer lifetime value: predicted from the fitted models, and the five-part breakdown
//! of value already realised.
// Money, counts and durations here are computed with checked arithmetic only.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use crm_core::{AttrValue, Currency, CustomerId, Error, Interaction, InteractionKind};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::bgnbd::{BgNbd, Observation};
use crate::gamma_gamma::GammaGamma;
use crate::FitError;

/// How to turn expected purchases and spend into a present value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClvSettings {
    /// Forecast horizon, in the models' time unit (for example 52 weeks).
    pub horizon: f64,
    /// Length of one discounting period, in the same unit (for example 4.345 weeks: a month).
    pub period: f64,
    /// Discount rate per period (for example 0.01 for 1% a month).
    pub discount_rate: f64,
    /// Share of revenue that is margin (for example 0.3).
    pub margin_rate: f64,
}

/// Predicted margin over the horizon, discounted: for each period, expected purchases in it
/// (BG/NBD) × expected spend per purchase (Gamma-Gamma) × margin rate, divided by
/// (1 + rate)^k. `mean_spend` is the customer's mean repeat spend; when `x` is 0, or the
/// mean is not positive (repeat purchases that were free or refunded, left out of the
/// spend fit), the model's population mean is used instead.
pub fn predicted_clv(
    purchases: &BgNbd,
    spend: &GammaGamma,
    o: &Observation,
    mean_spend: f64,
    s: &ClvSettings,
) -> Result<f64, FitError> {
    if !(s.horizon >= 0.0 && s.period > 0.0 && s.discount_rate > -1.0 && s.margin_rate.is_finite())
    {
        return Err(FitError::BadSettings(
            "need horizon >= 0, period > 0, discount rate > -1",
        ));
    }
    let (x, mean) = if o.x > 0.0 && mean_spend > 0.0 {
        (o.x, mean_spend)
    } else {
        (0.0, 0.0)
    };
    let per_purchase = spend.expected_spend(x, mean).ok_or(FitError::NotFinite {
        what: "expected spend needs q > 1",
    })?;
    let periods = (s.horizon / s.period).ceil() as u32;
    let (mut before, mut value) = (0.0, 0.0);
    for k in 1..=periods {
        let t = (f64::from(k) * s.period).min(s.horizon);
        let upto = purchases.expected_purchases(t, o)?;
        value +=
            (upto - before) * per_purchase * s.margin_rate / (1.0 + s.discount_rate).powi(k as i32);
        before = upto;
    }
    if value.is_finite() {
        Ok(value)
    } else {
        Err(FitError::NotFinite {
            what: "predicted CLV",
        })
    }
}

/// Converts a model figure to money, rounded to the currency's minor unit (2 digits when the
/// standard defines none).
pub fn to_money(value: f64, currency: Currency) -> Result<Decimal, FitError> {
    let d = Decimal::from_f64(value).ok_or(FitError::NotFinite {
        what: "money value",
    })?;
    Ok(d.round_dp(u32::from(currency.minor_units().unwrap_or(2))))
}

/// A customer's realised value in five parts (one currency). Cost saving and premium cannot
/// be derived from purchase data: the host supplies them, per customer or per segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueBreakdown {
    /// The customer.
    pub customer: CustomerId,
    /// Margin of the first purchase.
    pub base: Decimal,
    /// Margin of every later purchase (increased and cross sales).
    pub growth: Decimal,
    /// The configured share of the margin of customers this customer referred.
    pub referral: Decimal,
    /// Cost saved serving a known customer (host-supplied).
    pub cost_saving: Decimal,
    /// Premium a loyal customer pays (host-supplied).
    pub premium: Decimal,
}

impl ValueBreakdown {
    /// The sum of the five parts; a validation error on `total` when it is beyond the
    /// range of a decimal.
    pub fn total(&self) -> Result<Decimal, Error> {
        [self.growth, self.referral, self.cost_saving, self.premium]
            .into_iter()
            .try_fold(self.base, |sum, part| sum.checked_add(part))
            .ok_or_else(|| overflow("total"))
    }
}

/// Where margins come from and how referrals count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FivePartSettings {
    /// Only purchases in this currency count.
    pub currency: Currency,
    /// Margin as a share of the amount, when a purchase has no margin attribute.
    pub margin_rate: Decimal,
    /// Name of a purchase's custom attribute holding its margin (money or number), if any.
    pub margin_attribute: Option<String>,
    /// Share of a referred customer's margin credited to whoever referred them.
    pub referral_share: Decimal,
}

/// One customer's inputs to the five-part breakdown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueInput {
    /// The customer.
    pub customer: CustomerId,
    /// Who referred this customer, if anyone.
    pub referred_by: Option<CustomerId>,
    /// The customer's purchases (other interactions are ignored).
    pub purchases: Vec<Interaction>,
    /// Host-supplied cost saving.
    pub cost_saving: Decimal,
    /// Host-supplied loyalty premium.
    pub premium: Decimal,
}

/// The margin of one purchase under `s`, or `None` if it does not count (not a purchase,
/// no amount, another currency); an error when the amount times the margin rate is
/// beyond the range of a decimal.
pub fn purchase_margin(i: &Interaction, s: &FivePartSettings) -> Result<Option<Decimal>, Error> {
    if i.kind != InteractionKind::Purchase {
        return Ok(None);
    }
    let Some(amount) = i.amount.filter(|m| m.currency() == s.currency) else {
        return Ok(None);
    };
    let from_attr = s
        .margin_attribute
        .as_deref()
        .and_then(|k| match i.attributes.get(k) {
            Some(AttrValue::Money(m)) if m.currency() == s.currency => Some(m.amount()),
            Some(AttrValue::Number(n)) => Some(*n),
            _ => None,
        });
    match from_attr {
        Some(margin) => Ok(Some(margin)),
        None => amount
            .amount()
            .checked_mul(s.margin_rate)
            .map(Some)
            .ok_or_else(|| overflow("margin_rate")),
    }
}

fn overflow(field: &str) -> Error {
    Error::validation(field, "the figure is beyond the range of a decimal")
}

/// The five-part breakdown for every input customer, in input order. Every sum and product
/// is checked: a figure beyond the range of a decimal is a validation error naming it.
pub fn five_part_breakdown(
    inputs: &[ValueInput],
    s: &FivePartSettings,
) -> Result<Vec<ValueBreakdown>, Error> {
    let mut own: BTreeMap<CustomerId, (Decimal, Decimal)> = BTreeMap::new();
    for input in inputs {
        let mut margins = Vec::new();
        for i in &input.purchases {
            if let Some(m) = purchase_margin(i, s)? {
                margins.push((i.occurred_at, i.id, m));
            }
        }
        margins.sort();
        let base = margins.first().map(|m| m.2).unwrap_or_default();
        let mut growth = Decimal::ZERO;
        for m in margins.iter().skip(1) {
            growth = growth.checked_add(m.2).ok_or_else(|| overflow("growth"))?;
        }
        own.insert(input.customer, (base, growth));
    }
    let mut referral: BTreeMap<CustomerId, Decimal> = BTreeMap::new();
    for input in inputs {
        if let (Some(referrer), Some((b, g))) = (input.referred_by, own.get(&input.customer)) {
            if referrer != input.customer {
                let credit = b
                    .checked_add(*g)
                    .and_then(|total| total.checked_mul(s.referral_share))
                    .ok_or_else(|| overflow("referral"))?;
                let slot = referral.entry(referrer).or_default();
                *slot = slot
                    .checked_add(credit)
                    .ok_or_else(|| overflow("referral"))?;
            }
        }
    }
    Ok(inputs
        .iter()
        .map(|input| {
            let (base, growth) = own.get(&input.customer).copied().unwrap_or_default();
            ValueBreakdown {
                customer: input.customer,
                base,
                growth,
                referral: referral.get(&input.customer).copied().unwrap_or_default(),
                cost_saving: input.cost_saving,
                premium: input.premium,
            }
        })
        .collect())
}

/// A figure as `f64`, for the models.
pub fn as_f64(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration};
    use crm_core::{Channel, Money};

    fn buy(c: CustomerId, day: i64, amount: &str, cur: &str) -> Interaction {
        Interaction::builder(c, Channel::Web, InteractionKind::Purchase)
            .at(DateTime::from_timestamp(1_700_000_000, 0).unwrap() + Duration::days(day))
            .amount(Money::parse(amount, cur).unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn five_parts_add_up() {
        let (ann, bob) = (CustomerId::new(), CustomerId::new());
        let s = FivePartSettings {
            currency: Currency::parse("EUR").unwrap(),
            margin_rate: Decimal::new(30, 2),
            margin_attribute: Some("margin".into()),
            referral_share: Decimal::new(10, 2),
        };
        let mut with_margin = buy(ann, 5, "100", "EUR");
        with_margin
            .attributes
            .set("margin", AttrValue::Number(Decimal::from(50)))
            .unwrap();
        let inputs = vec![
            ValueInput {
                customer: ann,
                referred_by: None,
                purchases: vec![
                    with_margin,
                    buy(ann, 1, "100", "EUR"),
                    buy(ann, 2, "999", "USD"),
                ],
                cost_saving: Decimal::from(5),
                premium: Decimal::from(2),
            },
            ValueInput {
                customer: bob,
                referred_by: Some(ann),
                purchases: vec![buy(bob, 1, "200", "EUR")],
                cost_saving: Decimal::ZERO,
                premium: Decimal::ZERO,
            },
        ];
        let out = five_part_breakdown(&inputs, &s).unwrap();
        assert_eq!(out[0].base, Decimal::from(30), "first purchase at 30%");
        assert_eq!(
            out[0].growth,
            Decimal::from(50),
            "margin attribute wins; USD ignored"
        );
        assert_eq!(out[0].referral, Decimal::from(6), "10% of Bob's 60");
        assert_eq!(out[0].total().unwrap(), Decimal::from(93));
        assert_eq!(out[1].base, Decimal::from(60));
        assert_eq!(out[1].referral, Decimal::ZERO);
    }

    #[test]
    fn predicted_clv_discounts_and_checks_settings() {
        let bg = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        let gg = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let o = Observation {
            x: 2.0,
            t_x: 30.43,
            t: 38.86,
        };
        let s = ClvSettings {
            horizon: 39.0,
            period: 39.0,
            discount_rate: 0.0,
            margin_rate: 1.0,
        };
        let undiscounted = predicted_clv(&bg, &gg, &o, 40.0, &s).unwrap();
        let expected =
            bg.expected_purchases(39.0, &o).unwrap() * gg.expected_spend(2.0, 40.0).unwrap();
        assert!((undiscounted - expected).abs() < 1e-9);
        let monthly = ClvSettings {
            period: 4.345,
            discount_rate: 0.01,
            ..s
        };
        let discounted = predicted_clv(&bg, &gg, &o, 40.0, &monthly).unwrap();
        assert!(discounted < undiscounted && discounted > 0.9 * undiscounted);
        let bad = ClvSettings { period: 0.0, ..s };
        assert!(matches!(
            predicted_clv(&bg, &gg, &o, 40.0, &bad),
            Err(FitError::BadSettings(_))
        ));
        assert_eq!(
            to_money(12.345678, Currency::parse("EUR").unwrap()).unwrap(),
            Decimal::new(1235, 2)
        );
        assert!(to_money(f64::NAN, Currency::parse("EUR").unwrap()).is_err());
    }
}
