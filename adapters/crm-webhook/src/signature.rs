//! The signature on every request, and the check a receiver runs.
//!
//! A request carries [`TIMESTAMP_HEADER`] (Unix seconds when it was sent) and
//! [`SIGNATURE_HEADER`] (`v1=` and the lowercase hex HMAC-SHA256, keyed with the shared
//! secret, of the timestamp, a full stop and the exact body bytes). A receiver recomputes
//! the HMAC over the bytes it received, compares in constant time, and refuses a timestamp
//! further than its tolerance from its own clock, so a captured request cannot be replayed
//! later. Within the tolerance a repeat is dropped by its [`IDEMPOTENCY_HEADER`], as any
//! redelivery is.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use crm_core::notify::DomainEvent;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Unix seconds when the request was signed.
pub const TIMESTAMP_HEADER: &str = "X-CRM-Timestamp";
/// `v1=<hex>`: HMAC-SHA256 over `"{timestamp}.{body}"`. A receiver accepts the request if
/// any comma-separated `v1=` entry matches one of its secrets.
pub const SIGNATURE_HEADER: &str = "X-CRM-Signature";
/// The event's idempotency key, the same on every redelivery.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The event's kind (`customer.created`), to route without parsing the body.
pub const EVENT_HEADER: &str = "X-CRM-Event";

/// How far a request's timestamp may be from the receiver's clock, either way, unless the
/// receiver says otherwise: five minutes.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest secret accepted, in bytes.
pub const MAX_SECRET_LEN: usize = 1024;

/// Longest signature header a receiver reads (a few entries during a secret rotation).
const MAX_SIGNATURE_HEADER_LEN: usize = 1024;

type HmacSha256 = Hmac<Sha256>;

/// The secret a sender and a receiver share. Its bytes never appear in `Debug` output or
/// in errors.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// A secret of `MIN_SECRET_LEN` to `MAX_SECRET_LEN` bytes (a random 32-byte value,
    /// hex or base64 text, is typical). Errors: validation on `secret`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> crm_core::Result<Self> {
        let bytes = bytes.into();
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&bytes.len()) {
            return Err(crm_core::Error::validation(
                "secret",
                format!(
                    "must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes, got {}",
                    bytes.len()
                ),
            ));
        }
        Ok(WebhookSecret(bytes))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length, so this never falls back; the all-zero key
        // stands in only to avoid a panic path.
        HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSecret(<{} bytes hidden>)", self.0.len())
    }
}

