//! Follow-up gap rules: days since the owner last contacted a customer.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::Evaluator;
use crate::customer::{Customer, CustomerQuery};
use crate::error::{Error, Result};
use crate::id::{CustomerId, UserId};
use crate::kpi::{KpiAction, KpiEngine, KpiReport, KpiRule};
use crate::notify::{Notification, Priority, Recipient};
use crate::pool::owned_since;
use crate::profile::Profile;
use crate::schedule::{DueEntry, DueKind, Reschedule};
use crate::service::due::DueRun;
use crate::service::Transfer;

impl Evaluator {
    /// Every owned customer with when its current follow-up gap began: the owner's last
    /// contact with it, or when the owner got it if later (for
    /// [`gap_scorecard`](crate::kpi::gap_scorecard)).
    pub(crate) async fn follow_up_gaps(&self) -> Result<Vec<(Customer, DateTime<Utc>)>> {
        let mut out = Vec::new();
        for customer in self.customers.all(&CustomerQuery::all()).await? {
            if customer.owner.is_some() {
                let since = self.gap_since(&customer).await?;
                out.push((customer, since));
            }
        }
        Ok(out)
    }

    /// When the owner's current gap with `customer` began.
    pub(super) async fn gap_since(&self, customer: &Customer) -> Result<DateTime<Utc>> {
        let (profile, owned) = self.customers.held_since(customer).await?;
        Ok(since_of(customer, &profile, owned))
    }

    /// Follow-up gap rules: each owned customer in scope whose owner has not contacted it
    /// for the rule's days raises a warning and a breach, once per gap (keyed by when the
    /// gap began): notices through the outbox, and reassignment or return to the pool as
    /// one transfer with them. Indexed: only the customers whose follow-up entry is due.
    pub(super) async fn evaluate_gaps(
        &self,
        engine: &KpiEngine,
        now: DateTime<Utc>,
        indexed: bool,
        report: &mut KpiReport,
    ) -> Result<()> {
        if engine.gap_rules().next().is_none() {
            return Ok(());
        }
        if !indexed {
            for customer in &self.customers.all(&CustomerQuery::all()).await? {
                self.gap_one(engine, customer, now, report).await?;
            }
            return Ok(());
        }
        let basis = engine.basis(DueKind::FollowUp);
        let mut run = DueRun::start(&self.ctx, DueKind::FollowUp, &basis, now).await?;
        while let Some(entries) = run.next_page().await? {
            let next = self.gaps_page(engine, entries, now, report).await?;
            run.reschedule(next).await?;
        }
        report.add_due(&run.report);
        Ok(())
    }

    /// Evaluates the gap rules on one customer; when its next warning or breach falls due.
    async fn gap_one(
        &self,
        engine: &KpiEngine,
        customer: &Customer,
        now: DateTime<Utc>,
        report: &mut KpiReport,
    ) -> Result<Option<DateTime<Utc>>> {
        let Some(owner) = customer.owner else {
            return Ok(None);
        };
        let rules: Vec<_> = engine
            .gap_rules()
            .filter(|(r, _, _)| r.scope.matches_customer(customer))
            .collect();
        if rules.is_empty() {
            return Ok(None);
        }
        report.customers += 1;
        let since = self.gap_since(customer).await?;
        let (alerts, next) = gap_plan(&rules, customer, since, now);
        for alert in alerts {
            let new = self.raise_gap(customer, owner, &alert).await?;
            alert.count(new, report);
        }
        Ok(next)
    }

    /// Raises one follow-up-gap alert; whether it was new.
    async fn raise_gap(
        &self,
        customer: &Customer,
        owner: UserId,
        alert: &GapAlert<'_>,
    ) -> Result<bool> {
        let (notices, new_owner) = alert.notices(customer, owner)?;
        match new_owner {
            None if notices.is_empty() => Ok(false),
            None => Ok(self.notifications.enqueue(notices).await?.enqueued > 0),
            Some(to) => self.transfer_gap(customer, alert, to, notices).await,
        }
    }

