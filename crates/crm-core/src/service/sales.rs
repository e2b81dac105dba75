//! The sales service: pipelines, opportunities, stage moves, the ERP handoff, forecasts.

use std::sync::Arc;

use tracing::instrument;

use super::Ctx;
use crate::access::{Action, Org, RecordKind};
use crate::error::{Error, Result};
use crate::id::{OpportunityId, PipelineId};
use crate::page::{Page, PageRequest};
use crate::ports::{Capability, SalesStore, WriteOptions};
use crate::sales::{
    cells_of, funnel_of, ExchangeRates, Forecast, ForecastCell, ForecastQuery, FunnelQuery,
    FunnelReport, Opportunity, OpportunityQuery, OrderLink, Outcome, Pipeline, StageChange,
};
use crate::value::{Currency, ExternalRef, StageKey};

/// Pipelines and opportunities of one tenant. From [`TenantCrm::sales`](super::TenantCrm::sales).
///
/// Every stage move is stored with its [`StageChange`] and, when events are on, the events
/// `opportunity.stage_changed`, `opportunity.won` or `opportunity.lost`, in one
/// transaction. A closed deal cannot change until [`reopen`](Sales::reopen)ed; the ERP
/// answers a won deal with [`link_order`](Sales::link_order).
///
/// On a principal-scoped handle a deal is reached when the principal's scope for
/// opportunities reaches its owner or its account's owner or unit, or the principal is on
/// its team ([`Visibility::permits_opportunity`](crate::access::Visibility::permits_opportunity));
/// changing pipelines is the system handle's job, and a forecast counts only reached deals.
#[derive(Clone)]
pub struct Sales {
    ctx: Ctx,
    store: Arc<dyn SalesStore>,
}

debug_by_tenant!(Sales);

/// How many times [`Sales::link_order`] retries after a concurrent change.
const LINK_ATTEMPTS: usize = 3;

impl Sales {
    pub(super) fn new(ctx: Ctx, store: Arc<dyn SalesStore>) -> Self {
        Sales { ctx, store }
    }

