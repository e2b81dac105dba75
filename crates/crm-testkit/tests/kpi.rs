//! KPI evaluation run every minute over a simulated month raises each warning and breach
//! exactly once, with its notifications and reassignment.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm_core::calendar::{BusinessCalendar, CompiledCalendar, Interval, Week};
use crm_core::case::{Case, CaseEventKind, CaseKind, CaseQuery};
use crm_core::kpi::{KpiAction, KpiEngine, KpiMetric, KpiRule, KpiScope};
use crm_core::notify::{OutboxStore, TemplateName};
use crm_core::sla::{SlaMetric, SlaTarget};
use crm_core::{
    CaseId, CaseStore, Channel, Crm, Customer, ManualClock, PageRequest, TenantId, UserId,
};
use crm_testkit::MemoryStore;

/// A case the simulation opened: id, when, when it is answered, kind.
type Opened = (CaseId, DateTime<Utc>, Option<DateTime<Utc>>, CaseKind);

fn month_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

fn office() -> BusinessCalendar {
    BusinessCalendar::new(
        chrono_tz::Europe::Berlin,
        Week::weekdays(&[Interval::parse("09:00", "17:00").unwrap()]),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_minute_for_a_month_raises_each_alert_once() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(month_start()));
    let crm = Crm::new(store.clone())
        .with_clock(clock.clone())
        .with_events(true);
    let tenant = TenantId::new();
    let (agent, lead) = (UserId::new(), UserId::new());
    let customer = crm
        .tenant(tenant)
        .customers()
        .register(Customer::person("Ann").build().unwrap())
        .await
        .unwrap();
    let rule = KpiRule {
        key: TemplateName::parse("complaint-first-reply").unwrap(),
        name: "Answer complaints within 4 business hours".into(),
        metric: KpiMetric::Case(
            SlaTarget::new(SlaMetric::FirstReply, Duration::hours(4), 0.75).unwrap(),
        ),
        calendar: office(),
        scope: KpiScope {
            kinds: vec![CaseKind::Complaint],
            ..KpiScope::default()
        },
        compliance_goal: 0.9,
        on_warning: vec![KpiAction::NotifyAssignee],
        on_breach: vec![KpiAction::NotifyTeamLead, KpiAction::Reassign { to: lead }],
    };
    let engine = KpiEngine::new(vec![rule], month_start()).unwrap();

    // A reproducible month: a complaint opened every ~17 hours, answered after 10 minutes
    // to 3 days (some never), plus inquiries the rule does not cover.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rand = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut opens: BTreeMap<i64, (CaseKind, Option<i64>)> = BTreeMap::new();
    let mut minute = 30;
    while minute < 29 * 24 * 60 {
        let kind = if rand(5) == 0 {
            CaseKind::Inquiry
        } else {
            CaseKind::Complaint
        };
        let reply = (rand(8) != 0).then(|| minute + 10 + rand(3 * 24 * 60) as i64);
        opens.insert(minute, (kind, reply));
        minute += 600 + rand(800) as i64;
    }
    let mut replies: BTreeMap<i64, Vec<CaseId>> = BTreeMap::new();
    let mut opened: Vec<Opened> = Vec::new();
    let mut totals = (0, 0, 0);
    let end = 31 * 24 * 60;
    for m in 0..end {
        let now = month_start() + Duration::minutes(m);
        clock.set(now);
        if let Some((kind, reply)) = opens.get(&m) {
            let draft = Case::open(
                customer.id,
                kind.clone(),
                "Complaint",
                Channel::Email,
                Some(agent),
                now,
            )
            .unwrap();
            let case = crm.tenant(tenant).cases().open(draft).await.unwrap();
            opened.push((
                case.id,
                now,
                reply.map(|r| month_start() + Duration::minutes(r)),
                kind.clone(),
            ));
            if let Some(r) = reply {
                replies.entry(*r).or_default().push(case.id);
            }
        }
        for id in replies.remove(&m).unwrap_or_default() {
            let case = crm.tenant(tenant).cases().get(id).await.unwrap();
            crm.tenant(tenant)
                .cases()
                .record_event(
                    id,
                    case.version,
                    CaseEventKind::PublicReply { by: agent },
                    vec![],
                )
                .await
                .unwrap();
        }
        let report = crm
            .tenant(tenant)
            .kpis()
            .evaluate(&engine, now)
            .await
            .unwrap();
        assert_eq!(report.conflicts, 0);
        totals.0 += report.warnings;
        totals.1 += report.breaches;
        totals.2 += usize::from(report.warnings + report.breaches > 0);
        if m % 997 == 0 {
            let again = crm
                .tenant(tenant)
                .kpis()
                .evaluate(&engine, now)
                .await
                .unwrap();
            assert_eq!(
                (again.warnings, again.breaches),
                (0, 0),
                "nothing twice at {now}"
            );
        }
    }

    // The expected alerts, from the calendar alone.
    let cal = CompiledCalendar::new(
        &office(),
        month_start().date_naive(),
        month_start().date_naive() + Duration::days(40),
    );
    let stop = month_start() + Duration::minutes(end - 1);
    let (mut warnings, mut breaches) = (0, 0);
    for (id, at, reply, kind) in &opened {
        if *kind != CaseKind::Complaint {
            continue;
        }
        let waited = cal.business_time(*at, reply.unwrap_or(stop).min(stop));
        let (warned, breached) = (waited >= Duration::hours(3), waited > Duration::hours(4));
        warnings += usize::from(warned);
        breaches += usize::from(breached);
        let case = store.get_case(tenant, *id).await.unwrap();
        assert_eq!(
            case.alerts.len(),
            usize::from(warned) + usize::from(breached),
            "case opened {at}"
        );
        let reassigned = case
            .events
            .iter()
            .filter(|e| matches!(e.kind, CaseEventKind::Assignment { .. }))
            .count();
        assert_eq!(reassigned, usize::from(breached));
        assert_eq!(case.assignee, Some(if breached { lead } else { agent }));
    }
    assert!(
        breaches > 3 && warnings > breaches,
        "a month with some of each: {warnings} {breaches}"
    );
    assert_eq!((totals.0, totals.1), (warnings, breaches));
    // One notice per warning (assignee), one per breach (lead), one breach event each, and
    // the opened/resolved events; every message once.
    let cases = store
        .list_cases(tenant, &CaseQuery::default(), &PageRequest::first(1000))
        .await
        .unwrap();
    let opened_events = cases.items.len();
    let pending = store.pending_count(tenant).await.unwrap() as usize;
    assert_eq!(
        pending,
        1 + opened_events + warnings + 2 * breaches,
        "customer.created, case.opened, notices, breach events"
    );
}

