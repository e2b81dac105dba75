//! The email notifier against a real SMTP server process, with the SQLite outbox and the
//! core's dispatcher: what arrives (headers, encodings, both parts, envelope) and what
//! happens when the server is down, defers (451), refuses (550), or a dispatcher dies.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use crm_core::notify::{
    DispatchConfig, Dispatcher, MessageState, Notification, Recipient, RetryPolicy, Shutdown,
    StaffMember, StaticDirectory,
};
use crm_core::{Crm, Customer, EmailAddress, ManualClock, Storage, TenantId, UserId};
use crm_email::{SmtpConfig, SmtpNotifier, TemplateParts, Templates};
use crm_postgres::PostgresStore;
use crm_sqlite::SqliteStore;
use crm_testkit::postgres::{postgres_for_tests, PostgresTarget};
use crm_testkit::MemoryStore;
use support::{free_port, received, wait_for, SmtpSink};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn templates() -> Templates {
    let mut t = Templates::new();
    t.add(
        None,
        "welcome",
        None,
        TemplateParts::new(
            "您好 {{ recipient.name }}：{{ topic }}",
            "Dear {{ recipient.name }},\n{{ topic }} — 谢谢",
        )
        .html("<p>{{ topic }} &mdash; <b>谢谢</b></p>"),
    )
    .unwrap();
    t.add(
        None,
        "plain",
        None,
        TemplateParts::new("{{ topic }}", "{{ topic }}"),
    )
    .unwrap();
    t
}

/// Which outbox the dispatcher works on.
#[derive(Clone, Copy)]
enum Outbox {
    Sqlite,
    Memory,
    Postgres,
}

struct World {
    _server: Option<PostgresTarget>,
    store: Arc<dyn Storage>,
    crm: Crm,
    tenant: TenantId,
    directory: Arc<StaticDirectory>,
    notifier: Arc<SmtpNotifier>,
}

/// The world on the chosen outbox, or `None` (after saying why) when PostgreSQL is wanted
/// and cannot be had here (a failure under `CRM_REQUIRE_POSTGRES=1`).
async fn world(port: u16, kind: Outbox) -> Option<World> {
    let mut server = None;
    let store: Arc<dyn Storage> = match kind {
        Outbox::Sqlite => Arc::new(SqliteStore::open_in_memory().unwrap()),
        Outbox::Memory => Arc::new(MemoryStore::new()),
        Outbox::Postgres => {
            let Some(target) = postgres_for_tests() else {
                eprintln!("skipped: no PostgreSQL server for the outbox");
                return None;
            };
            let store = PostgresStore::builder(&target.connection_string("postgres"))
                .migrate_on_connect(true)
                .connect()
                .await
                .expect("connect");
            server = Some(target);
            Arc::new(store)
        }
    };
    let clock = Arc::new(ManualClock::new(t0()));
    let crm = Crm::new(store.clone()).with_clock(clock);
    let config = SmtpConfig::plain_dangerous("127.0.0.1", port, "CRM 客服", "crm@example.com")
        .unwrap()
        .with_timeout(Duration::from_secs(5))
        .with_pool_size(2);
    Some(World {
        _server: server,
        store,
        crm,
        tenant: TenantId::new(),
        directory: Arc::new(StaticDirectory::new()),
        notifier: Arc::new(SmtpNotifier::new(config, templates()).unwrap()),
    })
}

impl World {
    fn dispatcher(&self) -> Dispatcher<dyn Storage> {
        let retry = RetryPolicy {
            base: Duration::from_secs(60),
            max_delay: Duration::from_secs(3600),
            max_attempts: 5,
            jitter: 0.0,
        };
        Dispatcher::new(
            self.tenant,
            self.store.clone(),
            self.notifier.clone(),
            self.directory.clone(),
            Arc::new(ManualClock::new(t0())),
        )
        .with_config(
            DispatchConfig::default()
                .with_retry(retry)
                .with_lease(Duration::from_secs(300)),
        )
    }

    async fn send_plain(&self, keys: &[&str]) {
        let to = EmailAddress::parse("ops@example.com").unwrap();
        let notes = keys
            .iter()
            .map(|k| {
                Notification::builder(Recipient::Email(to.clone()), "plain", k)
                    .data(serde_json::json!({ "topic": format!("note {k}") }))
                    .build()
                    .unwrap()
            })
            .collect();
        let report = self
            .crm
            .tenant(self.tenant)
            .notifications()
            .enqueue(notes)
            .await
            .unwrap();
        assert_eq!(report.enqueued, keys.len());
    }
}

