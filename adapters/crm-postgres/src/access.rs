//! Per-record grants and sharing rules.

use async_trait::async_trait;
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use crm_core::access::{AccessEntry, DailyUsage, Grant, Grantee, SharingRule};
use crm_core::ports::stored::{daily_usage, day_number};
use crm_core::{AccessStore, CustomerId, Error, Result, TeamId, TenantId, UserId};
use deadpool_postgres::Transaction;

use crate::codec::{corrupt, json, micros, to_json, write_error};
use crate::{storage, PostgresStore, BACKEND};

/// Revokes the grant of `customer` to `grantee` in force (inside the caller's
/// transaction, the row locked); whether there was one.
pub(crate) async fn revoke(
    tx: &Transaction<'_>,
    tenant: &[u8],
    customer: CustomerId,
    grantee: Grantee,
    by: Option<UserId>,
    at: DateTime<Utc>,
) -> Result<bool> {
    let c = customer.as_bytes().as_slice();
    let row = tx
        .query_opt(
            "SELECT seq, record FROM grants \
             WHERE tenant_id = $1 AND grantee = $2 AND customer_id = $3 AND active \
             FOR UPDATE",
            &[&tenant, &grantee.to_string(), &c],
        )
        .await
        .map_err(storage)?;
    let Some(row) = row else {
        return Ok(false);
    };
    let seq: i64 = row.get(0);
    let mut grant: Grant = json(row.get(1), "grant")?;
    grant.revoked_by = by;
    grant.revoked_at = Some(at);
    tx.execute(
        "UPDATE grants SET active = false, record = $2 WHERE seq = $1",
        &[&seq, &to_json(&grant)?],
    )
    .await
    .map_err(storage)?;
    Ok(true)
}

/// Stores a grant in force in place of the one of its customer and grantee (inside the
/// caller's transaction); `record` is its JSON.
pub(crate) async fn put(
    tx: &Transaction<'_>,
    tenant: &[u8],
    grant: &Grant,
    record: &str,
) -> Result<()> {
    let (by, at) = (grant.granted_by, grant.granted_at);
    revoke(tx, tenant, grant.customer, grant.grantee, by, at).await?;
    tx.execute(
        "INSERT INTO grants (tenant_id, customer_id, grantee, active, record) \
         VALUES ($1, $2, $3, true, $4)",
        &[
            &tenant,
            &grant.customer.as_bytes().as_slice(),
            &grant.grantee.to_string(),
            &record,
        ],
    )
    .await
    .map_err(|e| {
        write_error(e, "grant", || {
            format!("{} on customer {}", grant.grantee, grant.customer)
        })
    })?;
    Ok(())
}

/// Grants read from rows of JSON records.
fn grants(rows: Vec<tokio_postgres::Row>) -> Result<Vec<Grant>> {
    rows.iter().map(|r| json(r.get(0), "grant")).collect()
}

