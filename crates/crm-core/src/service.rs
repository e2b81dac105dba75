//! The use-case facade a host calls: [`Crm`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tracing::instrument;

use crate::audit::{field_changes, AuditChange, AuditEntry};
use crate::case::{Case, CaseEvent, CaseEventKind, CaseQuery, CaseStatus};
use crate::clock::{truncate_to_micros, Clock, SystemClock};
use crate::clv::{ValueClasses, ValueModel, ValueScores};
use crate::customer::{Customer, CustomerQuery, OwnershipChange};
use crate::error::{Error, Result};
use crate::id::{CaseId, CustomerId, MessageId, TaskId, TenantId, UserId};
use crate::interaction::{BatchReport, Interaction};
use crate::kpi::{new_alerts, Alert, KpiAction, KpiEngine, KpiReport, KpiRule, StoredKpiRule};
use crate::notify::{
    DomainEvent, EnqueueReport, EntityRef, EventKind, Notification, OutboxMessage, Priority,
    Recipient, TemplateName,
};
use crate::page::{Page, PageRequest};
use crate::ports::{Capabilities, Capability, Storage, WriteOptions};
use crate::profile::Profile;
use crate::segment::{FieldSchema, MembershipChange, Rule, Segment, SegmentId};
use crate::task::{Task, TaskQuery};

/// Largest batch [`Crm::log_batch`] accepts; split bigger imports.
pub const MAX_BATCH: usize = 100_000;

/// The CRM's use cases over a storage adapter and a clock.
///
/// Cheap to clone (two `Arc`s). Every method validates its input before anything is
/// written, and is instrumented with a `tracing` span (silent unless the host installs a
/// subscriber).
#[derive(Clone)]
pub struct Crm {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    events: bool,
}

