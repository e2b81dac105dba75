//! Segments on PostgreSQL: definitions, memberships, and the PostgreSQL dialect of the
//! shared rule compiler (`crm_sql::rule`).

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::segment::{FieldSchema, MembershipChange, Rule, Segment};
use crm_core::{
    Cursor, CustomerId, Error, Page, PageRequest, Result, SegmentId, SegmentStore, TenantId,
};
use crm_sql::rule;
use crm_sql::Sql;
use deadpool_postgres::GenericClient;

use crate::codec::{self, id_bytes, json, to_json, write_error};
use crate::customers::customer_exists;
use crate::dialect::Postgres;
use crate::outbox::write_outbox;
use crate::{storage, PostgresStore};
use crm_core::notify::events::membership_events;

/// Runs a query of the rule compiler that selects customer ids.
async fn query_ids(client: &impl GenericClient, sql: Sql) -> Result<Vec<CustomerId>> {
    codec::query(client, sql)
        .await?
        .into_iter()
        .map(|r| id_bytes(r.get(0)).map(CustomerId::from_bytes))
        .collect()
}

async fn read_segment(
    client: &impl GenericClient,
    tenant: TenantId,
    id: SegmentId,
) -> Result<Segment> {
    let row = client
        .query_opt(
            "SELECT record::text FROM segments WHERE tenant_id = $1 AND id = $2",
            &[&tenant.as_bytes().to_vec(), &id.as_bytes().to_vec()],
        )
        .await
        .map_err(storage)?
        .ok_or_else(|| Error::not_found("segment", id))?;
    json(row.get(0), "segment")
}

async fn members(
    client: &impl GenericClient,
    tenant: TenantId,
    id: SegmentId,
) -> Result<BTreeSet<CustomerId>> {
    let rows = client
        .query(
            "SELECT customer_id FROM segment_members WHERE tenant_id = $1 AND segment_id = $2",
            &[&tenant.as_bytes().to_vec(), &id.as_bytes().to_vec()],
        )
        .await
        .map_err(storage)?;
    rows.into_iter()
        .map(|r| id_bytes(r.get(0)).map(CustomerId::from_bytes))
        .collect()
}

async fn replace_members(
    client: &impl GenericClient,
    tenant: TenantId,
    id: SegmentId,
    now: BTreeSet<CustomerId>,
) -> Result<MembershipChange> {
    let before = members(client, tenant, id).await?;
    let change = MembershipChange::between(&before, &now);
    let (t, s) = (tenant.as_bytes().to_vec(), id.as_bytes().to_vec());
    let left: Vec<Vec<u8>> = change.left.iter().map(|c| c.as_bytes().to_vec()).collect();
    let entered: Vec<Vec<u8>> = change
        .entered
        .iter()
        .map(|c| c.as_bytes().to_vec())
        .collect();
    client
        .execute("DELETE FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 AND customer_id = ANY($3)", &[&t, &s, &left])
        .await
        .map_err(storage)?;
    client
        .execute("INSERT INTO segment_members (tenant_id, segment_id, customer_id) SELECT $1, $2, * FROM UNNEST($3::bytea[])", &[&t, &s, &entered])
        .await
        .map_err(storage)?;
    Ok(change)
}

