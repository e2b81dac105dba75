//! Sales benchmark: the weighted forecast and the funnel over generated deals with their
//! stage histories (default 1,000,000 deals, about 5,000,000 stage changes), through the
//! `Sales` service on PostgreSQL, against the same aggregations written directly in SQL and
//! run on a bare `tokio-postgres` connection to the same database, in the same run.
//!
//! `cargo bench -p crm-postgres --bench sales [-- --deals N] [--runs R] [--forecast-only]`
//! (a throwaway cluster, or
//! `CRM_TEST_POSTGRES_URL`).
//!
//! The rows are loaded with multi-row inserts on the bare connection (exactly the columns
//! and JSON records the adapter writes, from `crm_sql::sales::DealColumns`); loading is
//! timed separately and is part of no rate.

use crm_testkit::bench_arg as arg;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use crm_core::sales::{Dimension, ForecastQuery, FunnelQuery, Period};
use crm_core::{Crm, Customer, CustomerStore, SalesStore, TenantId, WriteOptions};
use crm_postgres::PostgresStore;
use crm_sql::sales::DealColumns;
use crm_testkit::deals::{pipeline, DealGenerator};
use crm_testkit::postgres::{postgres_for_tests, PostgresTarget};
use tokio_postgres::types::ToSql;

/// The forecast by quarter, owner, category and currency, directly in SQL.
const RAW_FORECAST: &str = "SELECT owner, category, currency, \
     substr(close_date, 1, 4) || '-' || ((CAST(substr(close_date, 6, 2) AS INTEGER) + 2) / 3) AS quarter, \
     count(*), sum(amount_minor), CAST(sum(amount_minor * probability) AS TEXT) \
     FROM opportunities WHERE tenant_id = $1 AND close_date >= $2 AND close_date <= $3 \
     AND outcome = 'open' GROUP BY owner, category, currency, quarter";

/// The funnel's furthest step per deal, summed by owner, outcome and step, directly in SQL
/// (the generated pipeline's stages written out).
const RAW_FUNNEL: &str = "SELECT owner, outcome, reached, count(*), sum(cycle) FROM (\
     SELECT o.owner AS owner, o.outcome AS outcome, max(CASE s.to_stage \
     WHEN 'qualify' THEN 0 WHEN 'discovery' THEN 1 WHEN 'proposal' THEN 2 \
     WHEN 'negotiation' THEN 3 WHEN 'contract' THEN 4 WHEN 'won' THEN 5 END) AS reached, \
     (o.closed_at - o.created_at) / 1000000 AS cycle \
     FROM opportunities o JOIN stage_changes s ON s.tenant_id = o.tenant_id AND s.opportunity = o.id \
     WHERE o.tenant_id = $1 AND o.pipeline = $2 AND o.created_at >= $3 AND o.created_at < $4 \
     GROUP BY o.id, o.owner, o.outcome, o.closed_at, o.created_at) d GROUP BY owner, outcome, reached";

/// The stays in each stage, summed by owner and stage, directly in SQL.
const RAW_STAYS: &str = "SELECT owner, stage, count(*), sum((next_at - at) / 1000000) FROM (\
     SELECT o.owner AS owner, s.to_stage AS stage, s.at AS at, \
     lead(s.at) OVER (PARTITION BY s.opportunity ORDER BY s.version) AS next_at \
     FROM opportunities o JOIN stage_changes s ON s.tenant_id = o.tenant_id AND s.opportunity = o.id \
     WHERE o.tenant_id = $1 AND o.pipeline = $2 AND o.created_at >= $3 AND o.created_at < $4) x \
     WHERE next_at IS NOT NULL GROUP BY owner, stage";

/// Rows of one multi-row insert.
const CHUNK: usize = 1000;

/// `INSERT INTO table (columns) VALUES ($1, ..), (..)` for `rows` rows of `width` values.
fn insert(table: &str, columns: &str, width: usize, rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({columns}) VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * width + c + 1));
        }
        sql.push(')');
    }
    sql
}

type Param = Box<dyn ToSql + Sync + Send>;

async fn flush(
    client: &tokio_postgres::Client,
    table: &str,
    columns: &str,
    width: usize,
    rows: &mut Vec<Param>,
) {
    if rows.is_empty() {
        return;
    }
    let sql = insert(table, columns, width, rows.len() / width);
    let refs: Vec<&(dyn ToSql + Sync)> = rows
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    client.execute(&sql, &refs).await.expect("insert");
    rows.clear();
}

