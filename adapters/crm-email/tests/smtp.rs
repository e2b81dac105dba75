//! The email notifier against a real SMTP server process, with the SQLite outbox and the
//! core's dispatcher: what arrives (headers, encodings, both parts, envelope) and what
//! happens when the server is down, defers (451), refuses (550), or a dispatcher dies.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use crm_core::notify::{
    DispatchConfig, Dispatcher, MessageState, Notification, OutboxStore, Recipient, RetryPolicy,
    Shutdown, StaffMember, StaticDirectory,
};
use crm_core::{Crm, Customer, EmailAddress, ManualClock, TenantId, UserId};
use crm_email::{SmtpConfig, SmtpNotifier, TemplateParts, Templates};
use crm_sqlite::SqliteStore;
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

struct World {
    store: Arc<SqliteStore>,
    crm: Crm,
    tenant: TenantId,
    directory: Arc<StaticDirectory>,
    notifier: Arc<SmtpNotifier>,
}

fn world(port: u16) -> World {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let clock = Arc::new(ManualClock::new(t0()));
    let crm = Crm::new(store.clone()).with_clock(clock);
    let config = SmtpConfig::plain_dangerous("127.0.0.1", port, "CRM 客服", "crm@example.com")
        .unwrap()
        .with_timeout(Duration::from_secs(5))
        .with_pool_size(2);
    World {
        store,
        crm,
        tenant: TenantId::new(),
        directory: Arc::new(StaticDirectory::new()),
        notifier: Arc::new(SmtpNotifier::new(config, templates()).unwrap()),
    }
}

impl World {
    fn dispatcher(&self) -> Dispatcher<SqliteStore> {
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
        let report = self.crm.notify(self.tenant, notes).await.unwrap();
        assert_eq!(report.enqueued, keys.len());
    }
}

fn minutes(m: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(m)
}

#[tokio::test]
async fn delivers_headers_encodings_both_parts_and_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start_or_skip(dir.path()) else {
        return;
    };
    let w = world(sink.port);
    let customer = w
        .crm
        .register(
            w.tenant,
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
    w.crm.notify(w.tenant, vec![n]).await.unwrap();
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

#[tokio::test]
async fn data_cannot_inject_headers() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start_or_skip(dir.path()) else {
        return;
    };
    let w = world(sink.port);
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
    w.crm.notify(w.tenant, vec![n]).await.unwrap();
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

#[tokio::test]
async fn server_down_keeps_mail_queued_and_delivers_once_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let w = world(port);
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

#[tokio::test]
async fn reply_451_is_retried_later() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start_or_skip(dir.path()) else {
        return;
    };
    let w = world(sink.port);
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

#[tokio::test]
async fn reply_550_is_a_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start_or_skip(dir.path()) else {
        return;
    };
    let w = world(sink.port);
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

#[tokio::test]
async fn a_dead_dispatchers_batch_is_delivered_once_after_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start_or_skip(dir.path()) else {
        return;
    };
    let w = world(sink.port);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_loop_delivers_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = SmtpSink::start_or_skip(dir.path()) else {
        return;
    };
    let w = world(sink.port);
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
