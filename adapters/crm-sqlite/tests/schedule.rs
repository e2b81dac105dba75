//! Scheduled work on SQLite: a month of random work evaluated through the due instants
//! (kept by the triggers of migration 017) raises exactly what a full scan of the
//! in-memory reference store raises, run by run.

use std::sync::Arc;

use crm_sqlite::SqliteStore;
use crm_testkit::month::simulate_month;
use crm_testkit::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_evaluation_matches_the_full_scan_over_a_month() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path().join("crm.db")).expect("open");
    let summary = simulate_month(Arc::new(store), Arc::new(MemoryStore::new()), 7).await;
    assert!(
        summary.warnings > 20 && summary.breaches > 20,
        "{summary:?}"
    );
    assert!(
        summary.returned_to_pool > 0 && summary.rule_edits == 4,
        "{summary:?}"
    );
    assert!(summary.due_read * 3 < summary.scanned, "{summary:?}");
    eprintln!("{summary:?}");
}