#[tokio::test]
async fn a_breach_can_return_the_customer_to_the_pool() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(month_start()));
    let crm = Crm::new(store.clone()).with_clock(clock.clone());
    let tenant = TenantId::new();
    let owner = UserId::new();
    let customer = crm
        .tenant(tenant)
        .customers()
        .register(Customer::person("Ann").owner(owner).build().unwrap())
        .await
        .unwrap();
    let rule = KpiRule {
        key: TemplateName::parse("neglect").unwrap(),
        name: "Answer within a day".into(),
        metric: KpiMetric::Case(
            SlaTarget::new(SlaMetric::FirstReply, Duration::hours(24), 0.5).unwrap(),
        ),
        calendar: BusinessCalendar::always(),
        scope: KpiScope::default(),
        compliance_goal: 0.9,
        on_warning: vec![],
        on_breach: vec![KpiAction::ReturnToPool],
    };
    let engine = KpiEngine::new(vec![rule], month_start()).unwrap();
    let draft = Case::open(
        customer.id,
        CaseKind::Complaint,
        "Ignored",
        Channel::Email,
        Some(owner),
        month_start(),
    )
    .unwrap();
    crm.tenant(tenant).cases().open(draft).await.unwrap();
    let early = crm
        .tenant(tenant)
        .kpis()
        .evaluate(&engine, month_start() + Duration::hours(20))
        .await
        .unwrap();
    assert_eq!(early.returned_to_pool, 0);
    for hours in [25, 26, 48] {
        clock.set(month_start() + Duration::hours(hours));
        let report = crm
            .tenant(tenant)
            .kpis()
            .evaluate(&engine, month_start() + Duration::hours(hours))
            .await
            .unwrap();
        assert_eq!(
            report.returned_to_pool,
            usize::from(hours == 25),
            "at {hours} h"
        );
    }
    assert_eq!(
        crm.tenant(tenant)
            .customers()
            .get(customer.id)
            .await
            .unwrap()
            .owner,
        None
    );
    let history = crm
        .tenant(tenant)
        .customers()
        .ownership_history(customer.id)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0]
        .reason
        .as_deref()
        .unwrap_or("")
        .contains("KPI rule Answer within a day"));
}

