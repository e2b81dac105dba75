//! Service cases: complaints, service requests, inquiries, and host-defined kinds, each with
//! an owner who keeps it to the end and a timeline of what happened.
//!
//! ```
//! use chrono::{Duration, TimeZone, Utc};
//! use crm_core::case::{Case, CaseEventKind, CaseKind, CaseStatus};
//! use crm_core::{Channel, CustomerId, UserId};
//!
//! let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
//! let agent = UserId::new();
//! let mut case = Case::open(CustomerId::new(), CaseKind::Complaint, "Parcel arrived broken",
//!     Channel::Email, Some(agent), t0)?;
//! case.record(t0 + Duration::minutes(40), CaseEventKind::PublicReply { by: agent })?;
//! case.record(t0 + Duration::hours(2), CaseEventKind::StatusChange { to: CaseStatus::Resolved, by: Some(agent) })?;
//! assert_eq!(case.status, CaseStatus::Resolved);
//! // Events cannot go back in time.
//! let late = case.record(t0, CaseEventKind::CustomerMessage);
//! assert_eq!(late.unwrap_err().field(), Some("event.at"));
//! # Ok::<(), crm_core::Error>(())
//! ```

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{CaseId, CustomerId, UserId};
use crate::interaction::Channel;
use crate::notify::{Priority, TemplateName};

/// What a case is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// The customer is unhappy.
    Complaint,
    /// The customer wants something done.
    ServiceRequest,
    /// The customer wants to know something.
    Inquiry,
    /// A kind the host defines (`warranty`, `installation`): lower-case letters, digits,
    /// `_`, `-`, `.`.
    Other(TemplateName),
}

impl CaseKind {
    /// A host-defined kind. Errors: validation on `kind`.
    pub fn other(name: &str) -> Result<Self> {
        TemplateName::parse(name)
            .map(CaseKind::Other)
            .map_err(|e| Error::validation("kind", e.to_string()))
    }
}

/// Where a case stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Opened, nobody has worked on it yet.
    New,
    /// Being worked on.
    Open,
    /// Waiting for the customer's answer.
    PendingCustomer,
    /// Waiting for someone else (a supplier, another team).
    OnHold,
    /// Solved; the customer may still object.
    Resolved,
    /// Done for good.
    Closed,
    /// Resolved or closed, then opened again.
    Reopened,
}

impl CaseStatus {
    /// Every status.
    pub const ALL: &'static [CaseStatus] = &[
        CaseStatus::New,
        CaseStatus::Open,
        CaseStatus::PendingCustomer,
        CaseStatus::OnHold,
        CaseStatus::Resolved,
        CaseStatus::Closed,
        CaseStatus::Reopened,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::New => "new",
            CaseStatus::Open => "open",
            CaseStatus::PendingCustomer => "pending_customer",
            CaseStatus::OnHold => "on_hold",
            CaseStatus::Resolved => "resolved",
            CaseStatus::Closed => "closed",
            CaseStatus::Reopened => "reopened",
        }
    }

    /// Parses a stored name. Errors: validation on `status`.
    pub fn parse(text: &str) -> Result<Self> {
        CaseStatus::ALL
            .iter()
            .copied()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| Error::validation("status", format!("unknown case status {text:?}")))
    }

    /// Whether work on the case is finished (resolved or closed).
    pub fn is_done(self) -> bool {
        matches!(self, CaseStatus::Resolved | CaseStatus::Closed)
    }
}

/// Something that happened on a case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum CaseEventKind {
    /// The case was opened (always the first event).
    Opened,
    /// Staff answered the customer.
    PublicReply {
        /// Who answered.
        by: UserId,
    },
    /// The customer wrote.
    CustomerMessage,
    /// Staff wrote a note the customer does not see.
    InternalNote {
        /// Who wrote it.
        by: UserId,
    },
    /// The status changed.
    StatusChange {
        /// The new status.
        to: CaseStatus,
        /// Who changed it (`None`: the system).
        by: Option<UserId>,
    },
    /// The case was given to someone else (or to nobody).
    Assignment {
        /// The new assignee.
        to: Option<UserId>,
        /// Who reassigned it (`None`: the system, for example a KPI rule).
        by: Option<UserId>,
        /// Why.
        reason: Option<String>,
    },
}

/// One entry of a case's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub kind: CaseEventKind,
}

