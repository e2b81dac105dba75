//! The pool service.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::{Ctx, Customers, Notifications, Transfer};
use crate::access::{Action, RecordKind};
use crate::case::CaseQuery;
use crate::customer::{Customer, CustomerQuery};
use crate::error::{Error, Result};
use crate::id::{CustomerId, UserId};
use crate::notify::{Notification, Priority, Recipient};
use crate::page::PageRequest;
use crate::pool::{start_of_day, PoolPolicy, ReclaimReport};
use crate::ports::{Capability, CaseStore};
use crate::schedule::{basis, DueKind};

use super::due::DueRun;

/// The shared pool of one tenant's unowned customers: return quiet customers to it, claim
/// from it (see [`crate::pool`]). From [`TenantCrm::pool`](super::TenantCrm::pool).
#[derive(Clone)]
pub struct Pool {
    ctx: Ctx,
    customers: Customers,
    notifications: Notifications,
    case_store: Arc<dyn CaseStore>,
}

debug_by_tenant!(Pool);

impl Pool {
    pub(super) fn new(
        customers: Customers,
        notifications: Notifications,
        case_store: Arc<dyn CaseStore>,
    ) -> Self {
        Pool {
            ctx: customers.ctx.clone(),
            customers,
            notifications,
            case_store,
        }
    }

    /// Returns the tenant's quiet customers to the pool at the clock's now (see the module
    /// docs), warning owners `notice_days` ahead. Each reclaim is one transfer to nobody
    /// with a `pool.reclaimed` notice to the previous owner in the same transaction; each
    /// warning is a `pool.notice` sent once per owner and deadline.
    ///
    /// With [`Capability::Schedule`](crate::Capability::Schedule) only the customers whose
    /// next notice or reclaim has come, or that changed since they were last looked at,
    /// are read (see [`crate::schedule`]); the instants are computed under `policy`, so a
    /// call with other rules first marks every owned customer for recomputation (keep
    /// one policy per tenant). Without it, every customer is read.
    ///
    /// Errors: validation of the policy; storage errors.
    pub async fn reclaim(&self, policy: &PoolPolicy) -> Result<ReclaimReport> {
        self.ctx.system_only("pool.reclaim")?;
        policy.validate()?;
        let now = self.ctx.now();
        let mut report = ReclaimReport::default();
        if !self.ctx.supports(Capability::Schedule) {
            for customer in self.customers.all(&CustomerQuery::all()).await? {
                self.reclaim_one(policy, &customer, now, &mut report)
                    .await?;
            }
            return Ok(report);
        }
        // What the instants depend on: the rules and the open-case exemption.
        let basis = basis(
            &serde_json::to_string(&(&policy.rules, policy.exempt_open_cases)).unwrap_or_default(),
        );
        let mut run = DueRun::start(&self.ctx, DueKind::Pool, &basis, now).await?;
        while let Some(entries) = run.next_page().await? {
            let mut next = Vec::with_capacity(entries.len());
            for entry in entries {
                let id = CustomerId::from_uuid(entry.id);
                let at = match self
                    .customers
                    .customer_store
                    .get_customer(self.ctx.tenant, id)
                    .await
                {
                    Ok(customer) => {
                        self.reclaim_one(policy, &customer, now, &mut report)
                            .await?
                    }
                    Err(Error::NotFound { .. }) => None,
                    Err(e) => return Err(e),
                };
                next.push(entry.reschedule(at));
            }
            run.reschedule(next).await?;
        }
        report.due = run.report.read;
        report.reset = run.report.reset;
        Ok(report)
    }

