//! The KPI evaluator: raises each new warning and breach of a tenant's KPI rules once.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Ctx, Customers, Notifications, Transfer};
use crate::case::{Case, CaseEventKind, CaseQuery};
use crate::customer::Customer;
use crate::error::{Error, Result};
use crate::id::{CaseId, CustomerId};
use crate::kpi::{case_alerts, Alert, KpiAction, KpiEngine, KpiReport, KpiRule};
use crate::notify::{Notification, OutboxMessage, Priority, Recipient};
use crate::page::PageRequest;
use crate::ports::{Capability, CaseStore, InteractionStore, WriteOptions};
use crate::schedule::{DueKind, Reschedule};

mod deals;
mod gaps;

use super::due::DueRun;

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

/// A case changed by its new alerts, to store under its version.
struct CaseWrite {
    case: Case,
    expected: u64,
    outbox: Vec<OutboxMessage>,
    raised: CaseRaised,
}

/// What a case's stored alerts count, and the rules (by name) returning its customer to
/// the pool, if any.
struct CaseRaised {
    customer: CustomerId,
    warnings: usize,
    breaches: usize,
    to_pool: Option<String>,
}

/// Adds the parts' counts to `report`; the next instants.
fn absorb(report: &mut KpiReport, done: Vec<(Reschedule, KpiReport)>) -> Vec<Reschedule> {
    done.into_iter()
        .map(|(next, part)| {
            report.absorb(&part);
            next
        })
        .collect()
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
        now: DateTime<Utc>,
        scan: bool,
    ) -> Result<KpiReport> {
        let indexed = !scan && self.ctx.supports(Capability::Schedule);
        let mut report = KpiReport::default();
        self.evaluate_gaps(engine, now, indexed, &mut report)
            .await?;
        self.evaluate_interactions(engine, now, &mut report).await?;
        self.evaluate_deals(engine, now, indexed, &mut report)
            .await?;
        self.evaluate_cases(engine, now, indexed, &mut report)
            .await?;
        Ok(report)
    }

    /// Case rules: every case (indexed: those whose entry is due).
    async fn evaluate_cases(
        &self,
        engine: &KpiEngine,
        now: DateTime<Utc>,
        indexed: bool,
        report: &mut KpiReport,
    ) -> Result<()> {
        let tenant = self.ctx.tenant;
        if !indexed {
            let mut customers: BTreeMap<CustomerId, Customer> = BTreeMap::new();
            let mut page = PageRequest::first(500);
            loop {
                let batch = self
                    .case_store
                    .list_cases(tenant, &CaseQuery::default(), &page)
                    .await?;
                for case in &batch.items {
                    if engine.needs_customers() && !customers.contains_key(&case.customer) {
                        let c = self
                            .customers
                            .customer_store
                            .get_customer(tenant, case.customer)
                            .await?;
                        customers.insert(case.customer, c);
                    }
                    let customer = customers.get(&case.customer);
                    self.case_one(engine, case, customer, now, report).await?;
                }
                match batch.next {
                    Some(cursor) => page = PageRequest::after(cursor, 500),
                    None => return Ok(()),
                }
            }
        }
        if !engine.rules().any(|r| r.case_target().is_some()) {
            return Ok(());
        }
        let basis = engine.basis(DueKind::Case);
        let mut run = DueRun::start(&self.ctx, DueKind::Case, &basis, now).await?;
        while let Some(entries) = run.next_page().await? {
            let ids: Vec<CaseId> = entries.iter().map(|e| CaseId::from_uuid(e.id)).collect();
            let cases: BTreeMap<CaseId, Case> = self
                .case_store
                .get_cases(tenant, &ids)
                .await?
                .into_iter()
                .map(|c| (c.id, c))
                .collect();
            let customers: BTreeMap<CustomerId, Customer> = if engine.needs_customers() {
                let of: Vec<CustomerId> = cases.values().map(|c| c.customer).collect();
                let store = &self.customers.customer_store;
                let found = store.get_customers(tenant, &of).await?;
                found.into_iter().map(|c| (c.id, c)).collect()
            } else {
                BTreeMap::new()
            };
            let (mut next, mut writes) = (Vec::new(), Vec::new());
            for entry in entries {
                let at = match cases.get(&CaseId::from_uuid(entry.id)) {
                    Some(case) => {
                        let customer = customers.get(&case.customer);
                        let (write, at) = self.plan_case(engine, case, customer, now, report)?;
                        writes.extend(write);
                        at
                    }
                    None => None,
                };
                next.push(entry.reschedule(at));
            }
            let (stores, raised): (Vec<_>, Vec<_>) = writes
                .into_iter()
                .map(|w| {
                    (
                        (w.case, w.expected, WriteOptions::new().outbox(w.outbox)),
                        w.raised,
                    )
                })
                .unzip();
            let stored = self.case_store.update_cases(tenant, stores).await?;
            for (raised, stored) in raised.into_iter().zip(stored) {
                self.after_case(raised, stored, report).await?;
            }
            run.reschedule(next).await?;
        }
        report.add_due(&run.report);
        Ok(())
    }

    /// Evaluates the case rules on one case (with its customer when a rule filters on
    /// customers), storing its alerts; when its next warning or breach falls due.
    async fn case_one(
        &self,
        engine: &KpiEngine,
        case: &Case,
        customer: Option<&Customer>,
        now: DateTime<Utc>,
        report: &mut KpiReport,
    ) -> Result<Option<DateTime<Utc>>> {
        let (write, next_at) = self.plan_case(engine, case, customer, now, report)?;
        if let Some(w) = write {
            let options = WriteOptions::new().outbox(w.outbox);
            let stored = match self
                .case_store
                .update_case(self.ctx.tenant, &w.case, w.expected, options)
                .await
            {
                Ok(()) => true,
                Err(Error::Conflict { .. }) => false,
                Err(other) => return Err(other),
            };
            self.after_case(w.raised, stored, report).await?;
        }
        Ok(next_at)
    }

    /// The case rules' new alerts on one case as a write (none if there are none), and
    /// when its next warning or breach falls due.
    fn plan_case(
        &self,
        engine: &KpiEngine,
        case: &Case,
        customer: Option<&Customer>,
        now: DateTime<Utc>,
        report: &mut KpiReport,
    ) -> Result<(Option<CaseWrite>, Option<DateTime<Utc>>)> {
        report.cases += 1;
        let (alerts, next_at) = case_alerts(engine, case, customer, now);
        if alerts.is_empty() {
            return Ok((None, next_at));
        }
        let (next, outbox, warnings, breaches) = self.raise(case, &alerts, now)?;
        let to_pool = alerts.iter().any(|(alert, rule)| {
            let actions = if alert.breach {
                &rule.on_breach
            } else {
                &rule.on_warning
            };
            actions.contains(&KpiAction::ReturnToPool)
        });
        let names: Vec<&str> = alerts.iter().map(|(_, r)| r.name.as_str()).collect();
        let write = CaseWrite {
            case: next,
            expected: case.version,
            outbox,
            raised: CaseRaised {
                customer: case.customer,
                warnings,
                breaches,
                to_pool: to_pool.then(|| names.join(", ")),
            },
        };
        Ok((Some(write), next_at))
    }

    /// Counts a case's alerts once their write was stored (a stale write is a conflict,
    /// left to the next run) and returns the customer to the pool if a rule says so.
    async fn after_case(
        &self,
        raised: CaseRaised,
        stored: bool,
        report: &mut KpiReport,
    ) -> Result<()> {
        if !stored {
            report.conflicts += 1;
            return Ok(());
        }
        report.warnings += raised.warnings;
        report.breaches += raised.breaches;
        if let Some(names) = raised.to_pool {
            if self.return_to_pool(raised.customer, &names).await? {
                report.returned_to_pool += 1;
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

    /// Clears the owner of `customer` because of `alerts`, retrying on concurrent changes
    /// (up to three tries). Whether it had an owner to clear.
    async fn return_to_pool(&self, customer: CustomerId, names: &str) -> Result<bool> {
        let tenant = self.ctx.tenant;
        let reason = format!("returned to the pool by KPI rule {names}");
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
            let data = serde_json::to_value(crate::notify::payload::CaseBreachedPayload {
                rule: rule.name.clone(),
                rule_key: rule.key.clone(),
                case: case.id,
                subject: case.subject.clone(),
                metric: alert.status.metric,
                elapsed_minutes: alert.status.elapsed.num_minutes(),
                target_minutes: rule.case_target().map(|t| t.target().num_minutes()),
                breach_at: alert.status.breach_at,
            })
            .map_err(|e| Error::encoding("a breach notice", e))?;
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
