//! `crm report`: RFM, ABC, the CLV models' fit, and the staff scorecard, as tables and charts.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use crm::analytics::score::purchase_log;
use crm::analytics::{calibration_summary, BgNbd, BgNbdFit, GammaGamma, GammaGammaFit, TimeUnit};
use crm::chrono::{Duration, NaiveDate, Utc};
use crm::kpi::{scorecard, Group, Grouping};
use crm::rust_decimal::Decimal;
use crm::value_class::{abc, rfm, AbcClass, AbcLimits};
use crm::{Currency, CustomerId, CustomerQuery, PageRequest};
use serde_json::{json, Value};

use crate::chart;
use crate::db::{user_label, Db, Failure};
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
    /// Service-level compliance per staff member and KPI rule, over the last 90 days.
    Scorecard,
}

/// What every report takes.
pub struct Options {
    /// Only purchases in this currency count.
    pub currency: Currency,
    /// The report's day, if given.
    pub as_of: Option<NaiveDate>,
}

impl Options {
    /// The options from the command line's text.
    pub fn parse(currency: &str, as_of: Option<&str>) -> Result<Self, Failure> {
        let currency = Currency::from_str(currency).map_err(|_| {
            Failure::new(format!("--currency: {currency:?} is not an ISO 4217 code"))
        })?;
        let as_of = as_of
            .map(|d| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| Failure::new(format!("--as-of: {d:?} is not a date (YYYY-MM-DD)")))
            })
            .transpose()?;
        Ok(Options { currency, as_of })
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
    // A report is a table; one whose JSON is not its table's rows also gives that document.
    let mut json = None;
    let (table, svg) = match kind {
        Kind::Rfm | Kind::Abc => {
            let as_of = options.as_of.unwrap_or(today);
            let names = names(db).await?;
            let log = purchase_log(&db.crm, db.tenant, options.currency).await?;
            let rows = rfm(
                log.into_iter().map(|p| (p.customer, p.date, p.amount)),
                as_of,
            )?;
            let revenue: Vec<(CustomerId, Decimal)> =
                rows.iter().map(|r| (r.customer, r.monetary)).collect();
            let classes = abc(&revenue, AbcLimits::default())?;
            if kind == Kind::Rfm {
                let mut table = Table::new(&[
                    "customer",
                    "name",
                    "recency_days",
                    "frequency",
                    "monetary",
                    "r",
                    "f",
                    "m",
                    "segment",
                    "abc",
                ]);
                for (row, (_, class)) in rows.iter().zip(&classes.classes) {
                    table.push(vec![
                        row.customer.to_string().into(),
                        names.get(&row.customer).cloned().into(),
                        row.recency_days.into(),
                        row.frequency.into(),
                        row.monetary.to_string().into(),
                        row.r.into(),
                        row.f.into(),
                        row.m.into(),
                        row.segment.as_str().into(),
                        class.as_str().into(),
                    ]);
                }
                let cells: Vec<(u8, u8, Decimal)> =
                    rows.iter().map(|r| (r.r, r.f, r.monetary)).collect();
                (table, chart::rfm_grid(&cells, as_of, options.currency))
            } else {
                let mut table = Table::new(&[
                    "class",
                    "customers",
                    "customer_share",
                    "revenue",
                    "revenue_share",
                ]);
                let percent = |d: Decimal| (d * Decimal::from(100)).round_dp(1).to_string();
                for (class, s) in [AbcClass::A, AbcClass::B, AbcClass::C]
                    .iter()
                    .zip(&classes.shares)
                {
                    table.push(vec![
                        class.as_str().into(),
                        s.customers.into(),
                        percent(s.customer_share).into(),
                        s.revenue.to_string().into(),
                        percent(s.revenue_share).into(),
                    ]);
                }
                let mut sorted: Vec<Decimal> = revenue.iter().map(|r| r.1).collect();
                sorted.sort_unstable_by(|a, b| b.cmp(a));
                let shares = [classes.shares[0].customers, classes.shares[1].customers];
                (
                    table,
                    chart::pareto(&sorted, shares, as_of, options.currency),
                )
            }
        }
        Kind::Clv => {
            let end = options.as_of.unwrap_or(today - Duration::days(182));
            let (table, doc, svg) = clv(db, options.currency, end, today).await?;
            json = Some(doc);
            (table, svg)
        }
        Kind::Scorecard => scorecard_report(db).await?,
    };
    // The chart first: when it cannot be written, nothing is.
    if let Some(path) = chart {
        let svg = svg.map_err(|e| Failure::new(format!("--chart: {e}")))?;
        std::fs::write(path, svg)
            .map_err(|e| Failure::new(format!("--chart: {}: {e}", path.display())))?;
        eprintln!("chart written to {}", path.display());
    }
    match (json, format) {
        (Some(doc), Format::Json) => {
            serde_json::to_writer_pretty(&mut *out, &doc)
                .map_err(|e| Failure::new(e.to_string()))?;
            writeln!(out)?;
        }
        _ => table.write(format, out)?,
    }
    Ok(())
}

/// Every customer's name, by id.
async fn names(db: &Db) -> Result<BTreeMap<CustomerId, String>, Failure> {
    let mut names = BTreeMap::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let got = db
            .t()
            .customers()
            .search(&CustomerQuery::all(), &page)
            .await?;
        names.extend(got.items.into_iter().map(|c| (c.id, c.name.to_string())));
        match got.next {
            Some(next) => page = PageRequest::after(next, PageRequest::MAX_LIMIT),
            None => return Ok(names),
        }
    }
}

