//! [`MemoryStore`]: the in-memory reference implementation of every storage port.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::profile::deltas;
use crm_core::{
    BatchReport, Cursor, Customer, CustomerId, CustomerQuery, CustomerStore, Error, ExternalRef,
    Interaction, InteractionId, InteractionStore, OwnershipChange, Page, PageRequest, Profile,
    ProfileStore, Result, TenantId, ValueModel, ValueScores, ValueStore,
};

type Key<T> = (TenantId, T);

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
    models: BTreeMap<Key<DateTime<Utc>>, ValueModel>,
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
    async fn insert_customer(&self, tenant: TenantId, customer: &Customer) -> Result<()> {
        let mut s = self.lock();
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
        ownership: Option<OwnershipChange>,
    ) -> Result<()> {
        let mut s = self.lock();
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
        if let Some(change) = ownership {
            s.ownership
                .entry((tenant, customer.id))
                .or_default()
                .push(change);
        }
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
}

#[async_trait]
impl InteractionStore for MemoryStore {
    async fn append_interactions(
        &self,
        tenant: TenantId,
        batch: Vec<Interaction>,
    ) -> Result<BatchReport> {
        let mut s = self.lock();
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
        for (customer, delta) in deltas(&fresh) {
            s.profiles
                .entry((tenant, customer))
                .or_default()
                .merge(&delta);
        }
        for row in fresh {
            s.interaction_keys.insert((tenant, row.key.clone()), row.id);
            s.timelines
                .entry((tenant, row.customer))
                .or_default()
                .insert((row.occurred_at, row.id));
            s.interactions.insert((tenant, row.id), row);
        }
        Ok(report)
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
        if let Some((missing, _)) = scores
            .iter()
            .find(|(c, _)| !s.customers.contains_key(&(tenant, *c)))
        {
            return Err(not_found(*missing));
        }
        for (c, v) in scores {
            s.scores.insert((tenant, c), v);
        }
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

    async fn latest_value_model(&self, tenant: TenantId) -> Result<Option<ValueModel>> {
        let s = self.lock();
        Ok(s.models
            .range((tenant, DateTime::<Utc>::MIN_UTC)..=(tenant, DateTime::<Utc>::MAX_UTC))
            .next_back()
            .map(|(_, m)| m.clone()))
    }
}
