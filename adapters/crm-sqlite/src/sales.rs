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
use rusqlite::{params, params_from_iter, Connection, TransactionBehavior};

use crate::accounts;
use crate::codec::{
    corrupt, get_record, json, list_records, micros, stored_version, to_json, value, write_error,
};
use crate::dialect::Sqlite;
use crate::outbox::write_outbox;
use crate::{storage, SqliteStore};

/// Appends stage history entries inside the caller's transaction.
fn append_history(conn: &Connection, tenant: &[u8], changes: &[StageChange]) -> Result<()> {
    for c in changes {
        let record = to_json(c)?;
        conn.prepare_cached(
            "INSERT INTO stage_changes (tenant_id, opportunity, version, at, from_stage, \
             to_stage, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut s| {
            s.execute(params![
                tenant,
                c.opportunity.as_bytes().as_slice(),
                c.version as i64,
                micros(c.at),
                c.from.as_ref().map(|k| k.as_str()),
                c.to.as_str(),
                record
            ])
        })
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
pub(crate) fn move_deals(
    conn: &Connection,
    tenant: &[u8],
    merged: &[crm_core::CustomerId],
    to: crm_core::CustomerId,
) -> Result<()> {
    // The record holds every contact's id as text; the check below is exact.
    let mut deals = std::collections::BTreeMap::new();
    for from in merged {
        let rows: Vec<String> = conn
            .prepare_cached(
                "SELECT record FROM opportunities WHERE tenant_id = ?1 \
                 AND (account = ?2 OR instr(record, ?3) > 0)",
            )
            .and_then(|mut s| {
                s.query_map(
                    params![tenant, from.as_bytes().as_slice(), from.to_string()],
                    |r| r.get(0),
                )?
                .collect()
            })
            .map_err(storage)?;
        for record in rows {
            let deal: Opportunity = json(&record, "opportunities")?;
            deals.insert(deal.id, deal);
        }
    }
    for mut deal in deals.into_values() {
        if deal.merge_parties(merged, to) {
            let record = to_json(&deal)?;
            conn.prepare_cached(
                "UPDATE opportunities SET account = ?3, record = ?4, version = ?5 \
                 WHERE tenant_id = ?1 AND id = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant,
                    deal.id.as_bytes().as_slice(),
                    deal.account.as_bytes().as_slice(),
                    record,
                    deal.version as i64
                ])
            })
            .map_err(storage)?;
        }
    }
    Ok(())
}

/// The deal's row values after the tenant and id: the indexed columns, version, record.
fn deal_params(deal: &Opportunity) -> Result<Vec<rusqlite::types::Value>> {
    use rusqlite::types::Value as V;
    let c = DealColumns::of(deal)?;
    Ok(vec![
        V::Blob(c.owner),
        V::Blob(c.account),
        V::Blob(c.pipeline),
        V::Text(c.stage),
        V::Text(c.outcome.into()),
        V::Text(c.category.into()),
        V::Integer(c.probability),
        V::Text(c.currency),
        V::Integer(c.amount_minor),
        V::Text(c.close_date),
        V::Integer(c.created_at),
        c.closed_at.map_or(V::Null, V::Integer),
        c.order_ref.map_or(V::Null, V::Text),
        V::Integer(deal.version as i64),
        V::Text(to_json(deal)?),
    ])
}