impl std::fmt::Debug for Crm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crm")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Crm {
    /// A CRM over `storage`, using the system clock.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Crm {
            storage,
            clock: Arc::new(SystemClock),
            events: false,
        }
    }

    /// Writes a domain event ([`crate::notify::events`]) into the outbox with every
    /// change, in the change's transaction: customer created, updated and owner changed,
    /// interaction logged, segment entered and left. Off by default; turn it on when a
    /// [`Dispatcher`](crate::notify::Dispatcher) with an event sink delivers them.
    pub fn with_events(mut self, on: bool) -> Self {
        self.events = on;
        self
    }

    /// Replaces the clock (for tests and simulations).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The storage adapter.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The clock's current instant.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Registers a new customer: sets version 1 and both timestamps to now, then stores it.
    /// Errors: validation, [`Error::Duplicate`] (id or external id taken).
    #[instrument(skip_all, fields(tenant = %tenant, customer = %customer.id))]
    pub async fn register(&self, tenant: TenantId, mut customer: Customer) -> Result<Customer> {
        customer.validate()?;
        let now = self.clock.now();
        customer.version = 1;
        customer.created_at = now;
        customer.updated_at = now;
        let outbox = self.customer_events(&customer, None)?;
        self.storage
            .insert_customer(tenant, &customer, WriteOptions::new().outbox(outbox))
            .await?;
        Ok(customer)
    }

    /// Registers many customers in one transaction, all or nothing (for imports). Each is
    /// checked first (errors name it, like `customers[7].emails[1]`), then stamped like
    /// [`Crm::register`]. Errors also: [`Error::Duplicate`].
    #[instrument(skip_all, fields(tenant = %tenant, rows = customers.len()))]
    pub async fn register_many(
        &self,
        tenant: TenantId,
        mut customers: Vec<Customer>,
    ) -> Result<Vec<Customer>> {
        if customers.len() > MAX_BATCH {
            return Err(Error::validation(
                "customers",
                format!("at most {MAX_BATCH} per batch, got {}", customers.len()),
            ));
        }
        let now = self.clock.now();
        for (i, c) in customers.iter_mut().enumerate() {
            c.validate()
                .map_err(|e| e.in_field(&format!("customers[{i}]")))?;
            c.version = 1;
            c.created_at = now;
            c.updated_at = now;
        }
        let mut outbox = Vec::new();
        for c in &customers {
            outbox.extend(self.customer_events(c, None)?);
        }
        self.storage
            .insert_customers(
                tenant,
                customers.clone(),
                WriteOptions::new().outbox(outbox),
            )
            .await?;
        Ok(customers)
    }

    /// Reads a customer; an id merged into another customer gives the survivor's record.
    /// Errors: [`Error::NotFound`].
    #[instrument(skip(self))]
    pub async fn customer(&self, tenant: TenantId, id: CustomerId) -> Result<Customer> {
        match self.storage.get_customer(tenant, id).await {
            // A customer merged into another is found through its redirect.
            Err(Error::NotFound { .. }) => match self.storage.redirect(tenant, id).await? {
                Some(survivor) => self.storage.get_customer(tenant, survivor).await,
                None => Err(Error::not_found("customer", id)),
            },
            other => other,
        }
    }

    /// Whether domain events are written to the outbox; with events on, an adapter without
    /// an outbox is [`Error::Unsupported`].
    pub(crate) fn events_enabled(&self) -> Result<bool> {
        if self.events {
            self.need(Capability::Outbox, "domain events")?;
        }
        Ok(self.events)
    }

    /// What the storage adapter provides (see [`Backend::capabilities`](crate::ports::Backend::capabilities)).
    pub fn capabilities(&self) -> Capabilities {
        self.storage.capabilities()
    }

    /// [`Error::Unsupported`] naming `operation` unless the adapter provides `capability`:
    /// checked before anything is read or written.
    pub(crate) fn need(&self, capability: Capability, operation: &'static str) -> Result<()> {
        if self.storage.capabilities().supports(capability) {
            Ok(())
        } else {
            Err(Error::unsupported(operation, self.storage.name()))
        }
    }

    /// Stores a changed customer. `customer.version` must be the version it was read at;
    /// the stored record gets the next version and `updated_at` now. A changed owner is
    /// recorded as an ownership transfer by `actor`.
    ///
    /// Errors: validation, [`Error::NotFound`], [`Error::Conflict`] if the record changed
    /// since it was read.
    #[instrument(skip_all, fields(tenant = %tenant, customer = %customer.id))]
    pub async fn update(
        &self,
        tenant: TenantId,
        mut customer: Customer,
        actor: Option<UserId>,
    ) -> Result<Customer> {
        customer.validate()?;
        let current = self.storage.get_customer(tenant, customer.id).await?;
        check_version(&current, customer.version)?;
        let expected = customer.version;
        customer.version = expected + 1;
        customer.created_at = current.created_at;
        customer.updated_at = self.clock.now();
        let ownership = (current.owner != customer.owner).then_some(OwnershipChange {
            customer: customer.id,
            from: current.owner,
            to: customer.owner,
            changed_by: actor,
            reason: None,
            at: customer.updated_at,
            version: customer.version,
        });
        let outbox = self.customer_events(&customer, ownership.as_ref())?;
        let audit = AuditEntry {
            customer: customer.id,
            version: customer.version,
            at: customer.updated_at,
            actor,
            reason: None,
            change: AuditChange::Updated {
                fields: field_changes(&current, &customer),
            },
        };
        self.storage
            .update_customer(
                tenant,
                &customer,
                expected,
                WriteOptions::new()
                    .ownership(ownership)
                    .audit(audit)
                    .outbox(outbox),
            )
            .await?;
        Ok(customer)
    }

    /// Transfers a customer to `new_owner` (`None`: back to the shared pool), recording who
    /// did it and why. `expected_version` is the version the caller last saw.
    ///
    /// Errors: [`Error::NotFound`], [`Error::Conflict`], validation of `reason`.
    pub async fn change_owner(
        &self,
        tenant: TenantId,
        id: CustomerId,
        new_owner: Option<UserId>,
        expected_version: u64,
        actor: Option<UserId>,
        reason: Option<&str>,
    ) -> Result<Customer> {
        let transfer = Transfer {
            new_owner,
            expected_version,
            actor,
            reason,
        };
        self.change_owner_notifying(tenant, id, transfer, Vec::new())
            .await
    }

    /// [`Crm::change_owner`], storing `notifications` (to the new owner, say) in the same
    /// transaction as the transfer: they are sent if and only if the transfer happened.
    ///
    /// Errors: as [`Crm::change_owner`]; validation naming `notifications[i]`.
    #[instrument(skip(self, transfer, notifications))]
    pub async fn change_owner_notifying(
        &self,
        tenant: TenantId,
        id: CustomerId,
        transfer: Transfer<'_>,
        notifications: Vec<Notification>,
    ) -> Result<Customer> {
        if !notifications.is_empty() {
            self.need(crate::ports::Capability::Outbox, "change_owner_notifying")?;
        }
        let Transfer {
            new_owner,
            expected_version,
            actor,
            reason,
        } = transfer;
        let mut outbox = self.outbox_of(notifications)?;
        if let Some(r) = reason {
            if r.chars().count() > 1000 || r.chars().any(|c| c.is_control() && c != '\n') {
                return Err(Error::validation(
                    "reason",
                    "at most 1000 characters, no control characters",
                ));
            }
        }
        let mut customer = self.storage.get_customer(tenant, id).await?;
        check_version(&customer, expected_version)?;
        let before = customer.clone();
        let now = self.clock.now();
        let change = OwnershipChange {
            customer: id,
            from: customer.owner,
            to: new_owner,
            changed_by: actor,
            reason: reason.map(str::to_string),
            at: now,
            version: expected_version + 1,
        };
        customer.owner = new_owner;
        customer.version = expected_version + 1;
        customer.updated_at = now;
        outbox.extend(self.customer_events(&customer, Some(&change))?);
        let audit = AuditEntry {
            customer: id,
            version: customer.version,
            at: now,
            actor,
            reason: reason.map(str::to_string),
            change: AuditChange::Updated {
                fields: field_changes(&before, &customer),
            },
        };
        self.storage
            .update_customer(
                tenant,
                &customer,
                expected_version,
                WriteOptions::new()
                    .ownership(Some(change))
                    .audit(audit)
                    .outbox(outbox),
            )
            .await?;
        Ok(customer)
    }

    /// Transfers every customer `from` owns to `to` (`None`: the shared pool), for example
    /// when someone leaves the company; each transfer is its own audited ownership change
    /// by `actor` with `reason`. A customer changed meanwhile is read again and transferred
    /// if `from` still owns it. Returns how many were transferred.
    ///
    /// Errors: storage errors (transfers already made stay made; run it again to finish).
    pub async fn transfer_all(
        &self,
        tenant: TenantId,
        from: UserId,
        to: Option<UserId>,
        actor: Option<UserId>,
        reason: Option<&str>,
    ) -> Result<u64> {
        let owned = self
            .customers_where(
                tenant,
                &CustomerQuery {
                    owner: Some(from),
                    ..CustomerQuery::all()
                },
            )
            .await?;
        let mut moved = 0;
        for c in owned {
            match self
                .change_owner(tenant, c.id, to, c.version, actor, reason)
                .await
            {
                Ok(_) => moved += 1,
                Err(Error::Conflict { .. }) => {
                    let current = self.storage.get_customer(tenant, c.id).await?;
                    if current.owner == Some(from) {
                        self.change_owner(tenant, c.id, to, current.version, actor, reason)
                            .await?;
                        moved += 1;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }

    /// A customer's ownership transfers, newest first.
    #[instrument(skip(self))]
    pub async fn ownership_history(
        &self,
        tenant: TenantId,
        id: CustomerId,
    ) -> Result<Vec<OwnershipChange>> {
        self.storage.ownership_history(tenant, id).await
    }

    /// Lists customers matching `query`, ordered by id.
    #[instrument(skip(self))]
    pub async fn search(
        &self,
        tenant: TenantId,
        query: &CustomerQuery,
        page: &PageRequest,
    ) -> Result<Page<Customer>> {
        page.validate()?;
        if let Some(p) = &query.name_prefix {
            if p.chars().count() > crate::value::DisplayName::MAX_CHARS {
                return Err(Error::validation("name_prefix", "longer than any name"));
            }
        }
        self.storage.list_customers(tenant, query, page).await
    }

    /// Logs one interaction. Returns whether it was stored (`inserted == 1`) or skipped as
    /// a duplicate of its idempotency key.
    pub async fn log(&self, tenant: TenantId, interaction: Interaction) -> Result<BatchReport> {
        self.log_batch(tenant, vec![interaction]).await
    }

    /// Logs a batch of interactions, all or nothing: every row is validated first (errors
    /// name the row, like `interactions[3].subject`); then the adapter stores the batch and
    /// its profile deltas in one transaction, skipping and counting rows whose idempotency
    /// key is already known. `recorded_at` is set to now.
    pub async fn log_batch(
        &self,
        tenant: TenantId,
        batch: Vec<Interaction>,
    ) -> Result<BatchReport> {
        self.log_batch_notifying(tenant, batch, Vec::new()).await
    }

    /// [`Crm::log_batch`], storing `notifications` in the same transaction as the batch.
    /// Errors: as [`Crm::log_batch`]; validation naming `notifications[i]`.
    #[instrument(skip_all, fields(tenant = %tenant, rows = batch.len()))]
    pub async fn log_batch_notifying(
        &self,
        tenant: TenantId,
        mut batch: Vec<Interaction>,
        notifications: Vec<Notification>,
    ) -> Result<BatchReport> {
        if !notifications.is_empty() {
            self.need(crate::ports::Capability::Outbox, "log_batch_notifying")?;
        }
        if batch.len() > MAX_BATCH {
            return Err(Error::validation(
                "interactions",
                format!("at most {MAX_BATCH} per batch, got {}", batch.len()),
            ));
        }
        if batch.is_empty() && notifications.is_empty() {
            return Ok(BatchReport::default());
        }
        let mut outbox = self.outbox_of(notifications)?;
        let now = self.clock.now();
        let mut ids = BTreeSet::new();
        for (i, row) in batch.iter_mut().enumerate() {
            row.validate()
                .map_err(|e| e.in_field(&format!("interactions[{i}]")))?;
            if !ids.insert(row.id) {
                return Err(Error::validation(
                    format!("interactions[{i}].id"),
                    "repeats an id earlier in the batch",
                ));
            }
            row.occurred_at = truncate_to_micros(row.occurred_at);
            row.recorded_at = now;
        }
        // Rows older than archived history are refused: the archive took their keys along,
        // so a re-sent one would be counted twice.
        if !batch.is_empty() {
            if let Some(h) = self.storage.archive_horizon(tenant).await? {
                if let Some(i) = batch.iter().position(|row| row.occurred_at < h) {
                    return Err(Error::validation(
                        format!("interactions[{i}].occurred_at"),
                        format!(
                            "{} is before the archived history ({h})",
                            batch[i].occurred_at
                        ),
                    ));
                }
            }
        }
        if self.events_enabled()? {
            for row in &batch {
                outbox.push(interaction_event(row)?);
            }
        }
        let report = self
            .storage
            .append_interactions(tenant, batch, WriteOptions::new().outbox(outbox))
            .await?;
        tracing::debug!(
            inserted = report.inserted,
            duplicates = report.duplicates,
            "batch logged"
        );
        Ok(report)
    }

    /// A customer's interactions, newest first.
    #[instrument(skip(self))]
    pub async fn timeline(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<Interaction>> {
        page.validate()?;
        self.storage.timeline(tenant, customer, page).await
    }

    /// A customer's profile (aggregates over all its interactions).
    #[instrument(skip(self))]
    pub async fn profile(&self, tenant: TenantId, customer: CustomerId) -> Result<Profile> {
        self.storage.get_profile(tenant, customer).await
    }

    /// Stores many customers' value scores in one transaction, all or nothing. Each entry
    /// is checked first (errors name it, like `scores[3].p_alive`).
    #[instrument(skip_all, fields(tenant = %tenant, rows = scores.len()))]
    pub async fn set_value_scores(
        &self,
        tenant: TenantId,
        scores: Vec<(CustomerId, ValueScores)>,
    ) -> Result<()> {
        self.need(crate::ports::Capability::Values, "set_value_scores")?;
        check_entries("scores", &scores, ValueScores::validate)?;
        self.storage.set_value_scores(tenant, scores).await
    }

    /// A customer's latest value scores, if scored.
    #[instrument(skip(self))]
    pub async fn value_scores(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Option<ValueScores>> {
        self.need(crate::ports::Capability::Values, "value_scores")?;
        self.storage.value_scores(tenant, customer).await
    }

    /// Stores many customers' value classes in one transaction, all or nothing (each entry
    /// checked first; errors name it, like `classes[2].r`).
    #[instrument(skip_all, fields(tenant = %tenant, rows = classes.len()))]
    pub async fn set_value_classes(
        &self,
        tenant: TenantId,
        classes: Vec<(CustomerId, ValueClasses)>,
    ) -> Result<()> {
        self.need(crate::ports::Capability::Values, "set_value_classes")?;
        check_entries("classes", &classes, ValueClasses::validate)?;
        self.storage.set_value_classes(tenant, classes).await
    }

    /// A customer's latest value classes, if classified.
    #[instrument(skip(self))]
    pub async fn value_classes(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Option<ValueClasses>> {
        self.need(crate::ports::Capability::Values, "value_classes")?;
        self.storage.value_classes(tenant, customer).await
    }

    /// Stores a fitted value model after checking its figures.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn save_value_model(&self, tenant: TenantId, model: &ValueModel) -> Result<()> {
        self.need(crate::ports::Capability::Values, "save_value_model")?;
        model.validate()?;
        self.storage.save_value_model(tenant, model).await
    }

    /// The tenant's most recently fitted value model.
    #[instrument(skip(self))]
    pub async fn latest_value_model(&self, tenant: TenantId) -> Result<Option<ValueModel>> {
        self.need(crate::ports::Capability::Values, "latest_value_model")?;
        self.storage.latest_value_model(tenant).await
    }

    /// Previews a rule: how many customers it selects now, and the first page of them.
    /// The rule is type-checked against `schema` first.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn preview(
        &self,
        tenant: TenantId,
        rule: &Rule,
        schema: &FieldSchema,
        page: &PageRequest,
    ) -> Result<(u64, Page<CustomerId>)> {
        self.need(crate::ports::Capability::Segments, "preview")?;
        schema.check(rule)?;
        page.validate()?;
        let now = self.clock.now();
        let count = self
            .storage
            .count_matching(tenant, rule, schema, now)
            .await?;
        let first = self
            .storage
            .find_matching(tenant, rule, schema, now, page)
            .await?;
        Ok((count, first))
    }

    /// Stores a new segment (a dynamic one's rule is type-checked against `schema`);
    /// `created_at` is set to now. Errors: validation, [`Error::Duplicate`] (id or name).
    #[instrument(skip_all, fields(tenant = %tenant, segment = %segment.id))]
    pub async fn create_segment(
        &self,
        tenant: TenantId,
        mut segment: Segment,
        schema: &FieldSchema,
    ) -> Result<Segment> {
        self.need(crate::ports::Capability::Segments, "create_segment")?;
        if let Some(rule) = segment.rule() {
            schema.check(rule)?;
        }
        segment.created_at = self.clock.now();
        self.storage.save_segment(tenant, &segment).await?;
        Ok(segment)
    }

    /// A segment by id.
    #[instrument(skip(self))]
    pub async fn segment(&self, tenant: TenantId, id: SegmentId) -> Result<Segment> {
        self.need(crate::ports::Capability::Segments, "segment")?;
        self.storage.get_segment(tenant, id).await
    }

    /// Every segment of the tenant, by name.
    #[instrument(skip(self))]
    pub async fn segments(&self, tenant: TenantId) -> Result<Vec<Segment>> {
        self.need(crate::ports::Capability::Segments, "segments")?;
        self.storage.list_segments(tenant).await
    }

    /// Re-evaluates a dynamic segment now and stores its members; returns who entered and
    /// who left since the last refresh (for campaigns and notices). The rule is checked
    /// against `schema` again, since attribute definitions may have changed.
    #[instrument(skip(self, schema))]
    pub async fn refresh_segment(
        &self,
        tenant: TenantId,
        id: SegmentId,
        schema: &FieldSchema,
    ) -> Result<MembershipChange> {
        self.need(crate::ports::Capability::Segments, "refresh_segment")?;
        let segment = self.storage.get_segment(tenant, id).await?;
        schema.check(segment.rule_to_refresh()?)?;
        let now = self.clock.now();
        self.storage
            .refresh_segment(
                tenant,
                id,
                schema,
                now,
                self.events_enabled()?.then_some(now),
            )
            .await
    }

    /// Adds and removes members of a static segment.
    #[instrument(skip(self))]
    pub async fn change_static_members(
        &self,
        tenant: TenantId,
        id: SegmentId,
        add: Vec<CustomerId>,
        remove: Vec<CustomerId>,
    ) -> Result<MembershipChange> {
        self.need(crate::ports::Capability::Segments, "change_static_members")?;
        if add.len() + remove.len() > MAX_BATCH {
            return Err(Error::validation(
                "members",
                format!("at most {MAX_BATCH} changes per call"),
            ));
        }
        let at = self.events_enabled()?.then(|| self.clock.now());
        self.storage
            .change_static_members(tenant, id, add, remove, at)
            .await
    }

    /// A segment's members, by id.
    #[instrument(skip(self))]
    pub async fn segment_members(
        &self,
        tenant: TenantId,
        id: SegmentId,
        page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        self.need(crate::ports::Capability::Segments, "segment_members")?;
        page.validate()?;
        self.storage.segment_members(tenant, id, page).await
    }

    /// Whether a customer is in a segment.
    #[instrument(skip(self))]
    pub async fn is_member(
        &self,
        tenant: TenantId,
        id: SegmentId,
        customer: CustomerId,
    ) -> Result<bool> {
        self.need(crate::ports::Capability::Segments, "is_member")?;
        self.storage.is_member(tenant, id, customer).await
    }

    /// The segments a customer is in.
    #[instrument(skip(self))]
    pub async fn segments_of(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Vec<SegmentId>> {
        self.need(crate::ports::Capability::Segments, "segments_of")?;
        self.storage.segments_of(tenant, customer).await
    }

    /// Puts notifications in the outbox, due at their `not_before` or now; ones whose
    /// idempotency key the tenant already has are skipped and counted. Each is checked
    /// first (errors name it, like `notifications[2].data`). Deliver them with a
    /// [`Dispatcher`](crate::notify::Dispatcher).
    #[instrument(skip_all, fields(tenant = %tenant, rows = notifications.len()))]
    pub async fn notify(
        &self,
        tenant: TenantId,
        notifications: Vec<Notification>,
    ) -> Result<EnqueueReport> {
        self.need(crate::ports::Capability::Outbox, "notify")?;
        if notifications.len() > MAX_BATCH {
            return Err(Error::validation(
                "notifications",
                format!("at most {MAX_BATCH} per call, got {}", notifications.len()),
            ));
        }
        let messages = self.outbox_of(notifications)?;
        self.storage.enqueue(tenant, messages).await
    }

    /// Opens a case: stamps it opened now (its `Opened` event too) at version 1, and stores
    /// it with its `case.opened` event when events are on.
    /// Errors: validation; [`Error::NotFound`] for an unknown customer; [`Error::Duplicate`].
    #[instrument(skip_all, fields(tenant = %tenant, case = %case.id))]
    pub async fn open_case(&self, tenant: TenantId, mut case: Case) -> Result<Case> {
        self.need(crate::ports::Capability::Cases, "open_case")?;
        let now = self.clock.now();
        case.opened_at = now;
        case.version = 1;
        case.events = vec![CaseEvent {
            at: now,
            kind: CaseEventKind::Opened,
        }];
        let outbox = self.case_events(&case)?;
        self.storage
            .insert_case(tenant, &case, WriteOptions::new().outbox(outbox))
            .await?;
        Ok(case)
    }

    /// A case. Errors: [`Error::NotFound`].
    #[instrument(skip(self))]
    pub async fn case(&self, tenant: TenantId, id: CaseId) -> Result<Case> {
        self.need(crate::ports::Capability::Cases, "case")?;
        self.storage.get_case(tenant, id).await
    }

    /// Cases matching `query`, by id.
    #[instrument(skip(self))]
    pub async fn cases(
        &self,
        tenant: TenantId,
        query: &CaseQuery,
        page: &PageRequest,
    ) -> Result<Page<Case>> {
        self.need(crate::ports::Capability::Cases, "cases")?;
        page.validate()?;
        self.storage.list_cases(tenant, query, page).await
    }

    /// Records what happened on a case now (a reply, a status change, a reassignment),
    /// with `notifications` in the same transaction. `expected_version` is the version
    /// the caller last saw.
    ///
    /// Errors: validation (see [`Case::record`]); [`Error::NotFound`];
    /// [`Error::Conflict`] if the case changed since.
    #[instrument(skip(self, kind, notifications))]
    pub async fn record_case_event(
        &self,
        tenant: TenantId,
        id: CaseId,
        expected_version: u64,
        kind: CaseEventKind,
        notifications: Vec<Notification>,
    ) -> Result<Case> {
        self.need(crate::ports::Capability::Cases, "record_case_event")?;
        let mut outbox = self.outbox_of(notifications)?;
        let mut case = self.storage.get_case(tenant, id).await?;
        if case.version != expected_version {
            return Err(Error::stale_write(
                "case",
                id,
                expected_version,
                Some(case.version),
            ));
        }
        // Never earlier than the last event (another process's clock may be ahead).
        let now = case
            .events
            .iter()
            .map(|e| e.at)
            .fold(self.clock.now(), Ord::max);
        case.record(now, kind)?;
        case.version = expected_version + 1;
        outbox.extend(self.case_events(&case)?);
        self.storage
            .update_case(
                tenant,
                &case,
                expected_version,
                WriteOptions::new().outbox(outbox),
            )
            .await?;
        Ok(case)
    }

    /// Creates a task (version 1). Errors: validation; [`Error::NotFound`] for an unknown
    /// customer or case; [`Error::Duplicate`].
    #[instrument(skip_all, fields(tenant = %tenant, task = %task.id))]
    pub async fn create_task(&self, tenant: TenantId, mut task: Task) -> Result<Task> {
        self.need(crate::ports::Capability::Tasks, "create_task")?;
        task.version = 1;
        task.announced_for = None;
        self.storage.insert_task(tenant, &task).await?;
        Ok(task)
    }

    /// A task. Errors: [`Error::NotFound`].
    #[instrument(skip(self))]
    pub async fn task(&self, tenant: TenantId, id: TaskId) -> Result<Task> {
        self.need(crate::ports::Capability::Tasks, "task")?;
        self.storage.get_task(tenant, id).await
    }

    /// Tasks matching `query`, by id.
    #[instrument(skip(self))]
    pub async fn tasks(
        &self,
        tenant: TenantId,
        query: &TaskQuery,
        page: &PageRequest,
    ) -> Result<Page<Task>> {
        self.need(crate::ports::Capability::Tasks, "tasks")?;
        page.validate()?;
        self.storage.list_tasks(tenant, query, page).await
    }

    /// Moves a task's due time to `until`. Errors: [`Error::NotFound`], [`Error::Conflict`],
    /// validation on `until` if it is not after now or outside the supported range.
    #[instrument(skip(self))]
    pub async fn snooze_task(
        &self,
        tenant: TenantId,
        id: TaskId,
        expected_version: u64,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Task> {
        self.need(crate::ports::Capability::Tasks, "snooze_task")?;
        crate::clock::check_instant("until", until)?;
        if until <= self.clock.now() {
            return Err(Error::validation("until", "must be in the future"));
        }
        self.change_task(tenant, id, expected_version, |t| t.snooze(until))
            .await
    }

    /// Completes a task now (a recurring one moves to its next due time).
    /// Errors: [`Error::NotFound`], [`Error::Conflict`].
    #[instrument(skip(self))]
    pub async fn complete_task(
        &self,
        tenant: TenantId,
        id: TaskId,
        expected_version: u64,
    ) -> Result<Task> {
        self.need(crate::ports::Capability::Tasks, "complete_task")?;
        let now = self.clock.now();
        self.change_task(tenant, id, expected_version, |t| t.complete(now))
            .await
    }

    async fn change_task(
        &self,
        tenant: TenantId,
        id: TaskId,
        expected_version: u64,
        change: impl FnOnce(&mut Task),
    ) -> Result<Task> {
        let mut task = self.storage.get_task(tenant, id).await?;
        if task.version != expected_version {
            return Err(Error::stale_write(
                "task",
                id,
                expected_version,
                Some(task.version),
            ));
        }
        change(&mut task);
        task.version = expected_version + 1;
        self.storage
            .update_task(tenant, &task, expected_version, WriteOptions::new())
            .await?;
        Ok(task)
    }

    /// Announces every task due by `now` exactly once per due time: a `task.due` reminder
    /// to its assignee is queued in the same optimistic transaction that records the
    /// announcement on the task, so concurrent or repeated calls never remind twice.
    /// Returns the tasks announced now.
    ///
    /// Errors: storage errors.
    #[instrument(skip(self))]
    pub async fn remind_due(
        &self,
        tenant: TenantId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Task>> {
        self.need(crate::ports::Capability::Tasks, "remind_due")?;
        let query = TaskQuery {
            needing_reminder_at: Some(now),
            ..TaskQuery::default()
        };
        let mut announced = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let batch = self.storage.list_tasks(tenant, &query, &page).await?;
            for task in &batch.items {
                let mut next = task.clone();
                next.announced_for = Some(task.due_at);
                next.version = task.version + 1;
                let key = format!("task:{}:{}", task.id, task.due_at.timestamp_micros());
                let reminder =
                    Notification::builder(Recipient::User(task.assignee), "task.due", &key)
                        .data(serde_json::json!({
                            "task": task.id,
                            "title": task.title,
                            "subject": task.subject,
                            "due_at": task.due_at,
                        }))
                        .priority(Priority::High)
                        .build()?;
                let outbox = vec![OutboxMessage::new(reminder, self.clock.now())];
                match self
                    .storage
                    .update_task(
                        tenant,
                        &next,
                        task.version,
                        WriteOptions::new().outbox(outbox),
                    )
                    .await
                {
                    Ok(()) => announced.push(next),
                    Err(Error::Conflict { .. }) => {} // changed meanwhile: the next call decides
                    Err(other) => return Err(other),
                }
            }
            match batch.next {
                Some(cursor) => page = PageRequest::after(cursor, 500),
                None => return Ok(announced),
            }
        }
    }

    /// Stores a new KPI rule (checked first). Errors: validation; [`Error::Duplicate`] for
    /// a key the tenant already uses.
    #[instrument(skip(self, rule), fields(key = %rule.key))]
    pub async fn add_kpi_rule(&self, tenant: TenantId, rule: KpiRule) -> Result<()> {
        self.need(crate::ports::Capability::KpiRules, "add_kpi_rule")?;
        rule.validate()?;
        self.storage.insert_kpi_rule(tenant, &rule).await
    }

    /// Replaces a KPI rule (same key) last seen at `expected_version`.
    /// Errors: validation; [`Error::NotFound`]; [`Error::Conflict`].
    #[instrument(skip(self, rule), fields(key = %rule.key))]
    pub async fn update_kpi_rule(
        &self,
        tenant: TenantId,
        rule: KpiRule,
        expected_version: u64,
    ) -> Result<()> {
        self.need(crate::ports::Capability::KpiRules, "update_kpi_rule")?;
        rule.validate()?;
        self.storage
            .update_kpi_rule(tenant, &rule, expected_version)
            .await
    }

    /// Removes a KPI rule. Errors: [`Error::NotFound`].
    #[instrument(skip(self))]
    pub async fn delete_kpi_rule(&self, tenant: TenantId, key: &TemplateName) -> Result<()> {
        self.need(crate::ports::Capability::KpiRules, "delete_kpi_rule")?;
        self.storage.delete_kpi_rule(tenant, key).await
    }

    /// The tenant's KPI rules with their versions, by key.
    #[instrument(skip(self))]
    pub async fn kpi_rules(&self, tenant: TenantId) -> Result<Vec<StoredKpiRule>> {
        self.need(crate::ports::Capability::KpiRules, "kpi_rules")?;
        self.storage.kpi_rules(tenant).await
    }

    /// The tenant's stored rules, ready to evaluate around now.
    /// Errors: storage errors; validation if a stored rule no longer validates.
    pub async fn kpi_engine(&self, tenant: TenantId) -> Result<KpiEngine> {
        self.need(crate::ports::Capability::KpiRules, "kpi_engine")?;
        let rules = self.storage.kpi_rules(tenant).await?;
        KpiEngine::new(
            rules.into_iter().map(|r| r.rule).collect(),
            self.clock.now(),
        )
    }

    /// Evaluates KPI rules at `now`, raising each new warning and breach once.
    ///
    /// - Case rules, on every case of the tenant: an alert's notifications (to the
    ///   assignee, to the team lead), its reassignment and, with events on, its
    ///   `case.breached` event are stored with the alert's key on the case in one
    ///   optimistic transaction; a case changed concurrently is counted in `conflicts` and
    ///   handled by the next run. Returning the customer to the pool follows in a
    ///   transaction of its own.
    /// - Follow-up gap rules, on every owned customer in scope: notices keyed by the
    ///   customer and the start of the gap, with a reassignment or return to the pool as
    ///   one transfer.
    /// - Rules on interactions, on those of the engine's lookback window: notices keyed by
    ///   the interaction.
    ///
    /// Running this every minute raises nothing twice.
    ///
    /// Errors: storage errors.
    #[instrument(skip(self, engine))]
    pub async fn evaluate_kpis(
        &self,
        tenant: TenantId,
        engine: &KpiEngine,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<KpiReport> {
        self.need(crate::ports::Capability::KpiRules, "evaluate_kpis")?;
        let mut report = KpiReport::default();
        self.evaluate_gaps(tenant, engine, now, &mut report).await?;
        self.evaluate_interactions(tenant, engine, now, &mut report)
            .await?;
        let mut customers: BTreeMap<CustomerId, Customer> = BTreeMap::new();
        let mut page = PageRequest::first(500);
        loop {
            let batch = self
                .storage
                .list_cases(tenant, &CaseQuery::default(), &page)
                .await?;
            for case in &batch.items {
                report.cases += 1;
                if engine.needs_customers() && !customers.contains_key(&case.customer) {
                    let c = self.storage.get_customer(tenant, case.customer).await?;
                    customers.insert(case.customer, c);
                }
                let alerts = new_alerts(engine, case, customers.get(&case.customer), now);
                if alerts.is_empty() {
                    continue;
                }
                let (next, outbox, warnings, breaches) = self.raise(case, &alerts, now)?;
                match self
                    .storage
                    .update_case(
                        tenant,
                        &next,
                        case.version,
                        WriteOptions::new().outbox(outbox),
                    )
                    .await
                {
                    Ok(()) => {
                        report.warnings += warnings;
                        report.breaches += breaches;
                        let to_pool = alerts.iter().any(|(alert, rule)| {
                            let actions = if alert.breach {
                                &rule.on_breach
                            } else {
                                &rule.on_warning
                            };
                            actions.contains(&KpiAction::ReturnToPool)
                        });
                        if to_pool && self.return_to_pool(tenant, case.customer, &alerts).await? {
                            report.returned_to_pool += 1;
                        }
                    }
                    Err(Error::Conflict { .. }) => report.conflicts += 1,
                    Err(other) => return Err(other),
                }
            }
            match batch.next {
                Some(cursor) => page = PageRequest::after(cursor, 500),
                None => return Ok(report),
            }
        }
    }

    /// Every owned customer with when its current follow-up gap began: the owner's last
    /// contact with it, or when the owner got it if later (for
    /// [`gap_scorecard`](crate::kpi::gap_scorecard)).
    pub async fn follow_up_gaps(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(Customer, chrono::DateTime<chrono::Utc>)>> {
        self.need(crate::ports::Capability::KpiRules, "follow_up_gaps")?;
        let mut out = Vec::new();
        for customer in self.customers_where(tenant, &CustomerQuery::all()).await? {
            if customer.owner.is_some() {
                let since = self.gap_since(tenant, &customer).await?;
                out.push((customer, since));
            }
        }
        Ok(out)
    }

    /// Every customer matching `query`, following the pages.
    pub(crate) async fn customers_where(
        &self,
        tenant: TenantId,
        query: &CustomerQuery,
    ) -> Result<Vec<Customer>> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let batch = self.storage.list_customers(tenant, query, &page).await?;
            out.extend(batch.items);
            match batch.next {
                Some(cursor) => page = PageRequest::after(cursor, 500),
                None => return Ok(out),
            }
        }
    }

    /// When the owner's current gap with `customer` began.
    async fn gap_since(
        &self,
        tenant: TenantId,
        customer: &Customer,
    ) -> Result<chrono::DateTime<chrono::Utc>> {
        let profile = self.storage.get_profile(tenant, customer.id).await?;
        let history = self.storage.ownership_history(tenant, customer.id).await?;
        let owned = crate::pool::owned_since(customer, &history);
        Ok(customer
            .owner
            .and_then(|o| profile.last_contact_by.get(&o).copied())
            .map_or(owned, |t| t.max(owned)))
    }

    /// Follow-up gap rules: each owned customer in scope whose owner has not contacted it
    /// for the rule's days raises a warning and a breach, once per gap (keyed by when the
    /// gap began): notices through the outbox, and reassignment or return to the pool as
    /// one transfer with them.
    async fn evaluate_gaps(
        &self,
        tenant: TenantId,
        engine: &KpiEngine,
        now: chrono::DateTime<chrono::Utc>,
        report: &mut KpiReport,
    ) -> Result<()> {
        if engine.gap_rules().next().is_none() {
            return Ok(());
        }
        for customer in &self.customers_where(tenant, &CustomerQuery::all()).await? {
            let Some(owner) = customer.owner else {
                continue;
            };
            let rules: Vec<_> = engine
                .gap_rules()
                .filter(|(r, _, _)| r.scope.matches_customer(customer))
                .collect();
            if rules.is_empty() {
                continue;
            }
            report.customers += 1;
            let since = self.gap_since(tenant, customer).await?;
            let days = (now - since).num_days();
            for (rule, max_days, warn_days) in rules {
                for (breach, limit) in [(false, warn_days), (true, max_days)] {
                    if days < i64::from(limit) || (!breach && warn_days == max_days) {
                        continue;
                    }
                    let level = if breach { "breach" } else { "warning" };
                    let key = format!(
                        "kpi:{}:{}:{}:{level}",
                        rule.key,
                        customer.id,
                        since.timestamp_micros()
                    );
                    if self
                        .raise_gap(tenant, customer, owner, rule, breach, &key, days)
                        .await?
                    {
                        if breach {
                            report.breaches += 1;
                            if rule.on_breach.contains(&KpiAction::ReturnToPool) {
                                report.returned_to_pool += 1;
                            }
                        } else {
                            report.warnings += 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Rules on interactions: each interaction of the lookback window that misses a rule's
    /// target raises one breach (notices to its handler or their team lead, keyed by the
    /// interaction).
    async fn evaluate_interactions(
        &self,
        tenant: TenantId,
        engine: &KpiEngine,
        now: chrono::DateTime<chrono::Utc>,
        report: &mut KpiReport,
    ) -> Result<()> {
        if engine.interaction_rules().next().is_none() {
            return Ok(());
        }
        let from = now - engine.interaction_lookback();
        let to = now + chrono::Duration::microseconds(1);
        let mut page = PageRequest::first(500);
        loop {
            let batch = self
                .storage
                .interactions_between(tenant, from, to, &page)
                .await?;
            for interaction in &batch.items {
                report.interactions += 1;
                let Some(handler) = interaction.handled_by else {
                    continue;
                };
                for rule in engine.interaction_rules() {
                    let Some((false, value)) = rule.measure_interaction(interaction) else {
                        continue;
                    };
                    let key = format!("kpi:{}:{}:breach", rule.key, interaction.id);
                    let data = serde_json::json!({
                        "rule": rule.name,
                        "rule_key": rule.key,
                        "interaction": interaction.id,
                        "customer": interaction.customer,
                        "value": value,
                    });
                    let mut notices = Vec::new();
                    for action in &rule.on_breach {
                        let (to, who) = match action {
                            KpiAction::NotifyAssignee => (Recipient::User(handler), "handler"),
                            KpiAction::NotifyTeamLead => (Recipient::TeamLeadOf(handler), "lead"),
                            _ => continue,
                        };
                        notices.push(
                            Notification::builder(to, "kpi.breach", &format!("{key}:{who}"))
                                .data(data.clone())
                                .priority(Priority::Urgent)
                                .build()?,
                        );
                    }
                    if !notices.is_empty() && self.notify(tenant, notices).await?.enqueued > 0 {
                        report.breaches += 1;
                    }
                }
            }
            match batch.next {
                Some(cursor) => page = PageRequest::after(cursor, 500),
                None => return Ok(()),
            }
        }
    }

    /// Raises one follow-up-gap alert; whether it was new.
    #[allow(clippy::too_many_arguments)]
    async fn raise_gap(
        &self,
        tenant: TenantId,
        customer: &Customer,
        owner: UserId,
        rule: &KpiRule,
        breach: bool,
        key: &str,
        days: i64,
    ) -> Result<bool> {
        let actions = if breach {
            &rule.on_breach
        } else {
            &rule.on_warning
        };
        let (template, priority) = if breach {
            ("kpi.breach", Priority::Urgent)
        } else {
            ("kpi.warning", Priority::High)
        };
        let data = serde_json::json!({
            "rule": rule.name,
            "rule_key": rule.key,
            "customer": customer.id,
            "name": customer.name.as_str(),
            "days_without_contact": days,
        });
        let mut notices = Vec::new();
        let mut new_owner = None;
        for action in actions {
            let to = match action {
                KpiAction::NotifyAssignee => Recipient::User(owner),
                KpiAction::NotifyTeamLead => Recipient::TeamLeadOf(owner),
                KpiAction::Reassign { to } => {
                    new_owner = Some(Some(*to));
                    continue;
                }
                KpiAction::ReturnToPool => {
                    new_owner = Some(None);
                    continue;
                }
            };
            let suffix = if matches!(to, Recipient::User(_)) {
                "owner"
            } else {
                "lead"
            };
            notices.push(
                Notification::builder(to, template, &format!("{key}:{suffix}"))
                    .data(data.clone())
                    .priority(priority)
                    .build()?,
            );
        }
        match new_owner {
            None if notices.is_empty() => Ok(false),
            None => Ok(self.notify(tenant, notices).await?.enqueued > 0),
            Some(to) => {
                let reason = format!("KPI rule {}: no contact for {days} days", rule.name);
                let transfer = Transfer {
                    new_owner: to,
                    expected_version: customer.version,
                    actor: None,
                    reason: Some(&reason),
                };
                match self
                    .change_owner_notifying(tenant, customer.id, transfer, notices)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(Error::Conflict { .. }) => Ok(false),
                    Err(other) => Err(other),
                }
            }
        }
    }

    /// Clears the owner of `customer` because of `alerts`, retrying on concurrent changes
    /// (up to three tries). Whether it had an owner to clear.
    async fn return_to_pool(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        alerts: &[(Alert, &KpiRule)],
    ) -> Result<bool> {
        let names: Vec<&str> = alerts.iter().map(|(_, r)| r.name.as_str()).collect();
        let reason = format!("returned to the pool by KPI rule {}", names.join(", "));
        for _ in 0..3 {
            let current = self.storage.get_customer(tenant, customer).await?;
            if current.owner.is_none() {
                return Ok(false);
            }
            let transfer = Transfer {
                new_owner: None,
                expected_version: current.version,
                actor: None,
                reason: Some(&reason),
            };
            match self
                .change_owner_notifying(tenant, customer, transfer, Vec::new())
                .await
            {
                Ok(_) => return Ok(true),
                Err(Error::Conflict { .. }) => continue,
                Err(other) => return Err(other),
            }
        }
        Ok(false)
    }

    /// The changed case and outbox messages that raise `alerts`, with the warnings and
    /// breaches counted.
    fn raise(
        &self,
        case: &Case,
        alerts: &[(Alert, &KpiRule)],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(Case, Vec<OutboxMessage>, usize, usize)> {
        let mut next = case.clone();
        let mut outbox = Vec::new();
        let (mut warnings, mut breaches) = (0, 0);
        let at = case.events.last().map_or(now, |e| now.max(e.at));
        for (alert, rule) in alerts {
            let (actions, template, priority) = if alert.breach {
                breaches += 1;
                (&rule.on_breach, "kpi.breach", Priority::Urgent)
            } else {
                warnings += 1;
                (&rule.on_warning, "kpi.warning", Priority::High)
            };
            let data = serde_json::json!({
                "rule": rule.name,
                "rule_key": rule.key,
                "case": case.id,
                "subject": case.subject,
                "metric": alert.status.metric,
                "elapsed_minutes": alert.status.elapsed.num_minutes(),
                "target_minutes": rule.case_target().map(|t| t.target().num_minutes()),
                "breach_at": alert.status.breach_at,
            });
            for action in actions {
                let recipient = match (action, case.assignee) {
                    (KpiAction::NotifyAssignee, Some(a)) => Some((Recipient::User(a), "assignee")),
                    (KpiAction::NotifyTeamLead, Some(a)) => {
                        Some((Recipient::TeamLeadOf(a), "lead"))
                    }
                    (KpiAction::Reassign { to }, _) => {
                        if next.assignee != Some(*to) {
                            next.record(
                                at,
                                CaseEventKind::Assignment {
                                    to: Some(*to),
                                    by: None,
                                    reason: Some(format!("KPI rule {} breached", rule.name)),
                                },
                            )?;
                        }
                        None
                    }
                    (KpiAction::ReturnToPool, _) | (_, None) => None,
                };
                if let Some((to, who)) = recipient {
                    let n = Notification::builder(to, template, &format!("{}:{who}", alert.key))
                        .data(data.clone())
                        .priority(priority)
                        .build()?;
                    outbox.push(OutboxMessage::new(n, self.clock.now()));
                }
            }
            if alert.breach && self.events_enabled()? {
                let entity = EntityRef {
                    kind: "case".into(),
                    id: case.id.as_uuid(),
                };
                outbox.push(DomainEvent::message(
                    EventKind::CaseBreached,
                    entity.clone(),
                    &entity,
                    case.version + 1,
                    at,
                    data,
                    alert.key.clone(),
                )?);
            }
            next.alerts.insert(alert.key.clone());
        }
        next.version = case.version + 1;
        Ok((next, outbox, warnings, breaches))
    }

    /// The event of a case's last change, when events are on: opened, resolved, or
    /// breached (the last is raised by KPI rules).
    fn case_events(&self, case: &Case) -> Result<Vec<OutboxMessage>> {
        if !self.events_enabled()? {
            return Ok(Vec::new());
        }
        let Some(last) = case.events.last() else {
            return Ok(Vec::new());
        };
        let kind = match last.kind {
            CaseEventKind::Opened => EventKind::CaseOpened,
            CaseEventKind::StatusChange {
                to: CaseStatus::Resolved,
                ..
            } => EventKind::CaseResolved,
            _ => return Ok(Vec::new()),
        };
        let entity = EntityRef {
            kind: "case".into(),
            id: case.id.as_uuid(),
        };
        let data = serde_json::json!({
            "customer": case.customer,
            "kind": case.kind,
            "subject": case.subject,
            "status": case.status,
            "assignee": case.assignee,
        });
        let key = format!("{}:{}:{}", kind.as_str(), case.id, case.version);
        Ok(vec![DomainEvent::message(
            kind,
            entity.clone(),
            &entity,
            case.version,
            last.at,
            data,
            key,
        )?])
    }

    /// Checks notifications and makes them outbox messages due at their `not_before` or now.
    fn outbox_of(&self, notifications: Vec<Notification>) -> Result<Vec<OutboxMessage>> {
        let now = self.clock.now();
        notifications
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                n.validate()
                    .map_err(|e| e.in_field(&format!("notifications[{i}]")))?;
                Ok(OutboxMessage::new(n, now))
            })
            .collect()
    }

    /// The events of a stored customer change (none when events are off): created (at
    /// version 1) or updated, and owner changed when `ownership` is given.
    fn customer_events(
        &self,
        customer: &Customer,
        ownership: Option<&OwnershipChange>,
    ) -> Result<Vec<OutboxMessage>> {
        if !self.events_enabled()? {
            return Ok(Vec::new());
        }
        let entity = EntityRef::customer(customer.id);
        let (id, version, at) = (customer.id, customer.version, customer.updated_at);
        let record =
            serde_json::to_value(customer).map_err(|e| Error::encoding("a customer event", e))?;
        let kind = if version == 1 && ownership.is_none() {
            EventKind::CustomerCreated
        } else {
            EventKind::CustomerUpdated
        };
        let key = |kind: EventKind| format!("{}:{id}:{version}", kind.as_str());
        let mut out = vec![DomainEvent::message(
            kind,
            entity.clone(),
            &entity,
            version,
            at,
            record,
            key(kind),
        )?];
        if let Some(change) = ownership {
            let data = serde_json::to_value(change)
                .map_err(|e| Error::encoding("an ownership event", e))?;
            out.push(DomainEvent::message(
                EventKind::OwnerChanged,
                entity.clone(),
                &entity,
                version,
                at,
                data,
                key(EventKind::OwnerChanged),
            )?);
        }
        Ok(out)
    }

    /// Dead letters, oldest first, one page at a time.
    #[instrument(skip(self))]
    pub async fn dead_letters(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<OutboxMessage>> {
        self.need(crate::ports::Capability::Outbox, "dead_letters")?;
        page.validate()?;
        self.storage.dead_letters(tenant, page).await
    }

    /// Puts a dead letter back in the queue, due now, its attempts reset.
    #[instrument(skip(self))]
    pub async fn requeue(&self, tenant: TenantId, id: MessageId) -> Result<()> {
        self.need(crate::ports::Capability::Outbox, "requeue")?;
        self.storage.requeue(tenant, id, self.clock.now()).await
    }
}

/// Checks a per-customer batch: at most [`MAX_BATCH`] entries, each valid (errors name the
/// entry, like `scores[3].p_alive`).
fn check_entries<T>(
    field: &str,
    entries: &[(CustomerId, T)],
    validate: impl Fn(&T) -> Result<()>,
) -> Result<()> {
    if entries.len() > MAX_BATCH {
        return Err(Error::validation(
            field,
            format!("at most {MAX_BATCH} per call, got {}", entries.len()),
        ));
    }
    for (i, (_, v)) in entries.iter().enumerate() {
        validate(v).map_err(|e| e.in_field(&format!("{field}[{i}]")))?;
    }
    Ok(())
}

/// The parts of an ownership transfer (see [`Crm::change_owner`]).
#[derive(Clone, Copy, Debug)]
pub struct Transfer<'a> {
    /// The new owner (`None`: back to the shared pool).
    pub new_owner: Option<UserId>,
    /// The version the caller last saw.
    pub expected_version: u64,
    /// Who made the transfer.
    pub actor: Option<UserId>,
    /// Why.
    pub reason: Option<&'a str>,
}

/// The `interaction.logged` event of an interaction, keyed by its idempotency key (so a
/// re-sent interaction adds no event) and ordered with its customer's events.
fn interaction_event(row: &Interaction) -> Result<OutboxMessage> {
    let key = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, row.key.to_string().as_bytes());
    let data = serde_json::to_value(row).map_err(|e| Error::encoding("an interaction event", e))?;
    DomainEvent::message(
        EventKind::InteractionLogged,
        EntityRef {
            kind: "interaction".into(),
            id: row.id.as_uuid(),
        },
        &EntityRef::customer(row.customer),
        1,
        row.recorded_at,
        data,
        format!("{}:{key}", EventKind::InteractionLogged.as_str()),
    )
}

fn check_version(current: &Customer, expected: u64) -> Result<()> {
    if current.version != expected {
        return Err(Error::Conflict {
            entity: "customer",
            id: current.id.to_string(),
            expected,
            actual: current.version,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::customer::Lifecycle;
    use crate::interaction::{Channel, InteractionKind};
    use crate::mock::MockStorage;

    use crate::segment::{FieldSchema, Segment};
    use chrono::{DateTime, Utc};
    use mockall::predicate::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).unwrap()
    }

    fn crm(mut store: MockStorage) -> Crm {
        store.expect_name().return_const("mock");
        store
            .expect_capabilities()
            .return_const(crate::ports::Capabilities::ALL);
        Crm::new(Arc::new(store)).with_clock(Arc::new(ManualClock::new(now())))
    }

    fn stored(version: u64) -> Customer {
        let mut c = Customer::person("Ann").build().unwrap();
        c.version = version;
        c
    }

    #[tokio::test]
    async fn register_stamps_version_and_time_then_inserts_once() {
        let tenant = TenantId::new();
        let mut store = MockStorage::new();
        store
            .expect_insert_customer()
            .withf(move |t, c, options| {
                *t == tenant
                    && c.version == 1
                    && c.created_at == now()
                    && c.updated_at == now()
                    && options.outbox.is_empty()
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let c = crm(store).register(tenant, stored(0)).await.unwrap();
        assert_eq!(c.version, 1);
    }

    #[tokio::test]
    async fn invalid_batch_never_reaches_storage() {
        let mut store = MockStorage::new();
        store.expect_append_interactions().never();
        let c = CustomerId::new();
        let mut rows: Vec<Interaction> = (0..3)
            .map(|_| {
                Interaction::builder(c, Channel::Phone, InteractionKind::Call)
                    .at(now())
                    .build()
                    .unwrap()
            })
            .collect();
        rows[2].body = Some("x".repeat(Interaction::MAX_BODY_BYTES + 1));
        let err = crm(store)
            .log_batch(TenantId::new(), rows)
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some("interactions[2].body"));
    }

    #[tokio::test]
    async fn repeated_ids_in_a_batch_are_rejected_before_storage() {
        let mut store = MockStorage::new();
        store.expect_append_interactions().never();
        let c = CustomerId::new();
        let row = Interaction::builder(c, Channel::Phone, InteractionKind::Call)
            .at(now())
            .build()
            .unwrap();
        let mut again = row.clone();
        again.key = crate::ExternalRef::new("erp", "other").unwrap();
        let err = crm(store)
            .log_batch(TenantId::new(), vec![row, again])
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some("interactions[1].id"));
    }

    #[tokio::test]
    async fn batch_rows_get_recorded_at_from_the_clock() {
        let mut store = MockStorage::new();
        store.expect_archive_horizon().returning(|_| Ok(None));
        store
            .expect_append_interactions()
            .withf(|_, batch, options| {
                batch.len() == 2
                    && batch.iter().all(|i| i.recorded_at == now())
                    && options.outbox.is_empty()
            })
            .times(1)
            .returning(|_, b, _| {
                Ok(BatchReport {
                    inserted: b.len(),
                    duplicates: 0,
                })
            });
        let c = CustomerId::new();
        let rows = (0..2)
            .map(|_| {
                Interaction::builder(c, Channel::Web, InteractionKind::Purchase)
                    .at(now())
                    .build()
                    .unwrap()
            })
            .collect();
        let report = crm(store).log_batch(TenantId::new(), rows).await.unwrap();
        assert_eq!(report.inserted, 2);
    }

    #[tokio::test]
    async fn stale_update_is_refused_before_writing() {
        let current = stored(3);
        let mut store = MockStorage::new();
        let c2 = current.clone();
        store
            .expect_get_customer()
            .returning(move |_, _| Ok(c2.clone()));
        store.expect_update_customer().never();
        let mut stale = current.clone();
        stale.version = 2;
        let err = crm(store)
            .update(TenantId::new(), stale, None)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Conflict {
                expected: 2,
                actual: 3,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn update_records_an_owner_change_and_bumps_the_version() {
        let current = stored(1);
        let actor = UserId::new();
        let new_owner = UserId::new();
        let mut store = MockStorage::new();
        let c2 = current.clone();
        store
            .expect_get_customer()
            .returning(move |_, _| Ok(c2.clone()));
        store
            .expect_update_customer()
            .with(always(), function(|c: &Customer| c.version == 2 && c.updated_at == now()), eq(1), function(move |options: &WriteOptions| {
                let owner_recorded = matches!(&options.ownership, Some(ch) if ch.from.is_none() && ch.to == Some(new_owner) && ch.changed_by == Some(actor) && ch.version == 2);
                // The audit entry names both changed fields, with the actor.
                let audited = matches!(options.audit.as_slice(), [e] if e.version == 2 && e.actor == Some(actor) && matches!(&e.change,
                    AuditChange::Updated { fields } if fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>() == ["lifecycle", "owner"]));
                owner_recorded && audited && options.outbox.is_empty()
            }))
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let mut next = current.clone();
        next.owner = Some(new_owner);
        next.lifecycle = Lifecycle::Active;
        let saved = crm(store)
            .update(TenantId::new(), next, Some(actor))
            .await
            .unwrap();
        assert_eq!(saved.version, 2);
    }

    #[tokio::test]
    async fn a_transfer_with_events_hands_events_and_notices_to_one_write() {
        let current = stored(1);
        let new_owner = UserId::new();
        let mut store = MockStorage::new();
        let c2 = current.clone();
        store
            .expect_get_customer()
            .returning(move |_, _| Ok(c2.clone()));
        store
            .expect_update_customer()
            .withf(move |_, c, expected, options| {
                let outbox = &options.outbox;
                let kinds: Vec<&str> = outbox
                    .iter()
                    .map(|m| m.notification.template.as_str())
                    .collect();
                c.owner == Some(new_owner)
                    && *expected == 1
                    && options.ownership.is_some()
                    && kinds
                        == [
                            "owner.assigned",
                            "customer.updated",
                            "customer.owner_changed",
                        ]
                    && outbox[1].ordering_key == outbox[2].ordering_key
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let notice = Notification::builder(
            crate::notify::Recipient::User(new_owner),
            "owner.assigned",
            "assigned:1",
        )
        .build()
        .unwrap();
        let transfer = Transfer {
            new_owner: Some(new_owner),
            expected_version: 1,
            actor: None,
            reason: None,
        };
        crm(store)
            .with_events(true)
            .change_owner_notifying(TenantId::new(), current.id, transfer, vec![notice])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_bad_notification_stops_the_transfer_before_storage() {
        let store = MockStorage::new();
        let mut bad = Notification::builder(
            crate::notify::Recipient::User(UserId::new()),
            "owner.assigned",
            "k",
        )
        .build()
        .unwrap();
        bad.data = serde_json::json!(1);
        let transfer = Transfer {
            new_owner: None,
            expected_version: 1,
            actor: None,
            reason: None,
        };
        let e = crm(store)
            .change_owner_notifying(TenantId::new(), CustomerId::new(), transfer, vec![bad])
            .await
            .unwrap_err();
        assert_eq!(e.field(), Some("notifications[0].data"));
    }

    #[tokio::test]
    async fn update_without_owner_change_records_none() {
        let current = stored(1);
        let mut store = MockStorage::new();
        let c2 = current.clone();
        store
            .expect_get_customer()
            .returning(move |_, _| Ok(c2.clone()));
        store
            .expect_update_customer()
            .withf(|_, _, _, options| options.ownership.is_none())
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        crm(store)
            .update(TenantId::new(), current, None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn storage_errors_pass_through_with_their_source() {
        let mut store = MockStorage::new();
        store.expect_get_profile().returning(|_, _| {
            Err(Error::storage(
                "test",
                std::io::Error::other("disk on fire"),
            ))
        });
        let err = crm(store)
            .profile(TenantId::new(), CustomerId::new())
            .await
            .unwrap_err();
        let source = std::error::Error::source(&err).expect("source kept");
        assert_eq!(source.to_string(), "disk on fire");
    }

    #[tokio::test]
    async fn ill_typed_rules_never_reach_storage() {
        let mut store = MockStorage::new();
        store.expect_count_matching().never();
        store.expect_find_matching().never();
        store.expect_save_segment().never();
        let crm = crm(store);
        let schema = FieldSchema::new(crate::Currency::parse("EUR").unwrap());
        let rule = crate::segment::parse("lifecycle > 3").unwrap();
        let err = crm
            .preview(TenantId::new(), &rule, &schema, &PageRequest::first(10))
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some("rule"));
        let seg = Segment::dynamic("bad", rule).unwrap();
        assert_eq!(
            crm.create_segment(TenantId::new(), seg, &schema)
                .await
                .unwrap_err()
                .field(),
            Some("rule")
        );
    }

    #[tokio::test]
    async fn page_limits_are_checked_before_storage() {
        let mut store = MockStorage::new();
        store.expect_list_customers().never();
        store.expect_timeline().never();
        let crm = crm(store);
        let bad = PageRequest::first(PageRequest::MAX_LIMIT + 1);
        assert_eq!(
            crm.search(TenantId::new(), &CustomerQuery::all(), &bad)
                .await
                .unwrap_err()
                .field(),
            Some("limit")
        );
        assert_eq!(
            crm.timeline(TenantId::new(), CustomerId::new(), &bad)
                .await
                .unwrap_err()
                .field(),
            Some("limit")
        );
    }
}
