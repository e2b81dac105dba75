//! The interaction log, timelines and profiles (maintained in the batch's transaction).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::profile::deltas;
use crm_core::WriteOptions;
use crm_core::{
    Attributes, BatchReport, CaseId, Channel, Cursor, CustomerId, Direction, Error, ExternalRef,
    Interaction, InteractionId, InteractionKind, InteractionStore, Money, Page, PageRequest,
    Profile, ProfileStore, Result, TenantId, UserId,
};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use rust_decimal::Decimal;

use crate::codec::{
    corrupt, from_micros, id_bytes, json, micros, opt_from_micros, to_json, write_error,
};
use crate::outbox::{check_outbox, write_outbox};
use crate::{storage, SqliteStore};

const INSERT_INTERACTION: &str = "INSERT INTO interactions (tenant_id, id, customer_id, channel, \
    direction, kind, handled_by, occurred_at, subject, body, amount, currency, duration_secs, \
    wait_secs, case_id, attributes, source, external_id, recorded_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19) \
    ON CONFLICT (tenant_id, source, external_id) DO NOTHING";
const COLUMNS: &str = "id, customer_id, channel, direction, kind, handled_by, occurred_at, \
    subject, body, amount, currency, duration_secs, wait_secs, case_id, attributes, source, \
    external_id, recorded_at";
const TIMELINE_FIRST: &str = "WHERE tenant_id = ?1 AND customer_id = ?2 \
    ORDER BY occurred_at DESC, id DESC LIMIT ?3";
const TIMELINE_AFTER: &str = "WHERE tenant_id = ?1 AND customer_id = ?2 \
    AND (occurred_at, id) < (?4, ?5) ORDER BY occurred_at DESC, id DESC LIMIT ?3";
const SELECT_PROFILE: &str = "SELECT interaction_count, first_contact_at, last_contact_at, \
    last_inbound_at, last_outbound_at, purchase_count, first_purchase_at, last_purchase_at, \
    complaint_count, service_request_count, revenue, channel_counts, last_contact_by \
    FROM profiles WHERE tenant_id = ?1 AND customer_id = ?2";
const UPDATE_PROFILE: &str = "UPDATE profiles SET interaction_count = ?3, first_contact_at = ?4, \
    last_contact_at = ?5, last_inbound_at = ?6, last_outbound_at = ?7, purchase_count = ?8, \
    first_purchase_at = ?9, last_purchase_at = ?10, complaint_count = ?11, \
    service_request_count = ?12, revenue = ?13, channel_counts = ?14, last_contact_by = ?15 \
    WHERE tenant_id = ?1 AND customer_id = ?2";

fn not_found(id: CustomerId) -> Error {
    Error::not_found("customer", id)
}

pub(crate) fn read_profile(
    conn: &Connection,
    tenant: &[u8],
    id: CustomerId,
) -> Result<Option<Profile>> {
    let raw = conn
        .prepare_cached(SELECT_PROFILE)
        .and_then(|mut s| {
            s.query_row(params![tenant, id.as_bytes().as_slice()], raw_profile)
                .optional()
        })
        .map_err(storage)?;
    raw.map(decode_profile).transpose()
}

/// Counts, timestamps, the JSON maps and the packed contacts of a profile row, before
/// decoding.
type RawProfile = (
    [i64; 4],
    [Option<i64>; 6],
    [String; 2],
    rusqlite::types::Value,
);

fn unpack_contacts(
    v: rusqlite::types::Value,
) -> Result<BTreeMap<UserId, chrono::DateTime<chrono::Utc>>> {
    match v {
        rusqlite::types::Value::Blob(bytes) => {
            crm_core::ports::stored::unpack_contacts(crate::BACKEND, &bytes)
        }
        // Rows written before contacts were packed hold JSON.
        rusqlite::types::Value::Text(text) => json(&text, "profile contacts"),
        other => Err(corrupt(format!(
            "profile contacts of type {:?}",
            other.data_type()
        ))),
    }
}

fn raw_profile(r: &Row<'_>) -> rusqlite::Result<RawProfile> {
    Ok((
        [r.get(0)?, r.get(5)?, r.get(8)?, r.get(9)?],
        [
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(6)?,
            r.get(7)?,
        ],
        [r.get(10)?, r.get(11)?],
        r.get(12)?,
    ))
}

