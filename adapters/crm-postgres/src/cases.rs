//! Service cases.

use async_trait::async_trait;
use crm_core::case::{Case, CaseQuery};
use crm_core::notify::OutboxMessage;
use crm_core::{CaseId, CaseStore, Cursor, Error, Page, PageRequest, Result, TenantId};
use tokio_postgres::types::ToSql;

use crate::codec::{json, to_json, write_error};
use crate::customers::customer_exists;
use crate::outbox::{check_outbox, write_outbox};
use crate::{storage, PostgresStore};

const INSERT: &str = "INSERT INTO cases (tenant_id, id, customer_id, assignee, done, version, \
    record) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const UPDATE: &str = "UPDATE cases SET assignee = $3, done = $4, version = $5, record = $6 \
    WHERE tenant_id = $1 AND id = $2 AND version = $7";

#[async_trait]
impl CaseStore for PostgresStore {
    async fn insert_case(
        &self,
        tenant: TenantId,
        case: &Case,
        outbox: Vec<OutboxMessage>,
    ) -> Result<()> {
        check_outbox(&outbox)?;
        let record = to_json(case)?;
        let t = tenant.as_bytes().to_vec();
        let assignee = case.assignee.map(|a| a.as_bytes().to_vec());
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(storage)?;
            if !customer_exists(&tx, &t, case.customer).await? {
                return Err(Error::not_found("customer", case.customer));
            }
            tx.execute(
                INSERT,
                &[
                    &t,
                    &case.id.as_bytes().as_slice(),
                    &case.customer.as_bytes().as_slice(),
                    &assignee,
                    &case.status.is_done(),
                    &(case.version as i64),
                    &record,
                ],
            )
            .await
            .map_err(|e| write_error(e, "case", || format!("id {}", case.id)))?;
            write_outbox(&tx, tenant, &outbox).await?;
            tx.commit().await.map_err(storage)
        })
        .await
    }

    async fn get_case(&self, tenant: TenantId, id: CaseId) -> Result<Case> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT record FROM cases WHERE tenant_id = $1 AND id = $2",
                &[&tenant.as_bytes().as_slice(), &id.as_bytes().as_slice()],
            )
            .await
            .map_err(storage)?
            .ok_or_else(|| Error::not_found("case", id))?;
        json(row.try_get(0).map_err(storage)?, "case record")
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
        let t = tenant.as_bytes().to_vec();
        let id = case.id.as_bytes().to_vec();
        let assignee = case.assignee.map(|a| a.as_bytes().to_vec());
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(storage)?;
            let changed = tx
                .execute(
                    UPDATE,
                    &[
                        &t,
                        &id,
                        &assignee,
                        &case.status.is_done(),
                        &(case.version as i64),
                        &record,
                        &(expected_version as i64),
                    ],
                )
                .await
                .map_err(storage)?;
            if changed == 0 {
                let actual = tx
                    .query_opt(
                        "SELECT version FROM cases WHERE tenant_id = $1 AND id = $2",
                        &[&t, &id],
                    )
                    .await
                    .map_err(storage)?;
                return Err(match actual {
                    None => Error::not_found("case", case.id),
                    Some(row) => Error::Conflict {
                        entity: "case",
                        id: case.id.to_string(),
                        expected: expected_version,
                        actual: row.try_get::<_, i64>(0).map_err(storage)? as u64,
                    },
                });
            }
            write_outbox(&tx, tenant, &outbox).await?;
            tx.commit().await.map_err(storage)
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
        let t = tenant.as_bytes().to_vec();
        let after = after.map_or([0u8; 16], |a| *a.as_bytes()).to_vec();
        let customer = query.customer.map(|c| c.as_bytes().to_vec());
        let assignee = query.assignee.map(|a| a.as_bytes().to_vec());
        let fetch = i64::from(page.limit) + 1;
        let mut sql = String::from("SELECT record FROM cases WHERE tenant_id = $1 AND id > $2");
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&t, &after];
        if let Some(c) = &customer {
            args.push(c);
            sql.push_str(&format!(" AND customer_id = ${}", args.len()));
        }
        if let Some(a) = &assignee {
            args.push(a);
            sql.push_str(&format!(" AND assignee = ${}", args.len()));
        }
        if query.open_only {
            sql.push_str(" AND NOT done");
        }
        args.push(&fetch);
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", args.len()));
        let client = self.client().await?;
        let rows = client.query(&sql, &args).await.map_err(storage)?;
        let cases = rows
            .iter()
            .map(|r| json(r.try_get(0).map_err(storage)?, "case record"))
            .collect::<Result<Vec<Case>>>()?;
        Ok(Page::from_overfetch(cases, page.limit, |c| {
            Cursor::case(c.id)
        }))
    }
}
