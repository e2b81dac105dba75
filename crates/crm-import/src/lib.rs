//! # crm-import
//!
//! CSV import of customers and interactions into a tenant ([`TenantCrm`]), streaming: rows are read one by
//! one through a column mapping, each is checked on its own, valid rows are written in
//! batches, and every rejected row is reported with its line number, the column at fault
//! and the reason. Invalid rows are never written. Importing the same file again changes
//! nothing: customers are matched by their id in the source system (and the natural keys
//! you name), interactions by their idempotency key.
//!
//! ```no_run
//! # async fn demo(acme: crm_core::TenantCrm) -> crm_core::Result<()> {
//! use crm_import::{import_customers, CustomerMapping, ImportOptions};
//!
//! let mapping = CustomerMapping::new("erp", "customer_no")
//!     .name("name")
//!     .email("email")
//!     .phone("phone");
//! let file = std::fs::File::open("customers.csv").expect("the file");
//! let report = import_customers(&acme, file, &mapping, &ImportOptions::default(), |p| {
//!     eprintln!("{} rows read, {} rejected", p.rows, p.rejected);
//! })
//! .await?;
//! for r in &report.rejected {
//!     eprintln!("line {}: {}: {}", r.line, r.column, r.reason);
//! }
//! # Ok(()) }
//! ```
//!
//! ## Why these dependencies
//!
//! - `csv`: the maintained streaming CSV reader (quoting, embedded newlines, byte
//!   positions for progress), so no hand-written parser.
//! - `crm-core`, `chrono`, `rust_decimal`, `serde`: the domain types the rows become.
//! - `tokio` (`rt`, `sync`): the input is read on tokio's blocking pool and handed to the
//!   import through a bounded channel, so a blocking reader never holds an executor
//!   thread; the import therefore runs inside a tokio runtime.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod progress;
mod rows;

use std::collections::HashMap;
use std::io::Read;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use crm_core::segment::AttrType;
use crm_core::sync::{NaturalKey, SourceFields, SyncOutcome};
use crm_core::{
    AttrKey, AttrValue, Channel, CustomerId, CustomerQuery, Direction, DisplayName, EmailAddress,
    Error, Interaction, InteractionKind, Lifecycle, Money, PageRequest, PartyKind, PhoneNumber,
    Result, Tag, TenantCrm,
};
use rust_decimal::Decimal;

use crate::rows::Rows;
use serde::{Deserialize, Serialize};

mod mapping;
pub use mapping::{AttributeColumn, CustomerMapping, ImportOptions, InteractionMapping};

/// A row that was not written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// Its line in the file (the header is line 1).
    pub line: u64,
    /// The column at fault (or `(row)` when the row itself could not be read).
    pub column: String,
    /// Why.
    pub reason: String,
}

/// How far an import has got, passed to the progress callback after every batch and once
/// more at the end (`done`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Data rows read so far.
    pub rows: u64,
    /// Bytes of the file read so far.
    pub bytes: u64,
    /// Rows written (or found already there) so far.
    pub committed: u64,
    /// Rows rejected so far.
    pub rejected: u64,
    /// Whether this is the last call (the whole file is read and written).
    pub done: bool,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Data rows read.
    pub rows: u64,
    /// Customers registered.
    pub created: u64,
    /// Customers changed.
    pub updated: u64,
    /// Rows that matched a customer already holding everything they say.
    pub unchanged: u64,
    /// Interactions stored.
    pub inserted: u64,
    /// Interactions already stored under the same key.
    pub duplicates: u64,
    /// Rows not written, in file order (and rows whose company could not be linked).
    pub rejected: Vec<Rejected>,
    /// Organisations registered for the company column.
    pub accounts: u64,
    /// People related to their company's organisation.
    pub relationships: u64,
}

impl ImportReport {
    /// Where the import stands after `bytes` of the file.
    fn progress(&self, bytes: u64, done: bool) -> Progress {
        Progress {
            rows: self.rows,
            bytes,
            committed: self.created
                + self.updated
                + self.unchanged
                + self.inserted
                + self.duplicates,
            rejected: self.rejected.len() as u64,
            done,
        }
    }
}

