//! The suite catches broken adapters: wrappers around the reference store that each break
//! one promise fail the cases that guard it.

use crm_core::WriteOptions;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use async_trait::async_trait;
use crm_core::access::{Grant, Grantee, SharingRule};
use crm_core::case::{Case, CaseQuery};
use crm_core::kpi::{KpiRule, StoredKpiRule};
use crm_core::notify::TemplateName;
use crm_core::notify::{Claimed, EnqueueReport, Lease, OutboxMessage, OutboxStore};
use crm_core::sales::{
    ForecastCell, ForecastQuery, FunnelCell, FunnelQuery, Opportunity, OpportunityQuery, Pipeline,
    StageChange, StageTime,
};
use crm_core::schedule::{DueEntry, DueKind, Reschedule};
use crm_core::segment::{FieldSchema, MembershipChange, Rule, Segment};
use crm_core::task::{Task, TaskQuery};
use crm_core::{
    BatchReport, Customer, CustomerId, CustomerQuery, CustomerStore, Interaction, InteractionStore,
    OwnershipChange, Page, PageRequest, Profile, ProfileStore, Result, SegmentId, SegmentStore,
    Storage, TenantId, ValueClasses, ValueModel, ValueScores, ValueStore,
};
use crm_core::{MessageId, OpportunityId, PipelineId};
use crm_testkit::conformance::{all_cases, CaseFn};
use crm_testkit::{run_case, Fixture, MemoryStore};

/// How a wrapper misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum Flaw {
    /// Every call goes to one shared tenant.
    IgnoresTenant,
    /// Updates never check the version.
    IgnoresVersion,
    /// Batches are written row by row, each row in its own transaction, and profiles are
    /// not maintained.
    SkipsProfiles,
    /// Timelines come back oldest first.
    OldestFirst,
    /// Claims ignore due times and leases: every pending message is handed out.
    IgnoresLeases,
    /// Outbox messages of a change are written before it, outside its transaction.
    OutboxOutsideTransaction,
}

struct Broken {
    inner: MemoryStore,
    flaw: Flaw,
}

impl crm_core::Backend for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
}

impl Broken {
    /// The options to pass on: as given, or (flawed) without the outbox after writing it
    /// separately.
    async fn outbox(&self, t: TenantId, mut options: WriteOptions) -> Result<WriteOptions> {
        if self.flaw != Flaw::OutboxOutsideTransaction {
            return Ok(options);
        }
        let outbox = std::mem::take(&mut options.outbox);
        self.inner.enqueue(self.tenant(t), outbox).await?;
        Ok(options)
    }

    fn tenant(&self, t: TenantId) -> TenantId {
        if self.flaw == Flaw::IgnoresTenant {
            TenantId::from_bytes([7; 16])
        } else {
            t
        }
    }
}

