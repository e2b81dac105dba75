//! crm-postgres passes the whole conformance suite against a real PostgreSQL server: a
//! throwaway cluster per case (see `crm_testkit::postgres`), or, when `CRM_TEST_POSTGRES_URL`
//! names a server, a fresh database on it per case, dropped afterwards.

use std::sync::Arc;

use crm_postgres::PostgresStore;
use crm_testkit::postgres::postgres_for_tests;
use crm_testkit::Fixture;

async fn setup() -> Fixture {
    let Some(target) = postgres_for_tests() else {
        return Fixture::skip(
            "no PostgreSQL server (set CRM_TEST_POSTGRES_URL or install the server binaries)",
        );
    };
    let store = PostgresStore::connect(&target.connection_string("postgres"))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    Fixture::new(Arc::new(store)).with_guard(target)
}

crm_testkit::conformance_tests!(setup);
