//! Segment benchmark: a five-clause rule evaluated over generated customers with profiles,
//! in memory (the core's compiled rule, one thread) and in SQLite (the adapter's compiled
//! SQL, counting members with one query), and RFM + ABC over the same customers'
//! purchases. The customers are owned by 100 salespeople of a sales organisation
//! (`crm_testkit::scoped::SalesOrg`); the same rule's preview is then counted through the
//! scoped handles of a team lead (own and subordinates) and a region head (unit and
//! descendants), against the unscoped preview, in the same run.
//!
//! `cargo bench -p crm-sqlite --bench segments [-- --customers N] [--no-sqlite]`
//! (default 1,000,000 customers).
//! Loading the SQLite database through the adapter takes a few minutes at the default size;
//! it is timed separately and not part of any rate.

use crm_core::WriteOptions;
use crm_testkit::bench_arg as arg;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use crm_core::notify::StaticDirectory;
use crm_core::segment::{parse, CompiledRule, Subject};
use crm_core::value_class::{abc, rfm, AbcLimits};
use crm_core::{Crm, CustomerStore, InteractionKind, Profile, SegmentStore, TenantId};
use crm_sqlite::SqliteStore;
use crm_testkit::rules::segment_schema;
use crm_testkit::scoped::{time_previews, SalesOrg};
use crm_testkit::Generator;
use rust_decimal::Decimal;

const RULE: &str = r#"lifecycle = "active" and revenue >= 500 and days_since_last_purchase <= 180 and "vip" in tags and attr.seats > 10"#;

fn main() {
    let n = arg("--customers", 1_000_000);
    let now: DateTime<Utc> = "2025-07-01T00:00:00Z".parse().expect("date");
    let schema = segment_schema();
    let rule = parse(RULE).expect("rule");
    let compiled = CompiledRule::new(&rule, &schema).expect("well-typed");

    let t = Instant::now();
    let mut gen = Generator::new(99);
    let sales = SalesOrg::new(100);
    let mut customers = Vec::with_capacity(n);
    let mut histories = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = gen.segment_customer(now);
        c.version = 1;
        sales.assign(i, &mut c);
        // Everyone has bought at least once, so RFM covers every customer.
        histories.push(gen.purchase_history(c.id, now));
        customers.push(c);
    }
    let profiles: Vec<Profile> = histories
        .iter()
        .map(|h| Profile::rebuild(h).expect("generated totals fit"))
        .collect();
    eprintln!(
        "generated {n} customers and their profiles in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // In memory: best of three passes.
    let mut best = f64::INFINITY;
    let mut members = 0;
    for _ in 0..3 {
        let t = Instant::now();
        members = customers
            .iter()
            .zip(&profiles)
            .filter(|(c, p)| {
                compiled.matches(
                    &Subject {
                        customer: c,
                        profile: p,
                        scores: None,
                        classes: None,
                        sales: None,
                    },
                    now,
                )
            })
            .count();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("rule: {RULE}");
    println!(
        "in-memory rule evaluation : {:>12.0} customers/s ({members} of {n} match, {:.1} ms)",
        n as f64 / best,
        best * 1000.0
    );

    // RFM + ABC over the purchases.
    let purchases: Vec<(u64, chrono::NaiveDate, Decimal)> = histories
        .iter()
        .enumerate()
        .flat_map(|(i, h)| {
            h.iter()
                .filter(|x| x.kind == InteractionKind::Purchase)
                .filter_map(move |x| {
                    x.amount
                        .map(|m| (i as u64, x.occurred_at.date_naive(), m.amount()))
                })
        })
        .collect();
    let t = Instant::now();
    let rows = rfm(purchases.iter().cloned(), now.date_naive()).expect("totals fit");
    let revenue: Vec<(u64, Decimal)> = rows.iter().map(|r| (r.customer, r.monetary)).collect();
    let classes = abc(&revenue, AbcLimits::default()).expect("limits");
    let took = t.elapsed().as_secs_f64();
    println!(
        "RFM + ABC                 : {:>12.0} customers/s ({} customers with purchases, {} purchases, {:.0} ms; goal < 1 s per million)",
        rows.len() as f64 / took,
        rows.len(),
        purchases.len(),
        took * 1000.0
    );
    assert_eq!(classes.classes.len(), rows.len());

    if std::env::args().any(|a| a == "--no-sqlite") {
        return;
    }
    // SQLite: load through the adapter, then count members with the compiled SQL.
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("segments.db")).expect("open");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tenant = TenantId::new();
    let t = Instant::now();
    runtime.block_on(async {
        for chunk in customers.chunks(10_000) {
            store
                .insert_customers(tenant, chunk.to_vec(), WriteOptions::new())
                .await
                .expect("insert");
        }
        let crm = Crm::new(Arc::new(store.clone()));
        let mut batch = Vec::new();
        for h in histories {
            batch.extend(h);
            if batch.len() >= 10_000 {
                crm.tenant(tenant)
                    .interactions()
                    .log_batch(std::mem::take(&mut batch))
                    .await
                    .expect("log");
            }
        }
        if !batch.is_empty() {
            crm.tenant(tenant)
                .interactions()
                .log_batch(batch)
                .await
                .expect("log");
        }
    });
    eprintln!("loaded SQLite in {:.1} s", t.elapsed().as_secs_f64());
    let mut best = f64::INFINITY;
    let mut counted = 0;
    for _ in 0..3 {
        let t = Instant::now();
        counted = runtime
            .block_on(store.count_matching(tenant, &rule, &schema, now))
            .expect("count");
        best = best.min(t.elapsed().as_secs_f64());
    }
    assert_eq!(counted as usize, members, "SQLite and memory agree");
    println!(
        "SQLite rule evaluation    : {:>12.0} customers/s ({counted} match, {:.0} ms)",
        n as f64 / best,
        best * 1000.0
    );

    // Scoped previews: the principal's reach compiled into the query.
    let directory = Arc::new(StaticDirectory::new());
    directory.set_org(tenant, sales.org.clone());
    let crm = Crm::new(Arc::new(store.clone()))
        .with_clock(Arc::new(crm_core::ManualClock::new(now)))
        .with_directory(directory);
    let ((all, unscoped), scoped) = runtime
        .block_on(time_previews(
            &crm,
            tenant,
            &rule,
            &schema,
            &sales.principals(),
            3,
        ))
        .expect("previews");
    assert_eq!(all as usize, members);
    println!(
        "SQLite preview, unscoped  : {:>12.0} customers/s ({all} members, {:.0} ms)",
        n as f64 / unscoped,
        unscoped * 1000.0
    );
    for s in scoped {
        println!(
            "SQLite preview as {:<35}: {:>12.0} customers/s ({} members, {:.0} ms), ratio to unscoped {:.2} (goal >= 0.5)",
            s.principal,
            n as f64 / s.seconds,
            s.members,
            s.seconds * 1000.0,
            unscoped / s.seconds
        );
    }
}
