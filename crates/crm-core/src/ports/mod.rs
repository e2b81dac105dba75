//! Ports: the traits storage and messaging adapters implement.
//!
//! Every storage method takes the [`TenantId`] first: no query can be written that forgets
//! it, and a tenant never sees or changes another tenant's rows. The traits are
//! `#[async_trait]`, `Send + Sync` and object-safe, so a host can hold `Arc<dyn Storage>`.
//! With the `mock` feature, `mockall` mocks (`MockCustomerStore`, `MockInteractionStore`,
//! `MockProfileStore`, `MockValueStore`, `MockSegmentStore`, `MockCaseStore`, `MockTaskStore`, `MockKpiRuleStore`, `MockAccessStore`, `MockSalesStore`, `MockScheduleStore`, and in
//! [`crate::notify`]
//! `MockOutboxStore`, `MockDirectory`, `MockNotifier`) are generated
//! for host tests, and `crate::mock::MockStorage` mocks the whole storage.
//!
//! Only [`CustomerStore`], [`InteractionStore`] and [`ProfileStore`] must be implemented in
//! full; the other ports' methods default to [`Error::Unsupported`](crate::Error) and an
//! adapter says what it provides through [`Backend`] (see [`Storage`]). Writes take one
//! [`WriteOptions`].
//!
//! The conformance suite in `crm-testkit` states the exact behaviour every adapter must
//! have; an adapter of your own runs it with a few lines.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::access::{AccessEntry, DailyUsage, Grant, Grantee, SharingRule};
use crate::audit::AuditEntry;
use crate::case::{Case, CaseQuery};
use crate::clv::{ValueClasses, ValueModel, ValueScores};
use crate::customer::{Customer, CustomerQuery, OwnershipChange};
use crate::error::Result;
use crate::handover::HandOver;
use crate::id::{CaseId, CustomerId, TaskId, TeamId, TenantId, UserId};
use crate::interaction::{BatchReport, Interaction};
use crate::kpi::{KpiRule, StoredKpiRule};
use crate::merge::CustomerMerge;
use crate::notify::TemplateName;
use crate::notify::{OutboxMessage, OutboxStore};
use crate::page::{Page, PageRequest};
use crate::profile::Profile;
use crate::segment::{FieldSchema, MembershipChange, Rule, Segment, SegmentId};
use crate::task::{Task, TaskQuery};

mod capability;
pub(crate) use capability::unsupported;
pub use capability::{Backend, Capabilities, Capability};

mod options;
pub use options::WriteOptions;

mod sales;
#[cfg(any(test, feature = "mock"))]
pub use sales::MockSalesStore;
pub use sales::SalesStore;

mod schedule;
#[cfg(any(test, feature = "mock"))]
pub use schedule::MockScheduleStore;
pub use schedule::ScheduleStore;

pub mod stored;

mod storage;
pub use storage::Storage;

