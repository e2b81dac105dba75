//! Follow-up gap rules: days since the owner last contacted a customer.

use chrono::{DateTime, Duration, Utc};

use super::Evaluator;
use crate::customer::{Customer, CustomerQuery};
use crate::error::{Error, Result};
use crate::id::{CustomerId, UserId};
use crate::kpi::{KpiAction, KpiEngine, KpiReport, KpiRule};
use crate::notify::{Notification, Priority, Recipient};
use crate::schedule::DueKind;
use crate::service::due::{each, DueRun};
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
        Ok(customer
            .owner
            .and_then(|o| profile.last_contact_by.get(&o).copied())
            .map_or(owned, |t| t.max(owned)))
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
        let tenant = self.ctx.tenant;
        let basis = engine.basis(DueKind::FollowUp);
        let mut run = DueRun::start(&self.ctx, DueKind::FollowUp, &basis, now).await?;
        while let Some(entries) = run.next_page().await? {
            let done = each(entries, |entry| async move {
                let mut part = KpiReport::default();
                let id = CustomerId::from_uuid(entry.id);
                let at = match self.customers.customer_store.get_customer(tenant, id).await {
                    Ok(customer) => self.gap_one(engine, &customer, now, &mut part).await?,
                    Err(Error::NotFound { .. }) => None,
                    Err(e) => return Err(e),
                };
                Ok((entry.reschedule(at), part))
            })
            .await?;
            run.reschedule(super::absorb(report, done)).await?;
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
        let days = (now - since).num_days();
        let mut next: Option<DateTime<Utc>> = None;
        for (rule, max_days, warn_days) in rules {
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
                if self
                    .raise_gap(customer, owner, rule, breach, &key, days)
                    .await?
                {
                    if breach {
                        report.breaches += 1;
                        if rule.on_breach.contains(&KpiAction::ReturnToPool) {
                            report.returned_to_pool += 1;
                        }
                    } else {
                        report.warnings += 1;
                    }
                }
            }
        }
        Ok(next)
    }

    /// Raises one follow-up-gap alert; whether it was new.
    #[allow(clippy::too_many_arguments)]
    async fn raise_gap(
        &self,
        customer: &Customer,
        owner: UserId,
        rule: &KpiRule,
        breach: bool,
        key: &str,
        days: i64,
    ) -> Result<bool> {
        let actions = if breach {
            &rule.on_breach
        } else {
            &rule.on_warning
        };
        let (template, priority) = if breach {
            ("kpi.breach", Priority::Urgent)
        } else {
            ("kpi.warning", Priority::High)
        };
        let data = serde_json::json!({
            "rule": rule.name,
            "rule_key": rule.key,
            "customer": customer.id,
            "name": customer.name.as_str(),
            "days_without_contact": days,
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
                Notification::builder(to, template, &format!("{key}:{suffix}"))
                    .data(data.clone())
                    .priority(priority)
                    .build()?,
            );
        }
        match new_owner {
            None if notices.is_empty() => Ok(false),
            None => Ok(self.notifications.enqueue(notices).await?.enqueued > 0),
            Some(to) => {
                let reason = format!("KPI rule {}: no contact for {days} days", rule.name);
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
        }
    }
}
