//! `crm import customers|interactions FILE --mapping MAPPING.toml`.
//!
//! The mapping file's format is [`MAPPING_HELP`] (also shown by `crm import --help`).

use std::io::Write;
use std::path::{Path, PathBuf};

use crm::import::progress::on_stderr;
use crm::import::{
    import_customers, import_interactions, CustomerMapping, ImportOptions, ImportReport,
    InteractionMapping, Rejected,
};
use crm::segment::AttrType;
use crm::sync::NaturalKey;
use crm::TenantId;
use serde::Deserialize;

use crate::db::{self, blocking, Failure, Open, Target};
use crate::output::{Format, Table};

/// The mapping file's format, shown by `crm import --help`.
pub const MAPPING_HELP: &str = r#"The mapping file (TOML) names the columns, in a [customers] and an [interactions]
table (one file can hold both):

[customers]
source = "shop"              # the system the file comes from
external_id = "customer_no"  # its id for the customer (required in every row)
name = "name"
emails = ["email"]
phones = ["phone"]
lifecycle = "status"         # lead, prospect, active, dormant, churned
tags = "tags"                # separated by ;
company = "company"          # the organisation a person works at
natural_keys = ["email"]     # also match customers other systems created
attributes = [{ column = "birthday", key = "birthday", type = "date" }]

[interactions]
source = "shop"
external_id = "order_no"     # the row's own id: a second run stores nothing twice
customer = "customer_no"     # the customer's id in customer_source (default: source)
channel = "channel"          # email, phone, web, store, ...
kind = "kind"                # purchase, call, complaint, ...
occurred_at = "date"         # RFC 3339, or YYYY-MM-DD
amount = "total"             # with currency: both or neither
currency = "currency"
subject = "subject"
"#;

/// What a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    /// Customer records: created, or updated when their id in the source is known.
    Customers,
    /// Interactions of customers already imported (or registered) from a source.
    Interactions,
}

/// The mapping file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    customers: Option<CustomerColumns>,
    interactions: Option<InteractionColumns>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerColumns {
    source: String,
    external_id: String,
    name: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    phones: Vec<String>,
    lifecycle: Option<String>,
    tags: Option<String>,
    company: Option<String>,
    #[serde(default)]
    natural_keys: Vec<NaturalKey>,
    #[serde(default)]
    attributes: Vec<AttributeColumn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttributeColumn {
    column: String,
    key: String,
    #[serde(rename = "type")]
    ty: AttrType,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InteractionColumns {
    source: String,
    external_id: String,
    customer_source: Option<String>,
    customer: String,
    channel: String,
    kind: String,
    direction: Option<String>,
    occurred_at: String,
    amount: Option<String>,
    currency: Option<String>,
    subject: Option<String>,
}

/// Reads the mapping file's table for `what`.
fn read_mapping(path: &Path, what: What) -> Result<Mapping, Failure> {
    let name = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(format!("--mapping: {name}: {e}")))?;
    let file: MappingFile = toml::from_str(&text).map_err(|e| {
        let why = e.message().trim_end().to_string();
        let at = e
            .span()
            .and_then(|s| text.get(..s.start))
            .map(|before| format!(" (line {})", before.matches('\n').count() + 1))
            .unwrap_or_default();
        Failure::new(format!("--mapping: {name}: {why}{at}"))
    })?;
    let missing = |table: &str| {
        Failure::new(format!(
            "--mapping: {name} has no [{table}] table (see `crm import --help`)"
        ))
    };
    Ok(match what {
        What::Customers => {
            let c = file.customers.ok_or_else(|| missing("customers"))?;
            let mut m = CustomerMapping::new(&c.source, &c.external_id);
            m.name = c.name;
            m.kind = c.kind;
            m.emails = c.emails;
            m.phones = c.phones;
            m.lifecycle = c.lifecycle;
            m.tags = c.tags;
            m.company = c.company;
            m.natural_keys = c.natural_keys;
            for a in c.attributes {
                m = m.attribute(&a.column, &a.key, a.ty).map_err(|e| {
                    Failure::new(format!("--mapping: {name}: attribute {:?}: {e}", a.key))
                })?;
            }
            Mapping::Customers(m)
        }
        What::Interactions => {
            let i = file.interactions.ok_or_else(|| missing("interactions"))?;
            let mut m = InteractionMapping::new(
                &i.source,
                &i.external_id,
                &i.customer,
                &i.channel,
                &i.kind,
                &i.occurred_at,
            );
            if let Some(source) = &i.customer_source {
                m = m.customer_source(source);
            }
            if let Some(direction) = &i.direction {
                m = m.direction(direction);
            }
            match (&i.amount, &i.currency) {
                (Some(amount), Some(currency)) => m = m.amount(amount, currency),
                (None, None) => {}
                _ => {
                    return Err(Failure::new(format!(
                    "--mapping: {name}: [interactions] needs both amount and currency, or neither"
                )))
                }
            }
            if let Some(subject) = &i.subject {
                m = m.subject(subject);
            }
            Mapping::Interactions(m)
        }
    })
}

enum Mapping {
    Customers(CustomerMapping),
    Interactions(InteractionMapping),
}

/// What `crm import` takes.
pub struct Request<'a> {
    /// The store.
    pub database: &'a str,
    /// The tenant.
    pub tenant: TenantId,
    /// What the file holds.
    pub what: What,
    /// The CSV file.
    pub file: &'a Path,
    /// The mapping file.
    pub mapping: &'a Path,
    /// Where rejected rows go (default: `<file stem>.rejected.csv` in the current folder).
    pub rejected: Option<PathBuf>,
    /// Import into a copy of the database, then throw it away.
    pub dry_run: bool,
    /// The field delimiter.
    pub delimiter: u8,
}

