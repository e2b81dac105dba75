//! Pipelines, opportunities and their stage history.

use async_trait::async_trait;
use crm_core::sales::{
    ForecastCell, ForecastQuery, FunnelCell, FunnelQuery, Opportunity, OpportunityQuery, Pipeline,
    Relationship, RelationshipQuery, StageChange, StageTime,
};
use crm_core::{
    Cursor, CustomerId, Error, Interaction, OpportunityId, Page, PageRequest, PipelineId, Result,
    SalesStore, TenantId, WriteOptions,
};
use crm_sql::sales::{CellColumns, DealColumns, DEAL_COLUMNS};
use tokio_postgres::types::ToSql;

use crate::accounts;
use crate::codec::{
    corrupt, get_record, json, list_records, micros, query, stored_version, to_json, write_error,
    Param,
};
use crate::dialect::Postgres;
use crate::outbox::write_outbox;
use crate::{storage, PostgresStore};

/// Appends stage history entries inside the caller's transaction.
async fn append_history(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: &[u8],
    changes: &[StageChange],
) -> Result<()> {
    for c in changes {
        let record = to_json(c)?;
        tx.execute(
            "INSERT INTO stage_changes (tenant_id, opportunity, version, at, from_stage, \
             to_stage, record) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &tenant,
                &c.opportunity.as_bytes().as_slice(),
                &(c.version as i64),
                &micros(c.at),
                &c.from.as_ref().map(|k| k.as_str()),
                &c.to.as_str(),
                &record,
            ],
        )
        .await
        .map_err(|e| {
            write_error(e, "stage change", || {
                format!("{} version {}", c.opportunity, c.version)
            })
        })?;
    }
    Ok(())
}

/// Makes the deals naming a `merged` customer (as account or contact) name `to`, each
/// changed once and at its next version, inside the caller's transaction (a merge).
pub(crate) async fn move_deals(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: &[u8],
    merged: &[crm_core::CustomerId],
    to: crm_core::CustomerId,
) -> Result<()> {
    // The record holds every contact's id as text; the check below is exact.
    let mut deals = std::collections::BTreeMap::new();
    for from in merged {
        let rows = tx
            .query(
                "SELECT record FROM opportunities WHERE tenant_id = $1 \
                 AND (account = $2 OR strpos(record, $3) > 0)",
                &[&tenant, &from.as_bytes().as_slice(), &from.to_string()],
            )
            .await
            .map_err(storage)?;
        for r in rows {
            let deal: Opportunity = json(r.try_get(0).map_err(storage)?, "opportunities")?;
            deals.insert(deal.id, deal);
        }
    }
    for mut deal in deals.into_values() {
        if deal.merge_parties(merged, to) {
            tx.execute(
                "UPDATE opportunities SET account = $3, record = $4, version = $5 \
                 WHERE tenant_id = $1 AND id = $2",
                &[
                    &tenant,
                    &deal.id.as_bytes().as_slice(),
                    &deal.account.as_bytes().as_slice(),
                    &to_json(&deal)?,
                    &(deal.version as i64),
                ],
            )
            .await
            .map_err(storage)?;
        }
    }
    Ok(())
}

