//! Due instants of scheduled work: the `schedule` table, kept by triggers (migration 017);
//! the store's tenants; the job runner's leases (migration 018).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::schedule::{DueEntry, DueKind, Reschedule};
use crm_core::{Cursor, Page, PageRequest, Result, ScheduleStore, TenantId};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::codec::{from_micros, id_bytes, micros};
use crate::{storage, SqliteStore};

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn due_entries(
        &self,
        tenant: TenantId,
        kind: DueKind,
        until: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<DueEntry>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_due).transpose()?;
        let limit = page.limit;
        self.read(move |conn| {
            // Before every entry: the changed ones are at 0, the nil id sorts first.
            let (from, id) = after.map_or((i64::MIN, [0u8; 16]), |(at, id)| {
                (micros(at), *id.as_bytes())
            });
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, due_at, mark FROM schedule \
                     WHERE tenant_id = ?1 AND kind = ?2 AND due_at IS NOT NULL AND due_at <= ?3 \
                       AND (due_at > ?4 OR (due_at = ?4 AND id > ?5)) \
                     ORDER BY due_at, id LIMIT ?6",
                )
                .map_err(storage)?;
            let rows = stmt
                .query_map(
                    params![
                        tenant.as_bytes().as_slice(),
                        kind.as_str(),
                        micros(until),
                        from,
                        id.as_slice(),
                        i64::from(limit) + 1
                    ],
                    |r| {
                        Ok((
                            r.get::<_, Vec<u8>>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .map_err(storage)?;
            let mut entries = Vec::new();
            for row in rows {
                let (id, due, mark) = row.map_err(storage)?;
                entries.push(DueEntry {
                    id: uuid::Uuid::from_bytes(id_bytes(id)?),
                    due_at: from_micros(due)?,
                    mark,
                });
            }
            Ok(Page::from_overfetch(entries, limit, |e| {
                Cursor::due(e.due_at, e.id)
            }))
        })
        .await
    }

    async fn reschedule(
        &self,
        tenant: TenantId,
        kind: DueKind,
        entries: &[Reschedule],
    ) -> Result<usize> {
        let entries = entries.to_vec();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let mut stored = 0;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "UPDATE schedule SET due_at = ?4 \
                         WHERE tenant_id = ?1 AND kind = ?2 AND id = ?3 AND mark = ?5",
                    )
                    .map_err(storage)?;
                for e in &entries {
                    stored += stmt
                        .execute(params![
                            tenant.as_bytes().as_slice(),
                            kind.as_str(),
                            e.id.as_bytes().as_slice(),
                            e.next.map(micros),
                            e.mark
                        ])
                        .map_err(storage)?;
                }
            }
            tx.commit().map_err(storage)?;
            Ok(stored)
        })
        .await
    }

    async fn schedule_basis(&self, tenant: TenantId, kind: DueKind) -> Result<Option<String>> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT basis FROM schedule_basis WHERE tenant_id = ?1 AND kind = ?2",
                params![tenant.as_bytes().as_slice(), kind.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)
        })
        .await
    }

    async fn tenants(&self, after: Option<TenantId>, limit: u32) -> Result<Vec<TenantId>> {
        self.read(move |conn| {
            // One index probe per tenant: the next tenant id after the last one found.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT tenant_id FROM customers WHERE tenant_id > ?1 \
                     ORDER BY tenant_id LIMIT 1",
                )
                .map_err(storage)?;
            let mut last: Vec<u8> = after.map_or_else(Vec::new, |t| t.as_bytes().to_vec());
            let mut out = Vec::new();
            while out.len() < limit as usize {
                let next: Option<Vec<u8>> = stmt
                    .query_row(params![last], |r| r.get(0))
                    .optional()
                    .map_err(storage)?;
                let Some(next) = next else { break };
                out.push(TenantId::from_bytes(id_bytes(next.clone())?));
                last = next;
            }
            Ok(out)
        })
        .await
    }

    async fn take_lease(
        &self,
        tenant: TenantId,
        job: &str,
        holder: uuid::Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let job = job.to_string();
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "INSERT INTO job_leases (tenant_id, job, holder, until) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (tenant_id, job) DO UPDATE \
                     SET holder = excluded.holder, until = excluded.until \
                     WHERE job_leases.holder = excluded.holder OR job_leases.until <= ?5",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        tenant.as_bytes().as_slice(),
                        job,
                        holder.as_bytes().as_slice(),
                        micros(until),
                        micros(now)
                    ])
                })
                .map_err(storage)?;
            Ok(n == 1)
        })
        .await
    }

    async fn release_lease(&self, tenant: TenantId, job: &str, holder: uuid::Uuid) -> Result<()> {
        let job = job.to_string();
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM job_leases WHERE tenant_id = ?1 AND job = ?2 AND holder = ?3",
                params![
                    tenant.as_bytes().as_slice(),
                    job,
                    holder.as_bytes().as_slice()
                ],
            )
            .map_err(storage)?;
            Ok(())
        })
        .await
    }

    async fn reset_schedule(&self, tenant: TenantId, kind: DueKind, basis: &str) -> Result<u64> {
        let basis = basis.to_string();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            let marked = tx
                .execute(
                    "UPDATE schedule SET due_at = 0, mark = mark + 1 \
                     WHERE tenant_id = ?1 AND kind = ?2",
                    params![t, kind.as_str()],
                )
                .map_err(storage)?;
            tx.execute(
                "INSERT INTO schedule_basis (tenant_id, kind, basis) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant_id, kind) DO UPDATE SET basis = excluded.basis",
                params![t, kind.as_str(), basis],
            )
            .map_err(storage)?;
            tx.commit().map_err(storage)?;
            Ok(marked as u64)
        })
        .await
    }
}