fn keyed(secret: &WebhookSecret, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = secret.mac();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The value of [`SIGNATURE_HEADER`] for `body` sent at `timestamp` (Unix seconds, as
/// sent in [`TIMESTAMP_HEADER`]).
pub fn sign(secret: &WebhookSecret, timestamp: i64, body: &[u8]) -> String {
    let tag = keyed(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    let mut out = String::with_capacity(3 + 2 * tag.len());
    out.push_str("v1=");
    for byte in tag.iter() {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Why a receiver refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A header the check needs is missing.
    #[error("missing header {0}")]
    Missing(&'static str),
    /// A header is not in the form described (the header's name).
    #[error("malformed header {0}")]
    Malformed(&'static str),
    /// The timestamp is further from the receiver's clock than the tolerance: a replay,
    /// or a clock badly off.
    #[error(
        "timestamp {}, outside the window of {tolerance_seconds} s either way",
        age_text(*age_seconds)
    )]
    OutsideWindow {
        /// The receiver's clock minus the timestamp (negative: from the future).
        age_seconds: i64,
        /// The tolerance, either way.
        tolerance_seconds: i64,
    },
    /// No signature matches any of the receiver's secrets: the body, the timestamp or the
    /// secret differs from what the sender signed.
    #[error("signature does not match")]
    BadSignature,
    /// The signature matched but the body is not an event (only from
    /// [`Verifier::verify_event`]).
    #[error("body is not an event: {0}")]
    Body(String),
}

fn age_text(age_seconds: i64) -> String {
    if age_seconds >= 0 {
        format!("{age_seconds} s old")
    } else {
        format!("{} s in the future", age_seconds.unsigned_abs())
    }
}

/// The receiver's check: signature (against one or more secrets, so a secret can be
/// rotated) and timestamp window.
///
/// ```
/// use crm_webhook::{sign, Verifier, WebhookSecret};
///
/// let secret = WebhookSecret::new(*b"a secret of 32 bytes, or longer.")?;
/// let now = chrono::Utc::now();
/// let body = br#"{"kind":"customer.created"}"#;
/// let signature = sign(&secret, now.timestamp(), body);
///
/// let verifier = Verifier::new(secret);
/// let timestamp = now.timestamp().to_string();
/// assert!(verifier.verify(Some(&timestamp), Some(&signature), body, now).is_ok());
/// assert!(verifier.verify(Some(&timestamp), Some(&signature), b"{}", now).is_err());
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Verifier {
    secrets: Vec<WebhookSecret>,
    tolerance: Duration,
}

impl Verifier {
    /// Checks against `secret`, with the default tolerance
    /// ([`DEFAULT_TOLERANCE_SECONDS`]).
    pub fn new(secret: WebhookSecret) -> Self {
        Verifier {
            secrets: vec![secret],
            tolerance: Duration::seconds(DEFAULT_TOLERANCE_SECONDS),
        }
    }

    /// Also accepts signatures made with `secret` (while senders move to a new secret).
    pub fn also_accept(mut self, secret: WebhookSecret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Accepts timestamps at most `tolerance` from the receiver's clock, either way.
    pub fn with_tolerance(mut self, tolerance: std::time::Duration) -> Self {
        self.tolerance = Duration::from_std(tolerance).unwrap_or(Duration::MAX);
        self
    }

    /// Checks a request: `timestamp` and `signature` are the values of
    /// [`TIMESTAMP_HEADER`] and [`SIGNATURE_HEADER`] (`None` if absent), `body` the
    /// exact bytes received, `now` the receiver's clock.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), VerifyError> {
        let timestamp = timestamp.ok_or(VerifyError::Missing(TIMESTAMP_HEADER))?;
        let signature = signature.ok_or(VerifyError::Missing(SIGNATURE_HEADER))?;
        let sent: i64 = (timestamp.len() <= 20)
            .then(|| timestamp.parse().ok())
            .flatten()
            .ok_or(VerifyError::Malformed(TIMESTAMP_HEADER))?;
        let age = now.timestamp().saturating_sub(sent);
        let tolerance = self.tolerance.num_seconds().max(0);
        if age.checked_abs().is_none_or(|a| a > tolerance) {
            return Err(VerifyError::OutsideWindow {
                age_seconds: age,
                tolerance_seconds: tolerance,
            });
        }
        if signature.len() > MAX_SIGNATURE_HEADER_LEN {
            return Err(VerifyError::Malformed(SIGNATURE_HEADER));
        }
        let mut tags = Vec::new();
        for entry in signature.split(',').map(str::trim) {
            let Some((scheme, value)) = entry.split_once('=') else {
                return Err(VerifyError::Malformed(SIGNATURE_HEADER));
            };
            if scheme != "v1" {
                continue; // a scheme of a later version: not this receiver's to check
            }
            tags.push(unhex(value).ok_or(VerifyError::Malformed(SIGNATURE_HEADER))?);
        }
        let matches = self.secrets.iter().any(|secret| {
            tags.iter()
                .any(|tag| keyed(secret, timestamp, body).verify_slice(tag).is_ok())
        });
        if matches {
            Ok(())
        } else {
            Err(VerifyError::BadSignature)
        }
    }

    /// [`verify`](Self::verify), then the body read as a [`DomainEvent`].
    pub fn verify_event(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<DomainEvent, VerifyError> {
        self.verify(timestamp, signature, body, now)?;
        serde_json::from_slice(body).map_err(|e| VerifyError::Body(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(fill: u8) -> WebhookSecret {
        WebhookSecret::new(vec![fill; 32]).unwrap()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn known_vector() {
        // Python's `hmac.new(b"k" * 16, b"1700000000.{}", "sha256").hexdigest()`.
        let s = WebhookSecret::new(vec![b'k'; 16]).unwrap();
        assert_eq!(
            sign(&s, 1_700_000_000, b"{}"),
            "v1=6d58fb78491a4cd45b0a5944663cf2020c2185a67defd8caec14059846f09e3d"
        );
    }

    #[test]
    fn signed_body_verifies_and_changes_do_not() {
        let s = secret(1);
        let sig = sign(&s, 1000, b"body");
        let v = Verifier::new(s);
        assert_eq!(
            v.verify(Some("1000"), Some(&sig), b"body", at(1000)),
            Ok(())
        );
        assert_eq!(
            v.verify(Some("1000"), Some(&sig), b"bodY", at(1000)),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            v.verify(Some("1001"), Some(&sig), b"body", at(1001)),
            Err(VerifyError::BadSignature),
            "the timestamp is signed too"
        );
        let other = Verifier::new(secret(2));
        assert_eq!(
            other.verify(Some("1000"), Some(&sig), b"body", at(1000)),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            other
                .also_accept(secret(1))
                .verify(Some("1000"), Some(&sig), b"body", at(1000)),
            Ok(()),
            "a second secret during a rotation"
        );
    }

    #[test]
    fn window_both_ways() {
        let s = secret(1);
        let sig = sign(&s, 1000, b"x");
        let v = Verifier::new(s).with_tolerance(std::time::Duration::from_secs(60));
        assert_eq!(v.verify(Some("1000"), Some(&sig), b"x", at(1060)), Ok(()));
        assert_eq!(v.verify(Some("1000"), Some(&sig), b"x", at(940)), Ok(()));
        assert_eq!(
            v.verify(Some("1000"), Some(&sig), b"x", at(1061)),
            Err(VerifyError::OutsideWindow {
                age_seconds: 61,
                tolerance_seconds: 60
            })
        );
        assert!(matches!(
            v.verify(Some("1000"), Some(&sig), b"x", at(939)),
            Err(VerifyError::OutsideWindow {
                age_seconds: -61,
                ..
            })
        ));
        let far = i64::MIN.to_string();
        assert!(matches!(
            v.verify(Some(&far), Some(&sig), b"x", at(1000)),
            Err(VerifyError::OutsideWindow { .. })
        ));
    }

    #[test]
    fn malformed_and_missing_headers() {
        let s = secret(1);
        let sig = sign(&s, 1000, b"x");
        let v = Verifier::new(s);
        let now = at(1000);
        assert_eq!(
            v.verify(None, Some(&sig), b"x", now),
            Err(VerifyError::Missing(TIMESTAMP_HEADER))
        );
        assert_eq!(
            v.verify(Some("1000"), None, b"x", now),
            Err(VerifyError::Missing(SIGNATURE_HEADER))
        );
        for bad in ["", "10 00", "1e3", "99999999999999999999999"] {
            assert_eq!(
                v.verify(Some(bad), Some(&sig), b"x", now),
                Err(VerifyError::Malformed(TIMESTAMP_HEADER)),
                "{bad:?}"
            );
        }
        for bad in ["v1", "v1=zz", "v1=abc", &"v1=00,".repeat(300)] {
            assert_eq!(
                v.verify(Some("1000"), Some(bad), b"x", now),
                Err(VerifyError::Malformed(SIGNATURE_HEADER)),
                "{bad:?}"
            );
        }
        assert_eq!(
            v.verify(Some("1000"), Some("v2=00"), b"x", now),
            Err(VerifyError::BadSignature),
            "an unknown scheme alone matches nothing"
        );
        let two = format!("v2=00, {sig}");
        assert_eq!(v.verify(Some("1000"), Some(&two), b"x", now), Ok(()));
    }

    #[test]
    fn secrets_are_bounded_and_hidden() {
        assert_eq!(
            WebhookSecret::new(vec![0; 15]).unwrap_err().field(),
            Some("secret")
        );
        assert!(WebhookSecret::new(vec![0; MAX_SECRET_LEN + 1]).is_err());
        let shown = format!(
            "{:?}",
            WebhookSecret::new(*b"hunter2hunter2hunter2").unwrap()
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
