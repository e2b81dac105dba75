//! A simulated month of service and selling work, run on two stores at once: one evaluated
//! through its due instants ([`Kpis::evaluate`](crm_core::service::Kpis::evaluate)), the
//! other by reading every record ([`Kpis::evaluate_scan`](crm_core::service::Kpis::evaluate_scan)).
//! Every run must raise the same alerts on both; at the end both outboxes must hold the
//! same messages.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use crm_core::calendar::{BusinessCalendar, Interval, Week};
use crm_core::case::{Case, CaseEventKind, CaseKind, CaseStatus};
use crm_core::kpi::{DealMeasure, KpiAction, KpiMetric, KpiReport, KpiRule, KpiScope};
use crm_core::notify::{Lease, TemplateName};
use crm_core::sales::{ContactRole, DealContact, Opportunity, Outcome, Pipeline};
use crm_core::sla::{SlaMetric, SlaTarget};
use crm_core::{
    CaseId, Channel, Crm, Customer, CustomerId, Interaction, InteractionKind, Lifecycle,
    ManualClock, Money, OpportunityId, Storage, TenantId, UserId,
};

use crate::conformance::sample_pipeline;
use crate::Generator;

/// What a simulated month did on the indexed store, and what the full scans read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonthSummary {
    /// Evaluation runs (on each store).
    pub runs: usize,
    /// Warnings raised (equal on both stores).
    pub warnings: usize,
    /// Breaches raised (equal on both stores).
    pub breaches: usize,
    /// Customers returned to the pool by rules (equal on both stores).
    pub returned_to_pool: usize,
    /// Due entries the indexed runs read.
    pub due_read: usize,
    /// Records the full scans looked at (cases, customers in scope, deals in scope).
    pub scanned: usize,
    /// Rule edits made during the month.
    pub rule_edits: usize,
    /// Outbox messages on each store at the end.
    pub messages: usize,
}

/// One side of the simulation.
struct Side {
    crm: Crm,
    clock: Arc<ManualClock>,
    store: Arc<dyn Storage>,
}

fn rule(key: &str, metric: KpiMetric, scope: KpiScope, calendar: BusinessCalendar) -> KpiRule {
    KpiRule {
        key: TemplateName::parse(key).expect("key"),
        name: key.replace('-', " "),
        metric,
        calendar,
        scope,
        compliance_goal: 0.9,
        on_warning: vec![KpiAction::NotifyAssignee],
        on_breach: vec![KpiAction::NotifyTeamLead],
    }
}

fn office() -> BusinessCalendar {
    let day = Interval::parse("09:00", "17:00").expect("interval");
    BusinessCalendar::new(Tz::Europe__Berlin, Week::weekdays(&[day])).expect("calendar")
}

fn reply(hours: i64) -> KpiRule {
    let target =
        SlaTarget::new(SlaMetric::FirstReply, Duration::hours(hours), 0.5).expect("target");
    let scope = KpiScope {
        kinds: vec![CaseKind::Complaint],
        ..KpiScope::default()
    };
    rule(
        "reply",
        KpiMetric::Case(target),
        scope,
        BusinessCalendar::always(),
    )
}

fn resolve_active(hours: i64) -> KpiRule {
    let target =
        SlaTarget::new(SlaMetric::Resolution, Duration::hours(hours), 0.75).expect("target");
    let scope = KpiScope {
        lifecycles: vec![Lifecycle::Active],
        ..KpiScope::default()
    };
    rule("resolve-active", KpiMetric::Case(target), scope, office())
}

fn gap(max_days: u32, warn_days: u32) -> KpiRule {
    let scope = KpiScope {
        lifecycles: vec![Lifecycle::Active],
        ..KpiScope::default()
    };
    let mut r = rule(
        "follow-up",
        KpiMetric::FollowUpGap {
            max_days,
            warn_days,
        },
        scope,
        BusinessCalendar::always(),
    );
    r.on_breach.push(KpiAction::ReturnToPool);
    r
}

fn deal_rule(key: &str, measure: DealMeasure, max_days: u32, warn_days: u32) -> KpiRule {
    rule(
        key,
        KpiMetric::Deal {
            measure,
            max_days,
            warn_days,
        },
        KpiScope::default(),
        BusinessCalendar::always(),
    )
}

