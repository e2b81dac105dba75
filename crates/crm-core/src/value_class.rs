//! Customers are not equal: ABC (Pareto) classes by revenue share, and RFM scores and
//! segments from recency, frequency and money.
//!
//! ## RFM scoring
//!
//! Over the customers with at least one purchase up to the as-of date (n of them):
//! recency = days from the last purchase to the as-of date, frequency = distinct purchase
//! days, monetary = total spend. Each measure is scored `1 + floor(5 * w / n)`, where `w` is
//! the number of customers with a strictly worse value (worse = larger recency, smaller
//! frequency, smaller monetary). Ties share a score; the best value scores 5 when n ≥ 5.
//!
//! ## RFM segments (from the R and F scores)
//!
//! | R \ F | 1 | 2 | 3 | 4 | 5 |
//! | --- | --- | --- | --- | --- | --- |
//! | 5 | new | potential loyalist | potential loyalist | champions | champions |
//! | 4 | promising | potential loyalist | potential loyalist | loyal | loyal |
//! | 3 | about to sleep | about to sleep | need attention | loyal | loyal |
//! | 2 | hibernating | hibernating | at risk | at risk | can't lose |
//! | 1 | lost | hibernating | at risk | at risk | can't lose |
//!
//! ## ABC classes
//!
//! Customers sorted by revenue, highest first (ties by customer, ascending). A customer is
//! class A while the revenue share of the customers before it is below the A limit
//! (default 80%), B while below the B limit (default 95%), C after that; so the top customer
//! is always A. With no positive total revenue every customer is C.
// Money, counts and durations here are computed with checked arithmetic only.
#![deny(clippy::arithmetic_side_effects)]

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::value::money::checked_sum;

/// A named RFM segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RfmSegment {
    /// Bought recently and often.
    Champions,
    /// Buy often, fairly recently.
    Loyal,
    /// Recent, a few purchases.
    PotentialLoyalist,
    /// Bought very recently, once.
    New,
    /// Fairly recent, once.
    Promising,
    /// Average recency and frequency.
    NeedAttention,
    /// Below average recency, few purchases.
    AboutToSleep,
    /// Bought often, but long ago.
    AtRisk,
    /// Bought most often, but long ago.
    CantLose,
    /// Long ago, few purchases.
    Hibernating,
    /// Longest ago, fewest purchases.
    Lost,
}

impl RfmSegment {
    /// The segment for an R and an F score (1 to 5; out-of-range scores are clamped).
    pub fn from_scores(r: u8, f: u8) -> Self {
        use RfmSegment::*;
        match (r.clamp(1, 5), f.clamp(1, 5)) {
            (5, 1) => New,
            (5, 2 | 3) | (4, 2 | 3) => PotentialLoyalist,
            (5, _) => Champions,
            (4, 1) => Promising,
            (3 | 4, _) if f >= 4 => Loyal,
            (3, 3) => NeedAttention,
            (3, _) => AboutToSleep,
            (1, 1) => Lost,
            (_, 1 | 2) => Hibernating,
            (_, 3 | 4) => AtRisk,
            _ => CantLose,
        }
    }

    /// Every segment.
    pub const ALL: [RfmSegment; 11] = [
        RfmSegment::Champions,
        RfmSegment::Loyal,
        RfmSegment::PotentialLoyalist,
        RfmSegment::New,
        RfmSegment::Promising,
        RfmSegment::NeedAttention,
        RfmSegment::AboutToSleep,
        RfmSegment::AtRisk,
        RfmSegment::CantLose,
        RfmSegment::Hibernating,
        RfmSegment::Lost,
    ];

    /// Parses a segment name (as [`RfmSegment::as_str`] writes it).
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| Error::validation("segment", format!("unknown RFM segment {text:?}")))
    }

    /// The segment's name as printed and serialised (`potential_loyalist`).
    pub fn as_str(self) -> &'static str {
        use RfmSegment::*;
        match self {
            Champions => "champions",
            Loyal => "loyal",
            PotentialLoyalist => "potential_loyalist",
            New => "new",
            Promising => "promising",
            NeedAttention => "need_attention",
            AboutToSleep => "about_to_sleep",
            AtRisk => "at_risk",
            CantLose => "cant_lose",
            Hibernating => "hibernating",
            Lost => "lost",
        }
    }
}

