//! The use-case facade a host calls: [`Crm`], and the services it hands out.
//!
//! Every use case is scoped to one tenant: [`Crm::tenant`] gives a [`TenantCrm`] handle,
//! and the handle gives one service per capability, each holding only the storage ports it
//! uses:
//!
//! | Service | What it does | Ports |
//! |---|---|---|
//! | [`Customers`] | register, read, update, search, transfer, merge, audit trail, profile | customers, profiles |
//! | [`Duplicates`] | check one record, register unless a likely duplicate, scan a tenant | customers, segments |
//! | [`Sources`] | create or update customers from source systems' records | customers, segments |
//! | [`Interactions`] | log (one, a batch), timelines, archive | interactions |
//! | [`Value`] | value scores, classes and fitted models | values |
//! | [`Segments`] | preview, create, refresh, members | segments |
//! | [`Cases`] | open, read, record events | cases |
//! | [`Tasks`] | create, snooze, complete, remind when due | tasks |
//! | [`Sales`] | pipelines, opportunities, stage moves, the ERP handoff, forecasts | sales |
//! | [`Notifications`] | enqueue, dead letters, requeue | outbox |
//! | [`Kpis`] | KPI rules and their evaluation (one evaluator) | KPI rules, cases, customers, interactions, outbox |
//! | [`Pool`] | return quiet customers to the pool, claim from it | customers, profiles, cases, outbox |
//! | [`Privacy`] | export and erase a customer's personal data | all |
//! | [`Staff`] | hand over what a departing staff member holds, in one transaction | customers, cases, tasks, access |
//! | [`Sharing`] | share customers with users and units, sharing rules | customers, access |
//! | [`AccessLog`] | who read which contacts and exported what, daily use, unusual access | access |
//!
//! ```
//! use std::sync::Arc;
//! use crm_core::{Crm, Customer, TenantId};
//! # async fn demo(storage: Arc<dyn crm_core::Storage>) -> crm_core::Result<()> {
//! let crm = Crm::new(storage);
//! let acme = crm.tenant(TenantId::new());
//! let ann = acme.customers().register(Customer::person("Ann").build()?).await?;
//! assert_eq!(acme.customers().get(ann.id).await?.name.as_str(), "Ann");
//! # Ok(()) }
//! ```
//!
//! `crm.tenant(t)` is the tenant's system handle: it sees and changes everything.
//! [`TenantCrm::as_user`] scopes a handle to one principal and its roles
//! ([`crate::access`]): customers, interactions, cases, tasks, memberships, exports and
//! erasure are checked against what the principal reaches; the jobs and administration
//! (KPI evaluation, the pool, merges, sharing rules, ...) refuse a scoped handle.
//!
//! Domain events are built in one place, the recorder every service shares,
//! and written into the outbox in the change's transaction when [`Crm::with_events`] is on.

use std::sync::Arc;

use crate::access::{Org, Role, Visibility};
use crate::clock::{Clock, SystemClock};
use crate::customer::Customer;
use crate::error::{Error, Result};
use crate::id::{CustomerId, TenantId, UserId};
use crate::notify::Directory;
use crate::ports::{Capabilities, Capability, Storage};

/// `Debug` for a service: its name and tenant (its ports print nothing useful).
macro_rules! debug_by_tenant {
    ($service:ident) => {
        impl std::fmt::Debug for $service {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($service))
                    .field("tenant", &self.ctx.tenant)
                    .finish_non_exhaustive()
            }
        }
    };
}

mod access_log;
mod accounts;
mod cases;
mod ctx;
mod customers;
mod due;
mod duplicates;
mod evaluator;
mod events;
mod interactions;
mod jobs;
mod kpis;
mod notifications;
mod pool;
mod privacy;
mod sales;
mod segments;
mod sharing;
mod sources;
mod staff;
mod tasks;
mod value;

