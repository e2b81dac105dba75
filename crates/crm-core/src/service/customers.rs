//! The customers service.

use std::collections::BTreeSet;
use std::sync::Arc;

use tracing::instrument;

use super::{check_reason, check_version, Ctx, Transfer, MAX_BATCH};
use crate::access::{Action, RecordKind};
use crate::audit::{field_changes, AuditChange, AuditEntry};
use crate::customer::{Customer, CustomerQuery, OwnershipChange};
use crate::error::{Error, Result};
use crate::id::{CustomerId, UserId};
use crate::merge::{merge_records, CustomerMerge, MergeOutcome, MergePolicy};
use crate::notify::Notification;
use crate::page::{Page, PageRequest};
use crate::ports::{Capability, CustomerStore, ProfileStore, WriteOptions};
use crate::profile::Profile;

/// Customers of one tenant: register, read, update, search, transfer, merge; their audit
/// trail and profile. From [`TenantCrm::customers`](super::TenantCrm::customers).
#[derive(Clone)]
pub struct Customers {
    pub(super) ctx: Ctx,
    pub(super) customer_store: Arc<dyn CustomerStore>,
    pub(super) profile_store: Arc<dyn ProfileStore>,
}

debug_by_tenant!(Customers);

impl Customers {
    pub(super) fn new(
        ctx: Ctx,
        customer_store: Arc<dyn CustomerStore>,
        profile_store: Arc<dyn ProfileStore>,
    ) -> Self {
        Customers {
            ctx,
            customer_store,
            profile_store,
        }
    }

