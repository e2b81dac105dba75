//! The sales tables' shared SQL: forecast cells, funnel cells and stage times aggregated in
//! the database, and decoding them back (amounts exact).

use std::str::FromStr;

use chrono::NaiveDate;
use crm_core::sales::{
    ForecastCategory, ForecastCell, ForecastQuery, FunnelCell, FunnelQuery, Opportunity,
    OpportunityQuery, Outcome, Period, Pipeline, StageTime,
};
use crm_core::{Currency, Error, Money, StageKey, UserId};
use rust_decimal::Decimal;

use crate::rule::{Dialect, Sql, Value, Writer};

/// An instant as microseconds since the Unix epoch (instants are checked to be in range).
fn micros(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

/// The columns an `opportunities` row indexes besides its record, in the order of
/// [`DealColumns`]' fields.
pub const DEAL_COLUMNS: &str =
    "owner, account, pipeline, stage, outcome, category, probability, currency, amount_minor, \
     close_date, created_at, closed_at, order_ref";

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
    /// When it was created, microseconds since the Unix epoch.
    pub created_at: i64,
    /// When it closed, microseconds since the Unix epoch.
    pub closed_at: Option<i64>,
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
            created_at: micros(deal.created_at),
            closed_at: deal.closed_at.map(micros),
            order_ref: deal.order.as_ref().map(|o| o.reference.to_string()),
        })
    }
}

/// What a `Duplicate` on the `opportunities` table names: the id, and the order reference
/// when the deal has one (its unique index is the other way to collide).
pub fn duplicate_key(deal: &Opportunity) -> String {
    match &deal.order {
        Some(o) => format!("id {} or order {}", deal.id, o.reference),
        None => format!("id {}", deal.id),
    }
}

