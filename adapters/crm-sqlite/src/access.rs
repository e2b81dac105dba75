//! Per-record grants and sharing rules.

use async_trait::async_trait;
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use crm_core::access::{AccessEntry, DailyUsage, Grant, Grantee, SharingRule};
use crm_core::ports::stored::{daily_usage, day_number};
use crm_core::{AccessStore, CustomerId, Error, Result, TeamId, TenantId, UserId};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::codec::{corrupt, json, micros, to_json};
use crate::{storage, SqliteStore, BACKEND};

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
        grant.validate()?;
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

    async fn record_access(
        &self,
        tenant: TenantId,
        entry: &AccessEntry,
        limit: Option<u64>,
    ) -> Result<Option<u64>> {
        entry.validate()?;
        let record = to_json(entry)?;
        let entry = entry.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            let user = entry.user.as_bytes().as_slice();
            let day = day_number(entry.day());
            let kind = entry.kind.as_str();
            let used: i64 = tx
                .prepare_cached(
                    "SELECT used FROM access_usage \
                     WHERE tenant_id = ?1 AND day = ?2 AND user_id = ?3 AND kind = ?4",
                )
                .and_then(|mut s| {
                    s.query_row(params![t, day, user, kind], |r| r.get(0))
                        .optional()
                })
                .map_err(storage)?
                .unwrap_or(0);
            let used = u64::try_from(used).map_err(|_| corrupt(format!("use {used}")))?;
            let after = used
                .checked_add(entry.count)
                .filter(|a| i64::try_from(*a).is_ok())
                .ok_or_else(|| Error::validation("count", "too large"))?;
            if limit.is_some_and(|l| after > l) {
                return Ok(None);
            }
            tx.prepare_cached(
                "INSERT INTO access_usage (tenant_id, day, user_id, kind, used) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (tenant_id, day, user_id, kind) DO UPDATE SET used = excluded.used",
            )
            .and_then(|mut s| s.execute(params![t, day, user, kind, after as i64]))
            .map_err(storage)?;
            tx.prepare_cached(
                "INSERT INTO access_log (tenant_id, user_id, at, record) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![t, user, micros(entry.at), record]))
            .map_err(storage)?;
            tx.commit().map_err(storage)?;
            Ok(Some(after))
        })
        .await
    }

    async fn access_log(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AccessEntry>> {
        let user = user.map(|u| u.as_bytes().to_vec());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let rows: Vec<String> = conn
                .prepare_cached(
                    "SELECT record FROM access_log \
                     WHERE tenant_id = ?1 AND at >= ?2 AND (?3 IS NULL OR user_id = ?3) \
                     ORDER BY seq DESC LIMIT ?4",
                )
                .and_then(|mut s| {
                    s.query_map(
                        params![tenant.as_bytes().as_slice(), micros(since), user, limit],
                        |r| r.get(0),
                    )?
                    .collect()
                })
                .map_err(storage)?;
            rows.iter().map(|t| json(t, "access log entry")).collect()
        })
        .await
    }

    async fn daily_usage(
        &self,
        tenant: TenantId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyUsage>> {
        self.read(move |conn| {
            let rows: Vec<(i64, Vec<u8>, String, i64)> = conn
                .prepare_cached(
                    "SELECT day, user_id, kind, used FROM access_usage \
                     WHERE tenant_id = ?1 AND day >= ?2 AND day <= ?3",
                )
                .and_then(|mut s| {
                    s.query_map(
                        params![
                            tenant.as_bytes().as_slice(),
                            day_number(from),
                            day_number(to)
                        ],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )?
                    .collect()
                })
                .map_err(storage)?;
            rows.into_iter()
                .map(|(day, user, kind, used)| daily_usage(BACKEND, day, user, &kind, used))
                .collect()
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
