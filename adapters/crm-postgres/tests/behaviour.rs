//! PostgreSQL-specific behaviour: concurrent migrations, batches cut off by a dropped
//! connection, racing batches, folds and merges. Against a throwaway cluster (skipped,
//! with a message, where none can be had unless `CRM_REQUIRE_POSTGRES=1`).

use crm_core::WriteOptions;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use crm_core::{Crm, CustomerStore, InteractionStore, ProfileStore, TenantId};
use crm_postgres::PostgresStore;
use crm_testkit::postgres::{postgres_for_tests, PostgresTarget};
use crm_testkit::Generator;

/// A migrated store on `server` and a tenant with `n` generated customers.
async fn seeded(
    server: &crm_testkit::postgres::PostgresServer,
    seed: u64,
    n: usize,
) -> (
    PostgresStore,
    TenantId,
    Generator,
    Vec<crm_core::CustomerId>,
) {
    let store = PostgresStore::builder(&server.connection_string("postgres"))
        .migrate_on_connect(true)
        .connect()
        .await
        .unwrap();
    let tenant = TenantId::new();
    let mut gen = Generator::new(seed);
    let customers: Vec<_> = (0..n).map(|_| gen.customer()).collect();
    let ids = customers.iter().map(|c| c.id).collect();
    store
        .insert_customers(tenant, customers, WriteOptions::new())
        .await
        .unwrap();
    (store, tenant, gen, ids)
}

