//! `MockStorage`: a `mockall` mock of the whole storage (every port), behind the feature
//! `mock`, for tests of orchestration over `Arc<dyn Storage>`. For tests that need a working
//! store rather than expectations, use `crm_testkit::MemoryStore` with a
//! [`ManualClock`](crate::ManualClock) and a `RecordingNotifier`.

#![allow(missing_docs)]

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::access::{AccessEntry, DailyUsage, Grant, Grantee, SharingRule};
use crate::case::{Case, CaseQuery};
use crate::clv::{ValueClasses, ValueModel, ValueScores};
use crate::customer::{Customer, CustomerQuery, OwnershipChange};
use crate::error::Result;
use crate::id::{
    CaseId, CustomerId, MessageId, OpportunityId, PipelineId, TaskId, TeamId, TenantId, UserId,
};
use crate::interaction::{BatchReport, Interaction};
use crate::kpi::{KpiRule, StoredKpiRule};
use crate::notify::{Claimed, EnqueueReport, Lease, OutboxMessage, OutboxStore, TemplateName};
use crate::page::{Page, PageRequest};
use crate::ports::{
    AccessStore, Backend, Capabilities, CaseStore, CustomerStore, InteractionStore, KpiRuleStore,
    ProfileStore, SalesStore, ScheduleStore, SegmentStore, TaskStore, ValueStore, WriteOptions,
};
use crate::profile::Profile;
use crate::sales::{
    ForecastCell, ForecastQuery, FunnelCell, FunnelQuery, Opportunity, OpportunityQuery, Pipeline,
    Relationship, RelationshipQuery, StageChange, StageTime,
};
use crate::schedule::{DueEntry, DueKind, Reschedule};
use crate::segment::{FieldSchema, MembershipChange, Rule, Segment, SegmentId};
use crate::task::{Task, TaskQuery};