/// One customer's RFM measures and scores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfmRow<K> {
    /// The customer.
    pub customer: K,
    /// Days from the last purchase to the as-of date.
    pub recency_days: i64,
    /// Distinct purchase days.
    pub frequency: u64,
    /// Total spend.
    pub monetary: Decimal,
    /// Recency score, 1 to 5.
    pub r: u8,
    /// Frequency score, 1 to 5.
    pub f: u8,
    /// Monetary score, 1 to 5.
    pub m: u8,
    /// Segment from R and F.
    pub segment: RfmSegment,
}

/// `1 + floor(5 * w / n)` for every value, where `w` counts the values strictly worse.
fn scores<T: Copy + Ord>(values: &[T], larger_is_better: bool) -> Vec<u8> {
    let n = values.len();
    // Worst first; `w` of a value is the position where its run of equal values starts.
    // Indexes as u32 keep the sorted pairs small (a slice longer than u32::MAX values is
    // scored in usize, more slowly).
    if u32::try_from(n).is_err() {
        return scores_by::<T, usize>(values, larger_is_better);
    }
    scores_by::<T, u32>(values, larger_is_better)
}

/// [`scores`] with indexes of type `I`.
fn scores_by<T: Copy + Ord, I: Copy + Ord + TryFrom<usize> + TryInto<usize>>(
    values: &[T],
    larger_is_better: bool,
) -> Vec<u8> {
    let n = values.len();
    let mut order: Vec<(T, I)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| I::try_from(i).ok().map(|i| (*v, i)))
        .collect();
    if larger_is_better {
        order.sort_unstable();
    } else {
        order.sort_unstable_by(|a, b| b.cmp(a));
    }
    let mut out = vec![0u8; n];
    let mut run_start = 0;
    for (pos, (v, i)) in order.iter().enumerate() {
        if pos.checked_sub(1).is_some_and(|p| order[p].0 != *v) {
            run_start = pos;
        }
        // run_start < n, so the quotient is 0 to 4 (and 5 * run_start fits a u64 for any
        // slice that fits in memory).
        let fifth = (run_start as u64)
            .saturating_mul(5)
            .checked_div(n as u64)
            .unwrap_or(0);
        if let Ok(i) = (*i).try_into() {
            out[i] = u8::try_from(fifth).unwrap_or(4).saturating_add(1);
        }
    }
    out
}

/// RFM over a purchase log as of a date: one row per customer with a purchase on or before
/// `as_of`, sorted by customer. Later purchases are ignored; several purchases of one
/// customer on one day count as one for frequency. A customer's total beyond the range of
/// [`Decimal`] is a validation error on `monetary` (never a panic).
pub fn rfm<K: Ord + Clone>(
    purchases: impl IntoIterator<Item = (K, NaiveDate, Decimal)>,
    as_of: NaiveDate,
) -> Result<Vec<RfmRow<K>>, Error> {
    // Sorting once and scanning runs is far cheaper than a map of maps per customer.
    let mut log: Vec<(K, NaiveDate, Decimal)> =
        purchases.into_iter().filter(|p| p.1 <= as_of).collect();
    log.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut rows: Vec<(K, i64, u64, Decimal)> = Vec::new();
    let mut last_day: Option<NaiveDate> = None;
    for (k, day, amount) in log {
        match rows.last_mut() {
            Some(row) if row.0 == k => {
                if last_day != Some(day) {
                    // At most one per purchase: a `Vec` cannot hold u64::MAX of them.
                    row.2 = row.2.saturating_add(1);
                }
                row.1 = as_of.signed_duration_since(day).num_days();
                row.3 = checked_sum(row.3, amount, "monetary")?;
            }
            _ => rows.push((k, as_of.signed_duration_since(day).num_days(), 1, amount)),
        }
        last_day = Some(day);
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let r = scores(&rows.iter().map(|x| x.1).collect::<Vec<_>>(), false);
    let f = scores(&rows.iter().map(|x| x.2).collect::<Vec<_>>(), true);
    let m = scores(&rows.iter().map(|x| x.3).collect::<Vec<_>>(), true);
    Ok(rows
        .into_iter()
        .enumerate()
        .map(
            |(i, (customer, recency_days, frequency, monetary))| RfmRow {
                customer,
                recency_days,
                frequency,
                monetary,
                r: r[i],
                f: f[i],
                m: m[i],
                segment: RfmSegment::from_scores(r[i], f[i]),
            },
        )
        .collect())
}

/// An ABC class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AbcClass {
    /// The few customers bringing most revenue.
    A,
    /// The next band.
    B,
    /// The rest.
    C,
}

