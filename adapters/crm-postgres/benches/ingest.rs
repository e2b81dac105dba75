//! Ingest benchmark on PostgreSQL: interactions logged through the adapter's batch call,
//! against a bare binary `COPY` of the same rows into a table of the same shape, in the same
//! run, on a throwaway cluster (`crm_testkit::postgres`; or `CRM_TEST_POSTGRES_URL`).
//!
//! `cargo bench -p crm-postgres --bench ingest [-- --rows N --customers M --batch B]`
//! (defaults: 1,000,000 rows, 100,000 customers, batches of 10,000).
//!
//! The adapter side goes through `interactions().log_batch` (validation, idempotency keys, customer
//! checks, profile deltas appended, one transaction per batch); at the end the pending deltas
//! are folded into the stored profiles, timed apart and also added to the adapter's time. The baseline copies
//! the same rows with `COPY ... FROM STDIN (FORMAT binary)`, one transaction per batch, into
//! the `interactions` table of a second database migrated to the same schema (same keys and
//! indexes), with no profiles and no checks. Batches alternate between the two sides.

use crm_core::WriteOptions;
use crm_testkit::bench_arg as arg;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use crm_core::{Crm, CustomerId, CustomerStore, Interaction, TenantId};
use crm_postgres::PostgresStore;
use crm_testkit::postgres::{postgres_for_tests, PostgresTarget, ScratchDatabase};
use crm_testkit::Generator;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::NoTls;

const COPY: &str = "COPY interactions (tenant_id, id, customer_id, channel, direction, kind, \
    handled_by, occurred_at, subject, body, amount, currency, duration_secs, wait_secs, case_id, \
    attributes, source, external_id, recorded_at) FROM STDIN (FORMAT binary)";

async fn bare_copy(client: &mut tokio_postgres::Client, tenant: TenantId, batch: &[Interaction]) {
    let types = [
        Type::BYTEA,
        Type::BYTEA,
        Type::BYTEA,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::BYTEA,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::BYTEA,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
    ];
    let tx = client.transaction().await.expect("begin");
    let sink = tx.copy_in(COPY).await.expect("copy");
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    let t = tenant.as_bytes().to_vec();
    for i in batch {
        let attributes = if i.attributes.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&i.attributes).expect("json"))
        };
        let row: [&(dyn ToSql + Sync); 19] = [
            &t,
            &i.id.as_bytes().as_slice(),
            &i.customer.as_bytes().as_slice(),
            &i.channel.as_str(),
            &i.direction.as_str(),
            &i.kind.as_str(),
            &i.handled_by.as_ref().map(|u| u.as_bytes().as_slice()),
            &i.occurred_at.timestamp_micros(),
            &i.subject,
            &i.body,
            &i.amount.map(|m| m.amount().to_string()),
            &i.amount.map(|m| m.currency().code().to_string()),
            &i.duration_secs.map(i64::from),
            &i.wait_secs.map(i64::from),
            &i.case.as_ref().map(|c| c.as_bytes().as_slice()),
            &attributes,
            &i.key.source().as_str(),
            &i.key.external_id(),
            &i.recorded_at.timestamp_micros(),
        ];
        writer.as_mut().write(&row).await.expect("row");
    }
    writer.finish().await.expect("finish");
    tx.commit().await.expect("commit");
}

fn rate(rows: usize, t: StdDuration) -> f64 {
    rows as f64 / t.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rows = arg("--rows", 1_000_000);
    let n_customers = arg("--customers", 100_000);
    let batch_size = arg("--batch", 10_000).max(1);
    let Some(target) = postgres_for_tests() else {
        return;
    };
    let mut scratch = Vec::new();
    let (adapter_url, baseline_url) = match &target {
        PostgresTarget::Throwaway(server) => {
            server
                .psql("postgres", "CREATE DATABASE baseline")
                .expect("create baseline");
            (
                server.connection_string("postgres"),
                server.connection_string("baseline"),
            )
        }
        PostgresTarget::External(db) => {
            let url = std::env::var("CRM_TEST_POSTGRES_URL").expect("set for an external target");
            let baseline = ScratchDatabase::create(&url).expect("baseline database");
            let pair = (db.connection_string(), baseline.connection_string());
            scratch.push(baseline);
            pair
        }
    };
    let store = PostgresStore::builder(&adapter_url)
        .migrate_on_connect(true)
        .connect()
        .await
        .expect("adapter");
    drop(
        PostgresStore::builder(&baseline_url)
            .migrate_on_connect(true)
            .connect()
            .await
            .expect("baseline schema"),
    );
    let (mut bare, connection) = tokio_postgres::connect(&baseline_url, NoTls)
        .await
        .expect("baseline");
    tokio::spawn(connection);

    let tenant = TenantId::new();
    let mut gen = Generator::new(2024);
    let t = Instant::now();
    let mut customers: Vec<CustomerId> = Vec::with_capacity(n_customers);
    let mut chunk = Vec::with_capacity(10_000);
    for i in 0..n_customers {
        let mut c = gen.customer();
        c.version = 1;
        customers.push(c.id);
        chunk.push(c);
        if chunk.len() == 10_000 || i + 1 == n_customers {
            store
                .insert_customers(tenant, std::mem::take(&mut chunk), WriteOptions::new())
                .await
                .expect("customers");
        }
    }
    eprintln!(
        "registered {n_customers} customers in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let crm = Crm::new(Arc::new(store.clone()));
    let start: DateTime<Utc> = DateTime::from_timestamp(1_735_689_600, 0).expect("2025-01-01");
    let per_batch = Duration::days(365) / (rows.div_ceil(batch_size) as i32).max(1);
    let (mut t_adapter, mut t_bare) = (StdDuration::ZERO, StdDuration::ZERO);
    let (mut done, mut inserted, mut n) = (0, 0, 0);
    while done < rows {
        let size = batch_size.min(rows - done);
        let batch = gen.interactions(&customers, size, start + per_batch * n, per_batch);
        let t = Instant::now();
        bare_copy(&mut bare, tenant, &batch).await;
        t_bare += t.elapsed();
        let t = Instant::now();
        inserted += crm
            .tenant(tenant)
            .interactions()
            .log_batch(batch)
            .await
            .expect("log batch")
            .inserted;
        t_adapter += t.elapsed();
        done += size;
        n += 1;
    }
    assert_eq!(inserted, rows, "every generated row is new");
    // What the batches left pending, folded into the stored profiles at the end (segment
    // queries do this; hosts may also schedule it).
    let t = Instant::now();
    let folded = store.fold_profiles(tenant).await.expect("fold");
    let t_fold = t.elapsed();
    let (a, b) = (rate(rows, t_adapter), rate(rows, t_bare));
    let with_fold = rate(rows, t_adapter + t_fold);
    println!("rows {rows}, customers {n_customers}, batch {batch_size}");
    println!(
        "bare binary COPY        : {b:>10.0} rows/s ({:.2} s)",
        t_bare.as_secs_f64()
    );
    println!(
        "crm-postgres log_batch  : {a:>10.0} rows/s ({:.2} s)",
        t_adapter.as_secs_f64()
    );
    println!("ratio adapter/bare      : {:.2} (goal >= 0.50)", a / b);
    println!(
        "fold of {folded} deltas     : {:.2} s; with it {with_fold:.0} rows/s, ratio {:.2}",
        t_fold.as_secs_f64(),
        with_fold / b
    );
}
