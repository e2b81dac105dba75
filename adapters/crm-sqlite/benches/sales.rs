//! Sales benchmark: the weighted forecast and the funnel over generated deals with their
//! stage histories (default 1,000,000 deals, about 5,000,000 stage changes), through the
//! `Sales` service on SQLite, against the same aggregations written directly in SQL and run
//! on a bare rusqlite connection to the same database, in the same run.
//!
//! `cargo bench -p crm-sqlite --bench sales [-- --deals N] [--runs R] [--forecast-only]`
//!
//! The rows are loaded with one bulk transaction on a bare connection (exactly the columns
//! and JSON records the adapter writes, from `crm_sql::sales::DealColumns`); loading is
//! timed separately and is part of no rate.

use crm_testkit::bench_arg as arg;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use crm_core::sales::{Dimension, ForecastQuery, FunnelQuery, Period};
use crm_core::{Crm, Customer, CustomerStore, SalesStore, TenantId, WriteOptions};
use crm_sql::sales::DealColumns;
use crm_sqlite::SqliteStore;
use crm_testkit::deals::{pipeline, DealGenerator};
use rusqlite::{params, Connection};

/// The forecast by quarter, owner, category and currency, directly in SQL.
const RAW_FORECAST: &str = "SELECT owner, category, currency, \
     substr(close_date, 1, 4) || '-' || ((CAST(substr(close_date, 6, 2) AS INTEGER) + 2) / 3) AS quarter, \
     count(*), sum(amount_minor), sum(amount_minor * probability) \
     FROM opportunities WHERE tenant_id = ?1 AND close_date >= ?2 AND close_date <= ?3 \
     AND outcome = 'open' GROUP BY owner, category, currency, quarter";

/// The funnel's furthest step per deal, summed by owner, outcome and step, directly in SQL
/// (the generated pipeline's stages written out).
const RAW_FUNNEL: &str = "SELECT owner, outcome, reached, count(*), sum(cycle) FROM (\
     SELECT o.owner AS owner, o.outcome AS outcome, max(CASE s.to_stage \
     WHEN 'qualify' THEN 0 WHEN 'discovery' THEN 1 WHEN 'proposal' THEN 2 \
     WHEN 'negotiation' THEN 3 WHEN 'contract' THEN 4 WHEN 'won' THEN 5 END) AS reached, \
     (o.closed_at - o.created_at) / 1000000 AS cycle \
     FROM opportunities o JOIN stage_changes s ON s.tenant_id = o.tenant_id AND s.opportunity = o.id \
     WHERE o.tenant_id = ?1 AND o.pipeline = ?2 AND o.created_at >= ?3 AND o.created_at < ?4 \
     GROUP BY o.id) GROUP BY owner, outcome, reached";

/// The stays in each stage, summed by owner and stage, directly in SQL.
const RAW_STAYS: &str = "SELECT owner, stage, count(*), sum((next_at - at) / 1000000) FROM (\
     SELECT o.owner AS owner, s.to_stage AS stage, s.at AS at, \
     lead(s.at) OVER (PARTITION BY s.opportunity ORDER BY s.version) AS next_at \
     FROM opportunities o JOIN stage_changes s ON s.tenant_id = o.tenant_id AND s.opportunity = o.id \
     WHERE o.tenant_id = ?1 AND o.pipeline = ?2 AND o.created_at >= ?3 AND o.created_at < ?4) \
     WHERE next_at IS NOT NULL GROUP BY owner, stage";

/// A row of [`RAW_FORECAST`]: owner, category, currency, quarter, count, amount, weighted.
type RawRow = (Vec<u8>, String, String, String, i64, i64, i64);

/// Best of `runs` timings of `f`, in seconds, with its last answer.
fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(v);
    }
    (best, out.expect("at least one run"))
}

