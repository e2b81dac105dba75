//! The transactional outbox.
//!
//! A claim selects the due rows `FOR UPDATE SKIP LOCKED` and sets their lease in the same
//! statement, so dispatchers claiming at the same moment take disjoint batches without
//! waiting for each other.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::notify::{
    Claimed, EnqueueReport, Lease, MessageState, Notification, OutboxMessage, OutboxStore,
};
use crm_core::{Cursor, Error, MessageId, Page, PageRequest, Result, TenantId};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use crate::codec::{
    corrupt, from_micros, id_bytes, json, micros, opt_from_micros, to_json, write_error,
};
use crate::{storage, PostgresStore};

const COLUMNS: &str = "id, state, attempts, next_attempt_at, enqueued_at, last_error, \
    sent_at, notification, seq, ordering_key";
/// One statement for a whole set of messages, inserted in the given order (so `seq`
/// follows it); it returns the id of each message stored.
const INSERT: &str = "INSERT INTO outbox (tenant_id, id, idempotency_key, priority, state, \
    attempts, next_attempt_at, enqueued_at, last_error, sent_at, notification, ordering_key) \
    SELECT $1, id, k, p, s, a, n, e, l, t, j, o FROM UNNEST($2::bytea[], $3::text[], \
    $4::int8[], $5::text[], $6::int8[], $7::int8[], $8::int8[], $9::text[], $10::int8[], \
    $11::text[], $12::text[]) WITH ORDINALITY AS u(id, k, p, s, a, n, e, l, t, j, o, ord) \
    ORDER BY ord ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id";
const CLAIM: &str = "UPDATE outbox o SET lease_token = $4, lease_until = $5 FROM ( \
    SELECT id FROM outbox c WHERE tenant_id = $1 AND state = 'pending' \
    AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until <= $2) \
    AND (ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox e \
        WHERE e.tenant_id = c.tenant_id AND e.ordering_key = c.ordering_key \
        AND e.state = 'pending' AND e.seq < c.seq)) \
    ORDER BY priority DESC, next_attempt_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED) due \
    WHERE o.tenant_id = $1 AND o.id = due.id \
    RETURNING o.id, o.state, o.attempts, o.next_attempt_at, o.enqueued_at, o.last_error, \
    o.sent_at, o.notification, o.seq, o.ordering_key, o.priority";

fn message(row: &Row) -> Result<OutboxMessage> {
    let get_err = |e: tokio_postgres::Error| storage(e);
    let notification: Notification =
        json(row.try_get::<_, &str>(7).map_err(get_err)?, "notification")?;
    let state: &str = row.try_get(1).map_err(get_err)?;
    let attempts: i64 = row.try_get(2).map_err(get_err)?;
    Ok(OutboxMessage {
        id: MessageId::from_bytes(id_bytes(row.try_get(0).map_err(get_err)?)?),
        notification,
        state: MessageState::parse(state).map_err(|e| corrupt(e.to_string()))?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt("attempts out of range"))?,
        next_attempt_at: from_micros(row.try_get(3).map_err(get_err)?)?,
        enqueued_at: from_micros(row.try_get(4).map_err(get_err)?)?,
        last_error: row.try_get(5).map_err(get_err)?,
        sent_at: opt_from_micros(row.try_get(6).map_err(get_err)?)?,
        seq: row.try_get::<_, i64>(8).map_err(get_err)? as u64,
        ordering_key: row.try_get(9).map_err(get_err)?,
    })
}

pub(crate) use crm_core::ports::stored::check_messages as check_outbox;
use crm_core::ports::stored::{lease_lost, not_dead};

/// Writes checked messages inside the caller's transaction with one statement, skipping
/// idempotency keys the tenant already has.
pub(crate) async fn write_outbox(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: TenantId,
    messages: &[OutboxMessage],
) -> Result<EnqueueReport> {
    let reports = write_groups(tx, tenant, &[messages]).await?;
    Ok(reports.into_iter().next().unwrap_or_default())
}