/// Filters for listing cases; `None` fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseQuery {
    /// Cases of this customer.
    pub customer: Option<CustomerId>,
    /// Cases assigned to this user.
    pub assignee: Option<UserId>,
    /// Only cases not yet resolved or closed.
    pub open_only: bool,
}

impl CaseQuery {
    /// Whether `case` passes every filter.
    pub fn matches(&self, case: &Case) -> bool {
        self.customer.is_none_or(|c| c == case.customer)
            && self.assignee.is_none_or(|a| Some(a) == case.assignee)
            && (!self.open_only || !case.status.is_done())
    }
}

/// The longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 300;
/// The most events one case's timeline holds (its opening included); a case that needs
/// more is better closed and a new one opened.
pub const MAX_EVENTS: usize = 10_000;

/// A service case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// The case's id.
    pub id: CaseId,
    /// Whose case it is.
    pub customer: CustomerId,
    /// What it is about.
    pub kind: CaseKind,
    /// A short description.
    pub subject: String,
    /// How urgent.
    pub priority: Priority,
    /// Where it came in.
    pub channel: Channel,
    /// Who owns it to the end.
    pub assignee: Option<UserId>,
    /// Who it was given to when opened (reassignments are in `events`).
    #[serde(default)]
    pub initial_assignee: Option<UserId>,
    /// Where it stands.
    pub status: CaseStatus,
    /// When it was opened.
    pub opened_at: DateTime<Utc>,
    /// Optimistic-concurrency version, bumped by every stored change.
    pub version: u64,
    /// What happened, oldest first.
    pub events: Vec<CaseEvent>,
    /// Keys of the KPI warnings and breaches already raised on this case, so each is
    /// raised once however often rules are evaluated.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub alerts: BTreeSet<String>,
}

impl Case {
    /// Opens a case at `at` with normal priority and status `New`.
    /// Errors: validation on `subject` (empty, too long, control characters), and on
    /// `opened_at` outside the supported range ([`crate::clock::check_instant`]).
    pub fn open(
        customer: CustomerId,
        kind: CaseKind,
        subject: &str,
        channel: Channel,
        assignee: Option<UserId>,
        at: DateTime<Utc>,
    ) -> Result<Self> {
        crate::clock::check_instant("opened_at", at)?;
        let subject = subject.trim();
        if subject.is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS {
            return Err(Error::validation(
                "subject",
                format!("must be 1 to {MAX_SUBJECT_CHARS} characters"),
            ));
        }
        if subject.chars().any(char::is_control) {
            return Err(Error::validation(
                "subject",
                "must not contain control characters",
            ));
        }
        Ok(Case {
            id: CaseId::new(),
            customer,
            kind,
            subject: subject.to_string(),
            priority: Priority::Normal,
            channel,
            assignee,
            initial_assignee: assignee,
            status: CaseStatus::New,
            opened_at: at,
            version: 1,
            events: vec![CaseEvent {
                at,
                kind: CaseEventKind::Opened,
            }],
            alerts: BTreeSet::new(),
        })
    }

    /// Who held the case at `at`: the initial assignee, changed by every reassignment up to
    /// and including `at`.
    pub fn assignee_at(&self, at: DateTime<Utc>) -> Option<UserId> {
        self.events
            .iter()
            .take_while(|e| e.at <= at)
            .fold(self.initial_assignee, |holder, e| match e.kind {
                CaseEventKind::Assignment { to, .. } => to,
                _ => holder,
            })
    }

