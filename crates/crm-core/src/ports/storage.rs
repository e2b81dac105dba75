//! [`Storage`]: every port as one object-safe trait.

use super::{
    AccessStore, Backend, CaseStore, CustomerStore, InteractionStore, KpiRuleStore, OutboxStore,
    ProfileStore, SalesStore, ScheduleStore, SegmentStore, TaskStore, ValueStore,
};

/// Everything the service needs from storage, as one object-safe trait; implemented for
/// every type that implements [`Backend`] and all the stores.
///
/// Only customers, interactions and profiles must be implemented in full; every method of
/// the other ports (and merge, erasure, audit and archiving of the first two) has a default
/// body answering [`Error::Unsupported`](crate::Error::Unsupported), so an adapter that
/// stores less writes empty `impl`s for those ports and declares what it has in
/// [`Backend::capabilities`]:
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use chrono::{DateTime, Utc};
/// use crm_core::ports::{Backend, Capabilities, Capability, WriteOptions};
/// use crm_core::*;
///
/// /// Another store seen through the three required ports only (for example, to run a
/// /// host with the optional features switched off).
/// struct Narrowed(Arc<dyn Storage>);
///
/// impl Backend for Narrowed {
///     fn name(&self) -> &'static str { "narrowed" }
///     fn capabilities(&self) -> Capabilities { Capabilities::REQUIRED }
/// }
///
/// #[async_trait]
/// impl CustomerStore for Narrowed {
///     async fn insert_customer(&self, t: TenantId, c: &Customer, o: WriteOptions) -> Result<()> {
///         self.0.insert_customer(t, c, o).await
///     }
///     async fn insert_customers(&self, t: TenantId, c: Vec<Customer>, o: WriteOptions) -> Result<()> {
///         self.0.insert_customers(t, c, o).await
///     }
///     async fn get_customer(&self, t: TenantId, id: CustomerId) -> Result<Customer> {
///         self.0.get_customer(t, id).await
///     }
///     async fn update_customer(&self, t: TenantId, c: &Customer, v: u64, o: WriteOptions) -> Result<()> {
///         self.0.update_customer(t, c, v, o).await
///     }
///     async fn list_customers(&self, t: TenantId, q: &CustomerQuery, p: &PageRequest) -> Result<Page<Customer>> {
///         self.0.list_customers(t, q, p).await
///     }
///     async fn ownership_history(&self, t: TenantId, id: CustomerId) -> Result<Vec<OwnershipChange>> {
///         self.0.ownership_history(t, id).await
///     }
/// }
///
/// #[async_trait]
/// impl InteractionStore for Narrowed {
///     async fn append_interactions(&self, t: TenantId, b: Vec<Interaction>, o: WriteOptions) -> Result<BatchReport> {
///         self.0.append_interactions(t, b, o).await
///     }
///     async fn interactions_between(&self, t: TenantId, from: DateTime<Utc>, to: DateTime<Utc>, p: &PageRequest) -> Result<Page<Interaction>> {
///         self.0.interactions_between(t, from, to, p).await
///     }
///     async fn timeline(&self, t: TenantId, c: CustomerId, p: &PageRequest) -> Result<Page<Interaction>> {
///         self.0.timeline(t, c, p).await
///     }
/// }
///
/// #[async_trait]
/// impl ProfileStore for Narrowed {
///     async fn get_profile(&self, t: TenantId, c: CustomerId) -> Result<Profile> {
///         self.0.get_profile(t, c).await
///     }
/// }
///
/// // Everything else answers `Error::Unsupported`.
/// impl ValueStore for Narrowed {}
/// impl SegmentStore for Narrowed {}
/// impl OutboxStore for Narrowed {}
/// impl CaseStore for Narrowed {}
/// impl TaskStore for Narrowed {}
/// impl KpiRuleStore for Narrowed {}
/// impl AccessStore for Narrowed {}
/// impl SalesStore for Narrowed {}
/// impl ScheduleStore for Narrowed {}
///
/// /// A facade over `store` that offers customers, interactions and profiles only.
/// fn narrowed(store: Arc<dyn Storage>) -> Crm {
///     let crm = Crm::new(Arc::new(Narrowed(store)));
///     assert!(!crm.capabilities().supports(Capability::Segments));
///     crm
/// }
/// ```
pub trait Storage:
    Backend
    + CustomerStore
    + InteractionStore
    + ProfileStore
    + ValueStore
    + SegmentStore
    + OutboxStore
    + CaseStore
    + TaskStore
    + KpiRuleStore
    + AccessStore
    + SalesStore
    + ScheduleStore
{
}

impl<T> Storage for T where
    T: Backend
        + CustomerStore
        + InteractionStore
        + ProfileStore
        + ValueStore
        + SegmentStore
        + OutboxStore
        + CaseStore
        + TaskStore
        + KpiRuleStore
        + AccessStore
        + SalesStore
        + ScheduleStore
        + ?Sized
{
}
