//! `crm report`: the value reports ([`value`]) and the team's ([`team`]), as tables, CSV
//! or JSON, and SVG charts.

mod team;
mod value;

use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use crm::chrono::{Duration, NaiveDate, Utc};
use crm::Currency;
use serde_json::Value;

use crate::db::{blocking, Db, Failure};
use crate::output::{Format, Table};

/// Which report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Recency, frequency and monetary scores (1-5) and segment per customer.
    Rfm,
    /// ABC classes: the few customers bringing most revenue (A: 80%, B: the next 15%).
    Abc,
    /// BG/NBD and Gamma-Gamma fitted on purchases up to --as-of, checked on the purchases
    /// after it.
    Clv,
    /// The chance each customer is still active (BG/NBD) against the weeks since their
    /// last purchase, least likely first.
    Alive,
    /// Service-level compliance per staff member and KPI rule, over the last 90 days.
    Scorecard,
    /// Customers per owner and how many of them nobody contacted for 30 or 90 days; the
    /// unowned are the pool.
    Pool,
    /// Open deals closing in the next two quarters: amount and probability-weighted
    /// amount by quarter, owner and forecast category.
    Pipeline,
    /// The funnel of deals opened in the last year: reached, went on, days per stage.
    Funnel,
}

/// What every report takes.
pub struct Options {
    /// Only purchases in this currency count.
    pub currency: Currency,
    /// The report's day, if given.
    pub as_of: Option<NaiveDate>,
    /// The pipeline of `pipeline` and `funnel` (default: the first).
    pub pipeline: Option<String>,
}

impl Options {
    /// The options from the command line's text.
    pub fn parse(
        currency: &str,
        as_of: Option<&str>,
        pipeline: Option<String>,
    ) -> Result<Self, Failure> {
        let currency = Currency::from_str(currency).map_err(|_| {
            Failure::new(format!("--currency: {currency:?} is not an ISO 4217 code"))
        })?;
        let as_of = as_of
            .map(|d| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| Failure::new(format!("--as-of: {d:?} is not a date (YYYY-MM-DD)")))
            })
            .transpose()?;
        Ok(Options {
            currency,
            as_of,
            pipeline,
        })
    }
}

/// A report: its table, the JSON document when that is not the table's rows, and its
/// chart (`None` for a report without one).
pub struct Report {
    /// The rows.
    pub table: Table,
    /// What `--format json` prints instead of the rows.
    pub json: Option<Value>,
    /// The chart as SVG, or why there is nothing to draw.
    pub svg: Option<Result<String, String>>,
}

impl Report {
    /// A table with a chart.
    pub fn new(table: Table, svg: Result<String, String>) -> Self {
        Report {
            table,
            json: None,
            svg: Some(svg),
        }
    }

    /// A table without a chart.
    pub fn table(table: Table) -> Self {
        Report {
            table,
            json: None,
            svg: None,
        }
    }
}

/// Runs one report.
pub async fn run(
    db: &Db,
    kind: Kind,
    options: &Options,
    format: Format,
    chart: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let today = Utc::now().date_naive();
    let report = match kind {
        Kind::Rfm | Kind::Abc => {
            let as_of = options.as_of.unwrap_or(today);
            value::rfm_abc(db, options, as_of, kind == Kind::Rfm).await?
        }
        Kind::Clv => {
            let end = options.as_of.unwrap_or(today - Duration::days(182));
            value::clv(db, options.currency, end, today).await?
        }
        Kind::Alive => {
            let as_of = options.as_of.unwrap_or(today);
            value::alive(db, options.currency, as_of).await?
        }
        Kind::Scorecard => team::scorecard_report(db).await?,
        Kind::Pool => team::pool(db).await?,
        Kind::Pipeline => team::pipeline_report(db, options.pipeline.as_deref()).await?,
        Kind::Funnel => team::funnel(db, options.pipeline.as_deref()).await?,
    };
    // The chart first: when it cannot be written, nothing is.
    if let Some(path) = chart {
        let svg = report
            .svg
            .ok_or_else(|| {
                Failure::new(format!(
                    "--chart: the {} report has no chart",
                    format!("{kind:?}").to_lowercase()
                ))
            })?
            .map_err(|e| Failure::new(format!("--chart: {e}")))?;
        let file = path.to_path_buf();
        blocking(move || {
            std::fs::write(&file, svg)
                .map_err(|e| Failure::new(format!("--chart: {}: {e}", file.display())))
        })
        .await?;
        eprintln!("chart written to {}", path.display());
    }
    match (report.json, format) {
        (Some(doc), Format::Json) => {
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)?;
        }
        _ => report.table.write(format, out)?,
    }
    Ok(())
}