pub use access_log::AccessLog;
pub use accounts::{Accounts, MAX_ROLLUP_CONTACTS};
pub use cases::Cases;
pub(crate) use ctx::Ctx;
pub use customers::Customers;
pub use duplicates::Duplicates;
pub(crate) use evaluator::Evaluator;
pub use interactions::Interactions;
pub use jobs::{
    DispatchJob, Job, JobCounts, JobRun, Jobs, JobsReport, KpiJob, PoolJob, ReminderJob,
};
pub use kpis::Kpis;
pub use notifications::Notifications;
pub use pool::Pool;
pub use privacy::Privacy;
pub use sales::Sales;
pub use segments::Segments;
pub use sharing::Sharing;
pub use sources::Sources;
pub use staff::Staff;
pub use tasks::Tasks;
pub use value::Value;

pub(crate) use events::Recorder;

/// Largest batch the services accept in one call (interactions, customers, notifications,
/// value entries, membership changes); split bigger imports.
pub const MAX_BATCH: usize = 100_000;

/// The CRM over a storage adapter and a clock: hands out a [`TenantCrm`] per tenant.
///
/// Cheap to clone (two `Arc`s). Every service method validates its input before anything
/// is written, and is instrumented with a `tracing` span (silent unless the host installs
/// a subscriber).
#[derive(Clone)]
pub struct Crm {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    events: bool,
    directory: Option<Arc<dyn Directory>>,
}

impl std::fmt::Debug for Crm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crm")
            .field("backend", &self.storage.name())
            .field("clock", &self.clock)
            .field("events", &self.events)
            .finish()
    }
}

impl Crm {
    /// A CRM over `storage`, using the system clock.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Crm {
            storage,
            clock: Arc::new(SystemClock),
            events: false,
            directory: None,
        }
    }

    /// The host's staff directory, whose organisation ([`Directory::org`]) scoped handles
    /// resolve their roles against ([`TenantCrm::as_user`]). Without one the organisation
    /// is empty: unit and subordinate scopes then reach a user's own records only.
    pub fn with_directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Writes a domain event ([`crate::notify::events`]) into the outbox with every
    /// change, in the change's transaction: customer created, updated, owner changed,
    /// merged and erased, interaction logged, segment entered and left, case opened,
    /// breached and resolved. Off by default; turn it on when a
    /// [`Dispatcher`](crate::notify::Dispatcher) with an event sink delivers them. With
    /// events on, an adapter without an outbox answers every write with
    /// [`Error::Unsupported`].
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

    /// What the storage adapter provides (see [`Backend::capabilities`](crate::ports::Backend::capabilities)).
    pub fn capabilities(&self) -> Capabilities {
        self.storage.capabilities()
    }

    /// A job runner over every tenant of the store, with no jobs yet: add them with
    /// [`Jobs::with_job`] ([`KpiJob`], [`ReminderJob`], [`PoolJob`], [`DispatchJob`], or
    /// your own), then call [`Jobs::run_due`] from a timer, in as many instances as you
    /// like.
    pub fn jobs(&self) -> Jobs {
        Jobs::new(self.clone())
    }

    /// The use cases of one tenant. Cheap: a handle, nothing is read.
    pub fn tenant(&self, tenant: TenantId) -> TenantCrm {
        TenantCrm {
            crm: self.clone(),
            tenant,
            principal: None,
        }
    }
}

/// The use cases of one tenant (see [`Crm::tenant`]): one service per capability.
///
/// Services are cheap handles (a few `Arc`s); get one per call or keep it.
///
/// The handle from [`Crm::tenant`] is the tenant's system handle: it sees and changes
/// everything (for jobs and trusted code). [`TenantCrm::as_user`] gives a handle scoped to
/// one principal.
#[derive(Clone, Debug)]
pub struct TenantCrm {
    crm: Crm,
    tenant: TenantId,
    principal: Option<Arc<Visibility>>,
}

impl TenantCrm {
    /// The tenant this handle works on.
    pub fn id(&self) -> TenantId {
        self.tenant
    }

    /// The CRM this handle came from (unscoped: for trusted code; give code that must stay
    /// within a principal's reach the scoped handle only, not this).
    pub fn crm(&self) -> &Crm {
        &self.crm
    }

