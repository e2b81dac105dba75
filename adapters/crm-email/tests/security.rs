//! TLS and authentication against a real SMTP server process: STARTTLS and implicit TLS
//! with a private certificate authority, a server whose certificate is not trusted, and
//! SMTP AUTH with a right and a wrong password.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_core::notify::{Dispatcher, Notification, Recipient, StaticDirectory};
use crm_core::{Crm, EmailAddress, ManualClock, PageRequest, TenantId};
use crm_email::{SmtpConfig, SmtpNotifier, TemplateParts, Templates};
use crm_sqlite::SqliteStore;
use support::{free_port, skip_or_fail, wait_for, SmtpSink, TestCa};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Sends one message through `config` and returns the dispatch report and the dead
/// letters' errors.
async fn send_one(config: SmtpConfig) -> (crm_core::notify::DispatchReport, Vec<String>) {
    let mut templates = Templates::new();
    templates
        .add(
            None,
            "plain",
            None,
            TemplateParts::new("{{ topic }}", "{{ topic }}"),
        )
        .unwrap();
    let notifier = Arc::new(
        SmtpNotifier::new(config.with_timeout(Duration::from_secs(5)), templates).unwrap(),
    );
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let clock = Arc::new(ManualClock::new(t0()));
    let crm = Crm::new(store.clone()).with_clock(clock.clone());
    let tenant = TenantId::new();
    let n = Notification::builder(
        Recipient::Email(EmailAddress::parse("ops@example.com").unwrap()),
        "plain",
        "secure-1",
    )
    .data(serde_json::json!({ "topic": "über TLS" }))
    .build()
    .unwrap();
    let message = crm_core::notify::OutboxMessage::new(n, t0());
    let id = message.id;
    crm_core::notify::OutboxStore::enqueue(&*store, tenant, vec![message])
        .await
        .unwrap();
    let dispatcher = Dispatcher::new(
        tenant,
        store.clone(),
        notifier,
        Arc::new(StaticDirectory::new()),
        clock,
    );
    let report = dispatcher.run_once(t0()).await.unwrap();
    let stored = crm_core::notify::OutboxStore::outbox_message(&*store, tenant, id)
        .await
        .unwrap();
    eprintln!("outcome: {report:?}, last error: {:?}", stored.last_error);
    let dead = crm
        .tenant(tenant)
        .notifications()
        .dead_letters(&PageRequest::first(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|m| m.last_error.unwrap_or_default())
        .collect();
    (report, dead)
}

/// A sink serving the test CA's certificate with `flag`, or None (skipped).
fn tls_sink(dir: &std::path::Path, flag: &str) -> Option<(SmtpSink, TestCa)> {
    let ca = match TestCa::make(dir) {
        Ok(ca) => ca,
        Err(why) => {
            skip_or_fail(&why);
            return None;
        }
    };
    match SmtpSink::start_with(free_port(), dir, &support::sink_options(&ca, flag)) {
        Ok(sink) => Some((sink, ca)),
        Err(why) => {
            skip_or_fail(&why);
            None
        }
    }
}

#[tokio::test]
async fn starttls_with_a_private_ca_delivers_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let Some((sink, ca)) = tls_sink(dir.path(), "--starttls") else {
        return;
    };
    let config = SmtpConfig::starttls("127.0.0.1", "CRM", "crm@example.com")
        .unwrap()
        .with_port(sink.port)
        .with_root_certificate(&ca.ca_pem)
        .unwrap();
    let (report, dead) = send_one(config).await;
    assert_eq!(report.sent, 1, "{report:?} {dead:?}");
    let got = wait_for(dir.path(), 1);
    assert_eq!(got.len(), 1);
    assert!(got[0].tls, "the session was encrypted");
    assert_eq!(got[0].subject, "über TLS");
}

#[tokio::test]
async fn implicit_tls_with_a_private_ca_delivers_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let Some((sink, ca)) = tls_sink(dir.path(), "--tls") else {
        return;
    };
    let config = SmtpConfig::implicit_tls("127.0.0.1", "CRM", "crm@example.com")
        .unwrap()
        .with_port(sink.port)
        .with_root_certificate(&ca.ca_pem)
        .unwrap();
    let (report, dead) = send_one(config).await;
    assert_eq!(report.sent, 1, "{report:?} {dead:?}");
    let got = wait_for(dir.path(), 1);
    assert_eq!(got.len(), 1);
    assert!(got[0].tls, "the session was encrypted");
}

#[tokio::test]
async fn an_untrusted_certificate_gets_no_mail() {
    let dir = tempfile::tempdir().unwrap();
    let Some((sink, _ca)) = tls_sink(dir.path(), "--starttls") else {
        return;
    };
    let config = SmtpConfig::starttls("127.0.0.1", "CRM", "crm@example.com")
        .unwrap()
        .with_port(sink.port);
    let (report, _) = send_one(config).await;
    assert_eq!((report.sent, report.retried), (0, 1), "{report:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(support::received(dir.path()).is_empty());
}

#[tokio::test]
async fn authentication_with_the_right_and_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let options = ["--auth".to_string(), "crm-user:s3cret".to_string()];
    let sink = match SmtpSink::start_with(free_port(), dir.path(), &options) {
        Ok(sink) => sink,
        Err(why) => return skip_or_fail(&why),
    };
    let config =
        SmtpConfig::plain_dangerous("127.0.0.1", sink.port, "CRM", "crm@example.com").unwrap();
    let (report, dead) = send_one(config.clone().with_credentials("crm-user", "s3cret")).await;
    assert_eq!(report.sent, 1, "{report:?} {dead:?}");
    let got = wait_for(dir.path(), 1);
    assert!(got[0].authenticated);
    let (report, dead) = send_one(config.clone().with_credentials("crm-user", "wrong")).await;
    assert_eq!(
        (report.sent, report.dead),
        (0, 1),
        "535 is permanent: {report:?}"
    );
    assert!(dead[0].contains("535"), "{dead:?}");
    assert!(
        !dead[0].contains("wrong"),
        "the password is not in the error"
    );
    let (report, _) = send_one(config).await;
    assert_eq!(report.sent, 0, "no credentials, no mail");
    assert_eq!(support::received(dir.path()).len(), 1);
}