impl AbcClass {
    /// Parses `A`, `B` or `C`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text {
            "A" => Ok(AbcClass::A),
            "B" => Ok(AbcClass::B),
            "C" => Ok(AbcClass::C),
            _ => Err(Error::validation(
                "abc",
                format!("unknown ABC class {text:?}"),
            )),
        }
    }

    /// `A`, `B` or `C`.
    pub fn as_str(self) -> &'static str {
        match self {
            AbcClass::A => "A",
            AbcClass::B => "B",
            AbcClass::C => "C",
        }
    }
}

/// Cumulative revenue shares that bound classes A and B.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbcLimits {
    /// Class A ends at this cumulative share (default 0.80).
    pub a: Decimal,
    /// Class B ends at this cumulative share (default 0.95).
    pub b: Decimal,
}

impl Default for AbcLimits {
    fn default() -> Self {
        AbcLimits {
            a: Decimal::new(80, 2),
            b: Decimal::new(95, 2),
        }
    }
}

impl AbcLimits {
    /// Checks 0 < a ≤ b ≤ 1.
    pub fn validate(&self) -> Result<(), Error> {
        if !(Decimal::ZERO < self.a && self.a <= self.b && self.b <= Decimal::ONE) {
            return Err(Error::validation("abc_limits", "need 0 < a <= b <= 1"));
        }
        Ok(())
    }
}

/// One class's share of customers and of revenue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassShare {
    /// Customers in the class.
    pub customers: usize,
    /// Their share of all customers (0 to 1).
    pub customer_share: Decimal,
    /// Their revenue.
    pub revenue: Decimal,
    /// Their share of total revenue (0 to 1; 0 when the total is not positive).
    pub revenue_share: Decimal,
}

/// ABC classes and the report per class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbcReport<K> {
    /// Each customer's class, in input order.
    pub classes: Vec<(K, AbcClass)>,
    /// Shares of classes A, B and C, in that order.
    pub shares: [ClassShare; 3],
}