#[async_trait]
impl CustomerStore for Broken {
    async fn insert_customer(&self, t: TenantId, c: &Customer, o: WriteOptions) -> Result<()> {
        let o = self.outbox(t, o).await?;
        self.inner.insert_customer(self.tenant(t), c, o).await
    }
    async fn insert_customers(&self, t: TenantId, c: Vec<Customer>, o: WriteOptions) -> Result<()> {
        let o = self.outbox(t, o).await?;
        self.inner.insert_customers(self.tenant(t), c, o).await
    }
    async fn get_customer(&self, t: TenantId, id: CustomerId) -> Result<Customer> {
        self.inner.get_customer(self.tenant(t), id).await
    }
    async fn update_customer(
        &self,
        t: TenantId,
        c: &Customer,
        expected: u64,
        outbox: WriteOptions,
    ) -> Result<()> {
        let outbox = self.outbox(t, outbox).await?;
        let expected = if self.flaw == Flaw::IgnoresVersion {
            self.inner.get_customer(self.tenant(t), c.id).await?.version
        } else {
            expected
        };
        self.inner
            .update_customer(self.tenant(t), c, expected, outbox)
            .await
    }
    async fn list_customers(
        &self,
        t: TenantId,
        q: &CustomerQuery,
        p: &PageRequest,
    ) -> Result<Page<Customer>> {
        self.inner.list_customers(self.tenant(t), q, p).await
    }
    async fn ownership_history(&self, t: TenantId, id: CustomerId) -> Result<Vec<OwnershipChange>> {
        self.inner.ownership_history(self.tenant(t), id).await
    }
    async fn merge_customers(
        &self,
        t: TenantId,
        merge: &crm_core::merge::CustomerMerge,
        outbox: WriteOptions,
    ) -> Result<()> {
        let outbox = self.outbox(t, outbox).await?;
        self.inner
            .merge_customers(self.tenant(t), merge, outbox)
            .await
    }
    async fn redirect(&self, t: TenantId, id: CustomerId) -> Result<Option<CustomerId>> {
        self.inner.redirect(self.tenant(t), id).await
    }
    async fn erase_customer(
        &self,
        t: TenantId,
        erased: &Customer,
        expected: u64,
        outbox: WriteOptions,
    ) -> Result<()> {
        let outbox = self.outbox(t, outbox).await?;
        self.inner
            .erase_customer(self.tenant(t), erased, expected, outbox)
            .await
    }
    async fn audit_history(
        &self,
        t: TenantId,
        customer: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<crm_core::audit::AuditEntry>> {
        self.inner
            .audit_history(self.tenant(t), customer, page)
            .await
    }
}

#[async_trait]
impl InteractionStore for Broken {
    async fn append_interactions(
        &self,
        t: TenantId,
        batch: Vec<Interaction>,
        outbox: WriteOptions,
    ) -> Result<BatchReport> {
        let outbox = self.outbox(t, outbox).await?;
        if self.flaw != Flaw::SkipsProfiles {
            return self
                .inner
                .append_interactions(self.tenant(t), batch, outbox)
                .await;
        }
        let mut report = BatchReport::default();
        for row in batch {
            let r = self
                .inner
                .append_interactions(t, vec![row], WriteOptions::new())
                .await?;
            report.inserted += r.inserted;
            report.duplicates += r.duplicates;
        }
        Ok(report)
    }
    async fn interactions_between(
        &self,
        t: TenantId,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        p: &PageRequest,
    ) -> Result<Page<Interaction>> {
        self.inner
            .interactions_between(self.tenant(t), from, to, p)
            .await
    }
    async fn archive_interactions(
        &self,
        t: TenantId,
        before: chrono::DateTime<chrono::Utc>,
        recorded_up_to: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.inner
            .archive_interactions(self.tenant(t), before, recorded_up_to)
            .await
    }
    async fn archive_horizon(&self, t: TenantId) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        self.inner.archive_horizon(self.tenant(t)).await
    }
    async fn timeline(
        &self,
        t: TenantId,
        c: CustomerId,
        p: &PageRequest,
    ) -> Result<Page<Interaction>> {
        let mut page = self.inner.timeline(self.tenant(t), c, p).await?;
        if self.flaw == Flaw::OldestFirst {
            page.items.reverse();
        }
        Ok(page)
    }
}

#[async_trait]
impl ProfileStore for Broken {
    async fn get_profile(&self, t: TenantId, c: CustomerId) -> Result<Profile> {
        if self.flaw == Flaw::SkipsProfiles {
            return Ok(Profile::default());
        }
        self.inner.get_profile(self.tenant(t), c).await
    }
}

#[async_trait]
impl ValueStore for Broken {
    async fn set_value_scores(&self, t: TenantId, s: Vec<(CustomerId, ValueScores)>) -> Result<()> {
        self.inner.set_value_scores(self.tenant(t), s).await
    }
    async fn value_scores(&self, t: TenantId, c: CustomerId) -> Result<Option<ValueScores>> {
        self.inner.value_scores(self.tenant(t), c).await
    }
    async fn save_value_model(&self, t: TenantId, m: &ValueModel) -> Result<()> {
        self.inner.save_value_model(self.tenant(t), m).await
    }
    async fn latest_value_model(&self, t: TenantId) -> Result<Option<ValueModel>> {
        self.inner.latest_value_model(self.tenant(t)).await
    }
    async fn set_value_classes(
        &self,
        t: TenantId,
        c: Vec<(CustomerId, ValueClasses)>,
    ) -> Result<()> {
        self.inner.set_value_classes(self.tenant(t), c).await
    }
    async fn value_classes(&self, t: TenantId, c: CustomerId) -> Result<Option<ValueClasses>> {
        self.inner.value_classes(self.tenant(t), c).await
    }
}

