//! The team reports: service-level scorecards, the pool, the pipeline and its funnel.

use std::collections::{BTreeMap, BTreeSet};

use crm::chrono::Duration;
use crm::kpi::{scorecard, Group, Grouping};
use crm::PageRequest;
use serde_json::json;

use super::Report;
use crate::chart;
use crate::db::{user_label, Db, Failure};
use crate::output::Table;

/// Compliance per staff member and rule, cases opened in the last 90 days.
pub async fn scorecard_report(db: &Db) -> Result<Report, Failure> {
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
    let ids: Vec<crm::CustomerId> = cases
        .iter()
        .map(|c| c.customer)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let customers: BTreeMap<_, _> = db
        .crm
        .storage()
        .get_customers(db.tenant, &ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
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
    Ok(Report::new(table, chart::scorecard(&bars)))
}

/// Who holds how many customers, and how many of them nobody contacted for a month or a
/// quarter (the ones a pool policy would return first); the unowned are the pool.
pub async fn pool(db: &Db) -> Result<Report, Failure> {
    let now = db.crm.now();
    // owner -> (customers, quiet 30+ days, quiet 90+ days, never contacted)
    let mut held: BTreeMap<Option<crm::UserId>, [u64; 4]> = BTreeMap::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let got = db
            .t()
            .customers()
            .search(&crm::CustomerQuery::all(), &page)
            .await?;
        let ids: Vec<crm::CustomerId> = got.items.iter().map(|c| c.id).collect();
        let profiles = db.crm.storage().get_profiles(db.tenant, &ids).await?;
        for c in &got.items {
            let counts = held.entry(c.owner).or_default();
            counts[0] += 1;
            match profiles.get(&c.id).and_then(|p| p.last_contact_at) {
                None => counts[3] += 1,
                Some(last) => {
                    let days = (now - last).num_days();
                    counts[1] += u64::from(days >= 30);
                    counts[2] += u64::from(days >= 90);
                }
            }
        }
        match got.next {
            Some(next) => page = PageRequest::after(next, PageRequest::MAX_LIMIT),
            None => break,
        }
    }
    let mut table = Table::new(&[
        "owner",
        "customers",
        "quiet_30_days",
        "quiet_90_days",
        "never_contacted",
    ]);
    for (owner, [n, quiet30, quiet90, never]) in held {
        table.push(vec![
            owner
                .map_or_else(|| "(pool)".to_string(), user_label)
                .into(),
            n.into(),
            quiet30.into(),
            quiet90.into(),
            never.into(),
        ]);
    }
    Ok(Report::table(table))
}

/// The pipeline named `name` (or the first).
async fn pipeline(db: &Db, name: Option<&str>) -> Result<crm::sales::Pipeline, Failure> {
    let all = db.t().sales().pipelines().await?;
    let found = match name {
        Some(name) => all.into_iter().find(|p| p.name.as_str() == name),
        None => all.into_iter().next(),
    };
    found.ok_or_else(|| match name {
        Some(name) => Failure::new(format!("--pipeline: no pipeline named {name:?}")),
        None => Failure::new("the tenant has no sales pipeline (`crm demo` makes one)"),
    })
}

/// Open deals closing in the next two quarters, by quarter, owner and forecast category:
/// their amount and the amount weighted by each stage's probability.
pub async fn pipeline_report(db: &Db, name: Option<&str>) -> Result<Report, Failure> {
    use crm::sales::{ForecastQuery, Period};
    let pipeline = pipeline(db, name).await?;
    let today = db.crm.now().date_naive();
    let query = ForecastQuery {
        pipeline: Some(pipeline.id),
        period: Period::Quarter,
        ..ForecastQuery::new(today, today + Duration::days(183))
    };
    let forecast = db.t().sales().forecast(&query, None).await?;
    let mut table = Table::new(&[
        "quarter", "owner", "category", "deals", "amount", "weighted", "currency",
    ]);
    for row in &forecast.rows {
        table.push(vec![
            row.period.map(|d| d.to_string()).into(),
            row.owner.map(user_label).into(),
            row.category.map(|c| c.as_str()).into(),
            row.deals.into(),
            row.amount.round_dp(2).to_string().into(),
            row.weighted.round_dp(2).to_string().into(),
            row.currency.to_string().into(),
        ]);
    }
    Ok(Report::table(table))
}

/// The funnel of the deals opened in the last year: per stage, how many reached it, the
/// share that went on, the average days spent in it; won, lost and the win rate.
pub async fn funnel(db: &Db, name: Option<&str>) -> Result<Report, Failure> {
    use crm::sales::FunnelQuery;
    let pipeline = pipeline(db, name).await?;
    let now = db.crm.now();
    let query = FunnelQuery {
        pipeline: pipeline.id,
        from: now - Duration::days(365),
        to: now,
    };
    let report = db.t().sales().funnel(&query, None).await?;
    let all = &report.all;
    let mut table = Table::new(&["stage", "reached", "went_on_percent", "average_days"]);
    let round = |x: f64| json!((x * 10.0).round() / 10.0);
    for step in &all.steps {
        table.push(vec![
            step.stage.as_str().into(),
            step.reached.into(),
            step.converted.map(|c| round(c * 100.0)).into(),
            step.average_days.map(round).into(),
        ]);
    }
    table.push(vec!["(lost)".into(), all.lost.into()]);
    let doc = serde_json::to_value(all).map_err(|e| Failure::new(e.to_string()))?;
    Ok(Report {
        json: Some(doc),
        ..Report::table(table)
    })
}
