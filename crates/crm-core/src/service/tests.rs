use super::*;
use crate::audit::AuditChange;
use crate::clock::ManualClock;
use crate::customer::CustomerQuery;
use crate::customer::Lifecycle;
use crate::interaction::{BatchReport, Interaction};
use crate::interaction::{Channel, InteractionKind};
use crate::mock::MockStorage;
use crate::notify::Notification;
use crate::page::PageRequest;
use crate::ports::WriteOptions;

use crate::segment::{FieldSchema, Segment};
use chrono::{DateTime, Utc};
use mockall::predicate::*;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap()
}

fn crm(mut store: MockStorage) -> Crm {
    store.expect_name().return_const("mock");
    store
        .expect_capabilities()
        .return_const(crate::ports::Capabilities::ALL);
    Crm::new(Arc::new(store)).with_clock(Arc::new(ManualClock::new(now())))
}

fn stored(version: u64) -> Customer {
    let mut c = Customer::person("Ann").build().unwrap();
    c.version = version;
    c
}

#[tokio::test]
async fn register_stamps_version_and_time_then_inserts_once() {
    let tenant = TenantId::new();
    let mut store = MockStorage::new();
    store
        .expect_insert_customer()
        .withf(move |t, c, options| {
            *t == tenant
                && c.version == 1
                && c.created_at == now()
                && c.updated_at == now()
                && options.outbox.is_empty()
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let c = crm(store)
        .tenant(tenant)
        .customers()
        .register(stored(0))
        .await
        .unwrap();
    assert_eq!(c.version, 1);
}

#[tokio::test]
async fn invalid_batch_never_reaches_storage() {
    let mut store = MockStorage::new();
    store.expect_append_interactions().never();
    let c = CustomerId::new();
    let mut rows: Vec<Interaction> = (0..3)
        .map(|_| {
            Interaction::builder(c, Channel::Phone, InteractionKind::Call)
                .at(now())
                .build()
                .unwrap()
        })
        .collect();
    rows[2].body = Some("x".repeat(Interaction::MAX_BODY_BYTES + 1));
    let err = crm(store)
        .tenant(TenantId::new())
        .interactions()
        .log_batch(rows)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("interactions[2].body"));
}

#[tokio::test]
async fn repeated_ids_in_a_batch_are_rejected_before_storage() {
    let mut store = MockStorage::new();
    store.expect_append_interactions().never();
    let c = CustomerId::new();
    let row = Interaction::builder(c, Channel::Phone, InteractionKind::Call)
        .at(now())
        .build()
        .unwrap();
    let mut again = row.clone();
    again.key = crate::ExternalRef::new("erp", "other").unwrap();
    let err = crm(store)
        .tenant(TenantId::new())
        .interactions()
        .log_batch(vec![row, again])
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("interactions[1].id"));
}

#[tokio::test]
async fn batch_rows_get_recorded_at_from_the_clock() {
    let mut store = MockStorage::new();
    store.expect_archive_horizon().returning(|_| Ok(None));
    store
        .expect_append_interactions()
        .withf(|_, batch, options| {
            batch.len() == 2
                && batch.iter().all(|i| i.recorded_at == now())
                && options.outbox.is_empty()
        })
        .times(1)
        .returning(|_, b, _| {
            Ok(BatchReport {
                inserted: b.len(),
                duplicates: 0,
            })
        });
    let c = CustomerId::new();
    let rows = (0..2)
        .map(|_| {
            Interaction::builder(c, Channel::Web, InteractionKind::Purchase)
                .at(now())
                .build()
                .unwrap()
        })
        .collect();
    let report = crm(store)
        .tenant(TenantId::new())
        .interactions()
        .log_batch(rows)
        .await
        .unwrap();
    assert_eq!(report.inserted, 2);
}

#[tokio::test]
async fn stale_update_is_refused_before_writing() {
    let current = stored(3);
    let mut store = MockStorage::new();
    let c2 = current.clone();
    store
        .expect_get_customer()
        .returning(move |_, _| Ok(c2.clone()));
    store.expect_update_customer().never();
    let mut stale = current.clone();
    stale.version = 2;
    let err = crm(store)
        .tenant(TenantId::new())
        .customers()
        .update(stale, None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Conflict {
            expected: 2,
            actual: 3,
            ..
        }
    ));
}

#[tokio::test]
async fn update_records_an_owner_change_and_bumps_the_version() {
    let current = stored(1);
    let actor = UserId::new();
    let new_owner = UserId::new();
    let mut store = MockStorage::new();
    let c2 = current.clone();
    store
        .expect_get_customer()
        .returning(move |_, _| Ok(c2.clone()));
    store
        .expect_update_customer()
        .with(always(), function(|c: &Customer| c.version == 2 && c.updated_at == now()), eq(1), function(move |options: &WriteOptions| {
            let owner_recorded = matches!(&options.ownership, Some(ch) if ch.from.is_none() && ch.to == Some(new_owner) && ch.changed_by == Some(actor) && ch.version == 2);
            // The audit entry names both changed fields, with the actor.
            let audited = matches!(options.audit.as_slice(), [e] if e.version == 2 && e.actor == Some(actor) && matches!(&e.change,
                AuditChange::Updated { fields } if fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>() == ["lifecycle", "owner"]));
            owner_recorded && audited && options.outbox.is_empty()
        }))
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let mut next = current.clone();
    next.owner = Some(new_owner);
    next.lifecycle = Lifecycle::Active;
    let saved = crm(store)
        .tenant(TenantId::new())
        .customers()
        .update(next, Some(actor))
        .await
        .unwrap();
    assert_eq!(saved.version, 2);
}

