//! The conformance suite: every storage adapter must pass every case.
//!
//! Each case is a public async function taking the storage under test as
//! `Arc<dyn Storage>`; it panics (through `assert!`) when the adapter misbehaves. Use
//! [`conformance_tests!`](crate::conformance_tests) to turn all of them into named tests, or
//! [`all_cases`] to run them by hand. Cases make their own tenants, so they may share one
//! store, but each test gets a fresh one from the setup function.

use crm_core::WriteOptions;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use crm_core::{
    AttrValue, Attributes, Channel, Crm, Cursor, Customer, CustomerId, CustomerQuery, Direction,
    EmailAddress, Error, ExternalRef, Interaction, InteractionKind, Lifecycle, ManualClock,
    MarketingConsent, Money, PageRequest, PhoneNumber, Profile, Storage, Tag, TeamId, TenantId,
    UserId, ValueClasses, ValueModel, ValueScores,
};
use rust_decimal::Decimal;

use crate::generate::Generator;
use crate::rules::segment_schema;
use crm_core::notify::{
    Claimed, DeliveryChannel, Dispatcher, DomainEvent, EventKind, Lease, MessageState,
    Notification, OutboxMessage, Priority, Purpose, Recipient, RecordingNotifier, RecordingSink,
    RetryPolicy, StaffMember, StaticDirectory,
};
use crm_core::segment::{parse, CompiledRule, Segment, Subject};
use crm_core::MessageId;

/// The boxed future a case returns.
pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A case as a plain function.
pub type CaseFn = fn(Arc<dyn Storage>) -> CaseFuture;

/// The fixed start of every case's clock.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-03T09:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

fn crm(store: &Arc<dyn Storage>) -> (Crm, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t0()));
    (Crm::new(store.clone()).with_clock(clock.clone()), clock)
}

async fn register(crm: &Crm, tenant: TenantId, c: Customer) -> Customer {
    crm.tenant(tenant)
        .customers()
        .register(c)
        .await
        .expect("register")
}

fn simple(name: &str) -> Customer {
    Customer::person(name).build().expect("valid name")
}

fn event(customer: CustomerId, kind: InteractionKind, at: DateTime<Utc>, key: &str) -> Interaction {
    Interaction::builder(customer, Channel::Phone, kind)
        .at(at)
        .key("test", key)
        .build()
        .expect("valid interaction")
}

