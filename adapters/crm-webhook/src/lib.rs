//! # crm-webhook
//!
//! An [`EventSink`] that POSTs each domain event to an HTTPS endpoint the host configures,
//! signed with HMAC-SHA256 so the receiver knows it came from this CRM and was not
//! changed or replayed; and [`Verifier`], the check a receiver written in Rust runs.
//!
//! ```no_run
//! # async fn demo() -> crm_core::Result<()> {
//! use std::sync::Arc;
//! use crm_webhook::{WebhookConfig, WebhookSecret, WebhookSink};
//!
//! let secret = WebhookSecret::new(std::env::var("ERP_WEBHOOK_SECRET").unwrap_or_default())?;
//! let config = WebhookConfig::new("https://erp.example.com/crm/events", secret)?
//!     .with_timeout(std::time::Duration::from_secs(5));
//! let sink = Arc::new(WebhookSink::new(config)?);
//! // Hand `sink` to the dispatcher (`crm_core::notify::Dispatcher::with_events`).
//! # let _ = sink; Ok(()) }
//! ```
//!
//! ## The request
//!
//! `POST` to the configured URL with the event as JSON (the [`DomainEvent`] fields:
//! `tenant`, `seq`, `kind`, `entity`, `schema_version`, `version`, `at`, `data`,
//! `idempotency_key`; each kind's JSON Schema is in the repository under
//! `crates/crm-core/schemas/events/`, see [`crm_core::notify::payload`]) and these
//! headers:
//!
//! | header | value |
//! | --- | --- |
//! | `Content-Type` | `application/json` |
//! | [`EVENT_HEADER`] (`X-CRM-Event`) | the kind, `customer.created` |
//! | [`IDEMPOTENCY_HEADER`] (`Idempotency-Key`) | the event's key, the same on every redelivery (bytes outside visible ASCII, and `%`, percent-encoded) |
//! | [`TIMESTAMP_HEADER`] (`X-CRM-Timestamp`) | Unix seconds when this attempt was signed |
//! | [`SIGNATURE_HEADER`] (`X-CRM-Signature`) | `v1=` and the lowercase hex HMAC-SHA256 of `"{timestamp}.{body}"`, keyed with the secret |
//!
//! ## What the answer means
//!
//! Delivery is at least once, in order per entity (the outbox hands out an entity's next
//! event only after the one before it is done):
//!
//! - any 2xx: delivered;
//! - 408 and 429, any other status (1xx, 3xx: redirects are not followed, 5xx), a refused
//!   connection, a TLS failure or a timeout: transient, retried with the dispatcher's
//!   backoff;
//! - any other 4xx: permanent, the event becomes a dead letter (it can be re-queued once
//!   the receiver is fixed).
//!
//! ## Receiving, in any language
//!
//! 1. Read the body as bytes, before any JSON parsing.
//! 2. Refuse the request unless `X-CRM-Timestamp` is within a few minutes of your clock.
//! 3. Compute HMAC-SHA256 with the shared secret over the timestamp text, a `.` and the
//!    body bytes; hex-encode it in lowercase; compare it, in constant time, with each
//!    `v1=` entry of `X-CRM-Signature` (comma-separated).
//! 4. Drop the event if you have seen its `Idempotency-Key`; otherwise act on it, then
//!    answer 2xx. Answer 4xx only for a request you will never accept.
//!
//! In Python (the crate's tests run this function in their receiver, against every
//! request the sink sends):
//!
//! ```text
//! import hashlib, hmac, time
//!
//! def verify(secret: bytes, headers, body: bytes, tolerance=300) -> bool:
//!     ts = headers.get("X-CRM-Timestamp", "")
//!     signatures = headers.get("X-CRM-Signature", "")
//!     if not ts.isdigit() or abs(time.time() - int(ts)) > tolerance:
//!         return False
//!     mac = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
//!     return any(hmac.compare_digest(mac, s.strip()[3:])
//!                for s in signatures.split(",")
//!                if s.strip().startswith("v1="))
//! ```
//!
//! ## Dependencies
//!
//! - `ureq`: a small blocking HTTP/1.1 client on rustls with the `ring` provider (both
//!   already in the tree through the email and PostgreSQL adapters); each request runs on
//!   tokio's blocking pool, so it adds no second async HTTP stack and no OpenSSL.
//! - `hmac` and `sha2` (RustCrypto): the signature, and a constant-time comparison on
//!   the receiving side.
//! - `thiserror`: [`VerifyError`].

mod signature;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use crm_core::notify::{DomainEvent, EventSink};
use crm_core::{Error, Result};
use ureq::http::Uri;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

