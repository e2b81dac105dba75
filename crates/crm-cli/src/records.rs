//! Customers, timelines, the outbox and personal data: reading and the operator's chores.

use std::io::{IsTerminal, Write};

use crm::{
    Customer, CustomerId, CustomerQuery, EmailAddress, Lifecycle, MessageId, Page, PageRequest, Tag,
};
use serde_json::{json, Value};

use crate::db::{parse_user, user_label, Db, Failure};
use crate::output::{Format, Table};

/// Reads up to `limit` items, page after page.
pub async fn collect<T, F, Fut>(limit: u32, mut read: F) -> Result<Vec<T>, Failure>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = crm::Result<Page<T>>>,
{
    let mut items = Vec::new();
    let mut page = PageRequest::first(limit.clamp(1, PageRequest::MAX_LIMIT));
    loop {
        let got = read(page).await?;
        items.extend(got.items);
        let left = (limit as usize).saturating_sub(items.len());
        match got.next {
            Some(next) if left > 0 => {
                page = PageRequest::after(next, (left as u32).min(PageRequest::MAX_LIMIT));
            }
            _ => break,
        }
    }
    items.truncate(limit as usize);
    Ok(items)
}

/// The filters of `crm customers list`.
pub fn list_query(
    tag: Option<String>,
    owner: Option<String>,
    lifecycle: Option<String>,
) -> Result<CustomerQuery, Failure> {
    Ok(CustomerQuery {
        tag: tag.map(|t| Tag::parse_field(&t, "tag")).transpose()?,
        owner: owner.map(|o| parse_user(&o, "owner")).transpose()?,
        lifecycle: lifecycle
            .map(|l| {
                Lifecycle::parse(&l).map_err(|_| {
                    let all: Vec<&str> = Lifecycle::ALL.iter().map(|l| l.as_str()).collect();
                    Failure::new(format!(
                        "--lifecycle: {l:?} is not one of {}",
                        all.join(", ")
                    ))
                })
            })
            .transpose()?,
        ..CustomerQuery::all()
    })
}

/// `crm customers search TEXT`: by email when the text has an @, else by name prefix.
pub fn search_query(text: &str) -> Result<CustomerQuery, Failure> {
    if text.contains('@') {
        Ok(CustomerQuery {
            email: Some(EmailAddress::parse(text).map_err(|e| Failure::new(format!("{e}")))?),
            ..CustomerQuery::all()
        })
    } else {
        Ok(CustomerQuery {
            name_prefix: Some(text.to_string()),
            ..CustomerQuery::all()
        })
    }
}

/// A customer id from the command line.
fn customer_id(text: &str) -> Result<CustomerId, Failure> {
    CustomerId::parse_field(text, "id").map_err(Failure::from)
}

/// `crm customers list` and `search`.
pub async fn list(
    db: &Db,
    query: &CustomerQuery,
    limit: u32,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let customers = db.t().customers();
    let found = collect(limit, |page| {
        let customers = &customers;
        async move { customers.search(query, &page).await }
    })
    .await?;
    let mut table = Table::new(&["id", "name", "kind", "lifecycle", "owner", "email", "tags"]);
    for c in &found {
        table.push(customer_row(c));
    }
    table.write(format, out)?;
    Ok(())
}

fn customer_row(c: &Customer) -> Vec<Value> {
    let tags: Vec<&str> = c.tags.iter().map(|t| t.as_str()).collect();
    vec![
        c.id.to_string().into(),
        c.name.as_str().into(),
        format!("{:?}", c.kind).to_lowercase().into(),
        c.lifecycle.as_str().into(),
        c.owner.map(user_label).into(),
        c.emails.first().map(|e| e.as_str().to_string()).into(),
        tags.join(" ").into(),
    ]
}

