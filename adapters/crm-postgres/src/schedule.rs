//! Due instants of scheduled work: the `schedule` table, kept by triggers (migration V15);
//! the store's tenants; the job runner's leases (migration V16).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::schedule::{DueEntry, DueKind, Reschedule};
use crm_core::{Cursor, Error, Page, PageRequest, Result, ScheduleStore, TenantId};

use crate::codec::{from_micros, id_bytes, micros};
use crate::{storage, PostgresStore};

#[async_trait]
impl ScheduleStore for PostgresStore {
    async fn due_entries(
        &self,
        tenant: TenantId,
        kind: DueKind,
        until: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<DueEntry>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_due).transpose()?;
        // Before every entry: the changed ones are at 0, the nil id sorts first.
        let (from, id) = after.map_or((i64::MIN, [0u8; 16]), |(at, id)| {
            (micros(at), *id.as_bytes())
        });
        let client = self.client(tenant).await?;
        let rows = client
            .query(
                "SELECT id, due_at, mark FROM schedule \
                 WHERE tenant_id = $1 AND kind = $2 AND due_at IS NOT NULL AND due_at <= $3 \
                   AND (due_at, id) > ($4, $5) \
                 ORDER BY due_at, id LIMIT $6",
                &[
                    &tenant.as_bytes().as_slice(),
                    &kind.as_str(),
                    &micros(until),
                    &from,
                    &id.as_slice(),
                    &(i64::from(page.limit) + 1),
                ],
            )
            .await
            .map_err(storage)?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            entries.push(DueEntry {
                id: uuid::Uuid::from_bytes(id_bytes(row.try_get(0).map_err(storage)?)?),
                due_at: from_micros(row.try_get(1).map_err(storage)?)?,
                mark: row.try_get(2).map_err(storage)?,
            });
        }
        Ok(Page::from_overfetch(entries, page.limit, |e| {
            Cursor::due(e.due_at, e.id)
        }))
    }

    async fn reschedule(
        &self,
        tenant: TenantId,
        kind: DueKind,
        entries: &[Reschedule],
    ) -> Result<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&[u8]> = entries.iter().map(|e| e.id.as_bytes().as_slice()).collect();
        let marks: Vec<i64> = entries.iter().map(|e| e.mark).collect();
        let next: Vec<Option<i64>> = entries.iter().map(|e| e.next.map(micros)).collect();
        let t = tenant.as_bytes().as_slice();
        self.retrying(|| async {
            let client = self.client(tenant).await?;
            let n = client
                .execute(
                    "UPDATE schedule s SET due_at = u.due \
                     FROM unnest($3::bytea[], $4::bigint[], $5::bigint[]) AS u(id, mark, due) \
                     WHERE s.tenant_id = $1 AND s.kind = $2 AND s.id = u.id AND s.mark = u.mark",
                    &[&t, &kind.as_str(), &ids, &marks, &next],
                )
                .await
                .map_err(storage)?;
            Ok(n as usize)
        })
        .await
    }

    async fn schedule_basis(&self, tenant: TenantId, kind: DueKind) -> Result<Option<String>> {
        let client = self.client(tenant).await?;
        let row = client
            .query_opt(
                "SELECT basis FROM schedule_basis WHERE tenant_id = $1 AND kind = $2",
                &[&tenant.as_bytes().as_slice(), &kind.as_str()],
            )
            .await
            .map_err(storage)?;
        row.map(|r| r.try_get(0).map_err(storage)).transpose()
    }

    async fn tenants(&self, after: Option<TenantId>, limit: u32) -> Result<Vec<TenantId>> {
        // Under row-level security a connection sees one tenant: the host lists them
        // (`Jobs::run_due_for`).
        if self.row_level_security {
            return Err(Error::unsupported(
                "tenants under row-level security",
                crate::BACKEND,
            ));
        }
        // A loose index scan: one probe of the customers' primary key per tenant.
        let client = self.connection().await?;
        let rows = client
            .query(
                "WITH RECURSIVE t(id) AS ( \
                   (SELECT tenant_id FROM customers WHERE tenant_id > $1 ORDER BY tenant_id LIMIT 1) \
                   UNION ALL \
                   SELECT (SELECT c.tenant_id FROM customers c WHERE c.tenant_id > t.id \
                           ORDER BY c.tenant_id LIMIT 1) FROM t WHERE t.id IS NOT NULL) \
                 SELECT id FROM t WHERE id IS NOT NULL LIMIT $2",
                &[
                    &after.map_or_else(Vec::new, |t| t.as_bytes().to_vec()),
                    &i64::from(limit),
                ],
            )
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|r| {
                Ok(TenantId::from_bytes(id_bytes(
                    r.try_get(0).map_err(storage)?,
                )?))
            })
            .collect()
    }

    async fn take_lease(
        &self,
        tenant: TenantId,
        job: &str,
        holder: uuid::Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let t = tenant.as_bytes().as_slice();
        let h = holder.as_bytes().as_slice();
        self.retrying(|| async {
            let client = self.client(tenant).await?;
            let n = client
                .execute(
                    "INSERT INTO job_leases (tenant_id, job, holder, until) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (tenant_id, job) DO UPDATE \
                     SET holder = excluded.holder, until = excluded.until \
                     WHERE job_leases.holder = excluded.holder OR job_leases.until <= $5",
                    &[&t, &job, &h, &micros(until), &micros(now)],
                )
                .await
                .map_err(storage)?;
            Ok(n == 1)
        })
        .await
    }

    async fn release_lease(&self, tenant: TenantId, job: &str, holder: uuid::Uuid) -> Result<()> {
        let client = self.client(tenant).await?;
        client
            .execute(
                "DELETE FROM job_leases WHERE tenant_id = $1 AND job = $2 AND holder = $3",
                &[
                    &tenant.as_bytes().as_slice(),
                    &job,
                    &holder.as_bytes().as_slice(),
                ],
            )
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn reset_schedule(&self, tenant: TenantId, kind: DueKind, basis: &str) -> Result<u64> {
        let t = tenant.as_bytes().as_slice();
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            let marked = tx
                .execute(
                    "UPDATE schedule SET due_at = 0, mark = mark + 1 \
                     WHERE tenant_id = $1 AND kind = $2",
                    &[&t, &kind.as_str()],
                )
                .await
                .map_err(storage)?;
            tx.execute(
                "INSERT INTO schedule_basis (tenant_id, kind, basis) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, kind) DO UPDATE SET basis = excluded.basis",
                &[&t, &kind.as_str(), &basis],
            )
            .await
            .map_err(storage)?;
            tx.commit().await.map_err(storage)?;
            Ok(marked)
        })
        .await
    }
}
