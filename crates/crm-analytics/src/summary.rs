//! From a purchase log to the per-customer calibration summary the models use.
// Money, counts and durations here are computed with checked arithmetic only.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The time unit of `t_x`, `T` and forecast horizons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Days.
    Days,
    /// Weeks of seven days.
    Weeks,
}

impl TimeUnit {
    /// Days in one unit.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks => 7.0,
        }
    }

    /// Parses `days` or `weeks`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "days" | "day" => Some(TimeUnit::Days),
            "weeks" | "week" => Some(TimeUnit::Weeks),
            _ => None,
        }
    }
}

/// One purchase line: who, on which day, for how much.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purchase<K> {
    /// The customer.
    pub customer: K,
    /// The day of the purchase.
    pub date: NaiveDate,
    /// The amount (several lines of one customer on one day are one purchase occasion).
    pub amount: Decimal,
}

/// What one customer did in the calibration period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerSummary<K> {
    /// The customer.
    pub customer: K,
    /// Repeat purchase occasions (distinct purchase days after the first) up to the end of
    /// calibration: the `x` of the models.
    pub frequency: u32,
    /// Time from the first to the last purchase occasion (`t_x`), in the summary's unit.
    pub recency: f64,
    /// Time from the first purchase to the end of calibration (`T`), in the summary's unit.
    pub age: f64,
    /// The first purchase occasion's day.
    pub first_purchase: NaiveDate,
    /// The first purchase occasion's amount.
    pub first_amount: Decimal,
    /// Sum of the repeat purchase occasions' amounts (first purchase excluded).
    pub repeat_amount: Decimal,
}

impl<K> CustomerSummary<K> {
    /// Mean amount per repeat purchase occasion (the Gamma-Gamma model's `m`), if any.
    pub fn mean_repeat_amount(&self) -> Option<Decimal> {
        // Dividing by a count of at least 1 cannot overflow.
        (self.frequency > 0)
            .then(|| {
                self.repeat_amount
                    .checked_div(Decimal::from(self.frequency))
            })
            .flatten()
    }
}

/// Summarises a purchase log for a calibration period ending on `calibration_end`
/// (inclusive): one row per customer whose first purchase falls in it, sorted by customer.
/// Purchases after the end are ignored; several lines of one customer on one day are summed
/// into one purchase occasion. A sum beyond the range of [`Decimal`] is a validation error
/// on `amount` (never a panic).
pub fn calibration_summary<K: Ord + Clone>(
    purchases: impl IntoIterator<Item = Purchase<K>>,
    calibration_end: NaiveDate,
    unit: TimeUnit,
) -> Result<Vec<CustomerSummary<K>>, crm_core::Error> {
    let overflow = || crm_core::Error::validation("amount", "a customer's total overflows");
    let mut days: BTreeMap<K, BTreeMap<NaiveDate, Decimal>> = BTreeMap::new();
    for p in purchases {
        if p.date <= calibration_end {
            let slot = days
                .entry(p.customer)
                .or_default()
                .entry(p.date)
                .or_default();
            *slot = slot.checked_add(p.amount).ok_or_else(overflow)?;
        }
    }
    let mut repeat_amounts = Vec::with_capacity(days.len());
    for occasions in days.values() {
        let mut sum = Decimal::ZERO;
        for a in occasions.values().skip(1) {
            sum = sum.checked_add(*a).ok_or_else(overflow)?;
        }
        repeat_amounts.push(sum);
    }
    let span = |from: NaiveDate, to: NaiveDate| {
        to.signed_duration_since(from).num_days() as f64 / unit.days()
    };
    Ok(days
        .into_iter()
        .zip(repeat_amounts)
        .filter_map(|((customer, occasions), repeat_amount)| {
            let (&first, &first_amount) = occasions.first_key_value()?;
            let (&last, _) = occasions.last_key_value()?;
            Some(CustomerSummary {
                customer,
                frequency: u32::try_from(occasions.len().saturating_sub(1)).unwrap_or(u32::MAX),
                recency: span(first, last),
                age: span(first, calibration_end),
                first_purchase: first,
                first_amount,
                repeat_amount,
            })
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn same_day_lines_are_one_occasion_and_late_ones_are_ignored() {
        let p = |c: u32, date: &str, amount: i64| Purchase {
            customer: c,
            date: d(date),
            amount: Decimal::from(amount),
        };
        let log = vec![
            p(1, "1997-01-01", 10),
            p(1, "1997-01-01", 5),
            p(1, "1997-01-18", 20),
            p(1, "1997-08-02", 40),
            p(1, "1997-12-12", 99),
            p(2, "1997-10-05", 7),
        ];
        let s = calibration_summary(log, d("1997-09-30"), TimeUnit::Weeks).unwrap();
        assert_eq!(s.len(), 1, "customer 2 starts after calibration");
        let c = &s[0];
        assert_eq!(c.frequency, 2);
        assert!((c.recency - 30.43).abs() < 0.005);
        assert!((c.age - 38.86).abs() < 0.005);
        assert_eq!(c.first_amount, Decimal::from(15));
        assert_eq!(c.mean_repeat_amount(), Some(Decimal::from(30)));
    }
}
