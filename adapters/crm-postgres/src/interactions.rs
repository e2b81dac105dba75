//! The interaction log, timelines and profiles (maintained in the batch's transaction).

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::profile::deltas;
use crm_core::WriteOptions;
use crm_core::{
    Attributes, BatchReport, CaseId, Channel, Cursor, CustomerId, Direction, Error, ExternalRef,
    Interaction, InteractionId, InteractionKind, InteractionStore, Money, Page, PageRequest,
    Result, TenantId, UserId,
};
use rust_decimal::Decimal;
use tokio_postgres::Row;

use crate::codec::{copy_target, unstage};
use crate::codec::{corrupt, from_micros, id_bytes, json, micros, to_json};
use crate::outbox::{check_outbox, write_outbox};
use crate::profiles::copy_deltas;
use crate::{storage, PostgresStore};

/// The keys of a batch that the tenant already has: one index probe per key (a lateral
/// lookup, so the planner cannot pick a scan of the whole table).
const KNOWN_KEYS: &str = "SELECT k.source, k.external_id \
    FROM UNNEST($2::text[], $3::text[]) AS k(source, external_id) \
    CROSS JOIN LATERAL (SELECT 1 FROM interactions i WHERE i.tenant_id = $1 \
    AND i.source = k.source AND i.external_id = k.external_id LIMIT 1) AS hit";
/// New rows go in by binary COPY. A key stored by a concurrent batch after the check above
/// makes the COPY fail with a unique violation on `interactions_by_key`; the whole batch is
/// then retried, and the check skips that key.
const COPY_COLUMNS: &str = "tenant_id, id, customer_id, channel, direction, kind, \
    handled_by, occurred_at, subject, body, amount, currency, duration_secs, wait_secs, case_id, \
    attributes, source, external_id, recorded_at";

async fn copy_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &[u8],
    rows: &[&Interaction],
    rls: bool,
) -> Result<()> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::{ToSql, Type};
    if rows.is_empty() {
        return Ok(());
    }
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
    let target = copy_target(tx, "interactions", rls).await?;
    let sink = tx
        .copy_in(&format!(
            "COPY {target} ({COPY_COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await
        .map_err(copy_error)?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    for i in rows {
        let attributes = if i.attributes.is_empty() {
            None
        } else {
            Some(to_json(&i.attributes)?)
        };
        let row: [&(dyn ToSql + Sync); 19] = [
            &tenant,
            &i.id.as_bytes().as_slice(),
            &i.customer.as_bytes().as_slice(),
            &i.channel.as_str(),
            &i.direction.as_str(),
            &i.kind.as_str(),
            &i.handled_by.as_ref().map(|u| u.as_bytes().as_slice()),
            &micros(i.occurred_at),
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
            &micros(i.recorded_at),
        ];
        writer.as_mut().write(&row).await.map_err(copy_error)?;
    }
    writer.finish().await.map_err(copy_error)?;
    unstage(tx, "interactions", COPY_COLUMNS, rls)
        .await
        .map_err(copy_error)
}

/// A reused interaction id is `Duplicate`; a key stored concurrently is a serialization
/// failure in effect, retried by the caller; anything else is `Storage`.
fn copy_error(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) if db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
            if db.constraint() == Some("interactions_by_key") {
                crate::RetryableConflict::error()
            } else {
                Error::Duplicate {
                    entity: "interaction",
                    key: "id already used under another key".to_string(),
                }
            }
        }
        _ => storage(e),
    }
}
const COLUMNS: &str = "id, customer_id, channel, direction, kind, handled_by, occurred_at, \
    subject, body, amount, currency, duration_secs, wait_secs, case_id, attributes, source, \
    external_id, recorded_at";
pub(crate) fn not_found(id: CustomerId) -> Error {
    Error::not_found("customer", id)
}

/// The first customer of `batch` that the tenant does not have.
async fn missing_customer(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &[u8],
    batch: &[Interaction],
) -> Result<CustomerId> {
    let ids: Vec<Vec<u8>> = batch
        .iter()
        .map(|i| i.customer.as_bytes().to_vec())
        .collect();
    let rows = tx
        .query(
            "SELECT customer_id FROM profiles WHERE tenant_id = $1 AND customer_id = ANY($2)",
            &[&tenant, &ids],
        )
        .await
        .map_err(storage)?;
    let known: HashSet<Vec<u8>> = rows.iter().map(|r| r.get(0)).collect();
    Ok(batch
        .iter()
        .find(|i| !known.contains(i.customer.as_bytes().as_slice()))
        .map(|i| i.customer)
        .unwrap_or_default())
}

