//! The in-memory reference store passes the whole conformance suite.

use std::sync::Arc;

use crm_testkit::{Fixture, MemoryStore};

async fn setup() -> Fixture {
    Fixture::new(Arc::new(MemoryStore::new()))
}

crm_testkit::conformance_tests!(setup);