/// Follows `next` cursors from the first page of `limit` to the last, collecting every item
/// and checking that no page exceeds its limit.
pub async fn collect_pages<T, F, Fut>(limit: u32, mut fetch: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = crm_core::Result<crm_core::Page<T>>>,
{
    let mut out = Vec::new();
    let mut page = PageRequest::first(limit);
    loop {
        let p = fetch(page).await.expect("page");
        assert!(
            p.items.len() <= limit as usize,
            "page larger than its limit"
        );
        out.extend(p.items);
        match p.next {
            Some(c) => page = PageRequest::after(c, limit),
            None => return out,
        }
    }
}

/// Every customer of the tenant matching `query`, following pages of `limit`.
pub async fn list_all(
    store: &Arc<dyn Storage>,
    tenant: TenantId,
    query: &CustomerQuery,
    limit: u32,
) -> Vec<Customer> {
    collect_pages(limit, |page| async move {
        store.list_customers(tenant, query, &page).await
    })
    .await
}

/// A customer's whole timeline, following pages of `limit`.
pub async fn full_timeline(
    store: &Arc<dyn Storage>,
    tenant: TenantId,
    customer: CustomerId,
    limit: u32,
) -> Vec<Interaction> {
    collect_pages(limit, |page| async move {
        store.timeline(tenant, customer, &page).await
    })
    .await
}

/// Asserts that the stored profile equals a rebuild from the stored timeline.
pub async fn assert_profile_is_rebuild(
    store: &Arc<dyn Storage>,
    tenant: TenantId,
    customer: CustomerId,
) {
    let history = full_timeline(store, tenant, customer, 1000).await;
    let stored = store.get_profile(tenant, customer).await.expect("profile");
    assert_eq!(
        stored,
        Profile::rebuild(&history).expect("the history's totals fit"),
        "profile differs from a rebuild of its history"
    );
}

fn assert_not_found<T: std::fmt::Debug>(r: Result<T, Error>, what: &str) {
    assert!(
        matches!(r, Err(Error::NotFound { .. })),
        "{what}: expected NotFound, got {r:?}"
    );
}

fn scores(p_alive: f64, clv: &str) -> ValueScores {
    ValueScores {
        p_alive,
        expected_purchases_90d: p_alive * 2.5,
        predicted_clv: Money::parse(clv, "EUR").expect("money"),
        scored_at: t0(),
    }
}

fn model(fitted_at: DateTime<Utc>, r: f64) -> ValueModel {
    ValueModel {
        fitted_at,
        calibration_end: chrono::NaiveDate::from_ymd_opt(1997, 9, 30).expect("date"),
        unit_days: 7,
        customers: 2357,
        repeat_customers: 946,
        purchases: crm_core::PurchaseModel {
            r,
            alpha: 4.413_602_020_988_323,
            a: 0.792_921_991_908_511_5,
            b: 2.425_906_675_490_116_6,
            log_likelihood: -9_582.429_206_673_933,
        },
        spend: crm_core::SpendModel {
            p: 6.249_572_270_717_247,
            q: 3.744_224_667_268_92,
            gamma: 15.443_520_964_709_338,
            log_likelihood: -4058.1,
        },
    }
}

/// A notification to a literal address, identified by `key`.
fn note(key: &str, priority: Priority) -> Notification {
    Notification::builder(
        Recipient::Email(EmailAddress::parse("ops@example.com").expect("email")),
        "test.note",
        key,
    )
    .data(serde_json::json!({ "key": key }))
    .priority(priority)
    .build()
    .expect("valid notification")
}

/// Enqueues one message per key at `at`, asserting all were stored; returns their ids.
async fn enqueue_keys(
    store: &Arc<dyn Storage>,
    tenant: TenantId,
    keys: &[&str],
    at: DateTime<Utc>,
) -> Vec<MessageId> {
    let messages: Vec<OutboxMessage> = keys
        .iter()
        .map(|k| OutboxMessage::new(note(k, Priority::Normal), at))
        .collect();
    let ids = messages.iter().map(|m| m.id).collect();
    let report = store.enqueue(tenant, messages).await.expect("enqueue");
    assert_eq!(report.enqueued, keys.len());
    ids
}

fn lease_until(at: DateTime<Utc>) -> Lease {
    Lease::new(at)
}

fn assert_lease_lost<T: std::fmt::Debug>(r: Result<T, Error>, what: &str) {
    assert!(
        matches!(r, Err(Error::LeaseLost { .. })),
        "{what}: expected LeaseLost, got {r:?}"
    );
}

fn keys_of(claimed: &[Claimed]) -> Vec<String> {
    claimed
        .iter()
        .map(|c| c.message.notification.idempotency_key.clone())
        .collect()
}

/// Every event the tenant's outbox holds (pending or not), by sequence number.
async fn drain_events(store: &Arc<dyn Storage>, tenant: TenantId) -> Vec<DomainEvent> {
    let sink = Arc::new(RecordingSink::new());
    let dispatcher = Dispatcher::new(
        tenant,
        store.clone(),
        Arc::new(RecordingNotifier::new()),
        Arc::new(StaticDirectory::new()),
        Arc::new(ManualClock::new(t0())),
    )
    .with_event_sink(sink.clone());
    let far = t0() + Duration::days(3650);
    while dispatcher.run_once(far).await.expect("dispatch").claimed > 0 {}
    sink.events()
}

fn crm_with_events(store: &Arc<dyn Storage>) -> (Crm, Arc<ManualClock>) {
    let (crm, clock) = crm(store);
    (crm.with_events(true), clock)
}

macro_rules! cases {
    ($($(#[$doc:meta])* async fn $name:ident($store:ident) $body:block)*) => {
        $(
            $(#[$doc])*
            pub async fn $name($store: Arc<dyn Storage>) $body
        )*

        /// This group's cases with their names, in a fixed order.
        pub(super) fn list() -> Vec<(&'static str, CaseFn)> {
            vec![$((stringify!($name), (|s| Box::pin($name(s)) as CaseFuture) as CaseFn)),*]
        }
    };
}

pub mod access;
pub mod accounts;
pub mod cases;
pub mod customers;
pub mod interactions;
pub mod kpi;
pub mod outbox;
pub mod profiles;
pub mod sales;
pub mod schedule;
pub mod segments;
pub mod staff;
pub mod tasks;
pub mod values;
pub mod whole;

pub use access::*;
pub use accounts::*;
pub use cases::*;
pub use customers::*;
pub use interactions::*;
pub use kpi::*;
pub use outbox::*;
pub use profiles::*;
pub use sales::*;
pub use schedule::*;
pub use segments::*;
pub use staff::*;
pub use tasks::*;
pub use values::*;
pub use whole::*;

/// Every case with its name, in a fixed order: the groups in the order of
/// [`GROUPS`](crate::GROUPS), each group's cases in the order of its file.
pub fn all_cases() -> Vec<(&'static str, CaseFn)> {
    let mut all = Vec::new();
    all.extend(customers::list());
    all.extend(interactions::list());
    all.extend(profiles::list());
    all.extend(values::list());
    all.extend(segments::list());
    all.extend(outbox::list());
    all.extend(cases::list());
    all.extend(tasks::list());
    all.extend(kpi::list());
    all.extend(staff::list());
    all.extend(access::list());
    all.extend(sales::list());
    all.extend(accounts::list());
    all.extend(whole::list());
    all.extend(schedule::list());
    all
}

/// Calls tenant B makes in `a_foreign_tenant_reaches_nothing`.
pub const FOREIGN_CALLS: usize = 64;

/// A KPI rule for the isolation case.
fn isolation_kpi_rule() -> crm_core::kpi::KpiRule {
    crm_core::kpi::KpiRule {
        key: crm_core::notify::TemplateName::parse("first-reply").unwrap(),
        name: "First reply within 4 h".into(),
        metric: crm_core::kpi::KpiMetric::Case(
            crm_core::sla::SlaTarget::new(
                crm_core::sla::SlaMetric::FirstReply,
                Duration::hours(4),
                0.8,
            )
            .unwrap(),
        ),
        calendar: crm_core::calendar::BusinessCalendar::always(),
        scope: crm_core::kpi::KpiScope::default(),
        compliance_goal: 0.9,
        on_warning: vec![],
        on_breach: vec![],
    }
}

/// A sink that fails transiently a given number of times, then records.
struct FlakySink {
    inner: RecordingSink,
    failures: std::sync::Mutex<usize>,
}

#[async_trait::async_trait]
impl crm_core::notify::EventSink for FlakySink {
    async fn deliver(&self, event: &DomainEvent) -> crm_core::Result<()> {
        {
            let mut left = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            if *left > 0 {
                *left -= 1;
                return Err(Error::notify(false, "sink unavailable"));
            }
        }
        self.inner.deliver(event).await
    }
}
