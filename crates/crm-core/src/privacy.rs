//! Personal data: everything held about one customer, as one document, and erasure.
//!
//! [`Privacy::export`](crate::service::Privacy::export) gathers the customer's record, profile, every interaction,
//! its cases and the tasks about it or its cases, the segments it belongs to, its value
//! scores and classes, its ownership history, its relationships to organisations (or
//! people) and the deals with it as their account or a contact, into a [`CustomerExport`] that
//! serialises to one JSON document (for a data-access request, or to move the customer to
//! another system). The parts are read one after another, page by page, not in one
//! snapshot: a change made while the export runs may show in some parts and not others.
//!
//! [`Privacy::erase`](crate::service::Privacy::erase) removes personal data for good (the right to be forgotten), in
//! one transaction: the record keeps only its id, kind, lifecycle stage, owner, team,
//! referrer and dates (name [`ERASED`], no contact points, tags, external ids, attributes
//! or consent); its interactions lose subject, body and attributes; its cases lose their
//! subject and the reasons of reassignments; tasks about it or its cases lose their titles;
//! its ownership transfers lose their reasons. Anonymous facts stay (channels, kinds,
//! directions, instants, amounts, handlers), so profiles, KPIs and analytics are as they
//! were. Search by any erased value finds nothing. A `customer.erased` event (with no
//! personal data) records that it happened. Messages already in the outbox are not
//! rewritten: notifications waiting to be sent, and earlier domain events, which carry the
//! record as it was (purge delivered events on your side, or run without events, where
//! erasure must be complete).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::case::Case;
use crate::clv::{ValueClasses, ValueScores};
use crate::customer::{Customer, OwnershipChange};
use crate::error::{Error, Result};
use crate::interaction::Interaction;
use crate::page::{Page, PageRequest};
use crate::profile::Profile;
use crate::sales::{Opportunity, Relationship};
use crate::segment::SegmentId;
use crate::task::Task;

/// Everything held about one customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerExport {
    /// When the export was made.
    pub exported_at: DateTime<Utc>,
    /// The customer's record.
    pub customer: Customer,
    /// Its profile.
    pub profile: Profile,
    /// Every interaction, newest first.
    pub interactions: Vec<Interaction>,
    /// Its cases, with their timelines.
    pub cases: Vec<Case>,
    /// Tasks about it or about its cases.
    pub tasks: Vec<Task>,
    /// The segments it is a member of.
    pub segments: Vec<SegmentId>,
    /// Its value scores, if computed.
    pub value_scores: Option<ValueScores>,
    /// Its value classes, if computed.
    pub value_classes: Option<ValueClasses>,
    /// Ownership transfers, newest first.
    pub ownership_history: Vec<OwnershipChange>,
    /// Its relationships: to the organisations it works at, or (an organisation) to the
    /// people who work there (with [`Capability::Sales`](crate::Capability::Sales)).
    #[serde(default)]
    pub relationships: Vec<Relationship>,
    /// The deals with it as their account or among their contacts, by id (with
    /// [`Capability::Sales`](crate::Capability::Sales)).
    #[serde(default)]
    pub opportunities: Vec<Opportunity>,
}

impl CustomerExport {
    /// The export as one JSON document.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::encoding("a personal-data export", e))
    }
}

/// Every item of a paged listing.
pub(crate) async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>>>,
{
    let mut out = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let got = fetch(page).await?;
        out.extend(got.items);
        match got.next {
            Some(next) => page = PageRequest::after(next, 500),
            None => return Ok(out),
        }
    }
}

/// What erased text fields and the erased customer's name say.
pub const ERASED: &str = "(erased)";

/// The customer's record with its personal data removed (see the module docs); version and
/// `updated_at` are the caller's to set.
pub fn erased_record(c: &Customer) -> Customer {
    let mut out = c.clone();
    out.name = crate::value::DisplayName::parse(ERASED).expect("a valid name");
    out.emails.clear();
    out.phones.clear();
    out.tags.clear();
    out.external_ids.clear();
    out.attributes = crate::value::Attributes::new();
    out.consent = Default::default();
    out
}

/// Removes a case's free text: its subject and the reasons of reassignments.
pub fn erase_case(case: &mut Case) {
    case.subject = ERASED.to_string();
    for e in &mut case.events {
        if let crate::case::CaseEventKind::Assignment { reason, .. } = &mut e.kind {
            *reason = None;
        }
    }
}

/// Removes a task's free text: its title.
pub fn erase_task(task: &mut Task) {
    task.title = ERASED.to_string();
}
