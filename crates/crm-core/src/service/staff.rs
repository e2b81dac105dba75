//! The staff service.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::instrument;

use super::{check_reason, Ctx, Customers};
use crate::access::{Grant, Grantee};
use crate::audit::{field_changes, AuditChange, AuditEntry};
use crate::case::{CaseEventKind, CaseQuery};
use crate::customer::{CustomerQuery, OwnershipChange};
use crate::error::{Error, Result};
use crate::handover::{CustomerHandOver, GrantHandOver, HandOver, HandOverReport};
use crate::id::UserId;
use crate::page::PageRequest;
use crate::ports::{AccessStore, Capability, CaseStore, TaskStore, WriteOptions};
use crate::task::TaskQuery;

/// What staff hold, as a whole: the hand-over when someone leaves (see
/// [`crate::handover`]). From [`TenantCrm::staff`](super::TenantCrm::staff).
#[derive(Clone)]
pub struct Staff {
    ctx: Ctx,
    customers: Customers,
    case_store: Arc<dyn CaseStore>,
    task_store: Arc<dyn TaskStore>,
    access_store: Arc<dyn AccessStore>,
}

debug_by_tenant!(Staff);

impl Staff {
    pub(super) fn new(
        customers: Customers,
        case_store: Arc<dyn CaseStore>,
        task_store: Arc<dyn TaskStore>,
        access_store: Arc<dyn AccessStore>,
    ) -> Self {
        Staff {
            ctx: customers.ctx.clone(),
            customers,
            case_store,
            task_store,
            access_store,
        }
    }

    /// Hands everything `from` holds to `to`, in one transaction: every customer `from`
    /// owns (an audited ownership transfer by `actor` with `reason` each), every open case
    /// assigned to `from` (with an assignment event) and every open task assigned to
    /// `from` (its reminders then go to `to`), and every grant in force to `from` (given
    /// to `to` with the wider of the two accesses when `to` had one on the same customer;
    /// grants to `from`'s unit stay with the unit). If a record changes while the plan is
    /// applied, nothing moves and the plan is read again (up to three times).
    ///
    /// Errors: validation of `to` (the one leaving) or `reason`, or a hand-over of more
    /// than [`HandOver::MAX_RECORDS`] records; [`Error::Conflict`] when records kept
    /// changing; [`Error::Unsupported`] without [`Capability::HandOver`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn hand_over(
        &self,
        from: UserId,
        to: UserId,
        actor: Option<UserId>,
        reason: Option<&str>,
    ) -> Result<HandOverReport> {
        self.ctx.system_only("staff.hand_over")?;
        self.ctx.need(Capability::HandOver, "hand_over")?;
        if from == to {
            return Err(Error::validation("to", "is the one leaving"));
        }
        check_reason(reason)?;
        let mut tries = 0;
        loop {
            tries += 1;
            let plan = self.plan(from, to, actor, reason).await?;
            let report = HandOverReport {
                customers: plan.customers.len(),
                cases: plan.cases.len(),
                tasks: plan.tasks.len(),
                grants: plan.grants.len(),
            };
            if plan.is_empty() {
                return Ok(report);
            }
            let outbox = transfer_events(&self.ctx, &plan)?;
            match self
                .customers
                .customer_store
                .hand_over(self.ctx.tenant, &plan, WriteOptions::new().outbox(outbox))
                .await
            {
                Err(Error::Conflict { .. }) if tries < 3 => continue,
                Err(e) => return Err(e),
                Ok(()) => return Ok(report),
            }
        }
    }

    /// The hand-over of what `from` holds now.
    async fn plan(
        &self,
        from: UserId,
        to: UserId,
        actor: Option<UserId>,
        reason: Option<&str>,
    ) -> Result<HandOver> {
        let tenant = self.ctx.tenant;
        let now = self.ctx.now();
        let too_many = || {
            Error::validation(
                "from",
                format!(
                    "holds more than {} records: hand them over in parts",
                    HandOver::MAX_RECORDS
                ),
            )
        };
        let mut plan = HandOver::default();
        let owned = CustomerQuery {
            owner: Some(from),
            ..CustomerQuery::all()
        };
        for current in self.customers.all(&owned).await? {
            plan.customers.push(transfer_entry(
                &self.ctx,
                &current,
                Some(to),
                actor,
                reason,
            )?);
            if plan.len() > HandOver::MAX_RECORDS {
                return Err(too_many());
            }
        }
        if self.ctx.supports(Capability::Cases) {
            let query = CaseQuery {
                assignee: Some(from),
                open_only: true,
                ..CaseQuery::default()
            };
            let mut page = PageRequest::first(500);
            loop {
                let got = self.case_store.list_cases(tenant, &query, &page).await?;
                for current in got.items {
                    let mut case = current.clone();
                    // Never earlier than the case's last event.
                    let at = case.events.last().map_or(now, |e| now.max(e.at));
                    case.record(
                        at,
                        CaseEventKind::Assignment {
                            to: Some(to),
                            by: actor,
                            reason: reason.map(str::to_string),
                        },
                    )?;
                    case.version = self.ctx.next_version("case", current.version)?;
                    plan.cases.push((case, current.version));
                    if plan.len() > HandOver::MAX_RECORDS {
                        return Err(too_many());
                    }
                }
                match got.next {
                    Some(next) => page = PageRequest::after(next, 500),
                    None => break,
                }
            }
        }
        if self.ctx.supports(Capability::Tasks) {
            let query = TaskQuery {
                assignee: Some(from),
                open_only: true,
                ..TaskQuery::default()
            };
            let mut page = PageRequest::first(500);
            loop {
                let got = self.task_store.list_tasks(tenant, &query, &page).await?;
                for current in got.items {
                    let mut task = current.clone();
                    task.assignee = to;
                    task.version = self.ctx.next_version("task", current.version)?;
                    plan.tasks.push((task, current.version));
                    if plan.len() > HandOver::MAX_RECORDS {
                        return Err(too_many());
                    }
                }
                match got.next {
                    Some(next) => page = PageRequest::after(next, 500),
                    None => break,
                }
            }
        }
        if self.ctx.supports(Capability::Sharing) {
            let limit = HandOver::MAX_RECORDS.saturating_add(1);
            let theirs = |user| self.access_store.grants_to(tenant, user, None, limit);
            let held: BTreeMap<_, _> = theirs(to)
                .await?
                .into_iter()
                .filter(|g| g.grantee == Grantee::User(to))
                .map(|g| (g.customer, g.access))
                .collect();
            for g in theirs(from).await? {
                if g.grantee != Grantee::User(from) {
                    continue;
                }
                let access = held.get(&g.customer).map_or(g.access, |a| g.access.max(*a));
                plan.grants.push(GrantHandOver {
                    from: g.grantee,
                    grant: Grant {
                        customer: g.customer,
                        grantee: Grantee::User(to),
                        access,
                        granted_by: actor,
                        granted_at: now,
                        revoked_by: None,
                        revoked_at: None,
                    },
                });
                if plan.len() > HandOver::MAX_RECORDS {
                    return Err(too_many());
                }
            }
        }
        Ok(plan)
    }
}