mod batch;
pub(crate) use batch::found;
pub use batch::{check_ids, check_len, MAX_IDS};

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
    /// `options`: its outbox messages are stored in the same transaction
    /// ([`WriteOptions::check_messages_only`] first).
    async fn insert_customer(
        &self,
        tenant: TenantId,
        customer: &Customer,
        options: WriteOptions,
    ) -> Result<()>;

    /// Stores many new customers (with their empty profiles and `created` audit entries) in
    /// one transaction, all or nothing. Errors: [`Duplicate`](crate::Error::Duplicate) if any id or external id is
    /// already used in the tenant or repeated in the batch (nothing is written).
    ///
    /// `options`: its outbox messages are stored in the same transaction
    /// ([`WriteOptions::check_messages_only`] first).
    async fn insert_customers(
        &self,
        tenant: TenantId,
        customers: Vec<Customer>,
        options: WriteOptions,
    ) -> Result<()>;

    /// Reads a customer. Errors: [`NotFound`](crate::Error::NotFound).
    async fn get_customer(&self, tenant: TenantId, id: CustomerId) -> Result<Customer>;

    /// Replaces a customer if its stored version is still `expected_version`; `customer`
    /// carries the new version. `options`' ownership transfer, audit entries and outbox
    /// messages are recorded in the same transaction ([`WriteOptions::check`] first).
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound), [`Conflict`](crate::Error::Conflict) on
    /// a stale version, [`Duplicate`](crate::Error::Duplicate) if a new external id is taken.
    async fn update_customer(
        &self,
        tenant: TenantId,
        customer: &Customer,
        expected_version: u64,
        options: WriteOptions,
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

    /// Reads many customers: each of `ids` that is stored, once, in no particular order.
    /// Errors: [`Validation`](crate::Error::Validation) on `ids` beyond [`MAX_IDS`]. The
    /// default reads them one by one (a few at a time).
    async fn get_customers(&self, tenant: TenantId, ids: &[CustomerId]) -> Result<Vec<Customer>> {
        let found = found(ids, |id| self.get_customer(tenant, id)).await?;
        Ok(found.into_iter().map(|(_, c)| c).collect())
    }

    /// The ownership transfers of many customers (each newest first), by customer; one
    /// without transfers, or not stored, has no entry. Errors:
    /// [`Validation`](crate::Error::Validation) on `ids` beyond [`MAX_IDS`]. The default
    /// reads them one by one.
    async fn ownership_histories(
        &self,
        tenant: TenantId,
        ids: &[CustomerId],
    ) -> Result<BTreeMap<CustomerId, Vec<OwnershipChange>>> {
        let found = found(ids, |id| self.ownership_history(tenant, id)).await?;
        Ok(found.into_iter().filter(|(_, h)| !h.is_empty()).collect())
    }

    /// Folds `merge.merged` into `merge.survivor`, all in one transaction, or nothing:
    /// - every customer must be stored at the version given (else
    ///   [`Error::stale_write`](crate::Error::stale_write): `NotFound` or `Conflict`);
    /// - the survivor's record is replaced by `merge.survivor` (its external ids, emails,
    ///   phones and tags indexed anew; an external id another customer holds is
    ///   [`Duplicate`](crate::Error::Duplicate));
    /// - every interaction, case and task (with the customer as subject) of a merged
    ///   customer now names the survivor, interaction ids and keys unchanged, and so does
    ///   every deal naming one as its account or contact
    ///   ([`Opportunity::merge_parties`](crate::sales::Opportunity::merge_parties): changed
    ///   once, at its next version; its won snapshot unchanged); relationships and the
    ///   organisation hierarchy move too ([`merge_relationships`](crate::sales::merge_relationships),
    ///   [`merge_hierarchy`](crate::sales::merge_hierarchy), refusing what the latter refuses);
    /// - the survivor joins every segment a merged customer was a member of;
    /// - the survivor's profile becomes the merge ([`Profile::merge`]) of its own and the
    ///   merged customers' profiles;
    /// - the merged customers, their profiles, value scores and classes are removed, and
    ///   each leaves a redirect to the survivor; redirects that led to a merged customer
    ///   now lead to the survivor;
    /// - `merge.audit` is recorded;
    /// - `options.outbox` is stored ([`WriteOptions::check_messages_only`] first).
    async fn merge_customers(
        &self,
        _tenant: TenantId,
        _merge: &CustomerMerge,
        _options: WriteOptions,
    ) -> Result<()> {
        Err(unsupported::<Self>("merge_customers"))
    }

    /// Where a customer merged away now lives (`None`: no redirect for this id).
    async fn redirect(&self, _tenant: TenantId, _id: CustomerId) -> Result<Option<CustomerId>> {
        Ok(None)
    }

    /// Erases a customer's personal data, in one transaction, or nothing: the record is
    /// replaced by `erased` if stored at `expected_version` (else
    /// [`Error::stale_write`](crate::Error::stale_write)), with its search index rows
    /// (emails, phones, tags, external ids) rebuilt from it; the customer's interactions
    /// lose subject, body and attributes; its cases get
    /// [`erase_case`](crate::privacy::erase_case), tasks about it or its cases
    /// [`erase_task`](crate::privacy::erase_task); the ownership changes of the customer
    /// and of every customer merged into it lose their reasons, and their earlier audit
    /// entries are replaced by their [`scrubbed`](AuditEntry::scrubbed) form;
    /// `options.audit` is recorded; `options.outbox` is stored
    /// ([`WriteOptions::into_audited`] first).
    /// Profiles, value scores and classes stay.
    async fn erase_customer(
        &self,
        _tenant: TenantId,
        _erased: &Customer,
        _expected_version: u64,
        _options: WriteOptions,
    ) -> Result<()> {
        Err(unsupported::<Self>("erase_customer"))
    }

    /// Applies a [`HandOver`] in one transaction (optional: [`Capability::HandOver`]): each
    /// of `plan.customers` replaced if still at its `expected_version` (index rows anew, as
    /// [`update_customer`](Self::update_customer)), with its ownership change and audit
    /// entry; each case and task of the plan replaced if still at its version; and
    /// `options.outbox` ([`WriteOptions::check_messages_only`] first). A record missing or
    /// at another version is [`Error::stale_write`](crate::Error::stale_write) and nothing
    /// is written.
    async fn hand_over(
        &self,
        _tenant: TenantId,
        _plan: &HandOver,
        _options: WriteOptions,
    ) -> Result<()> {
        Err(unsupported::<Self>("hand_over"))
    }

    /// A customer's audit entries, newest first (by version), one page at a time (the
    /// cursor is an [audit cursor](crate::Cursor::audit)). A customer never stored, or of
    /// another tenant, has none.
    async fn audit_history(
        &self,
        _tenant: TenantId,
        _customer: CustomerId,
        _page: &PageRequest,
    ) -> Result<Page<AuditEntry>> {
        Err(unsupported::<Self>("audit_history"))
    }
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
    /// `options`: its outbox messages are stored in the same transaction
    /// ([`WriteOptions::check_messages_only`] first).
    async fn append_interactions(
        &self,
        tenant: TenantId,
        batch: Vec<Interaction>,
        options: WriteOptions,
    ) -> Result<BatchReport>;

    /// Archives raw history, in one transaction: the tenant's archive horizon becomes
    /// `before` (or stays, if later already), and its interactions that occurred before
    /// `before` and were recorded at or before `recorded_up_to` are deleted; returns how
    /// many. Profiles stay as they are (their aggregates already hold the deleted rows).
    async fn archive_interactions(
        &self,
        _tenant: TenantId,
        _before: DateTime<Utc>,
        _recorded_up_to: DateTime<Utc>,
    ) -> Result<u64> {
        Err(unsupported::<Self>("archive_interactions"))
    }

    /// The tenant's archive horizon: interactions before it were archived (`None`: never).
    async fn archive_horizon(&self, _tenant: TenantId) -> Result<Option<DateTime<Utc>>> {
        Ok(None)
    }

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

    /// The profiles of many customers, by customer; one not stored has no entry. Errors:
    /// [`Validation`](crate::Error::Validation) on `ids` beyond [`MAX_IDS`]. The default
    /// reads them one by one.
    async fn get_profiles(
        &self,
        tenant: TenantId,
        ids: &[CustomerId],
    ) -> Result<BTreeMap<CustomerId, Profile>> {
        Ok(found(ids, |id| self.get_profile(tenant, id))
            .await?
            .into_iter()
            .collect())
    }
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
        _tenant: TenantId,
        _scores: Vec<(CustomerId, ValueScores)>,
    ) -> Result<()> {
        Err(unsupported::<Self>("set_value_scores"))
    }

    /// A customer's latest scores, if it has been scored.
    /// Errors: [`NotFound`](crate::Error::NotFound) for an unknown customer.
    async fn value_scores(
        &self,
        _tenant: TenantId,
        _customer: CustomerId,
    ) -> Result<Option<ValueScores>> {
        Err(unsupported::<Self>("value_scores"))
    }

    /// Stores a fitted model. Errors: [`Duplicate`](crate::Error::Duplicate) if the tenant
    /// already has a model fitted at the same instant.
    async fn save_value_model(&self, _tenant: TenantId, _model: &ValueModel) -> Result<()> {
        Err(unsupported::<Self>("save_value_model"))
    }

    /// The tenant's most recently fitted model (by `fitted_at`), if any.
    async fn latest_value_model(&self, _tenant: TenantId) -> Result<Option<ValueModel>> {
        Err(unsupported::<Self>("latest_value_model"))
    }

    /// Stores (or replaces) the value classes of many customers in one transaction, all or
    /// nothing. Errors: [`NotFound`](crate::Error::NotFound) for an unknown customer.
    async fn set_value_classes(
        &self,
        _tenant: TenantId,
        _classes: Vec<(CustomerId, ValueClasses)>,
    ) -> Result<()> {
        Err(unsupported::<Self>("set_value_classes"))
    }

    /// A customer's latest value classes, if classified.
    /// Errors: [`NotFound`](crate::Error::NotFound) for an unknown customer.
    async fn value_classes(
        &self,
        _tenant: TenantId,
        _customer: CustomerId,
    ) -> Result<Option<ValueClasses>> {
        Err(unsupported::<Self>("value_classes"))
    }
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
        _tenant: TenantId,
        _rule: &Rule,
        _schema: &FieldSchema,
        _now: DateTime<Utc>,
        _page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        Err(unsupported::<Self>("find_matching"))
    }

    /// How many customers `rule` is true for at `now`.
    async fn count_matching(
        &self,
        _tenant: TenantId,
        _rule: &Rule,
        _schema: &FieldSchema,
        _now: DateTime<Utc>,
    ) -> Result<u64> {
        Err(unsupported::<Self>("count_matching"))
    }

    /// Stores a new segment. Errors: [`Duplicate`](crate::Error::Duplicate) if its id or
    /// its name is already used in the tenant.
    async fn save_segment(&self, _tenant: TenantId, _segment: &Segment) -> Result<()> {
        Err(unsupported::<Self>("save_segment"))
    }

    /// A segment by id. Errors: [`NotFound`](crate::Error::NotFound).
    async fn get_segment(&self, _tenant: TenantId, _id: SegmentId) -> Result<Segment> {
        Err(unsupported::<Self>("get_segment"))
    }

    /// Every segment of the tenant, by name.
    async fn list_segments(&self, _tenant: TenantId) -> Result<Vec<Segment>> {
        Err(unsupported::<Self>("list_segments"))
    }

    /// Replaces a dynamic segment's members with the customers its rule is true for at
    /// `now`, in one transaction, and says who entered and who left since the last refresh.
    /// Errors: [`NotFound`](crate::Error::NotFound); validation if the segment is static.
    ///
    /// `events_at`: when given, a domain event per customer who entered or left
    /// ([`crate::notify::events::membership_events`]) is stored in the same transaction.
    async fn refresh_segment(
        &self,
        _tenant: TenantId,
        _id: SegmentId,
        _schema: &FieldSchema,
        _now: DateTime<Utc>,
        _events_at: Option<DateTime<Utc>>,
    ) -> Result<MembershipChange> {
        Err(unsupported::<Self>("refresh_segment"))
    }

    /// Adds and removes members of a static segment in one transaction.
    /// Errors: [`NotFound`](crate::Error::NotFound) for an unknown segment or customer
    /// (nothing is written); validation if the segment is dynamic.
    ///
    /// `events_at`: when given, a domain event per customer who entered or left
    /// ([`crate::notify::events::membership_events`]) is stored in the same transaction.
    async fn change_static_members(
        &self,
        _tenant: TenantId,
        _id: SegmentId,
        _add: Vec<CustomerId>,
        _remove: Vec<CustomerId>,
        _events_at: Option<DateTime<Utc>>,
    ) -> Result<MembershipChange> {
        Err(unsupported::<Self>("change_static_members"))
    }

    /// A segment's members, by id, one page at a time.
    async fn segment_members(
        &self,
        _tenant: TenantId,
        _id: SegmentId,
        _page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        Err(unsupported::<Self>("segment_members"))
    }

    /// Whether the customer is a member of the segment.
    async fn is_member(
        &self,
        _tenant: TenantId,
        _id: SegmentId,
        _customer: CustomerId,
    ) -> Result<bool> {
        Err(unsupported::<Self>("is_member"))
    }

    /// The segments the customer is a member of, by id.
    async fn segments_of(
        &self,
        _tenant: TenantId,
        _customer: CustomerId,
    ) -> Result<Vec<SegmentId>> {
        Err(unsupported::<Self>("segments_of"))
    }
}

