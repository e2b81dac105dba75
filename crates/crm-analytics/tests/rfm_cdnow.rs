//! RFM and ABC (from crm-core) on the CDNOW sample.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use chrono::NaiveDate;
use crm_analytics::cdnow::read_cdnow;
use crm_core::value_class::{abc, rfm, AbcClass, AbcLimits, RfmSegment};
use rust_decimal::Decimal;

#[test]
fn rfm_and_abc_on_the_cdnow_sample() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cdnow/CDNOW_sample.txt");
    let log = read_cdnow(BufReader::new(File::open(path).unwrap())).unwrap();
    let rows = rfm(
        log.into_iter().map(|p| (p.customer, p.date, p.amount)),
        NaiveDate::from_ymd_opt(1998, 7, 1).unwrap(),
    )
    .unwrap();
    assert_eq!(rows.len(), 2357);
    // Sample customer 1 bought on 1997-01-01, 01-18, 08-02 and 12-12 for 100.50 in all.
    let first = &rows[0];
    assert_eq!(
        (first.customer, first.recency_days, first.frequency),
        (1, 201, 4)
    );
    assert_eq!(first.monetary, Decimal::new(10050, 2));
    // Scores are 1..5 and the exact rule: the best recency scores 5, the worst 1.
    assert!(rows
        .iter()
        .all(|r| (1..=5).contains(&r.r) && (1..=5).contains(&r.f) && (1..=5).contains(&r.m)));
    let min_recency = rows.iter().map(|r| r.recency_days).min().unwrap();
    assert!(rows
        .iter()
        .filter(|r| r.recency_days == min_recency)
        .all(|r| r.r == 5));
    assert!(rows.iter().filter(|r| r.frequency == 1).all(|r| r.f == 1));
    assert!(rows
        .iter()
        .all(|r| r.segment == RfmSegment::from_scores(r.r, r.f)));

    let revenue: Vec<(u64, Decimal)> = rows.iter().map(|r| (r.customer, r.monetary)).collect();
    let report = abc(&revenue, AbcLimits::default()).unwrap();
    let [a, b, c] = report.shares;
    assert_eq!(a.customers + b.customers + c.customers, 2357);
    assert!(
        a.revenue_share >= Decimal::new(80, 2) && a.revenue_share < Decimal::new(81, 2),
        "{}",
        a.revenue_share
    );
    assert!(
        a.customer_share < Decimal::new(40, 2),
        "a minority of customers brings 80% of revenue"
    );
    assert_eq!(
        a.revenue_share + b.revenue_share + c.revenue_share,
        Decimal::ONE
    );
    let top = revenue.iter().max_by_key(|r| r.1).unwrap().0;
    assert_eq!(
        report.classes.iter().find(|c| c.0 == top).unwrap().1,
        AbcClass::A
    );
}