/// One customer's transfer to `to` in a [`HandOver`]: the record at its next version, its
/// ownership change and audit entry, by `actor` with `reason`, now.
pub(super) fn transfer_entry(
    ctx: &Ctx,
    current: &crate::customer::Customer,
    to: Option<UserId>,
    actor: Option<UserId>,
    reason: Option<&str>,
) -> Result<CustomerHandOver> {
    let now = ctx.now();
    let mut customer = current.clone();
    customer.owner = to;
    customer.version = ctx.next_version("customer", current.version)?;
    customer.updated_at = now;
    let ownership = OwnershipChange {
        customer: customer.id,
        from: current.owner,
        to,
        changed_by: actor,
        reason: reason.map(str::to_string),
        at: now,
        version: customer.version,
    };
    let audit = AuditEntry {
        customer: customer.id,
        version: customer.version,
        at: now,
        actor,
        reason: reason.map(str::to_string),
        change: AuditChange::Updated {
            fields: field_changes(current, &customer),
        },
    };
    Ok(CustomerHandOver {
        customer,
        expected_version: current.version,
        ownership,
        audit,
    })
}

/// The `customer.*` events of a hand-over plan's transfers (none when events are off).
pub(super) fn transfer_events(
    ctx: &Ctx,
    plan: &HandOver,
) -> Result<Vec<crate::notify::OutboxMessage>> {
    let mut outbox = Vec::new();
    for c in &plan.customers {
        outbox.extend(ctx.events()?.customer(&c.customer, Some(&c.ownership))?);
    }
    Ok(outbox)
}
