//! Service cases.

use async_trait::async_trait;
use crm_core::case::{Case, CaseQuery};
use crm_core::notify::OutboxMessage;
use crm_core::{CaseId, CaseStore, Cursor, Error, Page, PageRequest, Result, TenantId};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, TransactionBehavior};

use crate::codec::{json, to_json, write_error};
use crate::outbox::{check_outbox, write_outbox};
use crate::{storage, SqliteStore};

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
        outbox: Vec<OutboxMessage>,
    ) -> Result<()> {
        check_outbox(&outbox)?;
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
            let record: Option<String> = conn
                .prepare_cached("SELECT record FROM cases WHERE tenant_id = ?1 AND id = ?2")
                .and_then(|mut s| {
                    s.query_row(
                        params![tenant.as_bytes().as_slice(), id.as_bytes().as_slice()],
                        |r| r.get(0),
                    )
                    .optional()
                })
                .map_err(storage)?;
            match record {
                Some(text) => json(&text, "case record"),
                None => Err(Error::not_found("case", id)),
            }
        })
        .await
    }

    async fn update_case(
        &self,
        tenant: TenantId,
        case: &Case,
        expected_version: u64,
        outbox: Vec<OutboxMessage>,
    ) -> Result<()> {
        check_outbox(&outbox)?;
        let record = to_json(case)?;
        let c = case.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let (t, id) = (tenant.as_bytes().as_slice(), c.id.as_bytes().as_slice());
            let changed = tx
                .prepare_cached(UPDATE)
                .and_then(|mut s| {
                    s.execute(params![
                        t,
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
                let actual: Option<i64> = tx
                    .query_row(
                        "SELECT version FROM cases WHERE tenant_id = ?1 AND id = ?2",
                        params![t, id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(storage)?;
                return Err(match actual {
                    None => Error::not_found("case", c.id),
                    Some(v) => Error::Conflict {
                        entity: "case",
                        id: c.id.to_string(),
                        expected: expected_version,
                        actual: v as u64,
                    },
                });
            }
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
            let mut sql = String::from("SELECT record FROM cases WHERE tenant_id = ?1 AND id > ?2");
            let mut args: Vec<Value> = vec![
                Value::Blob(tenant.as_bytes().to_vec()),
                Value::Blob(after.map_or([0; 16], |a| *a.as_bytes()).to_vec()),
            ];
            if let Some(c) = query.customer {
                args.push(Value::Blob(c.as_bytes().to_vec()));
                sql.push_str(&format!(" AND customer_id = ?{}", args.len()));
            }
            if let Some(a) = query.assignee {
                args.push(Value::Blob(a.as_bytes().to_vec()));
                sql.push_str(&format!(" AND assignee = ?{}", args.len()));
            }
            if query.open_only {
                sql.push_str(" AND done = 0");
            }
            args.push(Value::Integer(i64::from(limit) + 1));
            sql.push_str(&format!(" ORDER BY id LIMIT ?{}", args.len()));
            let rows: Vec<String> = conn
                .prepare_cached(&sql)
                .and_then(|mut s| s.query_map(params_from_iter(args), |r| r.get(0))?.collect())
                .map_err(storage)?;
            let cases = rows
                .iter()
                .map(|text| json(text, "case record"))
                .collect::<Result<Vec<Case>>>()?;
            Ok(Page::from_overfetch(cases, limit, |c| Cursor::case(c.id)))
        })
        .await
    }
}
