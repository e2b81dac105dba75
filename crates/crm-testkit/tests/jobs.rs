//! The job runner on the in-memory store: every job of every tenant, each under a lease; a
//! failing job does not stop the others; a lease left by a runner that died is taken over
//! once it lapses.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use crm_core::case::{Case, CaseKind};
use crm_core::kpi::{KpiAction, KpiMetric, KpiRule, KpiScope};
use crm_core::notify::{RecordingNotifier, StaffMember, StaticDirectory, TemplateName};
use crm_core::service::{DispatchJob, Job, JobCounts, KpiJob, ReminderJob, TenantCrm};
use crm_core::sla::{SlaMetric, SlaTarget};
use crm_core::{
    Channel, Crm, Customer, EmailAddress, Error, ManualClock, Result, TenantId, UserId,
};
use crm_testkit::conformance::t0;
use crm_testkit::MemoryStore;

struct Failing;

#[async_trait]
impl Job for Failing {
    fn name(&self) -> &str {
        "failing"
    }
    async fn run(&self, _t: &TenantCrm, _now: chrono::DateTime<chrono::Utc>) -> Result<JobCounts> {
        Err(Error::validation("job", "always fails"))
    }
}

fn reply_rule() -> KpiRule {
    KpiRule {
        key: TemplateName::parse("reply").unwrap(),
        name: "Reply within 4 hours".into(),
        metric: KpiMetric::Case(
            SlaTarget::new(SlaMetric::FirstReply, Duration::hours(4), 0.5).unwrap(),
        ),
        calendar: crm_core::calendar::BusinessCalendar::always(),
        scope: KpiScope::default(),
        compliance_goal: 0.9,
        on_warning: vec![KpiAction::NotifyAssignee],
        on_breach: vec![KpiAction::NotifyTeamLead],
    }
}

#[tokio::test]
async fn every_job_of_every_tenant_runs_under_a_lease() {
    let clock = Arc::new(ManualClock::new(t0()));
    let crm = Crm::new(Arc::new(MemoryStore::new())).with_clock(clock.clone());
    let notifier = Arc::new(RecordingNotifier::new());
    let directory = Arc::new(StaticDirectory::new());
    let agent = UserId::new();
    let mut tenants: Vec<TenantId> = Vec::new();
    for _ in 0..2 {
        let tenant = TenantId::new();
        tenants.push(tenant);
        directory.insert(
            tenant,
            StaffMember {
                id: agent,
                name: "Agent".into(),
                email: EmailAddress::parse("agent@example.com").unwrap(),
                locale: None,
                team: None,
                team_lead: None,
            },
        );
        let t = crm.tenant(tenant);
        let ann = t
            .customers()
            .register(Customer::person("Ann").owner(agent).build().unwrap())
            .await
            .unwrap();
        t.kpis().add_rule(reply_rule()).await.unwrap();
        let case = Case::open(
            ann.id,
            CaseKind::Complaint,
            "Broken",
            Channel::Email,
            Some(agent),
            t0(),
        )
        .unwrap();
        t.cases().open(case).await.unwrap();
    }
    tenants.sort();
    let runner = crm
        .jobs()
        .with_job(KpiJob)
        .unwrap()
        .with_job(Failing)
        .unwrap()
        .with_job(ReminderJob)
        .unwrap()
        .with_job(DispatchJob::new(notifier.clone(), directory.clone()))
        .unwrap()
        .with_lease(Duration::minutes(5))
        .unwrap();
    assert_eq!(
        crm.jobs()
            .with_job(KpiJob)
            .unwrap()
            .with_job(KpiJob)
            .unwrap_err()
            .field(),
        Some("job")
    );

    // Two hours in: each tenant's case warns its assignee, and the dispatcher delivers it.
    let now = t0() + Duration::hours(2);
    clock.set(now);
    let report = runner.run_due(now).await.unwrap();
    assert_eq!(
        (report.tenants, report.runs.len(), report.skipped),
        (2, 8, 0),
        "{report:#?}"
    );
    let order: Vec<(TenantId, &str)> = report
        .runs
        .iter()
        .map(|r| (r.tenant, r.job.as_str()))
        .collect();
    assert_eq!(
        &order[..4],
        &[
            (tenants[0], "kpis"),
            (tenants[0], "failing"),
            (tenants[0], "reminders"),
            (tenants[0], "dispatch")
        ]
    );
    for run in &report.runs {
        match run.job.as_str() {
            "kpis" => assert_eq!(run.counts["warnings"], 1, "{run:?}"),
            "failing" => assert!(run
                .error
                .as_deref()
                .is_some_and(|e| e.contains("always fails"))),
            "dispatch" => assert_eq!(run.counts["sent"], 1, "{run:?}"),
            _ => assert!(run.error.is_none(), "{run:?}"),
        }
    }
    assert_eq!(report.failures().count(), 2);
    assert_eq!(
        notifier.sent().len(),
        2,
        "one warning per tenant, delivered"
    );

    // A runner that died holding tenant 0's KPI lease: the job waits until the lease lapses.
    let dead = uuid::Uuid::new_v4();
    let later = now + Duration::hours(3);
    assert!(crm
        .storage()
        .take_lease(
            tenants[0],
            "kpis",
            dead,
            later,
            later + Duration::minutes(5)
        )
        .await
        .unwrap());
    clock.set(later);
    let report = runner.run_due(later).await.unwrap();
    assert_eq!(report.skipped, 1, "{report:#?}");
    assert!(!report
        .runs
        .iter()
        .any(|r| r.tenant == tenants[0] && r.job == "kpis"));
    let breached: u64 = report
        .runs
        .iter()
        .filter(|r| r.job == "kpis")
        .map(|r| r.counts["breaches"])
        .sum();
    assert_eq!(breached, 1, "tenant 1 breached; tenant 0 waits");
    let lapsed = later + Duration::minutes(6);
    clock.set(lapsed);
    let report = runner.run_due(lapsed).await.unwrap();
    assert_eq!(report.skipped, 0);
    let run = report
        .runs
        .iter()
        .find(|r| r.tenant == tenants[0] && r.job == "kpis")
        .expect("taken over");
    assert_eq!(
        run.counts["breaches"], 1,
        "the next runner finished the work"
    );
}