#[async_trait]
impl SegmentStore for PostgresStore {
    async fn find_matching(
        &self,
        tenant: TenantId,
        rule: &Rule,
        schema: &FieldSchema,
        now: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        // Rules read profiles: fold pending deltas first.
        self.fold_profiles(tenant).await?;
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_customer).transpose()?;
        let sql = rule::select_ids(
            &Postgres,
            tenant,
            rule,
            schema,
            now,
            after,
            Some(u64::from(page.limit) + 1),
        )?;
        let client = self.client(tenant).await?;
        let rows = query_ids(&client, sql).await?;
        Ok(Page::from_overfetch(rows, page.limit, |id| {
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
        // Rules read profiles: fold pending deltas first.
        self.fold_profiles(tenant).await?;
        let sql = rule::count(&Postgres, tenant, rule, schema, now)?;
        let client = self.client(tenant).await?;
        let rows = codec::query(&client, sql).await?;
        let count = rows.first().map_or(0, |r| r.get::<_, i64>(0));
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn save_segment(&self, tenant: TenantId, segment: &Segment) -> Result<()> {
        let record = to_json(segment)?;
        let client = self.client(tenant).await?;
        client
            .execute(
                "INSERT INTO segments (tenant_id, id, name, record) VALUES ($1, $2, $3, $4::text::jsonb)",
                &[&tenant.as_bytes().to_vec(), &segment.id.as_bytes().to_vec(), &segment.name.as_str(), &record],
            )
            .await
            .map_err(|e| write_error(e, "segment", || format!("id {} or name {:?}", segment.id, segment.name.as_str())))?;
        Ok(())
    }

    async fn get_segment(&self, tenant: TenantId, id: SegmentId) -> Result<Segment> {
        let client = self.client(tenant).await?;
        read_segment(&client, tenant, id).await
    }

    async fn list_segments(&self, tenant: TenantId) -> Result<Vec<Segment>> {
        let client = self.client(tenant).await?;
        let rows = client
            .query("SELECT record::text FROM segments WHERE tenant_id = $1 ORDER BY name COLLATE \"C\"", &[&tenant.as_bytes().to_vec()])
            .await
            .map_err(storage)?;
        rows.iter().map(|r| json(r.get(0), "segment")).collect()
    }

    async fn refresh_segment(
        &self,
        tenant: TenantId,
        id: SegmentId,
        schema: &FieldSchema,
        now: DateTime<Utc>,
        events_at: Option<DateTime<Utc>>,
    ) -> Result<MembershipChange> {
        // Rules read profiles: fold pending deltas first.
        self.fold_profiles(tenant).await?;
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            tx.execute(
                "SELECT 1 FROM segments WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                &[&tenant.as_bytes().to_vec(), &id.as_bytes().to_vec()],
            )
            .await
            .map_err(storage)?;
            let segment = read_segment(&tx, tenant, id).await?;
            let rule = segment.rule_to_refresh()?;
            let sql = rule::select_ids(&Postgres, tenant, rule, schema, now, None, None)?;
            let now_members: BTreeSet<CustomerId> =
                query_ids(&tx, sql).await?.into_iter().collect();
            let change = replace_members(&tx, tenant, id, now_members).await?;
            if let Some(at) = events_at {
                write_outbox(&tx, tenant, &membership_events(id, &change, at)?).await?;
            }
            tx.commit().await.map_err(storage)?;
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
        let t = tenant.as_bytes().to_vec();
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            tx.execute(
                "SELECT 1 FROM segments WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                &[&t, &id.as_bytes().to_vec()],
            )
            .await
            .map_err(storage)?;
            read_segment(&tx, tenant, id).await?.check_static()?;
            for c in &add {
                if !customer_exists(&tx, &t, *c).await? {
                    return Err(Error::not_found("customer", c));
                }
            }
            let mut next = members(&tx, tenant, id).await?;
            for c in &remove {
                next.remove(c);
            }
            next.extend(add.iter().copied());
            let change = replace_members(&tx, tenant, id, next).await?;
            if let Some(at) = events_at {
                write_outbox(&tx, tenant, &membership_events(id, &change, at)?).await?;
            }
            tx.commit().await.map_err(storage)?;
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
        let client = self.client(tenant).await?;
        read_segment(&client, tenant, id).await?;
        let after = after.map_or(vec![0u8; 16], |a| a.as_bytes().to_vec());
        let rows = client
            .query(
                "SELECT customer_id FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 AND customer_id > $3 ORDER BY customer_id LIMIT $4",
                &[&tenant.as_bytes().to_vec(), &id.as_bytes().to_vec(), &after, &(i64::from(page.limit) + 1)],
            )
            .await
            .map_err(storage)?;
        let ids = rows
            .into_iter()
            .map(|r| id_bytes(r.get(0)).map(CustomerId::from_bytes))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(ids, page.limit, |c| {
            Cursor::customer(*c)
        }))
    }

    async fn is_member(
        &self,
        tenant: TenantId,
        id: SegmentId,
        customer: CustomerId,
    ) -> Result<bool> {
        let client = self.client(tenant).await?;
        read_segment(&client, tenant, id).await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 AND customer_id = $3",
                &[&tenant.as_bytes().to_vec(), &id.as_bytes().to_vec(), &customer.as_bytes().to_vec()],
            )
            .await
            .map_err(storage)?;
        Ok(row.is_some())
    }

    async fn segments_of(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<SegmentId>> {
        let client = self.client(tenant).await?;
        let t = tenant.as_bytes().to_vec();
        if !customer_exists(&client, &t, customer).await? {
            return Err(Error::not_found("customer", customer));
        }
        let rows = client
            .query("SELECT segment_id FROM segment_members WHERE tenant_id = $1 AND customer_id = $2 ORDER BY segment_id", &[&t, &customer.as_bytes().to_vec()])
            .await
            .map_err(storage)?;
        rows.into_iter()
            .map(|r| id_bytes(r.get(0)).map(SegmentId::from_bytes))
            .collect()
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
                let sql = rule::compile(&Postgres, &rule, &schema, now).unwrap().text;
                assert!(sql.len() > text.len() / 2);
            });
        }
    }
}