#[tokio::test]
async fn a_transfer_with_events_hands_events_and_notices_to_one_write() {
    let current = stored(1);
    let new_owner = UserId::new();
    let mut store = MockStorage::new();
    let c2 = current.clone();
    store
        .expect_get_customer()
        .returning(move |_, _| Ok(c2.clone()));
    store
        .expect_update_customer()
        .withf(move |_, c, expected, options| {
            let outbox = &options.outbox;
            let kinds: Vec<&str> = outbox
                .iter()
                .map(|m| m.notification.template.as_str())
                .collect();
            c.owner == Some(new_owner)
                && *expected == 1
                && options.ownership.is_some()
                && kinds
                    == [
                        "owner.assigned",
                        "customer.updated",
                        "customer.owner_changed",
                    ]
                && outbox[1].ordering_key == outbox[2].ordering_key
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let notice = Notification::builder(
        crate::notify::Recipient::User(new_owner),
        "owner.assigned",
        "assigned:1",
    )
    .build()
    .unwrap();
    let transfer = Transfer {
        new_owner: Some(new_owner),
        expected_version: 1,
        actor: None,
        reason: None,
    };
    crm(store)
        .with_events(true)
        .tenant(TenantId::new())
        .customers()
        .change_owner_notifying(current.id, transfer, vec![notice])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_bad_notification_stops_the_transfer_before_storage() {
    let store = MockStorage::new();
    let mut bad = Notification::builder(
        crate::notify::Recipient::User(UserId::new()),
        "owner.assigned",
        "k",
    )
    .build()
    .unwrap();
    bad.data = serde_json::json!(1);
    let transfer = Transfer {
        new_owner: None,
        expected_version: 1,
        actor: None,
        reason: None,
    };
    let e = crm(store)
        .tenant(TenantId::new())
        .customers()
        .change_owner_notifying(CustomerId::new(), transfer, vec![bad])
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("notifications[0].data"));
}

#[tokio::test]
async fn update_without_owner_change_records_none() {
    let current = stored(1);
    let mut store = MockStorage::new();
    let c2 = current.clone();
    store
        .expect_get_customer()
        .returning(move |_, _| Ok(c2.clone()));
    store
        .expect_update_customer()
        .withf(|_, _, _, options| options.ownership.is_none())
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    crm(store)
        .tenant(TenantId::new())
        .customers()
        .update(current, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn storage_errors_pass_through_with_their_source() {
    let mut store = MockStorage::new();
    store.expect_get_profile().returning(|_, _| {
        Err(Error::storage(
            "test",
            std::io::Error::other("disk on fire"),
        ))
    });
    let err = crm(store)
        .tenant(TenantId::new())
        .customers()
        .profile(CustomerId::new())
        .await
        .unwrap_err();
    let source = std::error::Error::source(&err).expect("source kept");
    assert_eq!(source.to_string(), "disk on fire");
}

#[tokio::test]
async fn ill_typed_rules_never_reach_storage() {
    let mut store = MockStorage::new();
    store.expect_count_matching().never();
    store.expect_find_matching().never();
    store.expect_save_segment().never();
    let crm = crm(store);
    let schema = FieldSchema::new(crate::Currency::parse("EUR").unwrap());
    let rule = crate::segment::parse("lifecycle > 3").unwrap();
    let err = crm
        .tenant(TenantId::new())
        .segments()
        .preview(&rule, &schema, &PageRequest::first(10))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("rule"));
    let seg = Segment::dynamic("bad", rule).unwrap();
    assert_eq!(
        crm.tenant(TenantId::new())
            .segments()
            .create(seg, &schema)
            .await
            .unwrap_err()
            .field(),
        Some("rule")
    );
}

#[tokio::test]
async fn page_limits_are_checked_before_storage() {
    let mut store = MockStorage::new();
    store.expect_list_customers().never();
    store.expect_timeline().never();
    let crm = crm(store);
    let bad = PageRequest::first(PageRequest::MAX_LIMIT + 1);
    assert_eq!(
        crm.tenant(TenantId::new())
            .customers()
            .search(&CustomerQuery::all(), &bad)
            .await
            .unwrap_err()
            .field(),
        Some("limit")
    );
    assert_eq!(
        crm.tenant(TenantId::new())
            .interactions()
            .timeline(CustomerId::new(), &bad)
            .await
            .unwrap_err()
            .field(),
        Some("limit")
    );
}
