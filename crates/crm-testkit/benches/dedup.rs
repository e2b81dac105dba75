//! Duplicate-detection benchmark: `crm_core::dedup::Detector` with the standard rules over
//! generated people with planted duplicates (`Generator::people_with_duplicates`), printing
//! the time, precision and recall of the reported pairs.
//!
//! `cargo bench -p crm-testkit --bench dedup [-- --customers N --share S]`
//! (defaults: 1,000,000 people, duplicates of 2% of them).
//!
//! Baseline, measured in the same run: every pair of a sample compared without blocking
//! (the same scoring), timed and scaled to the full set by the number of pairs, which is
//! what a detector without blocking keys would face. Goal: under 60 s for a million, recall
//! and precision at least 0.95.

use std::collections::HashSet;
use std::time::Instant;

use crm_core::dedup::{Detector, MatchRules};
use crm_core::CustomerId;
use crm_testkit::Generator;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn key(a: CustomerId, b: CustomerId) -> (CustomerId, CustomerId) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

fn main() {
    let n: usize = arg("--customers", 1_000_000);
    let share: f64 = arg("--share", 0.02);
    let t = Instant::now();
    let planted = Generator::new(7).people_with_duplicates(n, share);
    eprintln!(
        "generated {} records ({} planted duplicates) in {:.1} s",
        planted.customers.len(),
        planted.pairs.len(),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut detector = Detector::new(MatchRules::standard()).expect("standard rules");
    for c in &planted.customers {
        detector.add(c);
    }
    let report = detector.find_groups();
    let elapsed = t.elapsed().as_secs_f64();

    let truth: HashSet<(CustomerId, CustomerId)> =
        planted.pairs.iter().map(|&(a, b)| key(a, b)).collect();
    let found: HashSet<(CustomerId, CustomerId)> = report.pairs().map(|p| key(p.a, p.b)).collect();
    let hits = found.intersection(&truth).count();
    let mut false_by_rule: std::collections::BTreeMap<&str, usize> = Default::default();
    for p in report.pairs() {
        if !truth.contains(&key(p.a, p.b)) {
            *false_by_rule.entry(p.rule.as_str()).or_default() += 1;
        }
    }
    let mut missed_by_kind: std::collections::BTreeMap<String, usize> = Default::default();
    for (pair, kind) in planted.pairs.iter().zip(&planted.kinds) {
        if !found.contains(&key(pair.0, pair.1)) {
            *missed_by_kind.entry(format!("{kind:?}")).or_default() += 1;
        }
    }
    let precision = hits as f64 / found.len().max(1) as f64;
    let recall = hits as f64 / truth.len().max(1) as f64;

    // Baseline: all pairs of a sample, no blocking.
    let sample = 3_000.min(planted.customers.len());
    let mut all_pairs = Detector::new(MatchRules::standard()).expect("standard rules");
    let t = Instant::now();
    let mut compared = 0u64;
    for (i, c) in planted.customers[..sample].iter().enumerate() {
        all_pairs.add(c);
        compared += i as u64;
    }
    let mut reported = 0;
    for c in &planted.customers[..sample] {
        reported += all_pairs.matches(c).len();
    }
    let sample_secs = t.elapsed().as_secs_f64();
    let total = planted.customers.len() as f64;
    let full_pairs = total * (total - 1.0) / 2.0;
    // `matches` compares each ordered pair once: twice the distinct pairs.
    let per_pair = sample_secs / (2.0 * compared.max(1) as f64);
    let naive = per_pair * full_pairs;

    println!(
        "records {}, planted duplicate pairs {}",
        planted.customers.len(),
        truth.len()
    );
    println!(
        "blocked detection : {elapsed:.1} s, {} pairs compared, {} blocks skipped, {} groups",
        report.compared_pairs,
        report.skipped_blocks,
        report.groups.len()
    );
    println!(
        "reported pairs    : {} (true {hits}), precision {precision:.4}, recall {recall:.4} (goal >= 0.95 each)",
        found.len()
    );
    println!("false pairs by rule: {false_by_rule:?}; missed by kind: {missed_by_kind:?}");
    println!(
        "all pairs, no blocking (from a {sample}-record sample, {reported} matches there): about {:.0} s for the full set, {:.0}x the blocked run",
        naive,
        naive / elapsed
    );
    println!(
        "goal: under 60 s for 1,000,000 -> {}",
        if elapsed < 60.0 { "met" } else { "not met" }
    );
}
