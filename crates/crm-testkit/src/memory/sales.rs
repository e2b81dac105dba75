//! Pipelines, opportunities and stage history of the in-memory store.

use crm_core::sales::{
    cells_of, funnel_of, ForecastCell, ForecastQuery, FunnelCell, FunnelQuery, Opportunity,
    OpportunityQuery, Pipeline, Relationship, RelationshipQuery, StageChange, StageTime,
};
use crm_core::{OpportunityId, PipelineId, SalesStore};

use super::*;

/// The sales tables.
#[derive(Default)]
pub(super) struct SalesState {
    pipelines: BTreeMap<Key<PipelineId>, Pipeline>,
    deals: BTreeMap<Key<OpportunityId>, Opportunity>,
    history: BTreeMap<(TenantId, OpportunityId, u64), StageChange>,
    orders: HashMap<Key<ExternalRef>, OpportunityId>,
}

impl SalesState {
    /// Every deal of `tenant`.
    pub(super) fn deals_of(&self, tenant: TenantId) -> impl Iterator<Item = &Opportunity> {
        self.deals
            .iter()
            .filter(move |((t, _), _)| *t == tenant)
            .map(|(_, d)| d)
    }

    /// The open deals with `account` as their account: stage key and amount.
    pub(super) fn open_deals_of(
        &self,
        tenant: TenantId,
        account: CustomerId,
    ) -> Vec<(String, crm_core::Money)> {
        self.deals
            .iter()
            .filter(|((t, _), d)| {
                *t == tenant && d.account == account && d.outcome == crm_core::sales::Outcome::Open
            })
            .map(|(_, d)| (d.stage.as_str().to_string(), d.amount))
            .collect()
    }

    /// A merge: deals naming a `gone` customer name the survivor.
    pub(super) fn merge_parties(
        &mut self,
        tenant: TenantId,
        gone: &[CustomerId],
        survivor: CustomerId,
    ) {
        for ((t, _), deal) in self.deals.iter_mut() {
            if *t == tenant {
                deal.merge_parties(gone, survivor);
            }
        }
    }
}

#[async_trait]
impl SalesStore for MemoryStore {
    async fn insert_pipeline(&self, tenant: TenantId, pipeline: &Pipeline) -> Result<()> {
        let mut s = self.lock();
        if s.sales.pipelines.contains_key(&(tenant, pipeline.id)) {
            return Err(Error::Duplicate {
                entity: "pipeline",
                key: format!("id {}", pipeline.id),
            });
        }
        s.sales
            .pipelines
            .insert((tenant, pipeline.id), pipeline.clone());
        Ok(())
    }

    async fn update_pipeline(
        &self,
        tenant: TenantId,
        pipeline: &Pipeline,
        expected_version: u64,
    ) -> Result<()> {
        let mut s = self.lock();
        let stored = s
            .sales
            .pipelines
            .get(&(tenant, pipeline.id))
            .ok_or_else(|| Error::not_found("pipeline", pipeline.id))?;
        if stored.version != expected_version {
            return Err(Error::stale_write(
                "pipeline",
                pipeline.id,
                expected_version,
                Some(stored.version),
            ));
        }
        s.sales
            .pipelines
            .insert((tenant, pipeline.id), pipeline.clone());
        Ok(())
    }

    async fn get_pipeline(&self, tenant: TenantId, id: PipelineId) -> Result<Pipeline> {
        self.lock()
            .sales
            .pipelines
            .get(&(tenant, id))
            .cloned()
            .ok_or_else(|| Error::not_found("pipeline", id))
    }

    async fn pipelines(&self, tenant: TenantId) -> Result<Vec<Pipeline>> {
        let s = self.lock();
        Ok(s.sales
            .pipelines
            .range((tenant, PipelineId::from_bytes([0; 16]))..)
            .take_while(|((t, _), _)| *t == tenant)
            .map(|(_, p)| p.clone())
            .collect())
    }

    async fn insert_opportunity(
        &self,
        tenant: TenantId,
        deal: &Opportunity,
        change: &StageChange,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let mut s = self.lock();
        if !s.customers.contains_key(&(tenant, deal.account)) {
            return Err(not_found(deal.account));
        }
        if !s.sales.pipelines.contains_key(&(tenant, deal.pipeline)) {
            return Err(Error::not_found("pipeline", deal.pipeline));
        }
        if s.sales.deals.contains_key(&(tenant, deal.id)) {
            return Err(Error::Duplicate {
                entity: "opportunity",
                key: format!("id {}", deal.id),
            });
        }
        s.check_outbox(tenant, &outbox)?;
        s.sales.deals.insert((tenant, deal.id), deal.clone());
        s.sales
            .history
            .insert((tenant, deal.id, change.version), change.clone());
        s.write_outbox(tenant, outbox);
        Ok(())
    }

