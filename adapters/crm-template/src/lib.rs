//! A template for a storage adapter of `crm-core`. Copy this crate, rename it, and replace
//! [`Tables`] with your backend.
//!
//! [`TemplateStore`] implements the three ports every adapter must have (customers,
//! interactions, profiles), declares [`Capabilities::REQUIRED`], and leaves every other
//! port to its default body, which answers [`Error::Unsupported`]. `tests/conformance.rs`
//! runs the groups of the conformance suite that match what it declares; add a group there
//! each time you implement another port and declare its [`Capability`]. The guide for
//! adapter authors (`ADAPTERS.md` at the root of the repository) says what each write must
//! store in its transaction.
//!
//! Here the "backend" is a set of ordered maps behind one mutex: everything a method does
//! while it holds the lock stands for one transaction of a real database. Each method
//! checks everything first and writes only when nothing can fail any more, which is what a
//! rolled-back transaction gives a database for free.
//!
//! ```
//! use std::sync::Arc;
//! use crm_core::{Crm, Customer, TenantId};
//! use crm_template::TemplateStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> crm_core::Result<()> {
//! let crm = Crm::new(Arc::new(TemplateStore::new()));
//! let acme = crm.tenant(TenantId::new());
//! let ann = acme.customers().register(Customer::person("Ann").build()?).await?;
//! assert_eq!(acme.customers().get(ann.id).await?, ann);
//! # Ok(()) }
//! ```
//!
//! Dependencies: `crm-core` (the ports), `async-trait` (the ports are async traits) and
//! `chrono` (instants in the interaction queries); nothing else.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::profile::deltas;
#[cfg(doc)]
use crm_core::Capability;
use crm_core::{
    AccessStore, Backend, BatchReport, Capabilities, CaseStore, Cursor, Customer, CustomerId,
    CustomerQuery, CustomerStore, Error, ExternalRef, Interaction, InteractionId, InteractionStore,
    KpiRuleStore, OutboxStore, OwnershipChange, Page, PageRequest, Profile, ProfileStore, Result,
    SalesStore, ScheduleStore, SegmentStore, TaskStore, TenantId, ValueStore, WriteOptions,
};

/// The adapter's name in errors ([`Error::Unsupported`], [`Error::Corrupt`]).
const BACKEND: &str = "template";

/// The tables of the template's backend, one map per table, keyed by tenant first (every
/// read and write names its tenant; a real backend puts the tenant in every key and index
/// too).
#[derive(Default)]
pub struct Tables {
    customers: BTreeMap<(TenantId, CustomerId), Customer>,
    /// The unique index on external ids: which customer holds each.
    external_ids: BTreeMap<(TenantId, ExternalRef), CustomerId>,
    /// Ownership transfers per customer, oldest first.
    ownership: BTreeMap<(TenantId, CustomerId), Vec<OwnershipChange>>,
    interactions: BTreeMap<(TenantId, InteractionId), Interaction>,
    /// The unique index on idempotency keys.
    interaction_keys: BTreeSet<(TenantId, ExternalRef)>,
    /// The timeline index: a customer's interactions by when they occurred.
    timelines: BTreeSet<(TenantId, CustomerId, DateTime<Utc>, InteractionId)>,
    profiles: BTreeMap<(TenantId, CustomerId), Profile>,
}

/// A storage adapter of the required ports over [`Tables`].
#[derive(Default)]
pub struct TemplateStore {
    tables: Mutex<Tables>,
}

impl std::fmt::Debug for TemplateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateStore").finish_non_exhaustive()
    }
}

impl TemplateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Begins a "transaction". A panic while holding the lock cannot leave half a write
    /// behind (methods write only after every check), so a poisoned lock is taken over.
    fn begin(&self) -> MutexGuard<'_, Tables> {
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Backend for TemplateStore {
    fn name(&self) -> &'static str {
        BACKEND
    }

    /// Customers, interactions and profiles. Declare each further [`Capability`] as you
    /// implement its port.
    fn capabilities(&self) -> Capabilities {
        Capabilities::REQUIRED
    }
}

fn customer_not_found(id: CustomerId) -> Error {
    Error::not_found("customer", id)
}

fn duplicate_external_id(r: &ExternalRef) -> Error {
    Error::Duplicate {
        entity: "customer",
        key: format!("external id {r}"),
    }
}

