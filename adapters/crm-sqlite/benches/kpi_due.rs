//! Scheduled-work benchmark: KPI evaluation through the due instants against the full scan
//! of every record, on one SQLite file (default 1,000,000 customers owned by 100 people,
//! 100,000 open cases, the rules of `examples/service_levels.rs` plus a follow-up gap).
//!
//! `cargo bench -p crm-sqlite --bench kpi_due [-- --customers N] [--cases M] [--hours H] [--idle-scan 0]`
//!
//! After loading, one run at the start computes every instant and the next ones, a minute
//! later, settle the records the runs before changed. The database is then copied,
//! so both measured sides start from the same state: the indexed run and the full scan
//! with nothing due (best of 3 indexed runs), and then, `H` hours later (default 4: about
//! 1% of the instants), one indexed run on the first copy and one full scan on the second,
//! which must raise the same alerts.

use crm_testkit::bench_arg as arg;
use std::sync::Arc;
use std::time::Instant;

use crm_core::{Crm, ManualClock, Storage, TenantId};
use crm_sqlite::SqliteStore;
use crm_testkit::workload::{load, measure, settle, Workload};

fn open(path: &std::path::Path) -> Arc<dyn Storage> {
    Arc::new(SqliteStore::open(path).expect("open"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let w = Workload {
        customers: arg("--customers", 1_000_000),
        cases: arg("--cases", 100_000),
        ..Workload::standard()
    };
    let hours = arg("--hours", 4) as i64;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (a_path, b_path) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let tenant = TenantId::new();
    let clock = Arc::new(ManualClock::new(w.start));
    {
        let store = open(&a_path);
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
    std::fs::copy(&a_path, &b_path).expect("copy");
    let crm = |path| {
        Crm::new(open(path))
            .with_clock(clock.clone())
            .tenant(tenant)
            .kpis()
    };
    let (indexed, scanned) = (crm(&a_path), crm(&b_path));
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
