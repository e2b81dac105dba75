//! What every service of one tenant shares: [`Ctx`], with the checks of a principal-scoped
//! handle.

use std::future::Future;
use std::sync::Arc;

use crate::access::{AccessEntry, AccessKind, Action, RecordKind, Visibility};
use crate::case::Case;
use crate::clock::Clock;
use crate::customer::Customer;
use crate::error::{Error, Result};
use crate::id::{CustomerId, TenantId};
use crate::notify::{Notification, OutboxMessage};
use crate::page::{Cursor, Page, PageRequest};
use crate::ports::{Capabilities, Capability, Storage};
use crate::profile::Profile;
use crate::sales::{Opportunity, OpportunityQuery, Outcome, RelationshipQuery};
use crate::segment::{SalesFacts, Subject};
use crate::task::{Task, TaskSubject};

use super::Recorder;

/// What every service of one tenant shares: the tenant, the clock, what the adapter
/// supports, and whether domain events are recorded.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) tenant: TenantId,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) backend: &'static str,
    pub(super) capabilities: Capabilities,
    pub(super) events: bool,
    pub(super) principal: Option<Arc<Visibility>>,
    /// For the records a check reads: a case's customer, the profile and value data a
    /// sharing rule is evaluated against.
    pub(super) storage: Arc<dyn Storage>,
}

impl Ctx {
    /// The clock's current instant.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// [`Error::Unsupported`] naming `operation` unless the adapter provides `capability`:
    /// checked before anything is read or written.
    pub(crate) fn need(&self, capability: Capability, operation: &'static str) -> Result<()> {
        if self.capabilities.supports(capability) {
            Ok(())
        } else {
            Err(Error::unsupported(operation, self.backend))
        }
    }

    /// Whether the adapter provides `capability`.
    pub(crate) fn supports(&self, capability: Capability) -> bool {
        self.capabilities.supports(capability)
    }

    /// Whether this is a principal-scoped handle.
    pub(crate) fn scoped(&self) -> bool {
        self.principal.is_some()
    }

    /// The principal of a scoped handle.
    pub(crate) fn principal(&self) -> Option<&Visibility> {
        self.principal.as_deref()
    }

    /// [`Error::Forbidden`] unless the principal may do `action` on `kind` of records of
    /// this customer by its roles, a grant or a sharing rule (always allowed on the system
    /// handle).
    pub(crate) async fn check(
        &self,
        kind: RecordKind,
        action: Action,
        customer: &Customer,
    ) -> Result<()> {
        if self.permits(kind, action, customer).await? {
            Ok(())
        } else {
            Err(Error::forbidden(
                action.as_str(),
                format!("customer {}", customer.id),
            ))
        }
    }

    /// Whether the principal may do `action` on `kind` of records of this customer.
    async fn permits(&self, kind: RecordKind, action: Action, customer: &Customer) -> Result<bool> {
        let Some(v) = &self.principal else {
            return Ok(true);
        };
        if v.permits(kind, action, customer) {
            return Ok(true);
        }
        if !v.shares(kind, action) {
            return Ok(false);
        }
        // A sharing rule sees what a segment rule sees; a customer not stored yet (being
        // registered) has an empty profile and no scores.
        let (tenant, id) = (self.tenant, customer.id);
        let profile = match self.storage.get_profile(tenant, id).await {
            Err(Error::NotFound { .. }) => Profile::default(),
            other => other?,
        };
        let (mut scores, mut classes) = (None, None);
        if self.supports(Capability::Values) {
            scores = self.storage.value_scores(tenant, id).await?;
            classes = self.storage.value_classes(tenant, id).await?;
        }
        let facts = if v.shares_by_sales(kind, action) {
            self.sales_facts(id).await?
        } else {
            None
        };
        let subject = Subject {
            customer,
            profile: &profile,
            scores: scores.as_ref(),
            classes: classes.as_ref(),
            sales: facts.as_ref(),
        };
        Ok(v.shared(kind, action, &subject, self.now()))
    }

