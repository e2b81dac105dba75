//! What the email notifier refuses and where it can live, without a server: oversized
//! messages are permanent failures, and the notifier can be dropped outside a runtime.

use crm_core::notify::{Addressee, Envelope, Notification, Recipient};
use crm_core::{EmailAddress, Error, MessageId, TenantId};
use crm_email::{SmtpConfig, SmtpNotifier, TemplateParts, Templates, MAX_BODY_BYTES};

fn config() -> SmtpConfig {
    SmtpConfig::plain_dangerous("127.0.0.1", 2525, "CRM", "crm@example.com").unwrap()
}

fn templates() -> Templates {
    let mut t = Templates::new();
    t.add(
        None,
        "echo",
        None,
        TemplateParts::new(
            "{{ subject }}",
            "{% for i in range(copies) %}{{ body }}{% endfor %}",
        ),
    )
    .unwrap();
    t
}

fn envelope(data: serde_json::Value) -> Envelope {
    Envelope {
        message_id: MessageId::new(),
        notification: Notification::builder(
            Recipient::Email(EmailAddress::parse("a@example.com").unwrap()),
            "echo",
            "k",
        )
        .data(data)
        .build()
        .unwrap(),
        to: Addressee {
            name: Some("Ann".into()),
            email: Some(EmailAddress::parse("a@example.com").unwrap()),
            phone: None,
            locale: None,
        },
    }
}

fn assert_permanent(r: Result<lettre::Message, Error>, what: &str) {
    match r {
        Err(Error::Notify {
            permanent: true,
            source,
        }) => assert!(source.to_string().contains(what), "{source}"),
        other => panic!("expected a permanent failure about {what}, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_subjects_bodies_and_messages_are_permanent_failures() {
    let notifier = SmtpNotifier::new(config(), templates()).unwrap();
    let tenant = TenantId::new();
    let fine = envelope(serde_json::json!({ "subject": "Hello", "body": "Hi", "copies": 3 }));
    notifier.build_message(tenant, &fine).unwrap();
    let long_subject =
        envelope(serde_json::json!({ "subject": "s".repeat(1000), "body": "", "copies": 1 }));
    assert_permanent(notifier.build_message(tenant, &long_subject), "subject");
    // 100 KB of data repeated 20 times: a 2 MB body from data within the outbox's limit.
    let body = "b".repeat(100_000);
    let amplified = envelope(serde_json::json!({ "subject": "s", "body": body, "copies": 20 }));
    assert_permanent(notifier.build_message(tenant, &amplified), "body");
    let refused = Notification::builder(
        Recipient::Email(EmailAddress::parse("a@example.com").unwrap()),
        "echo",
        "k",
    )
    .data(serde_json::json!({ "body": "b".repeat(MAX_BODY_BYTES / 2) }))
    .build();
    assert!(
        refused.is_err(),
        "the outbox refuses data that large before it is stored"
    );
}

#[test]
fn made_outside_a_runtime_is_an_error_not_a_panic() {
    let e = SmtpNotifier::new(config(), templates()).unwrap_err();
    assert_eq!(e.field(), Some("runtime"));
}

#[test]
fn dropped_outside_a_runtime_after_its_runtime_ended() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let notifier = runtime
        .block_on(async { SmtpNotifier::new(config(), templates()) })
        .unwrap();
    drop(runtime);
    drop(notifier);
}
