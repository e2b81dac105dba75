//! The weighted forecast: deals' amounts times their probabilities, summed per period,
//! owner, unit and forecast category, per currency or converted through an
//! [`ExchangeRates`] port.

// Money and counts here are computed with checked arithmetic only.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::opportunity::Opportunity;
use super::pipeline::{ForecastCategory, Outcome};
use crate::access::Org;
use crate::error::{Error, Result};
use crate::id::{PipelineId, TeamId, UserId};
use crate::value::money::checked_sum;
use crate::value::{Currency, Money};

/// The length of a forecast period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Calendar months.
    Month,
    /// Calendar quarters.
    Quarter,
    /// Calendar years.
    Year,
}

impl Period {
    /// The first day of the period `date` falls in.
    pub fn start_of(self, date: NaiveDate) -> NaiveDate {
        let month = match self {
            Period::Month => date.month(),
            Period::Quarter => [1, 1, 1, 4, 4, 4, 7, 7, 7, 10, 10, 10]
                .get(date.month0() as usize)
                .copied()
                .unwrap_or(1),
            Period::Year => 1,
        };
        NaiveDate::from_ymd_opt(date.year(), month, 1).unwrap_or(date)
    }
}

/// Which deals a forecast counts, and how it groups them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastQuery {
    /// The first close date counted.
    pub from: NaiveDate,
    /// The last close date counted (inclusive).
    pub to: NaiveDate,
    /// Only this pipeline's deals, if set.
    pub pipeline: Option<PipelineId>,
    /// The period length rows are grouped by (by close date).
    pub period: Period,
    /// Whether won and lost deals are counted (won at 100 %, lost at 0 %) besides the
    /// open ones.
    pub include_closed: bool,
    /// Whether cells keep each deal's close date (for conversion at the rate of the day)
    /// rather than the first day of its period.
    pub daily: bool,
}

impl ForecastQuery {
    /// Open deals closing from `from` to `to` (inclusive), by quarter.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Self {
        ForecastQuery {
            from,
            to,
            pipeline: None,
            period: Period::Quarter,
            include_closed: false,
            daily: false,
        }
    }

    /// The date a deal closing on `date` is summed under: the date itself when
    /// [`daily`](ForecastQuery::daily), else the first day of its period.
    pub fn cell_date(&self, date: NaiveDate) -> NaiveDate {
        if self.daily {
            date
        } else {
            self.period.start_of(date)
        }
    }

    /// Checks the range. Errors: validation on `to` before `from`.
    pub fn validate(&self) -> Result<()> {
        if self.to < self.from {
            return Err(Error::validation("to", "must not be before from"));
        }
        Ok(())
    }

    /// Whether `deal` is counted.
    pub fn matches(&self, deal: &Opportunity) -> bool {
        (self.from..=self.to).contains(&deal.close_date)
            && self.pipeline.is_none_or(|p| p == deal.pipeline)
            && (self.include_closed || deal.outcome == Outcome::Open)
    }
}

/// Deals summed by close date (or the first day of the period, see
/// [`ForecastQuery::cell_date`]), owner, category, currency and probability: what an adapter
/// aggregates ([`SalesStore::forecast_cells`](crate::ports::SalesStore::forecast_cells)) and
/// the forecast is folded from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ForecastCell {
    /// The close date, or the first day of its period ([`ForecastQuery::cell_date`]).
    pub close_date: NaiveDate,
    /// The owner.
    pub owner: UserId,
    /// The forecast category.
    pub category: ForecastCategory,
    /// The probability.
    pub probability: u8,
    /// The currency.
    pub currency: Currency,
    /// How many deals.
    pub deals: u64,
    /// Their amounts' sum.
    pub amount: Decimal,
}

