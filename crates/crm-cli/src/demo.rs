//! `crm demo`: a small generated company, so every report has something to show.
//!
//! Customers buy at their own rate and may stop for good after any purchase (the story the
//! BG/NBD model tells), each with their own typical basket; owners call and write now and
//! then; over the last 90 days customers open service cases that the team answers and
//! solves, some members faster than others. The same seed gives the same company.

use std::sync::Arc;

use crm::calendar::{BusinessCalendar, Interval, Week};
use crm::case::{Case, CaseEventKind, CaseKind, CaseStatus};
use crm::chrono::{DateTime, Duration, Utc};
use crm::kpi::{KpiAction, KpiMetric, KpiRule, KpiScope};
use crm::notify::TemplateName;
use crm::rust_decimal::Decimal;
use crm::sales::{ForecastCategory, Opportunity, Pipeline, Stage};
use crm::sla::{SlaMetric, SlaTarget};
use crm::TenantCrm;
use crm::{
    Channel, Crm, Customer, CustomerQuery, Direction, Interaction, InteractionKind, Lifecycle,
    ManualClock, Money, PageRequest,
};

use crate::db::{Db, Failure, DEMO_STAFF};

const FIRST: [&str; 16] = [
    "Ann", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jakob", "Kara",
    "Luca", "Mei", "Noah", "Olga", "Priya",
];
const LAST: [&str; 12] = [
    "Lee", "Schmidt", "Rossi", "Novak", "Silva", "Khan", "Dubois", "Berg", "Ito", "Moreau",
    "Walsh", "Costa",
];
const COMPANIES: [&str; 8] = [
    "Nordlicht",
    "Bluefin",
    "Ostwind",
    "Granite",
    "Kestrel",
    "Lumen",
    "Cobalt",
    "Harbor",
];

