//! The sales tables' shared SQL: forecast cells aggregated in the database, and decoding
//! them back into exact amounts.

use std::str::FromStr;

use chrono::NaiveDate;
use crm_core::sales::{
    ForecastCategory, ForecastCell, ForecastQuery, Opportunity, OpportunityQuery,
};
use crm_core::{Currency, Error, Money, UserId};
use rust_decimal::Decimal;

use crate::rule::{Dialect, Sql, Value, Writer};

/// The columns an `opportunities` row indexes besides its record, in the order of
/// [`DealColumns`]' fields.
pub const DEAL_COLUMNS: &str =
    "owner, account, pipeline, stage, outcome, category, probability, currency, amount_minor, \
     close_date, order_ref";

/// The indexed columns of a deal.
#[derive(Debug)]
pub struct DealColumns {
    /// The owner's id bytes.
    pub owner: Vec<u8>,
    /// The account's id bytes.
    pub account: Vec<u8>,
    /// The pipeline's id bytes.
    pub pipeline: Vec<u8>,
    /// The stage key.
    pub stage: String,
    /// `open`, `won` or `lost`.
    pub outcome: &'static str,
    /// The forecast category's name.
    pub category: &'static str,
    /// The probability, percent.
    pub probability: i64,
    /// The currency code.
    pub currency: String,
    /// The amount in units of 10^-decimals of the currency.
    pub amount_minor: i64,
    /// `YYYY-MM-DD`.
    pub close_date: String,
    /// The ERP order's reference text, once linked.
    pub order_ref: Option<String>,
}

impl DealColumns {
    /// The columns of `deal`. Errors: validation on `amount` when it does not fit the
    /// column (see [`Opportunity::amount_minor`]).
    pub fn of(deal: &Opportunity) -> Result<DealColumns, Error> {
        Ok(DealColumns {
            owner: deal.owner.as_bytes().to_vec(),
            account: deal.account.as_bytes().to_vec(),
            pipeline: deal.pipeline.as_bytes().to_vec(),
            stage: deal.stage.to_string(),
            outcome: deal.outcome.as_str(),
            category: deal.category.as_str(),
            probability: i64::from(deal.probability),
            currency: deal.amount.currency().to_string(),
            amount_minor: deal
                .amount_minor()
                .ok_or_else(|| Error::validation("amount", "is beyond the largest deal amount"))?,
            close_date: deal.close_date.to_string(),
            order_ref: deal.order.as_ref().map(|o| o.reference.to_string()),
        })
    }
}

/// The query summing the deals `query` counts into forecast cells: columns close date,
/// owner, category, probability, currency, count, and the sum of `amount_minor` as text
/// (exact in every database).
pub fn forecast_cells(dialect: &dyn Dialect, tenant: &[u8], query: &ForecastQuery) -> Sql {
    let mut w = Writer::new(dialect);
    w.push(
        "SELECT close_date, owner, category, probability, currency, count(*), \
         CAST(sum(amount_minor) AS TEXT) FROM opportunities WHERE tenant_id = ",
    );
    w.bind(Value::Bytes(tenant.to_vec()));
    w.push(" AND close_date >= ");
    w.bind(Value::Text(date_text(query.from)));
    w.push(" AND close_date <= ");
    w.bind(Value::Text(date_text(query.to)));
    if let Some(p) = query.pipeline {
        w.push(" AND pipeline = ");
        w.bind(Value::Bytes(p.as_bytes().to_vec()));
    }
    if !query.include_closed {
        w.push(" AND outcome = 'open'");
    }
    w.push(" GROUP BY close_date, owner, category, probability, currency");
    w.finish()
}

/// The columns of a [`forecast_cells`] row, as the driver read them.
#[derive(Debug)]
pub struct CellColumns<'a> {
    /// `YYYY-MM-DD`.
    pub close_date: &'a str,
    /// The owner's id bytes.
    pub owner: &'a [u8],
    /// The category's name.
    pub category: &'a str,
    /// The probability.
    pub probability: i64,
    /// The currency code.
    pub currency: &'a str,
    /// How many deals.
    pub deals: i64,
    /// The sum of `amount_minor`, as text.
    pub sum_minor: &'a str,
}

impl CellColumns<'_> {
    /// The cell; `corrupt` reports a value that does not decode.
    pub fn decode(self, corrupt: impl Fn(String) -> Error) -> Result<ForecastCell, Error> {
        let CellColumns {
            close_date,
            owner,
            category,
            probability,
            currency,
            deals,
            sum_minor,
        } = self;
        let bad = |what: &str, value: &str| corrupt(format!("opportunities.{what}: {value:?}"));
        let currency = Currency::parse(currency).map_err(|_| bad("currency", currency))?;
        let scale = Money::decimals_of(currency);
        let sum = i128::from_str(sum_minor).map_err(|_| bad("amount_minor", sum_minor))?;
        Ok(ForecastCell {
            close_date: NaiveDate::from_str(close_date)
                .map_err(|_| bad("close_date", close_date))?,
            owner: UserId::from_bytes(
                owner
                    .try_into()
                    .map_err(|_| bad("owner", &format!("{owner:?}")))?,
            ),
            category: ForecastCategory::ALL
                .into_iter()
                .find(|c| c.as_str() == category)
                .ok_or_else(|| bad("category", category))?,
            probability: u8::try_from(probability)
                .map_err(|_| bad("probability", &probability.to_string()))?,
            currency,
            deals: u64::try_from(deals).map_err(|_| bad("count", &deals.to_string()))?,
            amount: Decimal::try_from_i128_with_scale(sum, scale)
                .map_err(|_| bad("amount_minor", sum_minor))?,
        })
    }
}

/// The filters of an [`OpportunityQuery`] for [`records_page`](crate::records_page): the
/// equality filters, and the close date range as an extra condition (dates formatted here,
/// never input text).
pub fn deal_filters(query: &OpportunityQuery) -> (Vec<(&'static str, Value)>, String) {
    let mut filters = Vec::new();
    let id = |b: &[u8; 16]| Value::Bytes(b.to_vec());
    if let Some(o) = query.owner {
        filters.push(("owner", id(o.as_bytes())));
    }
    if let Some(a) = query.account {
        filters.push(("account", id(a.as_bytes())));
    }
    if let Some(p) = query.pipeline {
        filters.push(("pipeline", id(p.as_bytes())));
    }
    if let Some(s) = &query.stage {
        filters.push(("stage", Value::Text(s.clone())));
    }
    if let Some(o) = query.outcome {
        filters.push(("outcome", Value::Text(o.as_str().into())));
    }
    let mut extra = String::new();
    if let Some(d) = query.close_from {
        extra.push_str(&format!(" AND close_date >= '{}'", date_text(d)));
    }
    if let Some(d) = query.close_to {
        extra.push_str(&format!(" AND close_date <= '{}'", date_text(d)));
    }
    (filters, extra)
}

/// A date as the `close_date` column compares it: `YYYY-MM-DD`, clamped to the years a deal
/// may close in (1900 to 9999), which keeps every comparison with stored dates as it was.
fn date_text(date: NaiveDate) -> String {
    let first = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    let last = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX);
    date.clamp(first, last).format("%Y-%m-%d").to_string()
}