/// Service cases, with optimistic concurrency.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait CaseStore: Send + Sync {
    /// Stores a new case (with its version and events as given) and `options.outbox`, in one
    /// transaction.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound) if its customer does not exist in the
    /// tenant; [`Duplicate`](crate::Error::Duplicate) if its id is taken.
    async fn insert_case(
        &self,
        _tenant: TenantId,
        _case: &Case,
        _options: WriteOptions,
    ) -> Result<()> {
        Err(unsupported::<Self>("insert_case"))
    }

    /// Reads a case. Errors: [`NotFound`](crate::Error::NotFound).
    async fn get_case(&self, _tenant: TenantId, _id: CaseId) -> Result<Case> {
        Err(unsupported::<Self>("get_case"))
    }

    /// Reads many cases: each of `ids` that is stored, once, in no particular order.
    /// Errors: [`Validation`](crate::Error::Validation) on `ids` beyond [`MAX_IDS`]. The
    /// default reads them one by one.
    async fn get_cases(&self, tenant: TenantId, ids: &[CaseId]) -> Result<Vec<Case>> {
        let found = found(ids, |id| self.get_case(tenant, id)).await?;
        Ok(found.into_iter().map(|(_, c)| c).collect())
    }

    /// Replaces a case if its stored version is still `expected_version` (`case` carries
    /// the new version), storing `options.outbox` in the same transaction
    /// ([`WriteOptions::check_messages_only`] first).
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound); [`Conflict`](crate::Error::Conflict)
    /// on a stale version.
    async fn update_case(
        &self,
        _tenant: TenantId,
        _case: &Case,
        _expected_version: u64,
        _options: WriteOptions,
    ) -> Result<()> {
        Err(unsupported::<Self>("update_case"))
    }

    /// Replaces many cases in one transaction, each only if its stored version is still
    /// the one given (each with its options' outbox messages, [`WriteOptions::check_messages_only`]
    /// first); per write, in order, whether it was stored. A stale version or a missing
    /// case stores nothing of that write and answers `false`; any other error stores
    /// nothing at all. Errors: [`Validation`](crate::Error::Validation) on `writes` beyond
    /// [`MAX_IDS`]. The default checks every message first, then calls
    /// [`update_case`](Self::update_case) for each, a few at a time, each in a transaction
    /// of its own (so a storage error part-way keeps the writes before it).
    async fn update_cases(
        &self,
        tenant: TenantId,
        writes: Vec<(Case, u64, WriteOptions)>,
    ) -> Result<Vec<bool>> {
        batch::check_len("writes", writes.len())?;
        for (_, _, options) in &writes {
            options.check_messages_only()?;
        }
        let writes: Vec<_> = writes
            .into_iter()
            .map(|(case, expected, options)| async move {
                self.update_case(tenant, &case, expected, options).await
            })
            .collect();
        batch::stored_each(writes).await
    }

    /// Cases matching every filter of `query` ([`CaseQuery::matches`]), ordered by id, one
    /// page at a time.
    async fn list_cases(
        &self,
        _tenant: TenantId,
        _query: &CaseQuery,
        _page: &PageRequest,
    ) -> Result<Page<Case>> {
        Err(unsupported::<Self>("list_cases"))
    }
}

