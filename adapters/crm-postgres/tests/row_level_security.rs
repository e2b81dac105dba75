//! Row-level security: the whole conformance suite through a role that the tenant policies
//! apply to, and a session set to one tenant that can neither see nor write another's rows.
//! Needs a throwaway cluster (it creates a role); skipped with a message otherwise.

use crm_core::WriteOptions;
use std::sync::Arc;

use crm_core::{CustomerStore, TenantId};
use crm_postgres::PostgresStore;
use crm_testkit::postgres::{postgres_for_tests, PostgresServer, PostgresTarget};
use crm_testkit::{Fixture, Generator};
use tokio_postgres::NoTls;

/// The connection string of the application role, which is no superuser and owns nothing.
fn app_url(server: &PostgresServer) -> String {
    server
        .connection_string("postgres")
        .replace("user=postgres", "user=crm_app")
}

/// Migrates and turns on the policies as the owner, creates the application role, and
/// connects a store as that role with `crm.tenant_id` set per operation.
async fn store_under_policies(server: &PostgresServer) -> PostgresStore {
    let owner = PostgresStore::connect(&server.connection_string("postgres"))
        .await
        .expect("connect as owner");
    owner.migrate().await.expect("migrate");
    owner.enable_row_level_security().await.expect("policies");
    owner
        .enable_row_level_security()
        .await
        .expect("policies again: idempotent");
    server
        .psql(
            "postgres",
            "CREATE ROLE crm_app LOGIN NOSUPERUSER NOBYPASSRLS; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO crm_app; \
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO crm_app;",
        )
        .expect("application role");
    PostgresStore::builder(&app_url(server))
        .row_level_security(true)
        .connect()
        .await
        .expect("connect as crm_app")
}

fn throwaway() -> Option<PostgresServer> {
    match postgres_for_tests()? {
        PostgresTarget::Throwaway(s) => Some(s),
        PostgresTarget::External(_) => {
            eprintln!("row-level security tests create a role and need a throwaway cluster; CRM_TEST_POSTGRES_URL is set: skipped");
            None
        }
    }
}

async fn setup() -> Fixture {
    let Some(server) = throwaway() else {
        return Fixture::skip("no throwaway PostgreSQL cluster for row-level security");
    };
    let store = store_under_policies(&server).await;
    Fixture::new(Arc::new(store)).with_guard(server)
}

mod under_policies {
    crm_testkit::conformance_tests!(super::setup);
}

fn hex(t: TenantId) -> String {
    t.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_sees_and_writes_only_its_own_tenant() {
    let Some(server) = throwaway() else { return };
    let store = store_under_policies(&server).await;
    let (ours, theirs) = (TenantId::new(), TenantId::new());
    let mut gen = Generator::new(5);
    let mine: Vec<_> = (0..3).map(|_| gen.customer()).collect();
    let other: Vec<_> = (0..2).map(|_| gen.customer()).collect();
    let foreign_id = other[0].id;
    store
        .insert_customers(ours, mine, WriteOptions::new())
        .await
        .unwrap();
    store
        .insert_customers(theirs, other, WriteOptions::new())
        .await
        .unwrap();

    let (client, connection) = tokio_postgres::connect(&app_url(&server), NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // No tenant set: nothing at all.
    assert_eq!(count(&client, "SELECT count(*) FROM customers").await, 0);
    client
        .execute(
            "SELECT set_config('crm.tenant_id', $1, false)",
            &[&hex(ours)],
        )
        .await
        .unwrap();
    // Our rows only, even with no tenant filter in the statement.
    assert_eq!(count(&client, "SELECT count(*) FROM customers").await, 3);
    assert_eq!(count(&client, "SELECT count(*) FROM profiles").await, 3);
    let theirs_bytes = theirs.as_bytes().to_vec();
    let read = client
        .query_one(
            "SELECT count(*) FROM customers WHERE tenant_id = $1",
            &[&theirs_bytes],
        )
        .await
        .unwrap();
    assert_eq!(
        read.get::<_, i64>(0),
        0,
        "a foreign tenant's rows are hidden"
    );
    let updated = client
        .execute(
            "UPDATE customers SET lifecycle = 'churned' WHERE tenant_id = $1",
            &[&theirs_bytes],
        )
        .await
        .unwrap();
    assert_eq!(updated, 0, "a foreign tenant's rows cannot be updated");
    let err = client
        .execute(
            "INSERT INTO customer_tags (tenant_id, tag, customer_id) VALUES ($1, 'x', $2)",
            &[&theirs_bytes, &foreign_id.as_bytes().to_vec()],
        )
        .await
        .expect_err("a row of a foreign tenant cannot be written");
    assert!(
        err.as_db_error()
            .is_some_and(|e| e.message().contains("row-level security")),
        "unexpected error: {err}"
    );
    // The owner (a superuser here, which policies do not bind) sees all five, unchanged.
    assert_eq!(
        server
            .psql(
                "postgres",
                "SELECT count(*) FROM customers WHERE lifecycle <> 'churned'"
            )
            .unwrap()
            .trim(),
        "5"
    );
}