    /// A handle scoped to `user` holding `roles` (see [`crate::access`]), resolved against
    /// the tenant's organisation from the CRM's directory ([`Crm::with_directory`]).
    ///
    /// Through it, customers and interactions are guarded: a read of a record the roles do
    /// not reach, and a write they do not allow, are [`Error::Forbidden`] with nothing
    /// written; searches return only reached customers; contact points come back masked
    /// when the roles mask them and for pool customers ([`Visibility::masks`]). Grants and
    /// sharing rules ([`Sharing`]) in force when the handle is made widen what it reaches
    /// (an adapter without [`Capability::Sharing`] has none); a grant given later applies
    /// to handles made later. Cases and tasks are guarded by their own scopes (see
    /// [`Cases`] and [`Tasks`]), segment memberships and customers' value data by the
    /// customer's, exports and erasure by [`Action::Export`](crate::access::Action) and
    /// `Erase`; segment previews count only what the principal reads; a principal claims
    /// pool customers for itself. What is left for jobs and trusted code (segment
    /// creation and refreshes, value writes, KPI rules and evaluation, returning customers
    /// to the pool, notifications, duplicates, sources, merges, archives, bulk transfers,
    /// hand-overs, sharing rules, daily use) answers every call with
    /// [`Error::Forbidden`]: use the system handle for it.
    ///
    /// Call it on the system handle: a scoped handle cannot re-scope itself (to another
    /// user or wider roles), so code handed a scoped handle stays within it.
    ///
    /// Errors: validation of a role (naming `roles[i]`), or of `grants` when the user
    /// holds more than [`Visibility::MAX_GRANTS`]; the directory's and storage's errors;
    /// [`Error::Forbidden`] on a scoped handle.
    pub async fn as_user(&self, user: UserId, roles: &[Role]) -> Result<TenantCrm> {
        if self.principal.is_some() {
            return Err(Error::forbidden(
                "as_user",
                "through a principal-scoped handle (scope the tenant's system handle)",
            ));
        }
        for (i, role) in roles.iter().enumerate() {
            role.validate()
                .map_err(|e| e.in_field(&format!("roles[{i}]")))?;
        }
        let org = match &self.crm.directory {
            Some(directory) => directory.org(self.tenant).await?,
            None => Org::new(),
        };
        let mut visibility = Visibility::resolve(&org, user, roles);
        if self
            .crm
            .storage
            .capabilities()
            .supports(Capability::Sharing)
        {
            let storage = &self.crm.storage;
            let limit = Visibility::MAX_GRANTS.saturating_add(1);
            let grants = storage
                .grants_to(self.tenant, user, visibility.unit(), limit)
                .await?;
            let rules = storage.sharing_rules(self.tenant).await?;
            visibility = visibility
                .with_grants(&grants)?
                .with_sharing_rules(&rules)?;
        }
        Ok(TenantCrm {
            crm: self.crm.clone(),
            tenant: self.tenant,
            principal: Some(Arc::new(visibility)),
        })
    }

