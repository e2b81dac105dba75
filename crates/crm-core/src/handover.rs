//! Handing over what a departing staff member holds, in one transaction.
//!
//! When someone leaves, their customers must not leave with them, and their open work must
//! not wait for someone who is gone.
//! [`Staff::hand_over`](crate::service::Staff::hand_over) builds a [`HandOver`]: every
//! customer they own (each an audited ownership transfer), every open case assigned to them
//! (with an assignment event on the case) and every open task assigned to them (so its
//! reminders go to the successor), and every grant in force to them ([`crate::access`]),
//! all given to one successor. The adapter applies the plan
//! in one transaction ([`CustomerStore::hand_over`](crate::ports::CustomerStore::hand_over)):
//! everything moves, or, when any record changed since it was read, nothing does.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::access::{Grant, Grantee};
use crate::audit::AuditEntry;
use crate::case::Case;
use crate::customer::{Customer, OwnershipChange};
use crate::error::{Error, Result};
use crate::task::Task;

/// A customer in a [`HandOver`]: its new state with what the transfer records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerHandOver {
    /// The customer as it is to be stored (new owner, next version, `updated_at` now).
    pub customer: Customer,
    /// The version it was read at; a different stored version refuses the whole plan.
    pub expected_version: u64,
    /// The ownership transfer to record.
    pub ownership: OwnershipChange,
    /// The audit entry to record.
    pub audit: AuditEntry,
}

/// A grant in a [`HandOver`]: the leaver's grant in force on a customer is revoked and
/// `grant`, to the successor, stored in its place (replacing any grant in force the
/// successor had on that customer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantHandOver {
    /// Whose grant is revoked (at `grant.granted_at`, by `grant.granted_by`).
    pub from: Grantee,
    /// The grant stored instead.
    pub grant: Grant,
}

/// Everything one hand-over changes, applied all or nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HandOver {
    /// The customers, transferred.
    pub customers: Vec<CustomerHandOver>,
    /// Open cases as they are to be stored (new assignee and its assignment event, next
    /// version), each with the version it was read at.
    pub cases: Vec<(Case, u64)>,
    /// Open tasks as they are to be stored (new assignee, next version), each with the
    /// version it was read at.
    pub tasks: Vec<(Task, u64)>,
    /// Grants in force to the leaver, given to the successor.
    #[serde(default)]
    pub grants: Vec<GrantHandOver>,
}

impl HandOver {
    /// Most records one hand-over moves.
    pub const MAX_RECORDS: usize = 100_000;

    /// How many records the plan moves.
    pub fn len(&self) -> usize {
        self.customers
            .len()
            .saturating_add(self.cases.len())
            .saturating_add(self.tasks.len())
            .saturating_add(self.grants.len())
    }

    /// Whether the plan moves nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What an adapter checks before it applies a plan: at most [`HandOver::MAX_RECORDS`]
    /// records, none named twice, each customer valid and at the version after the one it
    /// was read at, with its transfer and audit entry about it at that version, and each
    /// case and task at the version after its own. Errors: validation naming the entry
    /// (`customers[3].ownership`, `cases[0]`).
    pub fn check(&self) -> Result<()> {
        if self.len() > Self::MAX_RECORDS {
            return Err(Error::validation(
                "plan",
                format!("at most {} records", Self::MAX_RECORDS),
            ));
        }
        let mut customers = BTreeSet::new();
        for (i, h) in self.customers.iter().enumerate() {
            let at = |field: &str| format!("customers[{i}]{field}");
            let c = &h.customer;
            c.validate().map_err(|e| e.in_field(&at("")))?;
            if !customers.insert(c.id) {
                return Err(Error::validation(at(""), "names a customer twice"));
            }
            if h.expected_version.checked_add(1) != Some(c.version) {
                return Err(Error::validation(
                    at(".customer.version"),
                    "must be expected_version + 1",
                ));
            }
            if (h.ownership.customer, h.ownership.version, h.ownership.to)
                != (c.id, c.version, c.owner)
            {
                return Err(Error::validation(
                    at(".ownership"),
                    "must transfer this customer at its new version to its new owner",
                ));
            }
            if (h.audit.customer, h.audit.version) != (c.id, c.version) {
                return Err(Error::validation(
                    at(".audit"),
                    "must be about this customer at its new version",
                ));
            }
        }
        let mut cases = BTreeSet::new();
        for (i, (case, expected)) in self.cases.iter().enumerate() {
            if !cases.insert(case.id) || expected.checked_add(1) != Some(case.version) {
                return Err(Error::validation(
                    format!("cases[{i}]"),
                    "named twice, or not at the version after the expected one",
                ));
            }
        }
        let mut tasks = BTreeSet::new();
        for (i, (task, expected)) in self.tasks.iter().enumerate() {
            if !tasks.insert(task.id) || expected.checked_add(1) != Some(task.version) {
                return Err(Error::validation(
                    format!("tasks[{i}]"),
                    "named twice, or not at the version after the expected one",
                ));
            }
        }
        let mut grants = BTreeSet::new();
        for (i, g) in self.grants.iter().enumerate() {
            g.grant
                .validate()
                .map_err(|e| e.in_field(&format!("grants[{i}].grant")))?;
            if !grants.insert(g.grant.customer) || g.from == g.grant.grantee {
                return Err(Error::validation(
                    format!("grants[{i}]"),
                    "names a customer twice, or goes to the one leaving",
                ));
            }
        }
        Ok(())
    }
}

/// What a hand-over moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandOverReport {
    /// Customers transferred.
    pub customers: usize,
    /// Open cases reassigned.
    pub cases: usize,
    /// Open tasks reassigned.
    pub tasks: usize,
    /// Grants given to the successor.
    #[serde(default)]
    pub grants: usize,
}
