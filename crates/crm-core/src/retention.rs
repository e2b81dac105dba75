//! Retention of raw interactions: archive history older than a horizon to a file, purge it,
//! keep the aggregates.
//!
//! [`Interactions::archive`](crate::service::Interactions::archive) writes every interaction of a tenant that occurred before
//! a given instant to a writer, one JSON object per line, then deletes them from the store
//! and records the instant as the tenant's archive horizon ([`Interactions::archive_horizon`](crate::service::Interactions::archive_horizon): the
//! timeline before it is in the archive). Profiles keep their aggregates: they are deltas
//! already applied. Afterwards interactions before the horizon are refused by
//! [`Interactions::log_batch`](crate::service::Interactions::log_batch) (their idempotency keys went with the archived rows, so a re-sent
//! old row could otherwise be counted twice). Rows logged while the archive runs are kept
//! for the next run (and may be written to both archives).
//!
//! A tenant that keeps, say, 13 months online runs it periodically with
//! `before = now - 13 months`.

use chrono::{DateTime, Utc};

/// What an archive run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Interactions written to the archive.
    pub exported: u64,
    /// Interactions deleted from the store.
    pub purged: u64,
    /// The tenant's archive horizon now.
    pub horizon: DateTime<Utc>,
}