/// Runs a month on `indexed` (evaluated through its due instants) and `scanned` (every
/// record read each run), the same random work on both from `seed`, evaluating every two
/// hours; panics at the first run whose alerts differ, or if the outboxes differ at the end.
pub async fn simulate_month(
    indexed: Arc<dyn Storage>,
    scanned: Arc<dyn Storage>,
    seed: u64,
) -> MonthSummary {
    let start = crate::conformance::t0();
    let sides: Vec<Side> = [indexed, scanned]
        .into_iter()
        .map(|store| {
            let clock = Arc::new(ManualClock::new(start));
            Side {
                crm: Crm::new(store.clone()).with_clock(clock.clone()),
                clock,
                store,
            }
        })
        .collect();
    let tenant = TenantId::new();
    let mut g = Generator::new(seed);
    let owners: Vec<UserId> = (0..4).map(|_| UserId::new()).collect();
    let pipeline = sample_pipeline();
    let mut customers: Vec<CustomerId> = Vec::new();
    for i in 0..30 {
        let mut b = Customer::person(&format!("Customer {i}")).lifecycle(Lifecycle::Active);
        if i % 3 != 0 {
            b = b.owner(owners[i % owners.len()]);
        }
        let c = b.build().expect("customer");
        customers.push(c.id);
        for s in &sides {
            s.crm
                .tenant(tenant)
                .customers()
                .register(c.clone())
                .await
                .expect("register");
        }
    }
    let initial = [
        reply(4),
        resolve_active(16),
        gap(7, 5),
        deal_rule("stalled", DealMeasure::DaysInStage, 6, 4),
        deal_rule("untouched", DealMeasure::DaysSinceOwnerTouch, 5, 3),
    ];
    for s in &sides {
        let t = s.crm.tenant(tenant);
        t.sales()
            .create_pipeline(pipeline.clone())
            .await
            .expect("pipeline");
        for r in &initial {
            t.kpis().add_rule(r.clone()).await.expect("rule");
        }
    }
    let mut cases: Vec<CaseId> = Vec::new();
    let mut deals: Vec<OpportunityId> = Vec::new();
    let mut summary = MonthSummary::default();
    for step in 0..(30 * 12) {
        let now = start + Duration::hours(2 * step);
        for s in &sides {
            s.clock.set(now);
        }
        let day = step / 12;
        if step % 12 == 0 {
            summary.rule_edits += edit_rules(&sides, tenant, day).await;
        }
        for _ in 0..3 {
            let op = g.below(100);
            work(
                &sides, tenant, &mut g, op, &owners, &customers, &pipeline, &mut cases, &mut deals,
                now,
            )
            .await;
        }
        let mut reports: Vec<KpiReport> = Vec::new();
        for (i, s) in sides.iter().enumerate() {
            let t = s.crm.tenant(tenant);
            let engine = t.kpis().engine().await.expect("engine");
            let r = if i == 0 {
                t.kpis().evaluate(&engine, now).await
            } else {
                t.kpis().evaluate_scan(&engine, now).await
            };
            reports.push(r.expect("evaluate"));
        }
        let (a, b) = (reports[0], reports[1]);
        let raised = |r: &KpiReport| (r.warnings, r.breaches, r.returned_to_pool, r.conflicts);
        if raised(&a) != raised(&b) {
            let (ka, kb) = (
                outbox_keys(&sides[0], tenant).await,
                outbox_keys(&sides[1], tenant).await,
            );
            let only_a: Vec<_> = ka.difference(&kb).collect();
            let only_b: Vec<_> = kb.difference(&ka).collect();
            panic!("run {step} at {now}: indexed {a:?}, scan {b:?}; messages only indexed: {only_a:?}, only scanned: {only_b:?}");
        }
        summary.runs += 1;
        summary.warnings += a.warnings;
        summary.breaches += a.breaches;
        summary.returned_to_pool += a.returned_to_pool;
        summary.due_read += a.due;
        summary.scanned += b.cases + b.customers + b.deals;
    }
    let mut outboxes = Vec::new();
    for s in &sides {
        outboxes.push(outbox_keys(s, tenant).await);
    }
    assert_eq!(outboxes[0], outboxes[1], "the outboxes differ");
    summary.messages = outboxes[0].len();
    summary
}

/// The idempotency keys of every message in the side's outbox (claimed, far in the future).
async fn outbox_keys(side: &Side, tenant: TenantId) -> BTreeSet<String> {
    let end = crate::conformance::t0() + Duration::days(400);
    let mut keys = BTreeSet::new();
    loop {
        let lease = Lease::new(end + Duration::hours(1));
        let claimed = side
            .store
            .claim(tenant, end, lease, 500)
            .await
            .expect("claim");
        if claimed.is_empty() {
            return keys;
        }
        keys.extend(
            claimed
                .into_iter()
                .map(|c| c.message.notification.idempotency_key),
        );
    }
}

/// The month's rule edits: a target changed, a rule removed and added back, a scope
/// narrowed. How many edits were made on `day`.
async fn edit_rules(sides: &[Side], tenant: TenantId, day: i64) -> usize {
    if ![8, 15, 18, 22].contains(&day) {
        return 0;
    }
    for s in sides {
        let kpis = s.crm.tenant(tenant).kpis();
        let version = |key: &'static str| {
            let kpis = kpis.clone();
            async move {
                kpis.rules()
                    .await
                    .expect("rules")
                    .into_iter()
                    .find(|r| r.rule.key.as_str() == key)
                    .map(|r| r.version)
            }
        };
        match day {
            8 => {
                kpis.update_rule(reply(6), version("reply").await.expect("reply"))
                    .await
                    .expect("edit");
            }
            15 => {
                kpis.delete_rule(&TemplateName::parse("follow-up").expect("key"))
                    .await
                    .expect("delete");
            }
            18 => {
                kpis.add_rule(gap(5, 3)).await.expect("add");
            }
            22 => {
                let mut narrowed = deal_rule("stalled", DealMeasure::DaysInStage, 3, 2);
                narrowed.scope.stages =
                    vec![crm_core::value::StageKey::parse("proposal").expect("stage")];
                kpis.update_rule(narrowed, version("stalled").await.expect("stalled"))
                    .await
                    .expect("edit");
            }
            _ => {}
        }
    }
    1
}