#[async_trait]
impl AccessStore for PostgresStore {
    async fn put_grant(&self, tenant: TenantId, grant: &Grant) -> Result<()> {
        grant.validate()?;
        let record = to_json(grant)?;
        let t = tenant.as_bytes().as_slice();
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            let known = tx
                .query_opt(
                    "SELECT 1 FROM customers WHERE tenant_id = $1 AND id = $2",
                    &[&t, &grant.customer.as_bytes().as_slice()],
                )
                .await
                .map_err(storage)?;
            if known.is_none() {
                return Err(Error::not_found("customer", grant.customer));
            }
            put(&tx, t, grant, &record).await?;
            tx.commit().await.map_err(storage)
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
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            let revoked = revoke(&tx, tenant.as_bytes(), customer, grantee, by, at).await?;
            tx.commit().await.map_err(storage)?;
            Ok(revoked)
        })
        .await
    }

    async fn grants_on(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<Grant>> {
        let client = self.client(tenant).await?;
        let rows = client
            .query(
                "SELECT record FROM grants WHERE tenant_id = $1 AND customer_id = $2 \
                 ORDER BY seq",
                &[
                    &tenant.as_bytes().as_slice(),
                    &customer.as_bytes().as_slice(),
                ],
            )
            .await
            .map_err(storage)?;
        grants(rows)
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
        let client = self.client(tenant).await?;
        let rows = client
            .query(
                "SELECT record FROM grants \
                 WHERE tenant_id = $1 AND active AND grantee IN ($2, $3) LIMIT $4",
                &[&tenant.as_bytes().as_slice(), &user, &unit, &limit],
            )
            .await
            .map_err(storage)?;
        grants(rows)
    }

    async fn put_sharing_rule(&self, tenant: TenantId, rule: &SharingRule) -> Result<()> {
        let record = to_json(rule)?;
        let client = self.client(tenant).await?;
        client
            .execute(
                "INSERT INTO sharing_rules (tenant_id, name, record) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET record = excluded.record",
                &[&tenant.as_bytes().as_slice(), &rule.name, &record],
            )
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn delete_sharing_rule(&self, tenant: TenantId, name: &str) -> Result<()> {
        let client = self.client(tenant).await?;
        let n = client
            .execute(
                "DELETE FROM sharing_rules WHERE tenant_id = $1 AND name = $2",
                &[&tenant.as_bytes().as_slice(), &name],
            )
            .await
            .map_err(storage)?;
        if n == 0 {
            return Err(Error::not_found("sharing rule", name));
        }
        Ok(())
    }

    async fn record_access(
        &self,
        tenant: TenantId,
        entry: &AccessEntry,
        limit: Option<u64>,
    ) -> Result<Option<u64>> {
        entry.validate()?;
        let count =
            i64::try_from(entry.count).map_err(|_| Error::validation("count", "too large"))?;
        if limit.is_some_and(|l| entry.count > l) {
            return Ok(None);
        }
        // A limit beyond what a column holds limits nothing.
        let limit = limit.and_then(|l| i64::try_from(l).ok());
        let record = to_json(entry)?;
        let t = tenant.as_bytes().as_slice();
        let user = entry.user.as_bytes().as_slice();
        let day = day_number(entry.day());
        let kind = entry.kind.as_str();
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            // The row lock of the upsert makes concurrent takers wait for each other: the
            // limit holds for all of them together.
            let row = tx
                .query_opt(
                    "INSERT INTO access_usage (tenant_id, day, user_id, kind, used) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (tenant_id, day, user_id, kind) \
                     DO UPDATE SET used = access_usage.used + excluded.used \
                     WHERE $6::bigint IS NULL OR access_usage.used + excluded.used <= $6 \
                     RETURNING used",
                    &[&t, &day, &user, &kind, &count, &limit],
                )
                .await
                .map_err(storage)?;
            let Some(row) = row else {
                return Ok(None);
            };
            let used: i64 = row.get(0);
            tx.execute(
                "INSERT INTO access_log (tenant_id, user_id, at, record) VALUES ($1, $2, $3, $4)",
                &[&t, &user, &micros(entry.at), &record],
            )
            .await
            .map_err(storage)?;
            tx.commit().await.map_err(storage)?;
            u64::try_from(used)
                .map(Some)
                .map_err(|_| corrupt(format!("use {used}")))
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
        let client = self.client(tenant).await?;
        let rows = client
            .query(
                "SELECT record FROM access_log \
                 WHERE tenant_id = $1 AND at >= $2 AND ($3::bytea IS NULL OR user_id = $3) \
                 ORDER BY seq DESC LIMIT $4",
                &[&tenant.as_bytes().as_slice(), &micros(since), &user, &limit],
            )
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|r| json(r.get(0), "access log entry"))
            .collect()
    }

    async fn daily_usage(
        &self,
        tenant: TenantId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyUsage>> {
        let client = self.client(tenant).await?;
        let rows = client
            .query(
                "SELECT day, user_id, kind, used FROM access_usage \
                 WHERE tenant_id = $1 AND day >= $2 AND day <= $3",
                &[
                    &tenant.as_bytes().as_slice(),
                    &day_number(from),
                    &day_number(to),
                ],
            )
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|r| daily_usage(BACKEND, r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }

    async fn sharing_rules(&self, tenant: TenantId) -> Result<Vec<SharingRule>> {
        let client = self.client(tenant).await?;
        let rows = client
            .query(
                "SELECT record FROM sharing_rules WHERE tenant_id = $1 ORDER BY name",
                &[&tenant.as_bytes().as_slice()],
            )
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|r| json(r.get(0), "sharing rule"))
            .collect()
    }
}
