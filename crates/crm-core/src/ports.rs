//! Ports: the traits storage and messaging adapters implement.
//!
//! Every storage method takes the [`TenantId`] first: no query can be written that forgets
//! it, and a tenant never sees or changes another tenant's rows. The traits are
//! `#[async_trait]`, `Send + Sync` and object-safe, so a host can hold `Arc<dyn Storage>`.
//! With the `mock` feature, `mockall` mocks (`MockCustomerStore`, `MockInteractionStore`,
//! `MockProfileStore`, `MockValueStore`, `MockSegmentStore`, `MockCaseStore`, `MockTaskStore`, `MockKpiRuleStore`, and in
//! [`crate::notify`]
//! `MockOutboxStore`, `MockDirectory`, `MockNotifier`) are generated
//! for host tests.
//!
//! The conformance suite in `crm-testkit` states the exact behaviour every adapter must
//! have; an adapter of your own runs it with a few lines.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::AuditEntry;
use crate::case::{Case, CaseQuery};
use crate::clv::{ValueClasses, ValueModel, ValueScores};
use crate::customer::{Customer, CustomerQuery, OwnershipChange};
use crate::error::Result;
use crate::id::{CaseId, CustomerId, TaskId, TenantId};
use crate::interaction::{BatchReport, Interaction};
use crate::kpi::{KpiRule, StoredKpiRule};
use crate::merge::CustomerMerge;
use crate::notify::TemplateName;
use crate::notify::{OutboxMessage, OutboxStore};
use crate::page::{Page, PageRequest};
use crate::profile::Profile;
use crate::segment::{FieldSchema, MembershipChange, Rule, Segment, SegmentId};
use crate::task::{Task, TaskQuery};

/// Customer records.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait CustomerStore: Send + Sync {
    /// Stores a new customer (with its version and timestamps as given), an empty profile
    /// for it and its [`AuditEntry::created`] entry, in one transaction.
    ///
    /// Errors: [`Duplicate`](crate::Error::Duplicate) if the id, or one of its external ids,
    /// is already used in the tenant.
    ///
    /// `outbox`: notifications and domain events caused by the change, stored in the same
    /// transaction as [`OutboxStore::enqueue`] stores them (repeated keys skipped).
    async fn insert_customer(
        &self,
        tenant: TenantId,
        customer: &Customer,
        outbox: Vec<OutboxMessage>,
    ) -> Result<()>;

    /// Stores many new customers (with their empty profiles and `created` audit entries) in
    /// one transaction, all or nothing. Errors: [`Duplicate`](crate::Error::Duplicate) if any id or external id is
    /// already used in the tenant or repeated in the batch (nothing is written).
    ///
    /// `outbox`: notifications and domain events caused by the change, stored in the same
    /// transaction as [`OutboxStore::enqueue`] stores them (repeated keys skipped).
    async fn insert_customers(
        &self,
        tenant: TenantId,
        customers: Vec<Customer>,
        outbox: Vec<OutboxMessage>,
    ) -> Result<()>;

    /// Reads a customer. Errors: [`NotFound`](crate::Error::NotFound).
    async fn get_customer(&self, tenant: TenantId, id: CustomerId) -> Result<Customer>;

    /// Replaces a customer if its stored version is still `expected_version`; `customer`
    /// carries the new version. An ownership change and an audit entry, if given, are
    /// recorded in the same transaction.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound), [`Conflict`](crate::Error::Conflict) on
    /// a stale version, [`Duplicate`](crate::Error::Duplicate) if a new external id is taken.
    ///
    /// `outbox`: notifications and domain events caused by the change, stored in the same
    /// transaction as [`OutboxStore::enqueue`] stores them (repeated keys skipped).
    async fn update_customer(
        &self,
        tenant: TenantId,
        customer: &Customer,
        expected_version: u64,
        ownership: Option<OwnershipChange>,
        audit: Option<AuditEntry>,
        outbox: Vec<OutboxMessage>,
    ) -> Result<()>;

    /// Customers matching every filter of `query` (semantics of [`CustomerQuery::matches`]),
    /// ordered by id, one page at a time.
    async fn list_customers(
        &self,
        tenant: TenantId,
        query: &CustomerQuery,
        page: &PageRequest,
    ) -> Result<Page<Customer>>;

    /// A customer's ownership transfers, newest first. Errors: [`NotFound`](crate::Error::NotFound).
    async fn ownership_history(
        &self,
        tenant: TenantId,
        id: CustomerId,
    ) -> Result<Vec<OwnershipChange>>;

    /// Folds `merge.merged` into `merge.survivor`, all in one transaction, or nothing:
    /// - every customer must be stored at the version given (else
    ///   [`Error::stale_write`](crate::Error::stale_write): `NotFound` or `Conflict`);
    /// - the survivor's record is replaced by `merge.survivor` (its external ids, emails,
    ///   phones and tags indexed anew; an external id another customer holds is
    ///   [`Duplicate`](crate::Error::Duplicate));
    /// - every interaction, case and task (with the customer as subject) of a merged
    ///   customer now names the survivor, interaction ids and keys unchanged;
    /// - the survivor joins every segment a merged customer was a member of;
    /// - the survivor's profile becomes the merge ([`Profile::merge`]) of its own and the
    ///   merged customers' profiles;
    /// - the merged customers, their profiles, value scores and classes are removed, and
    ///   each leaves a redirect to the survivor; redirects that led to a merged customer
    ///   now lead to the survivor;
    /// - `merge.audit` is recorded;
    /// - `outbox` is stored.
    async fn merge_customers(
        &self,
        tenant: TenantId,
        merge: &CustomerMerge,
        outbox: Vec<OutboxMessage>,
    ) -> Result<()>;

    /// Where a customer merged away now lives (`None`: no redirect for this id).
    async fn redirect(&self, tenant: TenantId, id: CustomerId) -> Result<Option<CustomerId>>;

    /// Erases a customer's personal data, in one transaction, or nothing: the record is
    /// replaced by `erased` if stored at `expected_version` (else
    /// [`Error::stale_write`](crate::Error::stale_write)), with its search index rows
    /// (emails, phones, tags, external ids) rebuilt from it; the customer's interactions
    /// lose subject, body and attributes; its cases get
    /// [`erase_case`](crate::privacy::erase_case), tasks about it or its cases
    /// [`erase_task`](crate::privacy::erase_task); the ownership changes of the customer
    /// and of every customer merged into it lose their reasons, and their earlier audit
    /// entries are replaced by their [`scrubbed`](AuditEntry::scrubbed) form; `audit` is
    /// recorded; `outbox` is stored.
    /// Profiles, value scores and classes stay.
    async fn erase_customer(
        &self,
        tenant: TenantId,
        erased: &Customer,
        expected_version: u64,
        audit: AuditEntry,
        outbox: Vec<OutboxMessage>,
    ) -> Result<()>;

    /// A customer's audit entries, newest first (by version), one page at a time (the
    /// cursor is an [audit cursor](crate::Cursor::audit)). A customer never stored, or of
    /// another tenant, has none.
    async fn audit_history(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>>;
}