#[tokio::test]
async fn follow_up_gaps_warn_then_return_customers_once() {
    use crm_core::{Channel as Ch, Interaction, InteractionKind, Lifecycle, Tag};
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(month_start()));
    let crm = Crm::new(store.clone()).with_clock(clock.clone());
    let tenant = TenantId::new();
    let (x, y) = (UserId::new(), UserId::new());
    let person = |name: &str, stage: Lifecycle, owner: UserId| {
        Customer::person(name).lifecycle(stage).owner(owner)
    };
    let a = crm
        .tenant(tenant)
        .customers()
        .register(person("A", Lifecycle::Active, x).build().unwrap())
        .await
        .unwrap();
    let b = crm
        .tenant(tenant)
        .customers()
        .register(person("B", Lifecycle::Active, x).build().unwrap())
        .await
        .unwrap();
    let c = crm
        .tenant(tenant)
        .customers()
        .register(person("C", Lifecycle::Lead, x).build().unwrap())
        .await
        .unwrap();
    let d = crm
        .tenant(tenant)
        .customers()
        .register(
            person("D", Lifecycle::Active, y)
                .tag("vip")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let call = Interaction::builder(a.id, Ch::Phone, InteractionKind::Call)
        .at(month_start() + Duration::days(10))
        .handled_by(x)
        .key("test", "a-call")
        .build()
        .unwrap();
    crm.tenant(tenant).interactions().log(call).await.unwrap();
    let gap = |key: &str, max_days, warn_days, scope, on_breach| KpiRule {
        key: TemplateName::parse(key).unwrap(),
        name: format!("Contact within {max_days} days"),
        metric: KpiMetric::FollowUpGap {
            max_days,
            warn_days,
        },
        calendar: BusinessCalendar::always(),
        scope,
        compliance_goal: 0.9,
        on_warning: vec![KpiAction::NotifyAssignee],
        on_breach,
    };
    let active = KpiScope {
        lifecycles: vec![Lifecycle::Active],
        ..KpiScope::default()
    };
    let vip = KpiScope {
        tags: vec![Tag::parse("vip").unwrap()],
        ..KpiScope::default()
    };
    let engine = KpiEngine::new(
        vec![
            gap("monthly", 21, 14, active, vec![KpiAction::ReturnToPool]),
            gap("vip-weekly", 7, 7, vip, vec![KpiAction::NotifyTeamLead]),
        ],
        month_start(),
    )
    .unwrap();
    let mut totals = (0, 0, 0);
    let mut returned_on = BTreeMap::new();
    for day in 0..40 {
        let now = month_start() + Duration::days(day) + Duration::hours(8);
        clock.set(now);
        for _ in 0..2 {
            let r = crm
                .tenant(tenant)
                .kpis()
                .evaluate(&engine, now)
                .await
                .unwrap();
            totals.0 += r.warnings;
            totals.1 += r.breaches;
            totals.2 += r.returned_to_pool;
        }
        if day == 16 {
            let owned = crm.tenant(tenant).kpis().follow_up_gaps().await.unwrap();
            let card = crm_core::kpi::gap_scorecard(
                &engine,
                &owned,
                now,
                crm_core::kpi::Grouping::Tenant,
                &|_| None,
            );
            let line = |key: &str| {
                card.lines
                    .iter()
                    .find(|l| l.rule.as_str() == key)
                    .unwrap()
                    .clone()
            };
            let monthly = line("monthly");
            assert_eq!(
                (monthly.measured, monthly.met, monthly.breached),
                (3, 3, 0),
                "A, B, D within 21 days"
            );
            assert_eq!(
                monthly.median_secs,
                Some(16 * 86_400 + 8 * 3_600),
                "B and D 16 days 8 hours, A 6"
            );
            let weekly = line("vip-weekly");
            assert_eq!((weekly.measured, weekly.breached), (1, 1));
        }
        for customer in [&a, &b, &d] {
            if crm
                .tenant(tenant)
                .customers()
                .get(customer.id)
                .await
                .unwrap()
                .owner
                .is_none()
            {
                returned_on
                    .entry(customer.name.as_str().to_string())
                    .or_insert(day);
            }
        }
    }
    // B: warned day 14, returned day 21; A (called on day 10): warned day 24, returned
    // day 31; D: the vip breach on day 7 (no warning: warn_days = max_days), then the
    // monthly rule's warning on day 14 and return on day 21; C (a lead): nothing.
    let expected: BTreeMap<String, i64> = [
        ("A".to_string(), 31),
        ("B".to_string(), 21),
        ("D".to_string(), 21),
    ]
    .into();
    assert_eq!(returned_on, expected);
    assert_eq!(
        (totals.0, totals.1),
        (3, 4),
        "warnings A B D; breaches A B D(monthly) D(vip)"
    );
    assert_eq!(
        crm.tenant(tenant)
            .customers()
            .get(c.id)
            .await
            .unwrap()
            .owner,
        Some(x)
    );
    let history = crm
        .tenant(tenant)
        .customers()
        .ownership_history(b.id)
        .await
        .unwrap();
    assert!(history[0]
        .reason
        .as_deref()
        .unwrap_or("")
        .contains("no contact for 21 days"));
}

