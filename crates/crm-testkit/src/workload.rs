//! The service workload of the `kpi_due` benchmarks: many owned customers, open cases, the
//! rules of `examples/service_levels.rs` and a follow-up-gap rule, with every instant spread
//! evenly: the follow-up warnings (20 days) and breaches (30 days) of customers owned since
//! an instant in the last 30 days fall at N/15 a day, so 4 hours hold about 1.1% of them.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use crm_core::calendar::{BusinessCalendar, Interval, Week};
use crm_core::case::{Case, CaseKind};
use crm_core::kpi::{KpiAction, KpiMetric, KpiReport, KpiRule, KpiScope};
use crm_core::notify::TemplateName;
use crm_core::service::Kpis;
use crm_core::sla::{SlaMetric, SlaTarget};
use crm_core::{Channel, CustomerId, ManualClock, Storage, TenantId, UserId, WriteOptions};

use crate::Generator;

/// The benchmark's tenant-wide sizes and clock.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Customers, each owned by one of `owners` (owned since an instant spread evenly over
    /// the 30 days before `start`, never contacted).
    pub customers: usize,
    /// Open cases (a quarter of them complaints), opened over the 30 days before `start`.
    pub cases: usize,
    /// Owners (and case assignees).
    pub owners: usize,
    /// The instant of the first evaluation.
    pub start: DateTime<Utc>,
}

impl Workload {
    /// The sizes: 1,000,000 customers of 100 owners, 100,000 open cases.
    pub fn standard() -> Self {
        Workload {
            customers: 1_000_000,
            cases: 100_000,
            owners: 100,
            start: "2026-11-02T08:00:00Z"
                .parse()
                .unwrap_or(DateTime::UNIX_EPOCH),
        }
    }
}

/// The calendar of `examples/service_levels.rs`: weekdays 09:00-12:00 and 13:30-18:00 in
/// Shanghai, the first week of October off, 10 October worked.
pub fn service_calendar() -> BusinessCalendar {
    let day = [
        Interval::parse("09:00", "12:00").expect("interval"),
        Interval::parse("13:30", "18:00").expect("interval"),
    ];
    let date = |d| NaiveDate::from_ymd_opt(2026, 10, d).expect("date");
    BusinessCalendar::new(chrono_tz::Asia::Shanghai, Week::weekdays(&day))
        .and_then(|c| c.with_holidays((1..=7).map(date)))
        .and_then(|c| c.with_extra_working_days([date(10)]))
        .expect("calendar")
}

/// The two case rules of `examples/service_levels.rs` (complaints answered within 4
/// business hours; everything resolved within 3 business days, reassigned to `lead` on a
/// breach) and a follow-up gap (an owner contacts each customer at least every 30 days,
/// warned at 20).
pub fn service_rules(lead: UserId) -> Vec<KpiRule> {
    let cal = service_calendar();
    let target = |metric, minutes, warn| {
        SlaTarget::new(metric, Duration::minutes(minutes), warn).expect("target")
    };
    vec![
        KpiRule {
            key: TemplateName::parse("complaint-first-reply").expect("key"),
            name: "Answer a complaint within 4 business hours".into(),
            metric: KpiMetric::Case(target(SlaMetric::FirstReply, 240, 0.75)),
            calendar: cal.clone(),
            scope: KpiScope {
                kinds: vec![CaseKind::Complaint],
                ..KpiScope::default()
            },
            compliance_goal: 0.95,
            on_warning: vec![KpiAction::NotifyAssignee],
            on_breach: vec![KpiAction::NotifyTeamLead],
        },
        KpiRule {
            key: TemplateName::parse("resolve-in-3-days").expect("key"),
            name: "Resolve within 3 business days".into(),
            metric: KpiMetric::Case(target(SlaMetric::Resolution, 3 * 450, 0.8)),
            calendar: cal,
            scope: KpiScope::default(),
            compliance_goal: 0.9,
            on_warning: vec![KpiAction::NotifyAssignee],
            on_breach: vec![KpiAction::NotifyTeamLead, KpiAction::Reassign { to: lead }],
        },
        KpiRule {
            key: TemplateName::parse("follow-up").expect("key"),
            name: "Contact every customer at least every 30 days".into(),
            metric: KpiMetric::FollowUpGap {
                max_days: 30,
                warn_days: 20,
            },
            calendar: BusinessCalendar::always(),
            scope: KpiScope::default(),
            compliance_goal: 0.9,
            on_warning: vec![KpiAction::NotifyAssignee],
            on_breach: vec![KpiAction::NotifyTeamLead],
        },
    ]
}