/// The interaction log (append-only).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait InteractionStore: Send + Sync {
    /// Appends a batch in one transaction, all or nothing: interactions whose key
    /// (source + external id) the tenant already has, or that repeat a key earlier in the
    /// batch, are skipped and counted; the others are stored, and their profile deltas
    /// ([`crate::profile::deltas`]) are applied in the same transaction.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound) if a customer does not exist in the
    /// tenant (nothing is written); [`Duplicate`](crate::Error::Duplicate) if an interaction
    /// id is already used under a different key.
    ///
    /// `outbox`: notifications and domain events caused by the change, stored in the same
    /// transaction as [`OutboxStore::enqueue`] stores them (repeated keys skipped).
    async fn append_interactions(
        &self,
        tenant: TenantId,
        batch: Vec<Interaction>,
        outbox: Vec<OutboxMessage>,
    ) -> Result<BatchReport>;

    /// Archives raw history, in one transaction: the tenant's archive horizon becomes
    /// `before` (or stays, if later already), and its interactions that occurred before
    /// `before` and were recorded at or before `recorded_up_to` are deleted; returns how
    /// many. Profiles stay as they are (their aggregates already hold the deleted rows).
    async fn archive_interactions(
        &self,
        tenant: TenantId,
        before: DateTime<Utc>,
        recorded_up_to: DateTime<Utc>,
    ) -> Result<u64>;

    /// The tenant's archive horizon: interactions before it were archived (`None`: never).
    async fn archive_horizon(&self, tenant: TenantId) -> Result<Option<DateTime<Utc>>>;

    /// The tenant's interactions that occurred in `[from, to)`, oldest first (ties by
    /// id), one page at a time (the cursor is a timeline cursor). For KPI rules and
    /// scorecards over interactions.
    async fn interactions_between(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<Interaction>>;

    /// A customer's interactions, newest first (ties broken by id, descending).
    /// Errors: [`NotFound`](crate::Error::NotFound) for an unknown customer.
    async fn timeline(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<Interaction>>;
}

/// Per-customer aggregates, maintained by [`InteractionStore::append_interactions`].
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// The customer's profile. Errors: [`NotFound`](crate::Error::NotFound).
    async fn get_profile(&self, tenant: TenantId, customer: CustomerId) -> Result<Profile>;
}

