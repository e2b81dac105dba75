//! The schedule port: due instants of scheduled work, indexed by tenant and instant; the
//! store's tenants and the leases of the job runner.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::unsupported;
use crate::error::Result;
use crate::id::TenantId;
use crate::page::{Page, PageRequest};
use crate::schedule::{DueEntry, DueKind, Reschedule};

#[cfg(doc)]
use super::Capability;

/// Due instants of scheduled work (optional: [`Capability::Schedule`]; see
/// [`crate::schedule`] for the semantics), the store's tenants and the job runner's leases
/// ([`Jobs`](crate::service::Jobs)).
///
/// An adapter keeps one entry per record and [`DueKind`]: a case's `case` entry, a deal's
/// `deal` entry, an owned customer's `follow_up` and `pool` entries. In the transaction of
/// every write of such a record it marks the record's entries changed (instant
/// [`CHANGED`](crate::schedule::CHANGED), mark bumped); a change of a customer's lifecycle
/// or tags also marks its cases' and the `deal` entries of deals it is the account of; a
/// write of a case also marks its customer's `pool` entry. The conformance suite states
/// the behaviour exactly.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Entries of `kind` due at or before `until` (changed ones included), ordered by
    /// instant then id, a page at a time ([`Cursor::due`](crate::Cursor::due)). Entries
    /// with nothing pending are never listed.
    async fn due_entries(
        &self,
        _tenant: TenantId,
        _kind: DueKind,
        _until: DateTime<Utc>,
        _page: &PageRequest,
    ) -> Result<Page<DueEntry>> {
        Err(unsupported::<Self>("due_entries"))
    }

    /// Stores each entry's next instant, in one transaction, for the entries whose mark is
    /// still the one given (others changed meanwhile and stay as they are). How many were
    /// stored.
    async fn reschedule(
        &self,
        _tenant: TenantId,
        _kind: DueKind,
        _entries: &[Reschedule],
    ) -> Result<usize> {
        Err(unsupported::<Self>("reschedule"))
    }

    /// The basis the kind's instants were last computed under, if any.
    async fn schedule_basis(&self, _tenant: TenantId, _kind: DueKind) -> Result<Option<String>> {
        Err(unsupported::<Self>("schedule_basis"))
    }

    /// Marks every entry of `kind` changed and records `basis`, in one transaction. How
    /// many entries were marked.
    async fn reset_schedule(&self, _tenant: TenantId, _kind: DueKind, _basis: &str) -> Result<u64> {
        Err(unsupported::<Self>("reset_schedule"))
    }

    /// The store's tenants (those with at least one customer) after `after`, ordered by
    /// id, at most `limit`. A store whose connections see one tenant each (PostgreSQL under
    /// row-level security) answers [`Unsupported`](crate::Error::Unsupported).
    async fn tenants(&self, _after: Option<TenantId>, _limit: u32) -> Result<Vec<TenantId>> {
        Err(unsupported::<Self>("tenants"))
    }

    /// Takes the lease on `job` of `tenant` for `holder` until `until`, unless another
    /// holder's lease on it still holds at `now` (a holder may renew its own); atomic, so
    /// of runners racing for a free lease exactly one gets it. Whether it was taken.
    async fn take_lease(
        &self,
        _tenant: TenantId,
        _job: &str,
        _holder: uuid::Uuid,
        _now: DateTime<Utc>,
        _until: DateTime<Utc>,
    ) -> Result<bool> {
        Err(unsupported::<Self>("take_lease"))
    }

    /// Gives up `holder`'s lease on `job` of `tenant` (nothing if another holds it).
    async fn release_lease(
        &self,
        _tenant: TenantId,
        _job: &str,
        _holder: uuid::Uuid,
    ) -> Result<()> {
        Err(unsupported::<Self>("release_lease"))
    }
}