/// Follow-up tasks, with optimistic concurrency.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Stores a new task. Errors: [`NotFound`](crate::Error::NotFound) if its customer or
    /// case does not exist in the tenant; [`Duplicate`](crate::Error::Duplicate) for a
    /// taken id.
    async fn insert_task(&self, _tenant: TenantId, _task: &Task) -> Result<()> {
        Err(unsupported::<Self>("insert_task"))
    }

    /// Reads a task. Errors: [`NotFound`](crate::Error::NotFound).
    async fn get_task(&self, _tenant: TenantId, _id: TaskId) -> Result<Task> {
        Err(unsupported::<Self>("get_task"))
    }

    /// Replaces a task if its stored version is still `expected_version` (`task` carries
    /// the new version), storing `options.outbox` in the same transaction
    /// ([`WriteOptions::check_messages_only`] first).
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound); [`Conflict`](crate::Error::Conflict)
    /// on a stale version.
    async fn update_task(
        &self,
        _tenant: TenantId,
        _task: &Task,
        _expected_version: u64,
        _options: WriteOptions,
    ) -> Result<()> {
        Err(unsupported::<Self>("update_task"))
    }

    /// Tasks matching every filter of `query` ([`TaskQuery::matches`]), ordered by id, one
    /// page at a time.
    async fn list_tasks(
        &self,
        _tenant: TenantId,
        _query: &TaskQuery,
        _page: &PageRequest,
    ) -> Result<Page<Task>> {
        Err(unsupported::<Self>("list_tasks"))
    }
}