/// The header's column positions, after checking that every mapped column is there.
fn positions(
    headers: &csv::StringRecord,
    columns: &[(&'static str, &str)],
) -> Result<HashMap<String, usize>> {
    let mut out = HashMap::new();
    for (field, column) in columns {
        let at = headers
            .iter()
            .position(|h| h.trim() == *column)
            .ok_or_else(|| {
                Error::validation(
                    format!("mapping.{field}"),
                    format!("no column {column:?} in the header"),
                )
            })?;
        out.insert(column.to_string(), at);
    }
    Ok(out)
}

/// One row's cells by column name.
struct Row<'a> {
    record: &'a csv::StringRecord,
    at: &'a HashMap<String, usize>,
}

impl Row<'_> {
    /// The trimmed cell of `column`, `None` when empty or missing.
    fn get(&self, column: &str) -> Option<&str> {
        self.at
            .get(column)
            .and_then(|&i| self.record.get(i))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    fn required(&self, column: &str) -> std::result::Result<&str, Rejection> {
        self.get(column)
            .ok_or_else(|| Rejection::new(column, "is empty"))
    }
}

/// Why a row is refused, before its line number is known.
struct Rejection {
    column: String,
    reason: String,
}

impl Rejection {
    fn new(column: &str, reason: impl Into<String>) -> Self {
        Rejection {
            column: column.to_string(),
            reason: reason.into(),
        }
    }

    /// A value error, named by the column (the error's own field is the domain's name).
    fn from_error(column: &str, e: Error) -> Self {
        match e {
            Error::Validation { reason, .. } => Rejection::new(column, reason),
            other => Rejection::new(column, other.to_string()),
        }
    }

    fn at(self, line: u64) -> Rejected {
        Rejected {
            line,
            column: self.column,
            reason: self.reason,
        }
    }
}

fn attribute(cell: &str, ty: &AttrType) -> std::result::Result<AttrValue, String> {
    match ty {
        AttrType::Text => Ok(AttrValue::Text(cell.to_string())),
        AttrType::Number => Decimal::from_str(cell)
            .map(AttrValue::Number)
            .map_err(|e| format!("not a number: {e}")),
        AttrType::Bool => match cell {
            "true" => Ok(AttrValue::Bool(true)),
            "false" => Ok(AttrValue::Bool(false)),
            _ => Err("must be true or false".to_string()),
        },
        AttrType::Date => NaiveDate::parse_from_str(cell, "%Y-%m-%d")
            .map(AttrValue::Date)
            .map_err(|e| format!("not a YYYY-MM-DD date: {e}")),
        other => Err(format!("attributes of type {other:?} cannot be imported")),
    }
}

/// A customer row as the source record it says, each cell checked.
/// A person's company as a row names it: its key ([`company_key`]) and its name.
type Company = Option<(String, String)>;

/// A valid customer row: its line, its external id and fields, and its company.
type CustomerRow = (u64, (String, SourceFields), Company);

/// The external id an organisation named in the company column is registered under: its
/// words in lower case, one space apart, after `company:`.
pub fn company_key(name: &str) -> String {
    let words: Vec<String> = name.split_whitespace().map(str::to_lowercase).collect();
    format!("company:{}", words.join(" "))
}

fn customer_row(
    row: &Row<'_>,
    m: &CustomerMapping,
) -> std::result::Result<((String, SourceFields), Company), Rejection> {
    let external_id = row.required(&m.external_id)?.to_string();
    crm_core::ExternalRef::new(&m.source, &external_id)
        .map_err(|e| Rejection::from_error(&m.external_id, e))?;
    let mut fields = SourceFields::default();
    if let Some(c) = &m.name {
        if let Some(v) = row.get(c) {
            DisplayName::parse(v).map_err(|e| Rejection::from_error(c, e))?;
            fields.name = Some(v.to_string());
        }
    }
    if let Some(c) = &m.kind {
        if let Some(v) = row.get(c) {
            fields.kind = Some(PartyKind::parse(v).map_err(|e| Rejection::from_error(c, e))?);
        }
    }
    for c in &m.emails {
        if let Some(v) = row.get(c) {
            EmailAddress::parse(v).map_err(|e| Rejection::from_error(c, e))?;
            fields.emails.push(v.to_string());
        }
    }
    for c in &m.phones {
        if let Some(v) = row.get(c) {
            PhoneNumber::parse(v).map_err(|e| Rejection::from_error(c, e))?;
            fields.phones.push(v.to_string());
        }
    }
    if let Some(c) = &m.lifecycle {
        if let Some(v) = row.get(c) {
            fields.lifecycle = Some(Lifecycle::parse(v).map_err(|e| Rejection::from_error(c, e))?);
        }
    }
    if let Some(c) = &m.tags {
        if let Some(v) = row.get(c) {
            for t in v.split(';').map(str::trim).filter(|t| !t.is_empty()) {
                Tag::parse(t).map_err(|e| Rejection::from_error(c, e))?;
                fields.tags.push(t.to_string());
            }
        }
    }
    for a in &m.attributes {
        if let Some(v) = row.get(&a.column) {
            let value = attribute(v, &a.ty).map_err(|r| Rejection::new(&a.column, r))?;
            crm_core::Attributes::new()
                .with(a.key.as_str(), value.clone())
                .map_err(|e| Rejection::from_error(&a.column, e))?;
            fields.attributes.push((a.key.as_str().to_string(), value));
        }
    }
    let mut company = None;
    if let Some(c) = &m.company {
        if let Some(v) = row.get(c) {
            let name = DisplayName::parse(v).map_err(|e| Rejection::from_error(c, e))?;
            let key = company_key(name.as_str());
            crm_core::ExternalRef::new(&m.source, &key).map_err(|e| Rejection::from_error(c, e))?;
            company = Some((key, name.as_str().to_string()));
        }
    }
    Ok(((external_id, fields), company))
}

fn instant(cell: &str) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(cell) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(cell, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| "not an RFC 3339 instant or a YYYY-MM-DD date".to_string())
}

