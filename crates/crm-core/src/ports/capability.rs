//! What an adapter provides: [`Capability`], [`Capabilities`], [`Backend`].

#[cfg(doc)]
use super::*;

/// A part of the storage an adapter may provide or leave out. The first three are required
/// (every adapter stores customers, interactions and profiles); the rest are optional.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Capability {
    /// Customer records: [`CustomerStore`] but merge, erasure and audit (required).
    Customers,
    /// Interactions: appending and reading ([`InteractionStore`] but archiving; required).
    Interactions,
    /// Profiles ([`ProfileStore`]; required).
    Profiles,
    /// [`CustomerStore::merge_customers`] and its redirects.
    Merge,
    /// [`CustomerStore::erase_customer`].
    Erasure,
    /// [`CustomerStore::audit_history`].
    Audit,
    /// [`InteractionStore::archive_interactions`] and its horizon.
    Archive,
    /// [`ValueStore`].
    Values,
    /// [`SegmentStore`].
    Segments,
    /// [`OutboxStore`], and the outbox messages of every write ([`WriteOptions::outbox`]):
    /// notifications and domain events.
    Outbox,
    /// [`CaseStore`].
    Cases,
    /// [`TaskStore`].
    Tasks,
    /// [`KpiRuleStore`].
    KpiRules,
    /// [`CustomerStore::hand_over`]: a departing owner's customers, open cases and open
    /// tasks moved in one transaction.
    HandOver,
    /// [`AccessStore`]: per-record grants and sharing rules.
    Sharing,
    /// [`AccessStore::record_access`], [`AccessStore::access_log`] and
    /// [`AccessStore::daily_usage`]: the access log and daily quotas.
    AccessLog,
    /// [`SalesStore`]: pipelines, opportunities, their stage history and forecast cells.
    Sales,
    /// [`ScheduleStore`]: due instants of scheduled work, so KPI evaluation and the pool
    /// read only what is due (without it they read every record).
    Schedule,
}

impl Capability {
    /// Every capability, in declaration order.
    pub const ALL: [Capability; 18] = [
        Capability::Customers,
        Capability::Interactions,
        Capability::Profiles,
        Capability::Merge,
        Capability::Erasure,
        Capability::Audit,
        Capability::Archive,
        Capability::Values,
        Capability::Segments,
        Capability::Outbox,
        Capability::Cases,
        Capability::Tasks,
        Capability::KpiRules,
        Capability::HandOver,
        Capability::Sharing,
        Capability::AccessLog,
        Capability::Sales,
        Capability::Schedule,
    ];

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The set of [`Capability`]s an adapter declares.
///
/// ```
/// use crm_core::ports::{Capabilities, Capability};
/// let thin = Capabilities::REQUIRED.with(Capability::Segments);
/// assert!(thin.supports(Capability::Customers) && thin.supports(Capability::Segments));
/// assert!(!thin.supports(Capability::Outbox));
/// assert!(Capabilities::ALL.supports(Capability::KpiRules));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capabilities(u32);

impl Capabilities {
    /// Customers, interactions and profiles: what every adapter provides.
    pub const REQUIRED: Capabilities = Capabilities(
        Capability::Customers.bit() | Capability::Interactions.bit() | Capability::Profiles.bit(),
    );

    /// Every capability.
    pub const ALL: Capabilities = Capabilities((1 << Capability::ALL.len()) - 1);

    /// This set and `capability`.
    pub const fn with(self, capability: Capability) -> Capabilities {
        Capabilities(self.0 | capability.bit())
    }

    /// This set without `capability`.
    pub const fn without(self, capability: Capability) -> Capabilities {
        Capabilities(self.0 & !capability.bit())
    }

    /// Whether `capability` is in the set.
    pub const fn supports(self, capability: Capability) -> bool {
        self.0 & capability.bit() != 0
    }

    /// The capabilities in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.supports(*c))
    }
}

impl std::fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// What an adapter says about itself: its name (as errors name it) and what it provides.
/// Every [`Storage`] implements it; the facade checks [`capabilities`](Backend::capabilities)
/// before it calls an optional port and answers [`Error::Unsupported`](crate::Error) when
/// the adapter lacks it.
pub trait Backend: Send + Sync {
    /// The adapter's name (`sqlite`, `postgres`, `memory`, ...).
    fn name(&self) -> &'static str;

    /// What the adapter provides. The default is everything; an adapter that leaves ports
    /// or methods out (their default implementations answer
    /// [`Error::Unsupported`](crate::Error::Unsupported)) declares what it has.
    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }
}

/// The error of a port method an adapter did not implement: the method's default body.
pub(crate) fn unsupported<T: ?Sized>(operation: &'static str) -> crate::Error {
    crate::Error::unsupported(operation, std::any::type_name::<T>())
}