/// A tenant's KPI rules, editable with optimistic concurrency.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait KpiRuleStore: Send + Sync {
    /// Stores a new rule at version 1. Errors: [`Duplicate`](crate::Error::Duplicate) if the
    /// tenant has a rule with its key.
    async fn insert_kpi_rule(&self, _tenant: TenantId, _rule: &KpiRule) -> Result<()> {
        Err(unsupported::<Self>("insert_kpi_rule"))
    }

    /// Replaces the rule with the same key if its stored version is still
    /// `expected_version`; it is stored at the next version.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound); [`Conflict`](crate::Error::Conflict).
    async fn update_kpi_rule(
        &self,
        _tenant: TenantId,
        _rule: &KpiRule,
        _expected_version: u64,
    ) -> Result<()> {
        Err(unsupported::<Self>("update_kpi_rule"))
    }

    /// Removes a rule. Errors: [`NotFound`](crate::Error::NotFound).
    async fn delete_kpi_rule(&self, _tenant: TenantId, _key: &TemplateName) -> Result<()> {
        Err(unsupported::<Self>("delete_kpi_rule"))
    }

    /// The tenant's rules, by key.
    async fn kpi_rules(&self, _tenant: TenantId) -> Result<Vec<StoredKpiRule>> {
        Err(unsupported::<Self>("kpi_rules"))
    }
}

