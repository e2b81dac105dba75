//! A quarter of B2B selling: four accounts with the people who work there, three
//! salespeople, a pipeline of five stages, and 30 deals that move through it day by day. At
//! the end of the quarter: the weighted forecast per owner and category, the funnel, one
//! account with its contacts and its timeline, the deals a KPI rule finds stalled in their
//! stage (with notices to their owners), and the handoff to an "ERP" that receives each
//! `opportunity.won` event through the outbox and answers with its order reference (linked
//! once, even when the event arrives twice).
//!
//! `cargo run --example pipeline` (SQLite in memory).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use crm_core::calendar::BusinessCalendar;
use crm_core::kpi::{DealMeasure, KpiAction, KpiMetric, KpiRule, KpiScope};
use crm_core::notify::{
    Dispatcher, DomainEvent, EventKind, EventSink, RecordingNotifier, StaffMember, StaticDirectory,
    TemplateName,
};
use crm_core::sales::{
    ContactRole, Dimension, ForecastCategory, ForecastQuery, FunnelQuery, LineItem, Opportunity,
    OpportunityQuery, OrderSnapshot, Outcome, Period, Pipeline, Relationship, Stage,
};
use crm_core::{
    Channel, Clock, Crm, Customer, EmailAddress, Error, ExternalRef, Interaction, InteractionKind,
    ManualClock, Money, PageRequest, TenantId, UserId,
};
use crm_sqlite::SqliteStore;
use rust_decimal::Decimal;

/// The "ERP": keeps every won deal's order snapshot it is sent (delivery is at least once,
/// so it may see one twice).
#[derive(Default)]
struct Erp {
    received: Mutex<Vec<OrderSnapshot>>,
}

#[async_trait]
impl EventSink for Erp {
    async fn deliver(&self, event: &DomainEvent) -> crm_core::Result<()> {
        if event.kind == EventKind::OpportunityWon {
            let order: OrderSnapshot = serde_json::from_value(event.data.clone())
                .map_err(|e| Error::encoding("an order snapshot", e))?;
            self.received
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(order);
        }
        Ok(())
    }
}

