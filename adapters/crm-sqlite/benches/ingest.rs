//! Ingest benchmark: interactions logged through the adapter's batch call, against bare
//! rusqlite inserts of the same rows into a table of the same shape, in the same run.
//!
//! `cargo bench -p crm-sqlite --bench ingest [-- --rows N --customers M --batch B]`
//! (defaults: 1,000,000 rows, 100,000 customers, batches of 10,000).
//!
//! The adapter side goes through `interactions().log_batch` (validation, idempotency keys, customer
//! checks, profile deltas, one transaction per batch). The baseline inserts the same rows
//! with one prepared statement per row and one transaction per batch into an identical
//! `interactions` table (same indexes) in a second database file opened with the same
//! settings, and maintains no profiles. Batches alternate between the two sides so machine
//! noise hits both alike.

use crm_core::WriteOptions;
use crm_testkit::bench_arg as arg;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use crm_core::{Crm, CustomerId, CustomerStore, Interaction, TenantId};
use crm_sqlite::SqliteStore;
use crm_testkit::Generator;
use rusqlite::{params, Connection};

const BARE_INSERT: &str = "INSERT INTO interactions (tenant_id, id, customer_id, channel, \
    direction, kind, handled_by, occurred_at, subject, body, amount, currency, duration_secs, \
    wait_secs, case_id, attributes, source, external_id, recorded_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

fn bare_insert(conn: &mut Connection, tenant: TenantId, batch: &[Interaction]) {
    let tx = conn.transaction().expect("begin");
    {
        let mut stmt = tx.prepare_cached(BARE_INSERT).expect("prepare");
        for i in batch {
            let attributes = if i.attributes.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&i.attributes).expect("json"))
            };
            stmt.execute(params![
                tenant.as_bytes().as_slice(),
                i.id.as_bytes().as_slice(),
                i.customer.as_bytes().as_slice(),
                i.channel.as_str(),
                i.direction.as_str(),
                i.kind.as_str(),
                i.handled_by.as_ref().map(|u| u.as_bytes().as_slice()),
                i.occurred_at.timestamp_micros(),
                i.subject,
                i.body,
                i.amount.map(|m| m.amount().to_string()),
                i.amount.map(|m| m.currency().code().to_string()),
                i.duration_secs,
                i.wait_secs,
                i.case.as_ref().map(|c| c.as_bytes().as_slice()),
                attributes,
                i.key.source().as_str(),
                i.key.external_id(),
                i.recorded_at.timestamp_micros(),
            ])
            .expect("insert");
        }
    }
    tx.commit().expect("commit");
}

fn rate(rows: usize, t: StdDuration) -> f64 {
    rows as f64 / t.as_secs_f64()
}

fn main() {
    let rows = arg("--rows", 1_000_000);
    let n_customers = arg("--customers", 100_000);
    let batch_size = arg("--batch", 10_000).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let store = SqliteStore::open(dir.path().join("adapter.db")).expect("open adapter db");
    let baseline_path = dir.path().join("baseline.db");
    // Same schema and settings for the baseline; its rows go straight into `interactions`.
    drop(SqliteStore::open(&baseline_path).expect("create baseline db"));
    let mut bare = Connection::open(&baseline_path).expect("open baseline");
    SqliteStore::builder(&baseline_path)
        .configure(&bare)
        .expect("configure baseline");

    let tenant = TenantId::new();
    let mut gen = Generator::new(2024);
    let setup = Instant::now();
    let customers: Vec<CustomerId> = runtime.block_on(async {
        let mut ids = Vec::with_capacity(n_customers);
        let mut batch = Vec::with_capacity(10_000);
        for i in 0..n_customers {
            let mut c = gen.customer();
            c.version = 1;
            ids.push(c.id);
            batch.push(c);
            if batch.len() == 10_000 || i + 1 == n_customers {
                store
                    .insert_customers(tenant, std::mem::take(&mut batch), WriteOptions::new())
                    .await
                    .expect("insert customers");
            }
        }
        ids
    });
    eprintln!(
        "registered {n_customers} customers in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let crm = Crm::new(Arc::new(store.clone()));
    let start: DateTime<Utc> = DateTime::from_timestamp(1_735_689_600, 0).expect("2025-01-01");
    let per_batch_span = Duration::days(365) / (rows.div_ceil(batch_size) as i32).max(1);
    let (mut t_adapter, mut t_bare) = (StdDuration::ZERO, StdDuration::ZERO);
    let mut done = 0;
    let mut inserted = 0;
    let mut batch_no = 0;
    while done < rows {
        let n = batch_size.min(rows - done);
        let from = start + per_batch_span * batch_no;
        let batch = gen.interactions(&customers, n, from, per_batch_span);

        let t = Instant::now();
        bare_insert(&mut bare, tenant, &batch);
        t_bare += t.elapsed();

        let t = Instant::now();
        let report = runtime
            .block_on(crm.tenant(tenant).interactions().log_batch(batch))
            .expect("log batch");
        t_adapter += t.elapsed();
        inserted += report.inserted;

        done += n;
        batch_no += 1;
    }
    assert_eq!(inserted, rows, "every generated row is new");

    let (a, b) = (rate(rows, t_adapter), rate(rows, t_bare));
    println!("rows {rows}, customers {n_customers}, batch {batch_size}");
    println!(
        "bare rusqlite inserts   : {:>10.0} rows/s ({:.2} s)",
        b,
        t_bare.as_secs_f64()
    );
    println!(
        "crm-sqlite log_batch    : {:>10.0} rows/s ({:.2} s)",
        a,
        t_adapter.as_secs_f64()
    );
    println!("ratio adapter/bare      : {:.2} (goal >= 0.50)", a / b);
}
