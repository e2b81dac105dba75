//! Service levels: a month of simulated complaints and service requests for a team of four
//! in Shanghai (office hours 09:00-12:00 and 13:30-18:00, the October holidays and their
//! make-up working day), two KPI rules evaluated every ten minutes, then each person's
//! scorecard, each team's, and the breaches raised. The team also owns forty customers;
//! those an owner has not called for three weeks return to the public pool (checked
//! every morning, with a warning five days ahead).
//!
//! `cargo run --example service_levels` (SQLite in memory; about a minute in a debug build,
//! seconds with `--release`).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use crm_core::calendar::{BusinessCalendar, Interval, Week};
use crm_core::case::{Case, CaseEventKind, CaseKind, CaseQuery, CaseStatus};
use crm_core::kpi::{
    scorecard, Group, Grouping, KpiAction, KpiEngine, KpiMetric, KpiRule, KpiScope,
};
use crm_core::notify::TemplateName;
use crm_core::pool::{ClaimLimits, PoolPolicy, PoolRule};
use crm_core::sla::{SlaMetric, SlaTarget};
use crm_core::{
    CaseId, Channel, Crm, Customer, Interaction, InteractionKind, Lifecycle, ManualClock,
    PageRequest, TeamId, TenantId, UserId,
};
use crm_sqlite::SqliteStore;

fn calendar() -> Result<BusinessCalendar, crm_core::Error> {
    let day = [
        Interval::parse("09:00", "12:00")?,
        Interval::parse("13:30", "18:00")?,
    ];
    let date = |d| NaiveDate::from_ymd_opt(2026, 10, d).expect("date");
    BusinessCalendar::new(chrono_tz::Asia::Shanghai, Week::weekdays(&day))?
        .with_holidays((1..=7).map(date))?
        .with_extra_working_days([date(10)])
}

fn rules(cal: &BusinessCalendar, lead: UserId) -> Result<Vec<KpiRule>, crm_core::Error> {
    Ok(vec![
        KpiRule {
            key: TemplateName::parse("complaint-first-reply")?,
            name: "Answer a complaint within 4 business hours".into(),
            metric: KpiMetric::Case(SlaTarget::new(
                SlaMetric::FirstReply,
                Duration::hours(4),
                0.75,
            )?),
            calendar: cal.clone(),
            scope: KpiScope {
                kinds: vec![CaseKind::Complaint],
                ..KpiScope::default()
            },
            compliance_goal: 0.95,
            on_warning: vec![KpiAction::NotifyAssignee],
            on_breach: vec![KpiAction::NotifyTeamLead],
        },
        KpiRule {
            key: TemplateName::parse("resolve-in-3-days")?,
            name: "Resolve within 3 business days".into(),
            metric: KpiMetric::Case(SlaTarget::new(
                SlaMetric::Resolution,
                Duration::minutes(3 * 450),
                0.8,
            )?),
            calendar: cal.clone(),
            scope: KpiScope::default(),
            compliance_goal: 0.9,
            on_warning: vec![KpiAction::NotifyAssignee],
            on_breach: vec![KpiAction::NotifyTeamLead, KpiAction::Reassign { to: lead }],
        },
    ])
}

