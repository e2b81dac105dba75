//! The value reports: RFM, ABC, the CLV models' fit, and P(alive).

use std::collections::{BTreeMap, BTreeSet};

use crm::analytics::score::purchase_log;
use crm::analytics::{calibration_summary, BgNbd, BgNbdFit, GammaGamma, GammaGammaFit, TimeUnit};
use crm::chrono::NaiveDate;
use crm::rust_decimal::Decimal;
use crm::value_class::{abc, rfm, AbcClass, AbcLimits};
use crm::{Currency, CustomerId, CustomerQuery};
use serde_json::{json, Value};

use super::{Options, Report};
use crate::chart;
use crate::db::{Db, Failure};
use crate::output::Table;

/// RFM (`rfm` true) or ABC as of `as_of`.
pub async fn rfm_abc(
    db: &Db,
    options: &Options,
    as_of: NaiveDate,
    rfm_rows: bool,
) -> Result<Report, Failure> {
    let names = names(db).await?;
    let log = purchase_log(&db.crm, db.tenant, options.currency).await?;
    let rows = rfm(
        log.into_iter().map(|p| (p.customer, p.date, p.amount)),
        as_of,
    )?;
    let revenue: Vec<(CustomerId, Decimal)> =
        rows.iter().map(|r| (r.customer, r.monetary)).collect();
    let classes = abc(&revenue, AbcLimits::default())?;
    if rfm_rows {
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
        let cells: Vec<(u8, u8, Decimal)> = rows.iter().map(|r| (r.r, r.f, r.monetary)).collect();
        Ok(Report::new(
            table,
            chart::rfm_grid(&cells, as_of, options.currency),
        ))
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
        Ok(Report::new(
            table,
            chart::pareto(&sorted, shares, as_of, options.currency),
        ))
    }
}

/// Every customer's name, by id.
pub async fn names(db: &Db) -> Result<BTreeMap<CustomerId, String>, Failure> {
    let customers = db.t().customers();
    let all = crate::records::collect(u32::MAX, |page| {
        let customers = &customers;
        async move { customers.search(&CustomerQuery::all(), &page).await }
    })
    .await?;
    Ok(all
        .into_iter()
        .map(|c| (c.id, c.name.to_string()))
        .collect())
}

/// Fits both models on the purchases up to `end` and checks the purchase model on the
/// ones after it (up to `today`): per number of repeat purchases in calibration, the mean
/// actual against the mean expected repeat purchases in the holdout.
pub async fn clv(
    db: &Db,
    currency: Currency,
    end: NaiveDate,
    today: NaiveDate,
) -> Result<Report, Failure> {
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
    Ok(Report {
        json: Some(doc),
        ..Report::new(table, chart::calibration(&points, end, today))
    })
}

/// The chance each customer is still active (BG/NBD fitted on every purchase up to
/// `as_of`), against the weeks since their last purchase: customers who bought often and
/// then stopped are the ones at risk.
pub async fn alive(db: &Db, currency: Currency, as_of: NaiveDate) -> Result<Report, Failure> {
    let names = names(db).await?;
    let log = purchase_log(&db.crm, db.tenant, currency).await?;
    let unit = TimeUnit::Weeks;
    let scored = tokio::task::spawn_blocking(move || {
        let summary = calibration_summary(log, as_of, unit).map_err(|e| e.to_string())?;
        let observations = BgNbdFit::observations(&summary);
        let fit = BgNbd::fit(&observations).map_err(|e| format!("BG/NBD: {e}"))?;
        let mut rows: Vec<(CustomerId, u32, f64, f64, f64)> = summary
            .iter()
            .zip(&observations)
            .map(|(row, o)| {
                let since = o.t - o.t_x;
                (
                    row.customer,
                    row.frequency,
                    since,
                    o.t,
                    fit.params.p_alive(o),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.4.total_cmp(&b.4).then(a.0.cmp(&b.0)));
        Ok::<_, String>(rows)
    })
    .await
    .map_err(|e| Failure::new(e.to_string()))?
    .map_err(|e| Failure::new(format!("the fit failed: {e}")))?;
    let mut table = Table::new(&[
        "customer",
        "name",
        "repeat_purchases",
        "weeks_since_last",
        "weeks_observed",
        "p_alive",
    ]);
    let round = |x: f64, places: i32| {
        let scale = 10f64.powi(places);
        json!((x * scale).round() / scale)
    };
    for (id, x, since, t, p) in &scored {
        table.push(vec![
            id.to_string().into(),
            names.get(id).cloned().into(),
            (*x).into(),
            round(*since, 1),
            round(*t, 1),
            round(*p, 3),
        ]);
    }
    let points: Vec<(u32, f64, f64)> = scored.iter().map(|r| (r.1, r.2, r.4)).collect();
    Ok(Report::new(table, chart::alive(&points, as_of)))
}
