//! Rules on deals: days in a stage, since the owner's last touch, past the close date.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use super::Evaluator;
use crate::error::{Error, Result};
use crate::id::OpportunityId;
use crate::kpi::{days_since, DealMeasure, KpiAction, KpiEngine, KpiReport, KpiRule};
use crate::notify::{Notification, OutboxMessage, Priority, Recipient};
use crate::page::PageRequest;
use crate::ports::{Capability, WriteOptions};
use crate::sales::{Opportunity, OpportunityQuery, Outcome};
use crate::schedule::DueKind;
use crate::service::due::{each, DueRun};

/// A rule on deals with its measure, breach days and warning days.
type DealRule<'a> = (&'a KpiRule, DealMeasure, u32, u32);

/// A new alert on a deal: the rule, its measure, whether a breach, its key, the days.
type DealAlert<'a> = (&'a KpiRule, DealMeasure, bool, String, i64);

impl Evaluator {
    /// Rules on deals: each open deal in scope whose measure reached a rule's warning or
    /// breach days raises it once per measured period (keyed by when the period began,
    /// recorded on the deal): notices to its owner or their team lead and a reassignment,
    /// stored with the deal in one optimistic transaction; returning the account to the
    /// pool follows in a transaction of its own. Indexed: only the deals whose entry is due.
    pub(super) async fn evaluate_deals(
        &self,
        engine: &KpiEngine,
        now: DateTime<Utc>,
        indexed: bool,
        report: &mut KpiReport,
    ) -> Result<()> {
        let rules: Vec<_> = engine.deal_rules().collect();
        if rules.is_empty() || !self.ctx.supports(Capability::Sales) {
            return Ok(());
        }
        let tenant = self.ctx.tenant;
        let store = &self.ctx.storage;
        if !indexed {
            let open = OpportunityQuery {
                outcome: Some(Outcome::Open),
                ..OpportunityQuery::default()
            };
            let mut page = PageRequest::first(500);
            loop {
                let batch = store.list_opportunities(tenant, &open, &page).await?;
                for deal in &batch.items {
                    self.deal_one(&rules, deal, now, report).await?;
                }
                match batch.next {
                    Some(cursor) => page = PageRequest::after(cursor, 500),
                    None => return Ok(()),
                }
            }
        }
        let basis = engine.basis(DueKind::Deal);
        let mut run = DueRun::start(&self.ctx, DueKind::Deal, &basis, now).await?;
        while let Some(entries) = run.next_page().await? {
            let rules = &rules;
            let done = each(entries, |entry| async move {
                let mut part = KpiReport::default();
                let id = OpportunityId::from_uuid(entry.id);
                let at = match store.get_opportunity(tenant, id).await {
                    Ok(deal) => self.deal_one(rules, &deal, now, &mut part).await?,
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

    /// Evaluates the deal rules on one deal (nothing unless it is open); when its next
    /// warning or breach falls due.
    async fn deal_one(
        &self,
        rules: &[DealRule<'_>],
        deal: &Opportunity,
        now: DateTime<Utc>,
        report: &mut KpiReport,
    ) -> Result<Option<DateTime<Utc>>> {
        if deal.outcome != Outcome::Open {
            return Ok(None);
        }
        let tenant = self.ctx.tenant;
        let store = &self.ctx.storage;
        let needs_account = rules.iter().any(|(r, ..)| r.scope.needs_customer());
        let account = if needs_account {
            match store.get_customer(tenant, deal.account).await {
                Ok(c) => Some(c),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let in_scope: Vec<_> = rules
            .iter()
            .filter(|(r, ..)| r.scope.matches_deal(deal, account.as_ref()))
            .collect();
        if in_scope.is_empty() {
            return Ok(None);
        }
        report.deals += 1;
        let needs_touch = in_scope
            .iter()
            .any(|(_, m, ..)| *m == DealMeasure::DaysSinceOwnerTouch);
        let touched = if needs_touch {
            self.touched(deal).await?
        } else {
            None
        };
        let mut current = BTreeSet::new();
        let mut alerts = Vec::new();
        let mut next_at: Option<DateTime<Utc>> = None;
        for (rule, measure, max_days, warn_days) in in_scope {
            let since = measure.since(deal, touched);
            let days = days_since(since, now);
            for (breach, limit) in [(false, *warn_days), (true, *max_days)] {
                if !breach && warn_days == max_days {
                    continue;
                }
                let level = if breach { "breach" } else { "warning" };
                let key = format!(
                    "kpi:{}:{}:{}:{level}",
                    rule.key,
                    deal.id,
                    since.timestamp_micros()
                );
                current.insert(key.clone());
                if deal.alerts.contains(&key) {
                    continue;
                }
                if days >= i64::from(limit) {
                    alerts.push((*rule, *measure, breach, key, days));
                } else {
                    let at = since
                        .checked_add_signed(Duration::days(i64::from(limit)))
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    next_at = Some(next_at.map_or(at, |n| n.min(at)));
                }
            }
        }
        if alerts.is_empty() {
            return Ok(next_at);
        }
        let (next, outbox, to_pool) = self.raise_deal(deal, &alerts, &current)?;
        match store
            .update_opportunity(
                tenant,
                &next,
                deal.version,
                &[],
                WriteOptions::new().outbox(outbox),
            )
            .await
        {
            Ok(()) => {
                for (_, _, breach, ..) in &alerts {
                    if *breach {
                        report.breaches += 1;
                    } else {
                        report.warnings += 1;
                    }
                }
                let names: Vec<&str> = alerts
                    .iter()
                    .filter(|a| to_pool.contains(&a.3))
                    .map(|a| a.0.name.as_str())
                    .collect();
                if !names.is_empty() && self.return_to_pool(deal.account, &names.join(", ")).await?
                {
                    report.returned_to_pool += 1;
                }
            }
            Err(Error::Conflict { .. }) => report.conflicts += 1,
            Err(other) => return Err(other),
        }
        // The deal changed (its entry is marked again) or will be looked at again: now.
        Ok(Some(now))
    }

    /// The owner's last interaction with the deal's account or one of its contacts.
    async fn touched(&self, deal: &Opportunity) -> Result<Option<DateTime<Utc>>> {
        let mut last = None;
        let parties = std::iter::once(deal.account).chain(deal.contacts.iter().map(|c| c.customer));
        for party in parties {
            match self.ctx.storage.get_profile(self.ctx.tenant, party).await {
                Ok(p) => last = last.max(p.last_contact_by(deal.owner)),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(last)
    }

    /// The deal with `alerts` recorded (keys of periods no longer current dropped) and
    /// its reassignment, the notices to store with it, and the keys of the alerts that
    /// return the account to the pool.
    #[allow(clippy::type_complexity)]
    fn raise_deal(
        &self,
        deal: &Opportunity,
        alerts: &[DealAlert<'_>],
        current: &BTreeSet<String>,
    ) -> Result<(Opportunity, Vec<OutboxMessage>, Vec<String>)> {
        let mut next = deal.clone();
        next.alerts.retain(|k| current.contains(k));
        let mut outbox = Vec::new();
        let mut to_pool = Vec::new();
        for (rule, measure, breach, key, days) in alerts {
            let (actions, template, priority) = if *breach {
                (&rule.on_breach, "kpi.breach", Priority::Urgent)
            } else {
                (&rule.on_warning, "kpi.warning", Priority::High)
            };
            let data = serde_json::json!({
                "rule": rule.name,
                "rule_key": rule.key,
                "opportunity": deal.id,
                "name": deal.name.as_str(),
                "account": deal.account,
                "stage": deal.stage,
                "measure": measure.as_str(),
                "days": days,
            });
            for action in actions.iter() {
                let recipient = match action {
                    KpiAction::NotifyAssignee => (Recipient::User(deal.owner), "owner"),
                    KpiAction::NotifyTeamLead => (Recipient::TeamLeadOf(deal.owner), "lead"),
                    KpiAction::Reassign { to } => {
                        if next.owner != *to {
                            next.owner = *to;
                            next.owned_since = Some(self.ctx.now());
                        }
                        continue;
                    }
                    KpiAction::ReturnToPool => {
                        to_pool.push(key.clone());
                        continue;
                    }
                };
                let n =
                    Notification::builder(recipient.0, template, &format!("{key}:{}", recipient.1))
                        .data(data.clone())
                        .priority(priority)
                        .build()?;
                outbox.push(OutboxMessage::new(n, self.ctx.now()));
            }
            next.alerts.insert(key.clone());
        }
        next.version = self.ctx.next_version("opportunity", deal.version)?;
        next.updated_at = self.ctx.now().max(deal.updated_at);
        Ok((next, outbox, to_pool))
    }
}