/// Fills the tenant; refuses one that already has customers.
pub async fn fill(db: &Db, customers: u32, seed: u64) -> Result<String, Failure> {
    let existing = db
        .t()
        .customers()
        .search(&CustomerQuery::all(), &PageRequest::first(1))
        .await?;
    if !existing.items.is_empty() {
        return Err(Failure::new(format!(
            "tenant {} already has customers: the demo fills an empty tenant (name another with --database or --tenant)",
            db.tenant
        )));
    }
    let now = Utc::now();
    let start = now - Duration::days(365);
    let clock = Arc::new(ManualClock::new(start));
    let crm = Crm::new(db.crm.storage().clone()).with_clock(clock.clone());
    let t = crm.tenant(db.tenant);
    let mut rng = fastrand::Rng::with_seed(seed);

    let drafts = (0..customers as usize)
        .map(|i| {
            let owner = DEMO_STAFF[i % DEMO_STAFF.len()].0;
            let mut b = if i % 7 == 3 {
                let name = format!("{} {}", COMPANIES[i % COMPANIES.len()], i);
                Customer::organization(&name).email(&format!(
                    "office{i}@{}.example",
                    COMPANIES[i % 8].to_lowercase()
                ))
            } else {
                let (f, l) = (
                    FIRST[rng.usize(..FIRST.len())],
                    LAST[rng.usize(..LAST.len())],
                );
                Customer::person(&format!("{f} {l}")).email(&format!(
                    "{}.{}{i}@example.com",
                    f.to_lowercase(),
                    l.to_lowercase()
                ))
            };
            b = b.owner(owner).lifecycle(Lifecycle::Active);
            if rng.u8(..100) < 40 {
                b = b.tag("newsletter");
            }
            b.build()
        })
        .collect::<crm::Result<Vec<_>>>()?;
    let registered = t.customers().register_many(drafts).await?;

    // A year of purchases and contacts.
    let mut log = Vec::new();
    let mut purchases = 0usize;
    for (i, c) in registered.iter().enumerate() {
        let owner = c.owner.unwrap_or(DEMO_STAFF[0].0);
        // Purchases per week (mean about one a month), dropout chance after each, basket.
        let rate = -(1.0 - rng.f64()).ln() * 0.25;
        let dropout = 0.05 + 0.25 * rng.f64();
        let basket = 15.0 * (1.0 + 9.0 * rng.f64() * rng.f64());
        let mut day = rng.f64() * 270.0;
        let mut k = 0;
        while day < 365.0 {
            let at = start + Duration::minutes((day * 1440.0) as i64);
            let cents = (basket * (0.5 + rng.f64()) * 100.0).round() as i64;
            let amount = Money::new(Decimal::new(cents.max(100), 2), "EUR")?;
            log.push(
                Interaction::builder(c.id, Channel::Web, InteractionKind::Purchase)
                    .at(at)
                    .amount(amount)
                    .key("demo", &format!("purchase-{i}-{k}"))
                    .build()?,
            );
            purchases += 1;
            k += 1;
            if rng.f64() < dropout || rate <= 0.0 {
                break;
            }
            day += (-(1.0 - rng.f64()).ln() / rate * 7.0).max(1.0);
        }
        for n in 0..rng.usize(0..6) {
            let at = start + Duration::minutes(rng.i64(0..365 * 1440));
            let (channel, kind) = if n % 2 == 0 {
                (Channel::Phone, InteractionKind::Call)
            } else {
                (Channel::Email, InteractionKind::Email)
            };
            log.push(
                Interaction::builder(c.id, channel, kind)
                    .direction(Direction::Outbound)
                    .handled_by(owner)
                    .at(at)
                    .subject("Checking in")
                    .key("demo", &format!("contact-{i}-{n}"))
                    .build()?,
            );
        }
    }
    let interactions = log.len();
    while !log.is_empty() {
        let rest = log.split_off(log.len().min(10_000));
        t.interactions().log_batch(log).await?;
        log = rest;
    }

    // Two service levels in office hours, Berlin.
    let calendar = BusinessCalendar::new(
        crm::chrono_tz::Europe::Berlin,
        Week::weekdays(&[Interval::parse("08:00", "18:00")?]),
    )?;
    for (key, name, metric, target, goal) in [
        (
            "first-reply-4h",
            "First reply within 4 business hours",
            SlaMetric::FirstReply,
            Duration::hours(4),
            0.9,
        ),
        (
            "resolve-3-days",
            "Resolved within 3 business days",
            SlaMetric::Resolution,
            Duration::hours(30),
            0.8,
        ),
    ] {
        t.kpis()
            .add_rule(KpiRule {
                key: TemplateName::parse(key)?,
                name: name.into(),
                metric: KpiMetric::Case(SlaTarget::new(metric, target, 0.75)?),
                calendar: calendar.clone(),
                scope: KpiScope::default(),
                compliance_goal: goal,
                on_warning: vec![KpiAction::NotifyAssignee],
                on_breach: vec![KpiAction::NotifyTeamLead],
            })
            .await?;
    }

    // Cases over the last 90 days; staff member k takes (k + 1) times as long as the first.
    let mut plan: Vec<(DateTime<Utc>, usize, u8)> = Vec::new();
    let cases = (customers as usize / 2).max(4);
    for n in 0..cases {
        let opened = now - Duration::minutes(rng.i64(2 * 1440..90 * 1440));
        let who = n % DEMO_STAFF.len();
        let slow = who as i64 + 1;
        let reply = opened + Duration::minutes(5 + rng.i64(0..150 * slow));
        let solved = reply + Duration::minutes(30 + rng.i64(0..1440 * slow));
        plan.push((opened, n, 0));
        plan.push((reply, n, 1));
        if solved < now {
            plan.push((solved, n, 2));
        }
    }
    plan.sort();
    let mut open: Vec<Option<Case>> = vec![None; cases];
    for (at, n, step) in plan {
        clock.set(at);
        let customer = &registered[(n * 7 + 1) % registered.len()];
        let who = DEMO_STAFF[n % DEMO_STAFF.len()].0;
        let case = match (step, open[n].take()) {
            (0, _) => {
                let kind = if n % 3 == 0 {
                    CaseKind::ServiceRequest
                } else {
                    CaseKind::Complaint
                };
                let draft = Case::open(
                    customer.id,
                    kind,
                    &format!("Case {n}"),
                    Channel::Email,
                    Some(who),
                    at,
                )?;
                t.cases().open(draft).await?
            }
            (1, Some(case)) => {
                t.cases()
                    .record_event(
                        case.id,
                        case.version,
                        CaseEventKind::PublicReply { by: who },
                        vec![],
                    )
                    .await?
            }
            (_, Some(case)) => {
                let kind = CaseEventKind::StatusChange {
                    to: CaseStatus::Resolved,
                    by: Some(who),
                };
                t.cases()
                    .record_event(case.id, case.version, kind, vec![])
                    .await?
            }
            (_, None) => continue,
        };
        open[n] = Some(case);
    }
    let deals = deals(&t, &clock, &registered, now, &mut rng).await?;
    Ok(format!(
        "filled tenant {}: {} customers, {interactions} interactions ({purchases} purchases), {cases} service cases, 2 KPI rules, {deals} deals\n\
         try: crm report abc --chart abc.svg",
        db.tenant,
        registered.len()
    ))
}