fn decode_profile(raw: RawProfile) -> Result<Profile> {
    {
        let (counts, times, maps, contacts) = raw;
        let count = |n: i64| u64::try_from(n).map_err(|_| corrupt(format!("count {n}")));
        Ok(Profile {
            interaction_count: count(counts[0])?,
            first_contact_at: opt_from_micros(times[0])?,
            last_contact_at: opt_from_micros(times[1])?,
            last_inbound_at: opt_from_micros(times[2])?,
            last_outbound_at: opt_from_micros(times[3])?,
            purchase_count: count(counts[1])?,
            first_purchase_at: opt_from_micros(times[4])?,
            last_purchase_at: opt_from_micros(times[5])?,
            complaint_count: count(counts[2])?,
            service_request_count: count(counts[3])?,
            revenue: json(&maps[0], "profile revenue")?,
            channel_counts: json(&maps[1], "profile channel counts")?,
            last_contact_by: unpack_contacts(contacts)?,
        })
    }
}

pub(crate) fn write_profile(
    conn: &Connection,
    tenant: &[u8],
    id: CustomerId,
    p: &Profile,
) -> Result<()> {
    let opt = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(micros);
    let revenue = to_json(&p.revenue)?;
    let channels = to_json(&p.channel_counts)?;
    let contacts = crm_core::ports::stored::pack_contacts(&p.last_contact_by);
    conn.prepare_cached(UPDATE_PROFILE)
        .and_then(|mut s| {
            s.execute(params![
                tenant,
                id.as_bytes().as_slice(),
                p.interaction_count as i64,
                opt(p.first_contact_at),
                opt(p.last_contact_at),
                opt(p.last_inbound_at),
                opt(p.last_outbound_at),
                p.purchase_count as i64,
                opt(p.first_purchase_at),
                opt(p.last_purchase_at),
                p.complaint_count as i64,
                p.service_request_count as i64,
                revenue,
                channels,
                contacts,
            ])
        })
        .map_err(storage)?;
    Ok(())
}

/// Inserts one row; `Ok(false)` when its idempotency key is already stored.
fn insert_row(conn: &Connection, tenant: &[u8], i: &Interaction) -> Result<bool> {
    let attributes = if i.attributes.is_empty() {
        None
    } else {
        Some(to_json(&i.attributes)?)
    };
    let changed = conn
        .prepare_cached(INSERT_INTERACTION)
        .and_then(|mut s| {
            s.execute(params![
                tenant,
                i.id.as_bytes().as_slice(),
                i.customer.as_bytes().as_slice(),
                i.channel.as_str(),
                i.direction.as_str(),
                i.kind.as_str(),
                i.handled_by.as_ref().map(|u| u.as_bytes().as_slice()),
                micros(i.occurred_at),
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
                micros(i.recorded_at),
            ])
        })
        .map_err(|e| write_error(e, "interaction", || format!("id {}", i.id)))?;
    Ok(changed == 1)
}

/// One page (`fetch` rows) of an account's timeline: the interactions of the
/// organisation and of every person related to it, newest first.
pub(crate) fn account_timeline(
    conn: &Connection,
    tenant: TenantId,
    organization: CustomerId,
    after: Option<(DateTime<Utc>, crm_core::InteractionId)>,
    fetch: i64,
) -> Result<Vec<Interaction>> {
    const PARTIES: &str = "tenant_id = ?1 AND customer_id IN (SELECT ?2 UNION ALL \
        SELECT person FROM relationships WHERE tenant_id = ?1 AND organization = ?2)";
    let (t, o) = (
        tenant.as_bytes().as_slice(),
        organization.as_bytes().as_slice(),
    );
    let rows = match after {
        None => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM interactions WHERE {PARTIES} \
                 ORDER BY occurred_at DESC, id DESC LIMIT ?3"
            ))
            .and_then(|mut s| {
                s.query_map(params![t, o, fetch], decode_interaction)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            }),
        Some((at, id)) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM interactions WHERE {PARTIES} \
                 AND (occurred_at, id) < (?4, ?5) ORDER BY occurred_at DESC, id DESC LIMIT ?3"
            ))
            .and_then(|mut s| {
                s.query_map(
                    params![t, o, fetch, micros(at), id.as_bytes().as_slice()],
                    decode_interaction,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
            }),
    }
    .map_err(storage)?;
    rows.into_iter().collect()
}