/// ABC classes of customers by revenue. A total beyond the range of [`Decimal`] is a
/// validation error on `revenue` (never a panic).
pub fn abc<K: Ord + Clone>(
    revenue: &[(K, Decimal)],
    limits: AbcLimits,
) -> Result<AbcReport<K>, Error> {
    limits.validate()?;
    let mut total = Decimal::ZERO;
    for (_, r) in revenue {
        total = checked_sum(total, *r, "revenue")?;
    }
    let mut order: Vec<usize> = (0..revenue.len()).collect();
    // Ties are ordered by customer, so an unstable sort gives one answer.
    order.sort_unstable_by(|&i, &j| {
        revenue[j]
            .1
            .cmp(&revenue[i].1)
            .then_with(|| revenue[i].0.cmp(&revenue[j].0))
    });
    let mut class = vec![AbcClass::C; revenue.len()];
    if total > Decimal::ZERO {
        // before / total < limit, without a division per customer. Limits are at most 1,
        // so neither product exceeds the total.
        let limit = |share: Decimal| {
            share
                .checked_mul(total)
                .ok_or_else(|| Error::validation("revenue", "the total overflows"))
        };
        let (a_limit, b_limit) = (limit(limits.a)?, limit(limits.b)?);
        let mut before = Decimal::ZERO;
        for &i in &order {
            class[i] = if before < a_limit {
                AbcClass::A
            } else if before < b_limit {
                AbcClass::B
            } else {
                AbcClass::C
            };
            // Partial sums of positive totals may still overflow when negative
            // revenues (refunds) made the total small.
            before = checked_sum(before, revenue[i].1, "revenue")?;
        }
    }
    let n = Decimal::from(revenue.len().max(1));
    let mut shares = [ClassShare {
        customers: 0,
        customer_share: Decimal::ZERO,
        revenue: Decimal::ZERO,
        revenue_share: Decimal::ZERO,
    }; 3];
    for (i, c) in class.iter().enumerate() {
        let s = &mut shares[*c as usize];
        s.customers = s.customers.saturating_add(1);
        s.revenue = checked_sum(s.revenue, revenue[i].1, "revenue")?;
    }
    for s in &mut shares {
        // n is at least 1.
        s.customer_share = Decimal::from(s.customers)
            .checked_div(n)
            .unwrap_or_default();
        if total > Decimal::ZERO {
            s.revenue_share = s.revenue.checked_div(total).ok_or_else(|| {
                Error::validation("revenue", "a class's share of the total overflows")
            })?;
        }
    }
    Ok(AbcReport {
        classes: revenue
            .iter()
            .zip(class)
            .map(|((k, _), c)| (k.clone(), c))
            .collect(),
        shares,
    })
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn scores_follow_the_exact_rule() {
        // Frequencies 1,1,2,3,10: worse-counts 0,0,2,3,4 of n = 5.
        assert_eq!(scores(&[1u64, 1, 2, 3, 10], true), vec![1, 1, 3, 4, 5]);
        // Recency: larger is worse.
        assert_eq!(scores(&[100i64, 5, 5, 50], false), vec![1, 3, 3, 2]);
        assert_eq!(scores(&[7u64], true), vec![1]);
    }

    #[test]
    fn rfm_counts_days_and_ignores_later_purchases() {
        let log = vec![
            (1u32, d("2025-01-01"), Decimal::from(10)),
            (1, d("2025-01-01"), Decimal::from(5)),
            (1, d("2025-03-01"), Decimal::from(20)),
            (2, d("2025-02-01"), Decimal::from(100)),
            (3, d("2025-05-01"), Decimal::from(1)),
        ];
        let rows = rfm(log, d("2025-04-01")).unwrap();
        assert_eq!(rows.len(), 2, "customer 3 buys after the as-of date");
        assert_eq!(
            (rows[0].recency_days, rows[0].frequency, rows[0].monetary),
            (31, 2, Decimal::from(35))
        );
        assert_eq!((rows[0].r, rows[0].f, rows[0].m), (3, 3, 1));
        assert_eq!((rows[1].r, rows[1].f, rows[1].m), (1, 1, 3));
    }

    #[test]
    fn every_score_pair_has_a_segment() {
        let mut seen = std::collections::BTreeSet::new();
        for r in 1..=5 {
            for f in 1..=5 {
                seen.insert(RfmSegment::from_scores(r, f));
            }
        }
        assert_eq!(seen.len(), 11, "all eleven segments are reachable");
        assert_eq!(RfmSegment::from_scores(5, 5), RfmSegment::Champions);
        assert_eq!(RfmSegment::from_scores(1, 1), RfmSegment::Lost);
        assert_eq!(RfmSegment::from_scores(1, 5), RfmSegment::CantLose);
        assert_eq!(RfmSegment::from_scores(5, 1), RfmSegment::New);
    }

    #[test]
    fn abc_classes_by_cumulative_share() {
        let rev: Vec<(u32, Decimal)> = [50, 30, 10, 5, 3, 2]
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u32, Decimal::from(*r)))
            .collect();
        let report = abc(&rev, AbcLimits::default()).unwrap();
        let classes: Vec<AbcClass> = report.classes.iter().map(|c| c.1).collect();
        use AbcClass::*;
        // Shares before each: 0, .50, .80, .90, .95, .98
        assert_eq!(classes, vec![A, A, B, B, C, C]);
        assert_eq!(report.shares[0].revenue_share, Decimal::new(80, 2));
        assert_eq!(report.shares[2].customers, 2);
        let dominant = abc(
            &[(1u8, Decimal::from(99)), (2, Decimal::from(1))],
            AbcLimits::default(),
        )
        .unwrap();
        assert_eq!(dominant.classes[0].1, A, "the top customer is always A");
        let none = abc(&[(1u8, Decimal::ZERO)], AbcLimits::default()).unwrap();
        assert_eq!(none.classes[0].1, C);
        assert!(abc(
            &rev,
            AbcLimits {
                a: Decimal::ONE,
                b: Decimal::new(5, 1)
            }
        )
        .is_err());
    }

    #[test]
    fn totals_beyond_a_decimal_are_errors() {
        let day = d("2025-01-01");
        let log = vec![
            (1u8, day, Decimal::MAX),
            (1u8, d("2025-01-02"), Decimal::ONE),
        ];
        assert_eq!(
            rfm(log, day + chrono::Days::new(5)).unwrap_err().field(),
            Some("monetary")
        );
        let ok = vec![(1u8, day, Decimal::MAX), (2u8, day, Decimal::MAX)];
        assert_eq!(rfm(ok, day).unwrap().len(), 2);
        let rev = [(1u8, Decimal::MAX), (2u8, Decimal::ONE)];
        assert_eq!(
            abc(&rev, AbcLimits::default()).unwrap_err().field(),
            Some("revenue")
        );
        // A refund brings the total back in range, while a partial sum in class order
        // would not be.
        let rev = [
            (1u8, Decimal::MAX),
            (2u8, Decimal::MAX),
            (3u8, Decimal::MIN),
        ];
        assert!(abc(&rev, AbcLimits::default()).is_err());
        let at_limit = [(1u8, Decimal::MAX), (2u8, Decimal::ZERO)];
        let report = abc(&at_limit, AbcLimits::default()).unwrap();
        assert_eq!(report.shares[0].revenue, Decimal::MAX);
    }
}
