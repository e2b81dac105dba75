//! The transactional outbox.
//!
//! SQLite has one writer at a time, so a claim (select the due rows, then set their lease)
//! inside one immediate transaction cannot hand a message to two dispatchers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::notify::{
    Claimed, EnqueueReport, Lease, MessageState, Notification, OutboxMessage, OutboxStore,
};
use crm_core::{Cursor, Error, MessageId, Page, PageRequest, Result, TenantId};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::codec::{from_micros, id_bytes, json, micros, opt_from_micros, to_json, write_error};
use crate::{storage, SqliteStore};

const COLUMNS: &str = "id, state, attempts, next_attempt_at, enqueued_at, last_error, \
    sent_at, notification, seq, ordering_key";
const INSERT: &str = "INSERT INTO outbox (tenant_id, id, idempotency_key, priority, state, \
    attempts, next_attempt_at, enqueued_at, last_error, sent_at, notification, seq, \
    ordering_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING";
const LAST_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) FROM outbox WHERE tenant_id = ?1";
const DUE: &str = "SELECT id FROM outbox o WHERE tenant_id = ?1 AND state = 'pending' \
    AND next_attempt_at <= ?2 AND (lease_until IS NULL OR lease_until <= ?2) \
    AND (ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox e \
        WHERE e.tenant_id = o.tenant_id AND e.ordering_key = o.ordering_key \
        AND e.state = 'pending' AND e.seq < o.seq)) \
    ORDER BY priority DESC, next_attempt_at, seq LIMIT ?3";
const TAKE_LEASE: &str =
    "UPDATE outbox SET lease_token = ?3, lease_until = ?4 WHERE tenant_id = ?1 AND id = ?2";
const HOLDS_LEASE: &str = "SELECT 1 FROM outbox WHERE tenant_id = ?1 AND id = ?2 \
    AND state = 'pending' AND lease_token = ?3";
const EXISTS: &str = "SELECT 1 FROM outbox WHERE tenant_id = ?1 AND id = ?2";

/// One outbox row as stored, decoded.
fn message(row: &Row<'_>) -> Result<OutboxMessage> {
    let get = |i: usize| row.get_ref(i).map_err(storage);
    let notification: Notification = json(get(7)?.as_str().map_err(storage_ty)?, "notification")?;
    Ok(OutboxMessage {
        id: MessageId::from_bytes(id_bytes(row.get(0).map_err(storage)?)?),
        notification,
        state: MessageState::parse(&row.get::<_, String>(1).map_err(storage)?)
            .map_err(|e| crate::codec::corrupt(e.to_string()))?,
        attempts: row.get(2).map_err(storage)?,
        next_attempt_at: from_micros(row.get(3).map_err(storage)?)?,
        enqueued_at: from_micros(row.get(4).map_err(storage)?)?,
        last_error: row.get(5).map_err(storage)?,
        sent_at: opt_from_micros(row.get(6).map_err(storage)?)?,
        seq: row.get::<_, i64>(8).map_err(storage)? as u64,
        ordering_key: row.get(9).map_err(storage)?,
    })
}

pub(crate) use crm_core::ports::stored::check_messages as check_outbox;
use crm_core::ports::stored::{lease_lost, not_dead};

/// Writes checked messages inside the caller's transaction, numbering them after the
/// tenant's last `seq` and skipping idempotency keys the tenant already has.
pub(crate) fn write_outbox(
    tx: &Connection,
    tenant: TenantId,
    messages: &[OutboxMessage],
) -> Result<EnqueueReport> {
    let mut report = EnqueueReport::default();
    if messages.is_empty() {
        return Ok(report);
    }
    let t = tenant.as_bytes().as_slice();
    let mut seq: i64 = tx
        .prepare_cached(LAST_SEQ)
        .and_then(|mut st| st.query_row(params![t], |r| r.get(0)))
        .map_err(storage)?;
    let mut st = tx.prepare_cached(INSERT).map_err(storage)?;
    for m in messages {
        let notification = to_json(&m.notification)?;
        let n = st
            .execute(params![
                t,
                m.id.as_bytes().as_slice(),
                m.notification.idempotency_key,
                m.notification.priority.rank(),
                m.state.as_str(),
                m.attempts,
                micros(m.next_attempt_at),
                micros(m.enqueued_at),
                m.last_error,
                m.sent_at.map(micros),
                notification,
                seq + 1,
                m.ordering_key,
            ])
            .map_err(|e| write_error(e, "message", || format!("id {}", m.id)))?;
        if n == 1 {
            seq += 1;
            report.enqueued += 1;
        } else {
            report.duplicates += 1;
        }
    }
    Ok(report)
}

