//! Email templates rendered with arbitrary notification data (and arbitrary template
//! text): no panic, and a message is either built within its size limits, header fields
//! free of line breaks, or refused as a permanent failure.
#![no_main]

use crm_core::notify::{Addressee, Envelope, Notification, Recipient};
use crm_core::{EmailAddress, Error, MessageId, TenantId};
use crm_email::{SmtpConfig, SmtpNotifier, TemplateParts, Templates, MAX_MESSAGE_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // First line: the subject template; second: the body template; the rest: JSON data.
    let mut parts = text.splitn(3, '\n');
    let (subject, body, json) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("{}"),
    );
    let Ok(data) = serde_json::from_str::<serde_json::Value>(json) else {
        return;
    };
    let mut templates = Templates::new();
    if templates
        .add(None, "fuzz", None, TemplateParts::new(subject, body).html(body))
        .is_err()
    {
        return;
    }
    let Ok(notification) = Notification::builder(
        Recipient::Email(EmailAddress::parse("a@example.com").expect("an address")),
        "fuzz",
        "k",
    )
    .data(data)
    .build() else {
        return;
    };
    let envelope = Envelope {
        message_id: MessageId::new(),
        notification,
        to: Addressee {
            name: Some("Ann\r\nBcc: x@example.com".into()),
            email: Some(EmailAddress::parse("a@example.com").expect("an address")),
            phone: None,
            locale: None,
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let _inside = runtime.enter();
    let config = SmtpConfig::plain_dangerous("127.0.0.1", 2525, "CRM", "crm@example.com")
        .expect("a config");
    let notifier = SmtpNotifier::new(config, templates).expect("inside a runtime");
    match notifier.build_message(TenantId::new(), &envelope) {
        Ok(message) => {
            let raw = message.formatted();
            assert!(raw.len() <= MAX_MESSAGE_BYTES);
            let head = raw.split(|b| *b == b'\n').take_while(|l| l != b"\r" && !l.is_empty());
            for line in head {
                assert!(
                    !line.starts_with(b"Bcc:"),
                    "no header comes from data: {}",
                    String::from_utf8_lossy(line)
                );
            }
        }
        Err(Error::Notify { permanent: true, .. }) => {}
        Err(other) => panic!("unexpected {other:?}"),
    }
});