/// Runs an import and prints its summary.
pub async fn run(request: Request<'_>, format: Format, out: &mut dyn Write) -> Result<(), Failure> {
    let (path, what) = (request.mapping.to_path_buf(), request.what);
    let mapping = blocking(move || read_mapping(&path, what)).await?;
    let name = request.file.display().to_string();
    let (file, shown) = (request.file.to_path_buf(), name.clone());
    let input = blocking(move || {
        std::fs::File::open(&file).map_err(|e| Failure::new(format!("{shown}: {e}")))
    })
    .await?;
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    // A dry run imports into a copy of the file, removed at the end.
    let copy = if request.dry_run {
        let database = request.database.to_string();
        Some(blocking(move || copy_of(&database)).await?)
    } else {
        None
    };
    let database = match &copy {
        Some((_, path)) => path.to_string_lossy().into_owned(),
        None => request.database.to_string(),
    };
    let db = db::open(&database, request.tenant, Open::Existing).await?;
    let options = ImportOptions {
        delimiter: request.delimiter,
        ..ImportOptions::default()
    };
    let t = db.t();
    let report = match &mapping {
        Mapping::Customers(m) => {
            import_customers(&t, input, m, &options, on_stderr("customers", size)).await
        }
        Mapping::Interactions(m) => {
            import_interactions(&t, input, m, &options, on_stderr("interactions", size)).await
        }
    }
    .map_err(|e| Failure::new(format!("{name}: {e}")))?;
    if !report.rejected.is_empty() {
        let path = request.rejected.clone().unwrap_or_else(|| {
            let stem = request
                .file
                .file_stem()
                .map_or_else(|| "import".into(), |s| s.to_string_lossy().into_owned());
            PathBuf::from(format!("{stem}.rejected.csv"))
        });
        let rejected = report.rejected.clone();
        let at = path.clone();
        blocking(move || write_rejected(&at, &rejected)).await?;
        eprintln!(
            "{} rejected row(s) written to {}",
            report.rejected.len(),
            path.display()
        );
    }
    if request.dry_run {
        eprintln!("dry run: nothing was written to {}", request.database);
    }
    summary(&report, request.what).write(format, out)?;
    Ok(())
}

/// The summary as one row.
fn summary(report: &ImportReport, what: What) -> Table {
    let rejected = report.rejected.len();
    match what {
        What::Customers => {
            let mut t = Table::new(&[
                "rows",
                "created",
                "updated",
                "unchanged",
                "rejected",
                "accounts",
            ]);
            t.push(vec![
                report.rows.into(),
                report.created.into(),
                report.updated.into(),
                report.unchanged.into(),
                rejected.into(),
                report.accounts.into(),
            ]);
            t
        }
        What::Interactions => {
            let mut t = Table::new(&["rows", "stored", "already_there", "rejected"]);
            t.push(vec![
                report.rows.into(),
                report.inserted.into(),
                report.duplicates.into(),
                rejected.into(),
            ]);
            t
        }
    }
}

/// Writes the rejected rows as CSV: line, column, reason.
fn write_rejected(path: &Path, rejected: &[Rejected]) -> Result<(), Failure> {
    let mut table = Table::new(&["line", "column", "reason"]);
    for r in rejected {
        table.push(vec![
            r.line.into(),
            r.column.clone().into(),
            r.reason.clone().into(),
        ]);
    }
    let mut file = std::fs::File::create(path)
        .map_err(|e| Failure::new(format!("--rejected: {}: {e}", path.display())))?;
    table.write(Format::Csv, &mut file)?;
    Ok(())
}

/// A copy of a SQLite database (its file and write-ahead log) in a temporary folder.
fn copy_of(database: &str) -> Result<(tempfile::TempDir, PathBuf), Failure> {
    let Target::Sqlite(path) = Target::parse(database) else {
        return Err(Failure::new(
            "--dry-run: works on a SQLite file (it imports into a copy)",
        ));
    };
    if !Path::new(&path).exists() {
        return Err(Failure::new(format!(
            "no database at {path}: create one with `crm init`"
        )));
    }
    let dir = tempfile::tempdir()?;
    let copy = dir.path().join("dry-run.db");
    std::fs::copy(&path, &copy)?;
    let wal = format!("{path}-wal");
    if Path::new(&wal).exists() {
        std::fs::copy(&wal, dir.path().join("dry-run.db-wal"))?;
    }
    Ok((dir, copy))
}