/// Sums `deals` into cells dated as `query` says ([`ForecastQuery::cell_date`]): the
/// reference every adapter's push-down must equal. The deals are not filtered here.
pub fn cells_of<'a>(
    query: &ForecastQuery,
    deals: impl IntoIterator<Item = &'a Opportunity>,
) -> Result<Vec<ForecastCell>> {
    type Key = (NaiveDate, UserId, ForecastCategory, u8, Currency);
    let mut sums: BTreeMap<Key, (u64, Decimal)> = BTreeMap::new();
    for d in deals {
        let key = (
            query.cell_date(d.close_date),
            d.owner,
            d.category,
            d.probability,
            d.amount.currency(),
        );
        let (n, sum) = sums.entry(key).or_insert((0, Decimal::ZERO));
        *n = n
            .checked_add(1)
            .ok_or_else(|| Error::validation("deals", "too many"))?;
        *sum = checked_sum(*sum, d.amount.amount(), "amount")?;
    }
    Ok(sums
        .into_iter()
        .map(
            |((close_date, owner, category, probability, currency), (deals, amount))| {
                ForecastCell {
                    close_date,
                    owner,
                    category,
                    probability,
                    currency,
                    deals,
                    amount,
                }
            },
        )
        .collect())
}

/// One row of a forecast: a period, owner, unit and category, in one currency.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ForecastRow {
    /// The first day of the period (`None` in a roll-up over periods).
    pub period: Option<NaiveDate>,
    /// The owner (`None` in a roll-up over owners).
    pub owner: Option<UserId>,
    /// The owner's unit (`None` without an organisation, or rolled up).
    pub unit: Option<TeamId>,
    /// The forecast category (`None` in a roll-up over categories).
    pub category: Option<ForecastCategory>,
    /// The currency: the deals' own, or the reporting currency.
    pub currency: Currency,
    /// How many deals.
    pub deals: u64,
    /// Their amounts' sum.
    pub amount: Decimal,
    /// Their amounts times their probabilities, summed (exact).
    pub weighted: Decimal,
}

/// What a forecast is grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// The period.
    Period,
    /// The owner.
    Owner,
    /// The owner's unit.
    Unit,
    /// The forecast category.
    Category,
}

/// A weighted forecast: rows by period, owner, unit and category, per currency.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forecast {
    /// The rows, sorted.
    pub rows: Vec<ForecastRow>,
}

impl Forecast {
    /// Folds cells into rows by `period`, each owner's unit from `org` when given; amounts
    /// stay in their currencies.
    pub fn fold(cells: &[ForecastCell], period: Period, org: Option<&Org>) -> Result<Forecast> {
        Self::fold_with(cells, period, org, |c| Ok((c.currency, c.amount)))
    }

    /// Folds cells like [`Forecast::fold`], each cell's amount converted to `to` at the
    /// rate of its close date from `rates` and rounded to `to`'s decimals (half away from
    /// zero) before it is weighted and summed.
    ///
    /// Errors: what `rates` answers for a missing rate; validation on `amount` when a
    /// converted amount is beyond [`Money::MAX_AMOUNT`].
    pub async fn fold_converted(
        cells: &[ForecastCell],
        period: Period,
        org: Option<&Org>,
        to: Currency,
        rates: &dyn ExchangeRates,
    ) -> Result<Forecast> {
        let mut wanted: HashMap<(Currency, NaiveDate), Decimal> = HashMap::new();
        for c in cells {
            if c.currency != to && !wanted.contains_key(&(c.currency, c.close_date)) {
                let rate = rates.rate(c.currency, to, c.close_date).await?;
                wanted.insert((c.currency, c.close_date), rate);
            }
        }
        Self::fold_with(cells, period, org, |c| {
            if c.currency == to {
                return Ok((to, c.amount));
            }
            let rate = wanted
                .get(&(c.currency, c.close_date))
                .copied()
                .unwrap_or(Decimal::ONE);
            let converted = c
                .amount
                .checked_mul(rate)
                .ok_or_else(|| Error::validation("amount", "the converted amount overflows"))?;
            Ok((to, Money::rounded(converted, to)?.amount()))
        })
    }