/// `crm customers show ID`.
pub async fn show(db: &Db, id: &str, format: Format, out: &mut dyn Write) -> Result<(), Failure> {
    let id = customer_id(id)?;
    let customer = db.t().customers().get(id).await?;
    let profile = db.t().customers().profile(id).await?;
    if format == Format::Json {
        let doc = json!({ "customer": customer, "profile": profile });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(());
    }
    let revenue: Vec<String> = profile
        .revenue
        .iter()
        .map(|(currency, amount)| format!("{amount} {currency}"))
        .collect();
    let when = |t: Option<crm::chrono::DateTime<crm::chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
    };
    let mut table = Table::new(&["field", "value"]);
    let fields: Vec<(&str, Option<String>)> = vec![
        ("id", Some(customer.id.to_string())),
        ("name", Some(customer.name.as_str().to_string())),
        ("kind", Some(format!("{:?}", customer.kind).to_lowercase())),
        ("lifecycle", Some(customer.lifecycle.as_str().to_string())),
        ("owner", customer.owner.map(user_label)),
        (
            "emails",
            Some(
                customer
                    .emails
                    .iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ),
        (
            "phones",
            Some(
                customer
                    .phones
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ),
        (
            "tags",
            Some(
                customer
                    .tags
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ),
        ("created", when(Some(customer.created_at))),
        ("version", Some(customer.version.to_string())),
        ("interactions", Some(profile.interaction_count.to_string())),
        ("last contact", when(profile.last_contact_at)),
        ("purchases", Some(profile.purchase_count.to_string())),
        ("last purchase", when(profile.last_purchase_at)),
        ("revenue", Some(revenue.join(", "))),
        ("complaints", Some(profile.complaint_count.to_string())),
    ];
    for (field, value) in fields {
        table.push(vec![field.into(), value.into()]);
    }
    table.write(format, out)?;
    Ok(())
}

/// `crm timeline ID`.
pub async fn timeline(
    db: &Db,
    id: &str,
    limit: u32,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let id = customer_id(id)?;
    // A customer that does not exist is an error, not an empty timeline.
    db.t().customers().get(id).await?;
    let interactions = db.t().interactions();
    let items = collect(limit, |page| {
        let interactions = &interactions;
        async move { interactions.timeline(id, &page).await }
    })
    .await?;
    let mut table = Table::new(&[
        "when",
        "channel",
        "direction",
        "kind",
        "by",
        "amount",
        "subject",
    ]);
    for i in &items {
        table.push(vec![
            i.occurred_at.format("%Y-%m-%d %H:%M").to_string().into(),
            i.channel.as_str().into(),
            i.direction.as_str().into(),
            i.kind.as_str().into(),
            i.handled_by.map(user_label).into(),
            i.amount.as_ref().map(|m| m.to_string()).into(),
            i.subject.clone().into(),
        ]);
    }
    table.write(format, out)?;
    Ok(())
}

/// `crm outbox pending`.
pub async fn pending(db: &Db, out: &mut dyn Write) -> Result<(), Failure> {
    let n = db.crm.storage().pending_count(db.tenant).await?;
    writeln!(out, "{n} message(s) waiting to be sent")?;
    Ok(())
}

/// `crm outbox dead`.
pub async fn dead(db: &Db, limit: u32, format: Format, out: &mut dyn Write) -> Result<(), Failure> {
    let notifications = db.t().notifications();
    let items = collect(limit, |page| {
        let notifications = &notifications;
        async move { notifications.dead_letters(&page).await }
    })
    .await?;
    let mut table = Table::new(&["id", "template", "attempts", "enqueued", "last_error"]);
    for m in &items {
        table.push(vec![
            m.id.to_string().into(),
            m.notification.template.as_str().into(),
            m.attempts.into(),
            m.enqueued_at.format("%Y-%m-%d %H:%M").to_string().into(),
            m.last_error.clone().into(),
        ]);
    }
    table.write(format, out)?;
    Ok(())
}

/// `crm outbox requeue ID`.
pub async fn requeue(db: &Db, id: &str, out: &mut dyn Write) -> Result<(), Failure> {
    let id = MessageId::parse_field(id, "id")?;
    db.t().notifications().requeue(id).await?;
    writeln!(out, "requeued {id}")?;
    Ok(())
}

/// `crm privacy export ID`.
pub async fn export(db: &Db, id: &str, out: &mut dyn Write) -> Result<(), Failure> {
    let export = db.t().privacy().export(customer_id(id)?).await?;
    serde_json::to_writer_pretty(&mut *out, &export)?;
    writeln!(out)?;
    Ok(())
}

/// `crm privacy erase ID`: asks on the terminal unless `yes`; refuses without a terminal.
pub async fn erase(db: &Db, id: &str, yes: bool, out: &mut dyn Write) -> Result<(), Failure> {
    let customer = db.t().customers().get(customer_id(id)?).await?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::new(
                "erasure asks for confirmation on a terminal: pass --yes to erase without asking",
            ));
        }
        let question = format!(
            "Erase the personal data of {} ({})? This cannot be undone. Type yes: ",
            customer.name, customer.id
        );
        let answer = tokio::task::spawn_blocking(move || {
            eprint!("{question}");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await
        .map_err(|e| Failure::new(e.to_string()))??;
        if answer.trim() != "yes" {
            return Err(Failure::new("not erased"));
        }
    }
    let erased = db
        .t()
        .privacy()
        .erase(customer.id, customer.version)
        .await?;
    writeln!(out, "erased {} (now {:?})", erased.id, erased.name.as_str())?;
    Ok(())
}