fn minutes(m: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(m)
}

async fn delivers_headers_encodings_both_parts_and_envelope(kind: Outbox) {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start_or_skip(dir.path()) else {
        return;
    };
    let Some(w) = world(sink.port, kind).await else {
        return;
    };
    let customer = w
        .crm
        .tenant(w.tenant)
        .customers()
        .register(
            Customer::person("王小明")
                .email("xiaoming@example.cn")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let n = Notification::builder(Recipient::Customer(customer.id), "welcome", "welcome:1")
        .data(serde_json::json!({ "topic": "Rückruf <heute> ✓" }))
        .build()
        .unwrap();
    w.crm
        .tenant(w.tenant)
        .notifications()
        .enqueue(vec![n])
        .await
        .unwrap();
    let report = w.dispatcher().run_once(t0()).await.unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let got = wait_for(dir.path(), 1);
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.rcpt_tos, ["xiaoming@example.cn"], "envelope recipient");
    assert_eq!(m.mail_from, "crm@example.com", "envelope sender");
    assert_eq!(m.subject, "您好 王小明：Rückruf <heute> ✓");
    assert_eq!(m.to_name.as_deref(), Some("王小明"));
    assert!(
        m.from.contains("CRM 客服") && m.from.contains("crm@example.com"),
        "{}",
        m.from
    );
    assert_eq!(m.content_type, "multipart/alternative");
    assert_eq!(
        m.text
            .as_deref()
            .map(|t| t.replace("\r\n", "\n"))
            .as_deref()
            .map(str::trim_end),
        Some("Dear 王小明,\nRückruf <heute> ✓ — 谢谢")
    );
    let html = m.html.as_deref().unwrap();
    assert!(
        html.contains("Rückruf &lt;heute&gt; ✓ &mdash; <b>谢谢</b>"),
        "{html}"
    );
    assert_eq!(m.message_id, w.notifier.message_id(w.tenant, "welcome:1"));
    // On the wire every header line is 7-bit: UTF-8 travels as encoded words.
    let head = m.raw.split("\r\n\r\n").next().unwrap();
    assert!(head.is_ascii(), "headers not encoded: {head}");
    let outbox = w
        .store
        .dead_letters(w.tenant, &crm_core::PageRequest::first(5))
        .await;
    assert!(outbox.unwrap().items.is_empty());
}

async fn data_cannot_inject_headers(kind: Outbox) {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start_or_skip(dir.path()) else {
        return;
    };
    let Some(w) = world(sink.port, kind).await else {
        return;
    };
    let mallory = UserId::new();
    w.directory.insert(
        w.tenant,
        StaffMember {
            id: mallory,
            name: "Mallory\r\nBcc: victim@example.org".into(),
            email: EmailAddress::parse("mallory@example.com").unwrap(),
            locale: None,
            team: None,
            team_lead: None,
        },
    );
    let n = Notification::builder(Recipient::User(mallory), "plain", "inject")
        .data(serde_json::json!({ "topic": "Hello\r\nBcc: victim@example.org\r\nX-Evil: 1" }))
        .build()
        .unwrap();
    w.crm
        .tenant(w.tenant)
        .notifications()
        .enqueue(vec![n])
        .await
        .unwrap();
    assert_eq!(w.dispatcher().run_once(t0()).await.unwrap().sent, 1);
    let got = wait_for(dir.path(), 1);
    let m = &got[0];
    assert_eq!(m.rcpt_tos, ["mallory@example.com"], "no extra recipient");
    assert!(
        !m.header_names.iter().any(|h| h == "bcc" || h == "x-evil"),
        "{:?}",
        m.header_names
    );
    assert!(
        !m.subject.contains('\n') && !m.subject.contains('\r'),
        "{:?}",
        m.subject
    );
    assert!(
        m.subject.starts_with("Hello") && m.subject.contains("Bcc: victim"),
        "text kept, inert"
    );
}

