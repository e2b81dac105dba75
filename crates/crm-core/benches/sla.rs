//! SLA benchmark: states of first-reply and resolution targets for 1,000,000 cases under
//! an office-hours calendar with holidays (Asia/Shanghai, 09:00-12:00 and 13:30-18:00,
//! the 2026 public holidays and make-up working days), on one thread.
//!
//! `cargo bench -p crm-core --bench sla [-- --cases N]`
//!
//! The baseline, measured in the same run on a sample of the same cases, is the same
//! evaluation with the calendar walked day by day (`BusinessCalendar`) instead of
//! precomputed (`CompiledCalendar`). Goal: at least 1,000,000 cases per second.
//!
//! Then business time over the whole supported range (1900 to 9999) with the same
//! calendar, against a day-by-day walk of ten years measured in the same run (one
//! `business_time` call per day) and scaled to the range.

use std::hint::black_box;
use std::time::Instant;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use crm_core::calendar::{BusinessCalendar, CompiledCalendar, Interval, Week};
use crm_core::case::{Case, CaseEvent, CaseEventKind, CaseKind, CaseStatus};
use crm_core::sla::{evaluate, SlaMetric, SlaTarget};
use crm_core::{Channel, CustomerId, UserId};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn date(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).expect("date")
}

/// Shanghai office hours with the 2026 holidays and make-up days (State Council notice).
fn calendar() -> BusinessCalendar {
    let day = [
        Interval::parse("09:00", "12:00").expect("interval"),
        Interval::parse("13:30", "18:00").expect("interval"),
    ];
    let mut holidays = vec![
        date(1, 1),
        date(1, 2),
        date(1, 3),
        date(4, 4),
        date(4, 5),
        date(4, 6),
    ];
    holidays.extend((15..=23).map(|d| date(2, d)));
    holidays.extend((1..=5).map(|d| date(5, d)));
    holidays.extend((19..=21).map(|d| date(6, d)));
    holidays.extend((25..=27).map(|d| date(9, d)));
    holidays.extend((1..=7).map(|d| date(10, d)));
    let make_up = [
        date(1, 4),
        date(2, 14),
        date(2, 28),
        date(5, 9),
        date(9, 20),
        date(10, 10),
    ];
    BusinessCalendar::new(chrono_tz::Asia::Shanghai, Week::weekdays(&day))
        .and_then(|c| c.with_holidays(holidays))
        .and_then(|c| c.with_extra_working_days(make_up))
        .expect("calendar")
}

/// A reproducible case: opened some time in 2026, a reply, maybe a wait on the customer,
/// maybe resolved.
fn case(i: u64) -> Vec<CaseEvent> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let agent = UserId::from_bytes([7; 16]);
    let opened = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap()
        + Duration::minutes(next(300 * 24 * 60) as i64);
    let mut c = Case::open(
        CustomerId::from_bytes([1; 16]),
        CaseKind::Complaint,
        "case",
        Channel::Email,
        Some(agent),
        opened,
    )
    .expect("case");
    let mut at = opened;
    let mut step = |c: &mut Case, minutes: u64, kind: CaseEventKind| {
        at += Duration::minutes(minutes as i64);
        let _ = c.record(at, kind);
    };
    step(
        &mut c,
        next(3 * 24 * 60),
        CaseEventKind::PublicReply { by: agent },
    );
    if next(3) == 0 {
        step(
            &mut c,
            next(600),
            CaseEventKind::StatusChange {
                to: CaseStatus::PendingCustomer,
                by: None,
            },
        );
        step(&mut c, next(5 * 24 * 60), CaseEventKind::CustomerMessage);
        step(
            &mut c,
            0,
            CaseEventKind::StatusChange {
                to: CaseStatus::Open,
                by: None,
            },
        );
    }
    if next(4) != 0 {
        step(
            &mut c,
            next(6 * 24 * 60),
            CaseEventKind::StatusChange {
                to: CaseStatus::Resolved,
                by: Some(agent),
            },
        );
    }
    c.events
}

