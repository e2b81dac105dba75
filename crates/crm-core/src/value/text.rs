use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Trims `text` and checks it is non-empty, at most `max` characters and free of control
/// characters.
fn clean(text: &str, field: &str, max: usize) -> Result<String, Error> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Error::validation(field, "must not be empty"));
    }
    let chars = trimmed.chars().count();
    if chars > max {
        return Err(Error::validation(
            field,
            format!("must be at most {max} characters, got {chars}"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::validation(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}

macro_rules! text_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self, Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.0)
            }
        }
    };
}

text_value!(
    /// A person's or organisation's display name: trimmed, 1 to 200 characters, no control
    /// characters. Any script is welcome (`王小明`, `Müller GmbH`).
    DisplayName
);

impl DisplayName {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Validates a name; the error's field is `name`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::parse_field(text, "name")
    }

    /// Validates a name; the error names `field`.
    pub fn parse_field(text: &str, field: &str) -> Result<Self, Error> {
        clean(text, field, Self::MAX_CHARS).map(DisplayName)
    }

    /// The lower-cased form used for case-insensitive prefix search.
    pub fn search_key(&self) -> String {
        self.0.to_lowercase()
    }
}

text_value!(
    /// A tag on a customer (`vip`, `reseller`): trimmed, lower-cased, 1 to 64 characters.
    Tag
);

impl Tag {
    /// Validates and lower-cases a tag; the error's field is `tag`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::parse_field(text, "tag")
    }

    /// Validates and lower-cases a tag; the error names `field`.
    pub fn parse_field(text: &str, field: &str) -> Result<Self, Error> {
        clean(text, field, 64).map(|t| Tag(t.to_lowercase()))
    }
}

text_value!(
    /// The name of a system that records customers or interactions (`erp`, `callcenter`,
    /// `web-shop`): 1 to 64 characters of lower-case ASCII letters, digits, `-`, `_` and `.`.
    SourceSystem
);

impl SourceSystem {
    /// The source name used for records created through the CRM itself.
    pub const CRM: &'static str = "crm";

    /// Validates a source name; the error's field is `source`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::parse_field(text, "source")
    }

    /// Validates a source name; the error names `field`.
    pub fn parse_field(text: &str, field: &str) -> Result<Self, Error> {
        let value = clean(text, field, 64)?;
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        {
            return Err(Error::validation(
                field,
                "may only contain a-z, 0-9, '-', '_' and '.'",
            ));
        }
        Ok(SourceSystem(value))
    }

    /// The CRM's own source name.
    pub fn crm() -> Self {
        SourceSystem(Self::CRM.to_string())
    }
}

text_value!(
    /// The key of a pipeline stage (`qualify`, `proposal`, `closed-won`): 1 to 40
    /// characters of lower-case ASCII letters, digits, `-` and `_`. Stage history and
    /// rules name stages by key, so a key never changes; the stage's name may.
    StageKey
);

impl StageKey {
    /// Longest accepted key, in characters.
    pub const MAX_CHARS: usize = 40;

    /// Validates a stage key; the error's field is `stage`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::parse_field(text, "stage")
    }

    /// Validates a stage key; the error names `field`.
    pub fn parse_field(text: &str, field: &str) -> Result<Self, Error> {
        let value = clean(text, field, Self::MAX_CHARS)?;
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b))
        {
            return Err(Error::validation(
                field,
                "may only contain a-z, 0-9, '-' and '_'",
            ));
        }
        Ok(StageKey(value))
    }
}

/// Where a record came from: a source system and the record's id there.
///
/// Interactions carry one as their idempotency key, so a re-sent batch is recognised and
/// skipped; customers carry one per source system that knows them.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(try_from = "RawRef", into = "RawRef")]
pub struct ExternalRef {
    source: SourceSystem,
    external_id: String,
}

#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
struct RawRef {
    source: String,
    external_id: String,
}

impl ExternalRef {
    /// Longest accepted external id, in characters.
    pub const MAX_EXTERNAL_ID_CHARS: usize = 200;

    /// A key from a source name and the record's id in that source.
    pub fn new(source: &str, external_id: &str) -> Result<Self, Error> {
        Ok(ExternalRef {
            source: SourceSystem::parse_field(source, "source")?,
            external_id: clean(external_id, "external_id", Self::MAX_EXTERNAL_ID_CHARS)?,
        })
    }

    /// The source system.
    pub fn source(&self) -> &SourceSystem {
        &self.source
    }

    /// The record's id in the source system.
    pub fn external_id(&self) -> &str {
        &self.external_id
    }
}

impl TryFrom<RawRef> for ExternalRef {
    type Error = Error;
    fn try_from(raw: RawRef) -> Result<Self, Error> {
        Self::new(&raw.source, &raw.external_id)
    }
}

impl From<ExternalRef> for RawRef {
    fn from(key: ExternalRef) -> RawRef {
        RawRef {
            source: key.source.0,
            external_id: key.external_id,
        }
    }
}

impl fmt::Display for ExternalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.external_id)
    }
}

impl fmt::Debug for ExternalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExternalRef({}:{})", self.source, self.external_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(DisplayName::parse("  王小明 ").unwrap().as_str(), "王小明");
        assert_eq!(DisplayName::parse("   ").unwrap_err().field(), Some("name"));
        assert!(DisplayName::parse("a\nb").is_err());
        assert!(DisplayName::parse(&"x".repeat(201)).is_err());
        assert!(DisplayName::parse(&"x".repeat(200)).is_ok());
    }

    #[test]
    fn tags_are_lower_cased() {
        assert_eq!(Tag::parse(" VIP ").unwrap().as_str(), "vip");
        assert!(Tag::parse("").is_err());
    }

    #[test]
    fn source_and_keys_are_checked() {
        assert!(SourceSystem::parse("web-shop").is_ok());
        assert_eq!(
            SourceSystem::parse("Web Shop").unwrap_err().field(),
            Some("source")
        );
        let key = ExternalRef::new("erp", " order-17 ").unwrap();
        assert_eq!(key.to_string(), "erp:order-17");
        assert_eq!(
            ExternalRef::new("erp", "").unwrap_err().field(),
            Some("external_id")
        );
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<ExternalRef>(&json).unwrap(), key);
        assert!(
            serde_json::from_str::<ExternalRef>(r#"{"source":"ERP!","external_id":"1"}"#).is_err()
        );
    }
}