fn storage_ty(e: rusqlite::types::FromSqlError) -> Error {
    storage(e.into())
}

fn select_one(conn: &Connection, tenant: TenantId, id: MessageId) -> Result<OutboxMessage> {
    let sql = format!("SELECT {COLUMNS} FROM outbox WHERE tenant_id = ?1 AND id = ?2");
    let mut st = conn.prepare_cached(&sql).map_err(storage)?;
    let mut rows = st
        .query(params![
            tenant.as_bytes().as_slice(),
            id.as_bytes().as_slice()
        ])
        .map_err(storage)?;
    match rows.next().map_err(storage)? {
        Some(row) => message(row),
        None => Err(Error::not_found("message", id)),
    }
}

/// NotFound for an unknown message; Conflict when `lease` is not (any longer) its lease.
fn check_lease(conn: &Connection, tenant: TenantId, id: MessageId, lease: Lease) -> Result<()> {
    let (t, m) = (tenant.as_bytes().as_slice(), id.as_bytes().as_slice());
    let held = conn
        .prepare_cached(HOLDS_LEASE)
        .and_then(|mut s| s.exists(params![t, m, lease.token.as_bytes().as_slice()]))
        .map_err(storage)?;
    if held {
        return Ok(());
    }
    let exists = conn
        .prepare_cached(EXISTS)
        .and_then(|mut s| s.exists(params![t, m]))
        .map_err(storage)?;
    if !exists {
        return Err(Error::not_found("message", id));
    }
    Err(lease_lost(id))
}