    /// Appends an event and applies it (status, assignee).
    ///
    /// Errors: validation on `event.at` if it is earlier than the last event, on
    /// `event.kind` for a second `Opened`, a change to the current status, or a status
    /// change of a closed case other than reopening it, and on `event.reason` for a bad
    /// reason text.
    pub fn record(&mut self, at: DateTime<Utc>, kind: CaseEventKind) -> Result<()> {
        crate::clock::check_instant("event.at", at)?;
        if self.events.len() >= MAX_EVENTS {
            return Err(Error::validation(
                "events",
                format!("a case holds at most {MAX_EVENTS} events"),
            ));
        }
        if self.events.last().is_some_and(|last| at < last.at) {
            return Err(Error::validation(
                "event.at",
                "events must not be earlier than the case's last event",
            ));
        }
        match &kind {
            CaseEventKind::Opened => {
                return Err(Error::validation("event.kind", "a case is opened once"))
            }
            CaseEventKind::StatusChange { to, .. } => {
                if *to == self.status {
                    return Err(Error::validation(
                        "event.kind",
                        format!("the case is already {}", to.as_str()),
                    ));
                }
                if self.status == CaseStatus::Closed && *to != CaseStatus::Reopened {
                    return Err(Error::validation(
                        "event.kind",
                        "a closed case can only be reopened",
                    ));
                }
                if *to == CaseStatus::New {
                    return Err(Error::validation(
                        "event.kind",
                        "a case cannot become new again",
                    ));
                }
                self.status = *to;
            }
            CaseEventKind::Assignment { to, reason, .. } => {
                if let Some(r) = reason {
                    if r.chars().count() > 1000 || r.chars().any(|c| c.is_control() && c != '\n') {
                        return Err(Error::validation(
                            "event.reason",
                            "at most 1000 characters, no control characters",
                        ));
                    }
                }
                self.assignee = *to;
            }
            CaseEventKind::PublicReply { .. }
            | CaseEventKind::CustomerMessage
            | CaseEventKind::InternalNote { .. } => {}
        }
        self.events.push(CaseEvent { at, kind });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
    }

    #[test]
    fn statuses_round_trip_and_closed_cases_only_reopen() {
        for s in CaseStatus::ALL {
            assert_eq!(CaseStatus::parse(s.as_str()).unwrap(), *s);
        }
        let mut c = Case::open(
            CustomerId::new(),
            CaseKind::Inquiry,
            "Price?",
            Channel::Web,
            None,
            t0(),
        )
        .unwrap();
        let close = |to| CaseEventKind::StatusChange { to, by: None };
        c.record(t0(), close(CaseStatus::Closed)).unwrap();
        assert_eq!(
            c.record(t0(), close(CaseStatus::Open)).unwrap_err().field(),
            Some("event.kind")
        );
        c.record(t0() + Duration::days(1), close(CaseStatus::Reopened))
            .unwrap();
        assert_eq!(c.status, CaseStatus::Reopened);
        assert_eq!(
            c.record(t0(), CaseEventKind::Opened).unwrap_err().field(),
            Some("event.at")
        );
    }

    #[test]
    fn reassignment_is_recorded_with_who_and_why() {
        let (a, b, lead) = (UserId::new(), UserId::new(), UserId::new());
        let mut c = Case::open(
            CustomerId::new(),
            CaseKind::Complaint,
            "Late",
            Channel::Phone,
            Some(a),
            t0(),
        )
        .unwrap();
        c.record(
            t0() + Duration::hours(1),
            CaseEventKind::Assignment {
                to: Some(b),
                by: Some(lead),
                reason: Some("holiday".into()),
            },
        )
        .unwrap();
        assert_eq!(c.assignee, Some(b));
        assert_eq!(c.assignee_at(t0()), Some(a));
        assert_eq!(c.assignee_at(t0() + Duration::hours(1)), Some(b));
        let json = serde_json::to_string(&c).unwrap();
        let back: Case = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert!(Case::open(
            CustomerId::new(),
            CaseKind::Inquiry,
            " ",
            Channel::Web,
            None,
            t0()
        )
        .is_err());
        assert_eq!(
            CaseKind::other("Bad Kind").unwrap_err().field(),
            Some("kind")
        );
    }

    #[test]
    fn timelines_and_instants_are_bounded() {
        let e = Case::open(
            CustomerId::new(),
            CaseKind::Inquiry,
            "Old",
            Channel::Web,
            None,
            DateTime::<Utc>::MIN_UTC,
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("opened_at"));
        let mut c = Case::open(
            CustomerId::new(),
            CaseKind::Inquiry,
            "Chatty",
            Channel::Web,
            None,
            t0(),
        )
        .unwrap();
        for i in 1..MAX_EVENTS {
            c.record(
                t0() + Duration::seconds(i as i64),
                CaseEventKind::CustomerMessage,
            )
            .unwrap();
        }
        assert_eq!(c.events.len(), MAX_EVENTS);
        let e = c
            .record(t0() + Duration::days(1), CaseEventKind::CustomerMessage)
            .unwrap_err();
        assert_eq!(e.field(), Some("events"));
        let e = c
            .record(DateTime::<Utc>::MAX_UTC, CaseEventKind::CustomerMessage)
            .unwrap_err();
        assert_eq!(e.field(), Some("event.at"));
    }
}
