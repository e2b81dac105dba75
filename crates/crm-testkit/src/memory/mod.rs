//! [`MemoryStore`]: the in-memory reference implementation of every storage port.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::audit::AuditEntry;
use crm_core::case::{Case, CaseQuery};
use crm_core::handover::HandOver;
use crm_core::kpi::{KpiRule, StoredKpiRule};
use crm_core::merge::CustomerMerge;
use crm_core::notify::events::membership_events;
use crm_core::notify::TemplateName;
use crm_core::notify::{Claimed, EnqueueReport, Lease, MessageState, OutboxMessage};
use crm_core::ports::stored::{check_messages, lease_lost, not_dead};
use crm_core::profile::deltas;
use crm_core::segment::{CompiledRule, FieldSchema, MembershipChange, Rule, Segment, Subject};
use crm_core::task::{Task, TaskQuery, TaskSubject};
use crm_core::WriteOptions;
use crm_core::{
    BatchReport, CaseId, CaseStore, Cursor, Customer, CustomerId, CustomerQuery, CustomerStore,
    Error, ExternalRef, Interaction, InteractionId, InteractionStore, KpiRuleStore, MessageId,
    OutboxStore, OwnershipChange, Page, PageRequest, Profile, ProfileStore, Result, SegmentId,
    SegmentStore, TaskId, TaskStore, TenantId, ValueClasses, ValueModel, ValueScores, ValueStore,
};

type Key<T> = (TenantId, T);

mod access;
mod accounts;
mod outbox;
mod sales;
mod schedule;
mod segments;
mod work;

#[derive(Default)]
struct State {
    customers: BTreeMap<Key<CustomerId>, Customer>,
    customer_refs: HashMap<Key<ExternalRef>, CustomerId>,
    ownership: HashMap<Key<CustomerId>, Vec<OwnershipChange>>,
    interactions: HashMap<Key<InteractionId>, Interaction>,
    interaction_keys: HashMap<Key<ExternalRef>, InteractionId>,
    timelines: HashMap<Key<CustomerId>, BTreeSet<(DateTime<Utc>, InteractionId)>>,
    profiles: HashMap<Key<CustomerId>, Profile>,
    scores: HashMap<Key<CustomerId>, ValueScores>,
    classes: HashMap<Key<CustomerId>, ValueClasses>,
    models: BTreeMap<Key<DateTime<Utc>>, ValueModel>,
    segments: BTreeMap<Key<SegmentId>, Segment>,
    members: BTreeMap<Key<SegmentId>, BTreeSet<CustomerId>>,
    outbox: BTreeMap<Key<MessageId>, (OutboxMessage, Option<Lease>)>,
    outbox_keys: HashSet<Key<String>>,
    outbox_seq: HashMap<TenantId, u64>,
    cases: BTreeMap<Key<CaseId>, Case>,
    tasks: BTreeMap<Key<TaskId>, Task>,
    kpi_rules: BTreeMap<Key<TemplateName>, StoredKpiRule>,
    redirects: HashMap<Key<CustomerId>, CustomerId>,
    horizons: HashMap<TenantId, DateTime<Utc>>,
    audit: BTreeMap<(TenantId, CustomerId, u64), AuditEntry>,
    grants: HashMap<TenantId, Vec<crm_core::access::Grant>>,
    sharing_rules: BTreeMap<Key<String>, crm_core::access::SharingRule>,
    access_log: HashMap<TenantId, Vec<crm_core::access::AccessEntry>>,
    usage: BTreeMap<access::UsageKey, u64>,
    sales: sales::SalesState,
    accounts: accounts::AccountState,
    schedule: schedule::ScheduleState,
}