pub use signature::{
    sign, Verifier, VerifyError, WebhookSecret, DEFAULT_TOLERANCE_SECONDS, EVENT_HEADER,
    IDEMPOTENCY_HEADER, MAX_SECRET_LEN, MIN_SECRET_LEN, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

/// The longest endpoint URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Where and how events are sent. Built with [`WebhookConfig::new`] (HTTPS only).
#[derive(Clone)]
pub struct WebhookConfig {
    url: String,
    host: String,
    secret: WebhookSecret,
    timeout: Duration,
    connect_timeout: Duration,
    roots: Option<Vec<Certificate<'static>>>,
    plain_http: bool,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL is left out: its path or query may hold a token.
        f.debug_struct("WebhookConfig")
            .field("host", &self.host)
            .field("secret", &self.secret)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("own_roots", &self.roots.as_ref().map(Vec::len))
            .field("plain_http", &self.plain_http)
            .finish()
    }
}

impl WebhookConfig {
    /// Events go to `url`, which must be `https://` with a host and no user name or
    /// password in it (at most [`MAX_URL_LEN`] bytes), signed with `secret`. The server's
    /// certificate is checked against the Mozilla roots. Timeouts: 10 s for a whole
    /// request, 5 s to connect.
    ///
    /// Errors: validation on `url`.
    pub fn new(url: &str, secret: WebhookSecret) -> Result<Self> {
        Self::build(url, secret, false)
    }

    /// Like [`new`](Self::new) but also accepts `http://` URLs: events and their
    /// signatures then cross the network in the clear. For a receiver on the same machine
    /// during development only.
    pub fn plain_http_dangerous(url: &str, secret: WebhookSecret) -> Result<Self> {
        Self::build(url, secret, true)
    }

    fn build(url: &str, secret: WebhookSecret, plain_http: bool) -> Result<Self> {
        let bad = |why: &str| Error::validation("url", why.to_string());
        if url.len() > MAX_URL_LEN {
            return Err(bad(&format!("longer than {MAX_URL_LEN} bytes")));
        }
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::validation("url", format!("not a URL: {e}")))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if plain_http => {}
            Some("http") => return Err(bad(
                "plain http is refused (use https, or plain_http_dangerous for local development)",
            )),
            _ => return Err(bad("must start with https://")),
        }
        let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("must not hold a user name or password"));
        }
        if authority.host().is_empty() {
            return Err(bad("has no host"));
        }
        Ok(WebhookConfig {
            url: url.to_string(),
            host: authority.host().to_string(),
            secret,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            roots: None,
            plain_http,
        })
    }

    /// The longest a whole request may take, connecting and reading the answer included
    /// (at least 1 ms); longer is a transient failure.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The longest connecting may take (at least 1 ms).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Trusts the authority in `pem` (a company's own CA) for the endpoint's certificate,
    /// instead of the Mozilla roots; call again to trust several.
    ///
    /// Errors: validation on `root_certificate` if `pem` holds no certificate.
    pub fn with_root_certificate(mut self, pem: &[u8]) -> Result<Self> {
        let certificate = Certificate::from_pem(pem)
            .map_err(|e| Error::validation("root_certificate", e.to_string()))?;
        self.roots.get_or_insert_with(Vec::new).push(certificate);
        Ok(self)
    }

    /// The endpoint's host, as shown in errors and logs.
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// Sends each event as a signed `POST` (see the [crate] docs for the request and what the
/// answer means). Cloning shares the connection pool.
#[derive(Clone)]
pub struct WebhookSink {
    config: Arc<WebhookConfig>,
    agent: ureq::Agent,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// A sink sending as `config` says. Errors: none today (reserved for settings that are
    /// checked when the client is built).
    pub fn new(config: WebhookConfig) -> Result<Self> {
        let roots = match &config.roots {
            Some(certificates) => RootCerts::new_with_certs(certificates),
            None => RootCerts::WebPki,
        };
        let agent = ureq::Agent::config_builder()
            .https_only(!config.plain_http)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(config.timeout))
            .timeout_connect(Some(config.connect_timeout))
            .user_agent(concat!("crm-webhook/", env!("CARGO_PKG_VERSION")))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .new_agent();
        Ok(WebhookSink {
            config: Arc::new(config),
            agent,
        })
    }

    /// Sends one event now, signed at the current time; the dispatcher calls this through
    /// [`EventSink::deliver`].
    async fn post(&self, event: &DomainEvent) -> Result<()> {
        let body = serde_json::to_vec(event).map_err(|e| Error::notify(true, e))?;
        let timestamp = Utc::now().timestamp();
        let signature = sign(&self.config.secret, timestamp, &body);
        let key = header_safe(&event.idempotency_key);
        let kind = event.kind.as_str();
        let (agent, config) = (self.agent.clone(), Arc::clone(&self.config));
        let sent = tokio::task::spawn_blocking(move || {
            agent
                .post(&config.url)
                .header("Content-Type", "application/json")
                .header(EVENT_HEADER, kind)
                .header(IDEMPOTENCY_HEADER, key)
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, signature)
                .send(&body[..])
                .map(|response| response.status().as_u16())
        })
        .await
        .map_err(|e| Error::notify(false, format!("webhook request task failed: {e}")))?;
        outcome(&self.config.host, sent)
    }
}