    /// Registers a new customer: sets version 1 and both timestamps to now, then stores it.
    /// Returns the stored record (as the principal sees it, on a scoped handle).
    /// Errors: validation, [`Error::Duplicate`] (id or external id taken).
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, customer = %customer.id))]
    pub async fn register(&self, mut customer: Customer) -> Result<Customer> {
        let tenant = self.ctx.tenant;
        customer.validate()?;
        self.ctx
            .check(RecordKind::Customers, Action::Write, &customer)
            .await?;
        let now = self.ctx.now();
        customer.version = 1;
        customer.created_at = now;
        customer.updated_at = now;
        let outbox = self.ctx.events()?.customer(&customer, None)?;
        self.customer_store
            .insert_customer(tenant, &customer, WriteOptions::new().outbox(outbox))
            .await?;
        Ok(self.ctx.present(customer))
    }

    /// Registers many customers in one transaction, all or nothing (for imports). Each is
    /// checked first (errors name it, like `customers[7].emails[1]`), then stamped like
    /// [`Customers::register`](super::Customers::register). Errors also: [`Error::Duplicate`].
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, rows = customers.len()))]
    pub async fn register_many(&self, mut customers: Vec<Customer>) -> Result<Vec<Customer>> {
        let tenant = self.ctx.tenant;
        if customers.len() > MAX_BATCH {
            return Err(Error::validation(
                "customers",
                format!("at most {MAX_BATCH} per batch, got {}", customers.len()),
            ));
        }
        let now = self.ctx.now();
        for (i, c) in customers.iter_mut().enumerate() {
            c.validate()
                .map_err(|e| e.in_field(&format!("customers[{i}]")))?;
            self.ctx
                .check(RecordKind::Customers, Action::Write, c)
                .await?;
            c.version = 1;
            c.created_at = now;
            c.updated_at = now;
        }
        let mut outbox = Vec::new();
        for c in &customers {
            outbox.extend(self.ctx.events()?.customer(c, None)?);
        }
        self.customer_store
            .insert_customers(
                tenant,
                customers.clone(),
                WriteOptions::new().outbox(outbox),
            )
            .await?;
        Ok(customers.into_iter().map(|c| self.ctx.present(c)).collect())
    }

    /// Reads a customer; an id merged into another customer gives the survivor's record.
    /// On a scoped handle its contact points may come back masked
    /// ([`Visibility::masks`](crate::access::Visibility::masks)).
    /// Errors: [`Error::NotFound`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn get(&self, id: CustomerId) -> Result<Customer> {
        let tenant = self.ctx.tenant;
        let found = match self.customer_store.get_customer(tenant, id).await {
            // A customer merged into another is found through its redirect.
            Err(Error::NotFound { .. }) => match self.customer_store.redirect(tenant, id).await? {
                Some(survivor) => self.customer_store.get_customer(tenant, survivor).await,
                None => Err(Error::not_found("customer", id)),
            },
            other => other,
        }?;
        self.ctx
            .check(RecordKind::Customers, Action::Read, &found)
            .await?;
        let mut shown = self.ctx.read_out(vec![found], "customers.get").await?;
        shown.pop().ok_or_else(|| Error::not_found("customer", id))
    }

    /// Stores a changed customer. `customer.version` must be the version it was read at;
    /// the stored record gets the next version and `updated_at` now. A changed owner is
    /// recorded as an ownership transfer by `actor`.
    ///
    /// A masked contact point ([`EmailAddress::masked`](crate::EmailAddress::masked)), as
    /// a principal may have read it, stands for the stored one it masks: kept unchanged.
    ///
    /// Errors: validation (a masked contact point that masks none of the stored ones
    /// names it), [`Error::NotFound`], [`Error::Conflict`] if the record changed since it
    /// was read.
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, customer = %customer.id))]
    pub async fn update(&self, mut customer: Customer, actor: Option<UserId>) -> Result<Customer> {
        let tenant = self.ctx.tenant;
        let current = self
            .customer_store
            .get_customer(tenant, customer.id)
            .await?;
        unmask(&mut customer, &current);
        customer.validate()?;
        check_version(&current, customer.version)?;
        self.ctx
            .check(RecordKind::Customers, Action::Write, &current)
            .await?;
        if (current.owner, current.team) != (customer.owner, customer.team) {
            self.ctx
                .check(RecordKind::Customers, Action::Transfer, &current)
                .await?;
        }
        let expected = customer.version;
        customer.version = self.ctx.next_version("customer", expected)?;
        customer.created_at = current.created_at;
        customer.updated_at = self.ctx.now();
        let ownership = (current.owner != customer.owner).then_some(OwnershipChange {
            customer: customer.id,
            from: current.owner,
            to: customer.owner,
            changed_by: actor,
            reason: None,
            at: customer.updated_at,
            version: customer.version,
        });
        let outbox = self.ctx.events()?.customer(&customer, ownership.as_ref())?;
        let audit = AuditEntry {
            customer: customer.id,
            version: customer.version,
            at: customer.updated_at,
            actor,
            reason: None,
            change: AuditChange::Updated {
                fields: field_changes(&current, &customer),
            },
        };
        self.customer_store
            .update_customer(
                tenant,
                &customer,
                expected,
                WriteOptions::new()
                    .ownership(ownership)
                    .audit(audit)
                    .outbox(outbox),
            )
            .await?;
        Ok(self.ctx.present(customer))
    }

    /// Transfers a customer to `new_owner` (`None`: back to the shared pool), recording who
    /// did it and why. `expected_version` is the version the caller last saw.
    ///
    /// Errors: [`Error::NotFound`], [`Error::Conflict`], validation of `reason`.
    pub async fn change_owner(
        &self,
        id: CustomerId,
        new_owner: Option<UserId>,
        expected_version: u64,
        actor: Option<UserId>,
        reason: Option<&str>,
    ) -> Result<Customer> {
        let transfer = Transfer {
            new_owner,
            expected_version,
            actor,
            reason,
        };
        self.change_owner_notifying(id, transfer, Vec::new()).await
    }

    /// [`Customers::change_owner`](super::Customers::change_owner), storing `notifications` (to the new owner, say) in the same
    /// transaction as the transfer: they are sent if and only if the transfer happened.
    ///
    /// Errors: as [`Customers::change_owner`](super::Customers::change_owner); validation naming `notifications[i]`.
    #[instrument(skip(self, transfer, notifications), fields(tenant = %self.ctx.tenant))]
    pub async fn change_owner_notifying(
        &self,
        id: CustomerId,
        transfer: Transfer<'_>,
        notifications: Vec<Notification>,
    ) -> Result<Customer> {
        let tenant = self.ctx.tenant;
        if !notifications.is_empty() {
            self.ctx
                .need(Capability::Outbox, "change_owner_notifying")?;
        }
        let Transfer {
            new_owner,
            expected_version,
            actor,
            reason,
        } = transfer;
        let mut outbox = self.ctx.outbox_of(notifications)?;
        check_reason(reason)?;
        let mut customer = self.customer_store.get_customer(tenant, id).await?;
        check_version(&customer, expected_version)?;
        self.ctx
            .check(RecordKind::Customers, Action::Transfer, &customer)
            .await?;
        let before = customer.clone();
        let now = self.ctx.now();
        let next = self.ctx.next_version("customer", expected_version)?;
        let change = OwnershipChange {
            customer: id,
            from: customer.owner,
            to: new_owner,
            changed_by: actor,
            reason: reason.map(str::to_string),
            at: now,
            version: next,
        };
        customer.owner = new_owner;
        customer.version = next;
        customer.updated_at = now;
        outbox.extend(self.ctx.events()?.customer(&customer, Some(&change))?);
        let audit = AuditEntry {
            customer: id,
            version: customer.version,
            at: now,
            actor,
            reason: reason.map(str::to_string),
            change: AuditChange::Updated {
                fields: field_changes(&before, &customer),
            },
        };
        self.customer_store
            .update_customer(
                tenant,
                &customer,
                expected_version,
                WriteOptions::new()
                    .ownership(Some(change))
                    .audit(audit)
                    .outbox(outbox),
            )
            .await?;
        Ok(self.ctx.present(customer))
    }

    /// Transfers every customer `from` owns to `to` (`None`: the shared pool), for example
    /// when someone leaves the company; each transfer is its own audited ownership change
    /// by `actor` with `reason`. A customer changed meanwhile is read again and transferred
    /// if `from` still owns it. Returns how many were transferred.
    ///
    /// For a departure, [`Staff::hand_over`](super::Staff::hand_over) moves the customers
    /// with the open cases and tasks, in one transaction.
    ///
    /// Errors: storage errors (transfers already made stay made; run it again to finish).
    pub async fn transfer_all(
        &self,
        from: UserId,
        to: Option<UserId>,
        actor: Option<UserId>,
        reason: Option<&str>,
    ) -> Result<u64> {
        self.ctx.system_only("customers.transfer_all")?;
        let tenant = self.ctx.tenant;
        let owned = self
            .all(&CustomerQuery {
                owner: Some(from),
                ..CustomerQuery::all()
            })
            .await?;
        let mut moved = 0;
        for c in owned {
            match self.change_owner(c.id, to, c.version, actor, reason).await {
                Ok(_) => moved += 1,
                Err(Error::Conflict { .. }) => {
                    let current = self.customer_store.get_customer(tenant, c.id).await?;
                    if current.owner == Some(from) {
                        self.change_owner(c.id, to, current.version, actor, reason)
                            .await?;
                        moved += 1;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }

    /// A customer's ownership transfers, newest first.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn ownership_history(&self, id: CustomerId) -> Result<Vec<OwnershipChange>> {
        let tenant = self.ctx.tenant;
        self.readable(id).await?;
        self.customer_store.ownership_history(tenant, id).await
    }

    /// Lists customers matching `query`, ordered by id.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn search(
        &self,
        query: &CustomerQuery,
        page: &PageRequest,
    ) -> Result<Page<Customer>> {
        let tenant = self.ctx.tenant;
        page.validate()?;
        if let Some(p) = &query.name_prefix {
            if p.chars().count() > crate::value::DisplayName::MAX_CHARS {
                return Err(Error::validation("name_prefix", "longer than any name"));
            }
        }
        if !self.ctx.scoped() {
            return self
                .customer_store
                .list_customers(tenant, query, page)
                .await;
        }
        let seen = self
            .ctx
            .visible_page(page, |p| async move {
                self.customer_store.list_customers(tenant, query, &p).await
            })
            .await?;
        Ok(Page {
            items: self.ctx.read_out(seen.items, "customers.search").await?,
            next: seen.next,
        })
    }

    /// A customer's profile (aggregates over all its interactions).
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn profile(&self, customer: CustomerId) -> Result<Profile> {
        let tenant = self.ctx.tenant;
        self.readable(customer).await?;
        self.profile_store.get_profile(tenant, customer).await
    }

    /// Every customer matching `query`, following the pages.
    pub(crate) async fn all(&self, query: &CustomerQuery) -> Result<Vec<Customer>> {
        let tenant = self.ctx.tenant;
        let mut out = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let batch = self
                .customer_store
                .list_customers(tenant, query, &page)
                .await?;
            out.extend(batch.items);
            match batch.next {
                Some(cursor) => page = PageRequest::after(cursor, 500),
                None => return Ok(out),
            }
        }
    }

    /// A customer's audit trail, newest first (the cursor is an audit cursor).
    /// Errors: validation of the page.
    pub async fn audit_history(
        &self,
        customer: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Audit, "audit_history")?;
        self.readable(customer).await?;
        self.customer_store
            .audit_history(tenant, customer, page)
            .await
    }

    /// Merges `others` into `survivor` (see the module docs). With `dry_run`, returns what
    /// the merge would produce and writes nothing.
    ///
    /// Errors: validation (no others, the survivor among them, an id twice, or a merged
    /// record beyond the limits of one customer, such as more than 16 email addresses);
    /// [`Error::NotFound`] for an unknown id; [`Error::Conflict`] when one of them changed
    /// after it was read (run the merge again).
    pub async fn merge(
        &self,
        survivor: CustomerId,
        others: &[CustomerId],
        policy: &MergePolicy,
        dry_run: bool,
    ) -> Result<MergeOutcome> {
        self.merge_by(survivor, others, policy, dry_run, None, None)
            .await
    }

    /// [`merge`](Self::merge), recording `actor` and `reason` in the
    /// audit trail.
    #[allow(clippy::too_many_arguments)]
    pub async fn merge_by(
        &self,
        survivor: CustomerId,
        others: &[CustomerId],
        policy: &MergePolicy,
        dry_run: bool,
        actor: Option<crate::id::UserId>,
        reason: Option<&str>,
    ) -> Result<MergeOutcome> {
        self.ctx.system_only("customers.merge_by")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Merge, "merge_customers_by")?;
        if others.is_empty() {
            return Err(Error::validation(
                "others",
                "name at least one customer to merge",
            ));
        }
        let mut seen = BTreeSet::from([survivor]);
        for (i, id) in others.iter().enumerate() {
            if !seen.insert(*id) {
                return Err(Error::validation(
                    format!("others[{i}]"),
                    "is the survivor or named twice",
                ));
            }
        }
        let mut records = vec![self.customer_store.get_customer(tenant, survivor).await?];
        let mut profile = self.profile_store.get_profile(tenant, survivor).await?;
        let mut moved: u64 = 0;
        for id in others {
            records.push(self.customer_store.get_customer(tenant, *id).await?);
            let p = self.profile_store.get_profile(tenant, *id).await?;
            // The merged profile refuses totals that overflow, so `moved` cannot.
            profile.merge(&p)?;
            moved = moved.saturating_add(p.interaction_count);
        }
        let (mut customer, dropped) = merge_records(&records, policy)?;
        let survivor_version = records[0].version;
        customer.version = self.ctx.next_version("customer", survivor_version)?;
        customer.updated_at = self.ctx.now();
        let outcome = MergeOutcome {
            customer: customer.clone(),
            profile,
            merged: others.to_vec(),
            dropped_external_ids: dropped,
            interactions_moved: moved,
            dry_run,
        };
        if dry_run {
            return Ok(outcome);
        }
        let outbox = self.ctx.events()?.merged(&customer, others)?;
        let at = customer.updated_at;
        let mut audit = vec![AuditEntry {
            customer: customer.id,
            version: customer.version,
            at,
            actor,
            reason: reason.map(str::to_string),
            change: AuditChange::Merged {
                merged: others.to_vec(),
                fields: field_changes(&records[0], &customer),
            },
        }];
        for c in &records[1..] {
            audit.push(AuditEntry {
                customer: c.id,
                version: self.ctx.next_version("customer", c.version)?,
                at,
                actor,
                reason: reason.map(str::to_string),
                change: AuditChange::MergedInto {
                    survivor: customer.id,
                },
            });
        }
        let merge = CustomerMerge {
            survivor: customer,
            survivor_version,
            merged: records[1..].iter().map(|c| (c.id, c.version)).collect(),
            audit,
        };
        self.customer_store
            .merge_customers(tenant, &merge, WriteOptions::new().outbox(outbox))
            .await?;
        Ok(outcome)
    }

    /// The id a customer is known by now: its own, or, for a customer merged away, the
    /// survivor's (following later merges too). Errors: [`Error::NotFound`].
    pub async fn resolve(&self, id: CustomerId) -> Result<CustomerId> {
        let tenant = self.ctx.tenant;
        let resolved = match self.customer_store.get_customer(tenant, id).await {
            Ok(c) => Ok(c.id),
            Err(Error::NotFound { .. }) => self
                .customer_store
                .redirect(tenant, id)
                .await?
                .ok_or_else(|| Error::not_found("customer", id)),
            Err(e) => Err(e),
        }?;
        self.readable(resolved).await?;
        Ok(resolved)
    }

    /// The same service on the tenant's system handle: for a change the service decides
    /// on the principal's behalf (a claim from the pool).
    pub(super) fn as_system(&self) -> Customers {
        let mut system = self.clone();
        system.ctx.principal = None;
        system
    }

    /// A customer's profile, and since when its current owner has held it (when it was
    /// created, if it never changed hands to this owner).
    pub(super) async fn held_since(
        &self,
        customer: &Customer,
    ) -> Result<(Profile, chrono::DateTime<chrono::Utc>)> {
        let tenant = self.ctx.tenant;
        let profile = self.profile_store.get_profile(tenant, customer.id).await?;
        let history = self
            .customer_store
            .ownership_history(tenant, customer.id)
            .await?;
        Ok((profile, crate::pool::owned_since(customer, &history)))
    }

    /// On a scoped handle, [`Error::Forbidden`] unless the principal reads customer `id`
    /// ([`Error::NotFound`] if there is none); nothing to check on the system handle.
    async fn readable(&self, id: CustomerId) -> Result<()> {
        self.ctx
            .check_id(RecordKind::Customers, Action::Read, id)
            .await
    }
}

/// Puts back the stored contact points that masked ones in `customer` stand for (each
/// stored one at most once); a masked one that matches none stays, for validation to name.
fn unmask(customer: &mut Customer, stored: &Customer) {
    let mut emails: Vec<_> = stored.emails.iter().collect();
    for e in customer.emails.iter_mut().filter(|e| e.is_masked()) {
        if let Some(i) = emails.iter().position(|s| s.masked() == *e) {
            *e = emails.remove(i).clone();
        }
    }
    let mut phones: Vec<_> = stored.phones.iter().collect();
    for p in customer.phones.iter_mut().filter(|p| p.is_masked()) {
        if let Some(i) = phones.iter().position(|s| s.masked() == *p) {
            *p = phones.remove(i).clone();
        }
    }
}