/// Evaluates every target of every case with `answer`: (cases per second, checksum).
fn run(
    cases: &[Vec<CaseEvent>],
    targets: &[SlaTarget],
    answer: &dyn Fn(&[CaseEvent], &SlaTarget) -> i64,
) -> (f64, i64) {
    let start = Instant::now();
    let mut checksum = 0i64;
    for events in cases {
        for t in targets {
            checksum = checksum.wrapping_add(answer(black_box(events), t));
        }
    }
    (cases.len() as f64 / start.elapsed().as_secs_f64(), checksum)
}

fn main() {
    let n = arg("--cases", 1_000_000);
    let cal = calendar();
    let compiled = CompiledCalendar::new(&cal, date(1, 1), date(12, 31));
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
    let targets = [
        SlaTarget::new(SlaMetric::FirstReply, Duration::hours(8), 0.8).expect("target"),
        SlaTarget::new(SlaMetric::Resolution, Duration::hours(27), 0.8).expect("target"),
    ];
    let cases: Vec<Vec<CaseEvent>> = (0..n as u64).map(case).collect();
    let sample = &cases[..(n / 50).max(1)];
    // The same evaluation over an uncompiled calendar: a CompiledCalendar of an empty
    // range asks the calendar for everything.
    let walking = CompiledCalendar::new(&cal, date(1, 1), date(1, 1) - Duration::days(1));
    let fast =
        |e: &[CaseEvent], t: &SlaTarget| evaluate(e, t, &compiled, now).elapsed.num_seconds();
    let slow = |e: &[CaseEvent], t: &SlaTarget| evaluate(e, t, &walking, now).elapsed.num_seconds();
    let (walk_rate, walk_sum) = run(sample, &targets, &slow);
    let (fast_sample_rate, fast_sum) = run(sample, &targets, &fast);
    assert_eq!(walk_sum, fast_sum, "both calendars give the same answers");
    let (rate, _) = run(&cases, &targets, &fast);
    println!(
        "cases: {n}, targets per case: {}, one thread",
        targets.len()
    );
    println!("compiled calendar : {rate:>12.0} cases/s");
    println!(
        "walking calendar  : {walk_rate:>12.0} cases/s (sample of {}, same answers)",
        sample.len()
    );
    println!(
        "ratio compiled/walking: {:.1} (sample: {:.1})",
        rate / walk_rate,
        fast_sample_rate / walk_rate
    );
    println!(
        "goal >= 1,000,000 cases/s: {}",
        if rate >= 1_000_000.0 {
            "met"
        } else {
            "not met"
        }
    );
    whole_range(&cal);
}

/// Business time over the whole supported range, against a day-by-day walk.
fn whole_range(cal: &BusinessCalendar) {
    let (min, max) = (
        crm_core::clock::min_instant(),
        crm_core::clock::max_instant(),
    );
    let start = Instant::now();
    let total = black_box(cal.business_time(min, max));
    let range_s = start.elapsed().as_secs_f64();
    let first = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
    let days = 3653;
    let start = Instant::now();
    let mut walked = Duration::zero();
    for d in 0..days {
        let a = first + Duration::days(d);
        walked += cal.business_time(a, a + Duration::days(1));
    }
    let walk_s = start.elapsed().as_secs_f64();
    assert_eq!(
        walked,
        cal.business_time(first, first + Duration::days(days)),
        "weeks in one step give the day-by-day answer"
    );
    let range_days = (max - min).num_days() as f64;
    let walk_range_s = walk_s * range_days / days as f64;
    println!(
        "whole range 1900-9999: {:.1} ms ({} h of business time); day-by-day walk: {:.0} ms for 10 years, {:.1} s scaled to the range; ratio walk/weeks: {:.0}",
        range_s * 1e3,
        total.num_hours(),
        walk_s * 1e3,
        walk_range_s,
        walk_range_s / range_s
    );
}