/// The validation error's record index, when it names one (`records[3]...`).
fn record_index(e: &Error) -> Option<usize> {
    let Error::Validation { field, .. } = e else {
        return None;
    };
    field
        .strip_prefix("records[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(n, _)| n.parse().ok())
}

/// Imports customers: each valid row is matched by external id (then by the mapping's
/// natural keys) and creates or updates one customer; new customers of a batch are
/// registered in one transaction. Rows naming the same customer are applied in file order.
///
/// With a company column ([`CustomerMapping::company`]), each person's company becomes
/// their account after the batch is written: the organisation is found by its key
/// ([`company_key`]) in the mapping's source, or registered under it, and the person is
/// related to it (their primary account unless they have one; an existing relationship is
/// left as it is). These are transactions of their own: a row whose link the core refuses
/// is reported with the company column (the person stays written), and running the
/// import again finishes what an interrupted run left.
///
/// `input` is read on tokio's blocking pool, a few hundred rows ahead of the writes, so it
/// must be `Send + 'static` (a `File`, a `Cursor<Vec<u8>>`, a `&'static [u8]`) and the
/// call must run inside a tokio runtime. A read error mid-file stops the import with
/// [`Error::Io`]; the report is never returned as if the file had ended.
///
/// # Errors
///
/// [`Error::Validation`] before anything is read when the mapping names a column the
/// header lacks (field `mapping.<what>`) or the options are out of range; storage errors
/// stop the import (batches already written stay written; run it again to finish: done
/// rows change nothing).
pub async fn import_customers<R: Read + Send + 'static>(
    crm: &TenantCrm,
    input: R,
    mapping: &CustomerMapping,
    options: &ImportOptions,
    mut progress: impl FnMut(&Progress),
) -> Result<ImportReport> {
    let mut rows = Rows::open(input, options, &mapping.columns()).await?;
    let mut report = ImportReport::default();
    let mut batch: Vec<CustomerRow> = Vec::new();
    loop {
        let read = rows.next().await?;
        let done = read.is_none();
        if let Some(read) = read {
            report.rows += 1;
            match read.next.and_then(|line| {
                customer_row(
                    &Row {
                        record: &read.record,
                        at: &rows.at,
                    },
                    mapping,
                )
                .map(|(r, company)| (line, r, company))
                .map_err(|r| r.at(line))
            }) {
                Ok(row) => batch.push(row),
                Err(rejected) => report.rejected.push(rejected),
            }
        }
        if batch.len() >= options.batch_size || (done && !batch.is_empty()) {
            write_customers(crm, mapping, std::mem::take(&mut batch), &mut report).await?;
            progress(&report.progress(rows.byte, false));
        }
        if done {
            break;
        }
    }
    progress(&report.progress(rows.byte, true));
    report.rejected.sort_by_key(|r| r.line);
    Ok(report)
}

