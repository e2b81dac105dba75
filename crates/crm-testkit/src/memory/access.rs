//! Grants and sharing rules of the in-memory store.

use chrono::NaiveDate;
use crm_core::access::{AccessEntry, AccessKind, DailyUsage, Grant, Grantee, SharingRule};
use crm_core::handover::GrantHandOver;
use crm_core::{AccessStore, TeamId, UserId};

use super::*;

/// A user's use of one kind on one day, in one tenant.
pub(super) type UsageKey = (TenantId, UserId, NaiveDate, AccessKind);

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
        grant.validate()?;
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

    async fn record_access(
        &self,
        tenant: TenantId,
        entry: &AccessEntry,
        limit: Option<u64>,
    ) -> Result<Option<u64>> {
        entry.validate()?;
        let mut s = self.lock();
        let key = (tenant, entry.user, entry.day(), entry.kind);
        let used = s.usage.get(&key).copied().unwrap_or(0);
        let after = used
            .checked_add(entry.count)
            .ok_or_else(|| Error::validation("count", "too large"))?;
        if limit.is_some_and(|l| after > l) {
            return Ok(None);
        }
        s.usage.insert(key, after);
        s.access_log.entry(tenant).or_default().push(entry.clone());
        Ok(Some(after))
    }

    async fn access_log(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AccessEntry>> {
        Ok(self
            .lock()
            .access_log
            .get(&tenant)
            .into_iter()
            .flatten()
            .rev()
            .filter(|e| e.at >= since && user.is_none_or(|u| e.user == u))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn daily_usage(
        &self,
        tenant: TenantId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyUsage>> {
        Ok(self
            .lock()
            .usage
            .iter()
            .filter(|((t, _, day, _), _)| *t == tenant && *day >= from && *day <= to)
            .map(|((_, user, day, kind), count)| DailyUsage {
                user: *user,
                day: *day,
                kind: *kind,
                count: *count,
            })
            .collect())
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