/// A sales pipeline and deals with the organisations over the last half year: each opened
/// in the first stage, moved on, won or lost every two weeks or so, some still open.
async fn deals(
    t: &TenantCrm,
    clock: &ManualClock,
    customers: &[Customer],
    now: DateTime<Utc>,
    rng: &mut fastrand::Rng,
) -> Result<usize, Failure> {
    let sales = t.sales();
    let pipeline = sales
        .create_pipeline(Pipeline::new(
            "New business",
            vec![
                Stage::open("qualify", "Qualify", 10, ForecastCategory::Pipeline)?,
                Stage::open("proposal", "Proposal", 40, ForecastCategory::BestCase)?,
                Stage::open("negotiation", "Negotiation", 70, ForecastCategory::Commit)?,
                Stage::won("won", "Won")?,
                Stage::lost("lost", "Lost")?,
            ],
        )?)
        .await?;
    let accounts: Vec<&Customer> = customers
        .iter()
        .filter(|c| c.kind == crm::PartyKind::Organization)
        .collect();
    let mut opened = 0;
    for (i, account) in accounts
        .iter()
        .cycle()
        .take(accounts.len() * 3 / 2)
        .enumerate()
    {
        let owner = account.owner.unwrap_or(DEMO_STAFF[0].0);
        let mut at = now - Duration::days(rng.i64(20..180));
        clock.set(at);
        let close = (at + Duration::days(rng.i64(30..150))).date_naive();
        let amount = Money::new(Decimal::from(1_000 * rng.i64(2..60)), "EUR")?;
        let deal = Opportunity::new(
            &format!("{} #{}", account.name, i + 1),
            account.id,
            owner,
            &pipeline,
            amount,
            close,
            at,
        )?;
        let mut deal = sales.open(deal).await?;
        opened += 1;
        loop {
            at += Duration::days(rng.i64(5..25));
            if at >= now {
                break;
            }
            clock.set(at);
            let next = match deal.stage.as_str() {
                "qualify" => "proposal",
                "proposal" => "negotiation",
                _ => "won",
            };
            deal = match rng.u8(..10) {
                0..=4 if next == "won" => sales.win(deal.id, deal.version).await?,
                0..=4 => sales.move_to(deal.id, deal.version, next).await?,
                5 | 6 => sales.lose(deal.id, deal.version, "Price", None).await?,
                _ => continue,
            };
            if deal.is_closed() {
                break;
            }
        }
    }
    Ok(opened)
}
