//! The webhook sink against a real HTTP server process (`tests/support/receiver.py`),
//! through the outbox and the dispatcher as a host runs it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_core::notify::{DispatchReport, Dispatcher, DomainEvent, LogNotifier, StaticDirectory};
use crm_core::{Crm, Customer, PageRequest, SystemClock, TenantId, UserId};
use crm_sqlite::SqliteStore;
use crm_webhook::{
    Verifier, VerifyError, WebhookConfig, WebhookSecret, WebhookSink, EVENT_HEADER,
    IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use support::{Receiver, Request};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn secret() -> WebhookSecret {
    WebhookSecret::new(SECRET).unwrap()
}

struct Setup {
    crm: Crm,
    dispatcher: Dispatcher<SqliteStore>,
    tenant: TenantId,
}

fn setup(config: WebhookConfig) -> Setup {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let crm = Crm::new(store.clone()).with_events(true);
    let tenant = TenantId::new();
    let dispatcher = Dispatcher::new(
        tenant,
        store,
        Arc::new(LogNotifier::stderr()),
        Arc::new(StaticDirectory::new()),
        Arc::new(SystemClock),
    )
    .with_event_sink(Arc::new(WebhookSink::new(config).unwrap()));
    Setup {
        crm,
        dispatcher,
        tenant,
    }
}

fn plain(url: &str) -> WebhookConfig {
    WebhookConfig::plain_http_dangerous(url, secret()).unwrap()
}

impl Setup {
    async fn register(&self, name: &str) -> Customer {
        let customer = Customer::person(name).build().unwrap();
        self.crm
            .tenant(self.tenant)
            .customers()
            .register(customer)
            .await
            .unwrap()
    }

    /// Rounds at `now` until one claims nothing.
    async fn drain(&self, now: DateTime<Utc>) -> DispatchReport {
        let mut total = DispatchReport::default();
        loop {
            let round = self.dispatcher.run_once(now).await.unwrap();
            if round.claimed == 0 {
                return total;
            }
            total += round;
        }
    }

    async fn dead(&self) -> usize {
        let page = self
            .crm
            .tenant(self.tenant)
            .notifications()
            .dead_letters(&PageRequest::first(100))
            .await
            .unwrap();
        page.items.len()
    }
}

/// Verifies a received request as a receiver would, at `now`.
fn verify(request: &Request, now: DateTime<Utc>) -> Result<DomainEvent, VerifyError> {
    Verifier::new(secret()).verify_event(
        request.header(TIMESTAMP_HEADER),
        request.header(SIGNATURE_HEADER),
        request.body.as_bytes(),
        now,
    )
}

#[tokio::test]
async fn events_arrive_signed_and_in_order_per_entity() {
    let receiver = Receiver::start(SECRET);
    let s = setup(plain(&receiver.url("/ok")));
    let ann = s.register("Ann").await;
    s.crm
        .tenant(s.tenant)
        .customers()
        .change_owner(ann.id, Some(UserId::new()), 1, None, Some("key account"))
        .await
        .unwrap();
    let bob = s.register("Bob").await;

    let report = s.drain(Utc::now()).await;
    assert_eq!((report.sent, report.retried, report.dead), (4, 0, 0));
    let requests = receiver.take(4);
    assert!(receiver.rest().is_empty());

    let mut events = Vec::new();
    for request in &requests {
        assert_eq!(request.status, 200);
        assert!(request.verified, "the Python recipe accepts it too");
        assert_eq!(request.header("content-type"), Some("application/json"));
        let event = verify(request, Utc::now()).expect("a valid signature");
        assert_eq!(request.header(EVENT_HEADER), Some(event.kind.as_str()));
        assert_eq!(
            request.header(IDEMPOTENCY_HEADER),
            Some(event.idempotency_key.as_str())
        );
        assert_eq!(event.tenant, s.tenant);
        events.push(event);
    }
    let of = |id: uuid::Uuid| -> Vec<(String, u64)> {
        events
            .iter()
            .filter(|e| e.entity.id == id)
            .map(|e| (e.kind.as_str().to_string(), e.seq))
            .collect()
    };
    let ann_events = of(ann.id.as_uuid());
    let kinds: Vec<&str> = ann_events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "customer.created",
            "customer.updated",
            "customer.owner_changed"
        ],
        "one entity's events arrive in the order they were stored"
    );
    assert!(ann_events.windows(2).all(|w| w[0].1 < w[1].1));
    assert_eq!(of(bob.id.as_uuid()).len(), 1);

    // What a receiver refuses: a replay after the window, a changed body, another secret.
    let first = &requests[0];
    let later = Utc::now() + chrono::Duration::minutes(10);
    assert!(matches!(
        verify(first, later),
        Err(VerifyError::OutsideWindow { .. })
    ));
    let mut changed = first.clone();
    changed.body = changed.body.replace("Ann", "Eve");
    assert_eq!(
        verify(&changed, Utc::now()).unwrap_err(),
        VerifyError::BadSignature
    );
    let stranger = Verifier::new(WebhookSecret::new(*b"another secret, 32 bytes long...").unwrap());
    assert_eq!(
        stranger
            .verify(
                first.header(TIMESTAMP_HEADER),
                first.header(SIGNATURE_HEADER),
                first.body.as_bytes(),
                Utc::now()
            )
            .unwrap_err(),
        VerifyError::BadSignature
    );
}

