//! The accounts service: people related to organisations, the organisation hierarchy, an
//! account's timeline and rolled-up profile, and transfers that take the contacts along.

use std::collections::HashSet;
use std::sync::Arc;

use tracing::instrument;

use super::ctx::Visible;
use super::staff::{transfer_entry, transfer_events};
use super::{check_reason, Ctx};
use crate::access::{Action, RecordKind};
use crate::customer::{Customer, PartyKind};
use crate::error::{Error, Result};
use crate::handover::HandOver;
use crate::id::{CustomerId, UserId};
use crate::interaction::Interaction;
use crate::page::{Cursor, Page, PageRequest};
use crate::ports::{Capability, Storage, WriteOptions};
use crate::profile::Profile;
use crate::sales::{Relationship, RelationshipQuery};

/// Accounts of one tenant: organisations with the people who work there. From
/// [`TenantCrm::accounts`](super::TenantCrm::accounts).
///
/// A [`Relationship`] joins a person to an organisation; organisations form a hierarchy
/// of parents. Merges move relationships and parents to the survivor; an erasure removes
/// the erased person's titles.
///
/// On a principal-scoped handle, changing an account's contacts or parent needs the
/// right to update the organisation and to read the other party; listings show only the
/// parties the principal reads; an account's timeline and profile count only the contacts
/// it reads.
#[derive(Clone)]
pub struct Accounts {
    ctx: Ctx,
    store: Arc<dyn Storage>,
}

debug_by_tenant!(Accounts);

/// Most contacts an account's rolled-up profile folds in.
pub const MAX_ROLLUP_CONTACTS: usize = 10_000;

/// How many rows each store page holds when the service walks a listing.
const WALK_PAGE: u32 = 500;

/// A listed relationship with the key its listing is paged by.
struct Listed {
    key: CustomerId,
    relationship: Relationship,
}

impl Visible for Listed {
    fn cursor(&self) -> Cursor {
        Cursor::customer(self.key)
    }
    async fn visible(&self, ctx: &Ctx) -> Result<bool> {
        let (o, p) = (self.relationship.organization, self.relationship.person);
        Ok(o.visible(ctx).await? && p.visible(ctx).await?)
    }
}

impl Accounts {
    pub(super) fn new(ctx: Ctx, store: Arc<dyn Storage>) -> Self {
        Accounts { ctx, store }
    }

    /// The customer `id`, which must be of `kind` (validation naming `field` otherwise).
    async fn party(&self, id: CustomerId, kind: PartyKind, field: &str) -> Result<Customer> {
        let customer = self.store.get_customer(self.ctx.tenant, id).await?;
        if customer.kind != kind {
            return Err(Error::validation(
                field,
                format!("{id} is not {}", kind_name(kind)),
            ));
        }
        Ok(customer)
    }