/// Customer-value results: fitted models per tenant and per-customer scores.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ValueStore: Send + Sync {
    /// Stores (or replaces) the scores of many customers in one transaction, all or nothing.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound) if a customer does not exist in the
    /// tenant (nothing is written).
    async fn set_value_scores(
        &self,
        tenant: TenantId,
        scores: Vec<(CustomerId, ValueScores)>,
    ) -> Result<()>;

    /// A customer's latest scores, if it has been scored.
    /// Errors: [`NotFound`](crate::Error::NotFound) for an unknown customer.
    async fn value_scores(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Option<ValueScores>>;

    /// Stores a fitted model. Errors: [`Duplicate`](crate::Error::Duplicate) if the tenant
    /// already has a model fitted at the same instant.
    async fn save_value_model(&self, tenant: TenantId, model: &ValueModel) -> Result<()>;

    /// The tenant's most recently fitted model (by `fitted_at`), if any.
    async fn latest_value_model(&self, tenant: TenantId) -> Result<Option<ValueModel>>;

    /// Stores (or replaces) the value classes of many customers in one transaction, all or
    /// nothing. Errors: [`NotFound`](crate::Error::NotFound) for an unknown customer.
    async fn set_value_classes(
        &self,
        tenant: TenantId,
        classes: Vec<(CustomerId, ValueClasses)>,
    ) -> Result<()>;

    /// A customer's latest value classes, if classified.
    /// Errors: [`NotFound`](crate::Error::NotFound) for an unknown customer.
    async fn value_classes(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Option<ValueClasses>>;
}

/// Segments: rules evaluated where the data is, stored definitions and memberships.
///
/// Rules reach the store already type-checked against `schema`. An adapter evaluating them
/// itself (for example by compiling them to SQL with bound parameters) must give exactly the
/// members [`crate::segment::CompiledRule`] gives in memory; the conformance suite checks it
/// on random rules and data.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SegmentStore: Send + Sync {
    /// Customers for whom `rule` is true at `now`, ordered by id, one page at a time.
    async fn find_matching(
        &self,
        tenant: TenantId,
        rule: &Rule,
        schema: &FieldSchema,
        now: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<CustomerId>>;

    /// How many customers `rule` is true for at `now`.
    async fn count_matching(
        &self,
        tenant: TenantId,
        rule: &Rule,
        schema: &FieldSchema,
        now: DateTime<Utc>,
    ) -> Result<u64>;

    /// Stores a new segment. Errors: [`Duplicate`](crate::Error::Duplicate) if its id or
    /// its name is already used in the tenant.
    async fn save_segment(&self, tenant: TenantId, segment: &Segment) -> Result<()>;

    /// A segment by id. Errors: [`NotFound`](crate::Error::NotFound).
    async fn get_segment(&self, tenant: TenantId, id: SegmentId) -> Result<Segment>;

    /// Every segment of the tenant, by name.
    async fn list_segments(&self, tenant: TenantId) -> Result<Vec<Segment>>;

    /// Replaces a dynamic segment's members with the customers its rule is true for at
    /// `now`, in one transaction, and says who entered and who left since the last refresh.
    /// Errors: [`NotFound`](crate::Error::NotFound); validation if the segment is static.
    ///
    /// `events_at`: when given, a domain event per customer who entered or left
    /// ([`crate::notify::events::membership_events`]) is stored in the same transaction.
    async fn refresh_segment(
        &self,
        tenant: TenantId,
        id: SegmentId,
        schema: &FieldSchema,
        now: DateTime<Utc>,
        events_at: Option<DateTime<Utc>>,
    ) -> Result<MembershipChange>;

    /// Adds and removes members of a static segment in one transaction.
    /// Errors: [`NotFound`](crate::Error::NotFound) for an unknown segment or customer
    /// (nothing is written); validation if the segment is dynamic.
    ///
    /// `events_at`: when given, a domain event per customer who entered or left
    /// ([`crate::notify::events::membership_events`]) is stored in the same transaction.
    async fn change_static_members(
        &self,
        tenant: TenantId,
        id: SegmentId,
        add: Vec<CustomerId>,
        remove: Vec<CustomerId>,
        events_at: Option<DateTime<Utc>>,
    ) -> Result<MembershipChange>;

    /// A segment's members, by id, one page at a time.
    async fn segment_members(
        &self,
        tenant: TenantId,
        id: SegmentId,
        page: &PageRequest,
    ) -> Result<Page<CustomerId>>;

    /// Whether the customer is a member of the segment.
    async fn is_member(
        &self,
        tenant: TenantId,
        id: SegmentId,
        customer: CustomerId,
    ) -> Result<bool>;

    /// The segments the customer is a member of, by id.
    async fn segments_of(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<SegmentId>>;
}

/// Service cases, with optimistic concurrency.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait CaseStore: Send + Sync {
    /// Stores a new case (with its version and events as given) and `outbox`, in one
    /// transaction.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound) if its customer does not exist in the
    /// tenant; [`Duplicate`](crate::Error::Duplicate) if its id is taken.
    async fn insert_case(
        &self,
        tenant: TenantId,
        case: &Case,
        outbox: Vec<OutboxMessage>,
    ) -> Result<()>;

    /// Reads a case. Errors: [`NotFound`](crate::Error::NotFound).
    async fn get_case(&self, tenant: TenantId, id: CaseId) -> Result<Case>;

    /// Replaces a case if its stored version is still `expected_version` (`case` carries
    /// the new version), storing `outbox` in the same transaction.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound); [`Conflict`](crate::Error::Conflict)
    /// on a stale version.
    async fn update_case(
        &self,
        tenant: TenantId,
        case: &Case,
        expected_version: u64,
        outbox: Vec<OutboxMessage>,
    ) -> Result<()>;

    /// Cases matching every filter of `query` ([`CaseQuery::matches`]), ordered by id, one
    /// page at a time.
    async fn list_cases(
        &self,
        tenant: TenantId,
        query: &CaseQuery,
        page: &PageRequest,
    ) -> Result<Page<Case>>;
}

/// Follow-up tasks, with optimistic concurrency.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Stores a new task. Errors: [`NotFound`](crate::Error::NotFound) if its customer or
    /// case does not exist in the tenant; [`Duplicate`](crate::Error::Duplicate) for a
    /// taken id.
    async fn insert_task(&self, tenant: TenantId, task: &Task) -> Result<()>;

    /// Reads a task. Errors: [`NotFound`](crate::Error::NotFound).
    async fn get_task(&self, tenant: TenantId, id: TaskId) -> Result<Task>;

    /// Replaces a task if its stored version is still `expected_version` (`task` carries
    /// the new version), storing `outbox` in the same transaction.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound); [`Conflict`](crate::Error::Conflict)
    /// on a stale version.
    async fn update_task(
        &self,
        tenant: TenantId,
        task: &Task,
        expected_version: u64,
        outbox: Vec<OutboxMessage>,
    ) -> Result<()>;

    /// Tasks matching every filter of `query` ([`TaskQuery::matches`]), ordered by id, one
    /// page at a time.
    async fn list_tasks(
        &self,
        tenant: TenantId,
        query: &TaskQuery,
        page: &PageRequest,
    ) -> Result<Page<Task>>;
}

