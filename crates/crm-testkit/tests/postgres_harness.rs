//! The throwaway PostgreSQL harness starts a real server, answers SQL, and leaves nothing
//! behind. Skipped (with a message) where no server binaries exist, unless
//! `CRM_REQUIRE_POSTGRES=1`.
#![cfg(unix)]

use crm_testkit::postgres::{postgres_for_tests, PostgresTarget};

#[test]
fn a_throwaway_cluster_answers_and_is_removed() {
    let Some(target) = postgres_for_tests() else {
        return;
    };
    let PostgresTarget::Throwaway(server) = target else {
        eprintln!("CRM_TEST_POSTGRES_URL is set: the throwaway cluster is not used");
        return;
    };
    let dir = server.socket_dir().to_path_buf();
    assert_eq!(
        server.psql("postgres", "SELECT 40 + 2").unwrap().trim(),
        "42"
    );
    server.psql("postgres", "CREATE DATABASE crm_test").unwrap();
    assert_eq!(
        server
            .psql("crm_test", "SELECT current_database()")
            .unwrap()
            .trim(),
        "crm_test"
    );
    assert!(server
        .connection_string("crm_test")
        .contains("dbname=crm_test"));
    drop(server);
    assert!(!dir.exists(), "the cluster's directory is removed");
}
