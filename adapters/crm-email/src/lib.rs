//! # crm-email
//!
//! A [`Notifier`] that sends email over SMTP: templates per tenant and
//! locale, HTML with a plain-text alternative, STARTTLS or implicit TLS, authentication,
//! a connection pool and timeouts.
//!
//! ```no_run
//! # async fn demo() -> crm_core::Result<()> {
//! use crm_email::{SmtpConfig, SmtpNotifier, TemplateParts, Templates};
//!
//! let mut templates = Templates::new();
//! templates.add(
//!     None, // every tenant
//!     "reminder_due",
//!     None, // any language
//!     TemplateParts::new("Reminder: {{ customer }}", "Call {{ customer }} {{ due }}.")
//!         .html("<p>Call <b>{{ customer }}</b> {{ due }}.</p>"),
//! )?;
//! templates.add(
//!     None,
//!     "reminder_due",
//!     Some("zh"),
//!     TemplateParts::new("提醒：{{ customer }}", "请在{{ due }}联系{{ customer }}。"),
//! )?;
//! let config = SmtpConfig::starttls("smtp.example.com", "CRM", "crm@example.com")?
//!     .with_credentials("crm@example.com", "app-password");
//! let notifier = SmtpNotifier::new(config, templates)?;
//! # Ok(()) }
//! ```
//!
//! ## What a message looks like
//!
//! - Template lookup for a message in tenant `T`, template `name`, locale `zh-CN`: `T`'s
//!   `zh-CN`, `T`'s `zh`, `T`'s locale-free version, then the same three among the
//!   templates for every tenant. The locale is the notification's, else the recipient's.
//!   A template that does not exist is a permanent failure (a dead letter).
//! - Templates are rendered with minijinja; the context is the notification's `data`
//!   plus `recipient` (`name`, `email`). The HTML part is escaped automatically; the
//!   subject and plain-text part are not (they are not HTML).
//! - Subjects and display names may hold any Unicode text (Chinese arrives intact): lettre
//!   encodes them as RFC 2047 encoded words when they are not ASCII.
//! - Line breaks and other control characters in the rendered subject and in names are
//!   replaced by spaces before the message is built, so data cannot add a header.
//! - The Message-ID is derived from the tenant and the idempotency key (a UUIDv5), so
//!   every retry of one notification carries the same Message-ID and a receiver can drop
//!   repeats.
//!
//! ## Connections
//!
//! [`SmtpConfig::starttls`] (port 587) and [`SmtpConfig::implicit_tls`] (port 465) verify
//! the server's certificate against the Mozilla roots, plus any authority added with
//! [`SmtpConfig::with_root_certificate`] (a company's own CA). Only
//! [`SmtpConfig::plain_dangerous`] sends without encryption, for a local development
//! server. Credentials are sent with SMTP AUTH (PLAIN or LOGIN). Connections are pooled
//! and every step has a timeout. The crate's tests run all of this against a real SMTP
//! server process (aiosmtpd) with a throwaway CA.
//!
//! ## Failures
//!
//! An SMTP 5xx reply is a permanent failure (the dispatcher makes a dead letter): a refused
//! recipient, a rejected login (535). A 4xx reply, a refused or dropped connection, a TLS
//! failure (an untrusted certificate, too) or a timeout is transient: retried with backoff,
//! so mail waits while an operator fixes the server. The password never appears in `Debug` output or logs.
//!
//! ## Why these dependencies
//!
//! - `lettre`: the maintained SMTP client for Rust: async on tokio, rustls for TLS (no
//!   OpenSSL to install), connection pooling, and correct MIME and header encoding.
//! - `minijinja`: Jinja templates with few dependencies and automatic HTML escaping.
//! - `uuid` (v5): a stable Message-ID from the idempotency key.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod templates;

use async_trait::async_trait;
use crm_core::notify::{DeliveryChannel, Envelope, Notifier};
use crm_core::{Error, Result, TenantId};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::client::Tls;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub use config::{Security, SmtpConfig};
pub use templates::{Rendered, TemplateParts, Templates};

/// Namespace of the Message-ID UUIDs (a fixed random UUID).
const MESSAGE_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f1d_3c2a_9b7e_4e55_8a41_2d0c_7f93_b611);

/// Sends notifications as email over SMTP.
pub struct SmtpNotifier {
    /// Always `Some` until dropped (taken in `Drop`, to drop the pool inside a runtime).
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    config: SmtpConfig,
    templates: Templates,
}

impl std::fmt::Debug for SmtpNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpNotifier")
            .field("config", &self.config)
            .field("templates", &self.templates)
            .finish_non_exhaustive()
    }
}

/// Replaces line breaks and other control characters by spaces: no text from data can
/// start a new header line.
pub fn header_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn permanent(reason: impl Into<String>) -> Error {
    Error::notify(true, reason.into())
}

/// The longest rendered subject sent, in characters.
pub const MAX_SUBJECT_CHARS: usize = 998;
/// The most bytes of rendered body (text and HTML together) sent.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The most bytes of a whole message as sent (headers, both bodies, encoding).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

