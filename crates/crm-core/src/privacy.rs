//! Personal data: everything held about one customer, as one document, and erasure.
//!
//! [`Crm::export_customer`] gathers the customer's record, profile, every interaction,
//! its cases and the tasks about it or its cases, the segments it belongs to, its value
//! scores and classes, and its ownership history, into a [`CustomerExport`] that
//! serialises to one JSON document (for a data-access request, or to move the customer to
//! another system). The parts are read one after another, page by page, not in one
//! snapshot: a change made while the export runs may show in some parts and not others.
//!
//! [`Crm::erase_customer`] removes personal data for good (the right to be forgotten), in
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

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::case::{Case, CaseQuery};
use crate::clv::{ValueClasses, ValueScores};
use crate::customer::{Customer, OwnershipChange};
use crate::error::{Error, Result};
use crate::id::{CustomerId, TenantId};
use crate::interaction::Interaction;
use crate::page::{Page, PageRequest};
use crate::ports::WriteOptions;
use crate::profile::Profile;
use crate::segment::SegmentId;
use crate::service::Crm;
use crate::task::{Task, TaskQuery, TaskSubject};

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
}

impl CustomerExport {
    /// The export as one JSON document.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::encoding("a personal-data export", e))
    }
}

/// Every item of a paged listing.
async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>>
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

impl Crm {
    /// Erases a customer's personal data for good (see the module docs); returns the record
    /// as it now is. `version` is the version the decision was taken on.
    ///
    /// Errors: [`Error::NotFound`]; [`Error::Conflict`] if the customer changed since.
    pub async fn erase_customer(
        &self,
        tenant: TenantId,
        id: CustomerId,
        version: u64,
    ) -> Result<Customer> {
        self.erase_customer_by(tenant, id, version, None).await
    }

    /// [`erase_customer`](Self::erase_customer), recording `actor` in the audit trail.
    pub async fn erase_customer_by(
        &self,
        tenant: TenantId,
        id: CustomerId,
        version: u64,
        actor: Option<crate::id::UserId>,
    ) -> Result<Customer> {
        self.need(crate::ports::Capability::Erasure, "erase_customer_by")?;
        let current = self.storage().get_customer(tenant, id).await?;
        if current.version != version {
            return Err(Error::stale_write(
                "customer",
                id,
                version,
                Some(current.version),
            ));
        }
        let mut erased = erased_record(&current);
        erased.version = version + 1;
        erased.updated_at = self.now();
        let outbox = if self.events_enabled()? {
            let entity = crate::notify::events::EntityRef::customer(id);
            vec![crate::notify::events::DomainEvent::message(
                crate::notify::events::EventKind::CustomerErased,
                entity.clone(),
                &entity,
                erased.version,
                erased.updated_at,
                serde_json::json!({ "customer": id }),
                format!("customer.erased:{id}:{}", erased.version),
            )?]
        } else {
            Vec::new()
        };
        let audit = crate::audit::AuditEntry {
            customer: id,
            version: erased.version,
            at: erased.updated_at,
            actor,
            reason: None,
            change: crate::audit::AuditChange::Erased,
        };
        self.storage()
            .erase_customer(
                tenant,
                &erased,
                version,
                WriteOptions::new().audit(audit).outbox(outbox),
            )
            .await?;
        Ok(erased)
    }

    /// Everything held about a customer (see the module docs). An id merged into another
    /// customer exports the survivor. Errors: [`Error::NotFound`].
    pub async fn export_customer(
        &self,
        tenant: TenantId,
        id: CustomerId,
    ) -> Result<CustomerExport> {
        let customer = self.customer(tenant, id).await?;
        let id = customer.id;
        let store = self.storage();
        let profile = store.get_profile(tenant, id).await?;
        let interactions =
            all_pages(|p| async move { store.timeline(tenant, id, &p).await }).await?;
        let query = CaseQuery {
            customer: Some(id),
            ..CaseQuery::default()
        };
        let cases = all_pages(|p| {
            let query = query.clone();
            async move { store.list_cases(tenant, &query, &p).await }
        })
        .await?;
        let mut tasks = Vec::new();
        let mut seen = BTreeSet::new();
        let subjects = std::iter::once(TaskSubject::Customer(id))
            .chain(cases.iter().map(|c| TaskSubject::Case(c.id)));
        for subject in subjects {
            let query = TaskQuery {
                subject: Some(subject),
                ..TaskQuery::default()
            };
            for t in all_pages(|p| {
                let query = query.clone();
                async move { store.list_tasks(tenant, &query, &p).await }
            })
            .await?
            {
                if seen.insert(t.id) {
                    tasks.push(t);
                }
            }
        }
        Ok(CustomerExport {
            exported_at: self.now(),
            profile,
            interactions,
            cases,
            tasks,
            segments: store.segments_of(tenant, id).await?,
            value_scores: store.value_scores(tenant, id).await?,
            value_classes: store.value_classes(tenant, id).await?,
            ownership_history: store.ownership_history(tenant, id).await?,
            customer,
        })
    }
}