fn main() {
    let n = arg("--deals", 1_000_000);
    let runs = arg("--runs", 3);
    let funnel_too = !std::env::args().any(|a| a == "--forecast-only");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sales.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store = SqliteStore::open(&path).expect("open");
    let tenant = TenantId::new();
    let pipeline = pipeline();
    let account = Customer::organization("Account").build().expect("account");
    runtime.block_on(async {
        store
            .insert_customer(tenant, &account, WriteOptions::new())
            .await
            .expect("account");
        store
            .insert_pipeline(tenant, &pipeline)
            .await
            .expect("pipeline");
    });

    // Load.
    let load = Instant::now();
    let start: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().expect("date");
    let mut gen = DealGenerator::new(7, pipeline.clone(), account.id, start);
    let mut bare = Connection::open(&path).expect("open bare");
    SqliteStore::builder(&path)
        .configure(&bare)
        .expect("configure");
    let mut changes = 0usize;
    {
        let tx = bare.transaction().expect("tx");
        let t = tenant.as_bytes().as_slice();
        {
            let mut deals = tx
                .prepare(
                    "INSERT INTO opportunities (tenant_id, id, owner, account, pipeline, stage, \
                     outcome, category, probability, currency, amount_minor, close_date, \
                     created_at, closed_at, order_ref, version, record) VALUES (?1, ?2, ?3, ?4, \
                     ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                )
                .expect("prepare");
            let mut history = tx
                .prepare(
                    "INSERT INTO stage_changes (tenant_id, opportunity, version, at, \
                     from_stage, to_stage, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .expect("prepare");
            for _ in 0..n {
                let (deal, steps) = gen.deal();
                let c = DealColumns::of(&deal).expect("columns");
                deals
                    .execute(params![
                        t,
                        deal.id.as_bytes().as_slice(),
                        c.owner,
                        c.account,
                        c.pipeline,
                        c.stage,
                        c.outcome,
                        c.category,
                        c.probability,
                        c.currency,
                        c.amount_minor,
                        c.close_date,
                        c.created_at,
                        c.closed_at,
                        c.order_ref,
                        deal.version as i64,
                        serde_json::to_string(&deal).expect("json")
                    ])
                    .expect("deal");
                for s in &steps {
                    history
                        .execute(params![
                            t,
                            deal.id.as_bytes().as_slice(),
                            s.version as i64,
                            s.at.timestamp_micros(),
                            s.from.as_ref().map(|k| k.as_str()),
                            s.to.as_str(),
                            serde_json::to_string(s).expect("json")
                        ])
                        .expect("change");
                }
                changes += steps.len();
            }
        }
        tx.commit().expect("commit");
    }
    bare.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("analyze");
    eprintln!(
        "loaded {n} deals and {changes} stage changes in {:.1} s",
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

    // Forecast: the service (cells in SQL, folded in the core) against the raw GROUP BY.
    let (ours, forecast) = best(runs, || {
        runtime.block_on(async {
            sales
                .forecast(&query, None)
                .await
                .expect("forecast")
                .rollup(&[Dimension::Period, Dimension::Owner, Dimension::Category])
                .expect("rollup")
        })
    });
    let (raw, raw_rows) = best(runs, || {
        let mut stmt = bare.prepare_cached(RAW_FORECAST).expect("prepare");
        let rows: Vec<RawRow> = stmt
            .query_map(
                params![
                    tenant.as_bytes().as_slice(),
                    from.to_string(),
                    to.to_string()
                ],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        rows
    });
    let weighted: rust_decimal::Decimal = forecast.rows.iter().map(|r| r.weighted).sum();
    let raw_weighted: i128 = raw_rows.iter().map(|r| i128::from(r.6)).sum();
    // amount_minor is in cents and the probability in percent: 10^4 per unit.
    assert_eq!(
        weighted * rust_decimal::Decimal::from(10_000),
        rust_decimal::Decimal::from_i128_with_scale(raw_weighted, 0),
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

    // Funnel: the service (two aggregations in SQL, the report in the core) against the
    // same two queries run bare.
    if !funnel_too {
        return;
    }
    let funnel = FunnelQuery {
        pipeline: pipeline.id,
        from: start,
        to: start + chrono::Duration::days(366),
    };
    let (ours, report) = best(runs, || {
        runtime.block_on(async { sales.funnel(&funnel, None).await.expect("funnel") })
    });
    let (raw, raw_deals) = best(runs, || {
        let bind = params![
            tenant.as_bytes().as_slice(),
            pipeline.id.as_bytes().as_slice(),
            funnel.from.timestamp_micros(),
            funnel.to.timestamp_micros()
        ];
        let mut cells = bare.prepare_cached(RAW_FUNNEL).expect("prepare");
        let deals: i64 = cells
            .query_map(bind, |r| r.get::<_, i64>(3))
            .expect("query")
            .map(|n| n.expect("row"))
            .sum();
        let mut stays = bare.prepare_cached(RAW_STAYS).expect("prepare");
        let stays: i64 = stays
            .query_map(bind, |r| r.get::<_, i64>(2))
            .expect("query")
            .map(|n| n.expect("row"))
            .sum();
        (deals, stays)
    });
    let (raw_deals, raw_stays) = raw_deals;
    assert!(raw_stays > 0);
    assert_eq!(report.all.deals, raw_deals as u64);
    println!(
        "funnel: {} deals, win rate {:.3}; service {:.3} s, raw SQL {:.3} s: ratio {:.2}",
        report.all.deals,
        report.all.win_rate.unwrap_or(0.0),
        ours,
        raw,
        raw / ours
    );
}