    /// Stores a new pipeline (version 1). Errors: validation ([`Pipeline::validate`]);
    /// [`Error::Duplicate`]; [`Error::Forbidden`] on a scoped handle.
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant))]
    pub async fn create_pipeline(&self, mut pipeline: Pipeline) -> Result<Pipeline> {
        self.ctx.need(Capability::Sales, "create_pipeline")?;
        self.ctx.system_only("create_pipeline")?;
        pipeline.validate()?;
        pipeline.version = 1;
        self.store
            .insert_pipeline(self.ctx.tenant, &pipeline)
            .await?;
        Ok(pipeline)
    }

    /// Replaces a pipeline stored at `expected_version`: stages may be added, renamed,
    /// reordered and given new defaults, never removed or turned to another outcome
    /// ([`Pipeline::check_successor`]); deals keep their probabilities until they move.
    /// Errors: validation; [`Error::NotFound`]; [`Error::Conflict`]; [`Error::Forbidden`]
    /// on a scoped handle.
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, pipeline = %pipeline.id))]
    pub async fn update_pipeline(
        &self,
        mut pipeline: Pipeline,
        expected_version: u64,
    ) -> Result<Pipeline> {
        self.ctx.need(Capability::Sales, "update_pipeline")?;
        self.ctx.system_only("update_pipeline")?;
        let stored = self
            .store
            .get_pipeline(self.ctx.tenant, pipeline.id)
            .await?;
        if stored.version != expected_version {
            return Err(Error::stale_write(
                "pipeline",
                pipeline.id,
                expected_version,
                Some(stored.version),
            ));
        }
        pipeline.check_successor(&stored)?;
        pipeline.version = self.ctx.next_version("pipeline", stored.version)?;
        self.store
            .update_pipeline(self.ctx.tenant, &pipeline, expected_version)
            .await?;
        Ok(pipeline)
    }

    /// A pipeline. Errors: [`Error::NotFound`].
    pub async fn pipeline(&self, id: PipelineId) -> Result<Pipeline> {
        self.ctx.need(Capability::Sales, "pipeline")?;
        self.store.get_pipeline(self.ctx.tenant, id).await
    }

    /// The tenant's pipelines, by id.
    pub async fn pipelines(&self) -> Result<Vec<Pipeline>> {
        self.ctx.need(Capability::Sales, "pipelines")?;
        self.store.pipelines(self.ctx.tenant).await
    }

    /// Opens a deal: stored at version 1, created now at its stage (which must be open),
    /// with the stage's outcome and category, and the first entry of its stage history.
    ///
    /// Errors: validation ([`Opportunity::validate`], and on `stage` for a closed stage);
    /// [`Error::NotFound`] for an unknown pipeline, account or contact (the field
    /// `contacts[i]`); [`Error::Duplicate`]; [`Error::Forbidden`] on a scoped handle when
    /// the principal may not write the deal or read its account.
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, opportunity = %deal.id))]
    pub async fn open(&self, mut deal: Opportunity) -> Result<Opportunity> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Sales, "open_opportunity")?;
        let pipeline = self.store.get_pipeline(tenant, deal.pipeline).await?;
        let stage = pipeline.require_stage(deal.stage.as_str(), "stage")?;
        if stage.outcome != Outcome::Open {
            return Err(Error::validation("stage", "a deal opens at an open stage"));
        }
        let now = self.ctx.now();
        deal.version = 1;
        deal.outcome = Outcome::Open;
        deal.category = stage.category;
        (deal.created_at, deal.updated_at, deal.stage_entered_at) = (now, now, now);
        (deal.closed_at, deal.lost_reason, deal.won, deal.order) = (None, None, None, None);
        deal.validate(&pipeline)?;
        self.check_parties(&deal).await?;
        self.ctx.check_opportunity(Action::Write, &deal).await?;
        let change = deal.stage_change(None, self.by());
        let outbox = self.ctx.events()?.opportunity(&deal, &change)?;
        self.store
            .insert_opportunity(tenant, &deal, &change, WriteOptions::new().outbox(outbox))
            .await?;
        Ok(deal)
    }

    /// A deal. Errors: [`Error::NotFound`]; [`Error::Forbidden`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn get(&self, id: OpportunityId) -> Result<Opportunity> {
        self.ctx.need(Capability::Sales, "opportunity")?;
        let deal = self.store.get_opportunity(self.ctx.tenant, id).await?;
        self.ctx.check_opportunity(Action::Read, &deal).await?;
        Ok(deal)
    }

    /// Deals matching `query`, by id (on a scoped handle, the reached ones).
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn list(
        &self,
        query: &OpportunityQuery,
        page: &PageRequest,
    ) -> Result<Page<Opportunity>> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Sales, "opportunities")?;
        page.validate()?;
        self.ctx
            .visible_page(page, |p| async move {
                self.store.list_opportunities(tenant, query, &p).await
            })
            .await
    }

    /// A deal's stage history, oldest first. Errors: [`Error::NotFound`];
    /// [`Error::Forbidden`].
    pub async fn history(
        &self,
        id: OpportunityId,
        page: &PageRequest,
    ) -> Result<Page<StageChange>> {
        self.get(id).await?;
        page.validate()?;
        self.store.stage_history(self.ctx.tenant, id, page).await
    }

    /// Replaces an open deal's details (name, account, contacts, owner, team, probability,
    /// amount and lines, close date, source, competitor) if it is still at
    /// `expected_version`. Its stage, outcome and the fields stage moves keep are not
    /// changed here: a different value is a validation error naming the field.
    ///
    /// Errors: validation (on `stage` when the deal is closed); [`Error::NotFound`];
    /// [`Error::Conflict`]; [`Error::Forbidden`] (giving the deal to another owner on a
    /// scoped handle needs [`Action::Transfer`]).
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, opportunity = %deal.id))]
    pub async fn update(
        &self,
        mut deal: Opportunity,
        expected_version: u64,
    ) -> Result<Opportunity> {
        self.ctx.need(Capability::Sales, "update_opportunity")?;
        let stored = self.load(deal.id, expected_version).await?;
        if stored.is_closed() {
            return Err(closed(&stored));
        }
        if deal.alerts != stored.alerts {
            return Err(Error::validation(
                "alerts",
                "are recorded by KPI evaluation only",
            ));
        }
        let kept: [(&str, bool); 9] = [
            ("pipeline", deal.pipeline == stored.pipeline),
            ("stage", deal.stage == stored.stage),
            ("outcome", deal.outcome == stored.outcome),
            ("category", deal.category == stored.category),
            ("closed_at", deal.closed_at == stored.closed_at),
            ("won", deal.won == stored.won),
            ("order", deal.order == stored.order),
            ("created_at", deal.created_at == stored.created_at),
            (
                "stage_entered_at",
                deal.stage_entered_at == stored.stage_entered_at,
            ),
        ];
        if let Some((field, _)) = kept.iter().find(|(_, same)| !same) {
            return Err(Error::validation(
                *field,
                "changes only through stage moves (move_to, win, lose, reopen)",
            ));
        }
        if deal.owner != stored.owner {
            self.ctx
                .check_opportunity(Action::Transfer, &stored)
                .await?;
        }
        let pipeline = self
            .store
            .get_pipeline(self.ctx.tenant, deal.pipeline)
            .await?;
        deal.validate(&pipeline)?;
        self.check_parties(&deal).await?;
        self.ctx.check_opportunity(Action::Write, &deal).await?;
        deal.version = self.ctx.next_version("opportunity", stored.version)?;
        deal.updated_at = self.ctx.now();
        deal.owned_since = if deal.owner == stored.owner {
            stored.owned_since
        } else {
            Some(deal.updated_at)
        };
        self.store
            .update_opportunity(
                self.ctx.tenant,
                &deal,
                expected_version,
                &[],
                WriteOptions::new(),
            )
            .await?;
        Ok(deal)
    }

    /// Moves an open deal to another stage of its pipeline (a won stage wins it; use
    /// [`lose`](Sales::lose) for a lost one, which needs a reason).
    ///
    /// Errors: validation on `stage` (not a stage of the pipeline, the current one, or the
    /// deal is closed); [`Error::NotFound`]; [`Error::Conflict`]; [`Error::Forbidden`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn move_to(
        &self,
        id: OpportunityId,
        expected_version: u64,
        stage: &str,
    ) -> Result<Opportunity> {
        let key = StageKey::parse(stage)?;
        self.step(id, expected_version, |deal, pipeline, at| {
            deal.enter(pipeline, &key, at)
        })
        .await
    }

    /// Wins an open deal: it enters the pipeline's first won stage, its probability is
    /// 100, its close date today, and its [`OrderSnapshot`](crate::sales::OrderSnapshot)
    /// is taken (and sent with `opportunity.won`).
    ///
    /// Errors: as [`move_to`](Sales::move_to).
    pub async fn win(&self, id: OpportunityId, expected_version: u64) -> Result<Opportunity> {
        self.step(id, expected_version, |deal, pipeline, at| {
            let key = pipeline.first(Outcome::Won)?.key.clone();
            deal.enter(pipeline, &key, at)
        })
        .await
    }

    /// Loses an open deal for `reason` (to `competitor`, if given): it enters the
    /// pipeline's first lost stage with probability 0.
    ///
    /// Errors: validation on `lost_reason` or `competitor` (empty, over
    /// [`MAX_NOTE_CHARS`](crate::sales::MAX_NOTE_CHARS), control characters); as
    /// [`move_to`](Sales::move_to).
    pub async fn lose(
        &self,
        id: OpportunityId,
        expected_version: u64,
        reason: &str,
        competitor: Option<&str>,
    ) -> Result<Opportunity> {
        let reason = crate::sales::note("lost_reason", reason)?;
        let competitor = competitor
            .map(|c| crate::sales::note("competitor", c))
            .transpose()?;
        self.step(id, expected_version, |deal, pipeline, at| {
            if deal.is_closed() {
                return Err(closed(deal));
            }
            deal.lost_reason = Some(reason);
            if competitor.is_some() {
                deal.competitor = competitor;
            }
            let key = pipeline.first(Outcome::Lost)?.key.clone();
            deal.enter(pipeline, &key, at)
        })
        .await
    }

    /// Reopens a won or lost deal at the open stage `stage` (its stage's probability; the
    /// lost reason and order snapshot go). Errors: validation on `stage`, or on `order`
    /// when the ERP already made it into an order; as [`move_to`](Sales::move_to).
    pub async fn reopen(
        &self,
        id: OpportunityId,
        expected_version: u64,
        stage: &str,
    ) -> Result<Opportunity> {
        let key = StageKey::parse(stage)?;
        self.step(id, expected_version, |deal, pipeline, at| {
            deal.reopen(pipeline, &key, at)
        })
        .await
    }

    /// Records the ERP order a won deal became. Idempotent: linking the same reference
    /// again changes nothing and answers the deal; a concurrent change is retried.
    ///
    /// Errors: validation on `order` when the deal is not won or is linked to another
    /// order; [`Error::Duplicate`] when another deal is linked to this order;
    /// [`Error::NotFound`]; [`Error::Forbidden`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn link_order(
        &self,
        id: OpportunityId,
        reference: ExternalRef,
    ) -> Result<Opportunity> {
        self.ctx.need(Capability::Sales, "link_order")?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut deal = self.store.get_opportunity(self.ctx.tenant, id).await?;
            self.ctx.check_opportunity(Action::Write, &deal).await?;
            match &deal.order {
                Some(link) if link.reference == reference => return Ok(deal),
                Some(link) => {
                    return Err(Error::validation(
                        "order",
                        format!("the deal is linked to the order {}", link.reference),
                    ))
                }
                None if deal.outcome != Outcome::Won => {
                    return Err(Error::validation(
                        "order",
                        "only a won deal becomes an order",
                    ))
                }
                None => {}
            }
            let stored = deal.version;
            let now = self.ctx.now();
            deal.order = Some(OrderLink {
                reference: reference.clone(),
                linked_at: now,
            });
            deal.updated_at = now;
            deal.version = self.ctx.next_version("opportunity", stored)?;
            match self
                .store
                .update_opportunity(self.ctx.tenant, &deal, stored, &[], WriteOptions::new())
                .await
            {
                Err(Error::Conflict { .. }) if attempt < LINK_ATTEMPTS => continue,
                Err(e) => return Err(e),
                Ok(()) => return Ok(deal),
            }
        }
    }

    /// The weighted forecast of the deals `query` counts, by period, owner, the owner's
    /// unit in `org` (when given) and category, per currency.
    /// Errors: validation on `to`.
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant))]
    pub async fn forecast(&self, query: &ForecastQuery, org: Option<&Org>) -> Result<Forecast> {
        let cells = self.cells(query).await?;
        Forecast::fold(&cells, query.period, org)
    }

    /// The forecast with every amount converted to `to` at the rate of its deal's close
    /// date ([`Forecast::fold_converted`]).
    /// Errors: validation on `to`; a missing rate as `rates` answers it.
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant))]
    pub async fn forecast_in(
        &self,
        query: &ForecastQuery,
        org: Option<&Org>,
        to: Currency,
        rates: &dyn ExchangeRates,
    ) -> Result<Forecast> {
        // Each deal converts at the rate of its own close date: cells by day.
        let daily = ForecastQuery {
            daily: true,
            ..query.clone()
        };
        let cells = self.cells(&daily).await?;
        Forecast::fold_converted(&cells, query.period, org, to, rates).await
    }

    /// The funnel of the deals of `query.pipeline` created in its period: per step, the
    /// deals that got that far and the share that went on; the win rate, the cycle time
    /// and the stays in each stage; for all, per owner and per unit of `org` (when given).
    /// On a scoped handle, of the deals the principal reaches.
    ///
    /// Errors: validation on `to`; [`Error::NotFound`] for an unknown pipeline.
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant))]
    pub async fn funnel(&self, query: &FunnelQuery, org: Option<&Org>) -> Result<FunnelReport> {
        self.ctx.need(Capability::Sales, "funnel")?;
        query.validate()?;
        let tenant = self.ctx.tenant;
        let pipeline = self.store.get_pipeline(tenant, query.pipeline).await?;
        let (cells, times) = if self.ctx.scoped() {
            let listing = OpportunityQuery {
                pipeline: Some(query.pipeline),
                ..OpportunityQuery::default()
            };
            let mut followed = Vec::new();
            let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
            loop {
                let p = self.list(&listing, &page).await?;
                for deal in p.items.into_iter().filter(|d| query.matches(d)) {
                    let history = self.whole_history(deal.id).await?;
                    followed.push((deal, history));
                }
                match p.next {
                    Some(next) => page = PageRequest::after(next, PageRequest::MAX_LIMIT),
                    None => break,
                }
            }
            funnel_of(&pipeline, followed.iter().map(|(d, h)| (d, h.as_slice())))?
        } else {
            self.store.funnel(tenant, query, &pipeline).await?
        };
        Ok(FunnelReport::of(&pipeline, &cells, &times, org))
    }

    async fn whole_history(&self, id: OpportunityId) -> Result<Vec<StageChange>> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let p = self.store.stage_history(self.ctx.tenant, id, &page).await?;
            out.extend(p.items);
            match p.next {
                Some(next) => page = PageRequest::after(next, PageRequest::MAX_LIMIT),
                None => return Ok(out),
            }
        }
    }

    async fn cells(&self, query: &ForecastQuery) -> Result<Vec<ForecastCell>> {
        self.ctx.need(Capability::Sales, "forecast")?;
        query.validate()?;
        if !self.ctx.scoped() {
            return self.store.forecast_cells(self.ctx.tenant, query).await;
        }
        // A principal's forecast counts the deals it reaches, read page by page.
        let listing = OpportunityQuery {
            pipeline: query.pipeline,
            close_from: Some(query.from),
            close_to: Some(query.to),
            ..OpportunityQuery::default()
        };
        let mut deals = Vec::new();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let p = self.list(&listing, &page).await?;
            deals.extend(p.items.into_iter().filter(|d| query.matches(d)));
            match p.next {
                Some(next) => page = PageRequest::after(next, PageRequest::MAX_LIMIT),
                None => break,
            }
        }
        cells_of(query, &deals)
    }

    /// Reads a deal the principal may write, stored at `expected_version`.
    async fn load(&self, id: OpportunityId, expected_version: u64) -> Result<Opportunity> {
        let deal = self.store.get_opportunity(self.ctx.tenant, id).await?;
        self.ctx.check_opportunity(Action::Write, &deal).await?;
        if deal.version != expected_version {
            return Err(Error::stale_write(
                "opportunity",
                id,
                expected_version,
                Some(deal.version),
            ));
        }
        Ok(deal)
    }

    /// A stage move: `change` moves the deal (returning the stage left); the deal is stored
    /// at its next version with its history entry and events.
    async fn step(
        &self,
        id: OpportunityId,
        expected_version: u64,
        change: impl FnOnce(
            &mut Opportunity,
            &Pipeline,
            chrono::DateTime<chrono::Utc>,
        ) -> Result<StageKey>,
    ) -> Result<Opportunity> {
        self.ctx.need(Capability::Sales, "move_opportunity")?;
        let mut deal = self.load(id, expected_version).await?;
        let pipeline = self
            .store
            .get_pipeline(self.ctx.tenant, deal.pipeline)
            .await?;
        let from = change(&mut deal, &pipeline, self.ctx.now())?;
        deal.version = self.ctx.next_version("opportunity", expected_version)?;
        deal.validate(&pipeline)?;
        let entry = deal.stage_change(Some(from), self.by());
        let outbox = self.ctx.events()?.opportunity(&deal, &entry)?;
        self.store
            .update_opportunity(
                self.ctx.tenant,
                &deal,
                expected_version,
                std::slice::from_ref(&entry),
                WriteOptions::new().outbox(outbox),
            )
            .await?;
        Ok(deal)
    }

    /// The account and contacts exist (and the principal reads them).
    async fn check_parties(&self, deal: &Opportunity) -> Result<()> {
        let parties = std::iter::once(deal.account).chain(deal.contacts.iter().map(|c| c.customer));
        for id in parties {
            if self.ctx.scoped() {
                self.ctx
                    .check_id(RecordKind::Customers, Action::Read, id)
                    .await?;
            } else {
                self.ctx.storage.get_customer(self.ctx.tenant, id).await?;
            }
        }
        Ok(())
    }

    /// The principal, recorded as who moved a deal.
    fn by(&self) -> Option<crate::id::UserId> {
        self.ctx.principal().map(|v| v.user())
    }
}

/// The refusal to change a closed deal.
fn closed(deal: &Opportunity) -> Error {
    Error::validation(
        "stage",
        format!(
            "the deal is {}; reopen it before changing it",
            deal.outcome.as_str()
        ),
    )
}