impl SqliteStore {
    /// Runs `sql` (which clears the lease) on a message whose lease is still `lease`.
    async fn with_lease(
        &self,
        tenant: TenantId,
        id: MessageId,
        lease: Lease,
        sql: &'static str,
        values: Vec<rusqlite::types::Value>,
    ) -> Result<()> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            check_lease(&tx, tenant, id, lease)?;
            let mut all = vec![
                rusqlite::types::Value::Blob(tenant.as_bytes().to_vec()),
                rusqlite::types::Value::Blob(id.as_bytes().to_vec()),
            ];
            all.extend(values);
            tx.prepare_cached(sql)
                .and_then(|mut s| s.execute(rusqlite::params_from_iter(all)))
                .map_err(storage)?;
            tx.commit().map_err(storage)
        })
        .await
    }
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn enqueue(
        &self,
        tenant: TenantId,
        messages: Vec<OutboxMessage>,
    ) -> Result<EnqueueReport> {
        check_outbox(&messages)?;
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let report = write_outbox(&tx, tenant, &messages)?;
            tx.commit().map_err(storage)?;
            Ok(report)
        })
        .await
    }

    async fn enqueue_groups(
        &self,
        tenant: TenantId,
        groups: Vec<Vec<OutboxMessage>>,
    ) -> Result<Vec<EnqueueReport>> {
        for group in &groups {
            check_outbox(group)?;
        }
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let reports = groups
                .iter()
                .map(|group| write_outbox(&tx, tenant, group))
                .collect::<Result<Vec<_>>>()?;
            tx.commit().map_err(storage)?;
            Ok(reports)
        })
        .await
    }

    async fn claim(
        &self,
        tenant: TenantId,
        now: DateTime<Utc>,
        lease: Lease,
        limit: u32,
    ) -> Result<Vec<Claimed>> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            let ids: Vec<Vec<u8>> = tx
                .prepare_cached(DUE)
                .and_then(|mut st| {
                    st.query_map(params![t, micros(now), limit], |r| r.get(0))?
                        .collect()
                })
                .map_err(storage)?;
            let mut claimed = Vec::with_capacity(ids.len());
            for id in ids {
                let id = MessageId::from_bytes(id_bytes(id)?);
                tx.prepare_cached(TAKE_LEASE)
                    .and_then(|mut st| {
                        st.execute(params![
                            t,
                            id.as_bytes().as_slice(),
                            lease.token.as_bytes().as_slice(),
                            micros(lease.until)
                        ])
                    })
                    .map_err(storage)?;
                claimed.push(Claimed {
                    message: select_one(&tx, tenant, id)?,
                    lease,
                });
            }
            tx.commit().map_err(storage)?;
            Ok(claimed)
        })
        .await
    }

    async fn mark_sent(
        &self,
        tenant: TenantId,
        id: MessageId,
        lease: Lease,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.with_lease(
            tenant,
            id,
            lease,
            "UPDATE outbox SET state = 'sent', sent_at = ?3, lease_token = NULL, \
             lease_until = NULL WHERE tenant_id = ?1 AND id = ?2",
            vec![micros(at).into()],
        )
        .await
    }

    async fn mark_failed(
        &self,
        tenant: TenantId,
        id: MessageId,
        lease: Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let sql = match retry_at {
            Some(_) => {
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?3, \
                 next_attempt_at = ?4, lease_token = NULL, lease_until = NULL \
                 WHERE tenant_id = ?1 AND id = ?2"
            }
            None => {
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?3, state = 'dead', \
                 lease_token = NULL, lease_until = NULL WHERE tenant_id = ?1 AND id = ?2"
            }
        };
        let mut values = vec![error.to_string().into()];
        if let Some(at) = retry_at {
            values.push(micros(at).into());
        }
        self.with_lease(tenant, id, lease, sql, values).await
    }

    async fn release(&self, tenant: TenantId, id: MessageId, lease: Lease) -> Result<()> {
        self.with_lease(
            tenant,
            id,
            lease,
            "UPDATE outbox SET lease_token = NULL, lease_until = NULL \
             WHERE tenant_id = ?1 AND id = ?2",
            Vec::new(),
        )
        .await
    }

    async fn outbox_message(&self, tenant: TenantId, id: MessageId) -> Result<OutboxMessage> {
        self.read(move |conn| select_one(conn, tenant, id)).await
    }

    async fn dead_letters(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<OutboxMessage>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_message).transpose()?;
        let limit = page.limit;
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM outbox WHERE tenant_id = ?1 AND state = 'dead' \
                 AND id > ?2 ORDER BY id LIMIT ?3"
            );
            let mut st = conn.prepare_cached(&sql).map_err(storage)?;
            let after = after.map_or([0u8; 16], |id| *id.as_bytes());
            let mut rows = st
                .query(params![
                    tenant.as_bytes().as_slice(),
                    after.as_slice(),
                    i64::from(limit) + 1
                ])
                .map_err(storage)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(storage)? {
                out.push(message(row)?);
            }
            Ok(Page::from_overfetch(out, limit, |m| Cursor::message(m.id)))
        })
        .await
    }

    async fn requeue(&self, tenant: TenantId, id: MessageId, now: DateTime<Utc>) -> Result<()> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let (t, m) = (tenant.as_bytes().as_slice(), id.as_bytes().as_slice());
            let state: Option<String> = tx
                .query_row(
                    "SELECT state FROM outbox WHERE tenant_id = ?1 AND id = ?2",
                    params![t, m],
                    |r| r.get(0),
                )
                .optional()
                .map_err(storage)?;
            match state.as_deref() {
                None => return Err(Error::not_found("message", id)),
                Some("dead") => {}
                Some(other) => return Err(not_dead(id, other)),
            }
            tx.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?3, \
                 lease_token = NULL, lease_until = NULL WHERE tenant_id = ?1 AND id = ?2",
                params![t, m, micros(now)],
            )
            .map_err(storage)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn pending_count(&self, tenant: TenantId) -> Result<u64> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT count(*) FROM outbox WHERE tenant_id = ?1 AND state = 'pending'",
                params![tenant.as_bytes().as_slice()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(storage)
        })
        .await
    }
}
