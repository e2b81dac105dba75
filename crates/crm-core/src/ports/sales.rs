//! The sales port: pipelines, opportunities and their stage history.

use async_trait::async_trait;

use super::{unsupported, WriteOptions};
use crate::error::Result;
use crate::id::{OpportunityId, PipelineId, TenantId};
use crate::page::{Page, PageRequest};
use crate::sales::{
    ForecastCell, ForecastQuery, FunnelCell, FunnelQuery, Opportunity, OpportunityQuery, Pipeline,
    StageChange, StageTime,
};

#[cfg(doc)]
use super::Capability;

/// Pipelines, opportunities (deals) and their append-only stage history (optional:
/// [`Capability::Sales`]).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SalesStore: Send + Sync {
    /// Stores a new pipeline. Errors: [`Duplicate`](crate::Error::Duplicate) for a taken id.
    async fn insert_pipeline(&self, _tenant: TenantId, _pipeline: &Pipeline) -> Result<()> {
        Err(unsupported::<Self>("insert_pipeline"))
    }

    /// Replaces a pipeline if its stored version is still `expected_version` (`pipeline`
    /// carries the new version). Errors: [`NotFound`](crate::Error::NotFound),
    /// [`Conflict`](crate::Error::Conflict).
    async fn update_pipeline(
        &self,
        _tenant: TenantId,
        _pipeline: &Pipeline,
        _expected_version: u64,
    ) -> Result<()> {
        Err(unsupported::<Self>("update_pipeline"))
    }

    /// Reads a pipeline. Errors: [`NotFound`](crate::Error::NotFound).
    async fn get_pipeline(&self, _tenant: TenantId, _id: PipelineId) -> Result<Pipeline> {
        Err(unsupported::<Self>("get_pipeline"))
    }

    /// The tenant's pipelines, by id.
    async fn pipelines(&self, _tenant: TenantId) -> Result<Vec<Pipeline>> {
        Err(unsupported::<Self>("pipelines"))
    }

    /// Stores a new deal with the first entry of its stage history, and `options.outbox`,
    /// in one transaction ([`WriteOptions::check_messages_only`] first).
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound) if its account (a customer) or its
    /// pipeline does not exist in the tenant; [`Duplicate`](crate::Error::Duplicate) for a
    /// taken id.
    async fn insert_opportunity(
        &self,
        _tenant: TenantId,
        _deal: &Opportunity,
        _change: &StageChange,
        _options: WriteOptions,
    ) -> Result<()> {
        Err(unsupported::<Self>("insert_opportunity"))
    }

    /// Reads a deal. Errors: [`NotFound`](crate::Error::NotFound).
    async fn get_opportunity(&self, _tenant: TenantId, _id: OpportunityId) -> Result<Opportunity> {
        Err(unsupported::<Self>("get_opportunity"))
    }

    /// Replaces a deal if its stored version is still `expected_version` (`deal` carries the
    /// new version), appending `changes` (none, or the one stage move) to its stage history,
    /// and storing
    /// `options.outbox`, all in one transaction ([`WriteOptions::check_messages_only`]
    /// first).
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound); [`Conflict`](crate::Error::Conflict)
    /// on a stale version; [`Duplicate`](crate::Error::Duplicate) if another deal of the
    /// tenant is linked to the same order reference.
    async fn update_opportunity(
        &self,
        _tenant: TenantId,
        _deal: &Opportunity,
        _expected_version: u64,
        _changes: &[StageChange],
        _options: WriteOptions,
    ) -> Result<()> {
        Err(unsupported::<Self>("update_opportunity"))
    }

    /// Deals matching every filter of `query` ([`OpportunityQuery::matches`]), ordered by
    /// id, one page at a time.
    async fn list_opportunities(
        &self,
        _tenant: TenantId,
        _query: &OpportunityQuery,
        _page: &PageRequest,
    ) -> Result<Page<Opportunity>> {
        Err(unsupported::<Self>("list_opportunities"))
    }

    /// A deal's stage history, oldest first (by version), one page at a time (the cursor is
    /// an [audit cursor](crate::Cursor::audit) holding the last version seen). A deal never
    /// stored has none.
    async fn stage_history(
        &self,
        _tenant: TenantId,
        _id: OpportunityId,
        _page: &PageRequest,
    ) -> Result<Page<StageChange>> {
        Err(unsupported::<Self>("stage_history"))
    }

    /// The deals [`ForecastQuery::matches`] counts, summed into cells: equal, as a set, to
    /// [`cells_of`](crate::sales::cells_of) over them (dated by
    /// [`ForecastQuery::cell_date`]), amounts exact.
    async fn forecast_cells(
        &self,
        _tenant: TenantId,
        _query: &ForecastQuery,
    ) -> Result<Vec<ForecastCell>> {
        Err(unsupported::<Self>("forecast_cells"))
    }

    /// The deals [`FunnelQuery::matches`] follows (all of `pipeline`, the query's pipeline),
    /// summed into funnel cells and stage times: equal, as sets, to
    /// [`funnel_of`](crate::sales::funnel_of) over them and their stage histories.
    async fn funnel(
        &self,
        _tenant: TenantId,
        _query: &FunnelQuery,
        _pipeline: &Pipeline,
    ) -> Result<(Vec<FunnelCell>, Vec<StageTime>)> {
        Err(unsupported::<Self>("funnel"))
    }
}