#[async_trait]
impl SegmentStore for Broken {
    async fn find_matching(
        &self,
        t: TenantId,
        r: &Rule,
        s: &FieldSchema,
        now: chrono::DateTime<chrono::Utc>,
        p: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        self.inner.find_matching(self.tenant(t), r, s, now, p).await
    }
    async fn count_matching(
        &self,
        t: TenantId,
        r: &Rule,
        s: &FieldSchema,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.inner.count_matching(self.tenant(t), r, s, now).await
    }
    async fn save_segment(&self, t: TenantId, s: &Segment) -> Result<()> {
        self.inner.save_segment(self.tenant(t), s).await
    }
    async fn get_segment(&self, t: TenantId, id: SegmentId) -> Result<Segment> {
        self.inner.get_segment(self.tenant(t), id).await
    }
    async fn list_segments(&self, t: TenantId) -> Result<Vec<Segment>> {
        self.inner.list_segments(self.tenant(t)).await
    }
    async fn refresh_segment(
        &self,
        t: TenantId,
        id: SegmentId,
        s: &FieldSchema,
        now: chrono::DateTime<chrono::Utc>,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<MembershipChange> {
        self.inner
            .refresh_segment(self.tenant(t), id, s, now, at)
            .await
    }
    async fn change_static_members(
        &self,
        t: TenantId,
        id: SegmentId,
        add: Vec<CustomerId>,
        remove: Vec<CustomerId>,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<MembershipChange> {
        self.inner
            .change_static_members(self.tenant(t), id, add, remove, at)
            .await
    }
    async fn segment_members(
        &self,
        t: TenantId,
        id: SegmentId,
        p: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        self.inner.segment_members(self.tenant(t), id, p).await
    }
    async fn is_member(&self, t: TenantId, id: SegmentId, c: CustomerId) -> Result<bool> {
        self.inner.is_member(self.tenant(t), id, c).await
    }
    async fn segments_of(&self, t: TenantId, c: CustomerId) -> Result<Vec<SegmentId>> {
        self.inner.segments_of(self.tenant(t), c).await
    }
}

type Instant = chrono::DateTime<chrono::Utc>;

#[async_trait]
impl OutboxStore for Broken {
    async fn enqueue(&self, t: TenantId, m: Vec<OutboxMessage>) -> Result<EnqueueReport> {
        self.inner.enqueue(self.tenant(t), m).await
    }
    async fn claim(&self, t: TenantId, now: Instant, lease: Lease, n: u32) -> Result<Vec<Claimed>> {
        let t = self.tenant(t);
        if self.flaw != Flaw::IgnoresLeases {
            return self.inner.claim(t, now, lease, n).await;
        }
        // Every pending message, leased or not, due or not.
        let far = now + chrono::Duration::days(365_000);
        let mut out = self.inner.claim(t, far, lease, u32::MAX).await?;
        out.truncate(n as usize);
        Ok(out)
    }
    async fn mark_sent(&self, t: TenantId, id: MessageId, l: Lease, at: Instant) -> Result<()> {
        self.inner.mark_sent(self.tenant(t), id, l, at).await
    }
    async fn mark_failed(
        &self,
        t: TenantId,
        id: MessageId,
        l: Lease,
        e: &str,
        at: Option<Instant>,
    ) -> Result<()> {
        self.inner.mark_failed(self.tenant(t), id, l, e, at).await
    }
    async fn release(&self, t: TenantId, id: MessageId, l: Lease) -> Result<()> {
        self.inner.release(self.tenant(t), id, l).await
    }
    async fn outbox_message(&self, t: TenantId, id: MessageId) -> Result<OutboxMessage> {
        self.inner.outbox_message(self.tenant(t), id).await
    }
    async fn dead_letters(&self, t: TenantId, p: &PageRequest) -> Result<Page<OutboxMessage>> {
        self.inner.dead_letters(self.tenant(t), p).await
    }
    async fn requeue(&self, t: TenantId, id: MessageId, now: Instant) -> Result<()> {
        self.inner.requeue(self.tenant(t), id, now).await
    }
    async fn pending_count(&self, t: TenantId) -> Result<u64> {
        self.inner.pending_count(self.tenant(t)).await
    }
}

#[async_trait]
impl crm_core::CaseStore for Broken {
    async fn insert_case(&self, t: TenantId, c: &Case, o: WriteOptions) -> Result<()> {
        let o = self.outbox(t, o).await?;
        self.inner.insert_case(self.tenant(t), c, o).await
    }
    async fn get_case(&self, t: TenantId, id: crm_core::CaseId) -> Result<Case> {
        self.inner.get_case(self.tenant(t), id).await
    }
    async fn update_case(
        &self,
        t: TenantId,
        c: &Case,
        expected: u64,
        o: WriteOptions,
    ) -> Result<()> {
        let o = self.outbox(t, o).await?;
        let expected = if self.flaw == Flaw::IgnoresVersion {
            self.inner.get_case(self.tenant(t), c.id).await?.version
        } else {
            expected
        };
        self.inner.update_case(self.tenant(t), c, expected, o).await
    }
    async fn list_cases(&self, t: TenantId, q: &CaseQuery, p: &PageRequest) -> Result<Page<Case>> {
        self.inner.list_cases(self.tenant(t), q, p).await
    }
}

#[async_trait]
impl crm_core::TaskStore for Broken {
    async fn insert_task(&self, t: TenantId, task: &Task) -> Result<()> {
        self.inner.insert_task(self.tenant(t), task).await
    }
    async fn get_task(&self, t: TenantId, id: crm_core::TaskId) -> Result<Task> {
        self.inner.get_task(self.tenant(t), id).await
    }
    async fn update_task(
        &self,
        t: TenantId,
        task: &Task,
        expected: u64,
        o: WriteOptions,
    ) -> Result<()> {
        let o = self.outbox(t, o).await?;
        let expected = if self.flaw == Flaw::IgnoresVersion {
            self.inner.get_task(self.tenant(t), task.id).await?.version
        } else {
            expected
        };
        self.inner
            .update_task(self.tenant(t), task, expected, o)
            .await
    }
    async fn list_tasks(&self, t: TenantId, q: &TaskQuery, p: &PageRequest) -> Result<Page<Task>> {
        self.inner.list_tasks(self.tenant(t), q, p).await
    }
}

#[async_trait]
impl crm_core::AccessStore for Broken {
    async fn put_grant(&self, t: TenantId, g: &Grant) -> Result<()> {
        self.inner.put_grant(self.tenant(t), g).await
    }
    async fn revoke_grant(
        &self,
        t: TenantId,
        c: CustomerId,
        to: Grantee,
        by: Option<crm_core::UserId>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        self.inner.revoke_grant(self.tenant(t), c, to, by, at).await
    }
    async fn grants_on(&self, t: TenantId, c: CustomerId) -> Result<Vec<Grant>> {
        self.inner.grants_on(self.tenant(t), c).await
    }
    async fn grants_to(
        &self,
        t: TenantId,
        u: crm_core::UserId,
        unit: Option<crm_core::TeamId>,
        limit: usize,
    ) -> Result<Vec<Grant>> {
        self.inner.grants_to(self.tenant(t), u, unit, limit).await
    }
    async fn put_sharing_rule(&self, t: TenantId, r: &SharingRule) -> Result<()> {
        self.inner.put_sharing_rule(self.tenant(t), r).await
    }
    async fn delete_sharing_rule(&self, t: TenantId, name: &str) -> Result<()> {
        self.inner.delete_sharing_rule(self.tenant(t), name).await
    }
    async fn sharing_rules(&self, t: TenantId) -> Result<Vec<SharingRule>> {
        self.inner.sharing_rules(self.tenant(t)).await
    }
    async fn record_access(
        &self,
        t: TenantId,
        e: &crm_core::access::AccessEntry,
        limit: Option<u64>,
    ) -> Result<Option<u64>> {
        self.inner.record_access(self.tenant(t), e, limit).await
    }
    async fn access_log(
        &self,
        t: TenantId,
        u: Option<crm_core::UserId>,
        since: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<crm_core::access::AccessEntry>> {
        self.inner.access_log(self.tenant(t), u, since, limit).await
    }
    async fn daily_usage(
        &self,
        t: TenantId,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<crm_core::access::DailyUsage>> {
        self.inner.daily_usage(self.tenant(t), from, to).await
    }
}

#[async_trait]
impl crm_core::KpiRuleStore for Broken {
    async fn insert_kpi_rule(&self, t: TenantId, r: &KpiRule) -> Result<()> {
        self.inner.insert_kpi_rule(self.tenant(t), r).await
    }
    async fn update_kpi_rule(&self, t: TenantId, r: &KpiRule, v: u64) -> Result<()> {
        let v = if self.flaw == Flaw::IgnoresVersion {
            let key = r.key.clone();
            let all = self.inner.kpi_rules(self.tenant(t)).await?;
            all.into_iter()
                .find(|s| s.rule.key == key)
                .map_or(v, |s| s.version)
        } else {
            v
        };
        self.inner.update_kpi_rule(self.tenant(t), r, v).await
    }
    async fn delete_kpi_rule(&self, t: TenantId, key: &TemplateName) -> Result<()> {
        self.inner.delete_kpi_rule(self.tenant(t), key).await
    }
    async fn kpi_rules(&self, t: TenantId) -> Result<Vec<StoredKpiRule>> {
        self.inner.kpi_rules(self.tenant(t)).await
    }
}

#[async_trait]
impl crm_core::ScheduleStore for Broken {
    async fn due_entries(
        &self,
        t: TenantId,
        kind: DueKind,
        until: chrono::DateTime<chrono::Utc>,
        page: &PageRequest,
    ) -> Result<Page<DueEntry>> {
        self.inner
            .due_entries(self.tenant(t), kind, until, page)
            .await
    }
    async fn reschedule(
        &self,
        t: TenantId,
        kind: DueKind,
        entries: &[Reschedule],
    ) -> Result<usize> {
        self.inner.reschedule(self.tenant(t), kind, entries).await
    }
    async fn schedule_basis(&self, t: TenantId, kind: DueKind) -> Result<Option<String>> {
        self.inner.schedule_basis(self.tenant(t), kind).await
    }
    async fn reset_schedule(&self, t: TenantId, kind: DueKind, basis: &str) -> Result<u64> {
        self.inner.reset_schedule(self.tenant(t), kind, basis).await
    }
}

#[async_trait]
impl crm_core::SalesStore for Broken {
    async fn insert_pipeline(&self, t: TenantId, p: &Pipeline) -> Result<()> {
        self.inner.insert_pipeline(self.tenant(t), p).await
    }
    async fn update_pipeline(&self, t: TenantId, p: &Pipeline, v: u64) -> Result<()> {
        self.inner.update_pipeline(self.tenant(t), p, v).await
    }
    async fn get_pipeline(&self, t: TenantId, id: PipelineId) -> Result<Pipeline> {
        self.inner.get_pipeline(self.tenant(t), id).await
    }
    async fn pipelines(&self, t: TenantId) -> Result<Vec<Pipeline>> {
        self.inner.pipelines(self.tenant(t)).await
    }
    async fn insert_opportunity(
        &self,
        t: TenantId,
        d: &Opportunity,
        c: &StageChange,
        o: WriteOptions,
    ) -> Result<()> {
        let o = self.outbox(t, o).await?;
        self.inner.insert_opportunity(self.tenant(t), d, c, o).await
    }
    async fn get_opportunity(&self, t: TenantId, id: OpportunityId) -> Result<Opportunity> {
        self.inner.get_opportunity(self.tenant(t), id).await
    }
    async fn update_opportunity(
        &self,
        t: TenantId,
        d: &Opportunity,
        v: u64,
        c: &[StageChange],
        o: WriteOptions,
    ) -> Result<()> {
        let v = if self.flaw == Flaw::IgnoresVersion {
            self.inner
                .get_opportunity(self.tenant(t), d.id)
                .await
                .map_or(v, |s| s.version)
        } else {
            v
        };
        let o = self.outbox(t, o).await?;
        self.inner
            .update_opportunity(self.tenant(t), d, v, c, o)
            .await
    }
    async fn list_opportunities(
        &self,
        t: TenantId,
        q: &OpportunityQuery,
        p: &PageRequest,
    ) -> Result<Page<Opportunity>> {
        self.inner.list_opportunities(self.tenant(t), q, p).await
    }
    async fn stage_history(
        &self,
        t: TenantId,
        id: OpportunityId,
        p: &PageRequest,
    ) -> Result<Page<StageChange>> {
        self.inner.stage_history(self.tenant(t), id, p).await
    }
    async fn forecast_cells(&self, t: TenantId, q: &ForecastQuery) -> Result<Vec<ForecastCell>> {
        self.inner.forecast_cells(self.tenant(t), q).await
    }
    async fn funnel(
        &self,
        t: TenantId,
        q: &FunnelQuery,
        p: &Pipeline,
    ) -> Result<(Vec<FunnelCell>, Vec<StageTime>)> {
        self.inner.funnel(self.tenant(t), q, p).await
    }
}

fn fails(flaw: Flaw, case: CaseFn) -> bool {
    let setup = move || async move {
        let store: Arc<dyn Storage> = Arc::new(Broken {
            inner: MemoryStore::new(),
            flaw,
        });
        Fixture::new(store)
    };
    catch_unwind(AssertUnwindSafe(|| run_case(setup, case))).is_err()
}

fn failing_cases(flaw: Flaw) -> Vec<&'static str> {
    all_cases()
        .into_iter()
        .filter(|(_, case)| fails(flaw, *case))
        .map(|(name, _)| name)
        .collect()
}

fn case(name: &str) -> CaseFn {
    all_cases()
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("known case")
        .1
}

#[test]
fn tenant_blind_adapter_fails_the_isolation_cases() {
    let failing = failing_cases(Flaw::IgnoresTenant);
    for must in [
        "tenant_isolation_on_reads",
        "tenant_isolation_on_writes",
        "same_ids_in_two_tenants_are_independent",
        "same_key_in_other_tenant_is_independent",
        "value_scores_are_tenant_isolated",
        "value_models_latest_per_tenant",
        "pipelines_round_trip_and_keep_their_stages",
        "opportunities_move_through_stages_with_history",
        "forecasts_are_exact_per_currency",
    ] {
        assert!(
            failing.contains(&must),
            "{must} passed on a tenant-blind adapter; failing: {failing:?}"
        );
    }
}

#[test]
fn version_blind_adapter_fails_the_concurrency_cases() {
    assert!(fails(
        Flaw::IgnoresVersion,
        case("stale_update_is_conflict")
    ));
    assert!(fails(
        Flaw::IgnoresVersion,
        case("concurrent_updates_exactly_one_wins")
    ));
    assert!(fails(
        Flaw::IgnoresVersion,
        case("concurrent_case_changes_exactly_one_wins")
    ));
    assert!(fails(
        Flaw::IgnoresVersion,
        case("won_deals_hand_over_an_order_once")
    ));
}

#[test]
fn adapter_without_profiles_or_atomic_batches_fails() {
    assert!(fails(
        Flaw::SkipsProfiles,
        case("profiles_equal_rebuild_after_every_batch")
    ));
    assert!(fails(
        Flaw::SkipsProfiles,
        case("interaction_for_unknown_customer_is_not_found")
    ));
    assert!(fails(
        Flaw::SkipsProfiles,
        case("reused_interaction_id_is_duplicate")
    ));
}

#[test]
fn oldest_first_timeline_fails_the_order_case() {
    assert!(fails(Flaw::OldestFirst, case("timeline_is_newest_first")));
}

#[test]
fn lease_blind_outbox_fails_the_claim_cases() {
    for must in [
        "outbox_claims_due_messages_in_priority_order",
        "outbox_concurrent_claims_never_share_a_message",
    ] {
        assert!(fails(Flaw::IgnoresLeases, case(must)), "{must} passed");
    }
}

#[test]
fn outbox_outside_the_transaction_fails_the_commit_case() {
    assert!(fails(
        Flaw::OutboxOutsideTransaction,
        case("changes_and_their_outbox_messages_commit_together")
    ));
    assert!(fails(
        Flaw::OutboxOutsideTransaction,
        case("won_deals_hand_over_an_order_once")
    ));
}

#[test]
fn the_reference_store_passes_where_the_broken_ones_fail() {
    let setup = || async { Fixture::new(Arc::new(MemoryStore::new())) };
    run_case(setup, case("tenant_isolation_on_reads"));
}
