//! Notifications: a follow-up reminder for a customer's owner and a KPI-breach notice for
//! the owner's team lead go into the outbox, and a dispatcher delivers them. Domain events
//! are on: registering the customer and handing it to its owner (which also queues the
//! reminder, in the same transaction) publish events, written as JSON lines to standard
//! output by the example sink.
//!
//! `cargo run --example notify -- --smtp HOST:PORT` sends them to a local SMTP server
//! (unencrypted: for a development server such as `python3 -m aiosmtpd -n -l
//! localhost:2525`); without `--smtp` a recording notifier keeps them, and a table of
//! what was delivered to whom ends the run.
//!
//! Standard output holds only the events, one JSON object per line, for other programs;
//! everything for a person (what happened, the table) goes to standard error.

use std::sync::Arc;

use chrono::Duration;
use crm_core::notify::{
    Dispatcher, JsonLinesSink, Notification, Notifier, Priority, Recipient, RecordingNotifier,
    StaffMember, StaticDirectory,
};
use crm_core::{
    Crm, Customer, EmailAddress, Lifecycle, SystemClock, TeamId, TenantId, Transfer, UserId,
};
use crm_email::{SmtpConfig, SmtpNotifier, TemplateParts, Templates};
use crm_sqlite::SqliteStore;

fn templates() -> crm_core::Result<Templates> {
    let mut t = Templates::new();
    t.add(
        None,
        "reminder.follow_up",
        None,
        TemplateParts::new(
            "Follow up with {{ customer }}",
            "Hello {{ recipient.name }},\n\nplease contact {{ customer }} by {{ due }}: {{ note }}",
        )
        .html("<p>Hello {{ recipient.name }},</p><p>please contact <b>{{ customer }}</b> by {{ due }}: {{ note }}</p>"),
    )?;
    t.add(
        None,
        "kpi.breach",
        None,
        TemplateParts::new(
            "Service standard breached: {{ rule }}",
            "{{ rule }} was breached for {{ customer }} ({{ assignee }}): {{ detail }}.",
        ),
    )?;
    t.add(
        None,
        "kpi.breach",
        Some("zh"),
        TemplateParts::new(
            "服务标准未达成：{{ rule }}",
            "{{ customer }}（负责人 {{ assignee }}）：{{ detail }}。",
        ),
    )?;
    Ok(t)
}

/// The SMTP notifier for `--smtp HOST:PORT`, or (without it) a recording one whose
/// messages are listed at the end.
fn notifier(
    smtp: Option<&str>,
    recorder: &Arc<RecordingNotifier>,
) -> Result<Arc<dyn Notifier>, Box<dyn std::error::Error>> {
    let Some(address) = smtp else {
        eprintln!("no --smtp given: keeping the messages instead of sending them");
        return Ok(recorder.clone());
    };
    let (host, port) = address.rsplit_once(':').ok_or("--smtp wants HOST:PORT")?;
    let config = SmtpConfig::plain_dangerous(host, port.parse()?, "CRM", "crm@example.com")?;
    eprintln!("sending through the SMTP server at {host}:{port}");
    Ok(Arc::new(SmtpNotifier::new(config, templates()?)?))
}