    /// Hands `customer` to `to` (or the pool) because of `alert`, with its notices; whether
    /// it was new (a concurrent change is left to the next run).
    async fn transfer_gap(
        &self,
        customer: &Customer,
        alert: &GapAlert<'_>,
        to: Option<UserId>,
        notices: Vec<Notification>,
    ) -> Result<bool> {
        let reason = format!(
            "KPI rule {}: no contact for {} days",
            alert.rule.name, alert.days
        );
        let transfer = Transfer {
            new_owner: to,
            expected_version: customer.version,
            actor: None,
            reason: Some(&reason),
        };
        match self
            .customers
            .change_owner_notifying(customer.id, transfer, notices)
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::Conflict { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// One page of due follow-up entries, read in batches (the customers, their profiles
    /// and ownership histories) with the notices of every alert stored in one
    /// transaction; hand-overs follow one by one. The entries' next instants.
    async fn gaps_page(
        &self,
        engine: &KpiEngine,
        entries: Vec<DueEntry>,
        now: DateTime<Utc>,
        report: &mut KpiReport,
    ) -> Result<Vec<Reschedule>> {
        let tenant = self.ctx.tenant;
        let store = &self.customers.customer_store;
        let ids: Vec<CustomerId> = entries
            .iter()
            .map(|e| CustomerId::from_uuid(e.id))
            .collect();
        let customers: BTreeMap<CustomerId, Customer> = store
            .get_customers(tenant, &ids)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let in_scope = |c: &Customer| {
            c.owner.is_some()
                && engine
                    .gap_rules()
                    .any(|(r, _, _)| r.scope.matches_customer(c))
        };
        let owned: Vec<CustomerId> = customers
            .values()
            .filter(|c| in_scope(c))
            .map(|c| c.id)
            .collect();
        let profiles = self
            .customers
            .profile_store
            .get_profiles(tenant, &owned)
            .await?;
        let histories = store.ownership_histories(tenant, &owned).await?;
        let (mut notices, mut transfers, mut next) = (Vec::new(), Vec::new(), Vec::new());
        for entry in entries {
            let id = CustomerId::from_uuid(entry.id);
            let customer = customers.get(&id).filter(|c| in_scope(c));
            let (Some(customer), Some(owner)) = (customer, customer.and_then(|c| c.owner)) else {
                next.push(entry.reschedule(None));
                continue;
            };
            report.customers += 1;
            let history = histories.get(&id).map_or(&[][..], Vec::as_slice);
            let profile = profiles.get(&id).cloned().unwrap_or_default();
            let since = since_of(customer, &profile, owned_since(customer, history));
            let rules: Vec<_> = engine
                .gap_rules()
                .filter(|(r, _, _)| r.scope.matches_customer(customer))
                .collect();
            let (alerts, at) = gap_plan(&rules, customer, since, now);
            for alert in alerts {
                match alert.notices(customer, owner)? {
                    (n, None) if n.is_empty() => {}
                    (n, None) => notices.push((alert, n)),
                    (n, Some(to)) => transfers.push((customer, alert, to, n)),
                }
            }
            next.push(entry.reschedule(at));
        }
        let (alerts, groups): (Vec<_>, Vec<_>) = notices.into_iter().unzip();
        let stored = self.notifications.enqueue_groups(groups).await?;
        for (alert, r) in alerts.iter().zip(stored) {
            alert.count(r.enqueued > 0, report);
        }
        for (customer, alert, to, n) in transfers {
            let new = self.transfer_gap(customer, &alert, to, n).await?;
            alert.count(new, report);
        }
        Ok(next)
    }
}

/// When the owner's current gap with `customer` began: the owner's last contact, or when
/// the owner got it (`owned`) if later.
fn since_of(customer: &Customer, profile: &Profile, owned: DateTime<Utc>) -> DateTime<Utc> {
    customer
        .owner
        .and_then(|o| profile.last_contact_by.get(&o).copied())
        .map_or(owned, |t| t.max(owned))
}

/// A gap rule with its breach and warning days.
type GapRule<'r> = (&'r KpiRule, u32, u32);

/// One follow-up-gap alert to raise.
struct GapAlert<'r> {
    rule: &'r KpiRule,
    breach: bool,
    key: String,
    days: i64,
}

/// The alerts `rules` raise on `customer` (its gap begun at `since`) at `now`, with the
/// instant the next one falls due.
fn gap_plan<'r>(
    rules: &[GapRule<'r>],
    customer: &Customer,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Vec<GapAlert<'r>>, Option<DateTime<Utc>>) {
    let days = (now - since).num_days();
    let mut next: Option<DateTime<Utc>> = None;
    let mut alerts = Vec::new();
    for &(rule, max_days, warn_days) in rules {
        for (breach, limit) in [(false, warn_days), (true, max_days)] {
            if !breach && warn_days == max_days {
                continue;
            }
            if days < i64::from(limit) {
                let at = since
                    .checked_add_signed(Duration::days(i64::from(limit)))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                next = Some(next.map_or(at, |n| n.min(at)));
                continue;
            }
            let level = if breach { "breach" } else { "warning" };
            let key = format!(
                "kpi:{}:{}:{}:{level}",
                rule.key,
                customer.id,
                since.timestamp_micros()
            );
            alerts.push(GapAlert {
                rule,
                breach,
                key,
                days,
            });
        }
    }
    (alerts, next)
}

impl GapAlert<'_> {
    /// Adds the alert to `report` if it was new.
    fn count(&self, new: bool, report: &mut KpiReport) {
        if !new {
            return;
        }
        if self.breach {
            report.breaches += 1;
            if self.rule.on_breach.contains(&KpiAction::ReturnToPool) {
                report.returned_to_pool += 1;
            }
        } else {
            report.warnings += 1;
        }
    }

    /// The notices of the alert on `customer` (owned by `owner`), and the owner it hands
    /// the customer to (`Some(None)`: the pool), if any.
    fn notices(
        &self,
        customer: &Customer,
        owner: UserId,
    ) -> Result<(Vec<Notification>, Option<Option<UserId>>)> {
        let rule = self.rule;
        let actions = if self.breach {
            &rule.on_breach
        } else {
            &rule.on_warning
        };
        let (template, priority) = if self.breach {
            ("kpi.breach", Priority::Urgent)
        } else {
            ("kpi.warning", Priority::High)
        };
        let data = serde_json::json!({
            "rule": rule.name,
            "rule_key": rule.key,
            "customer": customer.id,
            "name": customer.name.as_str(),
            "days_without_contact": self.days,
        });
        let mut notices = Vec::new();
        let mut new_owner = None;
        for action in actions {
            let to = match action {
                KpiAction::NotifyAssignee => Recipient::User(owner),
                KpiAction::NotifyTeamLead => Recipient::TeamLeadOf(owner),
                KpiAction::Reassign { to } => {
                    new_owner = Some(Some(*to));
                    continue;
                }
                KpiAction::ReturnToPool => {
                    new_owner = Some(None);
                    continue;
                }
            };
            let suffix = if matches!(to, Recipient::User(_)) {
                "owner"
            } else {
                "lead"
            };
            notices.push(
                Notification::builder(to, template, &format!("{}:{suffix}", self.key))
                    .data(data.clone())
                    .priority(priority)
                    .build()?,
            );
        }
        Ok((notices, new_owner))
    }
}