fn server() -> Option<crm_testkit::postgres::PostgresServer> {
    match postgres_for_tests()? {
        PostgresTarget::Throwaway(s) => Some(s),
        PostgresTarget::External(_) => {
            eprintln!("behaviour tests need a throwaway cluster; CRM_TEST_POSTGRES_URL is set");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_apply_once() {
    let Some(server) = server() else { return };
    let url = server.connection_string("postgres");
    let before = PostgresStore::connect(&url).await.expect("connect");
    assert_eq!(before.schema_version().await.expect("version"), 0);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            // Separate pools: as separate processes would be.
            let store = PostgresStore::connect(&url).await.expect("connect");
            store.migrate().await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("every concurrent migrate succeeds");
    }
    let applied = server
        .psql("postgres", "SELECT count(*) FROM refinery_schema_history")
        .unwrap();
    assert_eq!(
        applied.trim(),
        crm_postgres::SCHEMA_VERSION.to_string(),
        "each migration is recorded once"
    );
    let version = before.schema_version().await.expect("version");
    assert_eq!(version as usize, crm_postgres::SCHEMA_VERSION);
    let names = PostgresStore::migration_names();
    assert_eq!(names.len(), crm_postgres::SCHEMA_VERSION);
    assert_eq!(names[0], "initial");
    assert_eq!(
        server
            .psql("postgres", "SELECT count(*) FROM customers")
            .unwrap()
            .trim(),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_cut_off_by_a_dropped_connection_leaves_nothing() {
    let Some(server) = server() else { return };
    let (store, tenant, mut gen, ids) = seeded(&server, 8, 200).await;
    let crm = Crm::new(Arc::new(store.clone()));
    let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let mut cut_off = 0;
    for round in 0..20 {
        let batch = gen.interactions(
            &ids,
            20_000,
            start + Duration::days(round),
            Duration::days(1),
        );
        let writer = {
            let crm = crm.clone();
            tokio::spawn(async move { crm.tenant(tenant).interactions().log_batch(batch).await })
        };
        // Kill every other backend while the batch is (probably) in flight.
        tokio::time::sleep(std::time::Duration::from_millis(30 + 10 * round as u64)).await;
        server
            .psql(
                "postgres",
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE pid <> pg_backend_pid() AND datname = 'postgres' AND backend_type = 'client backend'",
            )
            .unwrap();
        let result = writer.await.unwrap();
        let stored: i64 = server
            .psql("postgres", "SELECT count(*) FROM interactions")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        match result {
            Ok(report) => assert_eq!(stored % 20_000, 0, "a finished batch is whole ({report:?})"),
            Err(e) => {
                cut_off += 1;
                assert!(
                    matches!(e, crm_core::Error::Storage { .. }),
                    "a lost connection is a storage error, got {e:?}"
                );
                assert_eq!(stored % 20_000, 0, "an interrupted batch left rows behind");
            }
        }
        // Profiles still equal a rebuild of what was stored.
        let profile = store.get_profile(tenant, ids[0]).await.unwrap();
        let history = crm_testkit::conformance::full_timeline(
            &(Arc::new(store.clone()) as Arc<dyn crm_core::Storage>),
            tenant,
            ids[0],
            1000,
        )
        .await;
        assert_eq!(profile, crm_core::Profile::rebuild(&history).unwrap());
        if cut_off >= 3 {
            break;
        }
    }
    assert!(
        cut_off > 0,
        "no batch was cut off; the test did not exercise the failure"
    );
    let _ = store
        .timeline(tenant, ids[0], &crm_core::PageRequest::first(1))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_batches_with_the_same_keys_store_each_once() {
    let Some(server) = server() else { return };
    let (store, tenant, mut gen, ids) = seeded(&server, 9, 50).await;
    let crm = Crm::new(Arc::new(store.clone()));
    let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    for round in 0..5 {
        let batch = gen.interactions(
            &ids,
            2_000,
            start + Duration::days(round),
            Duration::days(1),
        );
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (crm, batch) = (crm.clone(), batch.clone());
                // Same keys, fresh ids: only the keys make them the same.
                let batch = batch
                    .into_iter()
                    .map(|mut i| {
                        i.id = crm_core::InteractionId::new();
                        i
                    })
                    .collect();
                tokio::spawn(
                    async move { crm.tenant(tenant).interactions().log_batch(batch).await },
                )
            })
            .collect();
        let mut inserted = 0;
        for t in tasks {
            let report = t
                .await
                .unwrap()
                .expect("racing batches succeed (retried if needed)");
            assert_eq!(report.inserted + report.duplicates, 2_000);
            inserted += report.inserted;
        }
        assert_eq!(
            inserted, 2_000,
            "round {round}: each key stored exactly once"
        );
    }
    let total: i64 = server
        .psql("postgres", "SELECT count(*) FROM interactions")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(total, 10_000);
    for id in &ids {
        let history = crm_testkit::conformance::full_timeline(
            &(Arc::new(store.clone()) as Arc<dyn crm_core::Storage>),
            tenant,
            *id,
            1000,
        )
        .await;
        assert_eq!(
            store.get_profile(tenant, *id).await.unwrap(),
            crm_core::Profile::rebuild(&history).unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folds_racing_with_batches_keep_profiles_exact() {
    let Some(server) = server() else { return };
    let (store, tenant, mut gen, ids) = seeded(&server, 11, 40).await;
    let crm = Crm::new(Arc::new(store.clone()));
    let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let batches: Vec<_> = (0..30)
        .map(|n| gen.interactions(&ids, 300, start + Duration::days(n), Duration::days(1)))
        .collect();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (crm, done) = (crm.clone(), done.clone());
        tokio::spawn(async move {
            for b in batches {
                crm.tenant(tenant)
                    .interactions()
                    .log_batch(b)
                    .await
                    .unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    // Two folders at once, over and over, until the last batch is in.
    let folders: Vec<_> = (0..2)
        .map(|_| {
            let (store, done) = (store.clone(), done.clone());
            tokio::spawn(async move {
                let mut folded = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    folded += store.fold_profiles(tenant).await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
                }
                folded
            })
        })
        .collect();
    writer.await.unwrap();
    let mut folded = 0;
    for f in folders {
        folded += f.await.unwrap();
    }
    assert!(folded > 0, "the folders ran while batches were pending");
    let pending_before: i64 = server
        .psql("postgres", "SELECT count(*) FROM profile_deltas")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let storage = Arc::new(store.clone()) as Arc<dyn crm_core::Storage>;
    let mut expected = Vec::new();
    for id in &ids {
        let history = crm_testkit::conformance::full_timeline(&storage, tenant, *id, 1000).await;
        let rebuilt = crm_core::Profile::rebuild(&history).unwrap();
        // Pending deltas merged on read...
        assert_eq!(store.get_profile(tenant, *id).await.unwrap(), rebuilt);
        expected.push(rebuilt);
    }
    // ...and folded: nothing counted twice or lost, nothing left pending.
    let last = store.fold_profiles(tenant).await.unwrap();
    assert_eq!(last as i64, pending_before);
    assert_eq!(store.fold_profiles(tenant).await.unwrap(), 0);
    for (id, rebuilt) in ids.iter().zip(&expected) {
        assert_eq!(&store.get_profile(tenant, *id).await.unwrap(), rebuilt);
    }
    let pending: i64 = server
        .psql("postgres", "SELECT count(*) FROM profile_deltas")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_racing_with_batches_loses_nothing() {
    let Some(server) = server() else { return };
    let (store, tenant, mut gen, ids) = seeded(&server, 13, 2).await;
    let (survivor, gone) = (ids[0], ids[1]);
    let crm = Crm::new(Arc::new(store.clone()));
    let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let batches: Vec<_> = (0..40)
        .map(|n| gen.interactions(&[gone], 50, start + Duration::days(n), Duration::days(1)))
        .collect();
    let writer = {
        let crm = crm.clone();
        tokio::spawn(async move {
            let mut stored = 0;
            for b in batches {
                match crm.tenant(tenant).interactions().log_batch(b).await {
                    Ok(r) => stored += r.inserted,
                    // After the merge the old id is gone: such batches write nothing.
                    Err(crm_core::Error::NotFound { .. }) => {}
                    Err(e) => panic!("{e:?}"),
                }
            }
            stored
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    crm.tenant(tenant)
        .customers()
        .merge(
            survivor,
            &[gone],
            &crm_core::merge::MergePolicy::default(),
            false,
        )
        .await
        .unwrap();
    let stored = writer.await.unwrap();
    assert!(stored > 0, "some batches went in before the merge");
    let storage = Arc::new(store.clone()) as Arc<dyn crm_core::Storage>;
    let history = crm_testkit::conformance::full_timeline(&storage, tenant, survivor, 1000).await;
    assert_eq!(history.len(), stored, "every stored row is the survivor's");
    assert_eq!(
        store.get_profile(tenant, survivor).await.unwrap(),
        crm_core::Profile::rebuild(&history).unwrap()
    );
    store.fold_profiles(tenant).await.unwrap();
    assert_eq!(
        store.get_profile(tenant, survivor).await.unwrap(),
        crm_core::Profile::rebuild(&history).unwrap()
    );
    let orphans: i64 = server
        .psql(
            "postgres",
            "SELECT (SELECT count(*) FROM interactions i WHERE NOT EXISTS \
             (SELECT 1 FROM customers c WHERE c.tenant_id = i.tenant_id AND c.id = i.customer_id)) \
             + (SELECT count(*) FROM profile_deltas)",
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(orphans, 0, "no row points at the merged customer");
}

/// A month of random work evaluated through the due instants (kept by the triggers of
/// migration V15) raises exactly what a full scan of the in-memory reference raises.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_evaluation_matches_the_full_scan_over_a_month() {
    let Some(server) = server() else { return };
    let store = PostgresStore::builder(&server.connection_string("postgres"))
        .migrate_on_connect(true)
        .connect()
        .await
        .unwrap();
    let summary = crm_testkit::month::simulate_month(
        Arc::new(store),
        Arc::new(crm_testkit::MemoryStore::new()),
        11,
    )
    .await;
    assert!(
        summary.warnings > 20 && summary.breaches > 20,
        "{summary:?}"
    );
    assert!(summary.due_read * 3 < summary.scanned, "{summary:?}");
    eprintln!("{summary:?}");
}

/// A job that records when each run started and ended (and can be told to hang).
struct Probe {
    runs: std::sync::Mutex<Vec<(TenantId, std::time::Instant, std::time::Instant)>>,
    hang: bool,
}

#[async_trait::async_trait]
impl crm_core::service::Job for Probe {
    fn name(&self) -> &str {
        "probe"
    }
    async fn run(
        &self,
        tenant: &crm_core::TenantCrm,
        _now: chrono::DateTime<Utc>,
    ) -> crm_core::Result<crm_core::service::JobCounts> {
        let start = std::time::Instant::now();
        if self.hang {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let end = std::time::Instant::now();
        self.runs.lock().unwrap().push((tenant.id(), start, end));
        Ok(Default::default())
    }
}

/// Two runners on two connection pools against one database, ticking together through a
/// day of cases: every warning and breach is raised once in all, and no tenant's job ever
/// runs in both at once; a runner killed in the middle of a job leaves its lease to lapse,
/// and the next runner then does the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_runners_share_the_work_and_survive_a_killed_one() {
    use crm_core::case::{Case, CaseKind};
    use crm_core::kpi::{KpiAction, KpiMetric, KpiRule, KpiScope};
    use crm_core::notify::TemplateName;
    use crm_core::service::KpiJob;
    use crm_core::sla::{SlaMetric, SlaTarget};
    let Some(server) = server() else { return };
    let url = server.connection_string("postgres");
    let first = Arc::new(
        PostgresStore::builder(&url)
            .migrate_on_connect(true)
            .connect()
            .await
            .unwrap(),
    );
    let second = Arc::new(PostgresStore::builder(&url).connect().await.unwrap());
    let folds = [
        crm_postgres::FoldJob::new(first.clone()),
        crm_postgres::FoldJob::new(second.clone()),
    ];
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let clock = Arc::new(crm_core::ManualClock::new(t0));
    let crms: Vec<Crm> = [first as Arc<dyn crm_core::Storage>, second]
        .into_iter()
        .map(|s| Crm::new(s).with_clock(clock.clone()))
        .collect();
    let agent = crm_core::UserId::new();
    let rule = KpiRule {
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
    };
    for _ in 0..3 {
        let t = crms[0].tenant(TenantId::new());
        let c = t
            .customers()
            .register(
                crm_core::Customer::person("Ann")
                    .owner(agent)
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        t.kpis().add_rule(rule.clone()).await.unwrap();
        let call = crm_core::Interaction::builder(
            c.id,
            crm_core::Channel::Phone,
            crm_core::InteractionKind::Call,
        )
        .at(t0)
        .handled_by(agent)
        .build()
        .unwrap();
        t.interactions().log(call).await.unwrap();
        for _ in 0..3 {
            let case = Case::open(
                c.id,
                CaseKind::Complaint,
                "Broken",
                crm_core::Channel::Email,
                Some(agent),
                t0,
            )
            .unwrap();
            t.cases().open(case).await.unwrap();
        }
    }
    let probe = Arc::new(Probe {
        runs: Default::default(),
        hang: false,
    });
    struct Shared(Arc<Probe>);
    #[async_trait::async_trait]
    impl crm_core::service::Job for Shared {
        fn name(&self) -> &str {
            self.0.name()
        }
        async fn run(
            &self,
            t: &crm_core::TenantCrm,
            now: chrono::DateTime<Utc>,
        ) -> crm_core::Result<crm_core::service::JobCounts> {
            self.0.run(t, now).await
        }
    }
    let runners: Vec<_> = crms
        .iter()
        .zip(folds)
        .map(|(c, fold)| {
            c.jobs()
                .with_job(KpiJob)
                .unwrap()
                .with_job(Shared(probe.clone()))
                .unwrap()
                .with_job(fold)
                .unwrap()
        })
        .collect();
    let (mut warnings, mut breaches, mut skipped, mut folded) = (0, 0, 0, 0);
    for tick in 0..=12 {
        let now = t0 + Duration::minutes(30 * tick);
        clock.set(now);
        let (a, b) = tokio::join!(runners[0].run_due(now), runners[1].run_due(now));
        for report in [a.unwrap(), b.unwrap()] {
            assert_eq!(report.failures().count(), 0, "{report:#?}");
            skipped += report.skipped;
            for run in report.runs.iter().filter(|r| r.job == "fold_profiles") {
                folded += run.counts["folded"];
            }
            for run in report.runs.iter().filter(|r| r.job == "kpis") {
                warnings += run.counts.get("warnings").copied().unwrap_or(0);
                breaches += run.counts.get("breaches").copied().unwrap_or(0);
            }
        }
    }
    assert_eq!(
        (warnings, breaches),
        (9, 9),
        "each case's warning and breach once in all"
    );
    assert_eq!(folded, 3, "each tenant's one call folded once");
    let mut runs = probe.runs.lock().unwrap().clone();
    runs.sort_by_key(|r| (r.0, r.1));
    for pair in runs.windows(2) {
        if pair[0].0 == pair[1].0 {
            assert!(
                pair[0].2 <= pair[1].1,
                "a tenant's probe ran in both runners at once"
            );
        }
    }
    eprintln!(
        "{} probe runs, {skipped} jobs skipped for a lease held by the other runner",
        runs.len()
    );

    // A runner killed in the middle of a job: its lease stays until it lapses.
    let hanging = crms[0]
        .jobs()
        .with_job(Probe {
            runs: Default::default(),
            hang: true,
        })
        .unwrap()
        .with_lease(Duration::minutes(5))
        .unwrap();
    let now = t0 + Duration::hours(8);
    let killed = tokio::spawn(async move { hanging.run_due(now).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    killed.abort();
    assert!(killed.await.unwrap_err().is_cancelled());
    let next = runners[1]
        .run_due(now + Duration::minutes(1))
        .await
        .unwrap();
    let probes =
        |r: &crm_core::service::JobsReport| r.runs.iter().filter(|r| r.job == "probe").count();
    assert_eq!(
        (probes(&next), next.skipped),
        (2, 1),
        "the killed runner's tenant waits: {next:#?}"
    );
    let lapsed = runners[1]
        .run_due(now + Duration::minutes(6))
        .await
        .unwrap();
    assert_eq!(
        (probes(&lapsed), lapsed.skipped),
        (3, 0),
        "the lease lapsed: {lapsed:#?}"
    );
}