/// Best of `runs` timings of `f`, in seconds, with its last answer.
async fn best<T, F, Fut>(runs: usize, mut f: F) -> (f64, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f().await;
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(v);
    }
    (best, out.expect("at least one run"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = arg("--deals", 1_000_000);
    let runs = arg("--runs", 3);
    let funnel_too = !std::env::args().any(|a| a == "--forecast-only");
    let Some(target) = postgres_for_tests() else {
        return;
    };
    let url = match &target {
        PostgresTarget::Throwaway(server) => server.connection_string("postgres"),
        PostgresTarget::External(db) => db.connection_string(),
    };
    let store = PostgresStore::builder(&url)
        .migrate_on_connect(true)
        .connect()
        .await
        .expect("adapter");
    let (bare, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("bare connection");
    tokio::spawn(connection);
    let tenant = TenantId::new();
    let pipeline = pipeline();
    let account = Customer::organization("Account").build().expect("account");
    store
        .insert_customer(tenant, &account, WriteOptions::new())
        .await
        .expect("account");
    store
        .insert_pipeline(tenant, &pipeline)
        .await
        .expect("pipeline");

    let load = Instant::now();
    let start: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().expect("date");
    let mut gen = DealGenerator::new(7, pipeline.clone(), account.id, start);
    let deal_columns = format!(
        "tenant_id, id, {}, version, record",
        crm_sql::sales::DEAL_COLUMNS
    );
    let change_columns = "tenant_id, opportunity, version, at, from_stage, to_stage, record";
    let (mut deals, mut changes): (Vec<Param>, Vec<Param>) = (Vec::new(), Vec::new());
    let mut stage_changes = 0usize;
    let t = tenant.as_bytes().to_vec();
    for _ in 0..n {
        let (deal, steps) = gen.deal();
        let c = DealColumns::of(&deal).expect("columns");
        let row: [Param; 17] = [
            Box::new(t.clone()),
            Box::new(deal.id.as_bytes().to_vec()),
            Box::new(c.owner),
            Box::new(c.account),
            Box::new(c.pipeline),
            Box::new(c.stage),
            Box::new(c.outcome.to_string()),
            Box::new(c.category.to_string()),
            Box::new(c.probability),
            Box::new(c.currency),
            Box::new(c.amount_minor),
            Box::new(c.close_date),
            Box::new(c.created_at),
            Box::new(c.closed_at),
            Box::new(c.order_ref),
            Box::new(deal.version as i64),
            Box::new(serde_json::to_string(&deal).expect("json")),
        ];
        deals.extend(row);
        for s in &steps {
            let row: [Param; 7] = [
                Box::new(t.clone()),
                Box::new(deal.id.as_bytes().to_vec()),
                Box::new(s.version as i64),
                Box::new(s.at.timestamp_micros()),
                Box::new(s.from.as_ref().map(|k| k.to_string())),
                Box::new(s.to.to_string()),
                Box::new(serde_json::to_string(s).expect("json")),
            ];
            changes.extend(row);
            if changes.len() >= 5 * CHUNK * 7 {
                flush(&bare, "stage_changes", change_columns, 7, &mut changes).await;
            }
        }
        stage_changes += steps.len();
        if deals.len() >= CHUNK * 17 {
            flush(&bare, "opportunities", &deal_columns, 17, &mut deals).await;
        }
    }
    flush(&bare, "opportunities", &deal_columns, 17, &mut deals).await;
    flush(&bare, "stage_changes", change_columns, 7, &mut changes).await;
    for table in ["opportunities", "stage_changes"] {
        bare.batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await
            .expect("analyze");
    }
    eprintln!(
        "loaded {n} deals and {stage_changes} stage changes in {:.1} s",
        load.elapsed().as_secs_f64()
    );

    let crm = Crm::new(Arc::new(store));
    let sales = crm.tenant(tenant).sales();
    let from = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    let to = NaiveDate::from_ymd_opt(2026, 12, 31).expect("date");
    let query = ForecastQuery {
        period: Period::Quarter,
        ..ForecastQuery::new(from, to)
    };
    let (ours, forecast) = best(runs, || async {
        sales
            .forecast(&query, None)
            .await
            .expect("forecast")
            .rollup(&[Dimension::Period, Dimension::Owner, Dimension::Category])
            .expect("rollup")
    })
    .await;
    let (raw, raw_rows) = best(runs, || async {
        bare.query(RAW_FORECAST, &[&t, &from.to_string(), &to.to_string()])
            .await
            .expect("raw forecast")
            .iter()
            .map(|r| r.get::<_, String>(6).parse::<i128>().expect("sum"))
            .collect::<Vec<i128>>()
    })
    .await;
    let weighted: rust_decimal::Decimal = forecast.rows.iter().map(|r| r.weighted).sum();
    // amount_minor is in cents and the probability in percent: 10^4 per unit.
    assert_eq!(
        weighted * rust_decimal::Decimal::from(10_000),
        rust_decimal::Decimal::from_i128_with_scale(raw_rows.iter().sum(), 0),
        "the service and the raw SQL disagree"
    );
    assert_eq!(forecast.rows.len(), raw_rows.len());
    println!(
        "forecast: {} rows; service {:.3} s, raw SQL {:.3} s: ratio {:.2}",
        forecast.rows.len(),
        ours,
        raw,
        raw / ours
    );

    if !funnel_too {
        return;
    }
    let funnel = FunnelQuery {
        pipeline: pipeline.id,
        from: start,
        to: start + chrono::Duration::days(366),
    };
    let (ours, report) = best(runs, || async {
        sales.funnel(&funnel, None).await.expect("funnel")
    })
    .await;
    let p = pipeline.id.as_bytes().to_vec();
    let (from_us, to_us) = (funnel.from.timestamp_micros(), funnel.to.timestamp_micros());
    let (raw, raw_deals) = best(runs, || async {
        let bind: [&(dyn ToSql + Sync); 4] = [&t, &p, &from_us, &to_us];
        let deals: i64 = bare
            .query(RAW_FUNNEL, &bind)
            .await
            .expect("raw funnel")
            .iter()
            .map(|r| r.get::<_, i64>(3))
            .sum();
        let stays = bare.query(RAW_STAYS, &bind).await.expect("raw stays").len();
        assert!(stays > 0);
        deals
    })
    .await;
    assert_eq!(report.all.deals, raw_deals as u64);
    println!(
        "funnel: {} deals, win rate {:.3}; service {:.3} s, raw SQL {:.3} s: ratio {:.2}",
        report.all.deals,
        report.all.win_rate.unwrap_or(0.0),
        ours,
        raw,
        raw / ours
    );
    drop(target);
}