/// The deal's row values after the tenant and id: the indexed columns, version, record.
fn deal_params(deal: &Opportunity) -> Result<Vec<Param>> {
    let c = DealColumns::of(deal)?;
    Ok(vec![
        Box::new(c.owner),
        Box::new(c.account),
        Box::new(c.pipeline),
        Box::new(c.stage),
        Box::new(c.outcome.to_string()),
        Box::new(c.category.to_string()),
        Box::new(c.probability),
        Box::new(c.currency),
        Box::new(c.amount_minor),
        Box::new(c.close_date),
        Box::new(c.created_at),
        Box::new(c.closed_at),
        Box::new(c.order_ref),
        Box::new(deal.version as i64),
        Box::new(to_json(deal)?),
    ])
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

#[async_trait]
impl SalesStore for PostgresStore {
    async fn insert_pipeline(&self, tenant: TenantId, pipeline: &Pipeline) -> Result<()> {
        let record = to_json(pipeline)?;
        let client = self.client(tenant).await?;
        client
            .execute(
                "INSERT INTO pipelines (tenant_id, id, version, record) VALUES ($1, $2, $3, $4)",
                &[
                    &tenant.as_bytes().as_slice(),
                    &pipeline.id.as_bytes().as_slice(),
                    &(pipeline.version as i64),
                    &record,
                ],
            )
            .await
            .map_err(|e| write_error(e, "pipeline", || format!("id {}", pipeline.id)))?;
        Ok(())
    }

    async fn update_pipeline(
        &self,
        tenant: TenantId,
        pipeline: &Pipeline,
        expected_version: u64,
    ) -> Result<()> {
        let record = to_json(pipeline)?;
        let client = self.client(tenant).await?;
        let (t, id) = (
            tenant.as_bytes().as_slice(),
            pipeline.id.as_bytes().as_slice(),
        );
        let changed = client
            .execute(
                "UPDATE pipelines SET version = $3, record = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND version = $5",
                &[
                    &t,
                    &id,
                    &(pipeline.version as i64),
                    &record,
                    &(expected_version as i64),
                ],
            )
            .await
            .map_err(storage)?;
        if changed == 0 {
            let actual = stored_version(&client, "pipelines", "id", t, &id).await?;
            return Err(Error::stale_write(
                "pipeline",
                pipeline.id,
                expected_version,
                actual,
            ));
        }
        Ok(())
    }

    async fn get_pipeline(&self, tenant: TenantId, id: PipelineId) -> Result<Pipeline> {
        let client = self.client(tenant).await?;
        get_record(
            &client,
            "pipelines",
            "pipeline",
            tenant.as_bytes(),
            id.as_bytes(),
            id,
        )
        .await
    }

    async fn pipelines(&self, tenant: TenantId) -> Result<Vec<Pipeline>> {
        let client = self.client(tenant).await?;
        let rows = client
            .query(
                "SELECT record FROM pipelines WHERE tenant_id = $1 ORDER BY id",
                &[&tenant.as_bytes().as_slice()],
            )
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|r| json(r.try_get(0).map_err(storage)?, "pipelines"))
            .collect()
    }

    async fn insert_opportunity(
        &self,
        tenant: TenantId,
        deal: &Opportunity,
        change: &StageChange,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let t = tenant.as_bytes().to_vec();
        self.retrying(|| async {
            let mut params: Vec<Param> =
                vec![Box::new(t.clone()), Box::new(deal.id.as_bytes().to_vec())];
            params.extend(deal_params(deal)?);
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            for (table, id, entity, shown) in [
                (
                    "customers",
                    deal.account.as_bytes(),
                    "customer",
                    deal.account.to_string(),
                ),
                (
                    "pipelines",
                    deal.pipeline.as_bytes(),
                    "pipeline",
                    deal.pipeline.to_string(),
                ),
            ] {
                let known = tx
                    .query_opt(
                        &format!("SELECT 1 FROM {table} WHERE tenant_id = $1 AND id = $2"),
                        &[&t, &id.as_slice()],
                    )
                    .await
                    .map_err(storage)?;
                if known.is_none() {
                    return Err(Error::not_found(entity, shown));
                }
            }
            tx.execute(
                &format!(
                    "INSERT INTO opportunities (tenant_id, id, {DEAL_COLUMNS}, version, record) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
                ),
                &refs(&params),
            )
            .await
            .map_err(|e| write_error(e, "opportunity", || crm_sql::sales::duplicate_key(deal)))?;
            append_history(&tx, &t, std::slice::from_ref(change)).await?;
            write_outbox(&tx, tenant, &outbox).await?;
            tx.commit().await.map_err(storage)
        })
        .await
    }

    async fn get_opportunity(&self, tenant: TenantId, id: OpportunityId) -> Result<Opportunity> {
        let client = self.client(tenant).await?;
        get_record(
            &client,
            "opportunities",
            "opportunity",
            tenant.as_bytes(),
            id.as_bytes(),
            id,
        )
        .await
    }

    async fn update_opportunity(
        &self,
        tenant: TenantId,
        deal: &Opportunity,
        expected_version: u64,
        changes: &[StageChange],
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let t = tenant.as_bytes().to_vec();
        self.retrying(|| async {
            let mut params: Vec<Param> =
                vec![Box::new(t.clone()), Box::new(deal.id.as_bytes().to_vec())];
            params.extend(deal_params(deal)?);
            params.push(Box::new(expected_version as i64));
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            let changed = tx
                .execute(
                    "UPDATE opportunities SET owner = $3, account = $4, pipeline = $5, \
                     stage = $6, outcome = $7, category = $8, probability = $9, currency = $10, \
                     amount_minor = $11, close_date = $12, created_at = $13, closed_at = $14, \
                     order_ref = $15, version = $16, record = $17 \
                     WHERE tenant_id = $1 AND id = $2 AND version = $18",
                    &refs(&params),
                )
                .await
                .map_err(|e| {
                    write_error(e, "opportunity", || crm_sql::sales::duplicate_key(deal))
                })?;
            if changed == 0 {
                let id = deal.id.as_bytes().as_slice();
                let actual = stored_version(&tx, "opportunities", "id", &t, &id).await?;
                return Err(Error::stale_write(
                    "opportunity",
                    deal.id,
                    expected_version,
                    actual,
                ));
            }
            append_history(&tx, &t, changes).await?;
            write_outbox(&tx, tenant, &outbox).await?;
            tx.commit().await.map_err(storage)
        })
        .await
    }

    async fn list_opportunities(
        &self,
        tenant: TenantId,
        query: &OpportunityQuery,
        page: &PageRequest,
    ) -> Result<Page<Opportunity>> {
        page.validate()?;
        let after = page
            .after
            .as_ref()
            .map(Cursor::as_opportunity)
            .transpose()?;
        let (filters, mut extra) = crm_sql::sales::deal_filters(query);
        if let Some(c) = query.contact {
            // An id's text is hex digits and dashes: safe as a literal.
            extra.push_str(&format!(
                " AND (record::jsonb -> 'contacts') @> '[{{\"customer\": \"{c}\"}}]'::jsonb"
            ));
        }
        let client = self.client(tenant).await?;
        let deals: Vec<Opportunity> = list_records(
            &client,
            "opportunities",
            tenant.as_bytes(),
            after.map(|a| *a.as_bytes()),
            filters,
            &extra,
            page.limit,
        )
        .await?;
        Ok(Page::from_overfetch(deals, page.limit, |d| {
            Cursor::opportunity(d.id)
        }))
    }

    async fn stage_history(
        &self,
        tenant: TenantId,
        id: OpportunityId,
        page: &PageRequest,
    ) -> Result<Page<StageChange>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_audit).transpose()?;
        let client = self.client(tenant).await?;
        let rows = client
            .query(
                "SELECT record FROM stage_changes WHERE tenant_id = $1 AND opportunity = $2 \
                 AND version > $3 ORDER BY version LIMIT $4",
                &[
                    &tenant.as_bytes().as_slice(),
                    &id.as_bytes().as_slice(),
                    &after.map_or(0, |v| v as i64),
                    &(i64::from(page.limit) + 1),
                ],
            )
            .await
            .map_err(storage)?;
        let changes = rows
            .iter()
            .map(|r| json(r.try_get(0).map_err(storage)?, "stage_changes"))
            .collect::<Result<Vec<StageChange>>>()?;
        Ok(Page::from_overfetch(changes, page.limit, |c| {
            Cursor::audit(c.version)
        }))
    }

    async fn forecast_cells(
        &self,
        tenant: TenantId,
        forecast: &ForecastQuery,
    ) -> Result<Vec<ForecastCell>> {
        forecast.validate()?;
        let sql = crm_sql::sales::forecast_cells(&Postgres, tenant.as_bytes(), forecast);
        let client = self.client(tenant).await?;
        query(&client, sql)
            .await?
            .iter()
            .map(|r| {
                let text = |i: usize| r.try_get::<_, &str>(i).map_err(storage);
                CellColumns {
                    close_date: text(0)?,
                    owner: r.try_get(1).map_err(storage)?,
                    category: text(2)?,
                    probability: r.try_get(3).map_err(storage)?,
                    currency: text(4)?,
                    deals: r.try_get(5).map_err(storage)?,
                    sum_minor: text(6)?,
                }
                .decode(corrupt)
            })
            .collect()
    }

    async fn funnel(
        &self,
        tenant: TenantId,
        funnel: &FunnelQuery,
        pipeline: &Pipeline,
    ) -> Result<(Vec<FunnelCell>, Vec<StageTime>)> {
        funnel.validate()?;
        let t = tenant.as_bytes();
        let client = self.client(tenant).await?;
        let cells = query(
            &client,
            crm_sql::sales::funnel_cells(&Postgres, t, funnel, pipeline),
        )
        .await?
        .iter()
        .map(|r| {
            crm_sql::sales::funnel_cell(
                r.try_get(0).map_err(storage)?,
                r.try_get(1).map_err(storage)?,
                r.try_get(2).map_err(storage)?,
                r.try_get(3).map_err(storage)?,
                r.try_get(4).map_err(storage)?,
                corrupt,
            )
        })
        .collect::<Result<Vec<_>>>()?;
        let times = query(&client, crm_sql::sales::stage_times(&Postgres, t, funnel))
            .await?
            .iter()
            .map(|r| {
                crm_sql::sales::stage_time(
                    r.try_get(0).map_err(storage)?,
                    r.try_get(1).map_err(storage)?,
                    r.try_get(2).map_err(storage)?,
                    r.try_get(3).map_err(storage)?,
                    corrupt,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((cells, times))
    }

    async fn put_relationship(&self, tenant: TenantId, relationship: &Relationship) -> Result<()> {
        let t = tenant.as_bytes().as_slice();
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            accounts::put(&tx, t, relationship).await?;
            tx.commit().await.map_err(storage)
        })
        .await
    }

    async fn remove_relationship(
        &self,
        tenant: TenantId,
        organization: CustomerId,
        person: CustomerId,
    ) -> Result<()> {
        let client = self.client(tenant).await?;
        accounts::remove(&client, tenant.as_bytes(), organization, person).await
    }

    async fn relationships(
        &self,
        tenant: TenantId,
        query: &RelationshipQuery,
        page: &PageRequest,
    ) -> Result<Page<Relationship>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_customer).transpose()?;
        let client = self.client(tenant).await?;
        let fetch = i64::from(page.limit) + 1;
        let rows = accounts::page(&client, tenant.as_bytes(), query, after, fetch).await?;
        Ok(Page::from_overfetch(rows, page.limit, |r| {
            Cursor::customer(query.key_of(r))
        }))
    }

    async fn set_parent(
        &self,
        tenant: TenantId,
        organization: CustomerId,
        parent: Option<CustomerId>,
    ) -> Result<()> {
        let t = tenant.as_bytes().as_slice();
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            accounts::set_parent(&tx, t, organization, parent).await?;
            tx.commit().await.map_err(storage)
        })
        .await
    }

    async fn account_line(
        &self,
        tenant: TenantId,
        organization: CustomerId,
    ) -> Result<Vec<CustomerId>> {
        let client = self.client(tenant).await?;
        let mut line = accounts::line(&client, tenant.as_bytes(), organization).await?;
        line.truncate(crm_core::sales::MAX_HIERARCHY_DEPTH);
        Ok(line)
    }

    async fn subsidiaries(
        &self,
        tenant: TenantId,
        organization: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_customer).transpose()?;
        let client = self.client(tenant).await?;
        let fetch = i64::from(page.limit) + 1;
        let rows =
            accounts::subsidiaries(&client, tenant.as_bytes(), organization, after, fetch).await?;
        Ok(Page::from_overfetch(rows, page.limit, |c| {
            Cursor::customer(*c)
        }))
    }

    async fn account_timeline(
        &self,
        tenant: TenantId,
        organization: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<Interaction>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_timeline).transpose()?;
        let fetch = i64::from(page.limit) + 1;
        let mut client = self.client(tenant).await?;
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(storage)?;
        accounts::need_customer(&tx, tenant.as_bytes(), organization).await?;
        let rows =
            crate::interactions::account_timeline(&tx, tenant, organization, after, fetch).await?;
        tx.commit().await.map_err(storage)?;
        Ok(Page::from_overfetch(rows, page.limit, |i| {
            Cursor::timeline(i.occurred_at, i.id)
        }))
    }
}
