//! Schema migrations: applied on open, idempotent, and an older database is upgraded in
//! place with its rows kept.

use crm_core::{CustomerStore, TenantId, ValueStore};
use crm_sqlite::{SqliteStore, SCHEMA_VERSION};

#[tokio::test]
async fn opening_migrates_to_the_latest_version_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    store.migrate().await.unwrap();
    drop(store);
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(again.schema_version().await.unwrap(), SCHEMA_VERSION);
}

#[tokio::test]
async fn a_version_one_database_is_upgraded_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let tenant = TenantId::new();
    let mut customer = crm_core::Customer::person("Old Timer").build().unwrap();
    customer.version = 1;
    {
        // What the first release wrote: schema 1 and a customer in it.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../src/sql/001_initial.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO customers (tenant_id, id, name_key, lifecycle, version, record) \
             VALUES (?1, ?2, 'old timer', 'lead', 1, ?3)",
            rusqlite::params![
                tenant.as_bytes().as_slice(),
                customer.id.as_bytes().as_slice(),
                serde_json::to_string(&customer).unwrap()
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO profiles (tenant_id, customer_id) VALUES (?1, ?2)",
            rusqlite::params![
                tenant.as_bytes().as_slice(),
                customer.id.as_bytes().as_slice()
            ],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(
        store.get_customer(tenant, customer.id).await.unwrap(),
        customer
    );
    assert_eq!(store.value_scores(tenant, customer.id).await.unwrap(), None);
    assert_eq!(store.latest_value_model(tenant).await.unwrap(), None);
}