impl Tables {
    /// `Duplicate` unless every external id of `customer` is free or already its own.
    fn check_external_ids(&self, tenant: TenantId, customer: &Customer) -> Result<()> {
        for r in &customer.external_ids {
            match self.external_ids.get(&(tenant, r.clone())) {
                Some(holder) if *holder != customer.id => return Err(duplicate_external_id(r)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Stores a new customer with its index rows and an empty profile.
    fn put_new(&mut self, tenant: TenantId, customer: Customer) {
        for r in &customer.external_ids {
            self.external_ids.insert((tenant, r.clone()), customer.id);
        }
        self.profiles
            .insert((tenant, customer.id), Profile::default());
        self.customers.insert((tenant, customer.id), customer);
    }
}

#[async_trait]
impl CustomerStore for TemplateStore {
    async fn insert_customer(
        &self,
        tenant: TenantId,
        customer: &Customer,
        options: WriteOptions,
    ) -> Result<()> {
        self.insert_customers(tenant, vec![customer.clone()], options)
            .await
    }

    async fn insert_customers(
        &self,
        tenant: TenantId,
        customers: Vec<Customer>,
        options: WriteOptions,
    ) -> Result<()> {
        // Without the outbox capability there is nowhere to put messages: `into_outbox`
        // checks them, and the facade never sends any to an adapter without it.
        let outbox = options.into_outbox()?;
        if !outbox.is_empty() {
            return Err(Error::unsupported("outbox messages", BACKEND));
        }
        let mut t = self.begin();
        // Every check against the store and within the batch, before any write.
        let mut ids = BTreeSet::new();
        let mut refs = BTreeSet::new();
        for c in &customers {
            if t.customers.contains_key(&(tenant, c.id)) || !ids.insert(c.id) {
                return Err(Error::Duplicate {
                    entity: "customer",
                    key: format!("id {}", c.id),
                });
            }
            t.check_external_ids(tenant, c)?;
            if let Some(r) = c.external_ids.iter().find(|r| !refs.insert((*r).clone())) {
                return Err(duplicate_external_id(r));
            }
        }
        for c in customers {
            t.put_new(tenant, c);
        }
        Ok(())
    }

    async fn get_customer(&self, tenant: TenantId, id: CustomerId) -> Result<Customer> {
        self.begin()
            .customers
            .get(&(tenant, id))
            .cloned()
            .ok_or_else(|| customer_not_found(id))
    }

    async fn update_customer(
        &self,
        tenant: TenantId,
        customer: &Customer,
        expected_version: u64,
        options: WriteOptions,
    ) -> Result<()> {
        // Audit entries need the `Audit` capability and messages the `Outbox` one; this
        // template stores neither, so it keeps only the ownership record.
        let (_audit, ownership, outbox) = options.into_parts()?;
        if !outbox.is_empty() {
            return Err(Error::unsupported("outbox messages", BACKEND));
        }
        let mut t = self.begin();
        let current = t
            .customers
            .get(&(tenant, customer.id))
            .ok_or_else(|| customer_not_found(customer.id))?;
        if current.version != expected_version {
            return Err(Error::stale_write(
                "customer",
                customer.id,
                expected_version,
                Some(current.version),
            ));
        }
        t.check_external_ids(tenant, customer)?;
        let released: Vec<ExternalRef> = current.external_ids.iter().cloned().collect();
        for r in released {
            t.external_ids.remove(&(tenant, r));
        }
        for r in &customer.external_ids {
            t.external_ids.insert((tenant, r.clone()), customer.id);
        }
        if let Some(change) = ownership {
            t.ownership
                .entry((tenant, customer.id))
                .or_default()
                .push(change);
        }
        t.customers.insert((tenant, customer.id), customer.clone());
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
        let t = self.begin();
        let from = (tenant, after.unwrap_or(CustomerId::from_bytes([0; 16])));
        // Keyset paging by id: read one more than asked to know whether a next page exists.
        let rows: Vec<Customer> = t
            .customers
            .range(from..)
            .take_while(|((owner, _), _)| *owner == tenant)
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
        let t = self.begin();
        if !t.customers.contains_key(&(tenant, id)) {
            return Err(customer_not_found(id));
        }
        let mut history = t.ownership.get(&(tenant, id)).cloned().unwrap_or_default();
        history.reverse();
        Ok(history)
    }
}

#[async_trait]
impl InteractionStore for TemplateStore {
    async fn append_interactions(
        &self,
        tenant: TenantId,
        batch: Vec<Interaction>,
        options: WriteOptions,
    ) -> Result<BatchReport> {
        let outbox = options.into_outbox()?;
        if !outbox.is_empty() {
            return Err(Error::unsupported("outbox messages", BACKEND));
        }
        let mut t = self.begin();
        let total = batch.len();
        let mut keys = BTreeSet::new();
        let mut ids = BTreeSet::new();
        let mut fresh = Vec::with_capacity(total);
        for row in batch {
            if !t.customers.contains_key(&(tenant, row.customer)) {
                return Err(customer_not_found(row.customer));
            }
            // A known idempotency key is a duplicate to count, not an error.
            if t.interaction_keys.contains(&(tenant, row.key.clone()))
                || !keys.insert(row.key.clone())
            {
                continue;
            }
            if t.interactions.contains_key(&(tenant, row.id)) || !ids.insert(row.id) {
                return Err(Error::Duplicate {
                    entity: "interaction",
                    key: format!("id {}", row.id),
                });
            }
            fresh.push(row);
        }
        // The profiles of the touched customers, computed before any write: totals that
        // would overflow refuse the whole batch.
        let mut profiles = Vec::new();
        for (customer, delta) in deltas(&fresh)? {
            let mut p = t
                .profiles
                .get(&(tenant, customer))
                .cloned()
                .unwrap_or_default();
            p.merge(&delta)?;
            profiles.push(((tenant, customer), p));
        }
        let report = BatchReport {
            inserted: fresh.len(),
            duplicates: total - fresh.len(),
        };
        t.profiles.extend(profiles);
        for row in fresh {
            t.interaction_keys.insert((tenant, row.key.clone()));
            t.timelines
                .insert((tenant, row.customer, row.occurred_at, row.id));
            t.interactions.insert((tenant, row.id), row);
        }
        Ok(report)
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
        let t = self.begin();
        // Oldest first by (occurred_at, id). A database answers this from an index on
        // (tenant, occurred_at, id); the template sorts.
        let mut rows: Vec<&Interaction> = t
            .interactions
            .range((tenant, InteractionId::from_bytes([0; 16]))..)
            .take_while(|((owner, _), _)| *owner == tenant)
            .map(|(_, i)| i)
            .filter(|i| i.occurred_at >= from && i.occurred_at < to)
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
        let t = self.begin();
        if !t.customers.contains_key(&(tenant, customer)) {
            return Err(customer_not_found(customer));
        }
        // Newest first: walk the timeline index backwards from the cursor.
        let lowest = (
            tenant,
            customer,
            DateTime::<Utc>::MIN_UTC,
            InteractionId::from_bytes([0; 16]),
        );
        let highest = match after {
            Some((at, id)) => (tenant, customer, at, id),
            None => (
                tenant,
                customer,
                DateTime::<Utc>::MAX_UTC,
                InteractionId::from_bytes([0xff; 16]),
            ),
        };
        let rows: Vec<Interaction> = t
            .timelines
            .range(lowest..highest)
            .rev()
            .take(page.limit as usize + 1)
            .filter_map(|(_, _, _, id)| t.interactions.get(&(tenant, *id)).cloned())
            .collect();
        Ok(Page::from_overfetch(rows, page.limit, |i| {
            Cursor::timeline(i.occurred_at, i.id)
        }))
    }
}

#[async_trait]
impl ProfileStore for TemplateStore {
    async fn get_profile(&self, tenant: TenantId, customer: CustomerId) -> Result<Profile> {
        self.begin()
            .profiles
            .get(&(tenant, customer))
            .cloned()
            .ok_or_else(|| customer_not_found(customer))
    }
}

// The optional ports, left to their defaults: every method answers `Error::Unsupported`
// (`redirect` and `archive_horizon` answer `Ok(None)`). Replace an empty impl with a real
// one, declare its capability in `Backend::capabilities`, and add its group to
// `tests/conformance.rs`.
impl ValueStore for TemplateStore {}
impl SegmentStore for TemplateStore {}
impl OutboxStore for TemplateStore {}
impl CaseStore for TemplateStore {}
impl TaskStore for TemplateStore {}
impl KpiRuleStore for TemplateStore {}
impl AccessStore for TemplateStore {}
impl SalesStore for TemplateStore {}
impl ScheduleStore for TemplateStore {}