/// A small deterministic random source, so every run tells the same story.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 9, 27, 16, 0, 0).unwrap(); // 00:00 in Shanghai
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(SqliteStore::open_in_memory()?);
    let crm = Crm::new(store.clone()).with_clock(clock.clone());
    let tenant = TenantId::new();
    let names = ["Wang Fang", "Li Lei", "Zhang Wei", "Chen Jing"];
    let staff: Vec<UserId> = names.iter().map(|_| UserId::new()).collect();
    let teams = [TeamId::new(), TeamId::new()];
    let lead = staff[0];
    let team_of = |u: UserId| staff.iter().position(|s| *s == u).map(|i| teams[i / 2]);
    let name_of = |u: UserId| staff.iter().position(|s| *s == u).map_or("?", |i| names[i]);
    let cal = calendar()?;
    let engine = KpiEngine::new(rules(&cal, lead)?, start)?;
    let customers = crm
        .tenant(tenant)
        .customers()
        .register_many(
            (0..40)
                .map(|i| {
                    Customer::person(&format!("Customer {i}"))
                        .lifecycle(Lifecycle::Active)
                        .owner(staff[i % 4])
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?,
        )
        .await?;

    // Plan the month: when each case opens, who gets it, when it is answered and solved.
    // Staff members 2 and 3 are slower than 0 and 1.
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15);
    let mut plan: BTreeMap<i64, Vec<(usize, CaseEventKind)>> = BTreeMap::new();
    let mut opens: BTreeMap<i64, (usize, usize, CaseKind)> = BTreeMap::new();
    let mut minute = 9 * 60;
    let mut n = 0;
    while minute < 30 * 24 * 60 {
        let who = dice.roll(4) as usize;
        let slow = 1 + who as i64;
        let kind = if dice.roll(3) == 0 {
            CaseKind::ServiceRequest
        } else {
            CaseKind::Complaint
        };
        opens.insert(minute, (n, who, kind));
        let reply = minute + 5 + dice.roll(360 * slow as u64) as i64;
        let solve = reply + 60 + dice.roll(2 * 24 * 60 * slow as u64) as i64;
        plan.entry(reply)
            .or_default()
            .push((n, CaseEventKind::PublicReply { by: staff[who] }));
        plan.entry(solve).or_default().push((
            n,
            CaseEventKind::StatusChange {
                to: CaseStatus::Resolved,
                by: Some(staff[who]),
            },
        ));
        n += 1;
        minute += 120 + dice.roll(600) as i64;
    }

    // Owners call their customers now and then; the slower colleagues less often.
    let mut calls: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for i in 0..customers.len() {
        let mut at = dice.roll(10 * 24 * 60) as i64;
        let gap = (8 + 6 * (i % 4) as u64) * 24 * 60;
        while at < 31 * 24 * 60 {
            calls.entry(at - at % 10).or_default().push(i);
            at += (gap / 2 + dice.roll(gap)) as i64;
        }
    }
    let pool = PoolPolicy {
        rules: vec![PoolRule {
            lifecycles: vec![Lifecycle::Active],
            tag: None,
            no_contact_days: Some(21),
            no_purchase_days: None,
            notice_days: 5,
        }],
        limits: ClaimLimits {
            per_day: 3,
            max_held: 15,
            reclaim_block_days: 30,
        },
        exempt_open_cases: true,
        time_zone: chrono_tz::Asia::Shanghai,
    };
    let (mut warned, mut reclaimed) = (0, Vec::new());

    let mut ids: Vec<CaseId> = Vec::new();
    let (mut warnings, mut breaches) = (0, 0);
    let month = 31 * 24 * 60;
    for m in (0..month).step_by(10) {
        let now = start + Duration::minutes(m);
        clock.set(now);
        for (_, (i, who, kind)) in opens.range(m - 10 + 1..=m) {
            let customer = customers[*i % customers.len()].id;
            let draft = Case::open(
                customer,
                kind.clone(),
                &format!("Case {i}"),
                Channel::Phone,
                Some(staff[*who]),
                now,
            )?;
            ids.push(crm.tenant(tenant).cases().open(draft).await?.id);
        }
        for (_, events) in plan.range(m - 10 + 1..=m) {
            for (i, kind) in events {
                let case = crm.tenant(tenant).cases().get(ids[*i]).await?;
                crm.tenant(tenant)
                    .cases()
                    .record_event(case.id, case.version, kind.clone(), vec![])
                    .await?;
            }
        }
        for i in calls.get(&m).into_iter().flatten() {
            let call =
                Interaction::builder(customers[*i].id, Channel::Phone, InteractionKind::Call)
                    .at(now)
                    .handled_by(staff[*i % 4])
                    .key("simulation", &format!("call-{i}-{m}"))
                    .build()?;
            crm.tenant(tenant).interactions().log(call).await?;
        }
        let report = crm.tenant(tenant).kpis().evaluate(&engine, now).await?;
        warnings += report.warnings;
        breaches += report.breaches;
        if m % (24 * 60) == 9 * 60 {
            // 09:00 in Shanghai: the daily pool check.
            let pool_run = crm.tenant(tenant).pool().reclaim(&pool).await?;
            warned += pool_run.warned;
            reclaimed.extend(
                pool_run
                    .reclaimed
                    .into_iter()
                    .map(|(c, owner)| (c, owner, now)),
            );
        }
    }
    let end = start + Duration::minutes(month);

    let mut cases = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let batch = crm
            .tenant(tenant)
            .cases()
            .list(&CaseQuery::default(), &page)
            .await?;
        cases.extend(batch.items);
        match batch.next {
            Some(next) => page = PageRequest::after(next, 500),
            None => break,
        }
    }
    println!(
        "{} cases in October 2026; KPI evaluation raised {warnings} warnings and {breaches} breaches",
        cases.len()
    );
    println!("\nper person (a measurement counts for whoever held the case when it was decided):");
    let card = scorecard(
        &engine,
        &cases,
        &Default::default(),
        start,
        end,
        end,
        Grouping::Person,
        &team_of,
    );
    println!(
        "{:<12} {:<24} {:>8} {:>5} {:>8} {:>10} {:>9} {:>9}",
        "person", "rule", "measured", "met", "breached", "compliance", "median", "p90"
    );
    let hours =
        |s: Option<i64>| s.map_or("-".to_string(), |s| format!("{:.1} h", s as f64 / 3600.0));
    for line in &card.lines {
        let who = match &line.group {
            Group::Person(u) => name_of(*u).to_string(),
            other => format!("{other:?}"),
        };
        println!(
            "{:<12} {:<24} {:>8} {:>5} {:>8} {:>9.1}% {:>9} {:>9}{}",
            who,
            line.rule.as_str(),
            line.measured,
            line.met,
            line.breached,
            line.compliance * 100.0,
            hours(line.median_secs),
            hours(line.p90_secs),
            if line.goal_reached {
                ""
            } else {
                "  below goal"
            }
        );
    }
    println!("\nranking:");
    for (rank, (u, compliance)) in card.ranking.iter().enumerate() {
        println!(
            "{}. {:<12} {:.1}%",
            rank + 1,
            name_of(*u),
            compliance * 100.0
        );
    }
    println!("\nper team:");
    let by_team = scorecard(
        &engine,
        &cases,
        &Default::default(),
        start,
        end,
        end,
        Grouping::Team,
        &team_of,
    );
    for line in &by_team.lines {
        let team = match &line.group {
            Group::Team(t) => format!(
                "team {}",
                teams.iter().position(|x| x == t).map_or(0, |i| i + 1)
            ),
            other => format!("{other:?}"),
        };
        println!(
            "{team:<8} {:<24} {:>4} measured, {:>5.1}% compliant",
            line.rule.as_str(),
            line.measured,
            line.compliance * 100.0
        );
    }
    let reassigned = cases
        .iter()
        .filter(|c| {
            c.events
                .iter()
                .any(|e| matches!(e.kind, CaseEventKind::Assignment { by: None, .. }))
        })
        .count();
    println!("\n{reassigned} cases were reassigned to the team lead by the resolution rule");
    println!("\npublic pool: {warned} warnings to owners ahead; returned to the pool:");
    for (customer, owner, at) in &reclaimed {
        let name = customers
            .iter()
            .find(|c| c.id == *customer)
            .map_or("?", |c| c.name.as_str());
        println!(
            "  {}  {name:<12} from {}",
            at.with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%Y-%m-%d %H:%M Shanghai"),
            name_of(*owner)
        );
    }
    println!(
        "{} notices wait in the outbox for the dispatcher",
        crm.storage().pending_count(tenant).await?
    );
    Ok(())
}