fn decode_interaction(r: &Row<'_>) -> rusqlite::Result<Result<Interaction>> {
    let id: Vec<u8> = r.get(0)?;
    let customer: Vec<u8> = r.get(1)?;
    let channel: String = r.get(2)?;
    let direction: String = r.get(3)?;
    let kind: String = r.get(4)?;
    let handled_by: Option<Vec<u8>> = r.get(5)?;
    let occurred_at: i64 = r.get(6)?;
    let subject: Option<String> = r.get(7)?;
    let body: Option<String> = r.get(8)?;
    let amount: Option<String> = r.get(9)?;
    let currency: Option<String> = r.get(10)?;
    let duration_secs: Option<u32> = r.get(11)?;
    let wait_secs: Option<u32> = r.get(12)?;
    let case: Option<Vec<u8>> = r.get(13)?;
    let attributes: Option<String> = r.get(14)?;
    let source: String = r.get(15)?;
    let external_id: String = r.get(16)?;
    let recorded_at: i64 = r.get(17)?;
    Ok((|| {
        let bad = |e: Error| corrupt(format!("interaction: {e}"));
        let amount = match (amount, currency) {
            (Some(a), Some(c)) => {
                let value = Decimal::from_str(&a).map_err(|e| corrupt(format!("amount: {e}")))?;
                Some(Money::new(value, &c).map_err(bad)?)
            }
            _ => None,
        };
        Ok(Interaction {
            id: InteractionId::from_bytes(id_bytes(id)?),
            customer: CustomerId::from_bytes(id_bytes(customer)?),
            channel: Channel::parse(&channel).map_err(bad)?,
            direction: Direction::parse(&direction).map_err(bad)?,
            kind: InteractionKind::parse(&kind).map_err(bad)?,
            handled_by: handled_by
                .map(|b| id_bytes(b).map(UserId::from_bytes))
                .transpose()?,
            occurred_at: from_micros(occurred_at)?,
            subject,
            body,
            amount,
            duration_secs,
            wait_secs,
            case: case
                .map(|b| id_bytes(b).map(CaseId::from_bytes))
                .transpose()?,
            attributes: match attributes {
                Some(a) => json::<Attributes>(&a, "interaction attributes")?,
                None => Attributes::new(),
            },
            key: ExternalRef::new(&source, &external_id).map_err(bad)?,
            recorded_at: from_micros(recorded_at)?,
        })
    })())
}