/// One page (`fetch` rows) of an account's timeline: the interactions of the
/// organisation and of every person related to it, newest first.
pub(crate) async fn account_timeline<C: deadpool_postgres::GenericClient>(
    client: &C,
    tenant: TenantId,
    organization: CustomerId,
    after: Option<(DateTime<Utc>, crm_core::InteractionId)>,
    fetch: i64,
) -> Result<Vec<Interaction>> {
    const PARTIES: &str = "tenant_id = $1 AND customer_id IN (SELECT $2::bytea UNION ALL \
        SELECT person FROM relationships WHERE tenant_id = $1 AND organization = $2)";
    let (t, o) = (
        tenant.as_bytes().as_slice(),
        organization.as_bytes().as_slice(),
    );
    let rows = match after {
        None => {
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM interactions WHERE {PARTIES} \
                         ORDER BY occurred_at DESC, id DESC LIMIT $3"
                    ),
                    &[&t, &o, &fetch],
                )
                .await
        }
        Some((at, id)) => {
            let id = id.as_bytes().as_slice();
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM interactions WHERE {PARTIES} \
                         AND (occurred_at, id) < ($4, $5) ORDER BY occurred_at DESC, id DESC \
                         LIMIT $3"
                    ),
                    &[&t, &o, &fetch, &micros(at), &id],
                )
                .await
        }
    }
    .map_err(storage)?;
    rows.iter().map(decode_interaction).collect()
}

fn decode_interaction(r: &Row) -> Result<Interaction> {
    let bad = |e: Error| corrupt(format!("interaction: {e}"));
    let amount = match (
        r.get::<_, Option<String>>(9),
        r.get::<_, Option<String>>(10),
    ) {
        (Some(a), Some(c)) => {
            let value = Decimal::from_str(&a).map_err(|e| corrupt(format!("amount: {e}")))?;
            Some(Money::new(value, &c).map_err(bad)?)
        }
        _ => None,
    };
    let secs = |i: usize| {
        r.get::<_, Option<i64>>(i)
            .map(|v| u32::try_from(v).map_err(|_| corrupt("seconds")))
            .transpose()
    };
    Ok(Interaction {
        id: InteractionId::from_bytes(id_bytes(r.get(0))?),
        customer: CustomerId::from_bytes(id_bytes(r.get(1))?),
        channel: Channel::parse(r.get(2)).map_err(bad)?,
        direction: Direction::parse(r.get(3)).map_err(bad)?,
        kind: InteractionKind::parse(r.get(4)).map_err(bad)?,
        handled_by: r
            .get::<_, Option<Vec<u8>>>(5)
            .map(|b| id_bytes(b).map(UserId::from_bytes))
            .transpose()?,
        occurred_at: from_micros(r.get(6))?,
        subject: r.get(7),
        body: r.get(8),
        amount,
        duration_secs: secs(11)?,
        wait_secs: secs(12)?,
        case: r
            .get::<_, Option<Vec<u8>>>(13)
            .map(|b| id_bytes(b).map(CaseId::from_bytes))
            .transpose()?,
        attributes: match r.get::<_, Option<&str>>(14) {
            Some(a) => json::<Attributes>(a, "interaction attributes")?,
            None => Attributes::new(),
        },
        key: ExternalRef::new(r.get(15), r.get(16)).map_err(bad)?,
        recorded_at: from_micros(r.get(17))?,
    })
}

