//! Scoped segment previews on PostgreSQL: a five-clause rule over generated customers with
//! profiles, owned by 100 salespeople of a sales organisation
//! (`crm_testkit::scoped::SalesOrg`), previewed (counted, with a first page) through the
//! system handle and through the scoped handles of a team lead (own and subordinates) and
//! a region head (unit and descendants), in the same run, on a throwaway cluster
//! (`crm_testkit::postgres`; or `CRM_TEST_POSTGRES_URL`).
//!
//! `cargo bench -p crm-postgres --bench segments [-- --customers N]` (default 1,000,000).
//! Loading takes a few minutes at the default size; it is timed apart and not part of any
//! rate.

use crm_testkit::bench_arg as arg;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use crm_core::notify::StaticDirectory;
use crm_core::segment::parse;
use crm_core::{Crm, CustomerStore, ManualClock, TenantId, WriteOptions};
use crm_postgres::PostgresStore;
use crm_testkit::postgres::{postgres_for_tests, PostgresTarget};
use crm_testkit::rules::segment_schema;
use crm_testkit::scoped::{time_previews, SalesOrg};
use crm_testkit::Generator;

const RULE: &str = r#"lifecycle = "active" and revenue >= 500 and days_since_last_purchase <= 180 and "vip" in tags and attr.seats > 10"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = arg("--customers", 1_000_000);
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
    let now: DateTime<Utc> = "2025-07-01T00:00:00Z".parse().expect("date");
    let schema = segment_schema();
    let rule = parse(RULE).expect("rule");
    let tenant = TenantId::new();
    let sales = SalesOrg::new(100);
    let directory = Arc::new(StaticDirectory::new());
    directory.set_org(tenant, sales.org.clone());
    let crm = Crm::new(Arc::new(store.clone()))
        .with_clock(Arc::new(ManualClock::new(now)))
        .with_directory(directory);

    let t = Instant::now();
    let mut gen = Generator::new(99);
    let mut customers = Vec::with_capacity(10_000);
    let mut interactions = Vec::with_capacity(30_000);
    for i in 0..n {
        let mut c = gen.segment_customer(now);
        c.version = 1;
        sales.assign(i, &mut c);
        interactions.extend(gen.purchase_history(c.id, now));
        customers.push(c);
        if customers.len() == 10_000 || i + 1 == n {
            store
                .insert_customers(tenant, std::mem::take(&mut customers), WriteOptions::new())
                .await
                .expect("customers");
            crm.tenant(tenant)
                .interactions()
                .log_batch(std::mem::take(&mut interactions))
                .await
                .expect("interactions");
        }
    }
    store.fold_profiles(tenant).await.expect("fold");
    eprintln!("loaded {n} customers in {:.1} s", t.elapsed().as_secs_f64());

    let ((all, unscoped), scoped) =
        time_previews(&crm, tenant, &rule, &schema, &sales.principals(), 3)
            .await
            .expect("previews");
    println!("rule: {RULE}");
    println!(
        "PostgreSQL preview, unscoped  : {:>12.0} customers/s ({all} members, {:.0} ms)",
        n as f64 / unscoped,
        unscoped * 1000.0
    );
    for s in scoped {
        println!(
            "PostgreSQL preview as {:<35}: {:>12.0} customers/s ({} members, {:.0} ms), ratio to unscoped {:.2} (goal >= 0.5)",
            s.principal,
            n as f64 / s.seconds,
            s.members,
            s.seconds * 1000.0,
            unscoped / s.seconds
        );
    }
    drop(target);
}