/// One random piece of work, `op` in 0..100, applied to both sides alike.
#[allow(clippy::too_many_arguments)]
async fn work(
    sides: &[Side],
    tenant: TenantId,
    g: &mut Generator,
    op: u64,
    owners: &[UserId],
    customers: &[CustomerId],
    pipeline: &Pipeline,
    cases: &mut Vec<CaseId>,
    deals: &mut Vec<OpportunityId>,
    now: DateTime<Utc>,
) {
    let customer = *g.pick(customers);
    let owner = *g.pick(owners);
    match op {
        0..=24 => {
            let kind = if g.below(2) == 0 {
                CaseKind::Complaint
            } else {
                CaseKind::Inquiry
            };
            let case =
                Case::open(customer, kind, "Help", Channel::Email, Some(owner), now).expect("case");
            cases.push(case.id);
            for s in sides {
                s.crm
                    .tenant(tenant)
                    .cases()
                    .open(case.clone())
                    .await
                    .expect("open case");
            }
        }
        25..=54 if !cases.is_empty() => {
            let id = *g.pick(cases);
            let kind = match op % 3 {
                0 => CaseEventKind::PublicReply { by: owner },
                1 => CaseEventKind::CustomerMessage,
                _ => CaseEventKind::StatusChange {
                    to: CaseStatus::Resolved,
                    by: Some(owner),
                },
            };
            for s in sides {
                let case = s.store.get_case(tenant, id).await.expect("case");
                if case.status.is_done() {
                    continue;
                }
                s.crm
                    .tenant(tenant)
                    .cases()
                    .record_event(id, case.version, kind.clone(), Vec::new())
                    .await
                    .expect("event");
            }
        }
        55..=74 => {
            let c = sides[0]
                .store
                .get_customer(tenant, customer)
                .await
                .expect("customer");
            let by = c.owner.unwrap_or(owner);
            let call = Interaction::builder(customer, Channel::Phone, InteractionKind::Call)
                .at(now)
                .handled_by(by)
                .build()
                .expect("call");
            for s in sides {
                s.crm
                    .tenant(tenant)
                    .interactions()
                    .log(call.clone())
                    .await
                    .expect("log");
            }
        }
        75..=79 => {
            let to = if g.below(4) == 0 { None } else { Some(owner) };
            for s in sides {
                let c = s
                    .store
                    .get_customer(tenant, customer)
                    .await
                    .expect("customer");
                if c.owner != to {
                    s.crm
                        .tenant(tenant)
                        .customers()
                        .change_owner(customer, to, c.version, None, Some("moved"))
                        .await
                        .expect("owner");
                }
            }
        }
        80..=84 => {
            for s in sides {
                let mut c = s
                    .store
                    .get_customer(tenant, customer)
                    .await
                    .expect("customer");
                c.lifecycle = if c.lifecycle == Lifecycle::Active {
                    Lifecycle::Churned
                } else {
                    Lifecycle::Active
                };
                s.crm
                    .tenant(tenant)
                    .customers()
                    .update(c, None)
                    .await
                    .expect("lifecycle");
            }
        }
        85..=89 => {
            let close = NaiveDate::from_ymd_opt(2025, 6, 30).expect("date");
            let amount = Money::parse("1000", "EUR").expect("money");
            let mut deal = Opportunity::new("Deal", customer, owner, pipeline, amount, close, now)
                .expect("deal");
            let contact = *g.pick(customers);
            if contact != customer && g.below(2) == 0 {
                deal.contacts.push(DealContact {
                    customer: contact,
                    role: ContactRole::DecisionMaker,
                });
            }
            deals.push(deal.id);
            for s in sides {
                s.crm
                    .tenant(tenant)
                    .sales()
                    .open(deal.clone())
                    .await
                    .expect("open deal");
            }
        }
        90..=99 if !deals.is_empty() => {
            let id = *g.pick(deals);
            let stage = *g.pick(&["qualify", "proposal", "negotiation", "won", "lost"]);
            for s in sides {
                let sales = s.crm.tenant(tenant).sales();
                let deal = sales.get(id).await.expect("deal");
                if deal.outcome != Outcome::Open || deal.stage.as_str() == stage {
                    continue;
                }
                if stage == "lost" {
                    sales
                        .lose(id, deal.version, "price", None)
                        .await
                        .expect("lose");
                } else {
                    sales.move_to(id, deal.version, stage).await.expect("move");
                }
            }
        }
        _ => {}
    }
}