    /// What the rule language reads of a customer's accounts and deals, through the sales
    /// port (`None` without [`Capability::Sales`]: no contacts, account or deals).
    async fn sales_facts(&self, id: CustomerId) -> Result<Option<SalesFacts>> {
        if !self.supports(Capability::Sales) {
            return Ok(None);
        }
        const PAGE: u32 = 500;
        let (tenant, store) = (self.tenant, &self.storage);
        let mut facts = SalesFacts::default();
        for query in [
            RelationshipQuery::Contacts(id),
            RelationshipQuery::Accounts(id),
        ] {
            let mut page = PageRequest::first(PAGE);
            loop {
                let got = store.relationships(tenant, &query, &page).await?;
                for r in &got.items {
                    match query {
                        RelationshipQuery::Contacts(_) => {
                            facts.contacts = facts.contacts.saturating_add(1)
                        }
                        RelationshipQuery::Accounts(_) if r.primary => {
                            facts.account = Some(r.organization)
                        }
                        RelationshipQuery::Accounts(_) => {}
                    }
                }
                match got.next {
                    Some(next) => page = PageRequest::after(next, PAGE),
                    None => break,
                }
            }
        }
        if let Some(account) = facts.account {
            match store.get_profile(tenant, account).await {
                Ok(p) => facts.account_revenue = p.revenue,
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let open = OpportunityQuery {
            account: Some(id),
            outcome: Some(Outcome::Open),
            ..OpportunityQuery::default()
        };
        let mut page = PageRequest::first(PAGE);
        loop {
            let got = store.list_opportunities(tenant, &open, &page).await?;
            facts.open_deals.extend(
                got.items
                    .into_iter()
                    .map(|d| (d.stage.as_str().to_string(), d.amount)),
            );
            match got.next {
                Some(next) => page = PageRequest::after(next, PAGE),
                None => return Ok(Some(facts)),
            }
        }
    }

    /// [`Error::Forbidden`] unless the principal may do `action` on this case (always
    /// allowed on the system handle; see [`Visibility::permits_case`]).
    pub(crate) async fn check_case(&self, action: Action, case: &Case) -> Result<()> {
        if self.case_permitted(action, case).await? {
            Ok(())
        } else {
            Err(Error::forbidden(
                action.as_str(),
                format!("case {}", case.id),
            ))
        }
    }

    async fn case_permitted(&self, action: Action, case: &Case) -> Result<bool> {
        let Some(v) = &self.principal else {
            return Ok(true);
        };
        let customer = self
            .storage
            .get_customer(self.tenant, case.customer)
            .await?;
        Ok(v.permits_case(action, case, &customer))
    }

    /// [`Error::Forbidden`] unless the principal may do `action` on this deal (always
    /// allowed on the system handle; see [`Visibility::permits_opportunity`]).
    pub(crate) async fn check_opportunity(&self, action: Action, deal: &Opportunity) -> Result<()> {
        if self.opportunity_permitted(action, deal).await? {
            Ok(())
        } else {
            Err(Error::forbidden(
                action.as_str(),
                format!("opportunity {}", deal.id),
            ))
        }
    }

    async fn opportunity_permitted(&self, action: Action, deal: &Opportunity) -> Result<bool> {
        let Some(v) = &self.principal else {
            return Ok(true);
        };
        let account = match self.storage.get_customer(self.tenant, deal.account).await {
            Err(Error::NotFound { .. }) => None,
            other => Some(other?),
        };
        Ok(v.permits_opportunity(action, deal, account.as_ref()))
    }

    /// [`Error::Forbidden`] unless the principal may do `action` on this task (always
    /// allowed on the system handle; see [`Visibility::permits_task`]).
    pub(crate) async fn check_task(&self, action: Action, task: &Task) -> Result<()> {
        if self.task_permitted(action, task).await? {
            Ok(())
        } else {
            Err(Error::forbidden(
                action.as_str(),
                format!("task {}", task.id),
            ))
        }
    }

    async fn task_permitted(&self, action: Action, task: &Task) -> Result<bool> {
        let Some(v) = &self.principal else {
            return Ok(true);
        };
        let customer = self.subject_customer(task).await?;
        Ok(v.permits_task(action, task, Some(&customer)))
    }

    /// The customer a task is about, directly or through its case.
    pub(crate) async fn subject_customer(&self, task: &Task) -> Result<Customer> {
        let customer = match task.subject {
            TaskSubject::Customer(id) => id,
            TaskSubject::Case(id) => self.storage.get_case(self.tenant, id).await?.customer,
        };
        self.storage.get_customer(self.tenant, customer).await
    }

    /// One page of what the principal may see: the store's pages (`fetch`) filtered by
    /// `keep`, read on until the page is full. The cursor is the last record looked at,
    /// so paging resumes exactly there (a page may then come back short, or empty at the
    /// very end). On the system handle, the store's page as it is.
    pub(crate) async fn visible_page<T, F, Fut>(
        &self,
        page: &PageRequest,
        fetch: F,
    ) -> Result<Page<T>>
    where
        T: Visible,
        F: Fn(PageRequest) -> Fut,
        Fut: Future<Output = Result<Page<T>>> + Send,
    {
        if !self.scoped() {
            return fetch(page.clone()).await;
        }
        let mut items = Vec::new();
        let mut request = page.clone();
        loop {
            let got = fetch(request).await?;
            for item in got.items {
                let at = item.cursor();
                if item.visible(self).await? {
                    items.push(item);
                }
                if items.len() == page.limit as usize {
                    return Ok(Page {
                        items,
                        next: Some(at),
                    });
                }
            }
            match got.next {
                Some(next) => request = PageRequest::after(next, page.limit),
                None => return Ok(Page { items, next: None }),
            }
        }
    }

    /// The version after a stored one; a stored version with none after it can only come
    /// from a damaged database ([`Error::Corrupt`]).
    pub(crate) fn next_version(&self, entity: &str, stored: u64) -> Result<u64> {
        stored.checked_add(1).ok_or_else(|| {
            Error::corrupt(
                self.backend,
                format!("{entity} version {stored} has no successor"),
            )
        })
    }

    /// On a scoped handle, [`Error::Forbidden`] unless the principal may do `action` on
    /// `kind` of records of customer `id` ([`Error::NotFound`] if there is none); nothing
    /// to check on the system handle.
    pub(crate) async fn check_id(
        &self,
        kind: RecordKind,
        action: Action,
        id: CustomerId,
    ) -> Result<()> {
        if self.scoped() {
            let customer = self.storage.get_customer(self.tenant, id).await?;
            self.check(kind, action, &customer).await?;
        }
        Ok(())
    }

    /// Whether the principal may read this customer (always on the system handle).
    pub(crate) async fn reads(&self, customer: &Customer) -> Result<bool> {
        self.permits(RecordKind::Customers, Action::Read, customer)
            .await
    }

    /// Customers as the principal reads them ([`Ctx::present`]), the unmasked ones with
    /// contact points counted against its daily quota of contact reads and logged as
    /// taken through `operation`: [`Error::QuotaExceeded`] (nothing returned, nothing
    /// counted) when they would go above it.
    pub(crate) async fn read_out(
        &self,
        customers: Vec<Customer>,
        operation: &str,
    ) -> Result<Vec<Customer>> {
        let unmasked = match &self.principal {
            Some(v) => customers
                .iter()
                .filter(|c| !v.masks(c) && (!c.emails.is_empty() || !c.phones.is_empty()))
                .count(),
            None => 0,
        };
        let shown: Vec<Customer> = customers.into_iter().map(|c| self.present(c)).collect();
        self.take(AccessKind::ContactReads, operation, unmasked as u64)
            .await?;
        Ok(shown)
    }

    /// Counts `count` of `kind` taken by the principal through `operation` against its
    /// daily quota and logs it (nothing on the system handle, or for a count of zero).
    /// Errors: [`Error::QuotaExceeded`] with nothing counted; [`Error::Unsupported`] when
    /// the principal has a quota the adapter cannot keep (no
    /// [`Capability::AccessLog`]).
    pub(crate) async fn take(&self, kind: AccessKind, operation: &str, count: u64) -> Result<()> {
        let Some(v) = &self.principal else {
            return Ok(());
        };
        let limit = v.daily_limit(kind);
        if count == 0 {
            return Ok(());
        }
        if !self.supports(Capability::AccessLog) {
            return match limit {
                Some(_) => Err(Error::unsupported("daily quotas", self.backend)),
                None => Ok(()),
            };
        }
        let entry = AccessEntry {
            user: v.user(),
            kind,
            operation: operation.to_string(),
            count,
            at: self.now(),
        };
        match self
            .storage
            .record_access(self.tenant, &entry, limit)
            .await?
        {
            Some(_) => Ok(()),
            None => Err(Error::QuotaExceeded {
                quota: kind.label(),
                limit: limit.unwrap_or(0),
                renews_at: entry
                    .day()
                    .succ_opt()
                    .map_or(entry.at, |d| d.and_time(chrono::NaiveTime::MIN).and_utc()),
            }),
        }
    }

    /// The customer as the principal sees it: contact points masked when its roles mask
    /// them or the customer is in the shared pool (unchanged on the system handle).
    pub(crate) fn present(&self, mut customer: Customer) -> Customer {
        if self.principal.as_ref().is_some_and(|v| v.masks(&customer)) {
            customer.emails = customer.emails.iter().map(|e| e.masked()).collect();
            customer.phones = customer.phones.iter().map(|p| p.masked()).collect();
        }
        customer
    }

    /// [`Error::Forbidden`] on a principal-scoped handle: for operations not guarded yet.
    pub(crate) fn system_only(&self, operation: &'static str) -> Result<()> {
        if self.scoped() {
            return Err(Error::forbidden(
                operation,
                "through a principal-scoped handle (use the tenant's system handle)",
            ));
        }
        Ok(())
    }

    /// The event recorder; with events on, an adapter without an outbox is
    /// [`Error::Unsupported`].
    pub(crate) fn events(&self) -> Result<Recorder> {
        if self.events {
            self.need(Capability::Outbox, "domain events")?;
        }
        Ok(Recorder::new(self.events))
    }

    /// Checks notifications and makes them outbox messages due at their `not_before` or now.
    pub(crate) fn outbox_of(&self, notifications: Vec<Notification>) -> Result<Vec<OutboxMessage>> {
        let now = self.now();
        notifications
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                n.validate()
                    .map_err(|e| e.in_field(&format!("notifications[{i}]")))?;
                Ok(OutboxMessage::new(n, now))
            })
            .collect()
    }
}

