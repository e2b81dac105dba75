//! Segments on SQLite: definitions, memberships, and the SQLite dialect of the shared rule
//! compiler (`crm_sql::rule`).

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::segment::{FieldSchema, MembershipChange, Rule, Segment};
use crm_core::{
    Cursor, CustomerId, Error, Page, PageRequest, Result, SegmentId, SegmentStore, TenantId,
};
use crm_sql::rule;
use crm_sql::Sql;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};

use crate::codec::{self, id_bytes, json, to_json, write_error};
use crate::dialect::Sqlite;
use crate::outbox::write_outbox;
use crate::{storage, SqliteStore};
use crm_core::notify::events::membership_events;

/// Runs a query of the rule compiler that selects customer ids.
fn query_ids(conn: &Connection, sql: Sql) -> Result<Vec<CustomerId>> {
    let mut stmt = conn.prepare(&sql.text).map_err(storage)?;
    let rows = stmt
        .query_map(
            params_from_iter(sql.params.into_iter().map(codec::value)),
            |r| r.get::<_, Vec<u8>>(0),
        )
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(storage)?;
    rows.into_iter()
        .map(|b| id_bytes(b).map(CustomerId::from_bytes))
        .collect()
}

fn read_segment(conn: &Connection, tenant: TenantId, id: SegmentId) -> Result<Segment> {
    let record: Option<String> = conn
        .prepare_cached("SELECT record FROM segments WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut s| {
            s.query_row(
                params![tenant.as_bytes().as_slice(), id.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(storage)?;
    json(
        &record.ok_or_else(|| Error::not_found("segment", id))?,
        "segment",
    )
}

fn members(conn: &Connection, tenant: TenantId, id: SegmentId) -> Result<BTreeSet<CustomerId>> {
    let rows = conn
        .prepare_cached(
            "SELECT customer_id FROM segment_members WHERE tenant_id = ?1 AND segment_id = ?2",
        )
        .and_then(|mut s| {
            s.query_map(
                params![tenant.as_bytes().as_slice(), id.as_bytes().as_slice()],
                |r| r.get::<_, Vec<u8>>(0),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(storage)?;
    rows.into_iter()
        .map(|b| id_bytes(b).map(CustomerId::from_bytes))
        .collect()
}

/// Makes the stored members of `id` equal to `now`, returning the change.
fn replace_members(
    conn: &Connection,
    tenant: TenantId,
    id: SegmentId,
    now: BTreeSet<CustomerId>,
) -> Result<MembershipChange> {
    let before = members(conn, tenant, id)?;
    let change = MembershipChange::between(&before, &now);
    let (t, s) = (tenant.as_bytes().as_slice(), id.as_bytes().as_slice());
    for c in &change.left {
        conn.prepare_cached("DELETE FROM segment_members WHERE tenant_id = ?1 AND segment_id = ?2 AND customer_id = ?3")
            .and_then(|mut st| st.execute(params![t, s, c.as_bytes().as_slice()]))
            .map_err(storage)?;
    }
    for c in &change.entered {
        conn.prepare_cached(
            "INSERT INTO segment_members (tenant_id, segment_id, customer_id) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut st| st.execute(params![t, s, c.as_bytes().as_slice()]))
        .map_err(storage)?;
    }
    Ok(change)
}

/// Stores the entered and left events of a membership change, when asked for.
fn write_membership_events(
    tx: &Connection,
    tenant: TenantId,
    id: SegmentId,
    change: &MembershipChange,
    events_at: Option<DateTime<Utc>>,
) -> Result<()> {
    if let Some(at) = events_at {
        write_outbox(tx, tenant, &membership_events(id, change, at)?)?;
    }
    Ok(())
}

fn customer_exists(conn: &Connection, tenant: TenantId, id: CustomerId) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM profiles WHERE tenant_id = ?1 AND customer_id = ?2")
        .and_then(|mut s| {
            s.exists(params![
                tenant.as_bytes().as_slice(),
                id.as_bytes().as_slice()
            ])
        })
        .map_err(storage)
}

#[async_trait]
impl SegmentStore for SqliteStore {
    async fn find_matching(
        &self,
        tenant: TenantId,
        rule: &Rule,
        schema: &FieldSchema,
        now: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_customer).transpose()?;
        let limit = page.limit;
        let sql = rule::select_ids(
            &Sqlite,
            tenant,
            rule,
            schema,
            now,
            after,
            Some(u64::from(limit) + 1),
        )?;
        let rows = self.read(move |conn| query_ids(conn, sql)).await?;
        Ok(Page::from_overfetch(rows, limit, |id| {
            Cursor::customer(*id)
        }))
    }

    async fn count_matching(
        &self,
        tenant: TenantId,
        rule: &Rule,
        schema: &FieldSchema,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let sql = rule::count(&Sqlite, tenant, rule, schema, now)?;
        self.read(move |conn| {
            let args = params_from_iter(sql.params.into_iter().map(codec::value));
            conn.query_row(&sql.text, args, |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(storage)
        })
        .await
    }

    async fn save_segment(&self, tenant: TenantId, segment: &Segment) -> Result<()> {
        let record = to_json(segment)?;
        let (id, name) = (segment.id, segment.name.to_string());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO segments (tenant_id, id, name, record) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_bytes().as_slice(),
                    id.as_bytes().as_slice(),
                    name,
                    record
                ])
            })
            .map_err(|e| write_error(e, "segment", || format!("id {id} or name {name:?}")))?;
            Ok(())
        })
        .await
    }

    async fn get_segment(&self, tenant: TenantId, id: SegmentId) -> Result<Segment> {
        self.read(move |conn| read_segment(conn, tenant, id)).await
    }

    async fn list_segments(&self, tenant: TenantId) -> Result<Vec<Segment>> {
        self.read(move |conn| {
            let records = conn
                .prepare_cached("SELECT record FROM segments WHERE tenant_id = ?1 ORDER BY name")
                .and_then(|mut s| {
                    s.query_map(params![tenant.as_bytes().as_slice()], |r| {
                        r.get::<_, String>(0)
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(storage)?;
            records.iter().map(|r| json(r, "segment")).collect()
        })
        .await
    }

    async fn refresh_segment(
        &self,
        tenant: TenantId,
        id: SegmentId,
        schema: &FieldSchema,
        now: DateTime<Utc>,
        events_at: Option<DateTime<Utc>>,
    ) -> Result<MembershipChange> {
        let schema = schema.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let segment = read_segment(&tx, tenant, id)?;
            let rule = segment.rule_to_refresh()?;
            let sql = rule::select_ids(&Sqlite, tenant, rule, &schema, now, None, None)?;
            let now_members: BTreeSet<CustomerId> = query_ids(&tx, sql)?.into_iter().collect();
            let change = replace_members(&tx, tenant, id, now_members)?;
            write_membership_events(&tx, tenant, id, &change, events_at)?;
            tx.commit().map_err(storage)?;
            Ok(change)
        })
        .await
    }

    async fn change_static_members(
        &self,
        tenant: TenantId,
        id: SegmentId,
        add: Vec<CustomerId>,
        remove: Vec<CustomerId>,
        events_at: Option<DateTime<Utc>>,
    ) -> Result<MembershipChange> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            read_segment(&tx, tenant, id)?.check_static()?;
            for c in &add {
                if !customer_exists(&tx, tenant, *c)? {
                    return Err(Error::not_found("customer", c));
                }
            }
            let mut next = members(&tx, tenant, id)?;
            for c in &remove {
                next.remove(c);
            }
            next.extend(add);
            let change = replace_members(&tx, tenant, id, next)?;
            write_membership_events(&tx, tenant, id, &change, events_at)?;
            tx.commit().map_err(storage)?;
            Ok(change)
        })
        .await
    }

    async fn segment_members(
        &self,
        tenant: TenantId,
        id: SegmentId,
        page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_customer).transpose()?;
        let limit = page.limit;
        let rows = self
            .read(move |conn| {
                read_segment(conn, tenant, id)?;
                let after = after.map_or(vec![0u8; 16], |a| a.as_bytes().to_vec());
                let rows = conn
                    .prepare_cached(
                        "SELECT customer_id FROM segment_members WHERE tenant_id = ?1 AND segment_id = ?2 \
                         AND customer_id > ?3 ORDER BY customer_id LIMIT ?4",
                    )
                    .and_then(|mut s| {
                        s.query_map(
                            params![tenant.as_bytes().as_slice(), id.as_bytes().as_slice(), after, i64::from(limit) + 1],
                            |r| r.get::<_, Vec<u8>>(0),
                        )?
                        .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(storage)?;
                rows.into_iter().map(|b| id_bytes(b).map(CustomerId::from_bytes)).collect::<Result<Vec<_>>>()
            })
            .await?;
        Ok(Page::from_overfetch(rows, limit, |c| Cursor::customer(*c)))
    }

    async fn is_member(
        &self,
        tenant: TenantId,
        id: SegmentId,
        customer: CustomerId,
    ) -> Result<bool> {
        self.read(move |conn| {
            read_segment(conn, tenant, id)?;
            conn.prepare_cached("SELECT 1 FROM segment_members WHERE tenant_id = ?1 AND segment_id = ?2 AND customer_id = ?3")
                .and_then(|mut s| s.exists(params![tenant.as_bytes().as_slice(), id.as_bytes().as_slice(), customer.as_bytes().as_slice()]))
                .map_err(storage)
        })
        .await
    }

    async fn segments_of(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<SegmentId>> {
        self.read(move |conn| {
            if !customer_exists(conn, tenant, customer)? {
                return Err(Error::not_found("customer", customer));
            }
            let rows = conn
                .prepare_cached("SELECT segment_id FROM segment_members WHERE tenant_id = ?1 AND customer_id = ?2 ORDER BY segment_id")
                .and_then(|mut s| {
                    s.query_map(params![tenant.as_bytes().as_slice(), customer.as_bytes().as_slice()], |r| r.get::<_, Vec<u8>>(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(storage)?;
            rows.into_iter().map(|b| id_bytes(b).map(SegmentId::from_bytes)).collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_rules_compile_on_a_small_stack() {
        for text in crm_core::segment::largest_rules() {
            crm_testkit::on_small_stack(move || {
                let rule = crm_core::segment::parse(&text).unwrap();
                let schema = crm_testkit::rules::segment_schema();
                let now = DateTime::<Utc>::UNIX_EPOCH;
                let sql = rule::compile(&Sqlite, &rule, &schema, now).unwrap().text;
                assert!(sql.len() > text.len() / 2);
            });
        }
    }
}