/// Writes one batch; a row the core refuses (for example a new customer without a name)
/// is reported and the rest written without it.
///
/// The core checks records in order and names the first it refuses, having accepted every
/// one before it: those are written as they are, the refused one is reported, and the
/// rows after it are tried next. Each row is checked at most twice, however many are
/// refused (no retry of the whole batch per refusal).
async fn write_customers(
    crm: &TenantCrm,
    mapping: &CustomerMapping,
    batch: Vec<CustomerRow>,
    report: &mut ImportReport,
) -> Result<()> {
    let mut rest: &[CustomerRow] = &batch;
    // After a refusal of record `i > 0`: the records before it, known to be accepted, are
    // written next, then the refused one is reported with this error.
    let mut refused: Option<(usize, Error)> = None;
    while !rest.is_empty() {
        let take = refused.as_ref().map_or(rest.len(), |(i, _)| *i);
        let records: Vec<(String, SourceFields)> =
            rest[..take].iter().map(|(_, r, _)| r.clone()).collect();
        match crm
            .sources()
            .upsert_batch(&mapping.source, &records, &mapping.natural_keys)
            .await
        {
            Ok(outcomes) => {
                for ((line, _, company), o) in rest[..take].iter().zip(&outcomes) {
                    if let Some((key, name)) = company {
                        let person = o.customer();
                        if let Err(e) = link_company(crm, mapping, key, name, person, report).await
                        {
                            let column = mapping.company.clone().unwrap_or_default();
                            report.rejected.push(Rejected {
                                line: *line,
                                column,
                                reason: e.to_string(),
                            });
                        }
                    }
                }
                for o in outcomes {
                    match o {
                        SyncOutcome::Created(_) => report.created += 1,
                        SyncOutcome::Updated(_) => report.updated += 1,
                        SyncOutcome::Unchanged(_) => report.unchanged += 1,
                    }
                }
                rest = &rest[take..];
                if let Some((_, e)) = refused.take() {
                    reject_customer(mapping, rest[0].0, &e, report);
                    rest = &rest[1..];
                }
            }
            Err(e) => match record_index(&e) {
                Some(0) => {
                    refused = None;
                    reject_customer(mapping, rest[0].0, &e, report);
                    rest = &rest[1..];
                }
                // Each try is shorter than the last or moves on: this ends.
                Some(i) if i < take => refused = Some((i, e)),
                _ => return Err(e),
            },
        }
    }
    Ok(())
}

