//! Service cases.

use async_trait::async_trait;
use crm_core::case::{Case, CaseQuery};
use crm_core::WriteOptions;
use crm_core::{CaseId, CaseStore, Cursor, Error, Page, PageRequest, Result, TenantId};

use crm_sql::Value;
use deadpool_postgres::Transaction;

use crate::codec::{get_record, list_records, stored_version, to_json, write_error};
use crate::customers::customer_exists;
use crate::outbox::write_outbox;
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
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let record = to_json(case)?;
        let t = tenant.as_bytes().to_vec();
        let assignee = case.assignee.map(|a| a.as_bytes().to_vec());
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
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
        let client = self.client(tenant).await?;
        get_record(
            &client,
            "cases",
            "case",
            tenant.as_bytes(),
            id.as_bytes(),
            id,
        )
        .await
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
        let t = tenant.as_bytes().to_vec();
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            replace(&tx, &t, case, &record, expected_version).await?;
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
        let mut filters = Vec::new();
        if let Some(c) = query.customer {
            filters.push(("customer_id", Value::Bytes(c.as_bytes().to_vec())));
        }
        if let Some(a) = query.assignee {
            filters.push(("assignee", Value::Bytes(a.as_bytes().to_vec())));
        }
        let extra = if query.open_only { " AND NOT done" } else { "" };
        let client = self.client(tenant).await?;
        let t = tenant.as_bytes().as_slice();
        let after = after.map(|a| *a.as_bytes());
        let cases: Vec<Case> =
            list_records(&client, "cases", t, after, filters, extra, page.limit).await?;
        Ok(Page::from_overfetch(cases, page.limit, |c| {
            Cursor::case(c.id)
        }))
    }
}

/// Replaces a case still at `expected_version`, inside the caller's transaction.
pub(crate) async fn replace(
    tx: &Transaction<'_>,
    tenant: &[u8],
    case: &Case,
    record: &str,
    expected_version: u64,
) -> Result<()> {
    let id = case.id.as_bytes().to_vec();
    let assignee = case.assignee.map(|a| a.as_bytes().to_vec());
    let changed = tx
        .execute(
            UPDATE,
            &[
                &tenant,
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
        let actual = stored_version(tx, "cases", "id", tenant, &id).await?;
        return Err(Error::stale_write(
            "case",
            case.id,
            expected_version,
            actual,
        ));
    }
    Ok(())
}