#[async_trait]
impl InteractionStore for SqliteStore {
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
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            // The profiles of every customer in the batch; a missing one is an unknown
            // customer, and the whole batch is refused before anything is written.
            let customers: BTreeSet<CustomerId> = batch.iter().map(|i| i.customer).collect();
            let mut profiles = BTreeMap::new();
            for c in customers {
                let p = read_profile(&tx, t, c)?.ok_or_else(|| not_found(c))?;
                profiles.insert(c, p);
            }
            let mut fresh = Vec::with_capacity(batch.len());
            for row in &batch {
                if insert_row(&tx, t, row)? {
                    fresh.push(row);
                }
            }
            for (customer, delta) in deltas(fresh.iter().copied())? {
                if let Some(p) = profiles.get_mut(&customer) {
                    p.merge(&delta)?;
                    write_profile(&tx, t, customer, p)?;
                }
            }
            let report = BatchReport {
                inserted: fresh.len(),
                duplicates: batch.len() - fresh.len(),
            };
            write_outbox(&tx, tenant, &outbox)?;
            tx.commit().map_err(storage)?;
            Ok(report)
        })
        .await
    }

    async fn archive_interactions(
        &self,
        tenant: TenantId,
        before: DateTime<Utc>,
        recorded_up_to: DateTime<Utc>,
    ) -> Result<u64> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            tx.prepare_cached(
                "INSERT INTO archive_horizons (tenant_id, before) VALUES (?1, ?2) \
                 ON CONFLICT (tenant_id) DO UPDATE SET before = max(before, excluded.before)",
            )
            .and_then(|mut s| s.execute(params![t, micros(before)]))
            .map_err(storage)?;
            let purged = tx
                .prepare_cached(
                    "DELETE FROM interactions WHERE tenant_id = ?1 AND occurred_at < ?2 \
                     AND recorded_at <= ?3",
                )
                .and_then(|mut s| s.execute(params![t, micros(before), micros(recorded_up_to)]))
                .map_err(storage)?;
            tx.commit().map_err(storage)?;
            Ok(purged as u64)
        })
        .await
    }

    async fn archive_horizon(&self, tenant: TenantId) -> Result<Option<DateTime<Utc>>> {
        self.read(move |conn| {
            let at: Option<i64> = conn
                .prepare_cached("SELECT before FROM archive_horizons WHERE tenant_id = ?1")
                .and_then(|mut s| {
                    s.query_row(params![tenant.as_bytes().as_slice()], |r| r.get(0))
                        .optional()
                })
                .map_err(storage)?;
            at.map(from_micros).transpose()
        })
        .await
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
        let limit = page.limit;
        let rows = self
            .read(move |conn| {
                // After the cursor: later instants, or the same instant and a larger id.
                let (at, id) = after.map_or((micros(from), vec![]), |(at, id)| {
                    (micros(at), id.as_bytes().to_vec())
                });
                let sql = format!(
                    "SELECT {COLUMNS} FROM interactions WHERE tenant_id = ?1 \
                     AND occurred_at >= ?2 AND occurred_at < ?3 \
                     AND (occurred_at > ?4 OR (occurred_at = ?4 AND id > ?5)) \
                     ORDER BY occurred_at, id LIMIT ?6"
                );
                let mut s = conn.prepare_cached(&sql).map_err(storage)?;
                let rows = s
                    .query_map(
                        params![
                            tenant.as_bytes().as_slice(),
                            micros(from),
                            micros(to),
                            at,
                            id,
                            i64::from(limit) + 1
                        ],
                        decode_interaction,
                    )
                    .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(storage)?;
                rows.into_iter().collect::<Result<Vec<_>>>()
            })
            .await?;
        Ok(Page::from_overfetch(rows, limit, |i| {
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
        let limit = page.limit;
        let rows = self
            .read(move |conn| {
                let tx = conn.unchecked_transaction().map_err(storage)?;
                let t = tenant.as_bytes().as_slice();
                if read_profile(&tx, t, customer)?.is_none() {
                    return Err(not_found(customer));
                }
                let c = customer.as_bytes().as_slice();
                let fetch = i64::from(limit) + 1;
                let rows = match after {
                    None => {
                        let sql = format!("SELECT {COLUMNS} FROM interactions {TIMELINE_FIRST}");
                        let mut s = tx.prepare_cached(&sql).map_err(storage)?;
                        let rows = s
                            .query_map(params![t, c, fetch], decode_interaction)
                            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
                            .map_err(storage)?;
                        rows
                    }
                    Some((at, id)) => {
                        let sql = format!("SELECT {COLUMNS} FROM interactions {TIMELINE_AFTER}");
                        let mut s = tx.prepare_cached(&sql).map_err(storage)?;
                        let rows = s
                            .query_map(
                                params![t, c, fetch, micros(at), id.as_bytes().as_slice()],
                                decode_interaction,
                            )
                            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
                            .map_err(storage)?;
                        rows
                    }
                };
                rows.into_iter().collect::<Result<Vec<_>>>()
            })
            .await?;
        Ok(Page::from_overfetch(rows, limit, |i| {
            Cursor::timeline(i.occurred_at, i.id)
        }))
    }
}

#[async_trait]
impl ProfileStore for SqliteStore {
    async fn get_profile(&self, tenant: TenantId, customer: CustomerId) -> Result<Profile> {
        self.read(move |conn| {
            read_profile(conn, tenant.as_bytes(), customer)?.ok_or_else(|| not_found(customer))
        })
        .await
    }

    async fn get_profiles(
        &self,
        tenant: TenantId,
        ids: &[CustomerId],
    ) -> Result<BTreeMap<CustomerId, Profile>> {
        let read = self
            .read_each(ids, move |conn, id| {
                read_profile(conn, tenant.as_bytes(), id)
            })
            .await?;
        Ok(read.into_iter().collect())
    }
}
