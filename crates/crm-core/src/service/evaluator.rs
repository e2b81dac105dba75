//! The KPI evaluator: raises each new warning and breach of a tenant's KPI rules once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Ctx, Customers, Notifications, Transfer};
use crate::case::{Case, CaseEventKind, CaseQuery};
use crate::customer::{Customer, CustomerQuery};
use crate::error::{Error, Result};
use crate::id::{CustomerId, UserId};
use crate::kpi::{
    days_since, new_alerts, Alert, DealMeasure, KpiAction, KpiEngine, KpiReport, KpiRule,
};
use crate::notify::{Notification, OutboxMessage, Priority, Recipient};
use crate::page::PageRequest;
use crate::ports::{Capability, CaseStore, InteractionStore, WriteOptions};
use crate::sales::{Opportunity, OpportunityQuery, Outcome};

/// A new alert on a deal: the rule, its measure, whether a breach, its key, the days.
type DealAlert<'a> = (&'a KpiRule, DealMeasure, bool, String, i64);

/// Evaluates KPI rules over one tenant's cases, customers and interactions; run through
/// [`Kpis::evaluate`](super::Kpis::evaluate).
#[derive(Clone)]
pub(crate) struct Evaluator {
    ctx: Ctx,
    customers: Customers,
    notifications: Notifications,
    case_store: Arc<dyn CaseStore>,
    interaction_store: Arc<dyn InteractionStore>,
}

impl Evaluator {
    pub(super) fn new(
        customers: Customers,
        notifications: Notifications,
        case_store: Arc<dyn CaseStore>,
        interaction_store: Arc<dyn InteractionStore>,
    ) -> Self {
        Evaluator {
            ctx: customers.ctx.clone(),
            customers,
            notifications,
            case_store,
            interaction_store,
        }
    }