    fn fold_with(
        cells: &[ForecastCell],
        period: Period,
        org: Option<&Org>,
        amount_of: impl Fn(&ForecastCell) -> Result<(Currency, Decimal)>,
    ) -> Result<Forecast> {
        let mut rows: BTreeMap<RowKey, (u64, Decimal, Decimal)> = BTreeMap::new();
        for c in cells {
            let (currency, amount) = amount_of(c)?;
            let unit = org.and_then(|o| o.member(c.owner)).and_then(|m| m.unit);
            let key = (
                Some(period.start_of(c.close_date)),
                Some(c.owner),
                unit,
                Some(c.category),
                currency,
            );
            add(
                &mut rows,
                key,
                c.deals,
                amount,
                weigh(amount, c.probability)?,
            )?;
        }
        Ok(Forecast::from_map(rows))
    }

    /// The forecast summed over every dimension not in `by` (which then reads `None`).
    pub fn rollup(&self, by: &[Dimension]) -> Result<Forecast> {
        let keep = |d: Dimension| by.contains(&d);
        let mut rows: BTreeMap<RowKey, (u64, Decimal, Decimal)> = BTreeMap::new();
        for r in &self.rows {
            let key = (
                r.period.filter(|_| keep(Dimension::Period)),
                r.owner.filter(|_| keep(Dimension::Owner)),
                r.unit.filter(|_| keep(Dimension::Unit)),
                r.category.filter(|_| keep(Dimension::Category)),
                r.currency,
            );
            add(&mut rows, key, r.deals, r.amount, r.weighted)?;
        }
        Ok(Forecast::from_map(rows))
    }

    /// The totals per currency.
    pub fn totals(&self) -> Result<Forecast> {
        self.rollup(&[])
    }

    fn from_map(rows: BTreeMap<RowKey, (u64, Decimal, Decimal)>) -> Forecast {
        Forecast {
            rows: rows
                .into_iter()
                .map(
                    |((period, owner, unit, category, currency), (deals, amount, weighted))| {
                        ForecastRow {
                            period,
                            owner,
                            unit,
                            category,
                            currency,
                            deals,
                            amount,
                            weighted,
                        }
                    },
                )
                .collect(),
        }
    }
}

type RowKey = (
    Option<NaiveDate>,
    Option<UserId>,
    Option<TeamId>,
    Option<ForecastCategory>,
    Currency,
);

fn add(
    rows: &mut BTreeMap<RowKey, (u64, Decimal, Decimal)>,
    key: RowKey,
    deals: u64,
    amount: Decimal,
    weighted: Decimal,
) -> Result<()> {
    let (n, a, w) = rows.entry(key).or_insert((0, Decimal::ZERO, Decimal::ZERO));
    *n = n
        .checked_add(deals)
        .ok_or_else(|| Error::validation("deals", "too many"))?;
    *a = checked_sum(*a, amount, "amount")?;
    *w = checked_sum(*w, weighted, "weighted")?;
    Ok(())
}

/// `amount` times `probability` percent, exact.
fn weigh(amount: Decimal, probability: u8) -> Result<Decimal> {
    amount
        .checked_mul(Decimal::from(probability))
        .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
        .ok_or_else(|| Error::validation("weighted", "the weighted amount overflows"))
}

/// Exchange rates by date: the only way a forecast converts between currencies. A host
/// implements it over its treasury's or its ERP's rate table; [`RateTable`] keeps rates in
/// memory.
#[async_trait]
pub trait ExchangeRates: Send + Sync {
    /// How many units of `to` one unit of `from` bought on `on`.
    ///
    /// Errors: [`Error::NotFound`] (entity `exchange_rate`) when there is no rate.
    async fn rate(&self, from: Currency, to: Currency, on: NaiveDate) -> Result<Decimal>;
}

/// Exchange rates held in memory: each pair's rates by the date they take effect; the rate
/// on a date is the latest one taking effect on or before it.
///
/// ```
/// use chrono::NaiveDate;
/// use crm_core::sales::{ExchangeRates, RateTable};
/// use crm_core::Currency;
/// use rust_decimal::Decimal;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (usd, eur) = (Currency::parse("USD")?, Currency::parse("EUR")?);
/// let rates = RateTable::new();
/// rates.set(usd, eur, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), "0.92".parse().unwrap())?;
/// let on = NaiveDate::from_ymd_opt(2026, 2, 15).unwrap();
/// assert_eq!(rates.rate(usd, eur, on).await?, "0.92".parse::<Decimal>().unwrap());
/// assert!(rates.rate(eur, usd, on).await.is_err());
/// # Ok::<(), crm_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct RateTable {
    rates: Mutex<BTreeMap<(Currency, Currency), BTreeMap<NaiveDate, Decimal>>>,
}

