//! Crash consistency on SQLite: a writer process logs batches of purchases into a database
//! file and is killed with SIGKILL 24 times, at a random moment or right after a batch
//! committed. Afterwards every batch is stored whole or not at all, every batch the writer
//! saw committed is there, and every profile equals a rebuild ([`crm_testkit::crash`]).

use std::sync::Arc;

use crm_core::{Crm, Storage, TenantId};
use crm_sqlite::SqliteStore;
use crm_testkit::crash::{kill_writers, verify, When};

/// The writer: batches until killed. Does nothing in a normal test run.
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
        let store = SqliteStore::open(&settings.target).unwrap();
        crm_testkit::crash::write_until_killed(Arc::new(store), &settings, 0, || async {}).await;
    });
}

#[test]
fn killed_writers_leave_whole_batches_and_exact_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tenant = TenantId::new();
    let customers = runtime.block_on(async {
        let crm = Crm::new(Arc::new(SqliteStore::open(&path).unwrap()));
        let mut ids = Vec::new();
        for i in 0..12 {
            let c = crm_core::Customer::person(&format!("Crash {i}"))
                .build()
                .unwrap();
            ids.push(crm.tenant(tenant).customers().register(c).await.unwrap().id);
        }
        ids
    });
    let whens = [When::Random, When::AfterCommit];
    let target = path.to_str().unwrap();
    let report = kill_writers("writer", target, tenant, &customers, 24, &whens);
    runtime.block_on(async {
        // Opened after the kills: recovery from the write-ahead log happens here.
        let storage: Arc<dyn Storage> = Arc::new(SqliteStore::open(&path).unwrap());
        let batches = verify(&storage, tenant, &customers, &report.committed).await;
        eprintln!(
            "killed {:?} writers; {batches} whole batches stored, {} seen committed",
            report.kills,
            report.committed.len()
        );
    });
}
