//! RFM scores, RFM segments and ABC classes for every customer of a purchase log.
//!
//! `cargo run --release --example rfm -- --cdnow FILE --as-of 1998-07-01`
//! `cargo run --release --example rfm -- --csv FILE --as-of 2025-01-01`
//!
//! `--cdnow` reads either CDNOW layout (the 5-column sample, keyed by the sample id, or the
//! 4-column full set with its header, keyed by the customer id); `--csv` reads
//! `customer,date,amount` rows (a header line, dates as YYYY-MM-DD). Writes CSV to stdout:
//! `customer,recency_days,frequency,monetary,r,f,m,segment,abc`, one row per customer with
//! a purchase on or before the as-of date, sorted by customer id as a number.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::process::ExitCode;
use std::str::FromStr;

use chrono::NaiveDate;
use crm_analytics::cdnow::read_cdnow;
use crm_core::value_class::{abc, rfm, AbcLimits};
use rust_decimal::Decimal;

/// A customer key that sorts as a number when it is one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Number(u64),
    Text(String),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Number(n) => write!(f, "{n}"),
            Key::Text(t) => f.write_str(t),
        }
    }
}

fn read_csv(path: &str) -> Result<Vec<(Key, NaiveDate, Decimal)>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| format!("{path}: {e}"))?;
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let r = record.map_err(|e| format!("{path}: line {line}: {e}"))?;
        if r.len() != 3 {
            return Err(format!(
                "{path}: line {line}: expected customer,date,amount"
            ));
        }
        let key = r[0]
            .parse()
            .map(Key::Number)
            .unwrap_or_else(|_| Key::Text(r[0].to_string()));
        let date = NaiveDate::parse_from_str(&r[1], "%Y-%m-%d")
            .map_err(|_| format!("{path}: line {line}: bad date {:?}", &r[1]))?;
        let amount = Decimal::from_str(&r[2])
            .map_err(|_| format!("{path}: line {line}: bad amount {:?}", &r[2]))?;
        out.push((key, date, amount));
    }
    Ok(out)
}

const USAGE: &str = "\
usage: rfm (--cdnow FILE | --csv FILE) --as-of YYYY-MM-DD

RFM scores, RFM segments and ABC classes for every customer of a purchase log.

  --cdnow FILE    a CDNOW purchase log (the 5-column sample or the 4-column full set)
  --csv FILE      customer,date,amount rows with a header line, dates as YYYY-MM-DD
  --as-of DATE    the day the scores are computed for (later purchases are left out)

Stdout: CSV, customer,recency_days,frequency,monetary,r,f,m,segment,abc, one row per
customer, sorted by customer id. Stderr: a summary table for a person.";

/// The summary for a person: ABC classes, then the RFM segments by size.
fn summary(
    rows: &[crm_core::value_class::RfmRow<Key>],
    shares: &[crm_core::value_class::ClassShare; 3],
) {
    let percent = |d: Decimal| (d * Decimal::from(100)).round_dp(1);
    eprintln!("class  customers  share of customers  share of revenue");
    for (class, s) in ["A", "B", "C"].iter().zip(shares) {
        eprintln!(
            "{class:<5}  {:>9}  {:>17}%  {:>15}%",
            s.customers,
            percent(s.customer_share),
            percent(s.revenue_share)
        );
    }
    let mut segments: std::collections::BTreeMap<&str, usize> = Default::default();
    for row in rows {
        *segments.entry(row.segment.as_str()).or_default() += 1;
    }
    let mut segments: Vec<(&str, usize)> = segments.into_iter().collect();
    segments.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    eprintln!("\nRFM segment          customers");
    for (segment, n) in segments {
        eprintln!("{segment:<20} {n:>9}");
    }
    eprintln!("{:<20} {:>9}", "all", rows.len());
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let as_of = value("--as-of").ok_or("--as-of YYYY-MM-DD is required")?;
    let as_of: NaiveDate = as_of
        .parse()
        .map_err(|_| format!("--as-of: bad date {as_of:?}"))?;
    let log = match (value("--cdnow"), value("--csv")) {
        (Some(path), None) => {
            let file = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            read_cdnow(BufReader::new(file))
                .map_err(|e| format!("{path}: {e}"))?
                .into_iter()
                .map(|p| (Key::Number(p.customer), p.date, p.amount))
                .collect()
        }
        (None, Some(path)) => read_csv(&path)?,
        _ => return Err("give exactly one of --cdnow FILE or --csv FILE".into()),
    };
    let rows = rfm(log, as_of).map_err(|e| e.to_string())?;
    let revenue: Vec<(Key, Decimal)> = rows
        .iter()
        .map(|r| (r.customer.clone(), r.monetary))
        .collect();
    let classes = abc(&revenue, AbcLimits::default()).map_err(|e| e.to_string())?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let io = |e: std::io::Error| e.to_string();
    writeln!(
        out,
        "customer,recency_days,frequency,monetary,r,f,m,segment,abc"
    )
    .map_err(io)?;
    for (row, (_, class)) in rows.iter().zip(&classes.classes) {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            row.customer,
            row.recency_days,
            row.frequency,
            row.monetary,
            row.r,
            row.f,
            row.m,
            row.segment.as_str(),
            class.as_str()
        )
        .map_err(io)?;
    }
    out.flush().map_err(io)?;
    summary(&rows, &classes.shares);
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rfm: {e} (--help for usage)");
            ExitCode::FAILURE
        }
    }
}