impl SmtpNotifier {
    /// A notifier sending through the server in `config`, rendering with `templates`. No
    /// connection is made until the first message.
    ///
    /// Must be called inside a tokio runtime (the connection pool starts a cleanup task);
    /// it may be dropped anywhere, inside a runtime or not.
    ///
    /// Errors: validation if the configuration cannot make a transport, or on `runtime`
    /// when called outside a tokio runtime.
    pub fn new(config: SmtpConfig, templates: Templates) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::validation(
                "runtime",
                "SmtpNotifier::new must be called inside a tokio runtime",
            ));
        }
        let tls = match config.security {
            Security::ImplicitTls => Tls::Wrapper(config.tls_parameters()?),
            Security::StartTls => Tls::Required(config.tls_parameters()?),
            Security::PlainDangerous => Tls::None,
        };
        // `builder_dangerous` only means "no TLS preset": the TLS mode is set right here.
        let builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host).tls(tls);
        let mut builder = builder
            .port(config.port)
            .timeout(Some(config.timeout))
            .pool_config(PoolConfig::new().max_size(config.pool_size));
        if let Some(credentials) = config.lettre_credentials() {
            builder = builder.credentials(credentials);
        }
        Ok(SmtpNotifier {
            transport: Some(builder.build()),
            config,
            templates,
        })
    }

    /// The Message-ID a notification gets: the same for every attempt.
    pub fn message_id(&self, tenant: TenantId, idempotency_key: &str) -> String {
        let mut name = tenant.as_bytes().to_vec();
        name.extend_from_slice(idempotency_key.as_bytes());
        let id = uuid::Uuid::new_v5(&MESSAGE_ID_NAMESPACE, &name);
        format!("<{id}@{}>", self.config.message_id_domain)
    }

    /// Renders and builds the message for `envelope` without sending it.
    ///
    /// Errors: permanent [`Error::Notify`] when the channel is not email, the recipient has
    /// no address, or the template is missing or fails.
    pub fn build_message(&self, tenant: TenantId, envelope: &Envelope) -> Result<Message> {
        if envelope.notification.channel != DeliveryChannel::Email {
            return Err(permanent(format!(
                "the email notifier cannot send {} messages",
                envelope.notification.channel.as_str()
            )));
        }
        let email = envelope
            .to
            .email
            .as_ref()
            .ok_or_else(|| permanent("recipient has no email address"))?;
        let rendered = self.templates.render(tenant, envelope)?;
        let subject_chars = rendered.subject.chars().count();
        if subject_chars > MAX_SUBJECT_CHARS {
            return Err(permanent(format!(
                "the rendered subject has {subject_chars} characters, more than {MAX_SUBJECT_CHARS}"
            )));
        }
        let body_bytes = rendered.text.len() + rendered.html.as_ref().map_or(0, String::len);
        if body_bytes > MAX_BODY_BYTES {
            return Err(permanent(format!(
                "the rendered body has {body_bytes} bytes, more than {MAX_BODY_BYTES}"
            )));
        }
        let to_address = email
            .as_str()
            .parse()
            .map_err(|e| permanent(format!("recipient address: {e}")))?;
        let to = Mailbox::new(envelope.to.name.as_deref().map(header_safe), to_address);
        let builder = Message::builder()
            .from(self.config.sender_mailbox()?)
            .to(to)
            .subject(header_safe(&rendered.subject))
            .message_id(Some(
                self.message_id(tenant, &envelope.notification.idempotency_key),
            ));
        let built = match rendered.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(rendered.text, html)),
            None => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(rendered.text),
            ),
        };
        let message = built.map_err(|e| permanent(format!("building the message: {e}")))?;
        let size = message.formatted().len();
        if size > MAX_MESSAGE_BYTES {
            return Err(permanent(format!(
                "the message has {size} bytes, more than {MAX_MESSAGE_BYTES}"
            )));
        }
        Ok(message)
    }
}

impl Drop for SmtpNotifier {
    /// The connection pool cleans up on a task of its own when dropped; outside a tokio
    /// runtime there is none to run it, so the pool is dropped inside a short-lived one
    /// (idle connections are closed) instead of failing there.
    fn drop(&mut self) {
        let Some(transport) = self.transport.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            return drop(transport);
        }
        match tokio::runtime::Builder::new_current_thread().build() {
            Ok(runtime) => {
                let _inside = runtime.enter();
                drop(transport);
            }
            // No runtime can be had: leak the idle connections rather than abort.
            Err(_) => std::mem::forget(transport),
        }
    }
}

#[async_trait]
impl Notifier for SmtpNotifier {
    async fn notify(&self, tenant: TenantId, envelope: &Envelope) -> Result<()> {
        let message = self.build_message(tenant, envelope)?;
        let transport = self
            .transport
            .as_ref()
            .ok_or_else(|| Error::notify(false, "the notifier is shutting down"))?;
        match transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let permanent = e.is_permanent();
                tracing::info!(
                    message = %envelope.message_id, permanent, error = %e,
                    "SMTP delivery failed"
                );
                Err(Error::notify(permanent, e))
            }
        }
    }
}