impl RateTable {
    /// An empty table.
    pub fn new() -> Self {
        RateTable::default()
    }

    /// Sets the rate of `from` in `to` taking effect on `on`. Errors: validation on `rate`
    /// unless it is positive.
    pub fn set(&self, from: Currency, to: Currency, on: NaiveDate, rate: Decimal) -> Result<()> {
        if rate <= Decimal::ZERO {
            return Err(Error::validation("rate", "must be positive"));
        }
        self.rates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((from, to))
            .or_default()
            .insert(on, rate);
        Ok(())
    }
}

#[async_trait]
impl ExchangeRates for RateTable {
    async fn rate(&self, from: Currency, to: Currency, on: NaiveDate) -> Result<Decimal> {
        if from == to {
            return Ok(Decimal::ONE);
        }
        self.rates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(from, to))
            .and_then(|dated| dated.range(..=on).next_back().map(|(_, r)| *r))
            .ok_or_else(|| Error::not_found("exchange_rate", format!("{from}/{to} on {on}")))
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cell_strategy(owners: Vec<UserId>) -> impl Strategy<Value = ForecastCell> {
        (
            0..owners.len(),
            0..5usize,
            0u8..=100,
            prop::bool::ANY,
            0i64..10_000_000_000,
            0u32..730,
            1u64..50,
        )
            .prop_map(move |(o, c, p, usd, cents, day, deals)| ForecastCell {
                close_date: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
                    + chrono::Duration::days(i64::from(day)),
                owner: owners[o],
                category: ForecastCategory::ALL[c],
                probability: p,
                currency: Currency::parse(if usd { "USD" } else { "EUR" }).unwrap(),
                deals,
                amount: Decimal::new(cents, 2),
            })
    }

    proptest! {
        /// For any cells and any grouping, each row's weighted sum equals the direct sum of
        /// amount × probability over the cells in its group, exactly.
        #[test]
        fn weighted_forecast_equals_a_direct_sum(
            cells in prop::collection::vec(cell_strategy(vec![UserId::new(), UserId::new(), UserId::new()]), 0..60),
            period in prop::sample::select(vec![Period::Month, Period::Quarter, Period::Year]),
            mask in 0u8..16,
        ) {
            let dims = [Dimension::Period, Dimension::Owner, Dimension::Unit, Dimension::Category];
            let by: Vec<Dimension> = dims.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, d)| *d).collect();
            let forecast = Forecast::fold(&cells, period, None).unwrap().rollup(&by).unwrap();
            let mut seen = 0u64;
            for row in &forecast.rows {
                let in_row: Vec<&ForecastCell> = cells.iter().filter(|c| {
                    c.currency == row.currency
                        && row.period.is_none_or(|p| p == period.start_of(c.close_date))
                        && row.owner.is_none_or(|o| o == c.owner)
                        && row.category.is_none_or(|k| k == c.category)
                }).collect();
                let weighted: Decimal = in_row.iter().map(|c| c.amount * Decimal::from(c.probability) / Decimal::ONE_HUNDRED).sum();
                let amount: Decimal = in_row.iter().map(|c| c.amount).sum();
                let deals: u64 = in_row.iter().map(|c| c.deals).sum();
                prop_assert_eq!(row.weighted, weighted);
                prop_assert_eq!((row.amount, row.deals), (amount, deals));
                seen += deals;
            }
            prop_assert_eq!(seen, cells.iter().map(|c| c.deals).sum::<u64>());
        }
    }

    #[test]
    fn periods_start_on_their_first_day() {
        let d = NaiveDate::from_ymd_opt(2026, 8, 17).unwrap();
        assert_eq!(
            Period::Month.start_of(d),
            NaiveDate::from_ymd_opt(2026, 8, 1).unwrap()
        );
        assert_eq!(
            Period::Quarter.start_of(d),
            NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()
        );
        assert_eq!(
            Period::Year.start_of(d),
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
        );
    }
}
