//! Service cases.

use async_trait::async_trait;
use crm_core::case::{Case, CaseQuery};
use crm_core::WriteOptions;
use crm_core::{CaseId, CaseStore, Cursor, Error, Page, PageRequest, Result, TenantId};
use rusqlite::{params, Transaction, TransactionBehavior};

use crate::codec::{get_record, list_records, stored_version, to_json, write_error};
use crate::outbox::write_outbox;
use crate::{found, storage, SqliteStore};

const INSERT: &str = "INSERT INTO cases (tenant_id, id, customer_id, assignee, done, version, \
    record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const UPDATE: &str = "UPDATE cases SET assignee = ?3, done = ?4, version = ?5, record = ?6 \
    WHERE tenant_id = ?1 AND id = ?2 AND version = ?7";

fn blob(id: Option<[u8; 16]>) -> Option<Vec<u8>> {
    id.map(|b| b.to_vec())
}

#[async_trait]
impl CaseStore for SqliteStore {
    async fn insert_case(
        &self,
        tenant: TenantId,
        case: &Case,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let record = to_json(case)?;
        let c = case.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            let known = tx
                .prepare_cached("SELECT 1 FROM customers WHERE tenant_id = ?1 AND id = ?2")
                .and_then(|mut s| s.exists(params![t, c.customer.as_bytes().as_slice()]))
                .map_err(storage)?;
            if !known {
                return Err(Error::not_found("customer", c.customer));
            }
            tx.prepare_cached(INSERT)
                .and_then(|mut s| {
                    s.execute(params![
                        t,
                        c.id.as_bytes().as_slice(),
                        c.customer.as_bytes().as_slice(),
                        blob(c.assignee.map(|a| *a.as_bytes())),
                        c.status.is_done(),
                        c.version as i64,
                        record
                    ])
                })
                .map_err(|e| write_error(e, "case", || format!("id {}", c.id)))?;
            write_outbox(&tx, tenant, &outbox)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn get_case(&self, tenant: TenantId, id: CaseId) -> Result<Case> {
        self.read(move |conn| {
            get_record(conn, "cases", "case", tenant.as_bytes(), id.as_bytes(), id)
        })
        .await
    }

    async fn update_cases(
        &self,
        tenant: TenantId,
        writes: Vec<(Case, u64, WriteOptions)>,
    ) -> Result<Vec<bool>> {
        crm_core::ports::check_len("writes", writes.len())?;
        let writes = writes
            .into_iter()
            .map(|(case, expected, options)| {
                Ok((to_json(&case)?, case, expected, options.into_outbox()?))
            })
            .collect::<Result<Vec<_>>>()?;
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let mut stored = Vec::with_capacity(writes.len());
            for (record, case, expected, outbox) in &writes {
                match replace(&tx, tenant.as_bytes(), case, record, *expected) {
                    Ok(()) => {
                        write_outbox(&tx, tenant, outbox)?;
                        stored.push(true);
                    }
                    Err(Error::Conflict { .. } | Error::NotFound { .. }) => stored.push(false),
                    Err(e) => return Err(e),
                }
            }
            tx.commit().map_err(storage)?;
            Ok(stored)
        })
        .await
    }

    async fn get_cases(&self, tenant: TenantId, ids: &[CaseId]) -> Result<Vec<Case>> {
        let read = self
            .read_each(ids, move |conn, id| {
                let t = tenant.as_bytes();
                found(get_record(conn, "cases", "case", t, id.as_bytes(), id))
            })
            .await?;
        Ok(read.into_iter().map(|(_, c)| c).collect())
    }

    async fn update_case(
        &self,
        tenant: TenantId,
        case: &Case,
        expected_version: u64,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let record = to_json(case)?;
        let c = case.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            replace(&tx, tenant.as_bytes(), &c, &record, expected_version)?;
            write_outbox(&tx, tenant, &outbox)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn list_cases(
        &self,
        tenant: TenantId,
        query: &CaseQuery,
        page: &PageRequest,
    ) -> Result<Page<Case>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_case).transpose()?;
        let query = query.clone();
        let limit = page.limit;
        self.read(move |conn| {
            let mut filters = Vec::new();
            if let Some(c) = query.customer {
                filters.push(("customer_id", crm_sql::Value::Bytes(c.as_bytes().to_vec())));
            }
            if let Some(a) = query.assignee {
                filters.push(("assignee", crm_sql::Value::Bytes(a.as_bytes().to_vec())));
            }
            let extra = if query.open_only { " AND done = 0" } else { "" };
            let t = tenant.as_bytes().as_slice();
            let cases: Vec<Case> = list_records(
                conn,
                "cases",
                t,
                after.map(|a| *a.as_bytes()),
                filters,
                extra,
                limit,
            )?;
            Ok(Page::from_overfetch(cases, limit, |c| Cursor::case(c.id)))
        })
        .await
    }
}

/// Replaces a case still at `expected_version`, inside the caller's transaction.
pub(crate) fn replace(
    tx: &Transaction<'_>,
    tenant: &[u8],
    c: &Case,
    record: &str,
    expected_version: u64,
) -> Result<()> {
    let id = c.id.as_bytes().as_slice();
    let changed = tx
        .prepare_cached(UPDATE)
        .and_then(|mut s| {
            s.execute(params![
                tenant,
                id,
                blob(c.assignee.map(|a| *a.as_bytes())),
                c.status.is_done(),
                c.version as i64,
                record,
                expected_version as i64
            ])
        })
        .map_err(storage)?;
    if changed == 0 {
        let actual = stored_version(tx, "cases", "id", tenant, &id)?;
        return Err(Error::stale_write("case", c.id, expected_version, actual));
    }
    Ok(())
}