    /// What the handle's principal reaches (`None`: the system handle).
    pub fn principal(&self) -> Option<&Visibility> {
        self.principal.as_deref()
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            tenant: self.tenant,
            clock: self.crm.clock.clone(),
            backend: self.crm.storage.name(),
            capabilities: self.crm.storage.capabilities(),
            events: self.crm.events,
            principal: self.principal.clone(),
            storage: self.crm.storage.clone(),
        }
    }

    /// Customers: register, read, update, search, transfer, merge; audit trail and profile.
    pub fn customers(&self) -> Customers {
        let s = &self.crm.storage;
        Customers::new(self.ctx(), s.clone(), s.clone())
    }

    /// Duplicate detection over the stored customers.
    pub fn duplicates(&self) -> Duplicates {
        Duplicates::new(self.customers(), self.crm.storage.clone())
    }

    /// Customers kept in step with source systems (ERP, shop, helpdesk).
    pub fn sources(&self) -> Sources {
        Sources::new(self.customers(), self.crm.storage.clone())
    }

    /// Interactions: log, timelines, archive.
    pub fn interactions(&self) -> Interactions {
        let s = &self.crm.storage;
        Interactions::new(self.ctx(), s.clone(), s.clone())
    }

    /// Customer value: scores, classes, fitted models.
    pub fn value(&self) -> Value {
        Value::new(self.ctx(), self.crm.storage.clone())
    }

    /// Segments: preview, create, refresh, members.
    pub fn segments(&self) -> Segments {
        Segments::new(self.ctx(), self.crm.storage.clone())
    }

    /// Service cases.
    pub fn cases(&self) -> Cases {
        Cases::new(self.ctx(), self.crm.storage.clone())
    }

    /// Accounts: people related to organisations, the organisation hierarchy, account
    /// timelines and rolled-up profiles, transfers with the contacts.
    pub fn accounts(&self) -> Accounts {
        Accounts::new(self.ctx(), self.crm.storage.clone())
    }

    /// Pipelines, opportunities, the ERP handoff and forecasts.
    pub fn sales(&self) -> Sales {
        Sales::new(self.ctx(), self.crm.storage.clone())
    }

    /// Tasks and their reminders.
    pub fn tasks(&self) -> Tasks {
        Tasks::new(self.ctx(), self.crm.storage.clone())
    }

    /// Notifications through the outbox.
    pub fn notifications(&self) -> Notifications {
        Notifications::new(self.ctx(), self.crm.storage.clone())
    }

    /// KPI rules and their evaluation.
    pub fn kpis(&self) -> Kpis {
        let s = &self.crm.storage;
        Kpis::new(
            self.ctx(),
            s.clone(),
            Evaluator::new(self.customers(), self.notifications(), s.clone(), s.clone()),
        )
    }

    /// The shared pool of unowned customers.
    pub fn pool(&self) -> Pool {
        Pool::new(
            self.customers(),
            self.notifications(),
            self.crm.storage.clone(),
        )
    }

    /// What staff hold as a whole: the hand-over when someone leaves.
    pub fn staff(&self) -> Staff {
        let s = &self.crm.storage;
        Staff::new(self.customers(), s.clone(), s.clone(), s.clone())
    }

    /// The access log: contact reads and exports through scoped handles, daily use, and
    /// unusual access.
    pub fn access_log(&self) -> AccessLog {
        AccessLog::new(self.ctx(), self.crm.storage.clone())
    }

    /// Customers shared with users and units; sharing rules.
    pub fn sharing(&self) -> Sharing {
        Sharing::new(self.customers(), self.crm.storage.clone())
    }

    /// Personal-data export and erasure.
    pub fn privacy(&self) -> Privacy {
        Privacy::new(self.ctx(), self.customers(), self.crm.storage.clone())
    }
}

/// Checks a per-customer batch: at most [`MAX_BATCH`] entries, each valid (errors name the
/// entry, like `scores[3].p_alive`).
fn check_entries<T>(
    field: &str,
    entries: &[(CustomerId, T)],
    validate: impl Fn(&T) -> Result<()>,
) -> Result<()> {
    check_batch(field, entries.len())?;
    for (i, (_, v)) in entries.iter().enumerate() {
        validate(v).map_err(|e| e.in_field(&format!("{field}[{i}]")))?;
    }
    Ok(())
}

/// At most [`MAX_BATCH`] rows in one call.
fn check_batch(field: &str, len: usize) -> Result<()> {
    if len > MAX_BATCH {
        return Err(Error::validation(
            field,
            format!("at most {MAX_BATCH} per call, got {len}"),
        ));
    }
    Ok(())
}

/// The parts of an ownership transfer (see [`Customers::change_owner`]).
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

/// A transfer's reason: at most 1000 characters, no control characters but newlines.
fn check_reason(reason: Option<&str>) -> Result<()> {
    if let Some(r) = reason {
        if r.chars().count() > 1000 || r.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Error::validation(
                "reason",
                "at most 1000 characters, no control characters",
            ));
        }
    }
    Ok(())
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
mod tests;