async fn server_down_keeps_mail_queued_and_delivers_once_when_back(kind: Outbox) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some(w) = world(port, kind).await else {
        return;
    };
    w.send_plain(&["a", "b", "c"]).await;
    let dispatcher = w.dispatcher();
    let report = dispatcher.run_once(t0()).await.unwrap();
    assert_eq!(
        (report.claimed, report.retried, report.sent),
        (3, 3, 0),
        "{report:?}"
    );
    assert_eq!(
        w.store.pending_count(w.tenant).await.unwrap(),
        3,
        "nothing lost"
    );
    let _sink = match SmtpSink::start_on(port, dir.path()) {
        Ok(sink) => sink,
        Err(why) => return support::skip_or_fail(&why),
    };
    assert_eq!(
        dispatcher.run_once(minutes(0)).await.unwrap().claimed,
        0,
        "backoff holds"
    );
    let report = dispatcher.run_once(minutes(1)).await.unwrap();
    assert_eq!(report.sent, 3, "{report:?}");
    assert_eq!(dispatcher.run_once(minutes(60)).await.unwrap().claimed, 0);
    let got = wait_for(dir.path(), 3);
    let mut subjects: Vec<&str> = got.iter().map(|m| m.subject.as_str()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        ["note a", "note b", "note c"],
        "each exactly once"
    );
}

async fn reply_451_is_retried_later(kind: Outbox) {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start_or_skip(dir.path()) else {
        return;
    };
    let Some(w) = world(sink.port, kind).await else {
        return;
    };
    w.send_plain(&["deferred"]).await;
    sink.set_mode("451");
    let dispatcher = w.dispatcher();
    let report = dispatcher.run_once(t0()).await.unwrap();
    assert_eq!((report.retried, report.dead), (1, 0), "{report:?}");
    let claimed = w
        .store
        .dead_letters(w.tenant, &crm_core::PageRequest::first(5))
        .await;
    assert!(claimed.unwrap().items.is_empty());
    sink.set_mode("ok");
    assert_eq!(dispatcher.run_once(minutes(0)).await.unwrap().claimed, 0);
    assert_eq!(dispatcher.run_once(minutes(1)).await.unwrap().sent, 1);
    let got = wait_for(dir.path(), 1);
    assert_eq!(got.len(), 1);
    assert_eq!(received(dir.path()).len(), 1);
}

async fn reply_550_is_a_dead_letter(kind: Outbox) {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start_or_skip(dir.path()) else {
        return;
    };
    let Some(w) = world(sink.port, kind).await else {
        return;
    };
    w.send_plain(&["refused"]).await;
    sink.set_mode("550");
    let report = w.dispatcher().run_once(t0()).await.unwrap();
    assert_eq!((report.retried, report.dead), (0, 1), "{report:?}");
    let dead = w
        .store
        .dead_letters(w.tenant, &crm_core::PageRequest::first(5))
        .await
        .unwrap()
        .items;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].state, MessageState::Dead);
    assert!(
        dead[0].last_error.as_deref().unwrap_or("").contains("550"),
        "{:?}",
        dead[0].last_error
    );
    assert!(received(dir.path()).is_empty());
}

async fn a_dead_dispatchers_batch_is_delivered_once_after_its_lease(kind: Outbox) {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start_or_skip(dir.path()) else {
        return;
    };
    let Some(w) = world(sink.port, kind).await else {
        return;
    };
    w.send_plain(&["x", "y", "z"]).await;
    // A dispatcher claims the batch and dies before sending anything.
    let lease = crm_core::notify::Lease::new(minutes(5));
    let taken = w.store.claim(w.tenant, t0(), lease, 10).await.unwrap();
    assert_eq!(taken.len(), 3);
    let survivor = w.dispatcher();
    assert_eq!(
        survivor.run_once(minutes(1)).await.unwrap().claimed,
        0,
        "lease holds"
    );
    let report = survivor.run_once(minutes(5)).await.unwrap();
    assert_eq!(report.sent, 3, "{report:?}");
    assert_eq!(survivor.run_once(minutes(30)).await.unwrap().claimed, 0);
    let got = wait_for(dir.path(), 3);
    assert_eq!(got.len(), 3, "each exactly once");
    drop(sink);
}

async fn the_running_loop_delivers_and_stops_gracefully(kind: Outbox) {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start_or_skip(dir.path()) else {
        return;
    };
    let Some(w) = world(sink.port, kind).await else {
        return;
    };
    let shutdown = Shutdown::new();
    let dispatcher = Arc::new(
        w.dispatcher()
            .with_config(DispatchConfig::default().with_poll_interval(Duration::from_millis(20))),
    );
    let running = {
        let (dispatcher, shutdown) = (dispatcher.clone(), shutdown.clone());
        tokio::spawn(async move { dispatcher.run(&shutdown, tokio::time::sleep).await })
    };
    w.send_plain(&["1", "2", "3", "4", "5"]).await;
    let got = wait_for(dir.path(), 5);
    shutdown.trigger();
    let report = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stops after shutdown")
        .unwrap();
    assert_eq!(got.len(), 5);
    assert_eq!(report.sent, 5, "{report:?}");
    assert_eq!(w.store.pending_count(w.tenant).await.unwrap(), 0);
}