mockall::mock! {
    /// A mock of the whole storage: every port, for tests of code that takes
    /// `Arc<dyn Storage>`.
    pub Storage {}
    impl Backend for Storage {
        fn name(&self) -> &'static str;
        fn capabilities(&self) -> Capabilities;
    }
    #[async_trait]
    impl CustomerStore for Storage {
        async fn insert_customer(&self, tenant: TenantId, customer: &Customer, options: WriteOptions) -> Result<()>;
        async fn insert_customers(&self, tenant: TenantId, customers: Vec<Customer>, options: WriteOptions) -> Result<()>;
        async fn get_customer(&self, tenant: TenantId, id: CustomerId) -> Result<Customer>;
        async fn update_customer(&self, tenant: TenantId, customer: &Customer, expected_version: u64, options: WriteOptions) -> Result<()>;
        async fn list_customers(&self, tenant: TenantId, query: &CustomerQuery, page: &PageRequest) -> Result<Page<Customer>>;
        async fn ownership_history(&self, tenant: TenantId, id: CustomerId) -> Result<Vec<OwnershipChange>>;
        async fn merge_customers(&self, tenant: TenantId, merge: &crate::merge::CustomerMerge, options: WriteOptions) -> Result<()>;
        async fn redirect(&self, tenant: TenantId, id: CustomerId) -> Result<Option<CustomerId>>;
        async fn erase_customer(&self, tenant: TenantId, erased: &Customer, expected_version: u64, options: WriteOptions) -> Result<()>;
        async fn audit_history(&self, tenant: TenantId, customer: CustomerId, page: &PageRequest) -> Result<Page<crate::audit::AuditEntry>>;
    }
    #[async_trait]
    impl InteractionStore for Storage {
        async fn append_interactions(&self, tenant: TenantId, batch: Vec<Interaction>, options: WriteOptions) -> Result<BatchReport>;
        async fn timeline(&self, tenant: TenantId, customer: CustomerId, page: &PageRequest) -> Result<Page<Interaction>>;
        async fn interactions_between(&self, tenant: TenantId, from: DateTime<Utc>, to: DateTime<Utc>, page: &PageRequest) -> Result<Page<Interaction>>;
        async fn archive_interactions(&self, tenant: TenantId, before: DateTime<Utc>, recorded_up_to: DateTime<Utc>) -> Result<u64>;
        async fn archive_horizon(&self, tenant: TenantId) -> Result<Option<DateTime<Utc>>>;
    }
    #[async_trait]
    impl ProfileStore for Storage {
        async fn get_profile(&self, tenant: TenantId, customer: CustomerId) -> Result<Profile>;
    }
    #[async_trait]
    impl ValueStore for Storage {
        async fn set_value_scores(&self, tenant: TenantId, scores: Vec<(CustomerId, ValueScores)>) -> Result<()>;
        async fn value_scores(&self, tenant: TenantId, customer: CustomerId) -> Result<Option<ValueScores>>;
        async fn save_value_model(&self, tenant: TenantId, model: &ValueModel) -> Result<()>;
        async fn latest_value_model(&self, tenant: TenantId) -> Result<Option<ValueModel>>;
        async fn set_value_classes(&self, tenant: TenantId, classes: Vec<(CustomerId, ValueClasses)>) -> Result<()>;
        async fn value_classes(&self, tenant: TenantId, customer: CustomerId) -> Result<Option<ValueClasses>>;
    }
    #[async_trait]
    impl SegmentStore for Storage {
        async fn find_matching(&self, tenant: TenantId, rule: &Rule, schema: &FieldSchema, now: DateTime<Utc>, page: &PageRequest) -> Result<Page<CustomerId>>;
        async fn count_matching(&self, tenant: TenantId, rule: &Rule, schema: &FieldSchema, now: DateTime<Utc>) -> Result<u64>;
        async fn save_segment(&self, tenant: TenantId, segment: &Segment) -> Result<()>;
        async fn get_segment(&self, tenant: TenantId, id: SegmentId) -> Result<Segment>;
        async fn list_segments(&self, tenant: TenantId) -> Result<Vec<Segment>>;
        async fn refresh_segment(&self, tenant: TenantId, id: SegmentId, schema: &FieldSchema, now: DateTime<Utc>, events_at: Option<DateTime<Utc>>) -> Result<MembershipChange>;
        async fn change_static_members(&self, tenant: TenantId, id: SegmentId, add: Vec<CustomerId>, remove: Vec<CustomerId>, events_at: Option<DateTime<Utc>>) -> Result<MembershipChange>;
        async fn segment_members(&self, tenant: TenantId, id: SegmentId, page: &PageRequest) -> Result<Page<CustomerId>>;
        async fn is_member(&self, tenant: TenantId, id: SegmentId, customer: CustomerId) -> Result<bool>;
        async fn segments_of(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<SegmentId>>;
    }
    #[async_trait]
    impl KpiRuleStore for Storage {
        async fn insert_kpi_rule(&self, tenant: TenantId, rule: &KpiRule) -> Result<()>;
        async fn update_kpi_rule(&self, tenant: TenantId, rule: &KpiRule, expected_version: u64) -> Result<()>;
        async fn delete_kpi_rule(&self, tenant: TenantId, key: &TemplateName) -> Result<()>;
        async fn kpi_rules(&self, tenant: TenantId) -> Result<Vec<StoredKpiRule>>;
    }
    #[async_trait]
    impl AccessStore for Storage {
        async fn put_grant(&self, tenant: TenantId, grant: &Grant) -> Result<()>;
        async fn revoke_grant(&self, tenant: TenantId, customer: CustomerId, grantee: Grantee, by: Option<UserId>, at: DateTime<Utc>) -> Result<bool>;
        async fn grants_on(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<Grant>>;
        async fn grants_to(&self, tenant: TenantId, user: UserId, unit: Option<TeamId>, limit: usize) -> Result<Vec<Grant>>;
        async fn put_sharing_rule(&self, tenant: TenantId, rule: &SharingRule) -> Result<()>;
        async fn delete_sharing_rule(&self, tenant: TenantId, name: &str) -> Result<()>;
        async fn sharing_rules(&self, tenant: TenantId) -> Result<Vec<SharingRule>>;
        async fn record_access(&self, tenant: TenantId, entry: &AccessEntry, limit: Option<u64>) -> Result<Option<u64>>;
        async fn access_log(&self, tenant: TenantId, user: Option<UserId>, since: DateTime<Utc>, limit: usize) -> Result<Vec<AccessEntry>>;
        async fn daily_usage(&self, tenant: TenantId, from: chrono::NaiveDate, to: chrono::NaiveDate) -> Result<Vec<DailyUsage>>;
    }
    #[async_trait]
    impl SalesStore for Storage {
        async fn insert_pipeline(&self, tenant: TenantId, pipeline: &Pipeline) -> Result<()>;
        async fn update_pipeline(&self, tenant: TenantId, pipeline: &Pipeline, expected_version: u64) -> Result<()>;
        async fn get_pipeline(&self, tenant: TenantId, id: PipelineId) -> Result<Pipeline>;
        async fn pipelines(&self, tenant: TenantId) -> Result<Vec<Pipeline>>;
        async fn insert_opportunity(&self, tenant: TenantId, deal: &Opportunity, change: &StageChange, options: WriteOptions) -> Result<()>;
        async fn get_opportunity(&self, tenant: TenantId, id: OpportunityId) -> Result<Opportunity>;
        async fn update_opportunity(&self, tenant: TenantId, deal: &Opportunity, expected_version: u64, changes: &[StageChange], options: WriteOptions) -> Result<()>;
        async fn list_opportunities(&self, tenant: TenantId, query: &OpportunityQuery, page: &PageRequest) -> Result<Page<Opportunity>>;
        async fn stage_history(&self, tenant: TenantId, id: OpportunityId, page: &PageRequest) -> Result<Page<StageChange>>;
        async fn forecast_cells(&self, tenant: TenantId, query: &ForecastQuery) -> Result<Vec<ForecastCell>>;
        async fn funnel(&self, tenant: TenantId, query: &FunnelQuery, pipeline: &Pipeline) -> Result<(Vec<FunnelCell>, Vec<StageTime>)>;
        async fn put_relationship(&self, tenant: TenantId, relationship: &Relationship) -> Result<()>;
        async fn remove_relationship(&self, tenant: TenantId, organization: CustomerId, person: CustomerId) -> Result<()>;
        async fn relationships(&self, tenant: TenantId, query: &RelationshipQuery, page: &PageRequest) -> Result<Page<Relationship>>;
        async fn set_parent(&self, tenant: TenantId, organization: CustomerId, parent: Option<CustomerId>) -> Result<()>;
        async fn account_line(&self, tenant: TenantId, organization: CustomerId) -> Result<Vec<CustomerId>>;
        async fn subsidiaries(&self, tenant: TenantId, organization: CustomerId, page: &PageRequest) -> Result<Page<CustomerId>>;
        async fn account_timeline(&self, tenant: TenantId, organization: CustomerId, page: &PageRequest) -> Result<Page<Interaction>>;
    }
    #[async_trait]
    impl ScheduleStore for Storage {
        async fn due_entries(&self, tenant: TenantId, kind: DueKind, until: DateTime<Utc>, page: &PageRequest) -> Result<Page<DueEntry>>;
        async fn reschedule(&self, tenant: TenantId, kind: DueKind, entries: &[Reschedule]) -> Result<usize>;
        async fn schedule_basis(&self, tenant: TenantId, kind: DueKind) -> Result<Option<String>>;
        async fn reset_schedule(&self, tenant: TenantId, kind: DueKind, basis: &str) -> Result<u64>;
        async fn tenants(&self, after: Option<TenantId>, limit: u32) -> Result<Vec<TenantId>>;
        async fn take_lease(&self, tenant: TenantId, job: &str, holder: uuid::Uuid, now: DateTime<Utc>, until: DateTime<Utc>) -> Result<bool>;
        async fn release_lease(&self, tenant: TenantId, job: &str, holder: uuid::Uuid) -> Result<()>;
    }
    #[async_trait]
    impl TaskStore for Storage {
        async fn insert_task(&self, tenant: TenantId, task: &Task) -> Result<()>;
        async fn get_task(&self, tenant: TenantId, id: TaskId) -> Result<Task>;
        async fn update_task(&self, tenant: TenantId, task: &Task, expected_version: u64, options: WriteOptions) -> Result<()>;
        async fn list_tasks(&self, tenant: TenantId, query: &TaskQuery, page: &PageRequest) -> Result<Page<Task>>;
    }
    #[async_trait]
    impl CaseStore for Storage {
        async fn insert_case(&self, tenant: TenantId, case: &Case, options: WriteOptions) -> Result<()>;
        async fn get_case(&self, tenant: TenantId, id: CaseId) -> Result<Case>;
        async fn update_case(&self, tenant: TenantId, case: &Case, expected_version: u64, options: WriteOptions) -> Result<()>;
        async fn list_cases(&self, tenant: TenantId, query: &CaseQuery, page: &PageRequest) -> Result<Page<Case>>;
    }
    #[async_trait]
    impl OutboxStore for Storage {
        async fn enqueue(&self, tenant: TenantId, messages: Vec<OutboxMessage>) -> Result<EnqueueReport>;
        async fn claim(&self, tenant: TenantId, now: DateTime<Utc>, lease: Lease, limit: u32) -> Result<Vec<Claimed>>;
        async fn mark_sent(&self, tenant: TenantId, id: MessageId, lease: Lease, at: DateTime<Utc>) -> Result<()>;
        async fn mark_failed(&self, tenant: TenantId, id: MessageId, lease: Lease, error: &str, retry_at: Option<DateTime<Utc>>) -> Result<()>;
        async fn release(&self, tenant: TenantId, id: MessageId, lease: Lease) -> Result<()>;
        async fn outbox_message(&self, tenant: TenantId, id: MessageId) -> Result<OutboxMessage>;
        async fn dead_letters(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<OutboxMessage>>;
        async fn requeue(&self, tenant: TenantId, id: MessageId, now: DateTime<Utc>) -> Result<()>;
        async fn pending_count(&self, tenant: TenantId) -> Result<u64>;
    }
}