    /// Stores a relationship (replacing the pair's earlier one; a primary one makes the
    /// person's others not primary), stamped now. Answers it as stored.
    ///
    /// Errors: validation ([`Relationship::validate`]; `organization` or `person` naming a
    /// party of the other kind; `person` related to too many organisations);
    /// [`Error::NotFound`]; [`Error::Forbidden`] unless the principal may change the
    /// organisation and read the person.
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant))]
    pub async fn relate(&self, mut relationship: Relationship) -> Result<Relationship> {
        self.ctx.need(Capability::Sales, "put_relationship")?;
        relationship.validate()?;
        let org = self
            .party(
                relationship.organization,
                PartyKind::Organization,
                "organization",
            )
            .await?;
        let person = self
            .party(relationship.person, PartyKind::Person, "person")
            .await?;
        self.ctx
            .check(RecordKind::Customers, Action::Write, &org)
            .await?;
        self.ctx
            .check(RecordKind::Customers, Action::Read, &person)
            .await?;
        relationship.updated_at = self.ctx.now();
        self.store
            .put_relationship(self.ctx.tenant, &relationship)
            .await?;
        Ok(relationship)
    }

    /// Removes the relationship of `person` to `organization`. Errors:
    /// [`Error::NotFound`]; [`Error::Forbidden`] unless the principal may change the
    /// organisation.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn unrelate(&self, organization: CustomerId, person: CustomerId) -> Result<()> {
        self.ctx.need(Capability::Sales, "remove_relationship")?;
        self.ctx
            .check_id(RecordKind::Customers, Action::Write, organization)
            .await?;
        self.store
            .remove_relationship(self.ctx.tenant, organization, person)
            .await
    }

    /// The people related to `organization`, by person id, one page at a time.
    /// Errors: [`Error::Forbidden`] unless the principal reads the organisation.
    pub async fn contacts(
        &self,
        organization: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<Relationship>> {
        self.listing(RelationshipQuery::Contacts(organization), page)
            .await
    }

    /// The organisations `person` is related to, by organisation id, one page at a time.
    /// Errors: [`Error::Forbidden`] unless the principal reads the person.
    pub async fn accounts_of(
        &self,
        person: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<Relationship>> {
        self.listing(RelationshipQuery::Accounts(person), page)
            .await
    }

    async fn listing(
        &self,
        query: RelationshipQuery,
        page: &PageRequest,
    ) -> Result<Page<Relationship>> {
        self.ctx.need(Capability::Sales, "relationships")?;
        page.validate()?;
        let (RelationshipQuery::Contacts(id) | RelationshipQuery::Accounts(id)) = query;
        self.ctx
            .check_id(RecordKind::Customers, Action::Read, id)
            .await?;
        let (store, tenant) = (&self.store, self.ctx.tenant);
        let listed = self
            .ctx
            .visible_page(page, |request| async move {
                let got = store.relationships(tenant, &query, &request).await?;
                Ok(Page {
                    items: got
                        .items
                        .into_iter()
                        .map(|r| Listed {
                            key: query.key_of(&r),
                            relationship: r,
                        })
                        .collect(),
                    next: got.next,
                })
            })
            .await?;
        Ok(Page {
            items: listed.items.into_iter().map(|l| l.relationship).collect(),
            next: listed.next,
        })
    }

    /// The person's primary account, if it has one in force today.
    pub async fn primary_account(&self, person: CustomerId) -> Result<Option<Relationship>> {
        let today = self.ctx.now().date_naive();
        let mut page = PageRequest::first(WALK_PAGE);
        loop {
            let got = self.accounts_of(person, &page).await?;
            if let Some(r) = got.items.iter().find(|r| r.primary && r.holds_on(today)) {
                return Ok(Some(r.clone()));
            }
            match got.next {
                Some(next) => page = PageRequest::after(next, WALK_PAGE),
                None => return Ok(None),
            }
        }
    }

    /// Sets (or, with `None`, clears) an organisation's parent. Errors: validation on
    /// `organization` or `parent` naming a person, or on `parent` for a cycle or a
    /// hierarchy deeper than [`MAX_HIERARCHY_DEPTH`](crate::sales::MAX_HIERARCHY_DEPTH);
    /// [`Error::NotFound`]; [`Error::Forbidden`] unless the principal may change the
    /// organisation and read the parent.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn set_parent(
        &self,
        organization: CustomerId,
        parent: Option<CustomerId>,
    ) -> Result<()> {
        self.ctx.need(Capability::Sales, "set_parent")?;
        let org = self
            .party(organization, PartyKind::Organization, "organization")
            .await?;
        self.ctx
            .check(RecordKind::Customers, Action::Write, &org)
            .await?;
        if let Some(p) = parent {
            let parent = self.party(p, PartyKind::Organization, "parent").await?;
            self.ctx
                .check(RecordKind::Customers, Action::Read, &parent)
                .await?;
        }
        self.store
            .set_parent(self.ctx.tenant, organization, parent)
            .await
    }

    /// An organisation's ancestors, its parent first. Errors: [`Error::Forbidden`] unless
    /// the principal reads the organisation.
    pub async fn line(&self, organization: CustomerId) -> Result<Vec<CustomerId>> {
        self.ctx.need(Capability::Sales, "account_line")?;
        self.ctx
            .check_id(RecordKind::Customers, Action::Read, organization)
            .await?;
        self.store.account_line(self.ctx.tenant, organization).await
    }

    /// An organisation's direct subsidiaries (those the principal reads), by id, one page
    /// at a time. Errors: [`Error::Forbidden`] unless the principal reads the
    /// organisation.
    pub async fn subsidiaries(
        &self,
        organization: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        self.ctx.need(Capability::Sales, "subsidiaries")?;
        page.validate()?;
        self.ctx
            .check_id(RecordKind::Customers, Action::Read, organization)
            .await?;
        let (store, tenant) = (&self.store, self.ctx.tenant);
        self.ctx
            .visible_page(page, |request| async move {
                store.subsidiaries(tenant, organization, &request).await
            })
            .await
    }

    /// The account's timeline: the interactions of the organisation and of every person
    /// related to it (those the principal may read), newest first, one page at a time.
    /// Errors: [`Error::NotFound`]; [`Error::Forbidden`] unless the principal reads the
    /// organisation's interactions.
    pub async fn timeline(
        &self,
        organization: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<Interaction>> {
        self.ctx.need(Capability::Sales, "account_timeline")?;
        page.validate()?;
        self.ctx
            .check_id(RecordKind::Interactions, Action::Read, organization)
            .await?;
        let (store, tenant) = (&self.store, self.ctx.tenant);
        self.ctx
            .visible_page(page, |request| async move {
                store.account_timeline(tenant, organization, &request).await
            })
            .await
    }

    /// The account's rolled-up profile: the organisation's own merged
    /// ([`Profile::merge`]) with those of the people related to it (those the principal
    /// may read). Errors: validation on `organization` when it has more than
    /// [`MAX_ROLLUP_CONTACTS`] contacts; [`Error::NotFound`]; [`Error::Forbidden`] unless
    /// the principal reads the organisation's interactions; totals too large to add
    /// ([`Profile::merge`]).
    pub async fn profile(&self, organization: CustomerId) -> Result<Profile> {
        self.ctx.need(Capability::Sales, "relationships")?;
        let tenant = self.ctx.tenant;
        self.ctx
            .check_id(RecordKind::Interactions, Action::Read, organization)
            .await?;
        let mut profile = self.store.get_profile(tenant, organization).await?;
        let mut seen = 0usize;
        let mut page = PageRequest::first(WALK_PAGE);
        loop {
            let got = self.contacts(organization, &page).await?;
            for r in &got.items {
                seen = seen.saturating_add(1);
                if seen > MAX_ROLLUP_CONTACTS {
                    return Err(Error::validation(
                        "organization",
                        format!("has more than {MAX_ROLLUP_CONTACTS} contacts to roll up"),
                    ));
                }
                match self.store.get_profile(tenant, r.person).await {
                    Ok(p) => profile.merge(&p)?,
                    // merged away meanwhile: its interactions are the survivor's
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            match got.next {
                Some(next) => page = PageRequest::after(next, WALK_PAGE),
                None => return Ok(profile),
            }
        }
    }

    /// Transfers an account to `new_owner` (`None`: the shared pool) in one transaction,
    /// with `take_contacts` also every person related to it whom the account's current
    /// owner owns (people others own stay with them). Each transfer is an audited
    /// ownership change by `actor` with `reason`. Answers the customers transferred, the
    /// account first.
    ///
    /// Errors: validation of `reason` or on `organization` naming a person;
    /// [`Error::NotFound`]; [`Error::Conflict`] when the account is not at
    /// `expected_version` or a contact changed meanwhile (nothing moves);
    /// [`Error::Forbidden`] on a scoped handle (a transfer of many records is the
    /// system's job); [`Error::Unsupported`] without [`Capability::HandOver`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn transfer(
        &self,
        organization: CustomerId,
        new_owner: Option<UserId>,
        expected_version: u64,
        take_contacts: bool,
        actor: Option<UserId>,
        reason: Option<&str>,
    ) -> Result<Vec<Customer>> {
        self.ctx.system_only("accounts.transfer")?;
        self.ctx.need(Capability::HandOver, "hand_over")?;
        check_reason(reason)?;
        let tenant = self.ctx.tenant;
        let org = self
            .party(organization, PartyKind::Organization, "organization")
            .await?;
        if org.version != expected_version {
            return Err(Error::stale_write(
                "customer",
                organization,
                expected_version,
                Some(org.version),
            ));
        }
        let mut plan = HandOver::default();
        plan.customers
            .push(transfer_entry(&self.ctx, &org, new_owner, actor, reason)?);
        if take_contacts && org.owner.is_some() {
            let mut people: HashSet<CustomerId> = HashSet::new();
            let mut page = PageRequest::first(WALK_PAGE);
            loop {
                let got = self.contacts(organization, &page).await?;
                for r in &got.items {
                    if !people.insert(r.person) {
                        continue;
                    }
                    let person = match self.store.get_customer(tenant, r.person).await {
                        Ok(p) => p,
                        Err(Error::NotFound { .. }) => continue,
                        Err(e) => return Err(e),
                    };
                    if person.owner == org.owner && person.owner != new_owner {
                        plan.customers.push(transfer_entry(
                            &self.ctx, &person, new_owner, actor, reason,
                        )?);
                    }
                    if plan.len() > HandOver::MAX_RECORDS {
                        return Err(Error::validation(
                            "organization",
                            format!(
                                "has more than {} contacts to transfer",
                                HandOver::MAX_RECORDS
                            ),
                        ));
                    }
                }
                match got.next {
                    Some(next) => page = PageRequest::after(next, WALK_PAGE),
                    None => break,
                }
            }
        }
        let outbox = transfer_events(&self.ctx, &plan)?;
        self.store
            .hand_over(tenant, &plan, WriteOptions::new().outbox(outbox))
            .await?;
        Ok(plan.customers.into_iter().map(|c| c.customer).collect())
    }
}

fn kind_name(kind: PartyKind) -> &'static str {
    match kind {
        PartyKind::Person => "a person",
        PartyKind::Organization => "an organisation",
    }
}
