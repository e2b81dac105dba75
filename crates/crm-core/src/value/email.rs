use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// An email address, checked against RFC 5321/5322 syntax with a required top-level domain.
///
/// Surrounding white space is trimmed and the domain is lower-cased (domains are
/// case-insensitive; local parts are kept as given). Display text (`Ann <ann@x.org>`) and
/// domain literals (`ann@[10.0.0.1]`) are rejected.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses and normalises an address; the error's field is `email`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::parse_field(text, "email")
    }

    /// Parses and normalises an address; the error names `field`.
    pub fn parse_field(text: &str, field: &str) -> Result<Self, Error> {
        let trimmed = text.trim();
        let options = email_address::Options::default()
            .with_required_tld()
            .without_display_text()
            .without_domain_literal();
        let parsed = email_address::EmailAddress::parse_with_options(trimmed, options)
            .map_err(|e| Error::validation(field, format!("not an email address: {e}")))?;
        let normalised = format!(
            "{}@{}",
            parsed.local_part(),
            parsed.domain().to_ascii_lowercase()
        );
        Ok(EmailAddress(normalised))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key used to find a customer by email: the whole address lower-cased.
    pub fn search_key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        Self::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> String {
        value.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_domain_and_trims() {
        let e = EmailAddress::parse("  Ann.Lee@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ann.Lee@example.com");
        assert_eq!(e.search_key(), "ann.lee@example.com");
    }

    #[test]
    fn rejects_bad_addresses_naming_the_field() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.org",
            "ann@localhost",
            "Ann <ann@x.org>",
            "a b@x.org",
        ] {
            let err = EmailAddress::parse_field(bad, "emails[0]").unwrap_err();
            assert_eq!(err.field(), Some("emails[0]"), "{bad:?}");
        }
    }

    #[test]
    fn deserialising_validates() {
        let ok: EmailAddress = serde_json::from_str("\"ann@X.org\"").unwrap();
        assert_eq!(ok.as_str(), "ann@x.org");
        assert!(serde_json::from_str::<EmailAddress>("\"nope\"").is_err());
    }
}