/// The delivered notifications as a table for a person.
fn delivered(recorder: &RecordingNotifier) {
    let sent = recorder.sent();
    if sent.is_empty() {
        return;
    }
    eprintln!("\n{:<20} {:<8} {:<6} to", "template", "priority", "locale");
    for (_, envelope) in sent {
        let n = &envelope.notification;
        let to = match (&envelope.to.name, &envelope.to.email) {
            (Some(name), Some(email)) => format!("{name} <{}>", email.as_str()),
            (None, Some(email)) => email.as_str().to_string(),
            (name, None) => name.clone().unwrap_or_default(),
        };
        eprintln!(
            "{:<20} {:<8} {:<6} {to}",
            n.template.as_str(),
            format!("{:?}", n.priority).to_lowercase(),
            envelope.locale().map_or("-", |l| l.as_str()),
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: notify [--smtp HOST:PORT]\n\n\
             Queues notifications and domain events for a customer hand-over and a KPI breach,\n\
             then dispatches them: to the SMTP server at HOST:PORT (plain, for a local test\n\
             server), or, without --smtp, kept and listed in a table.\n\n\
             Stdout: the domain events, one JSON object per line. Stderr: what happened, for\n\
             a person."
        );
        return Ok(());
    }
    let smtp = args
        .iter()
        .position(|a| a == "--smtp")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);

    let store = Arc::new(SqliteStore::open_in_memory()?);
    let crm = Crm::new(store.clone()).with_events(true);
    let tenant = TenantId::new();
    let (owner, lead) = (UserId::new(), UserId::new());
    let directory = Arc::new(StaticDirectory::new());
    let team = TeamId::new();
    directory.insert(
        tenant,
        StaffMember {
            id: owner,
            name: "Sarah Klein".into(),
            email: EmailAddress::parse("sarah@example.com")?,
            locale: None,
            team: Some(team),
            team_lead: Some(lead),
        },
    );
    directory.insert(
        tenant,
        StaffMember {
            id: lead,
            name: "李娜".into(),
            email: EmailAddress::parse("li.na@example.com")?,
            locale: Some(crm_core::notify::Locale::parse("zh-CN")?),
            team: Some(team),
            team_lead: None,
        },
    );
    let customer = crm
        .tenant(tenant)
        .customers()
        .register(
            Customer::organization("Müller Maschinenbau GmbH")
                .email("einkauf@mueller.example")
                .lifecycle(Lifecycle::Active)
                .build()?,
        )
        .await?;

    let due = (chrono::Utc::now() + Duration::days(2)).format("%Y-%m-%d");
    let reminder = Notification::builder(
        Recipient::User(owner),
        "reminder.follow_up",
        &format!("reminder:{}:1", customer.id),
    )
    .data(serde_json::json!({
        "customer": customer.name.as_str(),
        "due": due.to_string(),
        "note": "quarterly review of the service contract",
    }))
    .priority(Priority::High)
    .build()?;
    // The transfer and the reminder to the new owner commit together.
    let transfer = Transfer {
        new_owner: Some(owner),
        expected_version: customer.version,
        actor: None,
        reason: Some("key account"),
    };
    let customer = crm
        .tenant(tenant)
        .customers()
        .change_owner_notifying(customer.id, transfer, vec![reminder])
        .await?;
    let breach = Notification::builder(
        Recipient::TeamLeadOf(owner),
        "kpi.breach",
        &format!("kpi:complaint-reply-24h:{}", customer.id),
    )
    .data(serde_json::json!({
        "rule": "reply to a complaint within 24 hours",
        "customer": customer.name.as_str(),
        "assignee": "Sarah Klein",
        "detail": "no reply after 26 business hours",
    }))
    .priority(Priority::Urgent)
    .build()?;
    crm.tenant(tenant)
        .notifications()
        .enqueue(vec![breach])
        .await?;
    eprintln!(
        "queued {} messages (notifications and events) for {}",
        crm.storage().pending_count(tenant).await?,
        customer.name
    );

    let recorder = Arc::new(RecordingNotifier::new());
    let dispatcher = Dispatcher::new(
        tenant,
        store.clone(),
        notifier(smtp, &recorder)?,
        directory,
        Arc::new(SystemClock),
    )
    .with_event_sink(Arc::new(JsonLinesSink::new(std::io::stdout())));
    let mut report = dispatcher.run_once(chrono::Utc::now()).await?;
    // Events of one customer go out one at a time, in order: a few rounds.
    loop {
        let round = dispatcher.run_once(chrono::Utc::now()).await?;
        if round.claimed == 0 {
            break;
        }
        report += round;
    }
    eprintln!(
        "dispatched: {} sent, {} to retry, {} dead letters",
        report.sent, report.retried, report.dead
    );
    for dead in crm
        .tenant(tenant)
        .notifications()
        .dead_letters(&crm_core::PageRequest::first(10))
        .await?
        .items
    {
        eprintln!(
            "dead letter {}: {}",
            dead.notification.idempotency_key,
            dead.last_error.unwrap_or_default()
        );
    }
    if report.retried > 0 {
        eprintln!("the server did not take every message; they stay queued for a later run");
    }
    delivered(&recorder);
    Ok(())
}