    /// Looks at one customer: warns its owner or returns it to the pool when due; when it
    /// next needs looking at.
    async fn reclaim_one(
        &self,
        policy: &PoolPolicy,
        customer: &Customer,
        now: DateTime<Utc>,
        report: &mut ReclaimReport,
    ) -> Result<Option<DateTime<Utc>>> {
        let Some(owner) = customer.owner else {
            return Ok(None);
        };
        report.checked += 1;
        let (profile, since) = self.customers.held_since(customer).await?;
        let Some((deadline, rule)) = policy.deadline(customer, &profile, since) else {
            return Ok(None);
        };
        let data = serde_json::json!({
            "customer": customer.id,
            "name": customer.name.as_str(),
            "deadline": deadline,
        });
        let warn_from = deadline - Duration::days(i64::from(rule.notice_days));
        if now < deadline {
            if rule.notice_days > 0 && now >= warn_from {
                let key = format!(
                    "pool:notice:{}:{owner}:{}",
                    customer.id,
                    deadline.timestamp()
                );
                let notice = Notification::builder(Recipient::User(owner), "pool.notice", &key)
                    .data(data)
                    .priority(Priority::High)
                    .build()?;
                report.warned += self.notifications.enqueue(vec![notice]).await?.enqueued;
            }
            let next = if rule.notice_days > 0 && now < warn_from {
                warn_from
            } else {
                deadline
            };
            return Ok(Some(next));
        }
        if policy.exempt_open_cases {
            let open = CaseQuery {
                customer: Some(customer.id),
                open_only: true,
                ..CaseQuery::default()
            };
            let cases = self
                .case_store
                .list_cases(self.ctx.tenant, &open, &PageRequest::first(1))
                .await?;
            if !cases.items.is_empty() {
                // Looked at again when one of its cases changes.
                report.exempt += 1;
                return Ok(None);
            }
        }
        let key = format!(
            "pool:reclaimed:{}:{}",
            customer.id,
            self.ctx.next_version("customer", customer.version)?
        );
        let notice = Notification::builder(Recipient::User(owner), "pool.reclaimed", &key)
            .data(data)
            .build()?;
        let reason = match (rule.no_contact_days, rule.no_purchase_days) {
            (Some(d), None) => format!("returned to the pool: no contact for {d} days"),
            (None, Some(d)) => format!("returned to the pool: no purchase for {d} days"),
            (Some(c), Some(p)) => {
                format!("returned to the pool: no contact for {c} days or no purchase for {p} days")
            }
            (None, None) => "returned to the pool".to_string(),
        };
        let transfer = Transfer {
            new_owner: None,
            expected_version: customer.version,
            actor: None,
            reason: Some(&reason),
        };
        match self
            .customers
            .change_owner_notifying(customer.id, transfer, vec![notice])
            .await
        {
            Ok(_) => report.reclaimed.push((customer.id, owner)),
            Err(Error::Conflict { .. }) => {
                report.conflicts += 1;
                return Ok(Some(now));
            }
            Err(other) => return Err(other),
        }
        Ok(None)
    }

    /// `user` claims `customer` from the pool at the clock's now, within the policy's
    /// limits.
    ///
    /// On a principal-scoped handle a principal claims for itself only (any pool customer:
    /// the pool is there to be claimed), and the claimed record comes back as it reads it,
    /// counted against its daily quota of contact reads.
    ///
    /// Errors: validation on `customer` if it has an owner; on `limits.max_held`,
    /// `limits.per_day` or `limits.reclaim_block_days` when a limit stops the claim (the
    /// reason says which and until when); [`Error::NotFound`]; [`Error::Conflict`] if
    /// someone else claimed it first.
    pub async fn claim(
        &self,
        customer: CustomerId,
        user: UserId,
        policy: &PoolPolicy,
    ) -> Result<Customer> {
        if let Some(v) = self.ctx.principal() {
            if v.user() != user {
                return Err(Error::forbidden(
                    "claim",
                    format!("customer {customer} for another user"),
                ));
            }
        }
        let tenant = self.ctx.tenant;
        policy.validate()?;
        let now = self.ctx.now();
        let target = self
            .customers
            .customer_store
            .get_customer(tenant, customer)
            .await?;
        if target.owner.is_some() {
            // Someone else's customer is none of a principal's business.
            self.ctx
                .check(RecordKind::Customers, Action::Read, &target)
                .await?;
            return Err(Error::validation(
                "customer",
                "is not in the pool: it has an owner",
            ));
        }
        let history = self
            .customers
            .customer_store
            .ownership_history(tenant, customer)
            .await?;
        let block = Duration::days(i64::from(policy.limits.reclaim_block_days));
        if let Some(lost) = history
            .iter()
            .find(|c| c.from == Some(user) && c.to.is_none() && now < c.at + block)
        {
            return Err(Error::validation(
                "limits.reclaim_block_days",
                format!(
                    "a previous owner may claim it back from {}",
                    lost.at + block
                ),
            ));
        }
        let held = self.held_by(user).await?;
        if held.len() >= policy.limits.max_held as usize {
            return Err(Error::validation(
                "limits.max_held",
                format!("holds {} customers already", held.len()),
            ));
        }
        let day_start = start_of_day(policy.time_zone, now);
        let mut claims_today = 0;
        for c in &held {
            let history = self
                .customers
                .customer_store
                .ownership_history(tenant, c.id)
                .await?;
            let newest = history.iter().find(|h| h.to == Some(user));
            if newest.is_some_and(|h| h.from.is_none() && h.at >= day_start) {
                claims_today += 1;
            }
        }
        if claims_today >= policy.limits.per_day {
            return Err(Error::validation(
                "limits.per_day",
                format!("claimed {claims_today} customers today already"),
            ));
        }
        let transfer = Transfer {
            new_owner: Some(user),
            expected_version: target.version,
            actor: Some(user),
            reason: Some("claimed from the pool"),
        };
        // The transfer out of the pool is the pool's to make, not the principal's reach.
        let claimed = self
            .customers
            .as_system()
            .change_owner_notifying(customer, transfer, Vec::new())
            .await?;
        let mut shown = self.ctx.read_out(vec![claimed], "pool.claim").await?;
        shown
            .pop()
            .ok_or_else(|| Error::not_found("customer", customer))
    }

    /// Every customer `user` owns.
    async fn held_by(&self, user: UserId) -> Result<Vec<Customer>> {
        let query = CustomerQuery {
            owner: Some(user),
            ..CustomerQuery::all()
        };
        self.customers.all(&query).await
    }
}