#[tokio::test]
async fn rules_on_interactions_raise_each_breach_once_and_score_people() {
    use crm_core::kpi::{interaction_scorecard, Group, Grouping};
    use crm_core::{AttrKey, AttrValue, Channel as Ch, Interaction, InteractionKind};
    use rust_decimal::Decimal;
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(month_start()));
    let crm = Crm::new(store.clone()).with_clock(clock.clone());
    let tenant = TenantId::new();
    let (quick, slow) = (UserId::new(), UserId::new());
    let ann = crm
        .tenant(tenant)
        .customers()
        .register(Customer::person("Ann").build().unwrap())
        .await
        .unwrap();
    let rule = |key: &str, metric| KpiRule {
        key: TemplateName::parse(key).unwrap(),
        name: key.to_string(),
        metric,
        calendar: BusinessCalendar::always(),
        scope: KpiScope {
            channels: vec![Ch::Phone],
            ..KpiScope::default()
        },
        compliance_goal: 0.8,
        on_warning: vec![],
        on_breach: vec![KpiAction::NotifyAssignee, KpiAction::NotifyTeamLead],
    };
    let answer = rule("answer-in-20s", KpiMetric::InteractionWait { max_secs: 20 });
    let handling = rule(
        "handle-in-10-min",
        KpiMetric::InteractionAttribute {
            key: AttrKey::parse("handling_minutes").unwrap(),
            max: Decimal::from(10),
        },
    );
    let mut bad = answer.clone();
    bad.on_breach.push(KpiAction::ReturnToPool);
    assert_eq!(bad.validate().unwrap_err().field(), Some("on_breach"));
    let engine = KpiEngine::new(vec![answer, handling], month_start()).unwrap();
    // (handler, wait, handling minutes, channel)
    let calls = [
        (quick, 5, 4, Ch::Phone),
        (quick, 15, 12, Ch::Phone),
        (slow, 45, 9, Ch::Phone),
        (slow, 60, 30, Ch::Phone),
        (slow, 90, 50, Ch::Email), // out of scope: not a call
    ];
    let mut logged = Vec::new();
    for (n, (who, wait, minutes, channel)) in calls.iter().enumerate() {
        let i = Interaction::builder(ann.id, *channel, InteractionKind::Call)
            .at(month_start() + Duration::hours(n as i64))
            .handled_by(*who)
            .wait_secs(*wait)
            .attribute(
                "handling_minutes",
                AttrValue::Number(Decimal::from(*minutes)),
            )
            .key("pbx", &format!("call-{n}"))
            .build()
            .unwrap();
        logged.push(i.clone());
        crm.tenant(tenant).interactions().log(i).await.unwrap();
    }
    let mut breaches = 0;
    for hours in [5, 6, 30] {
        let r = crm
            .tenant(tenant)
            .kpis()
            .evaluate(&engine, month_start() + Duration::hours(hours))
            .await
            .unwrap();
        breaches += r.breaches;
    }
    // Waits over 20 s: calls 2 and 3; handling over 10 min: calls 1 and 3.
    assert_eq!(breaches, 4, "each breach once");
    assert_eq!(
        store.pending_count(tenant).await.unwrap(),
        8,
        "handler and lead per breach"
    );
    let late = engine.clone().with_interaction_lookback(Duration::hours(1));
    let r = crm
        .tenant(tenant)
        .kpis()
        .evaluate(&late, month_start() + Duration::days(5))
        .await
        .unwrap();
    assert_eq!((r.interactions, r.breaches), (0, 0), "outside the lookback");
    let card = interaction_scorecard(&engine, &logged, Grouping::Person, &|_| None);
    let line = |who, key: &str| {
        card.lines
            .iter()
            .find(|l| l.group == Group::Person(who) && l.rule.as_str() == key)
            .unwrap()
            .clone()
    };
    let q = line(quick, "answer-in-20s");
    assert_eq!(
        (q.measured, q.met, q.breached, q.median_secs),
        (2, 2, 0, Some(5))
    );
    let s = line(slow, "answer-in-20s");
    assert_eq!(
        (s.measured, s.breached, s.p90_secs),
        (2, 2, Some(60)),
        "the e-mail is out of scope"
    );
    assert_eq!(line(quick, "handle-in-10-min").breached, 1);
    assert_eq!(card.ranking[0].0, quick);
}

