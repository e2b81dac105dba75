//! Service cases.

use std::collections::BTreeSet;

use async_trait::async_trait;
use crm_core::case::{Case, CaseQuery};
use crm_core::notify::OutboxMessage;
use crm_core::ports::{check_ids, check_len};
use crm_core::WriteOptions;
use crm_core::{CaseId, CaseStore, Cursor, Error, Page, PageRequest, Result, TenantId};

use crm_sql::Value;
use deadpool_postgres::Transaction;

use crate::codec::{
    get_record, id_bytes, json, list_records, stored_version, to_json, write_error,
};
use crate::customers::customer_exists;
use crate::outbox::{write_groups, write_outbox};
use crate::{storage, PostgresStore};

const INSERT: &str = "INSERT INTO cases (tenant_id, id, customer_id, assignee, done, version, \
    record) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const UPDATE: &str = "UPDATE cases SET assignee = $3, done = $4, version = $5, record = $6 \
    WHERE tenant_id = $1 AND id = $2 AND version = $7";

/// Many cases (`$2`: their ids), in one statement.
const SELECT_MANY: &str = "SELECT record FROM cases WHERE tenant_id = $1 AND id = ANY($2::bytea[])";
/// [`UPDATE`] for many distinct cases at once; returns the ids of those stored.
const UPDATE_MANY: &str = "UPDATE cases c SET assignee = u.assignee, done = u.done, \
    version = u.version, record = u.record FROM UNNEST($2::bytea[], $3::bytea[], \
    $4::bool[], $5::int8[], $6::text[], $7::int8[]) \
    AS u(id, assignee, done, version, record, expected) \
    WHERE c.tenant_id = $1 AND c.id = u.id AND c.version = u.expected RETURNING c.id";

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

    async fn get_cases(&self, tenant: TenantId, ids: &[CaseId]) -> Result<Vec<Case>> {
        check_ids(ids.len())?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client(tenant).await?;
        let list: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes().as_slice()).collect();
        let rows = client
            .query(SELECT_MANY, &[&tenant.as_bytes().as_slice(), &list])
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|r| json(r.try_get(0).map_err(storage)?, "cases"))
            .collect()
    }

    async fn update_cases(
        &self,
        tenant: TenantId,
        writes: Vec<(Case, u64, WriteOptions)>,
    ) -> Result<Vec<bool>> {
        check_len("writes", writes.len())?;
        let writes = writes
            .into_iter()
            .map(|(case, expected, options)| {
                Ok((to_json(&case)?, case, expected, options.into_outbox()?))
            })
            .collect::<Result<Vec<_>>>()?;
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let t = tenant.as_bytes().to_vec();
        let distinct = writes
            .iter()
            .map(|(_, case, _, _)| case.id)
            .collect::<BTreeSet<_>>()
            .len()
            == writes.len();
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            let stored = if distinct {
                replace_many(&tx, &t, &writes).await?
            } else {
                // A case written twice: one write after the other, each seeing the last.
                let mut stored = Vec::with_capacity(writes.len());
                for (record, case, expected, _) in &writes {
                    stored.push(match replace(&tx, &t, case, record, *expected).await {
                        Ok(()) => true,
                        Err(Error::Conflict { .. } | Error::NotFound { .. }) => false,
                        Err(e) => return Err(e),
                    });
                }
                stored
            };
            let groups: Vec<&[OutboxMessage]> = writes
                .iter()
                .zip(&stored)
                .filter(|(_, &s)| s)
                .map(|((_, _, _, outbox), _)| outbox.as_slice())
                .collect();
            write_groups(&tx, tenant, &groups).await?;
            tx.commit().await.map_err(storage)?;
            Ok(stored)
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

/// Replaces many distinct cases, each if still at its expected version, with one statement
/// inside the caller's transaction; per write, whether it was stored.
async fn replace_many(
    tx: &Transaction<'_>,
    tenant: &[u8],
    writes: &[(String, Case, u64, Vec<OutboxMessage>)],
) -> Result<Vec<bool>> {
    let mut cols = (
        Vec::with_capacity(writes.len()),
        Vec::with_capacity(writes.len()),
        Vec::with_capacity(writes.len()),
        Vec::with_capacity(writes.len()),
        Vec::with_capacity(writes.len()),
        Vec::with_capacity(writes.len()),
    );
    for (record, case, expected, _) in writes {
        cols.0.push(case.id.as_bytes().as_slice());
        cols.1.push(case.assignee.map(|a| a.as_bytes().to_vec()));
        cols.2.push(case.status.is_done());
        cols.3.push(case.version as i64);
        cols.4.push(record.as_str());
        cols.5.push(*expected as i64);
    }
    let rows = tx
        .query(
            UPDATE_MANY,
            &[
                &tenant, &cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5,
            ],
        )
        .await
        .map_err(storage)?;
    let mut changed = BTreeSet::new();
    for row in &rows {
        changed.insert(id_bytes(row.try_get(0).map_err(storage)?)?);
    }
    Ok(writes
        .iter()
        .map(|(_, case, _, _)| changed.contains(case.id.as_bytes()))
        .collect())
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