#[async_trait]
impl InteractionStore for PostgresStore {
    async fn append_interactions(
        &self,
        tenant: TenantId,
        batch: Vec<Interaction>,
        options: WriteOptions,
    ) -> Result<BatchReport> {
        let outbox = options.into_outbox()?;
        if batch.is_empty() && outbox.is_empty() {
            return Ok(BatchReport::default());
        }
        check_outbox(&outbox)?;
        let t = tenant.as_bytes().to_vec();
        let sources: Vec<&str> = batch.iter().map(|i| i.key.source().as_str()).collect();
        let external_ids: Vec<&str> = batch.iter().map(|i| i.key.external_id()).collect();
        let customers: Vec<Vec<u8>> = batch
            .iter()
            .map(|i| i.customer)
            .collect::<BTreeSet<_>>()
            .iter()
            .map(|c| c.as_bytes().to_vec())
            .collect();
        // First try without probing for known keys (a batch is usually all new); a known
        // key then fails the COPY on `interactions_by_key`, and the retry probes.
        let probe = AtomicBool::new(false);
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            // Merges of the tenant wait for this batch (and it for them).
            crate::merge::merge_lock(&tx, &t, false).await?;
            // Every customer of the batch must exist; a missing one means nothing is written.
            let found: i64 = tx
                .query_one(
                    "SELECT count(*) FROM profiles WHERE tenant_id = $1 AND customer_id = ANY($2)",
                    &[&t, &customers],
                )
                .await
                .map_err(storage)?
                .get(0);
            if found != customers.len() as i64 {
                return Err(not_found(missing_customer(&tx, &t, &batch).await?));
            }
            let mut seen: HashSet<(String, String)> = HashSet::new();
            if probe.load(Ordering::Relaxed) {
                let known = tx
                    .query(KNOWN_KEYS, &[&t, &sources, &external_ids])
                    .await
                    .map_err(storage)?;
                seen.extend(known.iter().map(|r| (r.get(0), r.get(1))));
            }
            // The first row of every key not known is new.
            let fresh: Vec<&Interaction> = batch
                .iter()
                .filter(|i| {
                    seen.insert((
                        i.key.source().as_str().to_string(),
                        i.key.external_id().to_string(),
                    ))
                })
                .collect();
            if let Err(e) = copy_rows(&tx, &t, &fresh, self.row_level_security).await {
                // Unprobed, a re-sent row may also hit the primary key first (same id):
                // probe and try again before calling it a reused id.
                let first = !probe.swap(true, Ordering::Relaxed);
                return Err(match e {
                    Error::Duplicate { .. } if first => crate::RetryableConflict::error(),
                    e => e,
                });
            }
            copy_deltas(
                &tx,
                &t,
                &deltas(fresh.iter().copied())?,
                self.row_level_security,
            )
            .await?;
            write_outbox(&tx, tenant, &outbox).await?;
            tx.commit().await.map_err(storage)?;
            Ok(BatchReport {
                inserted: fresh.len(),
                duplicates: batch.len() - fresh.len(),
            })
        })
        .await
    }

    async fn archive_interactions(
        &self,
        tenant: TenantId,
        before: DateTime<Utc>,
        recorded_up_to: DateTime<Utc>,
    ) -> Result<u64> {
        let t = tenant.as_bytes().to_vec();
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            tx.execute(
                "INSERT INTO archive_horizons (tenant_id, before) VALUES ($1, $2) \
                 ON CONFLICT (tenant_id) DO UPDATE \
                 SET before = greatest(archive_horizons.before, excluded.before)",
                &[&t, &micros(before)],
            )
            .await
            .map_err(storage)?;
            let purged = tx
                .execute(
                    "DELETE FROM interactions WHERE tenant_id = $1 AND occurred_at < $2 \
                     AND recorded_at <= $3",
                    &[&t, &micros(before), &micros(recorded_up_to)],
                )
                .await
                .map_err(storage)?;
            tx.commit().await.map_err(storage)?;
            Ok(purged)
        })
        .await
    }

    async fn archive_horizon(&self, tenant: TenantId) -> Result<Option<DateTime<Utc>>> {
        let client = self.client(tenant).await?;
        let row = client
            .query_opt(
                "SELECT before FROM archive_horizons WHERE tenant_id = $1",
                &[&tenant.as_bytes().as_slice()],
            )
            .await
            .map_err(storage)?;
        row.map(|r| from_micros(r.get(0))).transpose()
    }

    async fn interactions_between(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<Interaction>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_timeline).transpose()?;
        // After the cursor: later instants, or the same instant and a larger id.
        let (at, id) = after.map_or((micros(from), Vec::new()), |(at, id)| {
            (micros(at), id.as_bytes().to_vec())
        });
        let fetch = i64::from(page.limit) + 1;
        let client = self.client(tenant).await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM interactions WHERE tenant_id = $1 \
                     AND occurred_at >= $2 AND occurred_at < $3 AND (occurred_at, id) > ($4, $5) \
                     ORDER BY occurred_at, id LIMIT $6"
                ),
                &[
                    &tenant.as_bytes().as_slice(),
                    &micros(from),
                    &micros(to),
                    &at,
                    &id,
                    &fetch,
                ],
            )
            .await
            .map_err(storage)?;
        let items = rows
            .iter()
            .map(decode_interaction)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit, |i| {
            Cursor::timeline(i.occurred_at, i.id)
        }))
    }

    async fn timeline(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<Interaction>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_timeline).transpose()?;
        let (t, c) = (tenant.as_bytes().to_vec(), customer.as_bytes().to_vec());
        let fetch = i64::from(page.limit) + 1;
        let mut client = self.client(tenant).await?;
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(storage)?;
        if tx
            .query_opt(
                "SELECT 1 FROM profiles WHERE tenant_id = $1 AND customer_id = $2",
                &[&t, &c],
            )
            .await
            .map_err(storage)?
            .is_none()
        {
            return Err(not_found(customer));
        }
        let rows = match after {
            None => tx
                .query(&format!("SELECT {COLUMNS} FROM interactions WHERE tenant_id = $1 AND customer_id = $2 ORDER BY occurred_at DESC, id DESC LIMIT $3"), &[&t, &c, &fetch])
                .await,
            Some((at, id)) => tx
                .query(
                    &format!("SELECT {COLUMNS} FROM interactions WHERE tenant_id = $1 AND customer_id = $2 AND (occurred_at, id) < ($4, $5) ORDER BY occurred_at DESC, id DESC LIMIT $3"),
                    &[&t, &c, &fetch, &micros(at), &id.as_bytes().to_vec()],
                )
                .await,
        }
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        let items = rows
            .iter()
            .map(decode_interaction)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit, |i| {
            Cursor::timeline(i.occurred_at, i.id)
        }))
    }
}