/// Per-record grants and sharing rules ([`crate::access`]).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Stores a grant in force: the grant of the same customer and grantee in force
    /// before (if any) is revoked at `grant.granted_at` by `grant.granted_by`, in the same
    /// transaction. Errors: validation ([`Grant::validate`]) before anything is read;
    /// [`NotFound`](crate::Error::NotFound) if the customer does not exist in the tenant.
    async fn put_grant(&self, _tenant: TenantId, _grant: &Grant) -> Result<()> {
        Err(unsupported::<Self>("put_grant"))
    }

    /// Revokes the grant of `customer` to `grantee` in force, recording `by` and `at`;
    /// returns whether there was one.
    async fn revoke_grant(
        &self,
        _tenant: TenantId,
        _customer: CustomerId,
        _grantee: Grantee,
        _by: Option<UserId>,
        _at: DateTime<Utc>,
    ) -> Result<bool> {
        Err(unsupported::<Self>("revoke_grant"))
    }

    /// Every grant on `customer`, in force and revoked, in the order they were given.
    async fn grants_on(&self, _tenant: TenantId, _customer: CustomerId) -> Result<Vec<Grant>> {
        Err(unsupported::<Self>("grants_on"))
    }

    /// The grants in force to `user` or to `unit`, at most `limit` of them (in any order).
    async fn grants_to(
        &self,
        _tenant: TenantId,
        _user: UserId,
        _unit: Option<TeamId>,
        _limit: usize,
    ) -> Result<Vec<Grant>> {
        Err(unsupported::<Self>("grants_to"))
    }

    /// Stores a sharing rule, replacing the tenant's rule of the same name.
    async fn put_sharing_rule(&self, _tenant: TenantId, _rule: &SharingRule) -> Result<()> {
        Err(unsupported::<Self>("put_sharing_rule"))
    }

    /// Removes a sharing rule. Errors: [`NotFound`](crate::Error::NotFound).
    async fn delete_sharing_rule(&self, _tenant: TenantId, _name: &str) -> Result<()> {
        Err(unsupported::<Self>("delete_sharing_rule"))
    }

    /// The tenant's sharing rules, by name.
    async fn sharing_rules(&self, _tenant: TenantId) -> Result<Vec<SharingRule>> {
        Err(unsupported::<Self>("sharing_rules"))
    }

    /// Appends `entry` to the access log and adds its count to the user's use of its kind
    /// on its UTC day ([`AccessEntry::day`]), in one transaction, and answers the day's
    /// use after it; unless `limit` is given and the day's use would go above it: then
    /// nothing is written and the answer is `None`. Concurrent calls never take more than
    /// the limit together.
    async fn record_access(
        &self,
        _tenant: TenantId,
        _entry: &AccessEntry,
        _limit: Option<u64>,
    ) -> Result<Option<u64>> {
        Err(unsupported::<Self>("record_access"))
    }

    /// The access log, newest first (in the order entries were recorded): entries at or
    /// after `since`, of `user` when given, at most `limit`.
    async fn access_log(
        &self,
        _tenant: TenantId,
        _user: Option<UserId>,
        _since: DateTime<Utc>,
        _limit: usize,
    ) -> Result<Vec<AccessEntry>> {
        Err(unsupported::<Self>("access_log"))
    }

    /// Every user's use of each kind on each UTC day from `from` to `to` (both included),
    /// days without use left out, in any order.
    async fn daily_usage(
        &self,
        _tenant: TenantId,
        _from: chrono::NaiveDate,
        _to: chrono::NaiveDate,
    ) -> Result<Vec<DailyUsage>> {
        Err(unsupported::<Self>("daily_usage"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options_with_everything() -> WriteOptions {
        let customer = Customer::person("Ann").build().unwrap();
        WriteOptions::new()
            .audit(AuditEntry::created(&customer))
            .ownership(Some(OwnershipChange {
                customer: customer.id,
                from: None,
                to: None,
                changed_by: None,
                reason: None,
                at: customer.created_at,
                version: 2,
            }))
    }

    #[test]
    fn writes_refuse_what_they_would_not_store() {
        let field = |r: Result<()>| r.unwrap_err().field().map(str::to_string);
        let all = options_with_everything();
        assert_eq!(
            field(all.clone().into_outbox().map(drop)),
            Some("options.audit".into())
        );
        assert_eq!(
            field(all.clone().into_audited().map(drop)),
            Some("options.ownership".into())
        );
        let (audit, ownership, outbox) = all.into_parts().unwrap();
        assert_eq!(
            (audit.len(), ownership.is_some(), outbox.len()),
            (1, true, 0)
        );
        let mut audited = options_with_everything();
        audited.ownership = None;
        assert_eq!(audited.into_audited().unwrap().0.len(), 1);
    }

    #[test]
    fn capability_sets_hold_what_they_are_given() {
        assert!(Capability::ALL
            .iter()
            .all(|c| Capabilities::ALL.supports(*c)));
        let thin = Capabilities::REQUIRED.with(Capability::Segments);
        assert_eq!(
            thin.iter().collect::<Vec<_>>(),
            [
                Capability::Customers,
                Capability::Interactions,
                Capability::Profiles,
                Capability::Segments
            ]
        );
        assert!(!thin
            .without(Capability::Segments)
            .supports(Capability::Segments));
    }
}