    async fn get_opportunity(&self, tenant: TenantId, id: OpportunityId) -> Result<Opportunity> {
        self.lock()
            .sales
            .deals
            .get(&(tenant, id))
            .cloned()
            .ok_or_else(|| Error::not_found("opportunity", id))
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
        let mut s = self.lock();
        let stored = s
            .sales
            .deals
            .get(&(tenant, deal.id))
            .ok_or_else(|| Error::not_found("opportunity", deal.id))?;
        if stored.version != expected_version {
            return Err(Error::stale_write(
                "opportunity",
                deal.id,
                expected_version,
                Some(stored.version),
            ));
        }
        let old_order = stored.order.as_ref().map(|o| o.reference.clone());
        let new_order = deal.order.as_ref().map(|o| o.reference.clone());
        if let Some(reference) = &new_order {
            if let Some(other) = s.sales.orders.get(&(tenant, reference.clone())) {
                if *other != deal.id {
                    return Err(Error::Duplicate {
                        entity: "opportunity",
                        key: format!("order {reference}"),
                    });
                }
            }
        }
        s.check_outbox(tenant, &outbox)?;
        if let Some(old) = old_order {
            s.sales.orders.remove(&(tenant, old));
        }
        if let Some(new) = new_order {
            s.sales.orders.insert((tenant, new), deal.id);
        }
        s.sales.deals.insert((tenant, deal.id), deal.clone());
        for change in changes {
            s.sales
                .history
                .insert((tenant, deal.id, change.version), change.clone());
        }
        s.write_outbox(tenant, outbox);
        Ok(())
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
        let s = self.lock();
        let rows: Vec<Opportunity> = s
            .sales
            .deals
            .range((tenant, after.unwrap_or(OpportunityId::from_bytes([0; 16])))..)
            .take_while(|((t, _), _)| *t == tenant)
            .filter(|((_, id), d)| Some(*id) != after && query.matches(d))
            .take(page.limit as usize + 1)
            .map(|(_, d)| d.clone())
            .collect();
        Ok(Page::from_overfetch(rows, page.limit, |d| {
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
        let s = self.lock();
        let from = after.map_or(0, |v| v.saturating_add(1));
        let rows: Vec<StageChange> = s
            .sales
            .history
            .range((tenant, id, from)..=(tenant, id, u64::MAX))
            .take(page.limit as usize + 1)
            .map(|(_, c)| c.clone())
            .collect();
        Ok(Page::from_overfetch(rows, page.limit, |c| {
            Cursor::audit(c.version)
        }))
    }

    async fn forecast_cells(
        &self,
        tenant: TenantId,
        query: &ForecastQuery,
    ) -> Result<Vec<ForecastCell>> {
        query.validate()?;
        let s = self.lock();
        cells_of(
            query,
            s.sales
                .deals
                .range((tenant, OpportunityId::from_bytes([0; 16]))..)
                .take_while(|((t, _), _)| *t == tenant)
                .map(|(_, d)| d)
                .filter(|d| query.matches(d)),
        )
    }

    async fn funnel(
        &self,
        tenant: TenantId,
        query: &FunnelQuery,
        pipeline: &Pipeline,
    ) -> Result<(Vec<FunnelCell>, Vec<StageTime>)> {
        query.validate()?;
        let s = self.lock();
        let followed: Vec<(&Opportunity, Vec<StageChange>)> = s
            .sales
            .deals
            .range((tenant, OpportunityId::from_bytes([0; 16]))..)
            .take_while(|((t, _), _)| *t == tenant)
            .map(|(_, d)| d)
            .filter(|d| query.matches(d))
            .map(|d| {
                let history = s
                    .sales
                    .history
                    .range((tenant, d.id, 0)..=(tenant, d.id, u64::MAX))
                    .map(|(_, c)| c.clone())
                    .collect();
                (d, history)
            })
            .collect();
        funnel_of(pipeline, followed.iter().map(|(d, h)| (*d, h.as_slice())))
    }

    async fn put_relationship(&self, tenant: TenantId, relationship: &Relationship) -> Result<()> {
        relationship.validate()?;
        let mut s = self.lock();
        for id in [relationship.organization, relationship.person] {
            if !s.customers.contains_key(&(tenant, id)) {
                return Err(not_found(id));
            }
        }
        s.accounts.put(tenant, relationship)
    }

    async fn remove_relationship(
        &self,
        tenant: TenantId,
        organization: CustomerId,
        person: CustomerId,
    ) -> Result<()> {
        self.lock().accounts.remove(tenant, organization, person)
    }

    async fn relationships(
        &self,
        tenant: TenantId,
        query: &RelationshipQuery,
        page: &PageRequest,
    ) -> Result<Page<Relationship>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_customer).transpose()?;
        let rows = self
            .lock()
            .accounts
            .list(tenant, query, after, page.limit as usize + 1);
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
        let mut s = self.lock();
        for id in std::iter::once(organization).chain(parent) {
            if !s.customers.contains_key(&(tenant, id)) {
                return Err(not_found(id));
            }
        }
        s.accounts.set_parent(tenant, organization, parent)
    }

    async fn account_line(
        &self,
        tenant: TenantId,
        organization: CustomerId,
    ) -> Result<Vec<CustomerId>> {
        let mut line = self.lock().accounts.line(tenant, organization);
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
        let rows =
            self.lock()
                .accounts
                .subsidiaries(tenant, organization, after, page.limit as usize + 1);
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
        let s = self.lock();
        if !s.customers.contains_key(&(tenant, organization)) {
            return Err(not_found(organization));
        }
        let parties =
            std::iter::once(organization).chain(s.accounts.contacts(tenant, organization));
        let mut entries: Vec<(DateTime<Utc>, InteractionId)> = parties
            .filter_map(|c| s.timelines.get(&(tenant, c)))
            .flat_map(|t| t.iter().copied())
            .filter(|e| after.is_none_or(|a| *e < a))
            .collect();
        entries.sort_unstable_by(|a, b| b.cmp(a));
        entries.truncate(page.limit as usize + 1);
        let rows: Vec<Interaction> = entries
            .into_iter()
            .map(|(_, id)| s.interactions[&(tenant, id)].clone())
            .collect();
        Ok(Page::from_overfetch(rows, page.limit, |i| {
            Cursor::timeline(i.occurred_at, i.id)
        }))
    }
}
