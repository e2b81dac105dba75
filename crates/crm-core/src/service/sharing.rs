//! The sharing service: per-record grants and sharing rules.

use std::sync::Arc;

use tracing::instrument;

use super::{Ctx, Customers};
use crate::access::{Access, Action, Grant, Grantee, RecordKind, SharingRule};
use crate::error::{Error, Result};
use crate::id::{CustomerId, UserId};
use crate::ports::{AccessStore, Capability};

/// Sharing inside a tenant ([`crate::access`]): customers shared with a user or a unit
/// (grants), and sharing rules that share every customer matching a rule with a unit.
/// From [`TenantCrm::sharing`](super::TenantCrm::sharing).
///
/// On a principal-scoped handle, a principal shares and unshares the customers its roles
/// let it write (a grant it holds itself is not enough), recorded as given by it, and
/// reads the grants of the customers it reads; sharing rules are the system handle's.
#[derive(Clone)]
pub struct Sharing {
    ctx: Ctx,
    customers: Customers,
    access_store: Arc<dyn AccessStore>,
}

debug_by_tenant!(Sharing);

impl Sharing {
    pub(super) fn new(customers: Customers, access_store: Arc<dyn AccessStore>) -> Self {
        Sharing {
            ctx: customers.ctx.clone(),
            customers,
            access_store,
        }
    }

    /// Shares `customer` with `grantee` (`access`: read, or read and write), recorded as
    /// given now by `actor` (on a scoped handle: by the principal). A grant in force to
    /// the same grantee is replaced (and kept, revoked, in the record).
    ///
    /// Errors: [`Error::NotFound`]; [`Error::Forbidden`] on a scoped handle whose roles do
    /// not let it write the customer; [`Error::Unsupported`] without
    /// [`Capability::Sharing`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn share(
        &self,
        customer: CustomerId,
        grantee: Grantee,
        access: Access,
        actor: Option<UserId>,
    ) -> Result<Grant> {
        self.ctx.need(Capability::Sharing, "share")?;
        let by = self.owner_side(customer, actor).await?;
        let grant = Grant {
            customer,
            grantee,
            access,
            granted_by: by,
            granted_at: self.ctx.now(),
            revoked_by: None,
            revoked_at: None,
        };
        self.access_store.put_grant(self.ctx.tenant, &grant).await?;
        Ok(grant)
    }

    /// Takes back the grant in force of `customer` to `grantee`, recorded as revoked now by
    /// `actor` (on a scoped handle: by the principal); returns whether there was one.
    ///
    /// Errors: as [`Sharing::share`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn unshare(
        &self,
        customer: CustomerId,
        grantee: Grantee,
        actor: Option<UserId>,
    ) -> Result<bool> {
        self.ctx.need(Capability::Sharing, "unshare")?;
        let by = self.owner_side(customer, actor).await?;
        self.access_store
            .revoke_grant(self.ctx.tenant, customer, grantee, by, self.ctx.now())
            .await
    }

    /// Every grant of `customer`, in force and revoked, in the order they were given: who
    /// could see it, since when, and who decided.
    ///
    /// Errors: [`Error::NotFound`]; [`Error::Forbidden`] on a scoped handle that does not
    /// read the customer; [`Error::Unsupported`] without [`Capability::Sharing`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn grants(&self, customer: CustomerId) -> Result<Vec<Grant>> {
        self.ctx.need(Capability::Sharing, "grants")?;
        self.customers.get(customer).await?;
        self.access_store.grants_on(self.ctx.tenant, customer).await
    }

    /// Stores a sharing rule (checked first), replacing the rule of the same name;
    /// `created_at` is set to now and `created_by` to `actor`. Principals of the rule's
    /// unit see its customers from their next scoped handle on.
    ///
    /// Errors: validation; [`Error::Forbidden`] on a scoped handle;
    /// [`Error::Unsupported`] without [`Capability::Sharing`].
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, rule = %rule.name))]
    pub async fn put_rule(
        &self,
        mut rule: SharingRule,
        actor: Option<UserId>,
    ) -> Result<SharingRule> {
        self.ctx.system_only("sharing.put_rule")?;
        self.ctx.need(Capability::Sharing, "put_sharing_rule")?;
        rule.validate()?;
        rule.created_by = actor;
        rule.created_at = self.ctx.now();
        self.access_store
            .put_sharing_rule(self.ctx.tenant, &rule)
            .await?;
        Ok(rule)
    }

    /// Removes a sharing rule. Errors: [`Error::NotFound`]; [`Error::Forbidden`] on a
    /// scoped handle; [`Error::Unsupported`] without [`Capability::Sharing`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn delete_rule(&self, name: &str) -> Result<()> {
        self.ctx.system_only("sharing.delete_rule")?;
        self.ctx.need(Capability::Sharing, "delete_sharing_rule")?;
        self.access_store
            .delete_sharing_rule(self.ctx.tenant, name)
            .await
    }

    /// The tenant's sharing rules, by name. Errors: [`Error::Forbidden`] on a scoped
    /// handle; [`Error::Unsupported`] without [`Capability::Sharing`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn rules(&self) -> Result<Vec<SharingRule>> {
        self.ctx.system_only("sharing.rules")?;
        self.ctx.need(Capability::Sharing, "sharing_rules")?;
        self.access_store.sharing_rules(self.ctx.tenant).await
    }

    /// Who a grant change is recorded as made by, after checking that a principal may
    /// make it (its roles let it write the customer).
    async fn owner_side(
        &self,
        customer: CustomerId,
        actor: Option<UserId>,
    ) -> Result<Option<UserId>> {
        let record = self
            .customers
            .customer_store
            .get_customer(self.ctx.tenant, customer)
            .await?;
        match self.ctx.principal() {
            None => Ok(actor),
            Some(v) => {
                if v.reach(RecordKind::Customers, Action::Write)
                    .covers(record.owner, record.team)
                {
                    Ok(Some(v.user()))
                } else {
                    Err(Error::forbidden("share", format!("customer {customer}")))
                }
            }
        }
    }
}