/// Writes groups of checked messages inside the caller's transaction with one statement,
/// in the order given (so `seq` follows it), skipping idempotency keys the tenant already
/// has or an earlier message of the call took; one report per group.
pub(crate) async fn write_groups(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: TenantId,
    groups: &[&[OutboxMessage]],
) -> Result<Vec<EnqueueReport>> {
    let mut reports: Vec<EnqueueReport> = groups
        .iter()
        .map(|g| EnqueueReport {
            enqueued: 0,
            duplicates: g.len(),
        })
        .collect();
    if groups.iter().all(|g| g.is_empty()) {
        return Ok(reports);
    }
    // Which group each message id came in (an id given twice can be stored once at most:
    // its first time, so that is the one counted).
    let mut group_of: HashMap<[u8; 16], usize> = HashMap::new();
    let mut cols = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (g, group) in groups.iter().enumerate() {
        for m in group.iter() {
            group_of.entry(*m.id.as_bytes()).or_insert(g);
            cols.0.push(m.id.as_bytes().to_vec());
            cols.1.push(m.notification.idempotency_key.clone());
            cols.2.push(m.notification.priority.rank());
            cols.3.push(m.state.as_str());
            cols.4.push(i64::from(m.attempts));
            cols.5.push(micros(m.next_attempt_at));
            cols.6.push(micros(m.enqueued_at));
            cols.7.push(m.last_error.clone());
            cols.8.push(m.sent_at.map(micros));
            cols.9.push(to_json(&m.notification)?);
            cols.10.push(m.ordering_key.clone());
        }
    }
    let t = tenant.as_bytes().as_slice();
    let rows = tx
        .query(
            INSERT,
            &[
                &t, &cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5, &cols.6, &cols.7,
                &cols.8, &cols.9, &cols.10,
            ],
        )
        .await
        .map_err(|e| write_error(e, "message", || "id already used".to_string()))?;
    for row in &rows {
        let id = id_bytes(row.try_get(0).map_err(storage)?)?;
        let report = group_of
            .get(&id)
            .and_then(|&g| reports.get_mut(g))
            .ok_or_else(|| corrupt("outbox insert returned an unknown message id"))?;
        report.enqueued += 1;
        report.duplicates = report.duplicates.saturating_sub(1);
    }
    Ok(reports)
}

async fn select_one(
    client: &impl GenericClient,
    tenant: &[u8],
    id: MessageId,
) -> Result<OutboxMessage> {
    let sql = format!("SELECT {COLUMNS} FROM outbox WHERE tenant_id = $1 AND id = $2");
    let row = client
        .query_opt(&sql, &[&tenant, &id.as_bytes().as_slice()])
        .await
        .map_err(storage)?
        .ok_or_else(|| Error::not_found("message", id))?;
    message(&row)
}

impl PostgresStore {
    /// Runs `sql` (which clears the lease; `$1` tenant, `$2` id, `$3` lease token, then
    /// `extra`) on a message whose lease is still `lease`.
    async fn with_lease(
        &self,
        tenant: TenantId,
        id: MessageId,
        lease: Lease,
        sql: &str,
        extra: &[&(dyn ToSql + Sync)],
    ) -> Result<()> {
        let t = tenant.as_bytes().as_slice();
        let m = id.as_bytes().as_slice();
        let token = lease.token.as_bytes().as_slice();
        let client = self.client(tenant).await?;
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&t, &m, &token];
        args.extend_from_slice(extra);
        let n = client.execute(sql, &args).await.map_err(storage)?;
        if n == 1 {
            return Ok(());
        }
        let exists = client
            .query_opt(
                "SELECT 1 FROM outbox WHERE tenant_id = $1 AND id = $2",
                &[&t, &m],
            )
            .await
            .map_err(storage)?;
        match exists {
            Some(_) => Err(lease_lost(id)),
            None => Err(Error::not_found("message", id)),
        }
    }
}