#[async_trait]
impl SalesStore for SqliteStore {
    async fn insert_pipeline(&self, tenant: TenantId, pipeline: &Pipeline) -> Result<()> {
        let record = to_json(pipeline)?;
        let (id, version) = (pipeline.id, pipeline.version);
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO pipelines (tenant_id, id, version, record) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_bytes().as_slice(),
                    id.as_bytes().as_slice(),
                    version as i64,
                    record
                ])
            })
            .map_err(|e| write_error(e, "pipeline", || format!("id {id}")))?;
            Ok(())
        })
        .await
    }

    async fn update_pipeline(
        &self,
        tenant: TenantId,
        pipeline: &Pipeline,
        expected_version: u64,
    ) -> Result<()> {
        let record = to_json(pipeline)?;
        let (id, version) = (pipeline.id, pipeline.version);
        self.write(move |conn| {
            let t = tenant.as_bytes().as_slice();
            let changed = conn
                .prepare_cached(
                    "UPDATE pipelines SET version = ?3, record = ?4 \
                     WHERE tenant_id = ?1 AND id = ?2 AND version = ?5",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        t,
                        id.as_bytes().as_slice(),
                        version as i64,
                        record,
                        expected_version as i64
                    ])
                })
                .map_err(storage)?;
            if changed == 0 {
                let actual = stored_version(conn, "pipelines", "id", t, &id.as_bytes().as_slice())?;
                return Err(Error::stale_write("pipeline", id, expected_version, actual));
            }
            Ok(())
        })
        .await
    }

    async fn get_pipeline(&self, tenant: TenantId, id: PipelineId) -> Result<Pipeline> {
        self.read(move |conn| {
            get_record(
                conn,
                "pipelines",
                "pipeline",
                tenant.as_bytes(),
                id.as_bytes(),
                id,
            )
        })
        .await
    }

    async fn pipelines(&self, tenant: TenantId) -> Result<Vec<Pipeline>> {
        self.read(move |conn| {
            let rows: Vec<String> = conn
                .prepare_cached("SELECT record FROM pipelines WHERE tenant_id = ?1 ORDER BY id")
                .and_then(|mut s| {
                    s.query_map(params![tenant.as_bytes().as_slice()], |r| r.get(0))?
                        .collect()
                })
                .map_err(storage)?;
            rows.iter().map(|r| json(r, "pipelines")).collect()
        })
        .await
    }

    async fn insert_opportunity(
        &self,
        tenant: TenantId,
        deal: &Opportunity,
        change: &StageChange,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let row = deal_params(deal)?;
        let (d, change) = (deal.clone(), change.clone());
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            for (table, id, entity) in [
                (
                    "customers",
                    *d.account.as_bytes(),
                    ("customer", d.account.to_string()),
                ),
                (
                    "pipelines",
                    *d.pipeline.as_bytes(),
                    ("pipeline", d.pipeline.to_string()),
                ),
            ] {
                let known = tx
                    .prepare_cached(&format!(
                        "SELECT 1 FROM {table} WHERE tenant_id = ?1 AND id = ?2"
                    ))
                    .and_then(|mut s| s.exists(params![t, id.as_slice()]))
                    .map_err(storage)?;
                if !known {
                    return Err(Error::not_found(entity.0, entity.1));
                }
            }
            let mut values = vec![
                rusqlite::types::Value::Blob(t.to_vec()),
                rusqlite::types::Value::Blob(d.id.as_bytes().to_vec()),
            ];
            values.extend(row);
            tx.prepare_cached(&format!(
                "INSERT INTO opportunities (tenant_id, id, {DEAL_COLUMNS}, version, record) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ))
            .and_then(|mut s| s.execute(params_from_iter(values)))
            .map_err(|e| write_error(e, "opportunity", || crm_sql::sales::duplicate_key(&d)))?;
            append_history(&tx, t, std::slice::from_ref(&change))?;
            write_outbox(&tx, tenant, &outbox)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn get_opportunity(&self, tenant: TenantId, id: OpportunityId) -> Result<Opportunity> {
        self.read(move |conn| {
            get_record(
                conn,
                "opportunities",
                "opportunity",
                tenant.as_bytes(),
                id.as_bytes(),
                id,
            )
        })
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
        let row = deal_params(deal)?;
        let (d, changes) = (deal.clone(), changes.to_vec());
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            let mut values = vec![
                rusqlite::types::Value::Blob(t.to_vec()),
                rusqlite::types::Value::Blob(d.id.as_bytes().to_vec()),
            ];
            values.extend(row);
            values.push(rusqlite::types::Value::Integer(expected_version as i64));
            let changed = tx
                .prepare_cached(
                    "UPDATE opportunities SET owner = ?3, account = ?4, pipeline = ?5, \
                     stage = ?6, outcome = ?7, category = ?8, probability = ?9, currency = ?10, \
                     amount_minor = ?11, close_date = ?12, created_at = ?13, closed_at = ?14, \
                     order_ref = ?15, version = ?16, record = ?17 \
                     WHERE tenant_id = ?1 AND id = ?2 AND version = ?18",
                )
                .and_then(|mut s| s.execute(params_from_iter(values)))
                .map_err(|e| write_error(e, "opportunity", || crm_sql::sales::duplicate_key(&d)))?;
            if changed == 0 {
                let actual =
                    stored_version(&tx, "opportunities", "id", t, &d.id.as_bytes().as_slice())?;
                return Err(Error::stale_write(
                    "opportunity",
                    d.id,
                    expected_version,
                    actual,
                ));
            }
            append_history(&tx, t, &changes)?;
            write_outbox(&tx, tenant, &outbox)?;
            tx.commit().map_err(storage)
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
        let query = query.clone();
        let limit = page.limit;
        self.read(move |conn| {
            let (filters, mut extra) = crm_sql::sales::deal_filters(&query);
            if let Some(c) = query.contact {
                // An id's text is hex digits and dashes: safe as a literal.
                extra.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM json_each(record, '$.contacts') j \
                     WHERE json_extract(j.value, '$.customer') = '{c}')"
                ));
            }
            let deals: Vec<Opportunity> = list_records(
                conn,
                "opportunities",
                tenant.as_bytes(),
                after.map(|a| *a.as_bytes()),
                filters,
                &extra,
                limit,
            )?;
            Ok(Page::from_overfetch(deals, limit, |d| {
                Cursor::opportunity(d.id)
            }))
        })
        .await
    }

    async fn stage_history(
        &self,
        tenant: TenantId,
        id: OpportunityId,
        page: &PageRequest,
    ) -> Result<Page<StageChange>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_audit).transpose()?;
        let limit = page.limit;
        self.read(move |conn| {
            let after = after.map_or(0, |v| v as i64);
            let rows: Vec<String> = conn
                .prepare_cached(
                    "SELECT record FROM stage_changes WHERE tenant_id = ?1 AND opportunity = ?2 \
                     AND version > ?3 ORDER BY version LIMIT ?4",
                )
                .and_then(|mut s| {
                    s.query_map(
                        params![
                            tenant.as_bytes().as_slice(),
                            id.as_bytes().as_slice(),
                            after,
                            i64::from(limit) + 1
                        ],
                        |r| r.get(0),
                    )?
                    .collect()
                })
                .map_err(storage)?;
            let changes = rows
                .iter()
                .map(|r| json(r, "stage_changes"))
                .collect::<Result<Vec<StageChange>>>()?;
            Ok(Page::from_overfetch(changes, limit, |c| {
                Cursor::audit(c.version)
            }))
        })
        .await
    }

    async fn forecast_cells(
        &self,
        tenant: TenantId,
        query: &ForecastQuery,
    ) -> Result<Vec<ForecastCell>> {
        query.validate()?;
        let sql = crm_sql::sales::forecast_cells(&Sqlite, tenant.as_bytes(), query);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql.text).map_err(storage)?;
            let mut rows = stmt
                .query(params_from_iter(sql.params.into_iter().map(value)))
                .map_err(storage)?;
            let mut cells = Vec::new();
            while let Some(r) = rows.next().map_err(storage)? {
                let get_text = |i: usize| r.get::<_, String>(i).map_err(storage);
                let (close_date, category, currency, sum) =
                    (get_text(0)?, get_text(2)?, get_text(4)?, get_text(6)?);
                let owner: Vec<u8> = r.get(1).map_err(storage)?;
                cells.push(
                    CellColumns {
                        close_date: &close_date,
                        owner: &owner,
                        category: &category,
                        probability: r.get(3).map_err(storage)?,
                        currency: &currency,
                        deals: r.get(5).map_err(storage)?,
                        sum_minor: &sum,
                    }
                    .decode(corrupt)?,
                );
            }
            Ok(cells)
        })
        .await
    }

    async fn funnel(
        &self,
        tenant: TenantId,
        query: &FunnelQuery,
        pipeline: &Pipeline,
    ) -> Result<(Vec<FunnelCell>, Vec<StageTime>)> {
        query.validate()?;
        let t = tenant.as_bytes();
        let cells_sql = crm_sql::sales::funnel_cells(&Sqlite, t, query, pipeline);
        let times_sql = crm_sql::sales::stage_times(&Sqlite, t, query);
        self.read(move |conn| {
            let run = |sql: crm_sql::Sql| -> Result<Vec<Vec<rusqlite::types::Value>>> {
                let mut stmt = conn.prepare_cached(&sql.text).map_err(storage)?;
                let width = stmt.column_count();
                let rows = stmt
                    .query_map(params_from_iter(sql.params.into_iter().map(value)), |r| {
                        (0..width).map(|i| r.get(i)).collect()
                    })
                    .map_err(storage)?;
                rows.collect::<rusqlite::Result<_>>().map_err(storage)
            };
            use rusqlite::types::Value as V;
            let bad = |what: &str| corrupt(format!("funnel: {what}"));
            let cells = run(cells_sql)?
                .into_iter()
                .map(|r| match r.as_slice() {
                    [V::Blob(owner), V::Text(outcome), V::Integer(reached), V::Integer(n), cycle] =>
                    {
                        let cycle = match cycle {
                            V::Text(t) => Some(t.as_str()),
                            _ => None,
                        };
                        crm_sql::sales::funnel_cell(owner, outcome, *reached, *n, cycle, corrupt)
                    }
                    _ => Err(bad("a cell row of unexpected types")),
                })
                .collect::<Result<Vec<_>>>()?;
            let times = run(times_sql)?
                .into_iter()
                .map(|r| match r.as_slice() {
                    [V::Blob(owner), V::Text(stage), V::Integer(n), V::Text(seconds)] => {
                        crm_sql::sales::stage_time(owner, stage, *n, seconds, corrupt)
                    }
                    _ => Err(bad("a stage time row of unexpected types")),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((cells, times))
        })
        .await
    }

    async fn put_relationship(&self, tenant: TenantId, relationship: &Relationship) -> Result<()> {
        let r = relationship.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            accounts::put(&tx, tenant.as_bytes(), &r)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn remove_relationship(
        &self,
        tenant: TenantId,
        organization: CustomerId,
        person: CustomerId,
    ) -> Result<()> {
        self.write(move |conn| accounts::remove(conn, tenant.as_bytes(), organization, person))
            .await
    }

    async fn relationships(
        &self,
        tenant: TenantId,
        query: &RelationshipQuery,
        page: &PageRequest,
    ) -> Result<Page<Relationship>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_customer).transpose()?;
        let (q, fetch) = (*query, i64::from(page.limit) + 1);
        let rows = self
            .read(move |conn| accounts::page(conn, tenant.as_bytes(), &q, after, fetch))
            .await?;
        Ok(Page::from_overfetch(rows, page.limit, |r| {
            Cursor::customer(q.key_of(r))
        }))
    }

    async fn set_parent(
        &self,
        tenant: TenantId,
        organization: CustomerId,
        parent: Option<CustomerId>,
    ) -> Result<()> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            accounts::set_parent(&tx, tenant.as_bytes(), organization, parent)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn account_line(
        &self,
        tenant: TenantId,
        organization: CustomerId,
    ) -> Result<Vec<CustomerId>> {
        let mut line = self
            .read(move |conn| accounts::line(conn, tenant.as_bytes(), organization))
            .await?;
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
        let fetch = i64::from(page.limit) + 1;
        let rows = self
            .read(move |conn| {
                accounts::subsidiaries(conn, tenant.as_bytes(), organization, after, fetch)
            })
            .await?;
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
        let rows = self
            .read(move |conn| {
                let tx = conn.unchecked_transaction().map_err(storage)?;
                accounts::need_customer(&tx, tenant.as_bytes(), organization)?;
                crate::interactions::account_timeline(&tx, tenant, organization, after, fetch)
            })
            .await?;
        Ok(Page::from_overfetch(rows, page.limit, |i| {
            Cursor::timeline(i.occurred_at, i.id)
        }))
    }
}
