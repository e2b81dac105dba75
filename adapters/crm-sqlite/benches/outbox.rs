//! Outbox benchmark: notifications enqueued through `notifications().enqueue` and delivered by the
//! core's dispatcher to a recording notifier, against bare rusqlite doing the same row work
//! (insert, then claim a batch and mark each row sent in its own transaction), in the same
//! run.
//!
//! `cargo bench -p crm-sqlite --bench outbox [-- --messages N --batch B]`
//! (defaults: 100,000 messages, enqueued in calls of 1,000, dispatched in batches of 500).
//!
//! The adapter side validates every notification, serialises it, enforces the idempotency
//! key, claims under a lease, resolves the recipient, calls the notifier and records each
//! outcome with a lease check. The baseline writes the same JSON into a table of the same
//! shape in a second database file opened with the same settings.

use crm_testkit::bench_arg as arg;
use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use crm_core::notify::{
    DispatchConfig, Dispatcher, Notification, OutboxStore, Recipient, RecordingNotifier,
    StaticDirectory,
};
use crm_core::{Crm, EmailAddress, ManualClock, TenantId};
use crm_sqlite::SqliteStore;
use rusqlite::{params, Connection};

fn notification(i: usize, to: &EmailAddress) -> Notification {
    Notification::builder(
        Recipient::Email(to.clone()),
        "reminder.follow_up",
        &format!("bench:{i}"),
    )
    .data(serde_json::json!({ "customer": format!("Customer {i}"), "due": "2026-12-01" }))
    .build()
    .expect("valid notification")
}

const BARE_SCHEMA: &str = "CREATE TABLE outbox (tenant_id BLOB NOT NULL, id BLOB NOT NULL, \
    seq INTEGER NOT NULL, ordering_key TEXT, idempotency_key TEXT NOT NULL, \
    priority INTEGER NOT NULL, state TEXT NOT NULL, \
    attempts INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL, enqueued_at INTEGER NOT NULL, \
    lease_token BLOB, lease_until INTEGER, last_error TEXT, sent_at INTEGER, \
    notification TEXT NOT NULL, PRIMARY KEY (tenant_id, id)) WITHOUT ROWID; \
    CREATE UNIQUE INDEX outbox_by_key ON outbox (tenant_id, idempotency_key); \
    CREATE UNIQUE INDEX outbox_by_seq ON outbox (tenant_id, seq); \
    CREATE INDEX outbox_due ON outbox (tenant_id, priority DESC, next_attempt_at, seq) \
    WHERE state = 'pending'; \
    CREATE INDEX outbox_ordered ON outbox (tenant_id, ordering_key, seq) \
    WHERE state = 'pending' AND ordering_key IS NOT NULL;";

