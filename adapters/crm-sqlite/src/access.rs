//! Per-record grants and sharing rules.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::access::{Grant, Grantee, SharingRule};
use crm_core::{AccessStore, CustomerId, Error, Result, TeamId, TenantId, UserId};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::codec::{json, to_json};
use crate::{storage, SqliteStore};

/// Revokes the grant of `customer` to `grantee` in force (inside the caller's
/// transaction); whether there was one.
pub(crate) fn revoke(
    conn: &Connection,
    tenant: &[u8],
    customer: CustomerId,
    grantee: Grantee,
    by: Option<UserId>,
    at: DateTime<Utc>,
) -> Result<bool> {
    let found: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT seq, record FROM grants \
             WHERE tenant_id = ?1 AND grantee = ?2 AND customer_id = ?3 AND active = 1",
        )
        .and_then(|mut s| {
            s.query_row(
                params![tenant, grantee.to_string(), customer.as_bytes().as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .map_err(storage)?;
    let Some((seq, text)) = found else {
        return Ok(false);
    };
    let mut grant: Grant = json(&text, "grant")?;
    grant.revoked_by = by;
    grant.revoked_at = Some(at);
    let record = to_json(&grant)?;
    conn.prepare_cached("UPDATE grants SET active = 0, record = ?2 WHERE seq = ?1")
        .and_then(|mut s| s.execute(params![seq, record]))
        .map_err(storage)?;
    Ok(true)
}

/// Stores a grant in force in place of the one of its customer and grantee (inside the
/// caller's transaction); `record` is its JSON.
pub(crate) fn put(conn: &Connection, tenant: &[u8], grant: &Grant, record: &str) -> Result<()> {
    revoke(
        conn,
        tenant,
        grant.customer,
        grant.grantee,
        grant.granted_by,
        grant.granted_at,
    )?;
    conn.prepare_cached(
        "INSERT INTO grants (tenant_id, customer_id, grantee, active, record) \
         VALUES (?1, ?2, ?3, 1, ?4)",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant,
            grant.customer.as_bytes().as_slice(),
            grant.grantee.to_string(),
            record
        ])
    })
    .map_err(storage)?;
    Ok(())
}

/// Grants read from rows of JSON records.
fn grants(rows: Vec<String>) -> Result<Vec<Grant>> {
    rows.iter().map(|text| json(text, "grant")).collect()
}

#[async_trait]
impl AccessStore for SqliteStore {
    async fn put_grant(&self, tenant: TenantId, grant: &Grant) -> Result<()> {
        let record = to_json(grant)?;
        let grant = grant.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            let known = tx
                .prepare_cached("SELECT 1 FROM customers WHERE tenant_id = ?1 AND id = ?2")
                .and_then(|mut s| s.exists(params![t, grant.customer.as_bytes().as_slice()]))
                .map_err(storage)?;
            if !known {
                return Err(Error::not_found("customer", grant.customer));
            }
            put(&tx, t, &grant, &record)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn revoke_grant(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        grantee: Grantee,
        by: Option<UserId>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let revoked = revoke(&tx, tenant.as_bytes(), customer, grantee, by, at)?;
            tx.commit().map_err(storage)?;
            Ok(revoked)
        })
        .await
    }

    async fn grants_on(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<Grant>> {
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT record FROM grants WHERE tenant_id = ?1 AND customer_id = ?2 \
                     ORDER BY seq",
                )
                .and_then(|mut s| {
                    s.query_map(
                        params![tenant.as_bytes().as_slice(), customer.as_bytes().as_slice()],
                        |r| r.get(0),
                    )?
                    .collect()
                })
                .map_err(storage)?;
            grants(rows)
        })
        .await
    }

    async fn grants_to(
        &self,
        tenant: TenantId,
        user: UserId,
        unit: Option<TeamId>,
        limit: usize,
    ) -> Result<Vec<Grant>> {
        let user = Grantee::User(user).to_string();
        // A unit key no grant has stands for "no unit".
        let unit = unit.map_or_else(String::new, |u| Grantee::Unit(u).to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT record FROM grants \
                     WHERE tenant_id = ?1 AND active = 1 AND grantee IN (?2, ?3) LIMIT ?4",
                )
                .and_then(|mut s| {
                    s.query_map(
                        params![tenant.as_bytes().as_slice(), user, unit, limit],
                        |r| r.get(0),
                    )?
                    .collect()
                })
                .map_err(storage)?;
            grants(rows)
        })
        .await
    }

    async fn put_sharing_rule(&self, tenant: TenantId, rule: &SharingRule) -> Result<()> {
        let record = to_json(rule)?;
        let name = rule.name.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO sharing_rules (tenant_id, name, record) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET record = excluded.record",
                params![tenant.as_bytes().as_slice(), name, record],
            )
            .map_err(storage)?;
            Ok(())
        })
        .await
    }

    async fn delete_sharing_rule(&self, tenant: TenantId, name: &str) -> Result<()> {
        let name = name.to_string();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM sharing_rules WHERE tenant_id = ?1 AND name = ?2",
                    params![tenant.as_bytes().as_slice(), name],
                )
                .map_err(storage)?;
            if n == 0 {
                return Err(Error::not_found("sharing rule", name));
            }
            Ok(())
        })
        .await
    }

    async fn sharing_rules(&self, tenant: TenantId) -> Result<Vec<SharingRule>> {
        self.read(move |conn| {
            let rows: Vec<String> = conn
                .prepare_cached(
                    "SELECT record FROM sharing_rules WHERE tenant_id = ?1 ORDER BY name",
                )
                .and_then(|mut s| {
                    s.query_map(params![tenant.as_bytes().as_slice()], |r| r.get(0))?
                        .collect()
                })
                .map_err(storage)?;
            rows.iter().map(|t| json(t, "sharing rule")).collect()
        })
        .await
    }
}