/// Makes the organisation `name` (registered under `key` of the mapping's source unless
/// found there, keeping the spelling it was registered with) the account of `person`: related unless it is already, and its primary
/// account unless it has one. A row of an organisation is left alone. Errors: the core's
/// (the person written; the row is reported with them).
async fn link_company(
    crm: &TenantCrm,
    mapping: &CustomerMapping,
    key: &str,
    name: &str,
    person: &crm_core::Customer,
    report: &mut ImportReport,
) -> Result<()> {
    if person.kind != PartyKind::Person {
        return Ok(());
    }
    // Found as first registered (another spelling in a later row does not rename it).
    let query = crm_core::CustomerQuery {
        external_id: Some(crm_core::ExternalRef::new(&mapping.source, key)?),
        ..crm_core::CustomerQuery::default()
    };
    let found = crm
        .customers()
        .search(&query, &crm_core::PageRequest::first(1))
        .await?;
    let org = match found.items.into_iter().next() {
        Some(org) => org,
        None => {
            let fields = SourceFields {
                name: Some(name.to_string()),
                kind: Some(PartyKind::Organization),
                ..SourceFields::default()
            };
            match crm
                .sources()
                .upsert(&mapping.source, key, &fields, &[])
                .await?
            {
                SyncOutcome::Created(c) => {
                    report.accounts += 1;
                    c
                }
                SyncOutcome::Updated(c) | SyncOutcome::Unchanged(c) => c,
            }
        }
    };
    let accounts = crm.accounts();
    let mut page = crm_core::PageRequest::first(crm_core::sales::MAX_ACCOUNTS_PER_PERSON as u32);
    let mut primary = false;
    loop {
        let got = accounts.accounts_of(person.id, &page).await?;
        if got.items.iter().any(|r| r.organization == org.id) {
            return Ok(());
        }
        primary |= got.items.iter().any(|r| r.primary);
        match got.next {
            Some(next) => page = crm_core::PageRequest::after(next, page.limit),
            None => break,
        }
    }
    let mut link = crm_core::sales::Relationship::new(org.id, person.id, crm.crm().now());
    link.primary = !primary;
    accounts.relate(link).await?;
    report.relationships += 1;
    Ok(())
}

/// Reports the row at `line` as refused by the core with `e`.
fn reject_customer(mapping: &CustomerMapping, line: u64, e: &Error, report: &mut ImportReport) {
    let (column, reason) = match e {
        Error::Validation { field, reason } => (customer_column(mapping, field), reason.clone()),
        other => ("(row)".to_string(), other.to_string()),
    };
    report.rejected.push(Rejected {
        line,
        column,
        reason,
    });
}

/// The column behind a core field path like `records[3].fields.name`.
fn customer_column(m: &CustomerMapping, field: &str) -> String {
    let tail = field.split(".fields.").nth(1).unwrap_or(field);
    let name = tail.split(['[', '.']).next().unwrap_or(tail);
    let column = match name {
        "name" => m.name.clone(),
        "kind" => m.kind.clone(),
        "lifecycle" => m.lifecycle.clone(),
        "tags" => m.tags.clone(),
        "emails" => m.emails.first().cloned(),
        "phones" => m.phones.first().cloned(),
        _ => None,
    };
    column.unwrap_or_else(|| tail.to_string())
}

/// Imports interactions: each valid row becomes one interaction of the customer whose id
/// in `customer_source` the row names, keyed by the row's own id (so a second run stores
/// nothing new); valid rows are logged in batches, each batch one transaction with its
/// profile updates.
///
/// # Errors
///
/// As [`import_customers`].
pub async fn import_interactions<R: Read + Send + 'static>(
    crm: &TenantCrm,
    input: R,
    mapping: &InteractionMapping,
    options: &ImportOptions,
    mut progress: impl FnMut(&Progress),
) -> Result<ImportReport> {
    let mut rows = Rows::open(input, options, &mapping.columns()).await?;
    let mut report = ImportReport::default();
    let mut customers: HashMap<String, Option<CustomerId>> = HashMap::new();
    let mut batch: Vec<Interaction> = Vec::new();
    loop {
        let read = rows.next().await?;
        let done = read.is_none();
        if let Some(read) = read {
            report.rows += 1;
            let row = match read.next {
                Ok(line) => {
                    let row = Row {
                        record: &read.record,
                        at: &rows.at,
                    };
                    interaction_row(crm, &row, mapping, &mut customers)
                        .await?
                        .map_err(|r| r.at(line))
                }
                Err(rejected) => Err(rejected),
            };
            match row {
                Ok(i) => batch.push(i),
                Err(rejected) => report.rejected.push(rejected),
            }
        }
        if batch.len() >= options.batch_size || (done && !batch.is_empty()) {
            let written = crm
                .interactions()
                .log_batch(std::mem::take(&mut batch))
                .await?;
            report.inserted += written.inserted as u64;
            report.duplicates += written.duplicates as u64;
            progress(&report.progress(rows.byte, false));
        }
        if done {
            break;
        }
    }
    progress(&report.progress(rows.byte, true));
    Ok(report)
}