const HELD: &str = "tenant_id = $1 AND id = $2 AND lease_token = $3 AND state = 'pending'";

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn enqueue(
        &self,
        tenant: TenantId,
        messages: Vec<OutboxMessage>,
    ) -> Result<EnqueueReport> {
        check_outbox(&messages)?;
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            let report = write_outbox(&tx, tenant, &messages).await?;
            tx.commit().await.map_err(storage)?;
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
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            let groups: Vec<&[OutboxMessage]> = groups.iter().map(Vec::as_slice).collect();
            let reports = write_groups(&tx, tenant, &groups).await?;
            tx.commit().await.map_err(storage)?;
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
        let client = self.client(tenant).await?;
        let rows = client
            .query(
                CLAIM,
                &[
                    &tenant.as_bytes().as_slice(),
                    &micros(now),
                    &i64::from(limit),
                    &lease.token.as_bytes().as_slice(),
                    &micros(lease.until),
                ],
            )
            .await
            .map_err(storage)?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                let priority: i64 = row.try_get(10).map_err(storage)?;
                Ok((priority, message(row)?))
            })
            .collect::<Result<Vec<_>>>()?;
        // RETURNING does not keep the subquery's order.
        claimed.sort_by(|(pa, a), (pb, b)| {
            pb.cmp(pa)
                .then(a.next_attempt_at.cmp(&b.next_attempt_at))
                .then(a.seq.cmp(&b.seq))
        });
        Ok(claimed
            .into_iter()
            .map(|(_, message)| Claimed { message, lease })
            .collect())
    }

    async fn mark_sent(
        &self,
        tenant: TenantId,
        id: MessageId,
        lease: Lease,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let sql = format!(
            "UPDATE outbox SET state = 'sent', sent_at = $4, lease_token = NULL, \
             lease_until = NULL WHERE {HELD}"
        );
        self.with_lease(tenant, id, lease, &sql, &[&micros(at)])
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
        let sql = format!(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $4, \
             next_attempt_at = COALESCE($5, next_attempt_at), \
             state = CASE WHEN $5::bigint IS NULL THEN 'dead' ELSE 'pending' END, \
             lease_token = NULL, lease_until = NULL WHERE {HELD}"
        );
        let retry = retry_at.map(micros);
        self.with_lease(tenant, id, lease, &sql, &[&error, &retry])
            .await
    }

    async fn release(&self, tenant: TenantId, id: MessageId, lease: Lease) -> Result<()> {
        let sql = format!("UPDATE outbox SET lease_token = NULL, lease_until = NULL WHERE {HELD}");
        self.with_lease(tenant, id, lease, &sql, &[]).await
    }

    async fn outbox_message(&self, tenant: TenantId, id: MessageId) -> Result<OutboxMessage> {
        let client = self.client(tenant).await?;
        select_one(&**client, tenant.as_bytes().as_slice(), id).await
    }

    async fn dead_letters(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<OutboxMessage>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_message).transpose()?;
        let after = after.map_or([0u8; 16], |id| *id.as_bytes());
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE tenant_id = $1 AND state = 'dead' \
             AND id > $2 ORDER BY id LIMIT $3"
        );
        let client = self.client(tenant).await?;
        let rows = client
            .query(
                &sql,
                &[
                    &tenant.as_bytes().as_slice(),
                    &after.as_slice(),
                    &(i64::from(page.limit) + 1),
                ],
            )
            .await
            .map_err(storage)?;
        let items = rows.iter().map(message).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit, |m| {
            Cursor::message(m.id)
        }))
    }

    async fn requeue(&self, tenant: TenantId, id: MessageId, now: DateTime<Utc>) -> Result<()> {
        let t = tenant.as_bytes().as_slice();
        let m = id.as_bytes().as_slice();
        let client = self.client(tenant).await?;
        let n = client
            .execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $3, \
                 lease_token = NULL, lease_until = NULL \
                 WHERE tenant_id = $1 AND id = $2 AND state = 'dead'",
                &[&t, &m, &micros(now)],
            )
            .await
            .map_err(storage)?;
        if n == 1 {
            return Ok(());
        }
        let state = client
            .query_opt(
                "SELECT state FROM outbox WHERE tenant_id = $1 AND id = $2",
                &[&t, &m],
            )
            .await
            .map_err(storage)?;
        match state {
            None => Err(Error::not_found("message", id)),
            Some(row) => {
                let state: &str = row.try_get(0).map_err(storage)?;
                Err(not_dead(id, state))
            }
        }
    }

    async fn pending_count(&self, tenant: TenantId) -> Result<u64> {
        let client = self.client(tenant).await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND state = 'pending'",
                &[&tenant.as_bytes().as_slice()],
            )
            .await
            .map_err(storage)?;
        let n: i64 = row.try_get(0).map_err(storage)?;
        Ok(n as u64)
    }
}