/// The same rows through bare rusqlite: returns messages per second.
fn bare(path: &std::path::Path, notes: &[Notification], call: usize, batch: usize) -> f64 {
    let mut conn = Connection::open(path).expect("open");
    let options = SqliteStore::builder(path);
    options.configure(&conn).expect("configure");
    conn.execute_batch(BARE_SCHEMA).expect("schema");
    let tenant = TenantId::new();
    let t = tenant.as_bytes().to_vec();
    let start = Instant::now();
    let mut seq = 0i64;
    for chunk in notes.chunks(call) {
        let tx = conn.transaction().expect("begin");
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO outbox (tenant_id, id, seq, idempotency_key, priority, state, \
                     attempts, next_attempt_at, enqueued_at, notification) \
                     VALUES (?1, ?2, ?6, ?3, 1, 'pending', 0, ?4, ?4, ?5)",
                )
                .expect("prepare");
            for n in chunk {
                let json = serde_json::to_string(n).expect("json");
                let id = uuid::Uuid::now_v7();
                seq += 1;
                st.execute(params![
                    t,
                    id.as_bytes().as_slice(),
                    n.idempotency_key,
                    0i64,
                    json,
                    seq
                ])
                .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    loop {
        let tx = conn.transaction().expect("begin");
        let rows: Vec<(Vec<u8>, String)> = {
            let mut st = tx
                .prepare_cached(
                    "SELECT id, notification FROM outbox o WHERE tenant_id = ?1 \
                     AND state = 'pending' AND (ordering_key IS NULL OR NOT EXISTS \
                     (SELECT 1 FROM outbox e WHERE e.tenant_id = o.tenant_id \
                     AND e.ordering_key = o.ordering_key AND e.state = 'pending' \
                     AND e.seq < o.seq)) \
                     ORDER BY priority DESC, next_attempt_at, seq LIMIT ?2",
                )
                .expect("prepare");
            st.query_map(params![t, batch as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows")
        };
        for (id, _) in &rows {
            tx.execute(
                "UPDATE outbox SET lease_until = 1 WHERE tenant_id = ?1 AND id = ?2",
                params![t, id],
            )
            .expect("lease");
        }
        tx.commit().expect("commit");
        if rows.is_empty() {
            break;
        }
        for (id, json) in rows {
            let parsed: Notification = serde_json::from_str(&json).expect("parse");
            std::hint::black_box(parsed);
            let tx = conn.transaction().expect("begin");
            tx.execute(
                "UPDATE outbox SET state = 'sent', sent_at = 1, lease_until = NULL \
                 WHERE tenant_id = ?1 AND id = ?2",
                params![t, id],
            )
            .expect("sent");
            tx.commit().expect("commit");
        }
    }
    notes.len() as f64 / start.elapsed().as_secs_f64()
}

/// Through the adapter and the dispatcher: returns (enqueue/s, dispatch/s, overall/s).
async fn adapter(
    path: &std::path::Path,
    notes: &[Notification],
    call: usize,
    batch: usize,
) -> (f64, f64, f64) {
    let store = Arc::new(SqliteStore::open(path).expect("open"));
    let now = Utc::now();
    let clock = Arc::new(ManualClock::new(now));
    let crm = Crm::new(store.clone()).with_clock(clock.clone());
    let tenant = TenantId::new();
    let start = Instant::now();
    for chunk in notes.chunks(call) {
        let report = crm
            .tenant(tenant)
            .notifications()
            .enqueue(chunk.to_vec())
            .await
            .expect("notify");
        assert_eq!(report.enqueued, chunk.len());
    }
    let enqueued = start.elapsed();
    let recorder = Arc::new(RecordingNotifier::new());
    let dispatcher = Dispatcher::new(
        tenant,
        store.clone(),
        recorder.clone(),
        Arc::new(StaticDirectory::new()),
        clock,
    )
    .with_config(DispatchConfig::default().with_batch_size(batch as u32));
    let dispatch_start = Instant::now();
    loop {
        let report = dispatcher
            .run_once(now + TimeDelta::seconds(1))
            .await
            .expect("dispatch");
        if report.claimed == 0 {
            break;
        }
    }
    let dispatched = dispatch_start.elapsed();
    assert_eq!(recorder.count(), notes.len(), "every message delivered");
    assert_eq!(store.pending_count(tenant).await.expect("count"), 0);
    let n = notes.len() as f64;
    (
        n / enqueued.as_secs_f64(),
        n / dispatched.as_secs_f64(),
        n / start.elapsed().as_secs_f64(),
    )
}

fn main() {
    let messages = arg("--messages", 100_000);
    let batch = arg("--batch", 500);
    let call = 1_000;
    let to = EmailAddress::parse("ops@example.com").expect("email");
    let notes: Vec<Notification> = (0..messages).map(|i| notification(i, &to)).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let raw = bare(&dir.path().join("bare.db"), &notes, call, batch);
    let (enqueue, dispatch, overall) =
        runtime.block_on(adapter(&dir.path().join("crm.db"), &notes, call, batch));
    println!("messages: {messages}, enqueued in calls of {call}, dispatched in batches of {batch}");
    println!("adapter enqueue:  {enqueue:>10.0} messages/s");
    println!("adapter dispatch: {dispatch:>10.0} messages/s (recording notifier)");
    println!("adapter overall:  {overall:>10.0} messages/s");
    println!("bare rusqlite:    {raw:>10.0} messages/s (same row work, no dispatcher)");
    println!("ratio (adapter overall / bare): {:.2}", overall / raw);
}
