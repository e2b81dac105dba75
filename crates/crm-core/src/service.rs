//! The use-case facade a host calls: [`Crm`].

use std::collections::BTreeSet;
use std::sync::Arc;

use tracing::instrument;

use crate::clock::{truncate_to_micros, Clock, SystemClock};
use crate::customer::{Customer, CustomerQuery, OwnershipChange};
use crate::error::{Error, Result};
use crate::id::{CustomerId, TenantId, UserId};
use crate::interaction::{BatchReport, Interaction};
use crate::page::{Page, PageRequest};
use crate::ports::Storage;
use crate::profile::Profile;

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
        }
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

    /// Registers a new customer: sets version 1 and both timestamps to now, then stores it.
    /// Errors: validation, [`Error::Duplicate`] (id or external id taken).
    #[instrument(skip_all, fields(tenant = %tenant, customer = %customer.id))]
    pub async fn register(&self, tenant: TenantId, mut customer: Customer) -> Result<Customer> {
        customer.validate()?;
        let now = self.clock.now();
        customer.version = 1;
        customer.created_at = now;
        customer.updated_at = now;
        self.storage.insert_customer(tenant, &customer).await?;
        Ok(customer)
    }

    /// Reads a customer. Errors: [`Error::NotFound`].
    #[instrument(skip(self))]
    pub async fn customer(&self, tenant: TenantId, id: CustomerId) -> Result<Customer> {
        self.storage.get_customer(tenant, id).await
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
        let ownership = (current.owner != customer.owner).then(|| OwnershipChange {
            customer: customer.id,
            from: current.owner,
            to: customer.owner,
            changed_by: actor,
            reason: None,
            at: customer.updated_at,
            version: customer.version,
        });
        self.storage
            .update_customer(tenant, &customer, expected, ownership)
            .await?;
        Ok(customer)
    }

    /// Transfers a customer to `new_owner` (`None`: back to the shared pool), recording who
    /// did it and why. `expected_version` is the version the caller last saw.
    ///
    /// Errors: [`Error::NotFound`], [`Error::Conflict`], validation of `reason`.
    #[instrument(skip(self, reason))]
    pub async fn change_owner(
        &self,
        tenant: TenantId,
        id: CustomerId,
        new_owner: Option<UserId>,
        expected_version: u64,
        actor: Option<UserId>,
        reason: Option<&str>,
    ) -> Result<Customer> {
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
        self.storage
            .update_customer(tenant, &customer, expected_version, Some(change))
            .await?;
        Ok(customer)
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
    #[instrument(skip_all, fields(tenant = %tenant, rows = batch.len()))]
    pub async fn log_batch(
        &self,
        tenant: TenantId,
        mut batch: Vec<Interaction>,
    ) -> Result<BatchReport> {
        if batch.len() > MAX_BATCH {
            return Err(Error::validation(
                "interactions",
                format!("at most {MAX_BATCH} per batch, got {}", batch.len()),
            ));
        }
        if batch.is_empty() {
            return Ok(BatchReport::default());
        }
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
        let report = self.storage.append_interactions(tenant, batch).await?;
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
