//! `crm segment`: customer segments by rule text.

use std::collections::BTreeMap;
use std::io::Write;
use std::str::FromStr;

use crm::segment::{parse, AttrType, FieldSchema, Membership, Segment};
use crm::{Currency, CustomerId, PageRequest, SegmentId};
use serde_json::Value;

use crate::db::{Db, Failure};
use crate::output::{Format, Table};

/// What a rule may refer to: the built-in fields, money in `currency`, and the custom
/// attributes named as `key=type`.
pub fn schema(currency: &str, attributes: &[String]) -> Result<FieldSchema, Failure> {
    let currency = Currency::from_str(currency)
        .map_err(|_| Failure::new(format!("--currency: {currency:?} is not an ISO 4217 code")))?;
    let mut schema = FieldSchema::new(currency);
    for a in attributes {
        let (key, ty) = a.split_once('=').ok_or_else(|| {
            Failure::new(format!(
                "--attribute: {a:?} is not key=type (for example vat_id=text)"
            ))
        })?;
        let ty: AttrType = serde_json::from_value(Value::String(ty.to_string())).map_err(|_| {
            Failure::new(format!(
                "--attribute: {ty:?} is not one of text, number, bool, date, money, text_list"
            ))
        })?;
        schema = schema.with_attribute(key, ty);
    }
    Ok(schema)
}

/// Parses and checks rule text, with the position of what is wrong.
fn rule(text: &str, schema: &FieldSchema) -> Result<crm::segment::Rule, Failure> {
    let rule = parse(text).map_err(|e| Failure::new(format!("rule: {e}")))?;
    schema
        .check(&rule)
        .map_err(|e| Failure::new(format!("rule: {e}")))?;
    Ok(rule)
}

/// The segment a name or an id names.
async fn find(db: &Db, which: &str) -> Result<Segment, Failure> {
    if let Ok(id) = SegmentId::from_str(which) {
        return Ok(db.t().segments().get(id).await?);
    }
    db.t()
        .segments()
        .list()
        .await?
        .into_iter()
        .find(|s| s.name.as_str() == which)
        .ok_or_else(|| {
            Failure::new(format!(
                "no segment named {which:?} (`crm segment list` shows them)"
            ))
        })
}

/// Customers' names, by id, for a table of members.
async fn named(db: &Db, ids: &[CustomerId]) -> Result<Table, Failure> {
    // One batch read (the adapters answer it in one statement), not one read per id.
    let names: BTreeMap<CustomerId, String> = db
        .crm
        .storage()
        .get_customers(db.tenant, ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name.to_string()))
        .collect();
    let mut table = Table::new(&["id", "name"]);
    for id in ids {
        table.push(vec![id.to_string().into(), names.get(id).cloned().into()]);
    }
    Ok(table)
}

/// `crm segment list`.
pub async fn list(db: &Db, format: Format, out: &mut dyn Write) -> Result<(), Failure> {
    let mut table = Table::new(&["id", "name", "rule"]);
    for s in db.t().segments().list().await? {
        let rule = match &s.membership {
            Membership::Dynamic { rule } => rule.to_string(),
            Membership::Static => "(static)".to_string(),
        };
        table.push(vec![
            s.id.to_string().into(),
            s.name.as_str().into(),
            rule.into(),
        ]);
    }
    table.write(format, out)?;
    Ok(())
}

/// `crm segment preview RULE`.
pub async fn preview(
    db: &Db,
    text: &str,
    schema: &FieldSchema,
    limit: u32,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let rule = rule(text, schema)?;
    let page = PageRequest::first(limit.clamp(1, PageRequest::MAX_LIMIT));
    let (count, first) = db.t().segments().preview(&rule, schema, &page).await?;
    let table = named(db, &first.items).await?;
    if format == Format::Table {
        if count == 0 {
            writeln!(out, "no customer matches")?;
            return Ok(());
        }
        writeln!(
            out,
            "{count} customer(s) match; the first {}:",
            first.items.len()
        )?;
    }
    table.write(format, out)?;
    Ok(())
}

/// `crm segment create NAME RULE`: stores the segment and fills it.
pub async fn create(
    db: &Db,
    name: &str,
    text: &str,
    schema: &FieldSchema,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let rule = rule(text, schema)?;
    let segment = Segment::dynamic(name, rule).map_err(|e| Failure::new(format!("name: {e}")))?;
    let created = db.t().segments().create(segment, schema).await?;
    let change = db.t().segments().refresh(created.id, schema).await?;
    writeln!(
        out,
        "created segment {} ({}) with {} member(s)",
        created.name, created.id, change.members
    )?;
    Ok(())
}

/// `crm segment refresh NAME`: evaluates the rule again; who entered and who left.
pub async fn refresh(
    db: &Db,
    which: &str,
    schema: &FieldSchema,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let segment = find(db, which).await?;
    let change = db.t().segments().refresh(segment.id, schema).await?;
    writeln!(
        out,
        "{}: {} entered, {} left, {} member(s)",
        segment.name,
        change.entered.len(),
        change.left.len(),
        change.members
    )?;
    Ok(())
}

/// `crm segment members NAME`.
pub async fn members(
    db: &Db,
    which: &str,
    limit: u32,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let segment = find(db, which).await?;
    let segments = db.t().segments();
    let ids = crate::records::collect(limit, |page| {
        let segments = &segments;
        async move { segments.members(segment.id, &page).await }
    })
    .await?;
    named(db, &ids).await?.write(format, out)?;
    Ok(())
}