/// Fits both models on the purchases up to `end` and checks the purchase model on the
/// ones after it (up to `today`): per number of repeat purchases in calibration, the mean
/// actual against the mean expected repeat purchases in the holdout.
async fn clv(
    db: &Db,
    currency: Currency,
    end: NaiveDate,
    today: NaiveDate,
) -> Result<(Table, Value, Result<String, String>), Failure> {
    if end >= today {
        return Err(Failure::new(format!(
            "--as-of: the calibration end {end} leaves no days after it to check the fit against (today is {today})"
        )));
    }
    let log = purchase_log(&db.crm, db.tenant, currency).await?;
    let unit = TimeUnit::Weeks;
    // Distinct purchase days after the calibration end, per customer: the holdout.
    let mut holdout: BTreeMap<CustomerId, BTreeSet<NaiveDate>> = BTreeMap::new();
    for p in log.iter().filter(|p| p.date > end && p.date <= today) {
        holdout.entry(p.customer).or_default().insert(p.date);
    }
    let holdout_weeks = (today - end).num_days() as f64 / unit.days();
    let fitted = tokio::task::spawn_blocking(move || {
        let summary = calibration_summary(log, end, unit).map_err(|e| e.to_string())?;
        let observations = BgNbdFit::observations(&summary);
        let purchases = BgNbd::fit(&observations).map_err(|e| format!("BG/NBD: {e}"))?;
        let spend = GammaGamma::fit(&GammaGammaFit::observations(&summary))
            .map_err(|e| format!("Gamma-Gamma: {e}"))?;
        let mut by_x: BTreeMap<u32, (u32, f64, f64)> = BTreeMap::new();
        for (row, o) in summary.iter().zip(&observations) {
            let expected = purchases
                .params
                .expected_purchases(holdout_weeks, o)
                .map_err(|e| e.to_string())?;
            let actual = holdout.get(&row.customer).map_or(0, |d| d.len()) as f64;
            let slot = by_x.entry(row.frequency.min(7)).or_default();
            slot.0 += 1;
            slot.1 += actual;
            slot.2 += expected;
        }
        Ok::<_, String>((summary.len(), purchases, spend, by_x))
    })
    .await
    .map_err(|e| Failure::new(e.to_string()))?
    .map_err(|e| Failure::new(format!("the fit failed: {e}")))?;
    let (customers, purchases, spend, by_x) = fitted;
    let (bg, gg) = (purchases.params, spend.params);
    let doc = json!({
            "calibration_end": end.to_string(),
            "holdout_end": today.to_string(),
            "customers": customers,
            "repeat_customers": spend.customers,
            "r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b,
            "log_likelihood": purchases.log_likelihood,
            "p": gg.p, "q": gg.q, "gamma": gg.gamma,
            "holdout": by_x.iter().map(|(x, (n, actual, expected))| json!({
                "repeat_purchases": x, "customers": n,
                "actual": actual / f64::from(*n), "expected": expected / f64::from(*n),
            })).collect::<Vec<Value>>(),
    });
    let mut table = Table::new(&["model", "parameter", "value"]);
    for (model, name, value) in [
        ("BG/NBD", "r", bg.r),
        ("BG/NBD", "alpha", bg.alpha),
        ("BG/NBD", "a", bg.a),
        ("BG/NBD", "b", bg.b),
        ("Gamma-Gamma", "p", gg.p),
        ("Gamma-Gamma", "q", gg.q),
        ("Gamma-Gamma", "gamma", gg.gamma),
    ] {
        table.push(vec![
            model.into(),
            name.into(),
            json!((value * 1e4).round() / 1e4),
        ]);
    }
    let points: Vec<(u32, u32, f64, f64)> = by_x
        .iter()
        .map(|(x, (n, actual, expected))| {
            (*x, *n, actual / f64::from(*n), expected / f64::from(*n))
        })
        .collect();
    let svg = chart::calibration(&points, end, today);
    Ok((table, doc, svg))
}

/// Compliance per staff member and rule, cases opened in the last 90 days.
async fn scorecard_report(db: &Db) -> Result<(Table, Result<String, String>), Failure> {
    let now = db.crm.now();
    let engine = db.t().kpis().engine().await?;
    let mut cases = Vec::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let got = db.t().cases().list(&Default::default(), &page).await?;
        cases.extend(got.items);
        match got.next {
            Some(next) => page = PageRequest::after(next, PageRequest::MAX_LIMIT),
            None => break,
        }
    }
    let mut customers = BTreeMap::new();
    for id in cases.iter().map(|c| c.customer).collect::<BTreeSet<_>>() {
        customers.insert(id, db.t().customers().get(id).await?);
    }
    let card = scorecard(
        &engine,
        &cases,
        &customers,
        now - Duration::days(90),
        now,
        now,
        Grouping::Person,
        &|_| None,
    );
    let goals: BTreeMap<String, f64> = engine
        .rules()
        .map(|r| (r.key.as_str().to_string(), r.compliance_goal))
        .collect();
    let mut table = Table::new(&[
        "rule",
        "person",
        "measured",
        "met",
        "breached",
        "compliance",
        "goal",
        "goal_reached",
    ]);
    let mut bars = Vec::new();
    for line in &card.lines {
        let person = match line.group {
            Group::Person(u) => user_label(u),
            _ => "unassigned".to_string(),
        };
        let goal = goals.get(line.rule.as_str()).copied().unwrap_or(1.0);
        table.push(vec![
            line.rule.as_str().into(),
            person.clone().into(),
            line.measured.into(),
            line.met.into(),
            line.breached.into(),
            json!((line.compliance * 1000.0).round() / 10.0),
            json!((goal * 1000.0).round() / 10.0),
            (if line.goal_reached { "yes" } else { "no" }).into(),
        ]);
        bars.push(chart::Bar {
            rule: line.rule.as_str().to_string(),
            person,
            compliance: line.compliance,
            goal,
        });
    }
    Ok((table, chart::scorecard(&bars)))
}
