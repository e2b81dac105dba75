//! Error kinds that say what happened: a value changed outside the adapter is `Corrupt`
//! (permanent), an exact key collision is `Duplicate`, and other constraint failures are
//! not mistaken for duplicates.

use crm_core::WriteOptions;
use crm_core::{Customer, CustomerStore, Error, TenantId};
use crm_sqlite::SqliteStore;

#[tokio::test]
async fn a_record_changed_outside_the_adapter_reads_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let store = SqliteStore::open(&path).unwrap();
    let tenant = TenantId::new();
    let ada = Customer::person("Ada").build().unwrap();
    let id = ada.id;
    store
        .insert_customers(tenant, vec![ada], WriteOptions::new())
        .await
        .unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    let changed = other
        .execute(
            "UPDATE customers SET record = '{\"not\": \"a customer\"}'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let err = store.get_customer(tenant, id).await.unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { backend: "sqlite", what } if what.contains("customer")),
        "{err:?}"
    );
    assert!(err.is_permanent(), "retrying cannot repair stored data");
}

#[tokio::test]
async fn a_repeated_id_is_a_duplicate() {
    let store = SqliteStore::open_in_memory().unwrap();
    let tenant = TenantId::new();
    let ada = Customer::person("Ada").build().unwrap();
    store
        .insert_customers(tenant, vec![ada.clone()], WriteOptions::new())
        .await
        .unwrap();
    let err = store
        .insert_customers(tenant, vec![ada], WriteOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Duplicate {
                entity: "customer",
                ..
            }
        ),
        "{err:?}"
    );
}
