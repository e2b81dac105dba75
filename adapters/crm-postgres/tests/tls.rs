//! TLS to a real server (feature `tls`, on for this crate's tests): a throwaway cluster
//! listening on 127.0.0.1 with a certificate from a throwaway CA (made with `openssl`).
#![cfg(feature = "tls")]

use crm_core::WriteOptions;
use crm_core::{Customer, CustomerStore, Error, TenantId};
use crm_postgres::{PostgresStore, PostgresTls};
use crm_testkit::postgres::PostgresServer;
use crm_testkit::tls::TestCa;

/// Prints why the test is skipped, or fails when `CRM_REQUIRE_POSTGRES=1`.
fn skip(why: &str) {
    if std::env::var("CRM_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!("CRM_REQUIRE_POSTGRES=1 but the TLS test cannot run: {why}");
    }
    eprintln!("PostgreSQL TLS test skipped: {why}");
}

/// A CA in `dir` and a cluster serving a certificate it signed.
fn tls_server(dir: &std::path::Path) -> Option<(PostgresServer, TestCa)> {
    let ca = TestCa::make(dir).map_err(|why| skip(&why)).ok()?;
    let server = PostgresServer::start_with_tls(&ca.cert, &ca.key)
        .map_err(|why| skip(&why))
        .ok()?;
    Some((server, ca))
}

fn tls_clients(server: &PostgresServer) -> i64 {
    // psql comes in over the unix socket (no client address): only TCP clients count.
    server
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE s.ssl AND a.client_addr IS NOT NULL",
        )
        .expect("psql")
        .trim()
        .parse()
        .expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_over_tls_to_a_server_signed_by_a_trusted_root() {
    let dir = tempfile::tempdir().unwrap();
    let Some((server, ca)) = tls_server(dir.path()) else {
        return;
    };
    let url = format!(
        "{} sslmode=require",
        server.tcp_connection_string("postgres")
    );
    let store = PostgresStore::builder(&url)
        .tls(
            PostgresTls::new()
                .with_root_certificate_pem(&ca.ca_pem)
                .unwrap(),
        )
        .migrate_on_connect(true)
        .connect()
        .await
        .expect("TLS connection");
    let tenant = TenantId::new();
    let c = Customer::person("Ada").build().unwrap();
    let id = c.id;
    store
        .insert_customers(tenant, vec![c], WriteOptions::new())
        .await
        .unwrap();
    assert_eq!(store.get_customer(tenant, id).await.unwrap().id, id);
    assert!(tls_clients(&server) >= 1, "the pool's connections use TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_an_untrusted_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some((server, _ca)) = tls_server(dir.path()) else {
        return;
    };
    let other_dir = tempfile::tempdir().unwrap();
    let other = TestCa::make(other_dir.path()).expect("second CA");
    let url = format!(
        "{} sslmode=require",
        server.tcp_connection_string("postgres")
    );
    let err = PostgresStore::builder(&url)
        .tls(
            PostgresTls::new()
                .with_root_certificate_pem(&other.ca_pem)
                .unwrap(),
        )
        .connect()
        .await
        .expect_err("an untrusted server is refused");
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    assert_eq!(tls_clients(&server), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_without_tls_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some((server, _ca)) = tls_server(dir.path()) else {
        return;
    };
    let url = format!(
        "{} sslmode=require",
        server.tcp_connection_string("postgres")
    );
    let err = PostgresStore::builder(&url)
        .connect()
        .await
        .expect_err("no TLS configured, TLS required");
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
}

#[test]
fn roots_must_be_pem_certificates() {
    for pem in [
        &b""[..],
        b"not a certificate",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        match PostgresTls::new().with_root_certificate_pem(pem) {
            Err(Error::Validation { field, .. }) => assert_eq!(field, "root_certificate"),
            other => panic!("{pem:?}: expected a validation error, got {other:?}"),
        }
    }
}