/// What an attempt's result means for the dispatcher.
fn outcome(host: &str, sent: std::result::Result<u16, ureq::Error>) -> Result<()> {
    match sent {
        Ok(200..=299) => Ok(()),
        Ok(status @ (408 | 429)) => Err(Error::notify(
            false,
            format!("webhook {host} answered {status}; will retry"),
        )),
        Ok(status @ 400..=499) => Err(Error::notify(
            true,
            format!("webhook {host} refused the event with {status}"),
        )),
        Ok(status) => Err(Error::notify(
            false,
            format!("webhook {host} answered {status}; will retry"),
        )),
        // A request that cannot be built will never be sent.
        Err(e @ (ureq::Error::BadUri(_) | ureq::Error::Http(_))) => Err(Error::notify(
            true,
            format!("webhook {host}: request cannot be sent: {e}"),
        )),
        Err(e) => Err(Error::notify(false, format!("webhook {host}: {e}"))),
    }
}

/// `text` as a header value: bytes outside visible ASCII, and `%`, percent-encoded.
fn header_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x21..=0x7e).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[async_trait]
impl EventSink for WebhookSink {
    async fn deliver(&self, event: &DomainEvent) -> Result<()> {
        self.post(event).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> WebhookSecret {
        WebhookSecret::new(vec![7; 32]).unwrap()
    }

    #[test]
    fn urls_are_checked() {
        assert!(WebhookConfig::new("https://erp.example.com/hook?x=1", secret()).is_ok());
        for bad in [
            "http://erp.example.com/hook",
            "ftp://erp.example.com/",
            "erp.example.com/hook",
            "https://user:pw@erp.example.com/",
            "https:///nohost",
            "",
        ] {
            let e = WebhookConfig::new(bad, secret()).unwrap_err();
            assert_eq!(e.field(), Some("url"), "{bad:?}: {e}");
        }
        let long = format!("https://erp.example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(
            WebhookConfig::new(&long, secret()).unwrap_err().field(),
            Some("url")
        );
        assert!(WebhookConfig::plain_http_dangerous("http://127.0.0.1:8080/", secret()).is_ok());
        assert!(WebhookConfig::plain_http_dangerous("ftp://127.0.0.1/", secret()).is_err());
    }

    #[test]
    fn debug_hides_the_secret_and_the_path() {
        let config = WebhookConfig::new(
            "https://erp.example.com/hook/token-abc",
            WebhookSecret::new(*b"hunter2hunter2hunter2").unwrap(),
        )
        .unwrap();
        let shown = format!("{:?}", WebhookSink::new(config).unwrap());
        assert!(shown.contains("erp.example.com"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("token-abc"), "{shown}");
    }

    #[test]
    fn answers_map_to_delivered_permanent_or_transient() {
        let kind = |status: u16| match outcome("h", Ok(status)) {
            Ok(()) => "delivered",
            Err(Error::Notify {
                permanent: true, ..
            }) => "permanent",
            Err(_) => "transient",
        };
        assert_eq!(kind(200), "delivered");
        assert_eq!(kind(204), "delivered");
        assert_eq!(kind(410), "permanent");
        assert_eq!(kind(400), "permanent");
        assert_eq!(kind(408), "transient");
        assert_eq!(kind(429), "transient");
        assert_eq!(kind(500), "transient");
        assert_eq!(kind(503), "transient");
        assert_eq!(kind(302), "transient");
        assert!(matches!(
            outcome("h", Err(ureq::Error::ConnectionFailed)),
            Err(Error::Notify {
                permanent: false,
                ..
            })
        ));
    }

    #[test]
    fn keys_become_header_values() {
        assert_eq!(header_safe("case.opened:1:2"), "case.opened:1:2");
        assert_eq!(header_safe("a b%é"), "a%20b%25%C3%A9");
    }
}