/// The query summing the deals `query` counts into forecast cells: columns the cell's date
/// ([`ForecastQuery::cell_date`]),
/// owner, category, probability, currency, count, and the sum of `amount_minor` as text
/// (exact in every database).
pub fn forecast_cells(dialect: &dyn Dialect, tenant: &[u8], query: &ForecastQuery) -> Sql {
    let mut w = Writer::new(dialect);
    // The first day of the period, from the `YYYY-MM-DD` text (see `ForecastQuery::cell_date`).
    let day = match (query.daily, query.period) {
        (true, _) => "close_date",
        (false, Period::Month) => "substr(close_date, 1, 8) || '01'",
        (false, Period::Quarter) => {
            "substr(close_date, 1, 5) || CASE WHEN substr(close_date, 6, 2) <= '03' THEN '01' \
             WHEN substr(close_date, 6, 2) <= '06' THEN '04' \
             WHEN substr(close_date, 6, 2) <= '09' THEN '07' ELSE '10' END || '-01'"
        }
        (false, Period::Year) => "substr(close_date, 1, 5) || '01-01'",
    };
    w.push("SELECT ");
    w.push(day);
    w.push(
        " AS day, owner, category, probability, currency, count(*), \
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
    w.push(" GROUP BY day, owner, category, probability, currency");
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

/// The deals a funnel follows, joined with their stage history (trusted text; the values
/// are bound).
fn cohort(w: &mut Writer<'_>, tenant: &[u8], query: &FunnelQuery) {
    w.push(
        " FROM opportunities o JOIN stage_changes s \
         ON s.tenant_id = o.tenant_id AND s.opportunity = o.id WHERE o.tenant_id = ",
    );
    w.bind(Value::Bytes(tenant.to_vec()));
    w.push(" AND o.pipeline = ");
    w.bind(Value::Bytes(query.pipeline.as_bytes().to_vec()));
    w.push(" AND o.created_at >= ");
    w.bind(Value::Integer(micros(query.from)));
    w.push(" AND o.created_at < ");
    w.bind(Value::Integer(micros(query.to)));
}

/// The query summing the deals `query` follows into funnel cells: columns owner, outcome,
/// the furthest step reached, count, and the cycle seconds summed as text (null while
/// every deal of the cell is open).
pub fn funnel_cells(
    dialect: &dyn Dialect,
    tenant: &[u8],
    query: &FunnelQuery,
    pipeline: &Pipeline,
) -> Sql {
    let mut w = Writer::new(dialect);
    w.push(
        "SELECT owner, outcome, reached, count(*), CAST(sum(cycle) AS TEXT) FROM (\
         SELECT o.owner AS owner, o.outcome AS outcome, CAST(COALESCE(max(CASE s.to_stage",
    );
    for (key, position) in crm_core::sales::steps(pipeline) {
        w.push(" WHEN ");
        w.bind(Value::Text(key.to_string()));
        // A number of ours, not input.
        w.push(&format!(" THEN {position}"));
    }
    w.push(
        " END), 0) AS BIGINT) AS reached, \
         (o.closed_at - o.created_at) / 1000000 AS cycle",
    );
    cohort(&mut w, tenant, query);
    w.push(" GROUP BY o.id, o.owner, o.outcome, o.closed_at, o.created_at) d");
    w.push(" GROUP BY owner, outcome, reached");
    w.finish()
}

/// The query summing the stays in each stage of the deals `query` follows: columns owner,
/// stage, count, and the stays' whole seconds summed as text.
pub fn stage_times(dialect: &dyn Dialect, tenant: &[u8], query: &FunnelQuery) -> Sql {
    let mut w = Writer::new(dialect);
    w.push(
        "SELECT owner, stage, count(*), CAST(sum((next_at - at) / 1000000) AS TEXT) FROM (\
         SELECT o.owner AS owner, s.to_stage AS stage, s.at AS at, \
         lead(s.at) OVER (PARTITION BY s.opportunity ORDER BY s.version) AS next_at",
    );
    cohort(&mut w, tenant, query);
    w.push(") x WHERE next_at IS NOT NULL GROUP BY owner, stage");
    w.finish()
}

/// A funnel cell from the columns of a [`funnel_cells`] row.
pub fn funnel_cell(
    owner: &[u8],
    outcome: &str,
    reached: i64,
    deals: i64,
    cycle_seconds: Option<&str>,
    corrupt: impl Fn(String) -> Error,
) -> Result<FunnelCell, Error> {
    let bad = |what: &str, value: String| corrupt(format!("funnel {what}: {value:?}"));
    Ok(FunnelCell {
        owner: user(owner).ok_or_else(|| bad("owner", format!("{owner:?}")))?,
        outcome: [Outcome::Open, Outcome::Won, Outcome::Lost]
            .into_iter()
            .find(|o| o.as_str() == outcome)
            .ok_or_else(|| bad("outcome", outcome.into()))?,
        reached: u16::try_from(reached).map_err(|_| bad("reached", reached.to_string()))?,
        deals: u64::try_from(deals).map_err(|_| bad("count", deals.to_string()))?,
        cycle_seconds: cycle_seconds
            .map(|t| i128::from_str(t).map_err(|_| bad("cycle", t.into())))
            .transpose()?
            .unwrap_or(0),
    })
}

/// A stage time from the columns of a [`stage_times`] row.
pub fn stage_time(
    owner: &[u8],
    stage: &str,
    stays: i64,
    seconds: &str,
    corrupt: impl Fn(String) -> Error,
) -> Result<StageTime, Error> {
    let bad = |what: &str, value: String| corrupt(format!("stage time {what}: {value:?}"));
    Ok(StageTime {
        owner: user(owner).ok_or_else(|| bad("owner", format!("{owner:?}")))?,
        stage: StageKey::parse(stage).map_err(|_| bad("stage", stage.into()))?,
        stays: u64::try_from(stays).map_err(|_| bad("count", stays.to_string()))?,
        seconds: i128::from_str(seconds).map_err(|_| bad("seconds", seconds.into()))?,
    })
}

fn user(bytes: &[u8]) -> Option<UserId> {
    Some(UserId::from_bytes(bytes.try_into().ok()?))
}
