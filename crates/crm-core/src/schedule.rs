//! Due instants: when each record's scheduled work next needs looking at.
//!
//! Scheduled work (KPI evaluation, follow-up gaps, the pool) used to read every record of a
//! tenant on every run. A store with [`Capability::Schedule`](crate::Capability::Schedule)
//! keeps, per record and [`DueKind`], the instant at which a rule's state can next change:
//! the runs read only the entries due at or before now and store each one's next instant.
//!
//! The instants are kept exact by two facts:
//!
//! - **Every write marks.** Storing a case, a deal or an owned customer marks its entries
//!   *changed* in the write's own transaction (and a change of a customer's lifecycle or
//!   tags marks its cases and the deals it is the account of, whose rules may filter on
//!   them; a case marks its customer's pool entry, which depends on open cases). A changed
//!   entry is due at once: its instant is [`CHANGED`], before every real instant.
//! - **Contact only postpones.** Interactions never make a follow-up, pool or deal-touch
//!   deadline earlier (a later contact starts a later gap), so they mark nothing: an entry
//!   looked at before its real deadline is given the new one.
//!
//! Each entry carries a `mark` that every change bumps. A run stores the next instant it
//! computed only if the mark is still the one it read ([`Reschedule`]); an entry changed
//! meanwhile stays changed and is looked at by the next run.
//!
//! The rules an instant was computed under are recorded as the kind's *basis* (a
//! fingerprint of the rules, see [`basis`]): a run under other rules first marks every
//! entry of the kind changed, so the next runs recompute them all, page by page, committed
//! as they go (a run that stops half-way leaves the rest marked for the next one).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The instant of an entry marked changed: the Unix epoch, before every real instant.
pub const CHANGED: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// What a due entry schedules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DueKind {
    /// A case's next KPI warning or breach (entry per case).
    Case,
    /// A customer's next follow-up-gap warning or breach (entry per owned customer).
    FollowUp,
    /// A deal's next KPI warning or breach (entry per deal).
    Deal,
    /// A customer's next pool notice or reclaim (entry per owned customer).
    Pool,
}

impl DueKind {
    /// Every kind.
    pub const ALL: [DueKind; 4] = [
        DueKind::Case,
        DueKind::FollowUp,
        DueKind::Deal,
        DueKind::Pool,
    ];

    /// The kind's name as stored: `case`, `follow_up`, `deal`, `pool`.
    pub fn as_str(self) -> &'static str {
        match self {
            DueKind::Case => "case",
            DueKind::FollowUp => "follow_up",
            DueKind::Deal => "deal",
            DueKind::Pool => "pool",
        }
    }

    /// The kind named `name` (as [`DueKind::as_str`] writes it).
    /// Errors: validation on `kind` for another name.
    pub fn parse(name: &str) -> Result<Self> {
        DueKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| Error::validation("kind", format!("no due kind named {name:?}")))
    }
}

impl std::fmt::Display for DueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry that is due: its record's id, its instant ([`CHANGED`] when the record changed
/// since its instant was computed) and its mark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueEntry {
    /// The record: a case, deal or customer id, by the kind.
    pub id: uuid::Uuid,
    /// When it became due.
    pub due_at: DateTime<Utc>,
    /// The entry's mark when read; pass it back in [`Reschedule::mark`].
    pub mark: i64,
}

impl DueEntry {
    /// Whether the record changed since its instant was computed.
    pub fn changed(&self) -> bool {
        self.due_at <= CHANGED
    }

    /// The entry's next instant, `next` (`None`: nothing pending), under the mark read.
    pub fn reschedule(&self, next: Option<DateTime<Utc>>) -> Reschedule {
        Reschedule {
            id: self.id,
            mark: self.mark,
            next,
        }
    }
}

/// The next instant of an entry read as due, stored only if its mark is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reschedule {
    /// The record.
    pub id: uuid::Uuid,
    /// The mark read with the entry.
    pub mark: i64,
    /// The next instant, or `None` when nothing is pending until the record changes.
    pub next: Option<DateTime<Utc>>,
}

/// The fingerprint of the rules instants are computed under: 16 hex digits of the 64-bit
/// FNV-1a hash of `text` (the rules' canonical JSON). Stable across builds and platforms.
pub fn basis(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// What the due runs of one kind did: entries read, rescheduled and marked for
/// recomputation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueReport {
    /// Due entries read.
    pub read: usize,
    /// Entries given their next instant (or none pending).
    pub rescheduled: usize,
    /// Entries marked changed because the rules changed (all of the kind).
    pub reset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for kind in DueKind::ALL {
            assert_eq!(DueKind::parse(kind.as_str()).unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert!(DueKind::parse("cases").is_err());
    }

    #[test]
    fn basis_is_the_fnv1a_hash() {
        // Published FNV-1a 64 test vectors (the empty string and "a").
        assert_eq!(basis(""), "cbf29ce484222325");
        assert_eq!(basis("a"), "af63dc4c8601ec8c");
        assert_ne!(basis("[1]"), basis("[2]"));
    }

    #[test]
    fn changed_entries_come_first() {
        let e = DueEntry {
            id: uuid::Uuid::nil(),
            due_at: CHANGED,
            mark: 3,
        };
        assert!(e.changed());
        let later = DueEntry {
            due_at: CHANGED + chrono::Duration::microseconds(1),
            ..e
        };
        assert!(!later.changed());
    }
}