/// An interaction row as an interaction, each cell checked; the outer `Err` is a storage
/// failure while looking up the customer.
async fn interaction_row(
    crm: &TenantCrm,
    row: &Row<'_>,
    m: &InteractionMapping,
    customers: &mut HashMap<String, Option<CustomerId>>,
) -> Result<std::result::Result<Interaction, Rejection>> {
    let checked = (|| {
        let external_id = row.required(&m.external_id)?;
        let customer = row.required(&m.customer)?;
        let channel = Channel::parse(row.required(&m.channel)?)
            .map_err(|e| Rejection::from_error(&m.channel, e))?;
        let kind = InteractionKind::parse(row.required(&m.kind)?)
            .map_err(|e| Rejection::from_error(&m.kind, e))?;
        let direction = match &m.direction {
            Some(c) => row
                .get(c)
                .map(|v| Direction::parse(v).map_err(|e| Rejection::from_error(c, e)))
                .transpose()?,
            None => None,
        };
        let at = instant(row.required(&m.occurred_at)?)
            .map_err(|r| Rejection::new(&m.occurred_at, r))?;
        let amount = match &m.amount {
            Some((a, c)) => match (row.get(a), row.get(c)) {
                (None, None) => None,
                (Some(value), Some(code)) => Some(Money::parse(value, code).map_err(|e| {
                    // The error names `currency` or `amount`: point at that column.
                    let column = match &e {
                        Error::Validation { field, .. } if field == "currency" => c,
                        _ => a,
                    };
                    Rejection::from_error(column, e)
                })?),
                (Some(_), None) => return Err(Rejection::new(c, "an amount needs a currency")),
                (None, Some(_)) => return Err(Rejection::new(a, "a currency needs an amount")),
            },
            None => None,
        };
        let subject = m.subject.as_deref().and_then(|c| row.get(c));
        Ok((
            external_id.to_string(),
            customer.to_string(),
            channel,
            kind,
            direction,
            at,
            amount,
            subject.map(str::to_string),
        ))
    })();
    let (external_id, customer, channel, kind, direction, at, amount, subject) = match checked {
        Ok(v) => v,
        Err(r) => return Ok(Err(r)),
    };
    let id = match customers.get(&customer) {
        Some(found) => *found,
        None => {
            let found = match crm_core::ExternalRef::new(&m.customer_source, &customer) {
                Ok(key) => crm
                    .customers()
                    .search(
                        &CustomerQuery {
                            external_id: Some(key),
                            ..CustomerQuery::all()
                        },
                        &PageRequest::first(1),
                    )
                    .await?
                    .items
                    .first()
                    .map(|c| c.id),
                Err(_) => None,
            };
            customers.insert(customer.clone(), found);
            found
        }
    };
    let Some(id) = id else {
        return Ok(Err(Rejection::new(
            &m.customer,
            format!(
                "no customer with id {customer:?} in {:?}",
                m.customer_source
            ),
        )));
    };
    let mut b = Interaction::builder(id, channel, kind)
        .at(at)
        .key(&m.source, &external_id);
    if let Some(d) = direction {
        b = b.direction(d);
    }
    if let Some(a) = amount {
        b = b.amount(a);
    }
    if let Some(s) = &subject {
        b = b.subject(s);
    }
    Ok(b.build().map_err(|e| {
        let column = match &e {
            Error::Validation { field, .. } if field.starts_with("amount") => m
                .amount
                .as_ref()
                .map_or_else(|| field.clone(), |(a, _)| a.clone()),
            Error::Validation { field, .. } if field.starts_with("subject") => {
                m.subject.clone().unwrap_or_else(|| field.clone())
            }
            Error::Validation { field, .. } if field.starts_with("key") => m.external_id.clone(),
            Error::Validation { field, .. } => field.clone(),
            _ => "(row)".to_string(),
        };
        Rejection::from_error(&column, e)
    }))
}