/// Every storage port in memory, behind one mutex: the reference the conformance suite is
/// written against, and a store for host tests. All changes are atomic (one lock held).
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl crm_core::Backend for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    /// Every capability.
    fn capabilities(&self) -> crm_core::Capabilities {
        crm_core::Capabilities::ALL
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn not_found(id: CustomerId) -> Error {
    Error::not_found("customer", id)
}

impl State {
    /// NotFound for the first entry whose customer the tenant does not have.
    fn check_customers<T>(&self, tenant: TenantId, entries: &[(CustomerId, T)]) -> Result<()> {
        match entries
            .iter()
            .find(|(c, _)| !self.customers.contains_key(&(tenant, *c)))
        {
            Some((missing, _)) => Err(not_found(*missing)),
            None => Ok(()),
        }
    }

    /// What the rule language reads of a customer's accounts and deals.
    fn sales_facts(&self, tenant: TenantId, id: CustomerId) -> crm_core::segment::SalesFacts {
        let account = self.accounts.primary_of(tenant, id);
        crm_core::segment::SalesFacts {
            contacts: self.accounts.contacts(tenant, id).len() as u64,
            account,
            account_revenue: account
                .and_then(|a| self.profiles.get(&(tenant, a)))
                .map(|p| p.revenue.clone())
                .unwrap_or_default(),
            open_deals: self.sales.open_deals_of(tenant, id),
        }
    }

    /// Ids of the tenant's customers the rule is true for, in id order.
    fn matching(
        &self,
        tenant: TenantId,
        rule: &Rule,
        schema: &FieldSchema,
        now: DateTime<Utc>,
    ) -> Result<Vec<CustomerId>> {
        let compiled = CompiledRule::new(rule, schema)?;
        let empty = Profile::default();
        Ok(self
            .customers
            .range((tenant, CustomerId::from_bytes([0; 16]))..)
            .take_while(|((t, _), _)| *t == tenant)
            .filter(|((_, id), c)| {
                // Read only for rules that use them.
                let facts = compiled
                    .reads_sales()
                    .then(|| self.sales_facts(tenant, *id));
                let subject = Subject {
                    customer: c,
                    profile: self.profiles.get(&(tenant, *id)).unwrap_or(&empty),
                    scores: self.scores.get(&(tenant, *id)),
                    classes: self.classes.get(&(tenant, *id)),
                    sales: facts.as_ref(),
                };
                compiled.matches(&subject, now)
            })
            .map(|((_, id), _)| *id)
            .collect())
    }

    fn segment(&self, tenant: TenantId, id: SegmentId) -> Result<&Segment> {
        self.segments
            .get(&(tenant, id))
            .ok_or_else(|| Error::not_found("segment", id))
    }

    /// Replaces a segment's members, returning the change.
    fn replace_members(
        &mut self,
        tenant: TenantId,
        id: SegmentId,
        now: BTreeSet<CustomerId>,
    ) -> MembershipChange {
        let before = self.members.remove(&(tenant, id)).unwrap_or_default();
        let change = MembershipChange::between(&before, &now);
        self.members.insert((tenant, id), now);
        change
    }

    fn check_refs_free(&self, tenant: TenantId, customer: &Customer) -> Result<()> {
        for r in &customer.external_ids {
            if let Some(owner) = self.customer_refs.get(&(tenant, r.clone())) {
                if *owner != customer.id {
                    return Err(Error::Duplicate {
                        entity: "customer",
                        key: format!("external id {r}"),
                    });
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl CustomerStore for MemoryStore {
    async fn insert_customer(
        &self,
        tenant: TenantId,
        customer: &Customer,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let mut s = self.lock();
        s.check_outbox(tenant, &outbox)?;
        if s.customers.contains_key(&(tenant, customer.id)) {
            return Err(Error::Duplicate {
                entity: "customer",
                key: format!("id {}", customer.id),
            });
        }
        s.check_refs_free(tenant, customer)?;
        for r in &customer.external_ids {
            s.customer_refs.insert((tenant, r.clone()), customer.id);
        }
        s.customers.insert((tenant, customer.id), customer.clone());
        s.profiles.insert((tenant, customer.id), Profile::default());
        s.audit.insert(
            (tenant, customer.id, customer.version),
            AuditEntry::created(customer),
        );
        s.write_outbox(tenant, outbox);
        Ok(())
    }

    async fn insert_customers(
        &self,
        tenant: TenantId,
        customers: Vec<Customer>,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let mut s = self.lock();
        s.check_outbox(tenant, &outbox)?;
        // Check everything against the store and the batch itself before writing.
        let mut ids = BTreeSet::new();
        let mut refs = BTreeSet::new();
        for c in &customers {
            if s.customers.contains_key(&(tenant, c.id)) || !ids.insert(c.id) {
                return Err(Error::Duplicate {
                    entity: "customer",
                    key: format!("id {}", c.id),
                });
            }
            s.check_refs_free(tenant, c)?;
            for r in &c.external_ids {
                if !refs.insert(r.clone()) {
                    return Err(Error::Duplicate {
                        entity: "customer",
                        key: format!("external id {r}"),
                    });
                }
            }
        }
        for c in customers {
            for r in &c.external_ids {
                s.customer_refs.insert((tenant, r.clone()), c.id);
            }
            s.profiles.insert((tenant, c.id), Profile::default());
            s.audit
                .insert((tenant, c.id, c.version), AuditEntry::created(&c));
            s.customers.insert((tenant, c.id), c);
        }
        s.write_outbox(tenant, outbox);
        Ok(())
    }

    async fn get_customer(&self, tenant: TenantId, id: CustomerId) -> Result<Customer> {
        self.lock()
            .customers
            .get(&(tenant, id))
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    async fn update_customer(
        &self,
        tenant: TenantId,
        customer: &Customer,
        expected_version: u64,
        options: WriteOptions,
    ) -> Result<()> {
        let (audit, ownership, outbox) = options.into_parts()?;
        let mut s = self.lock();
        s.check_outbox(tenant, &outbox)?;
        let current = s
            .customers
            .get(&(tenant, customer.id))
            .ok_or_else(|| not_found(customer.id))?;
        if current.version != expected_version {
            return Err(Error::Conflict {
                entity: "customer",
                id: customer.id.to_string(),
                expected: expected_version,
                actual: current.version,
            });
        }
        let old_refs = current.external_ids.clone();
        s.check_refs_free(tenant, customer)?;
        for r in old_refs {
            s.customer_refs.remove(&(tenant, r));
        }
        for r in &customer.external_ids {
            s.customer_refs.insert((tenant, r.clone()), customer.id);
        }
        s.customers.insert((tenant, customer.id), customer.clone());
        for entry in audit {
            s.audit
                .insert((tenant, entry.customer, entry.version), entry);
        }
        if let Some(change) = ownership {
            s.ownership
                .entry((tenant, customer.id))
                .or_default()
                .push(change);
        }
        s.write_outbox(tenant, outbox);
        Ok(())
    }

    async fn list_customers(
        &self,
        tenant: TenantId,
        query: &CustomerQuery,
        page: &PageRequest,
    ) -> Result<Page<Customer>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_customer).transpose()?;
        let s = self.lock();
        let start = (tenant, after.unwrap_or(CustomerId::from_bytes([0; 16])));
        let rows: Vec<Customer> = s
            .customers
            .range(start..)
            .take_while(|((t, _), _)| *t == tenant)
            .filter(|((_, id), _)| Some(*id) != after)
            .map(|(_, c)| c)
            .filter(|c| query.matches(c))
            .take(page.limit as usize + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetch(rows, page.limit, |c| {
            Cursor::customer(c.id)
        }))
    }

    async fn ownership_history(
        &self,
        tenant: TenantId,
        id: CustomerId,
    ) -> Result<Vec<OwnershipChange>> {
        let s = self.lock();
        if !s.customers.contains_key(&(tenant, id)) {
            return Err(not_found(id));
        }
        let mut history = s.ownership.get(&(tenant, id)).cloned().unwrap_or_default();
        history.reverse();
        Ok(history)
    }

    async fn merge_customers(
        &self,
        tenant: TenantId,
        merge: &CustomerMerge,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let mut s = self.lock();
        s.check_outbox(tenant, &outbox)?;
        let survivor = &merge.survivor;
        let expected = std::iter::once((survivor.id, merge.survivor_version))
            .chain(merge.merged.iter().copied());
        for (id, version) in expected {
            let actual = s.customers.get(&(tenant, id)).map(|c| c.version);
            if actual != Some(version) {
                return Err(Error::stale_write("customer", id, version, actual));
            }
        }
        let gone: HashSet<CustomerId> = merge.merged.iter().map(|(id, _)| *id).collect();
        let merged: Vec<CustomerId> = merge.merged.iter().map(|(id, _)| *id).collect();
        let parent = s.accounts.plan_merge(tenant, &merged, survivor.id)?;
        // The merged profile first: totals that overflow refuse the merge before any change.
        let mut profile = s
            .profiles
            .get(&(tenant, survivor.id))
            .cloned()
            .unwrap_or_default();
        for id in &gone {
            if let Some(p) = s.profiles.get(&(tenant, *id)) {
                profile.merge(p)?;
            }
        }
        // External ids: free those of every record involved, then check the survivor's.
        for id in std::iter::once(survivor.id).chain(gone.iter().copied()) {
            let refs = s.customers[&(tenant, id)].external_ids.clone();
            for r in refs {
                s.customer_refs.remove(&(tenant, r));
            }
        }
        if let Err(e) = s.check_refs_free(tenant, survivor) {
            // Put the freed ids back: nothing changes.
            for id in std::iter::once(survivor.id).chain(gone.iter().copied()) {
                let refs = s.customers[&(tenant, id)].external_ids.clone();
                for r in refs {
                    s.customer_refs.insert((tenant, r), id);
                }
            }
            return Err(e);
        }
        for r in &survivor.external_ids {
            s.customer_refs.insert((tenant, r.clone()), survivor.id);
        }
        s.customers.insert((tenant, survivor.id), survivor.clone());
        for id in &gone {
            s.customers.remove(&(tenant, *id));
            s.profiles.remove(&(tenant, *id));
            s.scores.remove(&(tenant, *id));
            s.classes.remove(&(tenant, *id));
            if let Some(timeline) = s.timelines.remove(&(tenant, *id)) {
                for (_, iid) in &timeline {
                    if let Some(i) = s.interactions.get_mut(&(tenant, *iid)) {
                        i.customer = survivor.id;
                    }
                }
                s.timelines
                    .entry((tenant, survivor.id))
                    .or_default()
                    .extend(timeline);
            }
            s.redirects.insert((tenant, *id), survivor.id);
        }
        s.profiles.insert((tenant, survivor.id), profile);
        for (key, target) in s.redirects.iter_mut() {
            if key.0 == tenant && gone.contains(target) {
                *target = survivor.id;
            }
        }
        for ((t, _), case) in s.cases.iter_mut() {
            if *t == tenant && gone.contains(&case.customer) {
                case.customer = survivor.id;
            }
        }
        for ((t, _), task) in s.tasks.iter_mut() {
            if *t == tenant {
                if let TaskSubject::Customer(c) = task.subject {
                    if gone.contains(&c) {
                        task.subject = TaskSubject::Customer(survivor.id);
                    }
                }
            }
        }
        s.sales.merge_parties(tenant, &merged, survivor.id);
        s.accounts.merge(tenant, &merged, survivor.id, parent);
        for ((t, _), members) in s.members.iter_mut() {
            if *t == tenant && members.iter().any(|m| gone.contains(m)) {
                members.retain(|m| !gone.contains(m));
                members.insert(survivor.id);
            }
        }
        for entry in &merge.audit {
            s.audit
                .insert((tenant, entry.customer, entry.version), entry.clone());
        }
        s.write_outbox(tenant, outbox);
        Ok(())
    }

    async fn redirect(&self, tenant: TenantId, id: CustomerId) -> Result<Option<CustomerId>> {
        Ok(self.lock().redirects.get(&(tenant, id)).copied())
    }

    async fn hand_over(
        &self,
        tenant: TenantId,
        plan: &HandOver,
        options: WriteOptions,
    ) -> Result<()> {
        self.apply_hand_over(tenant, plan, options)
    }

    async fn audit_history(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>> {
        let before = crm_core::audit::page_before(page)?;
        let s = self.lock();
        let items: Vec<AuditEntry> = s
            .audit
            .range((tenant, customer, 0)..(tenant, customer, before))
            .rev()
            .take(page.limit as usize + 1)
            .map(|(_, e)| e.clone())
            .collect();
        Ok(Page::from_overfetch(items, page.limit, |e| {
            Cursor::audit(e.version)
        }))
    }

    async fn erase_customer(
        &self,
        tenant: TenantId,
        erased: &Customer,
        expected_version: u64,
        options: WriteOptions,
    ) -> Result<()> {
        let (audit, outbox) = options.into_audited()?;
        let mut s = self.lock();
        s.check_outbox(tenant, &outbox)?;
        let id = erased.id;
        let current = s.customers.get(&(tenant, id)).map(|c| c.version);
        if current != Some(expected_version) {
            return Err(Error::stale_write(
                "customer",
                id,
                expected_version,
                current,
            ));
        }
        let refs = s.customers[&(tenant, id)].external_ids.clone();
        for r in refs {
            s.customer_refs.remove(&(tenant, r));
        }
        s.check_refs_free(tenant, erased)?;
        for r in &erased.external_ids {
            s.customer_refs.insert((tenant, r.clone()), id);
        }
        s.customers.insert((tenant, id), erased.clone());
        s.accounts.anonymise(tenant, id);
        let timeline: Vec<InteractionId> = s
            .timelines
            .get(&(tenant, id))
            .map(|t| t.iter().map(|(_, i)| *i).collect())
            .unwrap_or_default();
        for iid in timeline {
            if let Some(i) = s.interactions.get_mut(&(tenant, iid)) {
                i.subject = None;
                i.body = None;
                i.attributes = crm_core::Attributes::new();
            }
        }
        let mut cases = HashSet::new();
        for ((t, cid), case) in s.cases.iter_mut() {
            if *t == tenant && case.customer == id {
                crm_core::privacy::erase_case(case);
                cases.insert(*cid);
            }
        }
        for ((t, _), task) in s.tasks.iter_mut() {
            let about = match task.subject {
                TaskSubject::Customer(c) => c == id,
                TaskSubject::Case(c) => cases.contains(&c),
            };
            if *t == tenant && about {
                crm_core::privacy::erase_task(task);
            }
        }
        // The customer's own history, and that of customers merged into it.
        let mut same: HashSet<CustomerId> = s
            .redirects
            .iter()
            .filter(|(k, to)| k.0 == tenant && **to == id)
            .map(|(k, _)| k.1)
            .collect();
        same.insert(id);
        for ((t, c), history) in s.ownership.iter_mut() {
            if *t == tenant && same.contains(c) {
                for change in history {
                    change.reason = None;
                }
            }
        }
        for ((t, c, _), entry) in s.audit.iter_mut() {
            if *t == tenant && same.contains(c) {
                *entry = entry.scrubbed();
            }
        }
        for entry in audit {
            s.audit
                .insert((tenant, entry.customer, entry.version), entry);
        }
        s.write_outbox(tenant, outbox);
        Ok(())
    }
}

#[async_trait]
impl InteractionStore for MemoryStore {
    async fn append_interactions(
        &self,
        tenant: TenantId,
        batch: Vec<Interaction>,
        options: WriteOptions,
    ) -> Result<BatchReport> {
        let outbox = options.into_outbox()?;
        let mut s = self.lock();
        s.check_outbox(tenant, &outbox)?;
        // Check everything before changing anything: all or nothing.
        let total = batch.len();
        let mut seen_keys = BTreeSet::new();
        let mut seen_ids = BTreeSet::new();
        let mut fresh = Vec::with_capacity(batch.len());
        for row in batch {
            if !s.customers.contains_key(&(tenant, row.customer)) {
                return Err(not_found(row.customer));
            }
            let known = s.interaction_keys.contains_key(&(tenant, row.key.clone()));
            if known || !seen_keys.insert(row.key.clone()) {
                continue;
            }
            if s.interactions.contains_key(&(tenant, row.id)) || !seen_ids.insert(row.id) {
                return Err(Error::Duplicate {
                    entity: "interaction",
                    key: format!("id {}", row.id),
                });
            }
            fresh.push(row);
        }
        let report = BatchReport {
            inserted: fresh.len(),
            duplicates: total - fresh.len(),
        };
        // Every new profile is computed before anything changes: totals that overflow
        // refuse the whole batch.
        let mut updated = Vec::new();
        for (customer, delta) in deltas(&fresh)? {
            let mut p = s
                .profiles
                .get(&(tenant, customer))
                .cloned()
                .unwrap_or_default();
            p.merge(&delta)?;
            updated.push(((tenant, customer), p));
        }
        s.profiles.extend(updated);
        for row in fresh {
            s.interaction_keys.insert((tenant, row.key.clone()), row.id);
            s.timelines
                .entry((tenant, row.customer))
                .or_default()
                .insert((row.occurred_at, row.id));
            s.interactions.insert((tenant, row.id), row);
        }
        s.write_outbox(tenant, outbox);
        Ok(report)
    }

    async fn archive_interactions(
        &self,
        tenant: TenantId,
        before: DateTime<Utc>,
        recorded_up_to: DateTime<Utc>,
    ) -> Result<u64> {
        let mut s = self.lock();
        let horizon = s.horizons.entry(tenant).or_insert(before);
        *horizon = (*horizon).max(before);
        let gone: Vec<Interaction> = s
            .interactions
            .iter()
            .filter(|((t, _), i)| {
                *t == tenant && i.occurred_at < before && i.recorded_at <= recorded_up_to
            })
            .map(|(_, i)| i.clone())
            .collect();
        for i in &gone {
            s.interactions.remove(&(tenant, i.id));
            s.interaction_keys.remove(&(tenant, i.key.clone()));
            if let Some(t) = s.timelines.get_mut(&(tenant, i.customer)) {
                t.remove(&(i.occurred_at, i.id));
            }
        }
        Ok(gone.len() as u64)
    }

    async fn archive_horizon(&self, tenant: TenantId) -> Result<Option<DateTime<Utc>>> {
        Ok(self.lock().horizons.get(&tenant).copied())
    }

    async fn interactions_between(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<Interaction>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_timeline).transpose()?;
        let s = self.lock();
        let mut rows: Vec<&Interaction> = s
            .interactions
            .iter()
            .filter(|((t, _), i)| *t == tenant && i.occurred_at >= from && i.occurred_at < to)
            .map(|(_, i)| i)
            .filter(|i| after.is_none_or(|pos| (i.occurred_at, i.id) > pos))
            .collect();
        rows.sort_by_key(|i| (i.occurred_at, i.id));
        let rows: Vec<Interaction> = rows
            .into_iter()
            .take(page.limit as usize + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetch(rows, page.limit, |i| {
            Cursor::timeline(i.occurred_at, i.id)
        }))
    }

    async fn timeline(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<Interaction>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_timeline).transpose()?;
        let s = self.lock();
        if !s.customers.contains_key(&(tenant, customer)) {
            return Err(not_found(customer));
        }
        let empty = BTreeSet::new();
        let entries = s.timelines.get(&(tenant, customer)).unwrap_or(&empty);
        let rows: Vec<Interaction> = match after {
            Some(pos) => Box::new(entries.range(..pos).rev()) as Box<dyn Iterator<Item = _>>,
            None => Box::new(entries.iter().rev()),
        }
        .take(page.limit as usize + 1)
        .map(|(_, id)| s.interactions[&(tenant, *id)].clone())
        .collect();
        Ok(Page::from_overfetch(rows, page.limit, |i| {
            Cursor::timeline(i.occurred_at, i.id)
        }))
    }
}

#[async_trait]
impl ProfileStore for MemoryStore {
    async fn get_profile(&self, tenant: TenantId, customer: CustomerId) -> Result<Profile> {
        self.lock()
            .profiles
            .get(&(tenant, customer))
            .cloned()
            .ok_or_else(|| not_found(customer))
    }
}

#[async_trait]
impl ValueStore for MemoryStore {
    async fn set_value_scores(
        &self,
        tenant: TenantId,
        scores: Vec<(CustomerId, ValueScores)>,
    ) -> Result<()> {
        let mut s = self.lock();
        s.check_customers(tenant, &scores)?;
        s.scores
            .extend(scores.into_iter().map(|(c, v)| ((tenant, c), v)));
        Ok(())
    }

    async fn value_scores(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Option<ValueScores>> {
        let s = self.lock();
        if !s.customers.contains_key(&(tenant, customer)) {
            return Err(not_found(customer));
        }
        Ok(s.scores.get(&(tenant, customer)).copied())
    }

    async fn save_value_model(&self, tenant: TenantId, model: &ValueModel) -> Result<()> {
        let mut s = self.lock();
        let key = (tenant, model.fitted_at);
        if s.models.contains_key(&key) {
            return Err(Error::Duplicate {
                entity: "value model",
                key: format!("fitted_at {}", model.fitted_at),
            });
        }
        s.models.insert(key, model.clone());
        Ok(())
    }

    async fn set_value_classes(
        &self,
        tenant: TenantId,
        classes: Vec<(CustomerId, ValueClasses)>,
    ) -> Result<()> {
        let mut s = self.lock();
        s.check_customers(tenant, &classes)?;
        s.classes
            .extend(classes.into_iter().map(|(c, v)| ((tenant, c), v)));
        Ok(())
    }

    async fn value_classes(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Option<ValueClasses>> {
        let s = self.lock();
        if !s.customers.contains_key(&(tenant, customer)) {
            return Err(not_found(customer));
        }
        Ok(s.classes.get(&(tenant, customer)).copied())
    }

    async fn latest_value_model(&self, tenant: TenantId) -> Result<Option<ValueModel>> {
        let s = self.lock();
        Ok(s.models
            .range((tenant, DateTime::<Utc>::MIN_UTC)..=(tenant, DateTime::<Utc>::MAX_UTC))
            .next_back()
            .map(|(_, m)| m.clone()))
    }
}
