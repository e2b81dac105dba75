//! Grants and sharing rules of the in-memory store.

use crm_core::access::{Grant, Grantee, SharingRule};
use crm_core::handover::GrantHandOver;
use crm_core::{AccessStore, TeamId, UserId};

use super::*;

impl State {
    /// Revokes the grant of `customer` to `grantee` in force; whether there was one.
    fn revoke(
        &mut self,
        tenant: TenantId,
        customer: CustomerId,
        grantee: Grantee,
        by: Option<UserId>,
        at: DateTime<Utc>,
    ) -> bool {
        let grants = self.grants.entry(tenant).or_default();
        match grants
            .iter_mut()
            .find(|g| g.customer == customer && g.grantee == grantee && g.is_active())
        {
            Some(g) => {
                g.revoked_by = by;
                g.revoked_at = Some(at);
                true
            }
            None => false,
        }
    }

    /// Stores a grant in force in place of the one of its customer and grantee.
    fn put_grant(&mut self, tenant: TenantId, grant: &Grant) {
        self.revoke(
            tenant,
            grant.customer,
            grant.grantee,
            grant.granted_by,
            grant.granted_at,
        );
        self.grants.entry(tenant).or_default().push(grant.clone());
    }

    /// The grants of a hand-over: the leaver's revoked, the successor's stored. Checked
    /// with the rest of the plan before anything changes.
    pub(super) fn hand_over_grants(&mut self, tenant: TenantId, grants: &[GrantHandOver]) {
        for g in grants {
            let new = &g.grant;
            self.revoke(tenant, new.customer, g.from, new.granted_by, new.granted_at);
            self.put_grant(tenant, new);
        }
    }
}

#[async_trait]
impl AccessStore for MemoryStore {
    async fn put_grant(&self, tenant: TenantId, grant: &Grant) -> Result<()> {
        let mut s = self.lock();
        if !s.customers.contains_key(&(tenant, grant.customer)) {
            return Err(not_found(grant.customer));
        }
        s.put_grant(tenant, grant);
        Ok(())
    }

    async fn revoke_grant(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        grantee: Grantee,
        by: Option<UserId>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(self.lock().revoke(tenant, customer, grantee, by, at))
    }

    async fn grants_on(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<Grant>> {
        Ok(self
            .lock()
            .grants
            .get(&tenant)
            .into_iter()
            .flatten()
            .filter(|g| g.customer == customer)
            .cloned()
            .collect())
    }

    async fn grants_to(
        &self,
        tenant: TenantId,
        user: UserId,
        unit: Option<TeamId>,
        limit: usize,
    ) -> Result<Vec<Grant>> {
        Ok(self
            .lock()
            .grants
            .get(&tenant)
            .into_iter()
            .flatten()
            .filter(|g| {
                g.is_active()
                    && match g.grantee {
                        Grantee::User(u) => u == user,
                        Grantee::Unit(t) => Some(t) == unit,
                    }
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn put_sharing_rule(&self, tenant: TenantId, rule: &SharingRule) -> Result<()> {
        self.lock()
            .sharing_rules
            .insert((tenant, rule.name.clone()), rule.clone());
        Ok(())
    }

    async fn delete_sharing_rule(&self, tenant: TenantId, name: &str) -> Result<()> {
        self.lock()
            .sharing_rules
            .remove(&(tenant, name.to_string()))
            .map(|_| ())
            .ok_or_else(|| Error::not_found("sharing rule", name))
    }

    async fn sharing_rules(&self, tenant: TenantId) -> Result<Vec<SharingRule>> {
        Ok(self
            .lock()
            .sharing_rules
            .range((tenant, String::new())..)
            .take_while(|((t, _), _)| *t == tenant)
            .map(|(_, r)| r.clone())
            .collect())
    }
}
