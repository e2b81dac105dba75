//! The sales port: pipelines, opportunities and their stage history; accounts (people's
//! relationships to organisations, the organisations' hierarchy).

use async_trait::async_trait;

use super::{unsupported, WriteOptions};
use crate::error::Result;
use crate::id::{CustomerId, OpportunityId, PipelineId, TenantId};
use crate::interaction::Interaction;
use crate::page::{Page, PageRequest};
use crate::sales::{
    ForecastCell, ForecastQuery, FunnelCell, FunnelQuery, Opportunity, OpportunityQuery, Pipeline,
    Relationship, RelationshipQuery, StageChange, StageTime,
};

#[cfg(doc)]
use super::Capability;

/// Pipelines, opportunities (deals) and their append-only stage history; accounts: the
/// relationships of people to organisations and the organisations' hierarchy (optional:
/// [`Capability::Sales`]).
///
/// Merges and erasures reach accounts too (see
/// [`CustomerStore::merge_customers`](super::CustomerStore::merge_customers) and
/// [`CustomerStore::erase_customer`](super::CustomerStore::erase_customer)).
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

    /// Stores a relationship, replacing the pair's earlier one; when it is primary, the
    /// person's other relationships stop being primary; in one transaction.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound) if either party does not exist in the
    /// tenant; validation on `person` if the person would be related to more than
    /// [`MAX_ACCOUNTS_PER_PERSON`](crate::sales::MAX_ACCOUNTS_PER_PERSON) organisations.
    async fn put_relationship(
        &self,
        _tenant: TenantId,
        _relationship: &Relationship,
    ) -> Result<()> {
        Err(unsupported::<Self>("put_relationship"))
    }

    /// Removes the relationship of `person` to `organization`. Errors:
    /// [`NotFound`](crate::Error::NotFound) if there is none.
    async fn remove_relationship(
        &self,
        _tenant: TenantId,
        _organization: CustomerId,
        _person: CustomerId,
    ) -> Result<()> {
        Err(unsupported::<Self>("remove_relationship"))
    }

    /// The relationships [`RelationshipQuery::matches`], ordered by
    /// [`RelationshipQuery::key_of`], one page at a time (the cursor is a
    /// [customer cursor](crate::Cursor::customer) holding the last key seen).
    async fn relationships(
        &self,
        _tenant: TenantId,
        _query: &RelationshipQuery,
        _page: &PageRequest,
    ) -> Result<Page<Relationship>> {
        Err(unsupported::<Self>("relationships"))
    }

    /// Sets (or, with `None`, clears) an organisation's parent, in one transaction that
    /// reads the stored hierarchy and refuses what [`check_parent`](crate::sales::check_parent)
    /// refuses; concurrent changes of one tenant's hierarchy are serialised, so two of them
    /// cannot close a cycle together.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound) if either does not exist; validation on
    /// `parent`.
    async fn set_parent(
        &self,
        _tenant: TenantId,
        _organization: CustomerId,
        _parent: Option<CustomerId>,
    ) -> Result<()> {
        Err(unsupported::<Self>("set_parent"))
    }

    /// An organisation's ancestors, its parent first, at most
    /// [`MAX_HIERARCHY_DEPTH`](crate::sales::MAX_HIERARCHY_DEPTH); empty for a root or an
    /// unknown id.
    async fn account_line(
        &self,
        _tenant: TenantId,
        _organization: CustomerId,
    ) -> Result<Vec<CustomerId>> {
        Err(unsupported::<Self>("account_line"))
    }

    /// An organisation's direct subsidiaries, by id, one page at a time (the cursor is a
    /// [customer cursor](crate::Cursor::customer)).
    async fn subsidiaries(
        &self,
        _tenant: TenantId,
        _organization: CustomerId,
        _page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        Err(unsupported::<Self>("subsidiaries"))
    }

    /// The interactions of an organisation and of every person related to it, newest
    /// first, one page at a time (the cursor is a [timeline cursor](crate::Cursor::timeline),
    /// as [`InteractionStore::timeline`](super::InteractionStore::timeline)). Errors:
    /// [`NotFound`](crate::Error::NotFound) if the organisation does not exist.
    async fn account_timeline(
        &self,
        _tenant: TenantId,
        _organization: CustomerId,
        _page: &PageRequest,
    ) -> Result<Page<Interaction>> {
        Err(unsupported::<Self>("account_timeline"))
    }
}
