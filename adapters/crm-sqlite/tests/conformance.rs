//! crm-sqlite passes the whole conformance suite, on a database file in a temporary
//! directory (WAL, separate reader connections) and in memory.

use std::sync::Arc;

use crm_sqlite::SqliteStore;
use crm_testkit::Fixture;

async fn setup() -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path().join("crm.db")).expect("open");
    Fixture::new(Arc::new(store)).with_guard(dir)
}

crm_testkit::conformance_tests!(setup);

mod in_memory {
    use super::*;

    async fn setup() -> Fixture {
        Fixture::new(Arc::new(SqliteStore::open_in_memory().expect("open")))
    }

    crm_testkit::conformance_tests!(setup);
}
