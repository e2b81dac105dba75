//! An adapter that stores only customers, interactions and profiles (the required
//! capabilities) and leaves every other port to its default: it passes the cases of those
//! ports, and everything else it lacks is `Error::Unsupported` at the call, with nothing
//! written.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::merge::MergePolicy;
use crm_core::ports::{
    AccessStore, Backend, Capabilities, SalesStore, ScheduleStore, WriteOptions,
};
use crm_core::segment::{FieldSchema, Segment};
use crm_core::{
    BatchReport, CaseStore, Crm, Currency, Customer, CustomerId, CustomerQuery, CustomerStore,
    Error, Interaction, InteractionStore, KpiRuleStore, OutboxStore, OwnershipChange, Page,
    PageRequest, Profile, ProfileStore, Result, SegmentStore, TaskStore, TenantId, ValueStore,
};
use crm_testkit::{Fixture, MemoryStore};

/// Customers, interactions and profiles, kept by a `MemoryStore` behind the required
/// methods only.
struct Thin(MemoryStore);

impl Backend for Thin {
    fn name(&self) -> &'static str {
        "thin"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::REQUIRED
    }
}

#[async_trait]
impl CustomerStore for Thin {
    async fn insert_customer(&self, t: TenantId, c: &Customer, o: WriteOptions) -> Result<()> {
        self.0.insert_customer(t, c, o).await
    }
    async fn insert_customers(&self, t: TenantId, c: Vec<Customer>, o: WriteOptions) -> Result<()> {
        self.0.insert_customers(t, c, o).await
    }
    async fn get_customer(&self, t: TenantId, id: CustomerId) -> Result<Customer> {
        self.0.get_customer(t, id).await
    }
    async fn update_customer(
        &self,
        t: TenantId,
        c: &Customer,
        expected: u64,
        o: WriteOptions,
    ) -> Result<()> {
        self.0.update_customer(t, c, expected, o).await
    }
    async fn list_customers(
        &self,
        t: TenantId,
        q: &CustomerQuery,
        p: &PageRequest,
    ) -> Result<Page<Customer>> {
        self.0.list_customers(t, q, p).await
    }
    async fn ownership_history(&self, t: TenantId, id: CustomerId) -> Result<Vec<OwnershipChange>> {
        self.0.ownership_history(t, id).await
    }
}

#[async_trait]
impl InteractionStore for Thin {
    async fn append_interactions(
        &self,
        t: TenantId,
        batch: Vec<Interaction>,
        o: WriteOptions,
    ) -> Result<BatchReport> {
        self.0.append_interactions(t, batch, o).await
    }
    async fn interactions_between(
        &self,
        t: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        p: &PageRequest,
    ) -> Result<Page<Interaction>> {
        self.0.interactions_between(t, from, to, p).await
    }
    async fn timeline(
        &self,
        t: TenantId,
        c: CustomerId,
        p: &PageRequest,
    ) -> Result<Page<Interaction>> {
        self.0.timeline(t, c, p).await
    }
}

#[async_trait]
impl ProfileStore for Thin {
    async fn get_profile(&self, t: TenantId, c: CustomerId) -> Result<Profile> {
        self.0.get_profile(t, c).await
    }
}

impl ValueStore for Thin {}
impl SegmentStore for Thin {}
impl OutboxStore for Thin {}
impl CaseStore for Thin {}
impl TaskStore for Thin {}
impl KpiRuleStore for Thin {}
impl AccessStore for Thin {}
impl SalesStore for Thin {}
impl ScheduleStore for Thin {}

async fn thin() -> Fixture {
    Fixture::new(Arc::new(Thin(MemoryStore::new())))
}

crm_testkit::conformance_tests!(thin; customers, interactions, profiles);

#[test]
#[should_panic(expected = "the group `segments` needs")]
fn a_group_the_adapter_lacks_fails_naming_the_capabilities() {
    crm_testkit::run_group_case(
        thin,
        Capabilities::REQUIRED.with(crm_core::Capability::Segments),
        "segments",
        crm_testkit::conformance::segment_definitions_round_trip,
    );
}

fn crm() -> Crm {
    Crm::new(Arc::new(Thin(MemoryStore::new())))
}

fn is_unsupported<T: std::fmt::Debug>(r: Result<T>, operation: &str) {
    match r {
        Err(Error::Unsupported {
            operation: op,
            backend: "thin",
        }) if op == operation => {}
        other => panic!("{operation}: expected Unsupported by thin, got {other:?}"),
    }
}

#[tokio::test]
async fn the_facade_answers_unsupported_for_what_the_adapter_lacks() {
    let crm = crm();
    let tenant = TenantId::new();
    assert_eq!(crm.capabilities(), Capabilities::REQUIRED);
    let ann = crm
        .tenant(tenant)
        .customers()
        .register(Customer::person("Ann").build().unwrap())
        .await
        .unwrap();
    let bob = crm
        .tenant(tenant)
        .customers()
        .register(Customer::person("Bob").build().unwrap())
        .await
        .unwrap();
    let schema = FieldSchema::new(Currency::parse("EUR").unwrap());
    is_unsupported(
        crm.tenant(tenant)
            .segments()
            .create(Segment::fixed("Fair").unwrap(), &schema)
            .await,
        "create_segment",
    );
    is_unsupported(
        crm.tenant(tenant).value().scores(ann.id).await,
        "value_scores",
    );
    is_unsupported(
        crm.tenant(tenant)
            .customers()
            .merge(ann.id, &[bob.id], &MergePolicy::default(), false)
            .await,
        "merge_customers_by",
    );
    is_unsupported(
        crm.tenant(tenant).privacy().erase(ann.id, 1).await,
        "erase_customer_by",
    );
    is_unsupported(
        crm.tenant(tenant)
            .customers()
            .audit_history(ann.id, &PageRequest::first(10))
            .await,
        "audit_history",
    );
    is_unsupported(crm.tenant(tenant).kpis().rules().await, "kpi_rules");
    is_unsupported(
        crm.tenant(tenant)
            .notifications()
            .dead_letters(&PageRequest::first(10))
            .await,
        "dead_letters",
    );
    // Both customers are still there, unmerged and unerased.
    assert_eq!(
        crm.tenant(tenant).customers().get(bob.id).await.unwrap(),
        bob
    );
    assert_eq!(
        crm.tenant(tenant).customers().get(ann.id).await.unwrap(),
        ann
    );
}

#[tokio::test]
async fn events_need_an_outbox_and_nothing_is_written_without_one() {
    let crm = crm().with_events(true);
    let tenant = TenantId::new();
    is_unsupported(
        crm.tenant(tenant)
            .customers()
            .register(Customer::person("Ann").build().unwrap())
            .await,
        "domain events",
    );
    let listed = crm
        .storage()
        .list_customers(tenant, &CustomerQuery::all(), &PageRequest::first(10))
        .await
        .unwrap();
    assert!(listed.items.is_empty(), "nothing written");
}

#[tokio::test]
async fn a_port_left_out_answers_unsupported_naming_the_method() {
    let store = Thin(MemoryStore::new());
    let err = store.list_segments(TenantId::new()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { operation: "list_segments", backend } if backend.contains("Thin")),
        "{err:?}"
    );
    // Left-out lookups with a natural empty answer give it.
    assert_eq!(
        store
            .redirect(TenantId::new(), CustomerId::new())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.archive_horizon(TenantId::new()).await.unwrap(), None);
}