/// A record a scoped handle's lists filter: where a page resumes after it, and whether the
/// principal may read it.
pub(crate) trait Visible: Send + Sync + Sized {
    /// The cursor of a page that ends with this record.
    fn cursor(&self) -> Cursor;
    /// Whether the handle's principal reads it (always on the system handle).
    fn visible(&self, ctx: &Ctx) -> impl Future<Output = Result<bool>> + Send;
}

impl Visible for Customer {
    fn cursor(&self) -> Cursor {
        Cursor::customer(self.id)
    }
    fn visible(&self, ctx: &Ctx) -> impl Future<Output = Result<bool>> + Send {
        ctx.reads(self)
    }
}

impl Visible for Case {
    fn cursor(&self) -> Cursor {
        Cursor::case(self.id)
    }
    fn visible(&self, ctx: &Ctx) -> impl Future<Output = Result<bool>> + Send {
        ctx.case_permitted(Action::Read, self)
    }
}

impl Visible for Task {
    fn cursor(&self) -> Cursor {
        Cursor::task(self.id)
    }
    fn visible(&self, ctx: &Ctx) -> impl Future<Output = Result<bool>> + Send {
        ctx.task_permitted(Action::Read, self)
    }
}

impl Visible for Opportunity {
    fn cursor(&self) -> Cursor {
        Cursor::opportunity(self.id)
    }
    fn visible(&self, ctx: &Ctx) -> impl Future<Output = Result<bool>> + Send {
        ctx.opportunity_permitted(Action::Read, self)
    }
}

/// An interaction in an account's timeline: seen when its customer's interactions are.
impl Visible for crate::interaction::Interaction {
    fn cursor(&self) -> Cursor {
        Cursor::timeline(self.occurred_at, self.id)
    }
    async fn visible(&self, ctx: &Ctx) -> Result<bool> {
        match ctx
            .check_id(RecordKind::Interactions, Action::Read, self.customer)
            .await
        {
            Ok(()) => Ok(true),
            Err(Error::Forbidden { .. } | Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A segment member.
impl Visible for CustomerId {
    fn cursor(&self) -> Cursor {
        Cursor::customer(*self)
    }
    async fn visible(&self, ctx: &Ctx) -> Result<bool> {
        match ctx
            .check_id(RecordKind::Customers, Action::Read, *self)
            .await
        {
            Ok(()) => Ok(true),
            // Not seen, or gone since the segment's last refresh.
            Err(Error::Forbidden { .. } | Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