    /// Evaluates KPI rules at `now`, raising each new warning and breach once.
    ///
    /// - Case rules, on every case of the tenant: an alert's notifications (to the
    ///   assignee, to the team lead), its reassignment and, with events on, its
    ///   `case.breached` event are stored with the alert's key on the case in one
    ///   optimistic transaction; a case changed concurrently is counted in `conflicts` and
    ///   handled by the next run. Returning the customer to the pool follows in a
    ///   transaction of its own.
    /// - Follow-up gap rules, on every owned customer in scope: notices keyed by the
    ///   customer and the start of the gap, with a reassignment or return to the pool as
    ///   one transfer.
    /// - Rules on interactions, on those of the engine's lookback window: notices keyed by
    ///   the interaction.
    /// - Rules on deals, on every open deal in scope: notices and a reassignment stored
    ///   with the alert's key on the deal in one optimistic transaction; returning the
    ///   account to the pool follows in a transaction of its own.
    ///
    /// Running this every minute raises nothing twice.
    ///
    /// Errors: storage errors.
    pub(crate) async fn run(
        &self,
        engine: &KpiEngine,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<KpiReport> {
        let tenant = self.ctx.tenant;
        let mut report = KpiReport::default();
        self.evaluate_gaps(engine, now, &mut report).await?;
        self.evaluate_interactions(engine, now, &mut report).await?;
        self.evaluate_deals(engine, now, &mut report).await?;
        let mut customers: BTreeMap<CustomerId, Customer> = BTreeMap::new();
        let mut page = PageRequest::first(500);
        loop {
            let batch = self
                .case_store
                .list_cases(tenant, &CaseQuery::default(), &page)
                .await?;
            for case in &batch.items {
                report.cases += 1;
                if engine.needs_customers() && !customers.contains_key(&case.customer) {
                    let c = self
                        .customers
                        .customer_store
                        .get_customer(tenant, case.customer)
                        .await?;
                    customers.insert(case.customer, c);
                }
                let alerts = new_alerts(engine, case, customers.get(&case.customer), now);
                if alerts.is_empty() {
                    continue;
                }
                let (next, outbox, warnings, breaches) = self.raise(case, &alerts, now)?;
                match self
                    .case_store
                    .update_case(
                        tenant,
                        &next,
                        case.version,
                        WriteOptions::new().outbox(outbox),
                    )
                    .await
                {
                    Ok(()) => {
                        report.warnings += warnings;
                        report.breaches += breaches;
                        let to_pool = alerts.iter().any(|(alert, rule)| {
                            let actions = if alert.breach {
                                &rule.on_breach
                            } else {
                                &rule.on_warning
                            };
                            actions.contains(&KpiAction::ReturnToPool)
                        });
                        let names: Vec<&str> =
                            alerts.iter().map(|(_, r)| r.name.as_str()).collect();
                        if to_pool && self.return_to_pool(case.customer, &names).await? {
                            report.returned_to_pool += 1;
                        }
                    }
                    Err(Error::Conflict { .. }) => report.conflicts += 1,
                    Err(other) => return Err(other),
                }
            }
            match batch.next {
                Some(cursor) => page = PageRequest::after(cursor, 500),
                None => return Ok(report),
            }
        }
    }

    /// Every owned customer with when its current follow-up gap began: the owner's last
    /// contact with it, or when the owner got it if later (for
    /// [`gap_scorecard`](crate::kpi::gap_scorecard)).
    pub(crate) async fn follow_up_gaps(
        &self,
    ) -> Result<Vec<(Customer, chrono::DateTime<chrono::Utc>)>> {
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
    async fn gap_since(&self, customer: &Customer) -> Result<chrono::DateTime<chrono::Utc>> {
        let (profile, owned) = self.customers.held_since(customer).await?;
        Ok(customer
            .owner
            .and_then(|o| profile.last_contact_by.get(&o).copied())
            .map_or(owned, |t| t.max(owned)))
    }

    /// Follow-up gap rules: each owned customer in scope whose owner has not contacted it
    /// for the rule's days raises a warning and a breach, once per gap (keyed by when the
    /// gap began): notices through the outbox, and reassignment or return to the pool as
    /// one transfer with them.
    async fn evaluate_gaps(
        &self,
        engine: &KpiEngine,
        now: chrono::DateTime<chrono::Utc>,
        report: &mut KpiReport,
    ) -> Result<()> {
        if engine.gap_rules().next().is_none() {
            return Ok(());
        }
        for customer in &self.customers.all(&CustomerQuery::all()).await? {
            let Some(owner) = customer.owner else {
                continue;
            };
            let rules: Vec<_> = engine
                .gap_rules()
                .filter(|(r, _, _)| r.scope.matches_customer(customer))
                .collect();
            if rules.is_empty() {
                continue;
            }
            report.customers += 1;
            let since = self.gap_since(customer).await?;
            let days = (now - since).num_days();
            for (rule, max_days, warn_days) in rules {
                for (breach, limit) in [(false, warn_days), (true, max_days)] {
                    if days < i64::from(limit) || (!breach && warn_days == max_days) {
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
        }
        Ok(())
    }

    /// Rules on interactions: each interaction of the lookback window that misses a rule's
    /// target raises one breach (notices to its handler or their team lead, keyed by the
    /// interaction).
    async fn evaluate_interactions(
        &self,
        engine: &KpiEngine,
        now: chrono::DateTime<chrono::Utc>,
        report: &mut KpiReport,
    ) -> Result<()> {
        let tenant = self.ctx.tenant;
        if engine.interaction_rules().next().is_none() {
            return Ok(());
        }
        let from = now - engine.interaction_lookback();
        let to = now + chrono::Duration::microseconds(1);
        let mut page = PageRequest::first(500);
        loop {
            let batch = self
                .interaction_store
                .interactions_between(tenant, from, to, &page)
                .await?;
            for interaction in &batch.items {
                report.interactions += 1;
                let Some(handler) = interaction.handled_by else {
                    continue;
                };
                for rule in engine.interaction_rules() {
                    let Some((false, value)) = rule.measure_interaction(interaction) else {
                        continue;
                    };
                    let key = format!("kpi:{}:{}:breach", rule.key, interaction.id);
                    let data = serde_json::json!({
                        "rule": rule.name,
                        "rule_key": rule.key,
                        "interaction": interaction.id,
                        "customer": interaction.customer,
                        "value": value,
                    });
                    let mut notices = Vec::new();
                    for action in &rule.on_breach {
                        let (to, who) = match action {
                            KpiAction::NotifyAssignee => (Recipient::User(handler), "handler"),
                            KpiAction::NotifyTeamLead => (Recipient::TeamLeadOf(handler), "lead"),
                            _ => continue,
                        };
                        notices.push(
                            Notification::builder(to, "kpi.breach", &format!("{key}:{who}"))
                                .data(data.clone())
                                .priority(Priority::Urgent)
                                .build()?,
                        );
                    }
                    if !notices.is_empty()
                        && self.notifications.enqueue(notices).await?.enqueued > 0
                    {
                        report.breaches += 1;
                    }
                }
            }
            match batch.next {
                Some(cursor) => page = PageRequest::after(cursor, 500),
                None => return Ok(()),
            }
        }
    }

    /// Rules on deals: each open deal in scope whose measure reached a rule's warning or
    /// breach days raises it once per measured period (keyed by when the period began,
    /// recorded on the deal): notices to its owner or their team lead and a reassignment,
    /// stored with the deal in one optimistic transaction; returning the account to the
    /// pool follows in a transaction of its own.
    async fn evaluate_deals(
        &self,
        engine: &KpiEngine,
        now: chrono::DateTime<chrono::Utc>,
        report: &mut KpiReport,
    ) -> Result<()> {
        let rules: Vec<_> = engine.deal_rules().collect();
        if rules.is_empty() || !self.ctx.supports(Capability::Sales) {
            return Ok(());
        }
        let tenant = self.ctx.tenant;
        let store = &self.ctx.storage;
        let needs_account = rules.iter().any(|(r, ..)| r.scope.needs_customer());
        let needs_touch = rules
            .iter()
            .any(|(_, m, ..)| *m == DealMeasure::DaysSinceOwnerTouch);
        let open = OpportunityQuery {
            outcome: Some(Outcome::Open),
            ..OpportunityQuery::default()
        };
        let mut page = PageRequest::first(500);
        loop {
            let batch = store.list_opportunities(tenant, &open, &page).await?;
            for deal in &batch.items {
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
                    continue;
                }
                report.deals += 1;
                let touched = if needs_touch {
                    self.touched(deal).await?
                } else {
                    None
                };
                let mut current = BTreeSet::new();
                let mut alerts = Vec::new();
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
                        if days >= i64::from(limit) && !deal.alerts.contains(&key) {
                            alerts.push((*rule, *measure, breach, key, days));
                        }
                    }
                }
                if alerts.is_empty() {
                    continue;
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
                        if !names.is_empty() && self.return_to_pool(deal.account, &names).await? {
                            report.returned_to_pool += 1;
                        }
                    }
                    Err(Error::Conflict { .. }) => report.conflicts += 1,
                    Err(other) => return Err(other),
                }
            }
            match batch.next {
                Some(cursor) => page = PageRequest::after(cursor, 500),
                None => return Ok(()),
            }
        }
    }

    /// The owner's last interaction with the deal's account or one of its contacts.
    async fn touched(&self, deal: &Opportunity) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
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

    /// Clears the owner of `customer` because of `alerts`, retrying on concurrent changes
    /// (up to three tries). Whether it had an owner to clear.
    async fn return_to_pool(&self, customer: CustomerId, names: &[&str]) -> Result<bool> {
        let tenant = self.ctx.tenant;
        let reason = format!("returned to the pool by KPI rule {}", names.join(", "));
        for _ in 0..3 {
            let current = self
                .customers
                .customer_store
                .get_customer(tenant, customer)
                .await?;
            if current.owner.is_none() {
                return Ok(false);
            }
            let transfer = Transfer {
                new_owner: None,
                expected_version: current.version,
                actor: None,
                reason: Some(&reason),
            };
            match self
                .customers
                .change_owner_notifying(customer, transfer, Vec::new())
                .await
            {
                Ok(_) => return Ok(true),
                Err(Error::Conflict { .. }) => continue,
                Err(other) => return Err(other),
            }
        }
        Ok(false)
    }

    /// The changed case and outbox messages that raise `alerts`, with the warnings and
    /// breaches counted.
    fn raise(
        &self,
        case: &Case,
        alerts: &[(Alert, &KpiRule)],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(Case, Vec<OutboxMessage>, usize, usize)> {
        let mut next = case.clone();
        let mut outbox = Vec::new();
        let (mut warnings, mut breaches) = (0, 0);
        let at = case.events.last().map_or(now, |e| now.max(e.at));
        for (alert, rule) in alerts {
            let (actions, template, priority) = if alert.breach {
                breaches += 1;
                (&rule.on_breach, "kpi.breach", Priority::Urgent)
            } else {
                warnings += 1;
                (&rule.on_warning, "kpi.warning", Priority::High)
            };
            let data = serde_json::json!({
                "rule": rule.name,
                "rule_key": rule.key,
                "case": case.id,
                "subject": case.subject,
                "metric": alert.status.metric,
                "elapsed_minutes": alert.status.elapsed.num_minutes(),
                "target_minutes": rule.case_target().map(|t| t.target().num_minutes()),
                "breach_at": alert.status.breach_at,
            });
            for action in actions {
                let recipient = match (action, case.assignee) {
                    (KpiAction::NotifyAssignee, Some(a)) => Some((Recipient::User(a), "assignee")),
                    (KpiAction::NotifyTeamLead, Some(a)) => {
                        Some((Recipient::TeamLeadOf(a), "lead"))
                    }
                    (KpiAction::Reassign { to }, _) => {
                        if next.assignee != Some(*to) {
                            next.record(
                                at,
                                CaseEventKind::Assignment {
                                    to: Some(*to),
                                    by: None,
                                    reason: Some(format!("KPI rule {} breached", rule.name)),
                                },
                            )?;
                        }
                        None
                    }
                    (KpiAction::ReturnToPool, _) | (_, None) => None,
                };
                if let Some((to, who)) = recipient {
                    let n = Notification::builder(to, template, &format!("{}:{who}", alert.key))
                        .data(data.clone())
                        .priority(priority)
                        .build()?;
                    outbox.push(OutboxMessage::new(n, self.ctx.now()));
                }
            }
            if alert.breach {
                outbox.extend(
                    self.ctx
                        .events()?
                        .case_breached(case, at, data, &alert.key)?,
                );
            }
            next.alerts.insert(alert.key.clone());
        }
        next.version = self.ctx.next_version("case", case.version)?;
        Ok((next, outbox, warnings, breaches))
    }
}
