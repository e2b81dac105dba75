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
    crm.register(tenant, c).await.expect("register")
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

        /// Every case with its name, in a fixed order.
        pub fn all_cases() -> Vec<(&'static str, CaseFn)> {
            vec![$((stringify!($name), (|s| Box::pin($name(s)) as CaseFuture) as CaseFn)),*]
        }
    };
}

cases! {
    /// Every field of a customer survives a store round trip.
    async fn customer_round_trip_every_field(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = Customer::organization("Müller & Söhne 王 GmbH")
            .email("Info@Mueller.example")
            .email("sales@mueller.example")
            .phone("+49 30 1234567")
            .phone("+1 212 555 0143")
            .lifecycle(Lifecycle::AtRisk)
            .owner(UserId::new())
            .team(TeamId::new())
            .tag("VIP")
            .tag("b2b")
            .external_id("erp", "K-100")
            .external_id("web", "u/77")
            .attribute("industry", AttrValue::Text("auto".into()))
            .attribute("seats", AttrValue::Number(Decimal::new(12345, 2)))
            .attribute("active", AttrValue::Bool(true))
            .attribute("since", AttrValue::Date(chrono::NaiveDate::from_ymd_opt(2019, 12, 31).unwrap()))
            .attribute("limit", AttrValue::Money(Money::parse("5000.00", "EUR").unwrap()))
            .attribute("langs", AttrValue::TextList(vec!["de".into(), "zh".into()]))
            .consent(MarketingConsent { email: true, sms: false, phone: true })
            .referred_by(CustomerId::new())
            .build()
            .unwrap();
        let stored = register(&crm, tenant, c).await;
        let back = store.get_customer(tenant, stored.id).await.unwrap();
        assert_eq!(back, stored);
        assert_eq!(back.version, 1);
        assert_eq!(back.created_at, t0());
    }

    /// Reading an unknown customer is NotFound.
    async fn unknown_customer_is_not_found(store) {
        let tenant = TenantId::new();
        assert_not_found(store.get_customer(tenant, CustomerId::new()).await, "get");
        assert_not_found(store.get_profile(tenant, CustomerId::new()).await, "profile");
        assert_not_found(store.timeline(tenant, CustomerId::new(), &PageRequest::first(10)).await, "timeline");
        assert_not_found(store.ownership_history(tenant, CustomerId::new()).await, "history");
    }

    /// Inserting a second customer with the same id is Duplicate and changes nothing.
    async fn duplicate_customer_id_is_duplicate(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let first = register(&crm, tenant, simple("First")).await;
        let mut again = simple("Second");
        again.id = first.id;
        let r = crm.register(tenant, again).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "got {r:?}");
        assert_eq!(store.get_customer(tenant, first.id).await.unwrap().name.as_str(), "First");
    }

    /// An external id already held by another customer of the tenant is Duplicate, on
    /// insert and on update.
    async fn duplicate_external_id_is_duplicate(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        register(&crm, tenant, Customer::person("A").external_id("erp", "1").build().unwrap()).await;
        let r = crm.register(tenant, Customer::person("B").external_id("erp", "1").build().unwrap()).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "insert: got {r:?}");
        assert_eq!(list_all(&store, tenant, &CustomerQuery::all(), 10).await.len(), 1, "nothing half-written");
        let b = register(&crm, tenant, Customer::person("B").external_id("erp", "2").build().unwrap()).await;
        let mut changed = b.clone();
        changed.external_ids = [ExternalRef::new("erp", "1").unwrap()].into();
        let r = crm.update(tenant, changed, None).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "update: got {r:?}");
        assert_eq!(store.get_customer(tenant, b.id).await.unwrap(), b);
    }

    /// An update is stored with the next version and a new `updated_at`.
    async fn update_bumps_version(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let mut c = register(&crm, tenant, simple("Ann")).await;
        clock.advance(Duration::minutes(5));
        c.lifecycle = Lifecycle::Active;
        c.tags.insert(Tag::parse("vip").unwrap());
        c.emails.push(EmailAddress::parse("ann@example.org").unwrap());
        let updated = crm.update(tenant, c, None).await.unwrap();
        assert_eq!(updated.version, 2);
        assert_eq!(updated.updated_at, t0() + Duration::minutes(5));
        assert_eq!(updated.created_at, t0());
        assert_eq!(store.get_customer(tenant, updated.id).await.unwrap(), updated);
    }

    /// A stale version is Conflict and the stored record is unchanged.
    async fn stale_update_is_conflict(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("Ann")).await;
        let mut first = c.clone();
        first.lifecycle = Lifecycle::Active;
        let stored = crm.update(tenant, first, None).await.unwrap();
        let mut stale = c.clone();
        stale.lifecycle = Lifecycle::Churned;
        let r = crm.update(tenant, stale.clone(), None).await;
        assert!(matches!(r, Err(Error::Conflict { expected: 1, actual: 2, .. })), "got {r:?}");
        // The store itself checks the version, not only the service.
        stale.version = 2;
        let r = store.update_customer(tenant, &stale, 1, WriteOptions::new()).await;
        assert!(matches!(r, Err(Error::Conflict { .. })), "store: got {r:?}");
        assert_eq!(store.get_customer(tenant, c.id).await.unwrap(), stored);
    }

    /// Of many concurrent updates from the same version, exactly one wins.
    async fn concurrent_updates_exactly_one_wins(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("Ann")).await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            let mut next = c.clone();
            next.name = crm_core::DisplayName::parse(&format!("Ann {i}")).unwrap();
            next.version = 2;
            tasks.push(tokio::spawn(async move { store.update_customer(tenant, &next, 1, WriteOptions::new()).await }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => wins += 1,
                Err(Error::Conflict { .. }) => {}
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        assert_eq!(wins, 1);
        assert_eq!(store.get_customer(tenant, c.id).await.unwrap().version, 2);
    }

    /// Updating an unknown customer is NotFound.
    async fn update_unknown_is_not_found(store) {
        let tenant = TenantId::new();
        let mut c = simple("Ghost");
        c.version = 2;
        assert_not_found(store.update_customer(tenant, &c, 1, WriteOptions::new()).await, "update");
    }

    /// Owner changes are recorded, newest first, with who, why and the version.
    async fn owner_changes_are_recorded(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let (alice, bob, boss) = (UserId::new(), UserId::new(), UserId::new());
        let c = register(&crm, tenant, Customer::person("Ann").owner(alice).build().unwrap()).await;
        clock.advance(Duration::hours(1));
        let c = crm.change_owner(tenant, c.id, Some(bob), 1, Some(boss), Some("alice left")).await.unwrap();
        assert_eq!((c.owner, c.version), (Some(bob), 2));
        clock.advance(Duration::hours(1));
        let mut c2 = c.clone();
        c2.owner = None;
        crm.update(tenant, c2, Some(bob)).await.unwrap();
        let history = crm.ownership_history(tenant, c.id).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!((history[0].from, history[0].to, history[0].version), (Some(bob), None, 3));
        assert_eq!(history[1].from, Some(alice));
        assert_eq!(history[1].to, Some(bob));
        assert_eq!(history[1].changed_by, Some(boss));
        assert_eq!(history[1].reason.as_deref(), Some("alice left"));
        assert_eq!(history[1].at, t0() + Duration::hours(1));
        assert_eq!(store.get_customer(tenant, c.id).await.unwrap().owner, None);
    }

    /// A stale owner change is Conflict and records nothing.
    async fn stale_owner_change_is_conflict(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("Ann")).await;
        crm.change_owner(tenant, c.id, Some(UserId::new()), 1, None, None).await.unwrap();
        let r = crm.change_owner(tenant, c.id, Some(UserId::new()), 1, None, None).await;
        assert!(matches!(r, Err(Error::Conflict { .. })), "got {r:?}");
        assert_eq!(crm.ownership_history(tenant, c.id).await.unwrap().len(), 1);
    }

    /// Name-prefix search ignores case, in any script.
    async fn search_by_name_prefix(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        for n in ["Müller GmbH", "MÜLLER AG", "Mueller", "王小明", "王芳", "Miller"] {
            register(&crm, tenant, simple(n)).await;
        }
        let names = |q: &str| {
            let store = store.clone();
            let q = CustomerQuery { name_prefix: Some(q.to_string()), ..Default::default() };
            async move {
                let mut v: Vec<String> = list_all(&store, tenant, &q, 2).await.into_iter().map(|c| c.name.to_string()).collect();
                v.sort();
                v
            }
        };
        assert_eq!(names("mül").await, vec!["MÜLLER AG", "Müller GmbH"]);
        assert_eq!(names("王").await, vec!["王小明", "王芳"]);
        assert_eq!(names("M").await.len(), 4);
        assert!(names("Zed").await.is_empty());
        assert!(names("50%").await.is_empty(), "LIKE wildcards must be literal");
        assert!(names("_").await.is_empty(), "LIKE wildcards must be literal");
    }

    /// Email search matches any of the customer's addresses, ignoring case.
    async fn search_by_email(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, Customer::person("A").email("x@one.example").email("Shared@Two.example").build().unwrap()).await;
        let b = register(&crm, tenant, Customer::person("B").email("shared@two.example").build().unwrap()).await;
        register(&crm, tenant, Customer::person("C").email("c@three.example").build().unwrap()).await;
        let q = CustomerQuery { email: Some(EmailAddress::parse("SHARED@two.example").unwrap()), ..Default::default() };
        let ids: BTreeSet<_> = list_all(&store, tenant, &q, 10).await.into_iter().map(|c| c.id).collect();
        assert_eq!(ids, [a.id, b.id].into());
    }

    /// Phone search matches the E.164 form of any of the customer's numbers.
    async fn search_by_phone(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, Customer::person("A").phone("+49 30 1234567").phone("+1 212 555 0143").build().unwrap()).await;
        register(&crm, tenant, Customer::person("B").phone("+49 30 7654321").build().unwrap()).await;
        let q = CustomerQuery { phone: Some(PhoneNumber::parse("+12125550143").unwrap()), ..Default::default() };
        let found = list_all(&store, tenant, &q, 10).await;
        assert_eq!(found.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a.id]);
    }

    /// Tag search.
    async fn search_by_tag(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, Customer::person("A").tag("vip").tag("b2b").build().unwrap()).await;
        register(&crm, tenant, Customer::person("B").tag("b2b").build().unwrap()).await;
        let q = CustomerQuery { tag: Some(Tag::parse("VIP").unwrap()), ..Default::default() };
        assert_eq!(list_all(&store, tenant, &q, 10).await, vec![a]);
        let q = CustomerQuery { tag: Some(Tag::parse("b2b").unwrap()), ..Default::default() };
        assert_eq!(list_all(&store, tenant, &q, 1).await.len(), 2);
    }

    /// Owner and lifecycle filters combine with AND.
    async fn search_by_owner_and_lifecycle(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let (u1, u2) = (UserId::new(), UserId::new());
        let a = register(&crm, tenant, Customer::person("A").owner(u1).lifecycle(Lifecycle::Active).build().unwrap()).await;
        register(&crm, tenant, Customer::person("B").owner(u1).lifecycle(Lifecycle::Lead).build().unwrap()).await;
        register(&crm, tenant, Customer::person("C").owner(u2).lifecycle(Lifecycle::Active).build().unwrap()).await;
        let q = CustomerQuery { owner: Some(u1), lifecycle: Some(Lifecycle::Active), ..Default::default() };
        assert_eq!(list_all(&store, tenant, &q, 10).await, vec![a]);
        let q = CustomerQuery { owner: Some(u1), ..Default::default() };
        assert_eq!(list_all(&store, tenant, &q, 10).await.len(), 2);
        let q = CustomerQuery { lifecycle: Some(Lifecycle::Churned), ..Default::default() };
        assert!(list_all(&store, tenant, &q, 10).await.is_empty());
    }

    /// Lookup by an id in a source system.
    async fn search_by_external_id(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, Customer::person("A").external_id("erp", "K-1").build().unwrap()).await;
        register(&crm, tenant, Customer::person("B").external_id("web", "K-1").build().unwrap()).await;
        let q = CustomerQuery { external_id: Some(ExternalRef::new("erp", "K-1").unwrap()), ..Default::default() };
        assert_eq!(list_all(&store, tenant, &q, 10).await, vec![a]);
    }

    /// Paging through customers returns each exactly once, in id order.
    async fn customer_pages_have_no_gaps_or_repeats(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut gen = Generator::new(7);
        let mut ids = Vec::new();
        for _ in 0..57 {
            ids.push(register(&crm, tenant, gen.customer()).await.id);
        }
        ids.sort();
        for limit in [1, 10, 57, 100] {
            let got: Vec<_> = list_all(&store, tenant, &CustomerQuery::all(), limit).await.into_iter().map(|c| c.id).collect();
            assert_eq!(got, ids, "limit {limit}");
        }
        let first = store.list_customers(tenant, &CustomerQuery::all(), &PageRequest::first(57)).await.unwrap();
        assert!(first.next.is_none(), "an exactly full last page has no next cursor");
    }

    /// Customers inserted while a listing is paged through never cause a repeat or a gap
    /// among the customers that existed when it started.
    async fn customer_pages_under_concurrent_inserts(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut before = BTreeSet::new();
        for i in 0..40 {
            before.insert(register(&crm, tenant, simple(&format!("Old {i}"))).await.id);
        }
        let writer = {
            let crm = crm.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    crm.register(tenant, simple(&format!("New {i}"))).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        };
        let seen = list_all(&store, tenant, &CustomerQuery::all(), 3).await;
        writer.await.unwrap();
        let ids: Vec<_> = seen.iter().map(|c| c.id).collect();
        let unique: BTreeSet<_> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "a customer was listed twice");
        assert!(before.is_subset(&unique), "a customer that existed before was skipped");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "not in id order");
    }

    /// A malformed cursor is a validation error naming `cursor`; a bad limit names `limit`.
    async fn bad_cursor_or_limit_is_validation(store) {
        let tenant = TenantId::new();
        let (crm, _) = crm(&store);
        let c = register(&crm, tenant, simple("A")).await;
        let bad = PageRequest::after(Cursor::from_text("garbage"), 10);
        let r = store.list_customers(tenant, &CustomerQuery::all(), &bad).await;
        assert_eq!(r.unwrap_err().field(), Some("cursor"));
        let r = store.timeline(tenant, c.id, &bad).await;
        assert_eq!(r.unwrap_err().field(), Some("cursor"));
        let r = crm.search(tenant, &CustomerQuery::all(), &PageRequest::first(0)).await;
        assert_eq!(r.unwrap_err().field(), Some("limit"));
    }

    /// A customer failing validation is rejected with the field named and nothing stored.
    async fn invalid_customer_writes_nothing(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut c = simple("A");
        let email = EmailAddress::parse("a@x.example").unwrap();
        c.emails = vec![email.clone(), email];
        let r = crm.register(tenant, c.clone()).await;
        assert_eq!(r.unwrap_err().field(), Some("emails[1]"));
        assert_not_found(store.get_customer(tenant, c.id).await, "rejected customer");
        assert!(list_all(&store, tenant, &CustomerQuery::all(), 10).await.is_empty());
    }

    /// Every field of an interaction survives a round trip, and `recorded_at` is the clock's.
    async fn interaction_round_trip_every_field(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        clock.advance(Duration::days(1));
        let i = Interaction::builder(c.id, Channel::SelfService, InteractionKind::Purchase)
            .direction(Direction::Inbound)
            .handled_by(UserId::new())
            .at(t0() + Duration::microseconds(123_456_789))
            .subject("Bestellung 订单 #17")
            .body("line one\nline two\ttabbed")
            .amount(Money::parse("-12.345", "KWD").unwrap())
            .duration_secs(61)
            .wait_secs(7)
            .case(crm_core::CaseId::new())
            .attribute("sku", AttrValue::TextList(vec!["A-1".into(), "B-2".into()]))
            .attribute("qty", AttrValue::Number(Decimal::from(3)))
            .key("web-shop", "order/17")
            .build()
            .unwrap();
        let report = crm.log(tenant, i.clone()).await.unwrap();
        assert_eq!((report.inserted, report.duplicates), (1, 0));
        let back = full_timeline(&store, tenant, c.id, 10).await;
        let mut expected = i;
        expected.recorded_at = t0() + Duration::days(1);
        assert_eq!(back, vec![expected]);
    }

    /// Logging for an unknown customer is NotFound and writes nothing.
    async fn interaction_for_unknown_customer_is_not_found(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let batch = vec![
            event(c.id, InteractionKind::Call, t0(), "1"),
            event(CustomerId::new(), InteractionKind::Call, t0(), "2"),
        ];
        assert_not_found(crm.log_batch(tenant, batch).await, "log_batch");
        assert!(full_timeline(&store, tenant, c.id, 10).await.is_empty());
        assert_eq!(store.get_profile(tenant, c.id).await.unwrap(), Profile::default());
        // Nothing was remembered either: the same keys go in later.
        let r = crm.log(tenant, event(c.id, InteractionKind::Call, t0(), "1")).await.unwrap();
        assert_eq!(r.inserted, 1);
    }

    /// A batch with one invalid row is rejected whole, naming the row and field.
    async fn batch_with_bad_row_writes_nothing(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let mut batch: Vec<_> = (0..5).map(|n| event(c.id, InteractionKind::Purchase, t0(), &n.to_string())).collect();
        batch[3].subject = Some("x".repeat(Interaction::MAX_SUBJECT_CHARS + 1));
        let r = crm.log_batch(tenant, batch).await;
        assert_eq!(r.unwrap_err().field(), Some("interactions[3].subject"));
        assert!(full_timeline(&store, tenant, c.id, 10).await.is_empty());
        assert_eq!(store.get_profile(tenant, c.id).await.unwrap(), Profile::default());
    }

    /// Re-sending a batch stores nothing new and counts every row as a duplicate.
    async fn resent_batch_is_idempotent(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let mut gen = Generator::new(11);
        let batch = gen.interactions(&[c.id], 30, t0(), Duration::days(7));
        let r = crm.log_batch(tenant, batch.clone()).await.unwrap();
        assert_eq!((r.inserted, r.duplicates), (30, 0));
        let profile = store.get_profile(tenant, c.id).await.unwrap();
        // Same keys, fresh ids: still duplicates.
        let resent: Vec<_> = batch.iter().map(|i| { let mut j = i.clone(); j.id = crm_core::InteractionId::new(); j }).collect();
        let r = crm.log_batch(tenant, resent).await.unwrap();
        assert_eq!((r.inserted, r.duplicates), (0, 30));
        assert_eq!(store.get_profile(tenant, c.id).await.unwrap(), profile, "re-send changed the profile");
        assert_eq!(full_timeline(&store, tenant, c.id, 7).await.len(), 30);
    }

    /// A key repeated inside one batch is stored once.
    async fn duplicate_keys_within_a_batch_count_once(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let batch = vec![
            event(c.id, InteractionKind::Purchase, t0(), "same"),
            event(c.id, InteractionKind::Purchase, t0() + Duration::hours(1), "same"),
            event(c.id, InteractionKind::Call, t0(), "other"),
        ];
        let first_id = batch[0].id;
        let r = crm.log_batch(tenant, batch).await.unwrap();
        assert_eq!((r.inserted, r.duplicates), (2, 1));
        let stored = full_timeline(&store, tenant, c.id, 10).await;
        assert!(stored.iter().any(|i| i.id == first_id), "the first row with a key wins");
        assert_eq!(store.get_profile(tenant, c.id).await.unwrap().purchase_count, 1);
        assert_profile_is_rebuild(&store, tenant, c.id).await;
    }

    /// Idempotency keys are per tenant: the same key in another tenant is a new interaction.
    async fn same_key_in_other_tenant_is_independent(store) {
        let (crm, _) = crm(&store);
        let (t1, t2) = (TenantId::new(), TenantId::new());
        let a = register(&crm, t1, simple("A")).await;
        let b = register(&crm, t2, simple("B")).await;
        assert_eq!(crm.log(t1, event(a.id, InteractionKind::Call, t0(), "k")).await.unwrap().inserted, 1);
        assert_eq!(crm.log(t2, event(b.id, InteractionKind::Call, t0(), "k")).await.unwrap().inserted, 1);
    }

    /// Reusing a stored interaction id under a new key is Duplicate, and the batch is
    /// rolled back.
    async fn reused_interaction_id_is_duplicate(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let first = event(c.id, InteractionKind::Call, t0(), "1");
        crm.log(tenant, first.clone()).await.unwrap();
        let mut clash = event(c.id, InteractionKind::Call, t0(), "2");
        clash.id = first.id;
        let batch = vec![event(c.id, InteractionKind::Purchase, t0(), "3"), clash];
        let r = crm.log_batch(tenant, batch).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "got {r:?}");
        assert_eq!(full_timeline(&store, tenant, c.id, 10).await.len(), 1);
        assert_profile_is_rebuild(&store, tenant, c.id).await;
    }

    /// The timeline is newest first; equal times are ordered by id, descending.
    async fn timeline_is_newest_first(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let mut batch = Vec::new();
        for n in 0..10 {
            let at = t0() + Duration::minutes(n % 4);
            batch.push(event(c.id, InteractionKind::Call, at, &n.to_string()));
        }
        crm.log_batch(tenant, batch.clone()).await.unwrap();
        let mut expected: Vec<_> = batch.iter().map(|i| (i.occurred_at, i.id)).collect();
        expected.sort();
        expected.reverse();
        for limit in [1, 3, 10] {
            let got: Vec<_> = full_timeline(&store, tenant, c.id, limit).await.iter().map(|i| (i.occurred_at, i.id)).collect();
            assert_eq!(got, expected, "limit {limit}");
        }
    }

    /// Interactions logged while a timeline is paged through cause no repeats, and every
    /// older interaction is still reached.
    async fn timeline_pages_under_concurrent_inserts(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let mut gen = Generator::new(3);
        let old = gen.interactions(&[c.id], 60, t0(), Duration::days(30));
        crm.log_batch(tenant, old.clone()).await.unwrap();
        let writer = {
            let crm = crm.clone();
            let newer = gen.interactions(&[c.id], 30, t0() + Duration::days(31), Duration::days(5));
            tokio::spawn(async move {
                for i in newer {
                    crm.log(tenant, i).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        };
        let seen = full_timeline(&store, tenant, c.id, 4).await;
        writer.await.unwrap();
        let ids: Vec<_> = seen.iter().map(|i| i.id).collect();
        let unique: BTreeSet<_> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "an interaction was listed twice");
        assert!(old.iter().all(|i| unique.contains(&i.id)), "an older interaction was skipped");
        assert_profile_is_rebuild(&store, tenant, c.id).await;
    }

    /// Profiles equal a rebuild after every operation, over generated data with re-sends.
    async fn profiles_equal_rebuild_after_every_batch(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut gen = Generator::new(42);
        let mut ids = Vec::new();
        for _ in 0..6 {
            ids.push(register(&crm, tenant, gen.customer()).await.id);
        }
        let mut sent: Vec<Interaction> = Vec::new();
        for round in 0..8i64 {
            let mut batch = gen.interactions(&ids, 25, t0() + Duration::days(round), Duration::days(3));
            if round % 3 == 2 {
                batch.extend(sent.iter().take(10).cloned());
            }
            crm.log_batch(tenant, batch.clone()).await.unwrap();
            sent.extend(batch);
            for id in &ids {
                assert_profile_is_rebuild(&store, tenant, *id).await;
            }
        }
    }

    /// A new customer's profile is empty; profile fields follow the documented rules.
    async fn profile_aggregates_follow_the_rules(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let owner = UserId::new();
        let c = register(&crm, tenant, Customer::person("A").owner(owner).build().unwrap()).await;
        assert_eq!(crm.profile(tenant, c.id).await.unwrap(), Profile::default());
        let buy = |n: i64, amount: &str, cur: &str| Interaction::builder(c.id, Channel::Store, InteractionKind::Purchase)
            .at(t0() + Duration::days(n))
            .handled_by(owner)
            .amount(Money::parse(amount, cur).unwrap())
            .key("pos", &n.to_string())
            .build()
            .unwrap();
        let note = Interaction::builder(c.id, Channel::Other, InteractionKind::Note)
            .at(t0() + Duration::days(30))
            .build()
            .unwrap();
        let complaint = Interaction::builder(c.id, Channel::Email, InteractionKind::Complaint)
            .at(t0() + Duration::days(2))
            .build()
            .unwrap();
        crm.log_batch(tenant, vec![buy(1, "10.10", "EUR"), buy(5, "0.90", "EUR"), buy(3, "7", "USD"), note, complaint]).await.unwrap();
        let p = crm.profile(tenant, c.id).await.unwrap();
        assert_eq!(p.interaction_count, 5);
        assert_eq!(p.purchase_count, 3);
        assert_eq!(p.complaint_count, 1);
        assert_eq!(p.first_purchase_at, Some(t0() + Duration::days(1)));
        assert_eq!(p.last_purchase_at, Some(t0() + Duration::days(5)));
        assert_eq!(p.last_contact_at, Some(t0() + Duration::days(5)), "a note is not a contact");
        assert_eq!(p.revenue_in(crm_core::Currency::parse("EUR").unwrap()), Decimal::new(1100, 2));
        assert_eq!(p.revenue_in(crm_core::Currency::parse("USD").unwrap()), Decimal::from(7));
        assert_eq!(p.last_contact_by(owner), Some(t0() + Duration::days(5)));
        assert_eq!(p.channel_counts[&Channel::Store], 3);
    }

    /// Concurrent batches for the same customers keep profiles equal to a rebuild.
    async fn concurrent_batches_keep_profiles_exact(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut gen = Generator::new(5);
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(register(&crm, tenant, gen.customer()).await.id);
        }
        let mut tasks = Vec::new();
        for w in 0..4 {
            let batch = gen.interactions(&ids, 40, t0() + Duration::days(w), Duration::days(2));
            let crm = crm.clone();
            tasks.push(tokio::spawn(async move { crm.log_batch(tenant, batch).await }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().inserted, 40);
        }
        for id in &ids {
            assert_profile_is_rebuild(&store, tenant, *id).await;
        }
    }

    /// Tenant B reads nothing of tenant A's, by any method.
    async fn tenant_isolation_on_reads(store) {
        let (crm, _) = crm(&store);
        let (a, b) = (TenantId::new(), TenantId::new());
        let owner = UserId::new();
        let c = register(&crm, a, Customer::person("Secret").email("s@a.example").phone("+49 30 1234567").tag("vip").owner(owner).external_id("erp", "1").build().unwrap()).await;
        crm.log(a, event(c.id, InteractionKind::Purchase, t0(), "1")).await.unwrap();
        crm.change_owner(a, c.id, None, 1, None, None).await.unwrap();
        assert_not_found(store.get_customer(b, c.id).await, "get");
        assert_not_found(store.get_profile(b, c.id).await, "profile");
        assert_not_found(store.timeline(b, c.id, &PageRequest::first(10)).await, "timeline");
        assert_not_found(store.ownership_history(b, c.id).await, "history");
        let queries = [
            CustomerQuery::all(),
            CustomerQuery { name_prefix: Some("Sec".into()), ..Default::default() },
            CustomerQuery { email: Some(EmailAddress::parse("s@a.example").unwrap()), ..Default::default() },
            CustomerQuery { phone: Some(PhoneNumber::parse("+49301234567").unwrap()), ..Default::default() },
            CustomerQuery { tag: Some(Tag::parse("vip").unwrap()), ..Default::default() },
            CustomerQuery { owner: Some(owner), ..Default::default() },
            CustomerQuery { external_id: Some(ExternalRef::new("erp", "1").unwrap()), ..Default::default() },
        ];
        for q in &queries {
            assert!(list_all(&store, b, q, 10).await.is_empty(), "tenant B listed A's customer with {q:?}");
        }
        // A cursor from tenant A's listing leaks nothing into tenant B's.
        let after = PageRequest::after(Cursor::customer(CustomerId::from_bytes([0; 16])), 10);
        assert!(store.list_customers(b, &CustomerQuery::all(), &after).await.unwrap().items.is_empty());
    }

    /// Tenant B changes nothing of tenant A's, by any method.
    async fn tenant_isolation_on_writes(store) {
        let (crm, _) = crm(&store);
        let (a, b) = (TenantId::new(), TenantId::new());
        let c = register(&crm, a, simple("Mine")).await;
        let mut theirs = c.clone();
        theirs.lifecycle = Lifecycle::Churned;
        assert_not_found(crm.update(b, theirs.clone(), None).await, "update");
        theirs.version = 2;
        assert_not_found(store.update_customer(b, &theirs, 1, WriteOptions::new()).await, "store update");
        assert_not_found(crm.change_owner(b, c.id, Some(UserId::new()), 1, None, None).await, "change owner");
        assert_not_found(crm.log(b, event(c.id, InteractionKind::Purchase, t0(), "x")).await, "log");
        assert_eq!(store.get_customer(a, c.id).await.unwrap(), c);
        assert_eq!(store.get_profile(a, c.id).await.unwrap(), Profile::default());
        assert!(full_timeline(&store, a, c.id, 10).await.is_empty());
    }

    /// The same customer id may exist in two tenants as two independent records.
    async fn same_ids_in_two_tenants_are_independent(store) {
        let (crm, _) = crm(&store);
        let (a, b) = (TenantId::new(), TenantId::new());
        let ca = register(&crm, a, Customer::person("In A").external_id("erp", "1").build().unwrap()).await;
        let mut cb = Customer::person("In B").external_id("erp", "1").build().unwrap();
        cb.id = ca.id;
        let cb = register(&crm, b, cb).await;
        crm.log(a, event(ca.id, InteractionKind::Purchase, t0(), "1")).await.unwrap();
        assert_eq!(store.get_customer(a, ca.id).await.unwrap().name.as_str(), "In A");
        assert_eq!(store.get_customer(b, cb.id).await.unwrap().name.as_str(), "In B");
        assert_eq!(store.get_profile(a, ca.id).await.unwrap().purchase_count, 1);
        assert_eq!(store.get_profile(b, cb.id).await.unwrap().purchase_count, 0);
        let mut upd = cb.clone();
        upd.lifecycle = Lifecycle::Active;
        crm.update(b, upd, None).await.unwrap();
        assert_eq!(store.get_customer(a, ca.id).await.unwrap().version, 1);
    }

    /// Attributes and consent can be changed and removed by an update.
    async fn update_replaces_attributes_and_contact_points(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, Customer::person("A").email("a@x.example").tag("old").attribute("tier", AttrValue::Text("gold".into())).external_id("erp", "1").build().unwrap()).await;
        let mut next = c.clone();
        next.emails = vec![EmailAddress::parse("b@y.example").unwrap()];
        next.tags = [Tag::parse("new").unwrap()].into();
        next.attributes = Attributes::new();
        next.external_ids = [ExternalRef::new("erp", "2").unwrap()].into();
        next.consent.email = true;
        let stored = crm.update(tenant, next, None).await.unwrap();
        assert_eq!(store.get_customer(tenant, c.id).await.unwrap(), stored);
        let by_old_email = CustomerQuery { email: Some(EmailAddress::parse("a@x.example").unwrap()), ..Default::default() };
        assert!(list_all(&store, tenant, &by_old_email, 10).await.is_empty(), "old email still indexed");
        let by_old_tag = CustomerQuery { tag: Some(Tag::parse("old").unwrap()), ..Default::default() };
        assert!(list_all(&store, tenant, &by_old_tag, 10).await.is_empty(), "old tag still indexed");
        let by_new_ref = CustomerQuery { external_id: Some(ExternalRef::new("erp", "2").unwrap()), ..Default::default() };
        assert_eq!(list_all(&store, tenant, &by_new_ref, 10).await.len(), 1);
        // The released external id can be taken by another customer.
        register(&crm, tenant, Customer::person("B").external_id("erp", "1").build().unwrap()).await;
    }

    /// An empty batch is a no-op.
    async fn empty_batch_is_a_no_op(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let r = crm.log_batch(tenant, Vec::new()).await.unwrap();
        assert_eq!((r.inserted, r.duplicates), (0, 0));
        let r = store.append_interactions(tenant, Vec::new(), WriteOptions::new()).await.unwrap();
        assert_eq!((r.inserted, r.duplicates), (0, 0));
    }

    /// A large batch over many customers is stored whole with exact profiles.
    async fn large_batch_over_many_customers(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut gen = Generator::new(99);
        let mut ids = Vec::new();
        for _ in 0..50 {
            ids.push(register(&crm, tenant, gen.customer()).await.id);
        }
        let batch = gen.interactions(&ids, 2000, t0(), Duration::days(90));
        let r = crm.log_batch(tenant, batch).await.unwrap();
        assert_eq!(r.inserted, 2000);
        let mut total = 0;
        for id in &ids {
            assert_profile_is_rebuild(&store, tenant, *id).await;
            total += store.get_profile(tenant, *id).await.unwrap().interaction_count;
        }
        assert_eq!(total, 2000);
    }

    /// Value scores are stored, replaced and read back exactly; unscored customers have none.
    async fn value_scores_round_trip_and_replace(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, simple("A")).await;
        let b = register(&crm, tenant, simple("B")).await;
        let c = register(&crm, tenant, simple("C")).await;
        crm.set_value_scores(tenant, vec![(a.id, scores(0.25, "120.50")), (b.id, scores(0.987_654_321_012_345_6, "0.01"))]).await.unwrap();
        assert_eq!(crm.value_scores(tenant, a.id).await.unwrap(), Some(scores(0.25, "120.50")));
        assert_eq!(crm.value_scores(tenant, b.id).await.unwrap(), Some(scores(0.987_654_321_012_345_6, "0.01")));
        assert_eq!(crm.value_scores(tenant, c.id).await.unwrap(), None);
        crm.set_value_scores(tenant, vec![(a.id, scores(0.5, "99"))]).await.unwrap();
        assert_eq!(crm.value_scores(tenant, a.id).await.unwrap(), Some(scores(0.5, "99")));
        assert_eq!(crm.value_scores(tenant, b.id).await.unwrap(), Some(scores(0.987_654_321_012_345_6, "0.01")), "others untouched");
    }

    /// Scores for an unknown customer are refused whole; out-of-range scores are a
    /// validation error naming the entry.
    async fn value_scores_are_all_or_nothing(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, simple("A")).await;
        let r = crm.set_value_scores(tenant, vec![(a.id, scores(0.5, "1")), (CustomerId::new(), scores(0.5, "1"))]).await;
        assert_not_found(r, "unknown customer");
        assert_eq!(crm.value_scores(tenant, a.id).await.unwrap(), None, "nothing half-written");
        let r = crm.set_value_scores(tenant, vec![(a.id, scores(0.5, "1")), (a.id, scores(1.5, "1"))]).await;
        assert_eq!(r.unwrap_err().field(), Some("scores[1].p_alive"));
        assert_not_found(store.value_scores(tenant, CustomerId::new()).await, "read unknown");
    }

    /// The latest model per tenant is the one fitted last, whatever the save order; models
    /// round-trip exactly and a second model at the same instant is Duplicate.
    async fn value_models_latest_per_tenant(store) {
        let (crm, _) = crm(&store);
        let (a, b) = (TenantId::new(), TenantId::new());
        assert_eq!(crm.latest_value_model(a).await.unwrap(), None);
        let later = model(t0() + Duration::days(30), 0.242_594_522_644_512_45);
        let earlier = model(t0(), 0.3);
        crm.save_value_model(a, &later).await.unwrap();
        crm.save_value_model(a, &earlier).await.unwrap();
        assert_eq!(crm.latest_value_model(a).await.unwrap(), Some(later.clone()));
        let r = crm.save_value_model(a, &model(t0(), 0.4)).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "got {r:?}");
        assert_eq!(crm.latest_value_model(b).await.unwrap(), None, "tenant B sees no model of A's");
        let bad = ValueModel { unit_days: 0, ..later };
        assert_eq!(crm.save_value_model(b, &bad).await.unwrap_err().field(), Some("unit_days"));
    }

    /// Tenant B neither reads nor writes tenant A's scores.
    async fn value_scores_are_tenant_isolated(store) {
        let (crm, _) = crm(&store);
        let (a, b) = (TenantId::new(), TenantId::new());
        let c = register(&crm, a, simple("A")).await;
        crm.set_value_scores(a, vec![(c.id, scores(0.5, "1"))]).await.unwrap();
        assert_not_found(store.value_scores(b, c.id).await, "read");
        assert_not_found(crm.set_value_scores(b, vec![(c.id, scores(0.1, "2"))]).await, "write");
        assert_eq!(crm.value_scores(a, c.id).await.unwrap(), Some(scores(0.5, "1")));
    }

    /// Rules evaluated by the store select exactly the customers the in-memory reference
    /// selects, on 1,000 random rules over random customers, profiles, scores and
    /// attributes (some stored with the wrong type).
    async fn segment_rules_match_the_reference_evaluation(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let now = t0() + Duration::days(10);
        let mut gen = Generator::new(2718);
        let mut ids = Vec::new();
        for _ in 0..60 {
            // Registration times with microseconds, so created_at compares at full precision.
            clock.advance(Duration::microseconds(gen.below(20_000_000_000) as i64));
            ids.push(register(&crm, tenant, gen.segment_customer(now)).await.id);
        }
        let history = gen.interactions(&ids, 700, t0() - Duration::days(400), Duration::days(420));
        crm.log_batch(tenant, history).await.unwrap();
        let mut scored = Vec::new();
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
            let cur = if i % 5 == 0 { "USD" } else { "EUR" };
            scored.push((*id, ValueScores {
                p_alive: (i % 11) as f64 / 10.0,
                expected_purchases_90d: (i % 7) as f64 / 4.0,
                predicted_clv: Money::new(Decimal::new((i * 3_517 % 100_000) as i64, 2), cur).unwrap(),
                scored_at: now,
            }));
        }
        crm.set_value_scores(tenant, scored).await.unwrap();
        let segments = crm_core::value_class::RfmSegment::ALL;
        let abc = [crm_core::value_class::AbcClass::A, crm_core::value_class::AbcClass::B, crm_core::value_class::AbcClass::C];
        let classified: Vec<(CustomerId, ValueClasses)> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 != 1)
            .map(|(i, id)| (*id, ValueClasses {
                r: (i % 5) as u8 + 1,
                f: (i * 7 % 5) as u8 + 1,
                m: (i * 3 % 5) as u8 + 1,
                segment: segments[i % segments.len()],
                abc: abc[i % 3],
                as_of: now.date_naive(),
            }))
            .collect();
        crm.set_value_classes(tenant, classified).await.unwrap();
        let mut subjects = Vec::new();
        for id in &ids {
            subjects.push((
                store.get_customer(tenant, *id).await.unwrap(),
                store.get_profile(tenant, *id).await.unwrap(),
                store.value_scores(tenant, *id).await.unwrap(),
                store.value_classes(tenant, *id).await.unwrap(),
            ));
        }
        let mut nonempty = 0;
        for case in 0..1000 {
            let rule = gen.rule(3, now);
            let compiled = CompiledRule::new(&rule, &schema).unwrap_or_else(|e| panic!("case {case}: generated rule {rule} is ill-typed: {e}"));
            let mut expected: Vec<CustomerId> = subjects
                .iter()
                .filter(|(c, p, s, k)| compiled.matches(&Subject { customer: c, profile: p, scores: s.as_ref(), classes: k.as_ref() }, now))
                .map(|(c, _, _, _)| c.id)
                .collect();
            expected.sort();
            let got = collect_pages(25, |page| {
                let (store, rule, schema) = (&store, &rule, &schema);
                async move { store.find_matching(tenant, rule, schema, now, &page).await }
            })
            .await;
            assert_eq!(got, expected, "case {case}: members of `{rule}` differ from the reference");
            let count = store.count_matching(tenant, &rule, &schema, now).await.unwrap();
            assert_eq!(count as usize, expected.len(), "case {case}: count of `{rule}`");
            if !expected.is_empty() && expected.len() < ids.len() {
                nonempty += 1;
            }
        }
        assert!(nonempty > 200, "the random rules should split the customers often, did {nonempty} times");
    }

    /// Segment definitions round-trip; names are unique per tenant.
    async fn segment_definitions_round_trip(store) {
        let (crm, _) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let schema = segment_schema();
        let vip = crm.create_segment(tenant, Segment::dynamic("VIP", parse(r#""vip" in tags and revenue > 100"#).unwrap()).unwrap(), &schema).await.unwrap();
        let picked = crm.create_segment(tenant, Segment::fixed("Fair 2025").unwrap(), &schema).await.unwrap();
        assert_eq!(vip.created_at, t0());
        assert_eq!(store.get_segment(tenant, vip.id).await.unwrap(), vip);
        let names: Vec<String> = crm.segments(tenant).await.unwrap().iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, vec!["Fair 2025", "VIP"]);
        let r = crm.create_segment(tenant, Segment::fixed("VIP").unwrap(), &schema).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "same name: {r:?}");
        assert_not_found(store.get_segment(other, picked.id).await, "other tenant");
        assert!(crm.segments(other).await.unwrap().is_empty());
        crm.create_segment(other, Segment::fixed("VIP").unwrap(), &schema).await.unwrap();
        let bad = Segment::dynamic("Bad", parse("revenue > \"x\"").unwrap()).unwrap();
        assert_eq!(crm.create_segment(tenant, bad, &schema).await.unwrap_err().field(), Some("rule"));
    }

    /// Refreshing a dynamic segment stores its members and reports who entered and left.
    async fn segment_refresh_reports_entered_and_left(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let a = register(&crm, tenant, Customer::person("A").lifecycle(Lifecycle::Active).build().unwrap()).await;
        let b = register(&crm, tenant, Customer::person("B").lifecycle(Lifecycle::Active).build().unwrap()).await;
        let c = register(&crm, tenant, Customer::person("C").lifecycle(Lifecycle::Lead).build().unwrap()).await;
        let seg = crm.create_segment(tenant, Segment::dynamic("Active", parse(r#"lifecycle = "active""#).unwrap()).unwrap(), &schema).await.unwrap();
        let (count, first) = crm.preview(tenant, seg.rule().unwrap(), &schema, &PageRequest::first(1)).await.unwrap();
        assert_eq!(count, 2);
        assert_eq!(first.items, vec![a.id.min(b.id)]);
        let first = crm.refresh_segment(tenant, seg.id, &schema).await.unwrap();
        let mut both = vec![a.id, b.id];
        both.sort();
        assert_eq!((first.entered, first.left, first.members), (both, vec![], 2));
        let mut b2 = b.clone();
        b2.lifecycle = Lifecycle::Churned;
        crm.update(tenant, b2, None).await.unwrap();
        let mut c2 = c.clone();
        c2.lifecycle = Lifecycle::Active;
        crm.update(tenant, c2, None).await.unwrap();
        clock.advance(Duration::days(1));
        let second = crm.refresh_segment(tenant, seg.id, &schema).await.unwrap();
        assert_eq!((second.entered, second.left, second.members), (vec![c.id], vec![b.id], 2));
        let again = crm.refresh_segment(tenant, seg.id, &schema).await.unwrap();
        assert!(again.entered.is_empty() && again.left.is_empty());
        assert!(crm.is_member(tenant, seg.id, c.id).await.unwrap());
        assert!(!crm.is_member(tenant, seg.id, b.id).await.unwrap());
        assert_eq!(crm.segments_of(tenant, a.id).await.unwrap(), vec![seg.id]);
        let members = collect_pages(1, |page| {
            let crm = crm.clone();
            async move { crm.segment_members(tenant, seg.id, &page).await }
        })
        .await;
        let mut expected = vec![a.id, c.id];
        expected.sort();
        assert_eq!(members, expected);
    }

    /// Static segments are changed by hand, all or nothing; dynamic and static do not mix.
    async fn static_segments_are_hand_picked(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let a = register(&crm, tenant, simple("A")).await;
        let b = register(&crm, tenant, simple("B")).await;
        let fair = crm.create_segment(tenant, Segment::fixed("Fair").unwrap(), &schema).await.unwrap();
        let change = crm.change_static_members(tenant, fair.id, vec![a.id, b.id], vec![]).await.unwrap();
        assert_eq!(change.members, 2);
        let change = crm.change_static_members(tenant, fair.id, vec![], vec![a.id]).await.unwrap();
        assert_eq!((change.entered, change.left, change.members), (vec![], vec![a.id], 1));
        let r = crm.change_static_members(tenant, fair.id, vec![a.id, CustomerId::new()], vec![]).await;
        assert_not_found(r, "unknown customer");
        assert!(!crm.is_member(tenant, fair.id, a.id).await.unwrap(), "nothing half-written");
        let r = crm.refresh_segment(tenant, fair.id, &schema).await;
        assert!(r.unwrap_err().is_validation());
        let dynamic = crm.create_segment(tenant, Segment::dynamic("All", parse("purchase_count >= 0").unwrap()).unwrap(), &schema).await.unwrap();
        let r = store.change_static_members(tenant, dynamic.id, vec![a.id], vec![], None).await;
        assert!(r.unwrap_err().is_validation());
        assert_not_found(crm.refresh_segment(tenant, crm_core::SegmentId::new(), &schema).await, "unknown segment");
    }

    /// Tenant B neither sees nor changes tenant A's segments, and rules never select
    /// another tenant's customers.
    async fn segments_are_tenant_isolated(store) {
        let (crm, _) = crm(&store);
        let (a, b) = (TenantId::new(), TenantId::new());
        let schema = segment_schema();
        let mine = register(&crm, a, simple("Mine")).await;
        register(&crm, b, simple("Theirs")).await;
        let seg = crm.create_segment(a, Segment::fixed("Picked").unwrap(), &schema).await.unwrap();
        crm.change_static_members(a, seg.id, vec![mine.id], vec![]).await.unwrap();
        assert_not_found(crm.segment_members(b, seg.id, &PageRequest::first(10)).await, "members");
        assert_not_found(crm.change_static_members(b, seg.id, vec![], vec![mine.id]).await, "change");
        assert_not_found(crm.is_member(b, seg.id, mine.id).await, "is_member");
        let all = parse("interaction_count >= 0").unwrap();
        let (count, page) = crm.preview(b, &all, &schema, &PageRequest::first(10)).await.unwrap();
        assert_eq!(count, 1);
        assert!(!page.items.contains(&mine.id));
        assert!(crm.is_member(a, seg.id, mine.id).await.unwrap());
    }

    /// Value classes are stored, replaced and read back; out-of-range scores are refused.
    async fn value_classes_round_trip(store) {
        let (crm, _) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let a = register(&crm, tenant, simple("A")).await;
        let classes = ValueClasses {
            r: 5,
            f: 3,
            m: 1,
            segment: crm_core::value_class::RfmSegment::PotentialLoyalist,
            abc: crm_core::value_class::AbcClass::C,
            as_of: t0().date_naive(),
        };
        assert_eq!(crm.value_classes(tenant, a.id).await.unwrap(), None);
        crm.set_value_classes(tenant, vec![(a.id, classes)]).await.unwrap();
        assert_eq!(crm.value_classes(tenant, a.id).await.unwrap(), Some(classes));
        let newer = ValueClasses { r: 1, segment: crm_core::value_class::RfmSegment::Lost, ..classes };
        crm.set_value_classes(tenant, vec![(a.id, newer)]).await.unwrap();
        assert_eq!(crm.value_classes(tenant, a.id).await.unwrap(), Some(newer));
        let r = crm.set_value_classes(tenant, vec![(a.id, ValueClasses { m: 6, ..classes })]).await;
        assert_eq!(r.unwrap_err().field(), Some("classes[0].m"));
        assert_not_found(crm.set_value_classes(tenant, vec![(a.id, classes), (CustomerId::new(), classes)]).await, "unknown");
        assert_eq!(crm.value_classes(tenant, a.id).await.unwrap(), Some(newer), "nothing half-written");
        assert_not_found(store.value_classes(other, a.id).await, "other tenant");
    }

    /// Bulk registration stores every customer or none.
    async fn bulk_registration_is_all_or_nothing(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut gen = Generator::new(17);
        let batch: Vec<Customer> = (0..25).map(|_| gen.customer()).collect();
        let stored = crm.register_many(tenant, batch).await.unwrap();
        for c in &stored {
            assert_eq!(store.get_customer(tenant, c.id).await.unwrap(), *c);
            assert_eq!(c.version, 1);
            assert_eq!(store.get_profile(tenant, c.id).await.unwrap(), Profile::default());
        }
        let fresh = simple("Fresh");
        let mut clash = simple("Clash");
        clash.id = stored[3].id;
        let r = crm.register_many(tenant, vec![fresh.clone(), clash]).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "existing id: {r:?}");
        assert_not_found(store.get_customer(tenant, fresh.id).await, "nothing half-written");
        let a = Customer::person("A").external_id("erp", "same").build().unwrap();
        let b = Customer::person("B").external_id("erp", "same").build().unwrap();
        let r = crm.register_many(tenant, vec![a.clone(), b]).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "repeated external id: {r:?}");
        assert_not_found(store.get_customer(tenant, a.id).await, "nothing half-written");
        let mut bad = simple("Bad");
        let email = EmailAddress::parse("x@y.example").unwrap();
        bad.emails = vec![email.clone(), email];
        let r = crm.register_many(tenant, vec![simple("Ok"), bad]).await;
        assert_eq!(r.unwrap_err().field(), Some("customers[1].emails[1]"));
        assert_eq!(list_all(&store, tenant, &CustomerQuery::all(), 100).await.len(), 25);
    }

    /// Enqueued messages read back unchanged; a repeated idempotency key (stored before, or
    /// earlier in the same call) is skipped and counted; a bad message writes nothing.
    async fn outbox_enqueue_round_trips_and_skips_repeated_keys(store) {
        let tenant = TenantId::new();
        let first = OutboxMessage::new(note("a", Priority::High), t0());
        let report = store.enqueue(tenant, vec![first.clone()]).await.unwrap();
        assert_eq!((report.enqueued, report.duplicates), (1, 0));
        let back = store.outbox_message(tenant, first.id).await.unwrap();
        assert!(back.seq > 0, "the store assigns a sequence number");
        assert_eq!(back, OutboxMessage { seq: back.seq, ..first.clone() });
        let again = OutboxMessage::new(note("a", Priority::Low), t0());
        let fresh = OutboxMessage::new(note("b", Priority::Low), t0());
        let twice = OutboxMessage::new(note("b", Priority::Low), t0());
        let report = store.enqueue(tenant, vec![again.clone(), fresh.clone(), twice]).await.unwrap();
        assert_eq!((report.enqueued, report.duplicates), (1, 2));
        assert_not_found(store.outbox_message(tenant, again.id).await, "skipped message");
        assert_eq!(store.pending_count(tenant).await.unwrap(), 2);
        let mut bad = OutboxMessage::new(note("c", Priority::Low), t0());
        bad.notification.data = serde_json::json!("not an object");
        let ok = OutboxMessage::new(note("d", Priority::Low), t0());
        let r = store.enqueue(tenant, vec![ok.clone(), bad]).await;
        assert_eq!(r.unwrap_err().field(), Some("messages[1].notification.data"));
        assert_not_found(store.outbox_message(tenant, ok.id).await, "nothing half-written");
        let mut reused = OutboxMessage::new(note("e", Priority::Low), t0());
        reused.id = first.id;
        let r = store.enqueue(tenant, vec![reused]).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "reused id: {r:?}");
        assert_eq!(store.pending_count(tenant).await.unwrap(), 2);
        let not_before = t0() + Duration::hours(2);
        let later = OutboxMessage::new(
            Notification { not_before: Some(not_before), ..note("later", Priority::Normal) },
            t0(),
        );
        assert_eq!(later.next_attempt_at, not_before);
        store.enqueue(tenant, vec![later.clone()]).await.unwrap();
        let back_later = store.outbox_message(tenant, later.id).await.unwrap();
        assert_eq!(back_later, OutboxMessage { seq: back_later.seq, ..later });
        let back_fresh = store.outbox_message(tenant, fresh.id).await.unwrap();
        assert!(back.seq < back_fresh.seq && back_fresh.seq < back_later.seq, "seq increases");
    }

    /// Claims take due messages only, highest priority first, then by due time, up to the
    /// limit; a claimed message is not handed out again while its lease holds.
    async fn outbox_claims_due_messages_in_priority_order(store) {
        let tenant = TenantId::new();
        let at = |m: i64| t0() + Duration::minutes(m);
        let mut messages = vec![
            OutboxMessage::new(note("low", Priority::Low), at(0)),
            OutboxMessage::new(note("normal-late", Priority::Normal), at(2)),
            OutboxMessage::new(note("normal-early", Priority::Normal), at(1)),
            OutboxMessage::new(note("urgent", Priority::Urgent), at(3)),
        ];
        messages.push(OutboxMessage::new(
            Notification { not_before: Some(at(60)), ..note("future", Priority::Urgent) },
            at(0),
        ));
        store.enqueue(tenant, messages).await.unwrap();
        let now = at(5);
        let first = store.claim(tenant, now, lease_until(at(10)), 3).await.unwrap();
        assert_eq!(keys_of(&first), ["urgent", "normal-early", "normal-late"]);
        let second = store.claim(tenant, now, lease_until(at(10)), 10).await.unwrap();
        assert_eq!(keys_of(&second), ["low"], "leased messages are not claimed again");
        assert!(store.claim(tenant, at(9), lease_until(at(20)), 10).await.unwrap().is_empty());
        let lapsed = store.claim(tenant, at(10), lease_until(at(100)), 10).await.unwrap();
        assert_eq!(lapsed.len(), 4, "lapsed leases can be claimed again");
        let due = store.claim(tenant, at(60), lease_until(at(70)), 10).await.unwrap();
        assert_eq!(keys_of(&due), ["future"], "due at its not-before time");
        assert!(store.claim(tenant, at(0), lease_until(at(1)), 0).await.unwrap().is_empty());
    }

    /// Only the current lease can record an outcome: a stale lease is LeaseLost, an unknown
    /// message NotFound; a released message can be claimed again at once.
    async fn outbox_lease_guards_every_outcome(store) {
        let tenant = TenantId::new();
        let ids = enqueue_keys(&store, tenant, &["m"], t0()).await;
        let old = store.claim(tenant, t0(), lease_until(t0() + Duration::minutes(1)), 1).await.unwrap();
        let old_lease = old[0].lease;
        assert_lease_lost(store.mark_sent(tenant, ids[0], Lease::new(t0()), t0()).await, "foreign lease");
        let later = t0() + Duration::minutes(2);
        let new = store.claim(tenant, later, lease_until(later + Duration::minutes(1)), 1).await.unwrap();
        assert_eq!(new.len(), 1);
        assert_lease_lost(store.mark_sent(tenant, ids[0], old_lease, later).await, "lapsed lease");
        assert_lease_lost(store.mark_failed(tenant, ids[0], old_lease, "x", None).await, "lapsed lease");
        assert_lease_lost(store.release(tenant, ids[0], old_lease).await, "lapsed lease");
        store.release(tenant, ids[0], new[0].lease).await.unwrap();
        let again = store.claim(tenant, later, lease_until(later + Duration::minutes(1)), 1).await.unwrap();
        assert_eq!(again.len(), 1, "released: claimable at once");
        assert_eq!(again[0].message.attempts, 0, "a release is not an attempt");
        store.mark_sent(tenant, ids[0], again[0].lease, later).await.unwrap();
        let sent = store.outbox_message(tenant, ids[0]).await.unwrap();
        assert_eq!((sent.state, sent.sent_at), (MessageState::Sent, Some(later)));
        assert_lease_lost(store.mark_sent(tenant, ids[0], again[0].lease, later).await, "already sent");
        assert!(store.claim(tenant, later + Duration::days(1), lease_until(later + Duration::days(2)), 9).await.unwrap().is_empty());
        assert_eq!(store.pending_count(tenant).await.unwrap(), 0);
        assert_not_found(store.mark_sent(tenant, MessageId::new(), old_lease, later).await, "unknown");
    }

    /// A failed attempt is counted and rescheduled; without a retry time the message is a
    /// dead letter, listed page by page and re-queued with its attempts reset.
    async fn outbox_failures_retry_then_dead_letter_and_requeue(store) {
        let tenant = TenantId::new();
        let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let ids = enqueue_keys(&store, tenant, &refs, t0()).await;
        let lease = lease_until(t0() + Duration::minutes(5));
        let claimed = store.claim(tenant, t0(), lease, 5).await.unwrap();
        assert_eq!(claimed.len(), 5);
        let retry_at = t0() + Duration::minutes(30);
        store.mark_failed(tenant, ids[0], lease, "451 try later", Some(retry_at)).await.unwrap();
        let m = store.outbox_message(tenant, ids[0]).await.unwrap();
        assert_eq!((m.state, m.attempts, m.next_attempt_at), (MessageState::Pending, 1, retry_at));
        assert_eq!(m.last_error.as_deref(), Some("451 try later"));
        for id in &ids[1..] {
            store.mark_failed(tenant, *id, lease, "550 no such user", None).await.unwrap();
        }
        let later = t0() + Duration::minutes(10);
        assert!(store.claim(tenant, later, lease_until(later + Duration::minutes(5)), 9).await.unwrap().is_empty(), "not before its retry time");
        let retry = store.claim(tenant, retry_at, lease_until(retry_at + Duration::minutes(5)), 9).await.unwrap();
        assert_eq!(keys_of(&retry), ["k0"]);
        assert_eq!(retry[0].message.attempts, 1);
        let dead = collect_pages(3, |page| { let store = store.clone(); async move { store.dead_letters(tenant, &page).await } }).await;
        assert_eq!(dead.iter().map(|m| m.id).collect::<Vec<_>>(), ids[1..].to_vec());
        assert!(dead.iter().all(|m| m.state == MessageState::Dead && m.attempts == 1));
        store.requeue(tenant, ids[1], later).await.unwrap();
        let m = store.outbox_message(tenant, ids[1]).await.unwrap();
        assert_eq!((m.state, m.attempts, m.next_attempt_at), (MessageState::Pending, 0, later));
        let r = store.requeue(tenant, ids[1], later).await;
        assert_eq!(r.unwrap_err().field(), Some("state"), "only dead letters are re-queued");
        assert_not_found(store.requeue(tenant, MessageId::new(), later).await, "unknown");
        let claimed = store.claim(tenant, later, lease_until(later + Duration::minutes(5)), 9).await.unwrap();
        assert_eq!(keys_of(&claimed), ["k1"]);
        assert_eq!(store.dead_letters(tenant, &PageRequest::first(10)).await.unwrap().items.len(), 3);
        let r = store.dead_letters(tenant, &PageRequest::after(Cursor::from_text("junk"), 10)).await;
        assert_eq!(r.unwrap_err().field(), Some("cursor"));
    }

    /// Dispatchers claiming at the same time never get the same message, and together they
    /// deliver every message exactly once.
    async fn outbox_concurrent_claims_never_share_a_message(store) {
        let tenant = TenantId::new();
        let keys: Vec<String> = (0..120).map(|i| format!("c{i:03}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        enqueue_keys(&store, tenant, &refs, t0()).await;
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let lease = Lease::new(t0() + Duration::minutes(5));
                    let batch = store.claim(tenant, t0(), lease, 7).await.expect("claim");
                    if batch.is_empty() {
                        return mine;
                    }
                    // The other dispatchers claim while this batch is held.
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    for c in batch {
                        store.mark_sent(tenant, c.message.id, c.lease, t0()).await.expect("sent under its lease");
                        mine.push(c.message.notification.idempotency_key);
                    }
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        all.sort();
        assert_eq!(all, keys, "every message exactly once");
        assert_eq!(store.pending_count(tenant).await.unwrap(), 0);
    }

    /// Outboxes of two tenants are independent, including equal idempotency keys.
    async fn outbox_is_tenant_isolated(store) {
        let (a, b) = (TenantId::new(), TenantId::new());
        let ids = enqueue_keys(&store, a, &["same"], t0()).await;
        enqueue_keys(&store, b, &["same"], t0()).await;
        assert_not_found(store.outbox_message(b, ids[0]).await, "other tenant's message");
        let lease = lease_until(t0() + Duration::minutes(1));
        let claimed = store.claim(b, t0(), lease, 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_ne!(claimed[0].message.id, ids[0]);
        assert_not_found(store.mark_sent(b, ids[0], lease, t0()).await, "other tenant's message");
        assert_eq!(store.pending_count(a).await.unwrap(), 1);
        assert!(store.dead_letters(b, &PageRequest::first(10)).await.unwrap().items.is_empty());
    }

    /// The dispatcher resolves staff through the directory (and escalates to team leads),
    /// reaches customers at their primary email, and sends marketing only with consent.
    async fn dispatcher_resolves_recipients_and_respects_consent(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let (agent, lead) = (UserId::new(), UserId::new());
        let directory = Arc::new(StaticDirectory::new());
        let staff = |id, name: &str, email: &str, team_lead| StaffMember {
            id, name: name.into(), email: EmailAddress::parse(email).unwrap(),
            locale: Some(crm_core::notify::Locale::parse("zh-CN").unwrap()), team: None, team_lead,
        };
        directory.insert(tenant, staff(agent, "Wang Fang", "fang@example.com", Some(lead)));
        directory.insert(tenant, staff(lead, "Li Lei", "lei@example.com", None));
        let consenting = register(&crm, tenant, Customer::person("Ann").email("ann@example.com")
            .consent(MarketingConsent { email: true, sms: false, phone: false }).build().unwrap()).await;
        let silent = register(&crm, tenant, Customer::person("Bob").email("bob@example.com").build().unwrap()).await;
        let make = |to: Recipient, key: &str, purpose: Purpose| {
            Notification::builder(to, "t", key).purpose(purpose).build().unwrap()
        };
        let report = crm.notify(tenant, vec![
            make(Recipient::User(agent), "agent", Purpose::Service),
            make(Recipient::TeamLeadOf(agent), "lead", Purpose::Service),
            make(Recipient::Customer(consenting.id), "ann-offer", Purpose::Marketing),
            make(Recipient::Customer(silent.id), "bob-offer", Purpose::Marketing),
            make(Recipient::Customer(silent.id), "bob-service", Purpose::Service),
            make(Recipient::User(UserId::new()), "nobody", Purpose::Service),
            Notification::builder(Recipient::Customer(consenting.id), "t", "ann-sms")
                .purpose(Purpose::Marketing).channel(DeliveryChannel::Sms).build().unwrap(),
        ]).await.unwrap();
        assert_eq!(report.enqueued, 7);
        let notifier = Arc::new(RecordingNotifier::new());
        let clock = Arc::new(ManualClock::new(t0()));
        let dispatcher = Dispatcher::new(tenant, store.clone(), notifier.clone(), directory, clock);
        let run = dispatcher.run_once(t0()).await.unwrap();
        assert_eq!((run.claimed, run.sent, run.dead, run.retried), (7, 4, 3, 0));
        let sent: std::collections::BTreeMap<String, (Option<String>, Option<String>)> = notifier
            .sent()
            .into_iter()
            .map(|(t, e)| {
                assert_eq!(t, tenant);
                (e.notification.idempotency_key.clone(), (e.to.email.map(|m| m.as_str().to_string()), e.to.name))
            })
            .collect();
        let expect = |email: &str, name: &str| (Some(email.to_string()), Some(name.to_string()));
        assert_eq!(sent["agent"], expect("fang@example.com", "Wang Fang"));
        assert_eq!(sent["lead"], expect("lei@example.com", "Li Lei"));
        assert_eq!(sent["ann-offer"], expect("ann@example.com", "Ann"));
        assert_eq!(sent["bob-service"], expect("bob@example.com", "Bob"));
        let dead = store.dead_letters(tenant, &PageRequest::first(10)).await.unwrap().items;
        let mut reasons: Vec<(String, String)> = dead.into_iter()
            .map(|m| (m.notification.idempotency_key, m.last_error.unwrap_or_default())).collect();
        reasons.sort();
        assert_eq!(reasons.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["ann-sms", "bob-offer", "nobody"]);
        assert!(reasons[1].1.contains("consent"), "{reasons:?}");
        assert!(reasons[2].1.contains("unknown user"), "{reasons:?}");
        assert_eq!(dispatcher.run_once(t0() + Duration::days(1)).await.unwrap().claimed, 0, "nothing sent twice");
    }

    /// A transient failure is retried after a backoff; a permanent one, or the last allowed
    /// attempt, makes a dead letter; a re-queued dead letter is delivered once.
    async fn dispatcher_retries_transient_and_buries_permanent_failures(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        crm.notify(tenant, vec![note("flaky", Priority::Urgent), note("doomed", Priority::Normal)]).await.unwrap();
        let notifier = Arc::new(RecordingNotifier::new());
        let clock = Arc::new(ManualClock::new(t0()));
        let retry = RetryPolicy { base: std::time::Duration::from_secs(60), max_delay: std::time::Duration::from_secs(600), max_attempts: 3, jitter: 0.0 };
        let config = crm_core::notify::DispatchConfig::default().with_retry(retry);
        let dispatcher = Dispatcher::new(tenant, store.clone(), notifier.clone(), Arc::new(StaticDirectory::new()), clock)
            .with_config(config);
        notifier.fail_next(1, false);
        notifier.fail_next(1, true);
        let run = dispatcher.run_once(t0()).await.unwrap();
        assert_eq!((run.sent, run.retried, run.dead), (0, 1, 1));
        assert_eq!(dispatcher.run_once(t0() + Duration::seconds(59)).await.unwrap().claimed, 0, "backoff holds");
        notifier.fail_next(2, false);
        let run = dispatcher.run_once(t0() + Duration::seconds(60)).await.unwrap();
        assert_eq!((run.retried, run.dead), (1, 0), "second attempt fails again");
        let run = dispatcher.run_once(t0() + Duration::seconds(180)).await.unwrap();
        assert_eq!((run.retried, run.dead), (0, 1), "third failure is the last attempt");
        let dead = store.dead_letters(tenant, &PageRequest::first(10)).await.unwrap().items;
        assert_eq!(dead.len(), 2);
        let flaky = dead.iter().find(|m| m.notification.idempotency_key == "flaky").unwrap();
        assert_eq!(flaky.attempts, 3);
        crm.requeue(tenant, flaky.id).await.unwrap();
        let run = dispatcher.run_once(t0()).await.unwrap();
        assert_eq!(run.sent, 1);
        assert_eq!(notifier.count(), 1);
        assert_eq!(notifier.sent()[0].1.notification.idempotency_key, "flaky");
        assert_eq!(dispatcher.run_once(t0() + Duration::days(30)).await.unwrap().claimed, 0);
    }


    /// A change and the outbox messages it causes commit together: a change that fails
    /// leaves no message behind, and a re-sent batch adds no event.
    async fn changes_and_their_outbox_messages_commit_together(store) {
        let (crm, _) = crm_with_events(&store);
        let tenant = TenantId::new();
        let ann = register(&crm, tenant, simple("Ann")).await;
        assert_eq!(store.pending_count(tenant).await.unwrap(), 1, "customer.created");
        let mut clash = simple("Clash");
        clash.id = ann.id;
        assert!(crm.register(tenant, clash).await.is_err());
        assert_eq!(store.pending_count(tenant).await.unwrap(), 1, "failed insert: no event");
        let owner = UserId::new();
        let welcome = Notification::builder(Recipient::User(owner), "owner.assigned", "assigned:ann:2").build().unwrap();
        let transfer = |v| crm_core::Transfer { new_owner: Some(owner), expected_version: v, actor: None, reason: Some("territory") };
        let stale = crm.change_owner_notifying(tenant, ann.id, transfer(7), vec![welcome.clone()]).await;
        assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
        assert_eq!(store.pending_count(tenant).await.unwrap(), 1, "failed transfer: nothing queued");
        crm.change_owner_notifying(tenant, ann.id, transfer(1), vec![welcome]).await.unwrap();
        assert_eq!(store.pending_count(tenant).await.unwrap(), 4, "updated + owner changed + notice");
        let orphan = event(CustomerId::new(), InteractionKind::Note, t0(), "orphan");
        let note = Notification::builder(Recipient::User(owner), "t", "batch-note").build().unwrap();
        assert_not_found(crm.log_batch_notifying(tenant, vec![event(ann.id, InteractionKind::Note, t0(), "ok"), orphan], vec![note.clone()]).await, "batch");
        assert_eq!(store.pending_count(tenant).await.unwrap(), 4, "failed batch: nothing queued");
        let batch = vec![event(ann.id, InteractionKind::Note, t0(), "n1"), event(ann.id, InteractionKind::Call, t0(), "n2")];
        crm.log_batch_notifying(tenant, batch.clone(), vec![note]).await.unwrap();
        assert_eq!(store.pending_count(tenant).await.unwrap(), 7, "two interaction events + notice");
        let resent: Vec<Interaction> = batch.iter().map(|i| Interaction { id: crm_core::InteractionId::new(), ..i.clone() }).collect();
        assert_eq!(crm.log_batch(tenant, resent).await.unwrap().duplicates, 2);
        assert_eq!(store.pending_count(tenant).await.unwrap(), 7, "re-sent batch: no new event");
        let events = drain_events(&store, tenant).await;
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::CustomerCreated, EventKind::CustomerUpdated, EventKind::OwnerChanged, EventKind::InteractionLogged, EventKind::InteractionLogged]);
        let quiet = TenantId::new();
        let crm_off = Crm::new(store.clone());
        register(&crm_off, quiet, simple("Quiet")).await;
        assert_eq!(store.pending_count(quiet).await.unwrap(), 0, "events are off by default");
    }

    /// Events carry the tenant, increasing sequence numbers and the entity's version, and
    /// an entity's events are handed out one at a time, in order, even across retries.
    async fn events_are_delivered_in_order_per_entity(store) {
        let (crm, clock) = crm_with_events(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, simple("A")).await;
        let b = register(&crm, tenant, simple("B")).await;
        let mut a2 = a.clone();
        a2.lifecycle = Lifecycle::Active;
        clock.advance(Duration::minutes(1));
        let a2 = crm.update(tenant, a2, None).await.unwrap();
        let mut a3 = a2.clone();
        a3.tags.insert(Tag::parse("vip").unwrap());
        crm.update(tenant, a3, None).await.unwrap();
        crm.log(tenant, event(a.id, InteractionKind::Call, t0(), "call-a")).await.unwrap();
        let sink = Arc::new(RecordingSink::new());
        let notifier = Arc::new(RecordingNotifier::new());
        let dispatcher = Dispatcher::new(tenant, store.clone(), notifier, Arc::new(StaticDirectory::new()), Arc::new(ManualClock::new(t0())))
            .with_event_sink(sink.clone())
            .with_config(crm_core::notify::DispatchConfig::default().with_retry(RetryPolicy { base: std::time::Duration::from_secs(60), max_delay: std::time::Duration::from_secs(60), max_attempts: 5, jitter: 0.0 }));
        let now = t0() + Duration::hours(1);
        let first = dispatcher.run_once(now).await.unwrap();
        assert_eq!(first.claimed, 2, "one event per entity at a time: {first:?}");
        let mut rounds = 1;
        while dispatcher.run_once(now).await.unwrap().claimed > 0 {
            rounds += 1;
        }
        assert_eq!(rounds, 4, "A has four events");
        let events = sink.events();
        assert_eq!(events.len(), 5);
        assert!(events.iter().all(|e| e.tenant == tenant));
        let of = |id: CustomerId| events.iter().filter(|e| e.entity == crm_core::notify::EntityRef::customer(id) || e.data["customer"] == serde_json::json!(id)).collect::<Vec<_>>();
        let a_events = of(a.id);
        let a_kinds: Vec<(EventKind, u64)> = a_events.iter().map(|e| (e.kind, e.version)).collect();
        assert_eq!(a_kinds, [(EventKind::CustomerCreated, 1), (EventKind::CustomerUpdated, 2), (EventKind::CustomerUpdated, 3), (EventKind::InteractionLogged, 1)]);
        assert!(a_events.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
        assert_eq!(of(b.id).len(), 1);
        let keys: BTreeSet<&str> = events.iter().map(|e| e.idempotency_key.as_str()).collect();
        assert_eq!(keys.len(), 5, "distinct idempotency keys");
        assert_eq!(events[0].data["name"], "A");

        // A failing first event holds back the entity's later events until it is delivered.
        let c = register(&crm, tenant, simple("C")).await;
        let mut c2 = c.clone();
        c2.lifecycle = Lifecycle::Active;
        crm.update(tenant, c2, None).await.unwrap();
        let flaky = Arc::new(FlakySink { inner: RecordingSink::new(), failures: std::sync::Mutex::new(1) });
        let dispatcher = Dispatcher::new(tenant, store.clone(), Arc::new(RecordingNotifier::new()), Arc::new(StaticDirectory::new()), Arc::new(ManualClock::new(t0())))
            .with_event_sink(flaky.clone())
            .with_config(crm_core::notify::DispatchConfig::default().with_retry(RetryPolicy { base: std::time::Duration::from_secs(60), max_delay: std::time::Duration::from_secs(60), max_attempts: 5, jitter: 0.0 }));
        let r = dispatcher.run_once(now).await.unwrap();
        assert_eq!((r.claimed, r.retried), (1, 1));
        assert_eq!(dispatcher.run_once(now).await.unwrap().claimed, 0, "the update waits for the creation");
        let later = now + Duration::minutes(1);
        assert_eq!(dispatcher.run_once(later).await.unwrap().sent, 1);
        assert_eq!(dispatcher.run_once(later).await.unwrap().sent, 1);
        let got: Vec<EventKind> = flaky.inner.events().iter().map(|e| e.kind).collect();
        assert_eq!(got, [EventKind::CustomerCreated, EventKind::CustomerUpdated]);
    }

    /// Refreshing a segment and changing a static one store an event per customer who
    /// entered or left, in the same transaction.
    async fn segment_changes_emit_entered_and_left_events(store) {
        let (crm, clock) = crm_with_events(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let a = register(&crm, tenant, Customer::person("A").lifecycle(Lifecycle::Active).build().unwrap()).await;
        let b = register(&crm, tenant, Customer::person("B").lifecycle(Lifecycle::Lead).build().unwrap()).await;
        let seg = crm.create_segment(tenant, Segment::dynamic("Active", parse(r#"lifecycle = "active""#).unwrap()).unwrap(), &schema).await.unwrap();
        crm.refresh_segment(tenant, seg.id, &schema).await.unwrap();
        let mut a2 = store.get_customer(tenant, a.id).await.unwrap();
        a2.lifecycle = Lifecycle::Churned;
        crm.update(tenant, a2, None).await.unwrap();
        let mut b2 = store.get_customer(tenant, b.id).await.unwrap();
        b2.lifecycle = Lifecycle::Active;
        crm.update(tenant, b2, None).await.unwrap();
        clock.advance(Duration::days(1));
        crm.refresh_segment(tenant, seg.id, &schema).await.unwrap();
        crm.refresh_segment(tenant, seg.id, &schema).await.unwrap();
        let fixed = crm.create_segment(tenant, Segment::fixed("Hand-picked").unwrap(), &schema).await.unwrap();
        crm.change_static_members(tenant, fixed.id, vec![a.id, b.id], vec![]).await.unwrap();
        crm.change_static_members(tenant, fixed.id, vec![], vec![a.id]).await.unwrap();
        let moves: Vec<(EventKind, crm_core::SegmentId, CustomerId)> = drain_events(&store, tenant).await.into_iter()
            .filter(|e| matches!(e.kind, EventKind::SegmentEntered | EventKind::SegmentLeft))
            .map(|e| (e.kind, serde_json::from_value(e.data["segment"].clone()).unwrap(), serde_json::from_value(e.data["customer"].clone()).unwrap()))
            .collect();
        let mut expected = vec![
            (EventKind::SegmentEntered, seg.id, a.id),
            (EventKind::SegmentEntered, seg.id, b.id),
            (EventKind::SegmentLeft, seg.id, a.id),
            (EventKind::SegmentEntered, fixed.id, a.id),
            (EventKind::SegmentEntered, fixed.id, b.id),
            (EventKind::SegmentLeft, fixed.id, a.id),
        ];
        let mut got = moves.clone();
        got.sort_by_key(|m| (m.1, m.2, format!("{:?}", m.0)));
        expected.sort_by_key(|m| (m.1, m.2, format!("{:?}", m.0)));
        assert_eq!(got, expected, "no event for an unchanged refresh");
    }


    /// A case round-trips with its timeline; a case of an unknown customer or a reused
    /// id is refused; a stale change is Conflict and writes nothing.
    async fn cases_round_trip_with_their_timeline(store) {
        let (crm, clock) = crm_with_events(&store);
        let tenant = TenantId::new();
        let ann = register(&crm, tenant, simple("Ann")).await;
        let agent = UserId::new();
        let draft = crm_core::case::Case::open(ann.id, crm_core::case::CaseKind::Complaint, "Parcel arrived broken — 破损", Channel::Email, Some(agent), t0()).unwrap();
        let opened = crm.open_case(tenant, draft.clone()).await.unwrap();
        assert_eq!(store.get_case(tenant, opened.id).await.unwrap(), opened);
        clock.advance(Duration::minutes(40));
        let replied = crm.record_case_event(tenant, opened.id, 1, crm_core::case::CaseEventKind::PublicReply { by: agent }, vec![]).await.unwrap();
        assert_eq!(replied.version, 2);
        let stale = crm.record_case_event(tenant, opened.id, 1, crm_core::case::CaseEventKind::CustomerMessage, vec![]).await;
        assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
        let lead = UserId::new();
        clock.advance(Duration::hours(2));
        let notice = Notification::builder(Recipient::User(lead), "case.reassigned", &format!("reassigned:{}", opened.id)).build().unwrap();
        let moved = crm.record_case_event(tenant, opened.id, 2, crm_core::case::CaseEventKind::Assignment { to: Some(lead), by: None, reason: Some("escalation".into()) }, vec![notice]).await.unwrap();
        let back = store.get_case(tenant, opened.id).await.unwrap();
        assert_eq!(back, moved);
        assert_eq!(back.assignee, Some(lead));
        assert_eq!(back.events.len(), 3);
        assert_eq!(back.events[1].at, t0() + Duration::minutes(40));
        let r = store.update_case(tenant, &back, 2, WriteOptions::new()).await;
        assert!(matches!(r, Err(Error::Conflict { .. })), "stale update: {r:?}");
        let mut orphan = draft.clone();
        orphan.id = crm_core::CaseId::new();
        orphan.customer = CustomerId::new();
        assert_not_found(crm.open_case(tenant, orphan).await, "unknown customer");
        let mut reused = draft;
        reused.id = opened.id;
        assert!(matches!(crm.open_case(tenant, reused).await, Err(Error::Duplicate { .. })));
        assert_not_found(store.get_case(tenant, crm_core::CaseId::new()).await, "unknown case");
        assert_not_found(store.get_case(TenantId::new(), opened.id).await, "other tenant");
        let kinds: Vec<EventKind> = drain_events(&store, tenant).await.into_iter().map(|e| e.kind).collect();
        assert!(kinds.contains(&EventKind::CaseOpened), "{kinds:?}");
    }

    /// Cases are listed by customer, assignee and openness, page by page.
    async fn cases_are_listed_by_customer_assignee_and_openness(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, simple("A")).await;
        let b = register(&crm, tenant, simple("B")).await;
        let (x, y) = (UserId::new(), UserId::new());
        let mut ids = Vec::new();
        for i in 0..7 {
            let (customer, agent) = if i % 2 == 0 { (a.id, x) } else { (b.id, y) };
            let draft = crm_core::case::Case::open(customer, crm_core::case::CaseKind::Inquiry, &format!("Question {i}"), Channel::Web, Some(agent), t0()).unwrap();
            ids.push(crm.open_case(tenant, draft).await.unwrap());
        }
        crm.record_case_event(tenant, ids[0].id, 1, crm_core::case::CaseEventKind::StatusChange { to: crm_core::case::CaseStatus::Resolved, by: Some(x) }, vec![]).await.unwrap();
        let list = |query: crm_core::case::CaseQuery| {
            let store = store.clone();
            async move {
                collect_pages(2, |page| {
                    let (store, query) = (store.clone(), query.clone());
                    async move { store.list_cases(tenant, &query, &page).await }
                })
                .await
                .into_iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
            }
        };
        let all: Vec<_> = ids.iter().map(|c| c.id).collect();
        assert_eq!(list(Default::default()).await, all);
        let of_a = list(crm_core::case::CaseQuery { customer: Some(a.id), ..Default::default() }).await;
        assert_eq!(of_a, vec![all[0], all[2], all[4], all[6]]);
        let of_y = list(crm_core::case::CaseQuery { assignee: Some(y), ..Default::default() }).await;
        assert_eq!(of_y, vec![all[1], all[3], all[5]]);
        let open_of_x = list(crm_core::case::CaseQuery { assignee: Some(x), open_only: true, ..Default::default() }).await;
        assert_eq!(open_of_x, vec![all[2], all[4], all[6]]);
        assert!(store.list_cases(TenantId::new(), &Default::default(), &PageRequest::first(10)).await.unwrap().items.is_empty());
        let bad = store.list_cases(tenant, &Default::default(), &PageRequest::after(Cursor::customer(a.id), 10)).await;
        assert_eq!(bad.unwrap_err().field(), Some("cursor"));
    }

    /// Concurrent changes to one case: exactly one wins, the others are Conflict.
    async fn concurrent_case_changes_exactly_one_wins(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, simple("A")).await;
        let draft = crm_core::case::Case::open(a.id, crm_core::case::CaseKind::ServiceRequest, "Install", Channel::Phone, None, t0()).unwrap();
        let case = crm.open_case(tenant, draft).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (store, mut next) = (store.clone(), case.clone());
            tasks.push(tokio::spawn(async move {
                next.record(t0() + Duration::minutes(1), crm_core::case::CaseEventKind::InternalNote { by: UserId::new() }).unwrap();
                next.version = 2;
                store.update_case(tenant, &next, 1, WriteOptions::new()).await
            }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => wins += 1,
                Err(Error::Conflict { .. }) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(wins, 1);
        let stored = store.get_case(tenant, case.id).await.unwrap();
        assert_eq!((stored.version, stored.events.len()), (2, 2));
    }


    /// Tasks on customers and cases round-trip, are snoozed and completed with optimistic
    /// concurrency, and are listed by assignee, subject and openness.
    async fn tasks_round_trip_snooze_and_complete(store) {
        use crm_core::task::{Task, TaskQuery, TaskSubject};
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let ann = register(&crm, tenant, simple("Ann")).await;
        let (x, y) = (UserId::new(), UserId::new());
        let case = crm.open_case(tenant, crm_core::case::Case::open(ann.id, crm_core::case::CaseKind::Inquiry, "Q", Channel::Web, Some(x), t0()).unwrap()).await.unwrap();
        let call = crm.create_task(tenant, Task::new(TaskSubject::Customer(ann.id), "Call back about the offer", x, t0() + Duration::hours(2)).unwrap()).await.unwrap();
        let check = crm.create_task(tenant, Task::new(TaskSubject::Case(case.id), "Check the repair", y, t0() + Duration::days(1)).unwrap()).await.unwrap();
        assert_eq!(store.get_task(tenant, call.id).await.unwrap(), call);
        assert_not_found(crm.create_task(tenant, Task::new(TaskSubject::Customer(CustomerId::new()), "x", x, t0()).unwrap()).await, "unknown customer");
        assert_not_found(crm.create_task(tenant, Task::new(TaskSubject::Case(crm_core::CaseId::new()), "x", x, t0()).unwrap()).await, "unknown case");
        let mut again = Task::new(TaskSubject::Customer(ann.id), "x", x, t0()).unwrap();
        again.id = call.id;
        assert!(matches!(crm.create_task(tenant, again).await, Err(Error::Duplicate { .. })));
        let snoozed = crm.snooze_task(tenant, call.id, 1, t0() + Duration::hours(5)).await.unwrap();
        assert_eq!((snoozed.version, snoozed.due_at), (2, t0() + Duration::hours(5)));
        assert!(matches!(crm.complete_task(tenant, call.id, 1).await, Err(Error::Conflict { .. })));
        assert_eq!(crm.snooze_task(tenant, call.id, 2, t0()).await.unwrap_err().field(), Some("until"));
        clock.advance(Duration::hours(1));
        let done = crm.complete_task(tenant, call.id, 2).await.unwrap();
        assert_eq!(done.done_at, Some(t0() + Duration::hours(1)));
        assert_eq!(store.get_task(tenant, call.id).await.unwrap(), done);
        let ids = |q: TaskQuery| {
            let store = store.clone();
            async move { store.list_tasks(tenant, &q, &PageRequest::first(10)).await.unwrap().items.into_iter().map(|t| t.id).collect::<Vec<_>>() }
        };
        assert_eq!(ids(TaskQuery::default()).await, vec![call.id, check.id]);
        assert_eq!(ids(TaskQuery { assignee: Some(y), ..Default::default() }).await, vec![check.id]);
        assert_eq!(ids(TaskQuery { subject: Some(TaskSubject::Customer(ann.id)), ..Default::default() }).await, vec![call.id]);
        assert_eq!(ids(TaskQuery { open_only: true, ..Default::default() }).await, vec![check.id]);
        assert_not_found(store.get_task(TenantId::new(), call.id).await, "other tenant");
        let mut stale = done.clone();
        stale.version = 9;
        assert!(matches!(store.update_task(tenant, &stale, 1, WriteOptions::new()).await, Err(Error::Conflict { .. })));
    }

    /// Due tasks are announced once per due time, even by concurrent callers; a snoozed
    /// task is announced again at its new time, a recurring one at its next occurrence.
    async fn due_tasks_are_announced_once(store) {
        use crm_core::task::{Task, TaskSubject};
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let ann = register(&crm, tenant, simple("Ann")).await;
        let agent = UserId::new();
        let mut tasks = Vec::new();
        for i in 0..12 {
            let t = Task::new(TaskSubject::Customer(ann.id), &format!("Follow-up {i}"), agent, t0() + Duration::minutes(i * 10)).unwrap();
            tasks.push(crm.create_task(tenant, t).await.unwrap());
        }
        let weekly = crm.create_task(tenant, Task::new(TaskSubject::Customer(ann.id), "Weekly call", agent, t0()).unwrap().every_days(7).unwrap()).await.unwrap();
        let before = store.pending_count(tenant).await.unwrap();
        let now = t0() + Duration::minutes(55); // tasks 0..=5 and the weekly one are due
        let mut callers = Vec::new();
        for _ in 0..4 {
            let crm = crm.clone();
            callers.push(tokio::spawn(async move { crm.remind_due(tenant, now).await.unwrap().len() }));
        }
        let mut announced = 0;
        for c in callers {
            announced += c.await.unwrap();
        }
        assert_eq!(announced, 7, "each due task once");
        assert_eq!(store.pending_count(tenant).await.unwrap() - before, 7);
        assert!(crm.remind_due(tenant, now).await.unwrap().is_empty());
        let t1 = store.get_task(tenant, tasks[1].id).await.unwrap();
        crm.snooze_task(tenant, t1.id, t1.version, t0() + Duration::hours(3)).await.unwrap();
        clock.set(t0() + Duration::hours(1));
        let w = store.get_task(tenant, weekly.id).await.unwrap();
        let rolled = crm.complete_task(tenant, weekly.id, w.version).await.unwrap();
        assert_eq!(rolled.due_at, t0() + Duration::days(7));
        let later = crm.remind_due(tenant, t0() + Duration::hours(4)).await.unwrap();
        let mut got: Vec<_> = later.iter().map(|t| t.id).collect();
        got.sort();
        let mut want: Vec<_> = tasks[6..].iter().map(|t| t.id).chain([t1.id]).collect();
        want.sort();
        assert_eq!(got, want, "the rest, and the snoozed one again");
        let next_week = crm.remind_due(tenant, t0() + Duration::days(7)).await.unwrap();
        assert_eq!(next_week.iter().map(|t| t.id).collect::<Vec<_>>(), vec![weekly.id]);
        assert!(crm.remind_due(TenantId::new(), t0() + Duration::days(30)).await.unwrap().is_empty());
    }


    /// KPI rules are stored, edited with optimistic concurrency, listed by key, deleted,
    /// and kept per tenant.
    async fn kpi_rules_are_stored_and_edited(store) {
        use crm_core::kpi::{KpiAction, KpiMetric, KpiRule, KpiScope};
        use crm_core::notify::TemplateName;
        use crm_core::sla::{SlaMetric, SlaTarget};
        let (crm, _) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let rule = |key: &str, hours: i64| KpiRule {
            key: TemplateName::parse(key).unwrap(),
            name: format!("{key} within {hours} h"),
            metric: KpiMetric::Case(SlaTarget::new(SlaMetric::FirstReply, Duration::hours(hours), 0.8).unwrap()),
            calendar: crm_core::calendar::BusinessCalendar::always(),
            scope: KpiScope { kinds: vec![crm_core::case::CaseKind::Complaint], ..KpiScope::default() },
            compliance_goal: 0.95,
            on_warning: vec![KpiAction::NotifyAssignee],
            on_breach: vec![KpiAction::NotifyTeamLead],
        };
        crm.add_kpi_rule(tenant, rule("reply", 4)).await.unwrap();
        crm.add_kpi_rule(tenant, rule("close", 72)).await.unwrap();
        assert!(matches!(crm.add_kpi_rule(tenant, rule("reply", 8)).await, Err(Error::Duplicate { .. })));
        let mut bad = rule("bad", 4);
        bad.compliance_goal = 2.0;
        assert_eq!(crm.add_kpi_rule(tenant, bad).await.unwrap_err().field(), Some("compliance_goal"));
        let stored = crm.kpi_rules(tenant).await.unwrap();
        assert_eq!(stored.iter().map(|r| r.rule.key.as_str()).collect::<Vec<_>>(), ["close", "reply"]);
        assert_eq!(stored[1].rule, rule("reply", 4));
        assert_eq!(stored[1].version, 1);
        crm.update_kpi_rule(tenant, rule("reply", 6), 1).await.unwrap();
        assert!(matches!(crm.update_kpi_rule(tenant, rule("reply", 5), 1).await, Err(Error::Conflict { .. })));
        assert_not_found(crm.update_kpi_rule(tenant, rule("nope", 5), 1).await, "unknown rule");
        let now = crm.kpi_rules(tenant).await.unwrap();
        assert_eq!((now[1].version, now[1].rule.case_target().unwrap().target()), (2, Duration::hours(6)));
        assert!(crm.kpi_rules(other).await.unwrap().is_empty());
        assert_not_found(crm.delete_kpi_rule(other, &TemplateName::parse("reply").unwrap()).await, "other tenant");
        crm.delete_kpi_rule(tenant, &TemplateName::parse("close").unwrap()).await.unwrap();
        let engine = crm.kpi_engine(tenant).await.unwrap();
        assert_eq!(engine.rules().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["reply"]);
    }


    /// Quiet customers return to the pool once, with warnings ahead and exemptions for
    /// open cases; claims obey the daily limit, the holding limit and the block on the
    /// previous owner, and one of two racing claims wins.
    async fn the_pool_reclaims_and_limits_claims(store) {
        use crm_core::pool::{ClaimLimits, PoolPolicy, PoolRule};
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let (x, y, z) = (UserId::new(), UserId::new(), UserId::new());
        let active = |name: &str, owner: Option<UserId>| {
            let b = Customer::person(name).lifecycle(Lifecycle::Active);
            match owner { Some(o) => b.owner(o), None => b }.build().unwrap()
        };
        let a = register(&crm, tenant, active("A", Some(x))).await;
        let b = register(&crm, tenant, active("B", Some(x))).await;
        let c = register(&crm, tenant, active("C", Some(x))).await;
        let lead = register(&crm, tenant, Customer::person("D").lifecycle(Lifecycle::Lead).owner(x).build().unwrap()).await;
        let call = Interaction::builder(a.id, Channel::Phone, InteractionKind::Call).at(t0() + Duration::days(5)).handled_by(x).key("pool", "a-call").build().unwrap();
        crm.log(tenant, call).await.unwrap();
        crm.open_case(tenant, crm_core::case::Case::open(c.id, crm_core::case::CaseKind::Complaint, "Open", Channel::Email, Some(x), t0()).unwrap()).await.unwrap();
        let policy = PoolPolicy {
            rules: vec![PoolRule { lifecycles: vec![Lifecycle::Active], tag: None, no_contact_days: Some(30), no_purchase_days: None, notice_days: 7 }],
            limits: ClaimLimits { per_day: 2, max_held: 3, reclaim_block_days: 14 },
            exempt_open_cases: true,
            time_zone: chrono_tz::Tz::UTC,
        };
        let day = |d: i64| t0() + Duration::days(d);
        let r = { clock.set(day(24)); crm.reclaim_to_pool(tenant, &policy).await }.unwrap();
        assert_eq!((r.checked, r.warned, r.reclaimed.len()), (4, 2, 0), "B and C warned: {r:?}");
        assert_eq!({ clock.set(day(24)); crm.reclaim_to_pool(tenant, &policy).await }.unwrap().warned, 0, "warned once");
        let r = { clock.set(day(31)); crm.reclaim_to_pool(tenant, &policy).await }.unwrap();
        assert_eq!((r.reclaimed.clone(), r.exempt), (vec![(b.id, x)], 1), "{r:?}");
        assert_eq!({ clock.set(day(31)); crm.reclaim_to_pool(tenant, &policy).await }.unwrap().reclaimed, vec![]);
        assert_eq!(store.get_customer(tenant, b.id).await.unwrap().owner, None);
        let history = store.ownership_history(tenant, b.id).await.unwrap();
        assert_eq!((history[0].from, history[0].to), (Some(x), None));
        assert!(history[0].reason.as_deref().unwrap_or("").contains("30 days"));
        assert_eq!(store.get_customer(tenant, a.id).await.unwrap().owner, Some(x), "contacted on day 5");
        assert_eq!(store.get_customer(tenant, lead.id).await.unwrap().owner, Some(x), "no rule for leads");
        let r = { clock.set(day(36)); crm.reclaim_to_pool(tenant, &policy).await }.unwrap();
        assert_eq!(r.reclaimed, vec![(a.id, x)]);

        clock.set(day(37));
        let blocked = crm.claim_from_pool(tenant, b.id, x, &policy).await;
        assert_eq!(blocked.unwrap_err().field(), Some("limits.reclaim_block_days"));
        let taken = crm.claim_from_pool(tenant, b.id, y, &policy).await.unwrap();
        assert_eq!(taken.owner, Some(y));
        assert_eq!(crm.claim_from_pool(tenant, b.id, z, &policy).await.unwrap_err().field(), Some("customer"));
        let mut pool = Vec::new();
        for i in 0..4 {
            pool.push(register(&crm, tenant, active(&format!("P{i}"), None)).await);
        }
        crm.claim_from_pool(tenant, pool[0].id, z, &policy).await.unwrap();
        crm.claim_from_pool(tenant, pool[1].id, z, &policy).await.unwrap();
        let third = crm.claim_from_pool(tenant, pool[2].id, z, &policy).await;
        assert_eq!(third.unwrap_err().field(), Some("limits.per_day"));
        clock.set(day(38));
        crm.claim_from_pool(tenant, pool[2].id, z, &policy).await.unwrap();
        let fourth = crm.claim_from_pool(tenant, pool[3].id, z, &policy).await;
        assert_eq!(fourth.unwrap_err().field(), Some("limits.max_held"));
        let (w1, w2) = (UserId::new(), UserId::new());
        let (crm1, crm2, p1, p2) = (crm.clone(), crm.clone(), policy.clone(), policy.clone());
        let id = pool[3].id;
        let first = tokio::spawn(async move { crm1.claim_from_pool(tenant, id, w1, &p1).await });
        let second = tokio::spawn(async move { crm2.claim_from_pool(tenant, id, w2, &p2).await });
        let results = [first.await.unwrap(), second.await.unwrap()];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        assert!(results.iter().any(|r| matches!(r, Err(Error::Conflict { .. }) | Err(Error::Validation { .. }))));
    }


    /// Interactions of a tenant by occurrence: the half-open range, oldest first with ties
    /// by id, page by page, only the tenant's.
    async fn interactions_are_listed_by_time(store) {
        let (crm, _) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let a = register(&crm, tenant, simple("A")).await;
        let b = register(&crm, tenant, simple("B")).await;
        let elsewhere = register(&crm, other, simple("C")).await;
        let mut batch = Vec::new();
        for i in 0..9 {
            let who = if i % 2 == 0 { a.id } else { b.id };
            // Three share each instant, so ties are broken by id.
            batch.push(event(who, InteractionKind::Note, t0() + Duration::hours(i / 3), &format!("n{i}")));
        }
        crm.log_batch(tenant, batch.clone()).await.unwrap();
        crm.log(other, event(elsewhere.id, InteractionKind::Note, t0(), "x")).await.unwrap();
        let got = collect_pages(2, |page| {
            let store = store.clone();
            async move { store.interactions_between(tenant, t0(), t0() + Duration::hours(2), &page).await }
        })
        .await;
        let mut want: Vec<_> = batch.iter().filter(|i| i.occurred_at < t0() + Duration::hours(2)).map(|i| (i.occurred_at, i.id)).collect();
        want.sort();
        assert_eq!(got.iter().map(|i| (i.occurred_at, i.id)).collect::<Vec<_>>(), want);
        assert_eq!(got.len(), 6, "[from, to): the third hour is out");
        let all = store.interactions_between(tenant, t0() - Duration::days(1), t0() + Duration::days(1), &PageRequest::first(100)).await.unwrap();
        assert_eq!(all.items.len(), 9, "only the tenant's");
        let none = store.interactions_between(tenant, t0() + Duration::hours(5), t0() + Duration::hours(6), &PageRequest::first(10)).await.unwrap();
        assert!(none.items.is_empty() && none.next.is_none());
    }


    /// Records from source systems update the one customer they belong to: by external id,
    /// else by email or phone; a repeated record changes nothing; bad fields are named.
    async fn source_records_update_one_customer(store) {
        use crm_core::sync::{NaturalKey, SourceFields, SyncOutcome};
        let (crm, _) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let keys = [NaturalKey::Email, NaturalKey::Phone];
        let erp = SourceFields {
            name: Some("Li Na".into()),
            emails: vec!["Li.Na@Example.com".into()],
            lifecycle: Some(Lifecycle::Active),
            tags: vec!["b2b".into()],
            ..SourceFields::default()
        };
        let created = crm.upsert_from_source(tenant, "erp", "K-1", &erp, &keys).await.unwrap();
        let SyncOutcome::Created(li) = created else { panic!("{created:?}") };
        let again = crm.upsert_from_source(tenant, "erp", "K-1", &erp, &keys).await.unwrap();
        assert!(matches!(again, SyncOutcome::Unchanged(_)), "{again:?}");
        let shop = SourceFields {
            emails: vec!["li.na@example.com".into()],
            phones: vec!["+86 10 6552 9988".into()],
            tags: vec!["web".into()],
            ..SourceFields::default()
        };
        let updated = crm.upsert_from_source(tenant, "shop", "u-77", &shop, &keys).await.unwrap();
        let SyncOutcome::Updated(merged) = updated else { panic!("{updated:?}") };
        assert_eq!(merged.id, li.id, "same person by email");
        assert_eq!(merged.version, 2);
        assert_eq!(merged.name.as_str(), "Li Na");
        assert_eq!(merged.phones.len(), 1);
        assert_eq!(merged.tags.len(), 2);
        assert_eq!(merged.external_ids.len(), 2);
        let by_shop = list_all(&store, tenant, &CustomerQuery { external_id: Some(ExternalRef::new("shop", "u-77").unwrap()), ..CustomerQuery::all() }, 10).await;
        assert_eq!(by_shop.iter().map(|c| c.id).collect::<Vec<_>>(), vec![li.id]);
        let call_centre = SourceFields { phones: vec!["+861065529988".into()], ..SourceFields::default() };
        let by_phone = crm.upsert_from_source(tenant, "cc", "9", &call_centre, &[NaturalKey::Phone]).await.unwrap();
        assert_eq!(by_phone.customer().id, li.id, "same person by phone");
        assert_eq!(list_all(&store, tenant, &CustomerQuery::all(), 10).await.len(), 1, "no duplicates");
        let nameless = crm.upsert_from_source(tenant, "erp", "K-2", &SourceFields::default(), &keys).await;
        assert_eq!(nameless.unwrap_err().field(), Some("fields.name"));
        let bad = SourceFields { name: Some("X".into()), emails: vec!["ok@example.com".into(), "nope".into()], ..SourceFields::default() };
        assert_eq!(crm.upsert_from_source(tenant, "erp", "K-3", &bad, &keys).await.unwrap_err().field(), Some("fields.emails[1]"));
        let elsewhere = crm.upsert_from_source(other, "erp", "K-1", &erp, &keys).await.unwrap();
        assert!(matches!(elsewhere, SyncOutcome::Created(_)), "tenants are independent");
        let vat = |name: &str| SourceFields {
            name: Some(name.into()),
            kind: Some(crm_core::PartyKind::Organization),
            attributes: vec![("vat_id".into(), AttrValue::Text("DE811907980".into()))],
            ..SourceFields::default()
        };
        let by_vat = [NaturalKey::Attribute(crm_core::AttrKey::parse("vat_id").unwrap())];
        let org = crm.upsert_from_source(tenant, "erp", "C-9", &vat("Müller GmbH"), &by_vat).await.unwrap();
        assert!(matches!(org, SyncOutcome::Created(_)));
        let same = crm.upsert_from_source(tenant, "crm-import", "77", &vat("Mueller GmbH"), &by_vat).await.unwrap();
        assert!(matches!(same, SyncOutcome::Updated(_)), "{same:?}");
        assert_eq!(same.customer().id, org.customer().id, "same company by VAT id");
        assert_eq!(same.customer().name.as_str(), "Mueller GmbH");
        assert_eq!(list_all(&store, tenant, &CustomerQuery::all(), 10).await.len(), 2);
    }


    /// Duplicates: one record checked before it is saved (clear, warned, refused with
    /// nothing written), and candidate groups over the whole tenant, planted ones included.
    async fn duplicates_are_checked_refused_and_found(store) {
        use crm_core::dedup::{MatchRules, Verdict};
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let rules = MatchRules::standard();
        let born = |y, m, d| AttrValue::Date(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let ada = register(&crm, tenant, Customer::person("Ada Lovelace")
            .email("ada@example.com")
            .attribute("birth_date", born(1815, 12, 10))
            .build().unwrap()).await;
        let charles = register(&crm, tenant, Customer::person("Charles Babbage")
            .phone("+44 20 7946 0001")
            .build().unwrap()).await;
        register(&crm, tenant, Customer::person("Mary Somerville")
            .email("mary@example.com")
            .attribute("birth_date", born(1780, 12, 26))
            .build().unwrap()).await;

        // Someone new: clear, and saved.
        let (_, check) = crm.register_checked(tenant, Customer::person("Grace Hopper")
            .email("grace@example.com").build().unwrap(), &rules).await.unwrap();
        assert_eq!(check.verdict, Verdict::Clear);
        assert!(check.matches.is_empty());

        // Same email, other case: refused, nothing written.
        let before = crm.storage().list_customers(tenant, &CustomerQuery::all(), &PageRequest::first(100)).await.unwrap().items.len();
        let err = crm.register_checked(tenant, Customer::person("A. Lovelace")
            .email("ADA@example.com").build().unwrap(), &rules).await.unwrap_err();
        assert!(matches!(&err, Error::LikelyDuplicate { entity: "customer", existing, score, .. } if *existing == ada.id.to_string() && Some(*score) >= rules.block_at), "{err:?}");
        let after = crm.storage().list_customers(tenant, &CustomerQuery::all(), &PageRequest::first(100)).await.unwrap().items.len();
        assert_eq!(before, after, "a refused record is not saved");

        // Same phone, misspelt name: a warning naming Charles (checked, not saved).
        let check = crm.check_duplicates(tenant, &Customer::person("Charles Babage")
            .phone("+44 20 7946 0001").build().unwrap(), &rules).await.unwrap();
        assert_eq!(check.verdict, Verdict::Warn);
        assert_eq!(check.matches.len(), 1);
        assert!(check.matches[0].a == charles.id || check.matches[0].b == charles.id);
        assert_eq!(check.matches[0].rule, "same phone, similar name");

        // Words in the other order, same birth date, no contact point in common: warned,
        // saved, and then found as a group of two.
        let (twin, check) = crm.register_checked(tenant, Customer::person("Lovelace Ada")
            .email("countess@example.org")
            .attribute("birth_date", born(1815, 12, 10))
            .build().unwrap(), &rules).await.unwrap();
        assert_eq!(check.verdict, Verdict::Warn);
        assert_eq!(check.matches[0].rule, "similar name, same birth date");
        let report = crm.find_duplicates(tenant, &rules).await.unwrap();
        assert_eq!(report.customers, 5);
        assert_eq!(report.groups.len(), 1, "{report:?}");
        let mut expected = vec![ada.id, twin.id];
        expected.sort();
        assert_eq!(report.groups[0].members, expected);

        // Generated people with planted duplicates: every planted pair is reported.
        let other = TenantId::new();
        let planted = Generator::new(3).people_with_duplicates(300, 0.05);
        store.insert_customers(other, planted.customers.clone(), WriteOptions::new()).await.unwrap();
        let report = crm.find_duplicates(other, &rules).await.unwrap();
        assert_eq!(report.customers, planted.customers.len());
        let found: BTreeSet<(CustomerId, CustomerId)> = report.pairs().map(|p| (p.a, p.b)).collect();
        for &(x, y) in &planted.pairs {
            assert!(found.contains(&(x.min(y), x.max(y))), "planted pair {x} {y} not reported");
        }
    }

    /// Merging duplicates: a dry run writes nothing; the merge moves every interaction,
    /// case, task, segment membership and external id to the survivor in one step, its
    /// profile equals a rebuild, old ids redirect (through later merges too), and stale
    /// versions write nothing.
    async fn merge_moves_everything_to_the_survivor(store) {
        use crm_core::merge::{CustomerMerge, FieldRule, MergePolicy};
        use crm_core::task::{Task, TaskQuery, TaskSubject};
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let agent = UserId::new();
        let a = register(&crm, tenant, Customer::person("Ada Lovelace").email("ada@example.com").tag("vip")
            .external_id("erp", "C1").attribute("city", AttrValue::Text("London".into())).build().unwrap()).await;
        clock.advance(Duration::hours(1));
        let b = register(&crm, tenant, Customer::person("Ada King").email("countess@example.org").phone("+44 20 7946 0001")
            .external_id("shop", "S9").external_id("erp", "C7").owner(agent).build().unwrap()).await;
        clock.advance(Duration::hours(1));
        let c = register(&crm, tenant, Customer::person("A. Lovelace").attribute("company", AttrValue::Text("Analytical".into())).build().unwrap()).await;
        let mut gen = Generator::new(21);
        for id in [a.id, b.id, c.id] {
            crm.log_batch(tenant, gen.interactions(&[id], 7, t0(), Duration::days(30))).await.unwrap();
        }
        let case = crm.open_case(tenant, crm_core::case::Case::open(b.id, crm_core::case::CaseKind::Inquiry, "Where is my order", Channel::Web, Some(agent), t0()).unwrap()).await.unwrap();
        let task = crm.create_task(tenant, Task::new(TaskSubject::Customer(c.id), "Call back", agent, t0() + Duration::hours(2)).unwrap()).await.unwrap();
        let fair = crm.create_segment(tenant, Segment::fixed("Fair").unwrap(), &schema).await.unwrap();
        crm.change_static_members(tenant, fair.id, vec![b.id], vec![]).await.unwrap();
        let before_a = store.get_customer(tenant, a.id).await.unwrap();

        // Dry run: the result, nothing written.
        let policy = MergePolicy { fields: FieldRule::Survivor, attributes: FieldRule::MostRecent };
        let dry = crm.merge_customers(tenant, a.id, &[b.id, c.id], &policy, true).await.unwrap();
        assert!(dry.dry_run);
        assert_eq!(dry.customer.name.as_str(), "Ada Lovelace");
        assert_eq!(dry.customer.owner, Some(agent), "the survivor has none: the next one's");
        let emails: Vec<&str> = dry.customer.emails.iter().map(|e| e.as_str()).collect();
        assert_eq!(emails, ["ada@example.com", "countess@example.org"]);
        assert_eq!(dry.dropped_external_ids, vec![ExternalRef::new("erp", "C7").unwrap()]);
        assert_eq!(dry.interactions_moved, 14);
        assert_eq!(store.get_customer(tenant, a.id).await.unwrap(), before_a);
        assert!(store.get_customer(tenant, b.id).await.is_ok());

        // Stale versions: nothing written.
        let stale = CustomerMerge { survivor: dry.customer.clone(), survivor_version: a.version, merged: vec![(b.id, b.version + 1), (c.id, c.version)], audit: vec![] };
        assert!(matches!(store.merge_customers(tenant, &stale, WriteOptions::new()).await, Err(Error::Conflict { .. })));
        assert!(store.get_customer(tenant, b.id).await.is_ok());
        assert_eq!(store.get_customer(tenant, a.id).await.unwrap(), before_a);

        let done = crm.merge_customers(tenant, a.id, &[b.id, c.id], &policy, false).await.unwrap();
        assert!(!done.dry_run);
        let survivor = store.get_customer(tenant, a.id).await.unwrap();
        assert_eq!(survivor, done.customer);
        assert_eq!(survivor.version, 2);
        assert_eq!(survivor.attributes.get("company"), Some(&AttrValue::Text("Analytical".into())));
        // Every interaction, on one timeline; the profile is a rebuild and the dry run's.
        let history = full_timeline(&store, tenant, a.id, 5).await;
        assert_eq!(history.len(), 21);
        assert!(history.iter().all(|i| i.customer == a.id));
        assert_profile_is_rebuild(&store, tenant, a.id).await;
        assert_eq!(store.get_profile(tenant, a.id).await.unwrap(), dry.profile);
        // The merged records are gone; their ids resolve to the survivor.
        for old in [b.id, c.id] {
            assert_not_found(store.get_customer(tenant, old).await, "merged away");
            assert_not_found(store.get_profile(tenant, old).await, "merged away");
            assert_eq!(crm.customer(tenant, old).await.unwrap().id, a.id);
            assert_eq!(crm.resolve_customer(tenant, old).await.unwrap(), a.id);
            assert_eq!(store.redirect(tenant, old).await.unwrap(), Some(a.id));
        }
        assert_eq!(store.redirect(tenant, a.id).await.unwrap(), None);
        assert_eq!(store.redirect(TenantId::new(), b.id).await.unwrap(), None);
        // Case, task and membership moved; lookups by the moved contact points find it.
        assert_eq!(store.get_case(tenant, case.id).await.unwrap().customer, a.id);
        let tasks = store.list_tasks(tenant, &TaskQuery { subject: Some(TaskSubject::Customer(a.id)), ..Default::default() }, &PageRequest::first(10)).await.unwrap().items;
        assert_eq!(tasks.iter().map(|t| t.id).collect::<Vec<_>>(), vec![task.id]);
        assert!(store.is_member(tenant, fair.id, a.id).await.unwrap());
        assert!(!store.is_member(tenant, fair.id, b.id).await.unwrap());
        let by = |q: CustomerQuery| { let crm = crm.clone(); async move { crm.search(tenant, &q, &PageRequest::first(10)).await.unwrap().items.into_iter().map(|c| c.id).collect::<Vec<_>>() } };
        assert_eq!(by(CustomerQuery { external_id: Some(ExternalRef::new("shop", "S9").unwrap()), ..CustomerQuery::all() }).await, vec![a.id]);
        assert_eq!(by(CustomerQuery { email: Some(EmailAddress::parse("countess@example.org").unwrap()), ..CustomerQuery::all() }).await, vec![a.id]);
        assert_eq!(by(CustomerQuery { external_id: Some(ExternalRef::new("erp", "C7").unwrap()), ..CustomerQuery::all() }).await, Vec::<CustomerId>::new());
        assert_eq!(by(CustomerQuery::all()).await, vec![a.id]);

        // A later merge carries the redirects along.
        let d = register(&crm, tenant, simple("Augusta Ada")).await;
        crm.merge_customers(tenant, d.id, &[a.id], &MergePolicy::default(), false).await.unwrap();
        for old in [a.id, b.id, c.id] {
            assert_eq!(crm.resolve_customer(tenant, old).await.unwrap(), d.id);
        }
        assert_eq!(full_timeline(&store, tenant, d.id, 50).await.len(), 21);
        assert_profile_is_rebuild(&store, tenant, d.id).await;
        // Refused: nothing to merge, the survivor among the others, an unknown id.
        assert!(matches!(crm.merge_customers(tenant, d.id, &[], &policy, false).await, Err(Error::Validation { .. })));
        assert!(matches!(crm.merge_customers(tenant, d.id, &[d.id], &policy, false).await, Err(Error::Validation { .. })));
        assert_not_found(crm.merge_customers(tenant, d.id, &[CustomerId::new()], &policy, false).await, "unknown");
    }

    /// Export: one document with the record, profile, every interaction, cases, tasks
    /// about the customer or its cases, segments and ownership history, and nothing of
    /// another customer.
    async fn export_holds_everything_about_one_customer(store) {
        use crm_core::task::{Task, TaskSubject};
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let agent = UserId::new();
        let ann = register(&crm, tenant, Customer::person("Ann Lee").email("ann@example.com").build().unwrap()).await;
        let bob = register(&crm, tenant, simple("Bob")).await;
        let mut gen = Generator::new(5);
        crm.log_batch(tenant, gen.interactions(&[ann.id], 1200, t0(), Duration::days(90))).await.unwrap();
        crm.log_batch(tenant, gen.interactions(&[bob.id], 30, t0(), Duration::days(90))).await.unwrap();
        let case = crm.open_case(tenant, crm_core::case::Case::open(ann.id, crm_core::case::CaseKind::Complaint, "Broken lid", Channel::Phone, Some(agent), t0()).unwrap()).await.unwrap();
        crm.open_case(tenant, crm_core::case::Case::open(bob.id, crm_core::case::CaseKind::Inquiry, "Bob's", Channel::Phone, Some(agent), t0()).unwrap()).await.unwrap();
        let call = crm.create_task(tenant, Task::new(TaskSubject::Customer(ann.id), "Call back", agent, t0()).unwrap()).await.unwrap();
        let check = crm.create_task(tenant, Task::new(TaskSubject::Case(case.id), "Check the lid", agent, t0()).unwrap()).await.unwrap();
        crm.create_task(tenant, Task::new(TaskSubject::Customer(bob.id), "Bob's task", agent, t0()).unwrap()).await.unwrap();
        let fair = crm.create_segment(tenant, Segment::fixed("Fair").unwrap(), &schema).await.unwrap();
        crm.change_static_members(tenant, fair.id, vec![ann.id], vec![]).await.unwrap();

        let export = crm.export_customer(tenant, ann.id).await.unwrap();
        assert_eq!(export.customer, store.get_customer(tenant, ann.id).await.unwrap());
        assert_eq!(export.profile, store.get_profile(tenant, ann.id).await.unwrap());
        assert_eq!(export.interactions.len(), 1200, "every page of the timeline");
        assert!(export.interactions.iter().all(|i| i.customer == ann.id));
        assert_eq!(export.cases.iter().map(|c| c.id).collect::<Vec<_>>(), vec![case.id]);
        let mut tasks: Vec<_> = export.tasks.iter().map(|t| t.id).collect();
        tasks.sort();
        let mut want = vec![call.id, check.id];
        want.sort();
        assert_eq!(tasks, want);
        assert_eq!(export.segments, vec![fair.id]);
        // One JSON document, read back whole.
        let json = export.to_json().unwrap();
        let back: crm_core::privacy::CustomerExport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, export);
        assert!(!json.contains("Bob"), "nothing of another customer");
        assert_not_found(crm.export_customer(tenant, CustomerId::new()).await, "unknown");
        assert_not_found(crm.export_customer(TenantId::new(), ann.id).await, "other tenant");
    }

    /// Erasure: personal data leaves the record, its interactions, cases, tasks and
    /// ownership history, no query or export finds it any more, and the anonymous facts
    /// (profile, amounts, channels, instants) stay as they were.
    async fn erased_data_cannot_be_found(store) {
        use crm_core::task::{Task, TaskSubject};
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let agent = UserId::new();
        let ann = register(&crm, tenant, Customer::person("Annabel Secretname").email("annabel@secret.example")
            .phone("+44 20 7946 0999").tag("whisper").external_id("erp", "SECRET-7")
            .attribute("birth_date", AttrValue::Date(chrono::NaiveDate::from_ymd_opt(1980, 1, 2).unwrap()))
            .build().unwrap()).await;
        let bob = register(&crm, tenant, simple("Bob Keeps")).await;
        let mut batch = Vec::new();
        for n in 0..5 {
            batch.push(Interaction::builder(ann.id, Channel::Email, InteractionKind::Purchase)
                .at(t0() + Duration::days(n)).subject("Secret subject").body("Secret body text")
                .amount(Money::parse("19.90", "EUR").unwrap())
                .attribute("note", AttrValue::Text("secret attribute".into()))
                .key("shop", &format!("o{n}")).build().unwrap());
        }
        batch.push(Interaction::builder(bob.id, Channel::Email, InteractionKind::Email).at(t0())
            .subject("Bob's subject").key("shop", "b1").build().unwrap());
        crm.log_batch(tenant, batch).await.unwrap();
        let case = crm.open_case(tenant, crm_core::case::Case::open(ann.id, crm_core::case::CaseKind::Complaint, "Secret complaint", Channel::Phone, Some(agent), t0()).unwrap()).await.unwrap();
        crm.create_task(tenant, Task::new(TaskSubject::Customer(ann.id), "Call Annabel Secretname", agent, t0()).unwrap()).await.unwrap();
        crm.create_task(tenant, Task::new(TaskSubject::Case(case.id), "Secret case task", agent, t0()).unwrap()).await.unwrap();
        let ann = crm.change_owner(tenant, ann.id, Some(agent), ann.version, Some(agent), Some("secret reason")).await.unwrap();
        let profile = store.get_profile(tenant, ann.id).await.unwrap();

        assert!(matches!(crm.erase_customer(tenant, ann.id, ann.version - 1).await, Err(Error::Conflict { .. })));
        let erased = crm.erase_customer(tenant, ann.id, ann.version).await.unwrap();
        assert_eq!(erased.version, ann.version + 1);
        assert_eq!(store.get_customer(tenant, ann.id).await.unwrap(), erased);
        assert_eq!(erased.name.as_str(), crm_core::privacy::ERASED);
        assert!(erased.emails.is_empty() && erased.phones.is_empty() && erased.tags.is_empty());
        assert!(erased.external_ids.is_empty() && erased.attributes.is_empty());
        assert_eq!(erased.owner, Some(agent), "who owns it is not personal data of the customer");
        // No query finds it by what was erased.
        let none = |q: CustomerQuery| { let crm = crm.clone(); async move { crm.search(tenant, &q, &PageRequest::first(10)).await.unwrap().items.len() } };
        assert_eq!(none(CustomerQuery { email: Some(EmailAddress::parse("annabel@secret.example").unwrap()), ..CustomerQuery::all() }).await, 0);
        assert_eq!(none(CustomerQuery { phone: Some(PhoneNumber::parse("+44 20 7946 0999").unwrap()), ..CustomerQuery::all() }).await, 0);
        assert_eq!(none(CustomerQuery { tag: Some(Tag::parse("whisper").unwrap()), ..CustomerQuery::all() }).await, 0);
        assert_eq!(none(CustomerQuery { external_id: Some(ExternalRef::new("erp", "SECRET-7").unwrap()), ..CustomerQuery::all() }).await, 0);
        assert_eq!(none(CustomerQuery { name_prefix: Some("Annabel".into()), ..CustomerQuery::all() }).await, 0);
        // Nothing personal in the export, anonymous facts kept.
        let export = crm.export_customer(tenant, ann.id).await.unwrap();
        let json = export.to_json().unwrap().to_lowercase();
        for secret in ["secret", "annabel", "whisper", "1980-01-02"] {
            assert!(!json.contains(secret), "{secret:?} is still in the export");
        }
        assert_eq!(export.interactions.len(), 5);
        assert!(export.interactions.iter().all(|i| i.subject.is_none() && i.body.is_none() && i.attributes.is_empty()));
        assert!(export.interactions.iter().all(|i| i.amount == Some(Money::parse("19.90", "EUR").unwrap())));
        assert_eq!(export.cases.len(), 1);
        assert_eq!(export.tasks.len(), 2);
        assert_eq!(store.get_profile(tenant, ann.id).await.unwrap(), profile, "profiles stay as they were");
        assert_profile_is_rebuild(&store, tenant, ann.id).await;
        // The other customer is untouched.
        let bobs = full_timeline(&store, tenant, bob.id, 10).await;
        assert_eq!(bobs[0].subject.as_deref(), Some("Bob's subject"));
        assert_eq!(store.get_customer(tenant, bob.id).await.unwrap(), bob);
        assert_not_found(crm.erase_customer(tenant, CustomerId::new(), 1).await, "unknown");
    }

    /// Retention: history before a horizon is written out as JSON lines and purged;
    /// profiles keep their aggregates; rows before the horizon are refused afterwards;
    /// newer rows and other tenants are untouched.
    async fn archived_history_is_exported_purged_and_refused(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let other = TenantId::new();
        let ann = register(&crm, tenant, simple("Ann")).await;
        let bob = register(&crm, other, simple("Bob")).await;
        let mut gen = Generator::new(8);
        let old = gen.interactions(&[ann.id], 40, t0(), Duration::days(30));
        let new = gen.interactions(&[ann.id], 25, t0() + Duration::days(60), Duration::days(30));
        crm.log_batch(tenant, old.clone()).await.unwrap();
        crm.log_batch(tenant, new.clone()).await.unwrap();
        crm.log_batch(other, gen.interactions(&[bob.id], 10, t0(), Duration::days(30))).await.unwrap();
        let profile = store.get_profile(tenant, ann.id).await.unwrap();
        assert_eq!(crm.archive_horizon(tenant).await.unwrap(), None);
        clock.advance(Duration::days(200));

        let horizon = t0() + Duration::days(45);
        let mut file: Vec<u8> = Vec::new();
        let report = crm.archive_interactions(tenant, horizon, &mut file).await.unwrap();
        assert_eq!((report.exported, report.purged, report.horizon), (40, 40, horizon));
        let archived: Vec<Interaction> = String::from_utf8(file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let mut want: Vec<_> = old.iter().map(|i| i.id).collect();
        want.sort();
        let mut got: Vec<_> = archived.iter().map(|i| i.id).collect();
        got.sort();
        assert_eq!(got, want, "exactly the old rows, complete");
        assert_eq!(crm.archive_horizon(tenant).await.unwrap(), Some(horizon));
        let left = full_timeline(&store, tenant, ann.id, 10).await;
        assert_eq!(left.len(), 25);
        assert!(left.iter().all(|i| i.occurred_at >= horizon));
        assert_eq!(store.get_profile(tenant, ann.id).await.unwrap(), profile, "aggregates kept");
        // Before the horizon: refused, nothing written; after it: accepted as usual.
        let r = crm.log_batch(tenant, old[..3].to_vec()).await;
        assert!(matches!(&r, Err(Error::Validation { field, .. }) if field == "interactions[0].occurred_at"), "{r:?}");
        assert_eq!(store.get_profile(tenant, ann.id).await.unwrap(), profile);
        assert_eq!(crm.log_batch(tenant, new.clone()).await.unwrap().duplicates, 25);
        // An earlier horizon later does not move it back; the other tenant is untouched.
        let mut sink = Vec::new();
        let again = crm.archive_interactions(tenant, t0(), &mut sink).await.unwrap();
        assert_eq!((again.exported, again.purged, again.horizon), (0, 0, horizon));
        assert_eq!(full_timeline(&store, other, bob.id, 10).await.len(), 10);
        assert_eq!(crm.archive_horizon(other).await.unwrap(), None);
    }

    /// Audit trail: registration, field changes with old and new values, transfers (one
    /// by one and in bulk), merges on both sides and erasure, newest first, page by page;
    /// erasure keeps that it happened and which fields changed, not the values.
    async fn audit_trail_records_every_change(store) {
        use crm_core::audit::AuditChange;
        use crm_core::merge::MergePolicy;
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let (agent, lead, next) = (UserId::new(), UserId::new(), UserId::new());
        let ann = register(&crm, tenant, Customer::person("Ann Lee").email("ann@example.com").owner(agent).build().unwrap()).await;
        let also = register(&crm, tenant, simple("Also Owned")).await;
        let also = crm.change_owner(tenant, also.id, Some(agent), also.version, Some(lead), None).await.unwrap();
        clock.advance(Duration::hours(1));
        let mut renamed = ann.clone();
        renamed.name = crm_core::DisplayName::parse("Ann Lee-Smith").unwrap();
        let ann = crm.update(tenant, renamed, Some(agent)).await.unwrap();
        clock.advance(Duration::hours(1));
        // Someone leaves: everything they own moves, each transfer audited.
        assert_eq!(crm.transfer_all(tenant, agent, Some(next), Some(lead), Some("left the company")).await.unwrap(), 2);
        assert_eq!(crm.customer(tenant, also.id).await.unwrap().owner, Some(next));
        let ann = crm.customer(tenant, ann.id).await.unwrap();
        let bob = register(&crm, tenant, Customer::person("Ann L.").email("annl@example.com").build().unwrap()).await;
        crm.merge_customers_by(tenant, ann.id, &[bob.id], &MergePolicy::default(), false, Some(lead), Some("same person")).await.unwrap();

        let all = |id: CustomerId| { let store = store.clone(); async move {
            collect_pages(2, |page| { let store = store.clone(); async move { store.audit_history(tenant, id, &page).await } }).await
        } };
        let history = all(ann.id).await;
        let versions: Vec<u64> = history.iter().map(|e| e.version).collect();
        assert_eq!(versions, [4, 3, 2, 1], "newest first, one entry per version");
        assert!(matches!(&history[3].change, AuditChange::Created));
        match &history[2].change {
            AuditChange::Updated { fields } => {
                assert_eq!(fields.len(), 1, "{fields:?}");
                assert_eq!(fields[0].field, "name");
                assert_eq!(fields[0].old, serde_json::json!("Ann Lee"));
                assert_eq!(fields[0].new, serde_json::json!("Ann Lee-Smith"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(history[2].actor, Some(agent));
        match &history[1].change {
            AuditChange::Updated { fields } => assert_eq!(fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["owner"]),
            other => panic!("{other:?}"),
        }
        assert_eq!((history[1].actor, history[1].reason.as_deref()), (Some(lead), Some("left the company")));
        assert!(matches!(&history[0].change, AuditChange::Merged { merged, fields } if merged == &vec![bob.id] && fields.iter().any(|f| f.field == "emails")));
        // The merged-away customer's trail stays readable under its old id.
        let bobs = all(bob.id).await;
        assert!(matches!(&bobs[0].change, AuditChange::MergedInto { survivor } if *survivor == ann.id));
        assert!(matches!(&bobs[1].change, AuditChange::Created));

        // Erasure: recorded; earlier entries keep which fields changed, not the values.
        crm.erase_customer(tenant, ann.id, 4).await.unwrap();
        let history = all(ann.id).await;
        assert_eq!(history.len(), 5);
        assert!(matches!(&history[0].change, AuditChange::Erased));
        let json = serde_json::to_string(&history).unwrap();
        for secret in ["Ann Lee", "ann@example.com", "left the company", "same person"] {
            assert!(!json.contains(secret), "{secret:?} is still in the audit trail");
        }
        assert!(matches!(&history[3].change, AuditChange::Updated { fields } if fields[0].field == "name" && fields[0].old.is_null()));
        assert!(all(CustomerId::new()).await.is_empty());
        assert!(store.audit_history(TenantId::new(), ann.id, &PageRequest::first(10)).await.unwrap().items.is_empty());
        assert!(store.audit_history(tenant, ann.id, &PageRequest { after: Some(Cursor::customer(ann.id)), limit: 10 }).await.is_err(), "a cursor of another listing");

        // Erasing a survivor also scrubs the history kept under the ids merged into it.
        let dora = register(&crm, tenant, simple("Dora")).await;
        let old = register(&crm, tenant, simple("Dora Old")).await;
        let mut renamed = old.clone();
        renamed.name = crm_core::DisplayName::parse("Dora Secretmaiden").unwrap();
        let old = crm.update(tenant, renamed, Some(agent)).await.unwrap();
        let old = crm.change_owner(tenant, old.id, Some(agent), old.version, Some(lead), Some("moved to dora's branch")).await.unwrap();
        crm.merge_customers(tenant, dora.id, &[old.id], &MergePolicy::default(), false).await.unwrap();
        let dora = crm.customer(tenant, dora.id).await.unwrap();
        crm.erase_customer(tenant, dora.id, dora.version).await.unwrap();
        let trail = serde_json::to_string(&all(old.id).await).unwrap();
        assert!(trail.contains("owner"), "the transfer is still recorded: {trail}");
        for secret in ["Secretmaiden", "branch"] {
            assert!(!trail.contains(secret), "{secret:?} is still in {trail}");
        }
    }

    /// The largest amounts add up in profiles, exports, segments and merges, and read back;
    /// amounts beyond the bound are refused before anything is stored.
    async fn largest_amounts_add_up_and_read_back(store) {
        use crm_core::merge::MergePolicy;
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let max = Money::from_parts(Money::MAX_AMOUNT, crm_core::Currency::parse("EUR").unwrap()).unwrap();
        let buy = |c: CustomerId, key: &str, amount: Money| {
            Interaction::builder(c, Channel::Web, InteractionKind::Purchase).at(t0()).amount(amount).key("shop", key).build().unwrap()
        };
        // The amounts that broke profiles before are refused where they are made.
        assert_eq!(Money::parse("79228162514264337593543950335", "EUR").unwrap_err().field(), Some("amount"));
        assert!(serde_json::from_str::<Money>(r#"{"amount":"79228162514264337593543950335","currency":"EUR"}"#).is_err());
        let a = register(&crm, tenant, simple("Big Spender A")).await;
        let b = register(&crm, tenant, simple("Big Spender B")).await;
        let batch = vec![buy(a.id, "a1", max), buy(a.id, "a2", max), buy(b.id, "b1", max), buy(b.id, "b2", max)];
        assert_eq!(crm.log_batch(tenant, batch).await.unwrap().inserted, 4);
        let two = Money::MAX_AMOUNT * Decimal::TWO;
        for c in [a.id, b.id] {
            assert_profile_is_rebuild(&store, tenant, c).await;
            assert_eq!(crm.profile(tenant, c).await.unwrap().revenue_in(max.currency()), two);
            let export = crm.export_customer(tenant, c).await.unwrap();
            assert_eq!(export.profile.revenue_in(max.currency()), two);
        }
        let rule = crm_core::segment::parse("revenue >= 2000000000000000").unwrap();
        let (count, _) = crm.preview(tenant, &rule, &schema, &PageRequest::first(10)).await.unwrap();
        assert_eq!(count, 2);
        // A refund of the largest amount in the other direction.
        let refund = Money::from_parts(-Money::MAX_AMOUNT, max.currency()).unwrap();
        crm.log_batch(tenant, vec![buy(b.id, "b3", refund)]).await.unwrap();
        assert_profile_is_rebuild(&store, tenant, b.id).await;
        let merged = crm.merge_customers(tenant, a.id, &[b.id], &MergePolicy::default(), false).await.unwrap();
        assert_eq!(merged.profile.revenue_in(max.currency()), Money::MAX_AMOUNT * Decimal::from(3));
        assert_eq!(crm.profile(tenant, a.id).await.unwrap(), merged.profile);
        assert_profile_is_rebuild(&store, tenant, a.id).await;
        let (count, _) = crm.preview(tenant, &rule, &schema, &PageRequest::first(10)).await.unwrap();
        assert_eq!(count, 1);
    }

    /// The largest rules the language accepts are stored, read back equal (one by one and
    /// in the tenant's list), refreshed and previewed with the reference answer; a NUL in
    /// a rule's text is a validation error everywhere.
    async fn largest_rules_are_stored_run_and_read_back(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let mut ids = Vec::new();
        for (i, tags) in [vec![], vec!["vip"], vec!["vip"], vec![]].into_iter().enumerate() {
            let mut b = Customer::person(&format!("Customer {i}"));
            for t in tags {
                b = b.tag(t);
            }
            let c = register(&crm, tenant, b.build().unwrap()).await;
            let buys: Vec<Interaction> = (0..i)
                .map(|k| Interaction::builder(c.id, Channel::Web, InteractionKind::Purchase).at(t0())
                    .amount(Money::parse("5", "EUR").unwrap()).key("shop", &format!("{i}-{k}")).build().unwrap())
                .collect();
            crm.log_batch(tenant, buys).await.unwrap();
            ids.push(c.id);
        }
        for (n, text) in crm_core::segment::largest_rules().into_iter().enumerate() {
            let rule = parse(&text).unwrap();
            let compiled = CompiledRule::new(&rule, &schema).unwrap();
            let mut expected = Vec::new();
            for id in &ids {
                let (c, p) = (store.get_customer(tenant, *id).await.unwrap(), store.get_profile(tenant, *id).await.unwrap());
                if compiled.matches(&Subject { customer: &c, profile: &p, scores: None, classes: None }, t0()) {
                    expected.push(*id);
                }
            }
            expected.sort();
            let segment = crm.create_segment(tenant, Segment::dynamic(&format!("Largest {n}"), rule.clone()).unwrap(), &schema).await.unwrap();
            assert_eq!(store.get_segment(tenant, segment.id).await.unwrap(), segment);
            assert!(crm.segments(tenant).await.unwrap().contains(&segment));
            let change = crm.refresh_segment(tenant, segment.id, &schema).await.unwrap();
            let mut entered = change.entered.clone();
            entered.sort();
            assert_eq!(entered, expected, "rule {n}");
            let (count, _) = crm.preview(tenant, &rule, &schema, &PageRequest::first(10)).await.unwrap();
            assert_eq!(count, expected.len() as u64, "rule {n}");
        }
        let nul = parse("name = \"a\\u{0}b\" or \"x\\u{0}\" in tags").unwrap();
        let e = crm.preview(tenant, &nul, &schema, &PageRequest::first(10)).await.unwrap_err();
        assert_eq!(e.field(), Some("rule"), "{e}");
        let e = crm.create_segment(tenant, Segment::dynamic("NUL", nul).unwrap(), &schema).await.unwrap_err();
        assert_eq!(e.field(), Some("rule"), "{e}");
    }

    /// Whatever the core accepts reads back equal: customers, interactions (and the
    /// profiles they make), cases with timelines up to the longest, tasks, segments and
    /// KPI rules generated at the edges ([`crate::wild`]); a NUL in any text is refused.
    async fn wild_records_read_back_equal(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let mut wild = crate::wild::Wild::new(0x7769_6c64);
        let mut customers = Vec::new();
        for _ in 0..24 {
            let c = register(&crm, tenant, wild.customer()).await;
            assert_eq!(store.get_customer(tenant, c.id).await.unwrap(), c);
            customers.push(c);
        }
        let mut sent = Vec::new();
        for (n, c) in customers.iter().enumerate() {
            for k in 0..3 {
                sent.push(wild.interaction(c.id, &format!("{n}-{k}")));
            }
        }
        crm.log_batch(tenant, sent.clone()).await.unwrap();
        for c in &customers {
            let mut back = full_timeline(&store, tenant, c.id, 50).await;
            back.sort_by_key(|i| i.id);
            let mut expected: Vec<Interaction> = sent.iter().filter(|i| i.customer == c.id).cloned().collect();
            for i in &mut expected {
                i.recorded_at = crm_core::Clock::now(clock.as_ref());
            }
            expected.sort_by_key(|i| i.id);
            assert_eq!(back, expected);
            assert_profile_is_rebuild(&store, tenant, c.id).await;
        }
        for (n, events) in [1, 2, 40, 300, crm_core::case::MAX_EVENTS].into_iter().enumerate() {
            let case = wild.case(customers[n].id, events);
            store.insert_case(tenant, &case, WriteOptions::new()).await.unwrap();
            assert_eq!(store.get_case(tenant, case.id).await.unwrap(), case);
        }
        for c in customers.iter().take(10) {
            let task = wild.task(c.id);
            store.insert_task(tenant, &task).await.unwrap();
            assert_eq!(store.get_task(tenant, task.id).await.unwrap(), task);
        }
        let mut segments = Vec::new();
        for n in 0..10 {
            let s = crm.create_segment(tenant, wild.segment(n), &schema).await.unwrap();
            assert_eq!(store.get_segment(tenant, s.id).await.unwrap(), s);
            segments.push(s);
        }
        let listed = crm.segments(tenant).await.unwrap();
        assert!(segments.iter().all(|s| listed.contains(s)));
        for n in 0..3 {
            let rule = wild.kpi_rule(n);
            crm.add_kpi_rule(tenant, rule.clone()).await.unwrap();
            assert!(crm.kpi_rules(tenant).await.unwrap().iter().any(|r| r.rule == rule));
        }
        assert!(wild.refused > 0, "the generator reached values the core refuses");
        // NUL in text is refused alike everywhere, before anything is stored.
        let with_nul = Customer::person("Nul").attribute("note", AttrValue::Text("a\0b".into())).build();
        assert_eq!(with_nul.unwrap_err().field(), Some("attributes.note"));
        let with_nul = Interaction::builder(customers[0].id, Channel::Web, InteractionKind::Note).at(t0()).body("a\0b").build();
        assert_eq!(with_nul.unwrap_err().field(), Some("body"));
    }

    /// Tenant B calls every storage method with tenant A's ids and records
    /// ([`FOREIGN_CALLS`] calls): it reads nothing of A's, changes nothing of A's, and A's
    /// records read the same afterwards.
    async fn a_foreign_tenant_reaches_nothing(store) {
        use crm_core::case::{Case, CaseKind, CaseQuery};
        use crm_core::merge::CustomerMerge;
        use crm_core::task::{Task, TaskQuery, TaskSubject};
        let (crm, _) = crm(&store);
        let schema = segment_schema();
        let (a, b) = (TenantId::new(), TenantId::new());
        let c = register(&crm, a, Customer::person("Secret").email("s@a.example").tag("vip").external_id("erp", "S1").build().unwrap()).await;
        let other = register(&crm, a, simple("Second")).await;
        let buy = Interaction::builder(c.id, Channel::Web, InteractionKind::Purchase).at(t0()).amount(Money::parse("10", "EUR").unwrap()).key("shop", "1").build().unwrap();
        crm.log(a, buy.clone()).await.unwrap();
        let case = crm.open_case(a, Case::open(c.id, CaseKind::Complaint, "Broken", Channel::Web, None, t0()).unwrap()).await.unwrap();
        let task = crm.create_task(a, Task::new(TaskSubject::Customer(c.id), "Call", UserId::new(), t0()).unwrap()).await.unwrap();
        let seg = crm.create_segment(a, Segment::fixed("Picked").unwrap(), &schema).await.unwrap();
        crm.change_static_members(a, seg.id, vec![c.id], vec![]).await.unwrap();
        crm.set_value_scores(a, vec![(c.id, scores(0.5, "10"))]).await.unwrap();
        let rule = isolation_kpi_rule();
        crm.add_kpi_rule(a, rule.clone()).await.unwrap();
        let snapshot = |store: Arc<dyn Storage>| async move {
            (
                store.get_customer(a, c.id).await.unwrap(),
                store.get_profile(a, c.id).await.unwrap(),
                full_timeline(&store, a, c.id, 10).await,
                store.get_case(a, case.id).await.unwrap(),
                store.get_task(a, task.id).await.unwrap(),
                store.segment_members(a, seg.id, &PageRequest::first(10)).await.unwrap().items,
                store.value_scores(a, c.id).await.unwrap(),
                store.kpi_rules(a).await.unwrap(),
                store.ownership_history(a, c.id).await.unwrap(),
            )
        };
        let before = snapshot(store.clone()).await;
        let mut calls = 0;
        // Refused, or answered as if A's records did not exist.
        fn nothing<T: std::fmt::Debug>(r: crm_core::Result<T>, empty: impl Fn(&T) -> bool, what: &str) {
            match r {
                Ok(v) => assert!(empty(&v), "{what}: tenant B got {v:?}"),
                Err(Error::NotFound { .. } | Error::Conflict { .. } | Error::Validation { .. }) => {}
                Err(e) => panic!("{what}: {e:?}"),
            }
        }
        let all = PageRequest::first(100);
        macro_rules! probe {
            ($call:expr, $empty:expr, $what:expr) => {{
                calls += 1;
                nothing($call.await, $empty, $what);
            }};
        }
        let no = |_: &()| true;
        probe!(store.get_customer(b, c.id), |_| false, "get_customer");
        probe!(store.ownership_history(b, c.id), |v| v.is_empty(), "ownership_history");
        probe!(store.redirect(b, c.id), |v| v.is_none(), "redirect");
        probe!(store.audit_history(b, c.id, &all), |p| p.items.is_empty(), "audit_history");
        probe!(store.timeline(b, c.id, &all), |p| p.items.is_empty(), "timeline");
        probe!(store.get_profile(b, c.id), |_| false, "get_profile");
        probe!(store.value_scores(b, c.id), |v| v.is_none(), "value_scores");
        probe!(store.value_classes(b, c.id), |v| v.is_none(), "value_classes");
        for q in [
            CustomerQuery::all(),
            CustomerQuery { email: Some(EmailAddress::parse("s@a.example").unwrap()), ..Default::default() },
            CustomerQuery { external_id: Some(ExternalRef::new("erp", "S1").unwrap()), ..Default::default() },
            CustomerQuery { tag: Some(Tag::parse("vip").unwrap()), ..Default::default() },
        ] {
            probe!(store.list_customers(b, &q, &all), |p| p.items.is_empty(), "list_customers");
        }
        probe!(store.interactions_between(b, t0() - Duration::days(1), t0() + Duration::days(1), &all), |p| p.items.is_empty(), "interactions_between");
        let everyone = parse("revenue >= 0 or name is not null").unwrap();
        probe!(store.find_matching(b, &everyone, &schema, t0(), &all), |p| p.items.is_empty(), "find_matching");
        probe!(store.count_matching(b, &everyone, &schema, t0()), |n| *n == 0, "count_matching");
        probe!(store.get_segment(b, seg.id), |_| false, "get_segment");
        probe!(store.list_segments(b), |v| v.is_empty(), "list_segments");
        probe!(store.segment_members(b, seg.id, &all), |p| p.items.is_empty(), "segment_members");
        probe!(store.is_member(b, seg.id, c.id), |m| !*m, "is_member");
        probe!(store.segments_of(b, c.id), |v| v.is_empty(), "segments_of");
        probe!(store.get_case(b, case.id), |_| false, "get_case");
        probe!(store.list_cases(b, &CaseQuery::default(), &all), |p| p.items.is_empty(), "list_cases");
        probe!(store.get_task(b, task.id), |_| false, "get_task");
        probe!(store.list_tasks(b, &TaskQuery::default(), &all), |p| p.items.is_empty(), "list_tasks");
        probe!(store.kpi_rules(b), |v| v.is_empty(), "kpi_rules");
        probe!(store.latest_value_model(b), |v| v.is_none(), "latest_value_model");
        probe!(store.archive_horizon(b), |v| v.is_none(), "archive_horizon");
        // Writes with A's ids and records.
        let mut changed = c.clone();
        changed.name = crm_core::DisplayName::parse("Stolen").unwrap();
        changed.version = 2;
        probe!(store.update_customer(b, &changed, 1, WriteOptions::new()), no, "update_customer");
        probe!(store.erase_customer(b, &changed, 1, WriteOptions::new().audit(crm_core::audit::AuditEntry::created(&changed))), no, "erase_customer");
        let merge = CustomerMerge { survivor: changed.clone(), survivor_version: 1, merged: vec![(other.id, 1)], audit: vec![] };
        probe!(store.merge_customers(b, &merge, WriteOptions::new()), no, "merge_customers");
        let mut again = buy.clone();
        again.id = crm_core::InteractionId::new();
        again.key = ExternalRef::new("shop", "2").unwrap();
        probe!(store.append_interactions(b, vec![again], WriteOptions::new()), |r| r.inserted == 0, "append_interactions");
        probe!(store.set_value_scores(b, vec![(c.id, scores(0.9, "99"))]), no, "set_value_scores");
        probe!(store.refresh_segment(b, seg.id, &schema, t0(), None), |m| m.members == 0, "refresh_segment");
        probe!(store.change_static_members(b, seg.id, vec![], vec![c.id], None), |m| m.left.is_empty(), "change_static_members");
        let mut moved = case.clone();
        moved.version += 1;
        probe!(store.update_case(b, &moved, case.version, WriteOptions::new()), no, "update_case");
        probe!(store.insert_case(b, &case, WriteOptions::new()), no, "insert_case");
        let mut done = task.clone();
        done.version += 1;
        probe!(store.update_task(b, &done, task.version, WriteOptions::new()), no, "update_task");
        probe!(store.update_kpi_rule(b, &rule, 1), no, "update_kpi_rule");
        // These succeed or not on B's side; either way A's records stay as they were.
        calls += 4;
        let _ = store.delete_kpi_rule(b, &rule.key).await;
        store.archive_interactions(b, t0() + Duration::days(365), t0() + Duration::days(365)).await.unwrap();
        store.insert_customer(b, &c, WriteOptions::new()).await.unwrap();
        store.save_segment(b, &seg).await.unwrap();
        assert_eq!(calls, FOREIGN_CALLS);
        assert_eq!(snapshot(store.clone()).await, before, "tenant A reads the same");
    }
}

/// Calls tenant B makes in `a_foreign_tenant_reaches_nothing`.
pub const FOREIGN_CALLS: usize = 42;

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