/// Rules on deals over a simulated month, evaluated twice a day: a stalled deal warned and
/// reassigned, untouched deals (the owner's call with a contact and a new owner restart
/// the period), a passed close date returning the account to the pool; each alert once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deal_rules_raise_each_alert_once() {
    use crm_core::kpi::DealMeasure;
    use crm_core::sales::{ContactRole, Opportunity, Relationship};
    use crm_core::{Channel as Ch, Interaction, Money, StageKey};
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(month_start()));
    let crm = Crm::new(store.clone()).with_clock(clock.clone());
    let tenant = TenantId::new();
    let t = crm.tenant(tenant);
    let (x, y) = (UserId::new(), UserId::new());
    let acme = t
        .customers()
        .register(Customer::organization("Acme").owner(x).build().unwrap())
        .await
        .unwrap();
    let pat = t
        .customers()
        .register(Customer::person("Pat").owner(x).build().unwrap())
        .await
        .unwrap();
    t.accounts()
        .relate(Relationship::new(acme.id, pat.id, month_start()))
        .await
        .unwrap();
    let sales = t.sales();
    let pipeline = sales
        .create_pipeline(crm_testkit::conformance::sample_pipeline())
        .await
        .unwrap();
    let day = |d: i64| month_start() + Duration::days(d);
    let open = |close: i64| {
        Opportunity::new(
            "Deal",
            acme.id,
            x,
            &pipeline,
            Money::parse("1000", "EUR").unwrap(),
            day(close).date_naive(),
            month_start(),
        )
        .unwrap()
    };
    let d1 = sales.open(open(20)).await.unwrap();
    let d2 = sales.open(open(60)).await.unwrap();
    let d3 = sales
        .open(open(60).with_contact(pat.id, ContactRole::DecisionMaker))
        .await
        .unwrap();
    sales.move_to(d3.id, 1, "negotiation").await.unwrap();
    let rule = |key: &str, measure, max_days, warn_days, scope, on_warning, on_breach| KpiRule {
        key: TemplateName::parse(key).unwrap(),
        name: key.to_string(),
        metric: KpiMetric::Deal {
            measure,
            max_days,
            warn_days,
        },
        calendar: BusinessCalendar::always(),
        scope,
        compliance_goal: 0.9,
        on_warning,
        on_breach,
    };
    let qualify = KpiScope {
        stages: vec![StageKey::parse("qualify").unwrap()],
        ..KpiScope::default()
    };
    let engine = KpiEngine::new(
        vec![
            rule(
                "stalled",
                DealMeasure::DaysInStage,
                10,
                7,
                qualify,
                vec![KpiAction::NotifyAssignee],
                vec![KpiAction::NotifyTeamLead, KpiAction::Reassign { to: y }],
            ),
            rule(
                "untouched",
                DealMeasure::DaysSinceOwnerTouch,
                14,
                14,
                KpiScope::default(),
                vec![],
                vec![KpiAction::NotifyAssignee],
            ),
            rule(
                "overdue",
                DealMeasure::DaysPastCloseDate,
                1,
                1,
                KpiScope::default(),
                vec![],
                vec![KpiAction::ReturnToPool],
            ),
        ],
        month_start(),
    )
    .unwrap();
    let mut raised = BTreeMap::new();
    for d in 0..30 {
        if d == 3 {
            clock.set(day(3) + Duration::hours(8));
            sales.move_to(d2.id, 1, "proposal").await.unwrap();
        }
        if d == 10 {
            let call = Interaction::builder(pat.id, Ch::Phone, crm_core::InteractionKind::Call)
                .at(day(10) + Duration::hours(2))
                .handled_by(x)
                .key("test", "pat-call")
                .build()
                .unwrap();
            t.interactions().log(call).await.unwrap();
        }
        for half in [8, 20] {
            let now = day(d) + Duration::hours(half);
            clock.set(now);
            for run in 0..2 {
                let r = t.kpis().evaluate(&engine, now).await.unwrap();
                assert_eq!(r.conflicts, 0);
                assert!(
                    r.deals <= 3,
                    "only deals in some rule's scope are looked at: {r:?}"
                );
                assert_eq!(r.deals, r.due.min(3), "every due deal is in scope: {r:?}");
                if run == 1 {
                    assert_eq!((r.warnings, r.breaches), (0, 0), "nothing twice at {now}");
                }
                if r.warnings + r.breaches + r.returned_to_pool > 0 {
                    let e = raised.entry(d).or_insert((0, 0, 0));
                    e.0 += r.warnings;
                    e.1 += r.breaches;
                    e.2 += r.returned_to_pool;
                }
            }
        }
    }
    // d1: stalled warning day 7, breach day 10 (to y), untouched by y from day 10 (breach
    // day 24), overdue from its close date on day 20 (breach day 21: Acme to the pool);
    // d2: in proposal from day 3 (untouched breach day 17); d3: Pat called on day 10
    // (untouched breach day 24).
    let want: BTreeMap<i64, (usize, usize, usize)> = [
        (7, (1, 0, 0)),
        (10, (0, 1, 0)),
        (17, (0, 1, 0)),
        (21, (0, 1, 1)),
        (24, (0, 2, 0)),
    ]
    .into();
    assert_eq!(raised, want);
    let d1 = sales.get(d1.id).await.unwrap();
    assert_eq!(d1.owner, y);
    assert_eq!(d1.owned_since, Some(day(10) + Duration::hours(8)));
    assert_eq!(
        d1.alerts.len(),
        4,
        "stalled warning and breach, untouched, overdue"
    );
    let mut cleared = d1.clone();
    cleared.alerts.clear();
    let refused = sales.update(cleared, d1.version).await.unwrap_err();
    assert_eq!(refused.field(), Some("alerts"));
    let d3 = sales.get(d3.id).await.unwrap();
    assert_eq!((d3.owner, d3.owned_since), (x, None));
    let handed = sales
        .update(
            Opportunity {
                owner: y,
                ..d3.clone()
            },
            d3.version,
        )
        .await
        .unwrap();
    assert_eq!(handed.owned_since, Some(crm.now()));
    assert_eq!(t.customers().get(acme.id).await.unwrap().owner, None);
    // Notices: stalled warning to x, breach to x's lead, three untouched breaches to the
    // owners; the return to the pool sends none.
    assert_eq!(store.pending_count(tenant).await.unwrap(), 5);
}

/// A month of random cases, calls, owner and lifecycle changes, deals and rule edits:
/// evaluation through the due instants raises exactly what a full scan raises, run by run,
/// while reading far fewer records.
#[tokio::test]
async fn indexed_evaluation_matches_the_full_scan_over_a_month() {
    for seed in [1, 2, 7, 8] {
        let summary = crm_testkit::month::simulate_month(
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryStore::new()),
            seed,
        )
        .await;
        assert!(
            summary.warnings > 20 && summary.breaches > 20,
            "{summary:?}"
        );
        assert!(
            summary.returned_to_pool > 0 && summary.rule_edits == 4,
            "{summary:?}"
        );
        assert!(summary.due_read * 3 < summary.scanned, "{summary:?}");
        eprintln!("seed {seed}: {summary:?}");
    }
}
