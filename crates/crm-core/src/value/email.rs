use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// An email address, checked against RFC 5321/5322 syntax with a required top-level domain.
///
/// Surrounding white space is trimmed and the domain is lower-cased (domains are
/// case-insensitive; local parts are kept as given). Display text (`Ann <ann@x.org>`) and
/// domain literals (`ann@[10.0.0.1]`) are rejected.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

    /// The address as a principal who may not see contact points reads it: the first
    /// character of the local part (`x` when it is not an ASCII letter or digit), `***`,
    /// and the domain (`a***@example.com`). The result is itself a valid address.
    pub fn masked(&self) -> EmailAddress {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        let first = local
            .chars()
            .next()
            .filter(char::is_ascii_alphanumeric)
            .unwrap_or('x');
        EmailAddress(format!("{first}{MASK}@{domain}"))
    }

    /// Whether this is a masked address ([`EmailAddress::masked`]): one character and
    /// `***` before the `@`. Customers refuse to store masked addresses (an address that
    /// really has that form cannot be stored either).
    pub fn is_masked(&self) -> bool {
        self.0
            .rsplit_once('@')
            .and_then(|(local, _)| local.strip_suffix(MASK))
            .is_some_and(|first| first.chars().count() == 1)
    }
}

/// What stands for the hidden part of a masked address.
const MASK: &str = "***";

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
    fn masks_all_but_the_first_character_of_the_local_part() {
        let e = EmailAddress::parse("ann.lee@Example.com").unwrap();
        assert!(!e.is_masked());
        let m = e.masked();
        assert_eq!(m.as_str(), "a***@example.com");
        assert!(m.is_masked());
        assert_eq!(m.masked(), m);
        assert!(!EmailAddress::parse("ab***@x.org").unwrap().is_masked());
        let quoted = EmailAddress::parse("\"a b\"@x.org").unwrap().masked();
        assert_eq!(quoted.as_str(), "x***@x.org");
        assert_eq!(EmailAddress::parse(quoted.as_str()).unwrap(), quoted);
        assert_eq!(
            EmailAddress::try_from(m.as_str().to_string()).unwrap(),
            m,
            "a host's round trip keeps it"
        );
    }

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