/// A tenant's KPI rules, editable with optimistic concurrency.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait KpiRuleStore: Send + Sync {
    /// Stores a new rule at version 1. Errors: [`Duplicate`](crate::Error::Duplicate) if the
    /// tenant has a rule with its key.
    async fn insert_kpi_rule(&self, tenant: TenantId, rule: &KpiRule) -> Result<()>;

    /// Replaces the rule with the same key if its stored version is still
    /// `expected_version`; it is stored at the next version.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound); [`Conflict`](crate::Error::Conflict).
    async fn update_kpi_rule(
        &self,
        tenant: TenantId,
        rule: &KpiRule,
        expected_version: u64,
    ) -> Result<()>;

    /// Removes a rule. Errors: [`NotFound`](crate::Error::NotFound).
    async fn delete_kpi_rule(&self, tenant: TenantId, key: &TemplateName) -> Result<()>;

    /// The tenant's rules, by key.
    async fn kpi_rules(&self, tenant: TenantId) -> Result<Vec<StoredKpiRule>>;
}

/// Everything the service needs from storage, as one object-safe trait; implemented for
/// every type that implements all the stores.
pub trait Storage:
    CustomerStore
    + InteractionStore
    + ProfileStore
    + ValueStore
    + SegmentStore
    + OutboxStore
    + CaseStore
    + TaskStore
    + KpiRuleStore
{
}

impl<T> Storage for T where
    T: CustomerStore
        + InteractionStore
        + ProfileStore
        + ValueStore
        + SegmentStore
        + OutboxStore
        + CaseStore
        + TaskStore
        + KpiRuleStore
        + ?Sized
{
}