/// Stores the workload's customers (in batches of 5,000) and cases in `tenant`, with the
/// rules; `progress` is called after each batch with how many customers and cases are in.
pub async fn load(
    store: &Arc<dyn Storage>,
    tenant: TenantId,
    w: &Workload,
    mut progress: impl FnMut(usize, usize),
) {
    let mut g = Generator::new(17);
    let owners: Vec<UserId> = (0..w.owners.max(1)).map(|_| g.user()).collect();
    let span = Duration::days(30).num_seconds();
    let mut ids: Vec<CustomerId> = Vec::with_capacity(w.customers);
    let mut batch = Vec::with_capacity(5_000);
    for k in 0..w.customers {
        let mut c = g.customer();
        c.owner = Some(owners[k % owners.len()]);
        let back = span - span * k as i64 / w.customers.max(1) as i64;
        c.created_at = w.start - Duration::seconds(back);
        c.updated_at = c.created_at;
        ids.push(c.id);
        batch.push(c);
        if batch.len() == 5_000 || k + 1 == w.customers {
            store
                .insert_customers(tenant, std::mem::take(&mut batch), WriteOptions::new())
                .await
                .expect("customers");
            progress(k + 1, 0);
        }
    }
    let span = Duration::days(30).num_seconds();
    for k in 0..w.cases {
        let kind = if k % 4 == 0 {
            CaseKind::Complaint
        } else {
            CaseKind::Inquiry
        };
        let back = span - span * k as i64 / w.cases.max(1) as i64;
        let opened = w.start - Duration::seconds(back);
        let customer = ids[(k * 7919) % ids.len().max(1)];
        let assignee = owners[k % owners.len()];
        let case = Case::open(
            customer,
            kind,
            "Help",
            Channel::Email,
            Some(assignee),
            opened,
        )
        .expect("case");
        store
            .insert_case(tenant, &case, WriteOptions::new())
            .await
            .expect("case");
        if (k + 1) % 5_000 == 0 || k + 1 == w.cases {
            progress(w.customers, k + 1);
        }
    }
    for rule in service_rules(owners[0]) {
        store.insert_kpi_rule(tenant, &rule).await.expect("rule");
    }
}

/// What the alerts of a run were, to compare two runs: warnings, breaches, customers
/// returned to the pool, conflicts.
pub fn raised(r: &KpiReport) -> (usize, usize, usize, usize) {
    (r.warnings, r.breaches, r.returned_to_pool, r.conflicts)
}

/// The first evaluation at `w.start` (every instant computed), then settling runs a minute
/// later until nothing is due; prints each run.
pub async fn settle(kpis: &Kpis, clock: &ManualClock, w: &Workload) {
    let engine = kpis.engine().await.expect("engine");
    for run in 0..6 {
        let at = w.start + Duration::minutes(run.min(1));
        clock.set(at);
        let t = Instant::now();
        let r = kpis.evaluate(&engine, at).await.expect("evaluate");
        let label = if run == 0 {
            "first run (every instant computed)"
        } else {
            "settling run"
        };
        println!(
            "{label}: {:.2} s, {} entries read, {} warnings, {} breaches",
            t.elapsed().as_secs_f64(),
            r.due,
            r.warnings,
            r.breaches
        );
        if run > 0 && r.due == 0 {
            return;
        }
    }
}

/// The measured part, on two copies of a settled database: `indexed` (through the due
/// instants) and `scanned` (every record) with nothing due (the indexed side best of 3),
/// then `hours` later; prints the times and ratios. Panics unless both sides raise the
/// same alerts. Without `idle_scan` the full scan with nothing due is left out (it raises
/// nothing, so the later runs start alike either way): the goal there is absolute.
pub async fn measure(
    indexed: &Kpis,
    scanned: &Kpis,
    clock: &ManualClock,
    w: &Workload,
    hours: i64,
    idle_scan: bool,
) {
    let engine = indexed.engine().await.expect("engine");
    // The instant of the settling runs: everything after it is scheduled later.
    let quiet = w.start + Duration::minutes(1);
    clock.set(quiet);
    let mut idle = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        let r = indexed.evaluate(&engine, quiet).await.expect("evaluate");
        idle = idle.min(t.elapsed().as_secs_f64());
        assert_eq!((r.due, raised(&r)), (0, (0, 0, 0, 0)), "nothing due: {r:?}");
    }
    if idle_scan {
        let t = Instant::now();
        let r = scanned.evaluate_scan(&engine, quiet).await.expect("scan");
        let scan_idle = t.elapsed().as_secs_f64();
        assert_eq!(
            raised(&r),
            (0, 0, 0, 0),
            "the scan finds nothing either: {r:?}"
        );
        println!(
            "nothing due: indexed {:.1} ms, full scan {:.2} s ({} cases, {} customers): {:.0}x",
            idle * 1e3,
            scan_idle,
            r.cases,
            r.customers,
            scan_idle / idle
        );
    } else {
        println!(
            "nothing due: indexed {:.1} ms (full scan left out)",
            idle * 1e3
        );
    }
    let later = w.start + Duration::hours(hours);
    clock.set(later);
    let t = Instant::now();
    let a = indexed.evaluate(&engine, later).await.expect("evaluate");
    let due = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let b = scanned.evaluate_scan(&engine, later).await.expect("scan");
    let scan = t.elapsed().as_secs_f64();
    assert_eq!(raised(&a), raised(&b), "indexed {a:?}, scan {b:?}");
    let entries = w.customers + w.cases;
    println!(
        "{hours} h later: {} of {entries} entries due ({:.2}%), {} warnings, {} breaches alike; \
         indexed {:.3} s, full scan {:.2} s: {:.0}x",
        a.due,
        100.0 * a.due as f64 / entries.max(1) as f64,
        a.warnings,
        a.breaches,
        due,
        scan,
        scan / due
    );
}
