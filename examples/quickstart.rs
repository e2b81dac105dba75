//! Quickstart: a SQLite file, two tenants, a few customers, a week of interactions on
//! several channels, then each customer's profile and timeline.
//!
//! `cargo run --example quickstart [-- PATH]` (default `crm-quickstart.db` in the current
//! directory). Running it again reuses the file: customers are found by their id in the
//! `quickstart` source, and every interaction has an idempotency key, so a second run
//! stores nothing twice and says so.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use crm_core::{
    Channel, Crm, Customer, CustomerQuery, Direction, ExternalRef, Interaction, InteractionKind,
    Lifecycle, Money, PageRequest, TenantId, UserId,
};
use crm_sqlite::SqliteStore;
use uuid::Uuid;

/// Fixed ids, so that a second run finds the first run's data.
const ACME: TenantId =
    TenantId::from_uuid(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0a01));
const BETA: TenantId =
    TenantId::from_uuid(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0b01));
const LI: UserId = UserId::from_uuid(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_1001));
const SARAH: UserId = UserId::from_uuid(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_1002));

/// Finds the customer known as `key` in the `quickstart` source, or registers `draft`.
async fn find_or_register(
    crm: &Crm,
    tenant: TenantId,
    key: &str,
    draft: Customer,
) -> crm_core::Result<Customer> {
    let query = CustomerQuery {
        external_id: Some(ExternalRef::new("quickstart", key)?),
        ..Default::default()
    };
    let page = crm
        .tenant(tenant)
        .customers()
        .search(&query, &PageRequest::first(1))
        .await?;
    match page.items.into_iter().next() {
        Some(found) => Ok(found),
        None => crm.tenant(tenant).customers().register(draft).await,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "crm-quickstart.db".to_string());
    let store = SqliteStore::open(&path)?;
    let crm = Crm::new(Arc::new(store));
    println!("database: {path}\n");

    let monday: DateTime<Utc> = "2025-03-03T08:00:00Z".parse()?;
    let at = |day: i64, hour: i64| monday + Duration::days(day) + Duration::hours(hour);

    // --- Tenant Acme: a trading company with two customers ---------------------------
    let wang = find_or_register(
        &crm,
        ACME,
        "wang",
        Customer::person("王小明")
            .email("xiaoming.wang@example.cn")
            .phone("+86 138 0013 8000")
            .lifecycle(Lifecycle::Active)
            .owner(LI)
            .tag("vip")
            .external_id("quickstart", "wang")
            .build()?,
    )
    .await?;
    let mueller = find_or_register(
        &crm,
        ACME,
        "mueller",
        Customer::organization("Müller Logistik GmbH")
            .email("einkauf@mueller-logistik.example")
            .phone("+49 30 1234567")
            .lifecycle(Lifecycle::Prospect)
            .owner(SARAH)
            .external_id("quickstart", "mueller")
            .build()?,
    )
    .await?;

    let i = |c: &Customer, ch, kind, when, key: &str| {
        Interaction::builder(c.id, ch, kind)
            .at(when)
            .key("quickstart", key)
    };
    let acme_week = vec![
        i(&wang, Channel::Phone, InteractionKind::Call, at(0, 1), "a1")
            .direction(Direction::Inbound)
            .handled_by(LI)
            .wait_secs(8)
            .duration_secs(240)
            .subject("Asked about the spring catalogue")
            .build()?,
        i(
            &wang,
            Channel::Web,
            InteractionKind::Purchase,
            at(1, 3),
            "a2",
        )
        .amount(Money::parse("1280.00", "CNY")?)
        .subject("Order W-1001")
        .build()?,
        i(
            &mueller,
            Channel::Email,
            InteractionKind::Email,
            at(1, 6),
            "a3",
        )
        .direction(Direction::Outbound)
        .handled_by(SARAH)
        .subject("Quote for 40 pallets")
        .build()?,
        i(
            &mueller,
            Channel::Visit,
            InteractionKind::Meeting,
            at(3, 2),
            "a4",
        )
        .direction(Direction::Outbound)
        .handled_by(SARAH)
        .duration_secs(3600)
        .build()?,
        i(
            &wang,
            Channel::Chat,
            InteractionKind::Complaint,
            at(4, 5),
            "a5",
        )
        .handled_by(LI)
        .subject("Parcel arrived damaged")
        .build()?,
        i(
            &mueller,
            Channel::Email,
            InteractionKind::Purchase,
            at(4, 7),
            "a6",
        )
        .amount(Money::parse("18450.00", "EUR")?)
        .subject("PO 7781")
        .build()?,
        i(&wang, Channel::Other, InteractionKind::Note, at(5, 0), "a7")
            .handled_by(LI)
            .body("Replacement sent, call back Monday")
            .build()?,
    ];
    let report = crm.tenant(ACME).interactions().log_batch(acme_week).await?;
    println!(
        "Acme: logged {} interactions, skipped {} already stored",
        report.inserted, report.duplicates
    );

    // --- Tenant Beta: a service company, same engine, fully separate data -------------
    let ortiz = find_or_register(
        &crm,
        BETA,
        "ortiz",
        Customer::person("Rosa Ortiz")
            .email("rosa.ortiz@example.com")
            .phone("+1 212 555 0143")
            .lifecycle(Lifecycle::Lead)
            .external_id("quickstart", "ortiz")
            .build()?,
    )
    .await?;
    let beta_week = vec![
        i(
            &ortiz,
            Channel::Web,
            InteractionKind::ServiceRequest,
            at(0, 4),
            "b1",
        )
        .subject("Boiler service appointment")
        .build()?,
        i(&ortiz, Channel::Sms, InteractionKind::Email, at(1, 1), "b2")
            .direction(Direction::Outbound)
            .subject("Appointment confirmed for Thursday")
            .build()?,
        i(
            &ortiz,
            Channel::Visit,
            InteractionKind::Purchase,
            at(3, 2),
            "b3",
        )
        .amount(Money::parse("149.90", "USD")?)
        .subject("Annual service")
        .build()?,
        i(
            &ortiz,
            Channel::Phone,
            InteractionKind::Feedback,
            at(6, 3),
            "b4",
        )
        .subject("Rated the visit 5/5")
        .build()?,
    ];
    let report = crm.tenant(BETA).interactions().log_batch(beta_week).await?;
    println!(
        "Beta: logged {} interactions, skipped {} already stored\n",
        report.inserted, report.duplicates
    );

    for (tenant_name, tenant, customers) in [
        ("Acme", ACME, vec![&wang, &mueller]),
        ("Beta", BETA, vec![&ortiz]),
    ] {
        for c in customers {
            let p = crm.tenant(tenant).customers().profile(c.id).await?;
            println!(
                "[{tenant_name}] {} ({}, {})",
                c.name,
                c.lifecycle,
                c.primary_email().map(|e| e.as_str()).unwrap_or("-")
            );
            let revenue: Vec<String> = p
                .revenue
                .iter()
                .map(|(cur, amount)| format!("{amount} {cur}"))
                .collect();
            println!(
                "  profile: {} interactions, {} purchases, revenue [{}], {} complaints, last contact {}",
                p.interaction_count,
                p.purchase_count,
                revenue.join(", "),
                p.complaint_count,
                p.last_contact_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into()),
            );
            if let Some(owner) = c.owner {
                let last = p
                    .last_contact_by(owner)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "never".into());
                println!("  owner last in touch: {last}");
            }
            println!("  timeline (newest first):");
            let page = crm
                .tenant(tenant)
                .interactions()
                .timeline(c.id, &PageRequest::first(20))
                .await?;
            for it in page.items {
                let amount = it.amount.map(|m| format!(" {m}")).unwrap_or_default();
                println!(
                    "    {}  {:<8} {:<15} {:<9}{}  {}",
                    it.occurred_at.format("%a %d %b %H:%M"),
                    it.channel.as_str(),
                    it.kind.as_str(),
                    it.direction.as_str(),
                    amount,
                    it.subject.as_deref().or(it.body.as_deref()).unwrap_or(""),
                );
            }
            println!();
        }
    }
    // Tenants never see each other's customers.
    let acme_sees = crm
        .tenant(ACME)
        .customers()
        .search(&CustomerQuery::all(), &PageRequest::first(100))
        .await?
        .items
        .len();
    let beta_sees = crm
        .tenant(BETA)
        .customers()
        .search(&CustomerQuery::all(), &PageRequest::first(100))
        .await?
        .items
        .len();
    println!("Acme sees {acme_sees} customers, Beta sees {beta_sees}.");
    Ok(())
}
