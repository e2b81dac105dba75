//! Crash consistency on PostgreSQL: a writer process logs batches of purchases and folds
//! profiles every second batch, and is killed with SIGKILL 24 times: at a random moment,
//! right after a batch committed (before the fold that follows), and as a fold starts.
//! Afterwards every batch is stored whole or not at all, every batch the writer saw
//! committed is there, and every profile equals a rebuild, before and after folding what
//! the killed writers left pending ([`crm_testkit::crash`]).
//!
//! Against a throwaway cluster (skipped, with a message, where none can be had unless
//! `CRM_REQUIRE_POSTGRES=1`).

use std::sync::Arc;

use crm_core::{Crm, Storage, TenantId};
use crm_postgres::PostgresStore;
use crm_testkit::crash::{kill_writers, verify, When};
use crm_testkit::postgres::{postgres_for_tests, PostgresTarget};

/// The writer: batches and folds until killed. Does nothing in a normal test run.
#[test]
fn writer() {
    let Some(settings) = crm_testkit::crash::writer_settings() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = PostgresStore::connect(&settings.target).await.unwrap();
        let folding = store.clone();
        let tenant = settings.tenant;
        crm_testkit::crash::write_until_killed(Arc::new(store), &settings, 2, || {
            let store = folding.clone();
            async move {
                store.fold_profiles(tenant).await.unwrap();
            }
        })
        .await;
    });
}

#[test]
fn killed_writers_leave_whole_batches_and_exact_profiles() {
    let Some(target) = postgres_for_tests() else {
        return;
    };
    let PostgresTarget::Throwaway(server) = &target else {
        eprintln!("the crash test needs a throwaway cluster; CRM_TEST_POSTGRES_URL is set");
        return;
    };
    let url = server.connection_string("postgres");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tenant = TenantId::new();
    let (store, customers) = runtime.block_on(async {
        let store = PostgresStore::builder(&url)
            .migrate_on_connect(true)
            .connect()
            .await
            .unwrap();
        let crm = Crm::new(Arc::new(store.clone()));
        let mut ids = Vec::new();
        for i in 0..12 {
            let c = crm_core::Customer::person(&format!("Crash {i}"))
                .build()
                .unwrap();
            ids.push(crm.tenant(tenant).customers().register(c).await.unwrap().id);
        }
        (store, ids)
    });
    let whens = [When::Random, When::AfterCommit, When::DuringStep];
    let report = kill_writers("writer", &url, tenant, &customers, 24, &whens);
    runtime.block_on(async {
        let storage: Arc<dyn Storage> = Arc::new(store.clone());
        let batches = verify(&storage, tenant, &customers, &report.committed).await;
        let folded = store.fold_profiles(tenant).await.unwrap();
        let after = verify(&storage, tenant, &customers, &report.committed).await;
        assert_eq!(after, batches);
        assert_eq!(
            store.fold_profiles(tenant).await.unwrap(),
            0,
            "nothing left to fold"
        );
        eprintln!(
            "killed {:?} writers, {} of them inside a fold; {batches} whole batches stored, \
             {} seen committed; {folded} pending deltas folded afterwards",
            report.kills,
            report.inside_step,
            report.committed.len()
        );
    });
}