#[tokio::test]
async fn a_500_is_retried_and_the_event_delivered_once() {
    let receiver = Receiver::start(SECRET);
    let s = setup(plain(&receiver.url("/flaky/1")));
    s.register("Ann").await;

    let now = Utc::now();
    let first = s.drain(now).await;
    assert_eq!((first.sent, first.retried, first.dead), (0, 1, 0));
    assert!(
        s.drain(now).await.claimed == 0,
        "not again before the backoff"
    );
    let second = s.drain(now + chrono::Duration::hours(1)).await;
    assert_eq!((second.sent, second.retried, second.dead), (1, 0, 0));
    assert!(s.drain(now + chrono::Duration::hours(2)).await.claimed == 0);

    let requests = receiver.take(2);
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 200]
    );
    assert_eq!(
        requests[0].header(IDEMPOTENCY_HEADER),
        requests[1].header(IDEMPOTENCY_HEADER),
        "a redelivery carries the same key"
    );
    for r in &requests {
        verify(r, Utc::now()).expect("each attempt is signed");
    }
    assert!(receiver.rest().is_empty());
}

#[tokio::test]
async fn a_410_makes_a_dead_letter_and_a_429_a_retry() {
    let gone = Receiver::start(SECRET);
    let s = setup(plain(&gone.url("/gone")));
    s.register("Ann").await;
    let report = s.drain(Utc::now()).await;
    assert_eq!((report.sent, report.retried, report.dead), (0, 0, 1));
    assert_eq!(s.dead().await, 1);
    assert_eq!(gone.take(1)[0].status, 410);

    let throttled = Receiver::start(SECRET);
    let s = setup(plain(&throttled.url("/throttle")));
    s.register("Bob").await;
    let report = s.drain(Utc::now()).await;
    assert_eq!((report.sent, report.retried, report.dead), (0, 1, 0));
    assert_eq!(s.dead().await, 0);
    assert_eq!(throttled.take(1)[0].status, 429);
}

#[tokio::test]
async fn a_receiver_that_hangs_times_out_and_the_event_is_retried() {
    let receiver = Receiver::start(SECRET);
    let config = plain(&receiver.url("/hang-once/3")).with_timeout(Duration::from_millis(500));
    let s = setup(config);
    s.register("Ann").await;

    let now = Utc::now();
    let started = std::time::Instant::now();
    let first = s.drain(now).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the attempt gave up before the receiver answered ({:?})",
        started.elapsed()
    );
    assert_eq!((first.sent, first.retried, first.dead), (0, 1, 0));
    let second = s.drain(now + chrono::Duration::hours(1)).await;
    assert_eq!((second.sent, second.retried, second.dead), (1, 0, 0));
    // The hung request is reported once the receiver wakes up.
    assert_eq!(receiver.take(2).len(), 2);
}

#[tokio::test]
async fn https_with_the_company_ca_and_not_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = match crm_testkit::tls::TestCa::make(dir.path()) {
        Ok(ca) => ca,
        Err(why) => panic!("the TLS test needs openssl: {why}"),
    };
    let receiver = Receiver::start_tls(SECRET, &ca.cert, &ca.key);
    let url = format!("https://localhost:{}/ok", receiver.port);

    let trusted = WebhookConfig::new(&url, secret())
        .unwrap()
        .with_root_certificate(&ca.ca_pem)
        .unwrap();
    let s = setup(trusted);
    s.register("Ann").await;
    let report = s.drain(Utc::now()).await;
    assert_eq!((report.sent, report.retried), (1, 0));
    verify(&receiver.take(1)[0], Utc::now()).unwrap();

    // The Mozilla roots do not know the test CA: a transient failure, nothing received.
    let s = setup(WebhookConfig::new(&url, secret()).unwrap());
    s.register("Bob").await;
    let report = s.drain(Utc::now()).await;
    assert_eq!((report.sent, report.retried, report.dead), (0, 1, 0));
    std::thread::sleep(Duration::from_millis(200));
    assert!(receiver.rest().is_empty());
}

#[tokio::test]
async fn the_python_recipe_refuses_another_secret() {
    let receiver = Receiver::start("not the sender's secret, 32 bytes");
    let s = setup(plain(&receiver.url("/ok")));
    s.register("Ann").await;
    assert_eq!(s.drain(Utc::now()).await.sent, 1);
    let request = &receiver.take(1)[0];
    assert!(!request.verified, "signed with another secret");
    verify(request, Utc::now()).expect("while the sender's secret accepts it");
}
