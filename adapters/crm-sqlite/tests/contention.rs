//! A database held by another writer past the busy timeout is `Error::Contention`, and
//! nothing is written.

use std::time::Duration;

use crm_core::{
    Customer, CustomerQuery, CustomerStore, Error, PageRequest, TenantId, WriteOptions,
};
use crm_sqlite::SqliteStore;

#[tokio::test]
async fn a_writer_held_out_past_the_busy_timeout_gets_contention() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let store = SqliteStore::builder(&path)
        .busy_timeout(Duration::from_millis(50))
        .open()
        .unwrap();
    let tenant = TenantId::new();
    // Another process holds the write lock.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = store
        .insert_customers(
            tenant,
            vec![Customer::person("Ada").build().unwrap()],
            WriteOptions::new(),
        )
        .await
        .expect_err("the write lock is held elsewhere");
    assert!(
        matches!(
            err,
            Error::Contention {
                backend: "sqlite",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    other.execute_batch("ROLLBACK").unwrap();
    let page = store
        .list_customers(tenant, &CustomerQuery::default(), &PageRequest::first(10))
        .await
        .unwrap();
    assert!(page.items.is_empty(), "nothing was written");
    // Once the lock is released, the same write goes through.
    store
        .insert_customers(
            tenant,
            vec![Customer::person("Ada").build().unwrap()],
            WriteOptions::new(),
        )
        .await
        .unwrap();
}
