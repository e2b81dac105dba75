//! Scheduled-work benchmark: KPI evaluation through the due instants against the full scan
//! of every record, on PostgreSQL (a throwaway cluster; default 1,000,000 customers owned
//! by 100 people, 100,000 open cases, the rules of `examples/service_levels.rs` plus a
//! follow-up gap).
//!
//! `cargo bench -p crm-postgres --bench kpi_due [-- --customers N] [--cases M] [--hours H] [--idle-scan 0]`
//!
//! After loading, one run at the start computes every instant and the next ones, a minute
//! later, settle the records the runs before changed. The database is then copied
//! (`CREATE DATABASE .. TEMPLATE`), so both measured sides start from the same state: the
//! indexed run and the full scan with nothing due (best of 3 indexed runs), and then, `H`
//! hours later (default 4: about 1% of the instants), one indexed run on the first copy and
//! one full scan on the second, which must raise the same alerts.

use crm_testkit::bench_arg as arg;
use std::sync::Arc;
use std::time::Instant;

use crm_core::{Crm, ManualClock, Storage, TenantId};
use crm_postgres::PostgresStore;
use crm_testkit::postgres::{postgres_for_tests, PostgresServer, PostgresTarget};
use crm_testkit::workload::{load, measure, settle, Workload};

async fn open(server: &PostgresServer, db: &str) -> Arc<dyn Storage> {
    let store = PostgresStore::builder(&server.connection_string(db))
        .migrate_on_connect(true)
        .connect()
        .await
        .expect("connect");
    Arc::new(store)
}

/// Copies database `from` to `to` once nobody is connected to it any more.
fn copy(server: &PostgresServer, from: &str, to: &str) {
    for _ in 0..50 {
        match server.psql("postgres", &format!("CREATE DATABASE {to} TEMPLATE {from}")) {
            Ok(_) => return,
            Err(e) if e.contains("being accessed") => {
                std::thread::sleep(std::time::Duration::from_millis(200))
            }
            Err(e) => panic!("copy: {e}"),
        }
    }
    panic!("{from} stayed in use");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let w = Workload {
        customers: arg("--customers", 1_000_000),
        cases: arg("--cases", 100_000),
        ..Workload::standard()
    };
    let hours = arg("--hours", 4) as i64;
    let server = match postgres_for_tests() {
        Some(PostgresTarget::Throwaway(server)) => server,
        Some(PostgresTarget::External(_)) => {
            eprintln!("kpi_due copies databases: it needs a throwaway cluster (unset CRM_TEST_POSTGRES_URL)");
            return;
        }
        None => return,
    };
    server
        .psql("postgres", "CREATE DATABASE kpi_a")
        .expect("create");
    let tenant = TenantId::new();
    let clock = Arc::new(ManualClock::new(w.start));
    {
        let store = open(&server, "kpi_a").await;
        let t = Instant::now();
        load(&store, tenant, &w, |c, k| {
            if k == 0 && c % 200_000 == 0 || k == w.cases {
                eprintln!(
                    "loaded {c} customers, {k} cases ({:.0} s)",
                    t.elapsed().as_secs_f64()
                );
            }
        })
        .await;
        println!(
            "load: {} customers, {} cases in {:.1} s",
            w.customers,
            w.cases,
            t.elapsed().as_secs_f64()
        );
        let kpis = Crm::new(store)
            .with_clock(clock.clone())
            .tenant(tenant)
            .kpis();
        settle(&kpis, &clock, &w).await;
    }
    copy(&server, "kpi_a", "kpi_b");
    let crm = |store| {
        Crm::new(store)
            .with_clock(clock.clone())
            .tenant(tenant)
            .kpis()
    };
    let indexed = crm(open(&server, "kpi_a").await);
    let scanned = crm(open(&server, "kpi_b").await);
    measure(
        &indexed,
        &scanned,
        &clock,
        &w,
        hours,
        arg("--idle-scan", 1) != 0,
    )
    .await;
}