/// A small deterministic generator, so every run tells the same story.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (self.0 >> 33) % sides
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let start = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(SqliteStore::open_in_memory()?);
    let crm = Crm::new(store.clone())
        .with_clock(clock.clone())
        .with_events(true);
    let tenant = TenantId::new();
    let acme = crm.tenant(tenant);
    let sales = acme.sales();

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

    // Accounts (organisations) and their contacts (people).
    let mut accounts = Vec::new();
    for (company, people) in [
        ("Acme Logistics GmbH", &["Jana Weber", "Tom Brandt"][..]),
        ("Nordwind AG", &["Ole Hansen"][..]),
        ("Huang Trading Co.", &["Huang Li", "Chen Wei"][..]),
        ("Lisboa Foods Lda.", &["Rita Alves"][..]),
    ] {
        let account = acme
            .customers()
            .register(Customer::organization(company).build()?)
            .await?;
        let mut contacts = Vec::new();
        for (n, name) in people.iter().enumerate() {
            let person = acme
                .customers()
                .register(Customer::person(name).build()?)
                .await?;
            // The first is the buyer who decides, the others judge the technical fit.
            let (role, title) = if n == 0 {
                (ContactRole::DecisionMaker, "Head of purchasing")
            } else {
                (ContactRole::Technical, "Fleet engineer")
            };
            acme.accounts()
                .relate(
                    Relationship::new(account.id, person.id, clock.now())
                        .role(role)
                        .title(title)?
                        .primary(),
                )
                .await?;
            contacts.push(person.id);
        }
        accounts.push((account, contacts));
    }
    let owners = [
        ("Ann", UserId::new()),
        ("Bo", UserId::new()),
        ("Chen", UserId::new()),
    ];
    let name_of = |id: UserId| {
        owners
            .iter()
            .find(|(_, u)| *u == id)
            .map_or("?", |(n, _)| *n)
    };

    // Thirty deals, opened over the first weeks of the quarter, each with product lines.
    let quarter_end = NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
    let mut dice = Dice(2026);
    let mut deals = Vec::new();
    for i in 0..30 {
        let (account, contacts) = &accounts[i % accounts.len()];
        let (_, owner) = owners[i % owners.len()];
        let close = quarter_end - Duration::days(dice.roll(60) as i64);
        let units = Decimal::from(1 + dice.roll(20));
        let price = Money::parse(&format!("{}", 500 + 250 * dice.roll(12)), "EUR")?;
        let mut deal = Opportunity::new(
            &format!("{} #{}", account.name, i + 1),
            account.id,
            owner,
            &pipeline,
            Money::parse("0", "EUR")?,
            close,
            clock.now(),
        )?
        .with_contact(contacts[0], ContactRole::DecisionMaker)
        .with_lines(vec![LineItem::new(
            ExternalRef::new("erp", &format!("SKU-{}", 100 + dice.roll(5)))?,
            units,
            price,
        )?
        .discount(Decimal::from(5 * dice.roll(3)))?])?;
        deal.source = Some(["Trade fair", "Website", "Referral"][i % 3].to_string());
        deals.push(sales.open(deal).await?.id);
        clock.advance(Duration::days(1));
    }

    // Forty days of selling: every five days each open deal may move on (3 in 10), be lost
    // (1 in 10), or stay where it is.
    for _round in 0..8 {
        clock.advance(Duration::days(5));
        for id in &deals {
            let deal = sales.get(*id).await?;
            if deal.is_closed() {
                continue;
            }
            let next = match deal.stage.as_str() {
                "qualify" => "proposal",
                "proposal" => "negotiation",
                _ => "won",
            };
            match dice.roll(10) {
                0..=2 => {
                    if next == "won" {
                        sales.win(deal.id, deal.version).await?;
                    } else {
                        sales.move_to(deal.id, deal.version, next).await?;
                    }
                }
                3 => {
                    sales
                        .lose(deal.id, deal.version, "Price", Some("Forks & Co"))
                        .await?;
                }
                _ => {}
            }
        }
    }

    // The forecast of the quarter's deals (open ones weighted, won ones at 100 %).
    let quarter = ForecastQuery {
        period: Period::Quarter,
        include_closed: true,
        ..ForecastQuery::new(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), quarter_end)
    };
    let forecast = sales
        .forecast(&quarter, None)
        .await?
        .rollup(&[Dimension::Owner, Dimension::Category])?;
    println!("Forecast for Q1 2026 (EUR), per owner and category:");
    println!(
        "  {:<6} {:<10} {:>5} {:>12} {:>12}",
        "owner", "category", "deals", "amount", "weighted"
    );
    for row in &forecast.rows {
        println!(
            "  {:<6} {:<10} {:>5} {:>12} {:>12}",
            row.owner.map_or("all", name_of),
            row.category.map_or("all", |c| c.as_str()),
            row.deals,
            format!("{:.2}", row.amount),
            format!("{:.2}", row.weighted)
        );
    }

    // The funnel of the deals created this quarter.
    let report = sales
        .funnel(
            &FunnelQuery {
                pipeline: pipeline.id,
                from: start,
                to: clock.now(),
            },
            None,
        )
        .await?;
    println!(
        "\nFunnel of the {} deals opened this quarter:",
        report.all.deals
    );
    println!(
        "  {:<12} {:>7} {:>9} {:>13}",
        "step", "reached", "went on", "days in stage"
    );
    for step in &report.all.steps {
        println!(
            "  {:<12} {:>7} {:>9} {:>13}",
            step.stage.as_str(),
            step.reached,
            step.converted
                .map_or("-".into(), |c| format!("{:.0} %", c * 100.0)),
            step.average_days.map_or("-".into(), |d| format!("{d:.1}"))
        );
    }
    println!(
        "  won {}, lost {}, win rate {}, average cycle {} days",
        report.all.won,
        report.all.lost,
        report
            .all
            .win_rate
            .map_or("-".into(), |r| format!("{:.0} %", r * 100.0)),
        report
            .all
            .average_cycle_days
            .map_or("-".into(), |d| format!("{d:.1}"))
    );

    // One account: the people who work there, and its timeline (its own interactions and
    // its people's).
    let (first, people) = &accounts[0];
    let call = Interaction::builder(people[0], Channel::Phone, InteractionKind::Call)
        .at(clock.now() - Duration::days(2))
        .handled_by(owners[0].1)
        .subject("Delivery dates for the forklifts")
        .key("phone", "call-1")
        .build()?;
    acme.interactions().log(call).await?;
    let contacts = acme
        .accounts()
        .contacts(first.id, &PageRequest::first(10))
        .await?;
    println!(
        "\n{}: {} contacts",
        first.name.as_str(),
        contacts.items.len()
    );
    for r in &contacts.items {
        let person = acme.customers().get(r.person).await?;
        let roles: Vec<&str> = r.roles.iter().map(|role| role.as_str()).collect();
        println!(
            "  {:<12} {:<20} {}",
            person.name.as_str(),
            r.title.as_deref().unwrap_or("-"),
            roles.join(", ")
        );
    }
    let timeline = acme
        .accounts()
        .timeline(first.id, &PageRequest::first(5))
        .await?;
    for i in &timeline.items {
        let who = acme.customers().get(i.customer).await?;
        println!(
            "  {}  {:<12} {}",
            i.occurred_at.format("%Y-%m-%d"),
            who.name.as_str(),
            i.subject.as_deref().unwrap_or("")
        );
    }

    // A KPI rule on deals: two weeks in one stage is a warning, three a breach; the owner
    // is told either way, and their team lead on a breach.
    let directory = Arc::new(StaticDirectory::new());
    let lead = UserId::new();
    for (name, id) in owners.iter().copied().chain([("Dana", lead)]) {
        directory.insert(
            tenant,
            StaffMember {
                id,
                name: name.to_string(),
                email: EmailAddress::parse(&format!("{}@example.com", name.to_lowercase()))?,
                locale: None,
                team: None,
                team_lead: (id != lead).then_some(lead),
            },
        );
    }
    let stalled_rule = KpiRule {
        key: TemplateName::parse("stalled-deal")?,
        name: "At most 21 days in one stage".into(),
        metric: KpiMetric::Deal {
            measure: DealMeasure::DaysInStage,
            max_days: 21,
            warn_days: 14,
        },
        calendar: BusinessCalendar::always(),
        scope: KpiScope::default(),
        compliance_goal: 0.9,
        on_warning: vec![KpiAction::NotifyAssignee],
        on_breach: vec![KpiAction::NotifyAssignee, KpiAction::NotifyTeamLead],
    };
    acme.kpis().add_rule(stalled_rule).await?;
    let engine = acme.kpis().engine().await?;
    let kpi = acme.kpis().evaluate(&engine, clock.now()).await?;
    let again = acme.kpis().evaluate(&engine, clock.now()).await?;
    println!(
        "\nKPI rule stalled-deal over {} open deals: warnings {}, breaches {} (raised again by a second run: {})",
        kpi.deals,
        kpi.warnings,
        kpi.breaches,
        again.warnings + again.breaches
    );
    let open = sales
        .list(
            &OpportunityQuery {
                outcome: Some(Outcome::Open),
                ..OpportunityQuery::default()
            },
            &PageRequest::first(100),
        )
        .await?;
    let stalled: Vec<_> = open
        .items
        .iter()
        .filter(|d| d.alerts.iter().any(|k| k.ends_with(":breach")))
        .collect();
    for d in stalled.iter().take(5) {
        println!(
            "  {:<28} {:<12} {:>3} days, owner {}",
            d.name.as_str(),
            d.stage.as_str(),
            (clock.now() - d.stage_entered_at).num_days(),
            name_of(d.owner)
        );
    }

    // The handoff: the ERP receives the won events and answers with its order numbers.
    let erp = Arc::new(Erp::default());
    let mail = Arc::new(RecordingNotifier::new());
    let dispatcher = Dispatcher::new(
        tenant,
        store.clone(),
        mail.clone(),
        directory.clone(),
        clock.clone(),
    )
    .with_event_sink(erp.clone());
    while dispatcher.run_once(clock.now()).await?.claimed > 0 {}
    let notices = mail.sent();
    println!(
        "\nKPI notices the dispatcher sent to owners and their team lead: {}",
        notices.len()
    );
    let orders: Vec<OrderSnapshot> = erp
        .received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut numbers = BTreeMap::new();
    for (n, order) in orders.iter().enumerate() {
        let number = ExternalRef::new("erp", &format!("SO-2026-{:04}", n + 1))?;
        sales.link_order(order.opportunity, number.clone()).await?;
        numbers.insert(order.opportunity, number);
    }
    // At-least-once delivery: the first order arrives again; linking it again is a no-op.
    if let Some(first) = orders.first() {
        let again = sales
            .link_order(first.opportunity, numbers[&first.opportunity].clone())
            .await?;
        assert_eq!(
            again.order.as_ref().map(|o| &o.reference),
            numbers.get(&first.opportunity)
        );
    }
    println!("\nOrders the ERP made from won deals: {}", orders.len());
    for order in orders.iter().take(5) {
        println!(
            "  {}  {:<28} {:>10} {}  ({} line{})",
            numbers[&order.opportunity],
            order.name.as_str(),
            order.amount.amount(),
            order.amount.currency(),
            order.lines.len(),
            if order.lines.len() == 1 { "" } else { "s" }
        );
    }
    if let Some(first) = orders.first() {
        let deal = sales.get(first.opportunity).await?;
        let answer = match sales.reopen(deal.id, deal.version, "qualify").await {
            Err(e) => format!("refused: {e}"),
            Ok(_) => "allowed".into(),
        };
        println!("  reopening {}: {answer}", deal.name.as_str());
    }
    Ok(())
}
