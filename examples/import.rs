//! Import: a CSV of customers and one of interactions into SQLite, with a progress bar and
//! the rejected rows printed; a second run that changes nothing; then the duplicates the
//! customer file carries are found and merged.
//!
//! `cargo run --example import [-- DIR]` (default: a temporary directory, removed at the
//! end; a DIR given is kept). The files are generated first: 5,000 people from a seeded generator, 2% of them entered a second
//! time under another id (same email, same phone, or only the same birth date, city and
//! company, with the name misspelt or reordered), three broken rows, and 20,000
//! interactions of which two are broken.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use crm_core::dedup::MatchRules;
use crm_core::merge::MergePolicy;
use crm_core::segment::AttrType;
use crm_core::{AttrValue, Crm, CustomerId, CustomerQuery, PageRequest, TenantId};
use crm_import::progress::on_stderr;
use crm_import::{
    import_customers, import_interactions, CustomerMapping, ImportOptions, ImportReport,
    InteractionMapping,
};
use crm_sqlite::SqliteStore;
use crm_testkit::Generator;

const PEOPLE: usize = 5_000;
const INTERACTIONS: usize = 20_000;

/// A CSV cell: quoted when it needs to be.
fn cell(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

fn text(c: &crm_core::Customer, key: &str) -> String {
    match c.attributes.get(key) {
        Some(AttrValue::Text(t)) => t.clone(),
        Some(AttrValue::Date(d)) => d.to_string(),
        _ => String::new(),
    }
}

/// Writes `customers.csv` and `interactions.csv`; returns the planted pairs as external
/// ids.
fn write_files(dir: &Path) -> std::io::Result<Vec<(String, String)>> {
    let planted = Generator::new(11).people_with_duplicates(PEOPLE, 0.02);
    let mut external: BTreeMap<CustomerId, String> = BTreeMap::new();
    let mut csv = String::from("customer_no,name,email,phone,birth_date,city,company\n");
    for (n, c) in planted.customers.iter().enumerate() {
        let no = format!("K{:05}", n + 1);
        external.insert(c.id, no.clone());
        let _ = writeln!(
            csv,
            "{no},{},{},{},{},{},{}",
            cell(c.name.as_str()),
            c.emails.first().map_or("", |e| e.as_str()),
            c.phones.first().map_or("", |p| p.as_str()),
            text(c, "birth_date"),
            cell(&text(c, "city")),
            cell(&text(c, "company")),
        );
    }
    csv.push_str("K90001,Broken Email,not-an-address,,,,\n");
    csv.push_str("K90002,Broken Date,broken.date@example.com,,1990-02-30,,\n");
    csv.push_str(",No Number,no.number@example.com,,,,\n");
    std::fs::write(dir.join("customers.csv"), csv)?;

    let mut gen = Generator::new(12);
    let ids: Vec<CustomerId> = planted.customers.iter().map(|c| c.id).collect();
    let start = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("a date");
    let mut csv = String::from("txn,customer_no,channel,kind,at,amount,currency\n");
    for (n, i) in gen
        .interactions(&ids, INTERACTIONS, start, Duration::days(365))
        .iter()
        .enumerate()
    {
        let _ = writeln!(
            csv,
            "T{n:06},{},{},{},{},{},{}",
            external[&i.customer],
            i.channel.as_str(),
            i.kind.as_str(),
            i.occurred_at.to_rfc3339(),
            i.amount.map(|m| m.amount().to_string()).unwrap_or_default(),
            i.amount
                .map(|m| m.currency().code().to_string())
                .unwrap_or_default(),
        );
    }
    csv.push_str("T900001,K99999,phone,call,2025-06-01,,\n");
    csv.push_str("T900002,K00001,carrier-pigeon,call,2025-06-01,,\n");
    std::fs::write(dir.join("interactions.csv"), csv)?;
    Ok(planted
        .pairs
        .iter()
        .map(|(a, b)| (external[a].clone(), external[b].clone()))
        .collect())
}

fn print_rejected(report: &ImportReport) {
    for r in &report.rejected {
        println!("  rejected line {}: {}: {}", r.line, r.column, r.reason);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A directory of the caller's is kept; a temporary one is removed when `temporary`
    // drops at the end (also on an error).
    let (dir, temporary): (PathBuf, Option<tempfile::TempDir>) = match std::env::args().nth(1) {
        Some(d) => (PathBuf::from(d), None),
        None => {
            let t = tempfile::Builder::new().prefix("crm-import-").tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    std::fs::create_dir_all(&dir)?;
    let planted = write_files(&dir)?;
    match &temporary {
        Some(_) => println!("files in {} (removed at the end)", dir.display()),
        None => println!("files in {}", dir.display()),
    }

    let store = SqliteStore::open(dir.join("crm.db"))?;
    let crm = Crm::new(Arc::new(store));
    let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(
        0x0190_0000_0000_7000_8000_0000_0001_0001,
    ));
    let customers = CustomerMapping::new("erp", "customer_no")
        .name("name")
        .email("email")
        .phone("phone")
        .attribute("birth_date", "birth_date", AttrType::Date)?
        .attribute("city", "city", AttrType::Text)?
        .attribute("company", "company", AttrType::Text)?;
    let interactions =
        InteractionMapping::new("pos", "txn", "customer_no", "channel", "kind", "at")
            .customer_source("erp")
            .amount("amount", "currency");
    let options = ImportOptions::default();
    let size = |name: &str| std::fs::metadata(dir.join(name)).map(|m| m.len());

    for run in ["first run", "second run"] {
        println!("{run}:");
        let report = import_customers(
            &crm.tenant(tenant),
            std::fs::File::open(dir.join("customers.csv"))?,
            &customers,
            &options,
            on_stderr("customers", size("customers.csv")?),
        )
        .await?;
        println!(
            "  customers: {} rows, {} created, {} updated, {} unchanged, {} rejected",
            report.rows,
            report.created,
            report.updated,
            report.unchanged,
            report.rejected.len()
        );
        print_rejected(&report);
        let report = import_interactions(
            &crm.tenant(tenant),
            std::fs::File::open(dir.join("interactions.csv"))?,
            &interactions,
            &options,
            on_stderr("interactions", size("interactions.csv")?),
        )
        .await?;
        println!(
            "  interactions: {} rows, {} stored, {} already there, {} rejected",
            report.rows,
            report.inserted,
            report.duplicates,
            report.rejected.len()
        );
        print_rejected(&report);
    }

    // The duplicates: found, compared with what was planted, merged.
    let report = crm
        .tenant(tenant)
        .duplicates()
        .find(&MatchRules::standard())
        .await?;
    let number = |id: CustomerId| {
        let crm = crm.clone();
        async move {
            crm.tenant(tenant)
                .customers()
                .get(id)
                .await
                .ok()
                .and_then(|c| c.external_id("erp").map(str::to_string))
                .unwrap_or_default()
        }
    };
    let mut found = BTreeSet::new();
    for p in report.pairs() {
        let (a, b) = (number(p.a).await, number(p.b).await);
        found.insert(if a <= b { (a, b) } else { (b, a) });
    }
    let truth: BTreeSet<(String, String)> = planted
        .iter()
        .map(|(a, b)| {
            if a <= b {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            }
        })
        .collect();
    let hits = found.intersection(&truth).count();
    println!(
        "duplicates: {} groups among {} customers; {} of {} planted pairs found, {} pairs not planted",
        report.groups.len(),
        report.customers,
        hits,
        truth.len(),
        found.len() - hits
    );
    for g in report.groups.iter().take(3) {
        let mut names = Vec::new();
        for id in &g.members {
            names.push(
                crm.tenant(tenant)
                    .customers()
                    .get(*id)
                    .await?
                    .name
                    .as_str()
                    .to_string(),
            );
        }
        println!(
            "  e.g. {} ({}, score {:.2})",
            names.join(" / "),
            g.pairs[0].rule,
            g.best_score()
        );
    }
    let mut merged = 0;
    for g in &report.groups {
        let (survivor, others) = g.members.split_first().expect("a group has members");
        let outcome = crm
            .tenant(tenant)
            .customers()
            .merge(*survivor, others, &MergePolicy::default(), false)
            .await?;
        merged += outcome.merged.len();
    }
    let mut left = 0;
    let mut page = PageRequest::first(1000);
    loop {
        let got = crm
            .tenant(tenant)
            .customers()
            .search(&CustomerQuery::all(), &page)
            .await?;
        left += got.items.len();
        match got.next {
            Some(next) => page = PageRequest::after(next, 1000),
            None => break,
        }
    }
    println!("merged {merged} records into their survivors: {left} customers now");
    Ok(())
}