mod sqlite {
    //! Every SMTP case on the sqlite outbox.
    use super::Outbox;

    #[tokio::test]
    async fn delivers_headers_encodings_both_parts_and_envelope() {
        super::delivers_headers_encodings_both_parts_and_envelope(Outbox::Sqlite).await;
    }

    #[tokio::test]
    async fn data_cannot_inject_headers() {
        super::data_cannot_inject_headers(Outbox::Sqlite).await;
    }

    #[tokio::test]
    async fn server_down_keeps_mail_queued_and_delivers_once_when_back() {
        super::server_down_keeps_mail_queued_and_delivers_once_when_back(Outbox::Sqlite).await;
    }

    #[tokio::test]
    async fn reply_451_is_retried_later() {
        super::reply_451_is_retried_later(Outbox::Sqlite).await;
    }

    #[tokio::test]
    async fn reply_550_is_a_dead_letter() {
        super::reply_550_is_a_dead_letter(Outbox::Sqlite).await;
    }

    #[tokio::test]
    async fn a_dead_dispatchers_batch_is_delivered_once_after_its_lease() {
        super::a_dead_dispatchers_batch_is_delivered_once_after_its_lease(Outbox::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_running_loop_delivers_and_stops_gracefully() {
        super::the_running_loop_delivers_and_stops_gracefully(Outbox::Sqlite).await;
    }
}

mod memory {
    //! Every SMTP case on the memory outbox.
    use super::Outbox;

    #[tokio::test]
    async fn delivers_headers_encodings_both_parts_and_envelope() {
        super::delivers_headers_encodings_both_parts_and_envelope(Outbox::Memory).await;
    }

    #[tokio::test]
    async fn data_cannot_inject_headers() {
        super::data_cannot_inject_headers(Outbox::Memory).await;
    }

    #[tokio::test]
    async fn server_down_keeps_mail_queued_and_delivers_once_when_back() {
        super::server_down_keeps_mail_queued_and_delivers_once_when_back(Outbox::Memory).await;
    }

    #[tokio::test]
    async fn reply_451_is_retried_later() {
        super::reply_451_is_retried_later(Outbox::Memory).await;
    }

    #[tokio::test]
    async fn reply_550_is_a_dead_letter() {
        super::reply_550_is_a_dead_letter(Outbox::Memory).await;
    }

    #[tokio::test]
    async fn a_dead_dispatchers_batch_is_delivered_once_after_its_lease() {
        super::a_dead_dispatchers_batch_is_delivered_once_after_its_lease(Outbox::Memory).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_running_loop_delivers_and_stops_gracefully() {
        super::the_running_loop_delivers_and_stops_gracefully(Outbox::Memory).await;
    }
}

mod postgres {
    //! Every SMTP case on the postgres outbox.
    use super::Outbox;

    #[tokio::test]
    async fn delivers_headers_encodings_both_parts_and_envelope() {
        super::delivers_headers_encodings_both_parts_and_envelope(Outbox::Postgres).await;
    }

    #[tokio::test]
    async fn data_cannot_inject_headers() {
        super::data_cannot_inject_headers(Outbox::Postgres).await;
    }

    #[tokio::test]
    async fn server_down_keeps_mail_queued_and_delivers_once_when_back() {
        super::server_down_keeps_mail_queued_and_delivers_once_when_back(Outbox::Postgres).await;
    }

    #[tokio::test]
    async fn reply_451_is_retried_later() {
        super::reply_451_is_retried_later(Outbox::Postgres).await;
    }

    #[tokio::test]
    async fn reply_550_is_a_dead_letter() {
        super::reply_550_is_a_dead_letter(Outbox::Postgres).await;
    }

    #[tokio::test]
    async fn a_dead_dispatchers_batch_is_delivered_once_after_its_lease() {
        super::a_dead_dispatchers_batch_is_delivered_once_after_its_lease(Outbox::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_running_loop_delivers_and_stops_gracefully() {
        super::the_running_loop_delivers_and_stops_gracefully(Outbox::Postgres).await;
    }
}
