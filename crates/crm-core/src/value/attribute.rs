use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::Money;
use crate::error::Error;

/// The name of a custom attribute: a lower-case ASCII letter, then up to 63 lower-case
/// letters, digits or `_` (`industry`, `tax_id`, `seats_2024`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(try_from = "String", into = "String")]
pub struct AttrKey(String);

impl AttrKey {
    /// Validates a key; the error names `attributes.<key>`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let ok = text.len() <= 64
            && text.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(AttrKey(text.to_string()))
        } else {
            Err(Error::validation(
                format!("attributes.{text}"),
                "attribute names are a-z, then up to 63 of a-z, 0-9 and '_'",
            ))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AttrKey {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        Self::parse(&value)
    }
}

impl From<AttrKey> for String {
    fn from(value: AttrKey) -> String {
        value.0
    }
}

impl fmt::Display for AttrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AttrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AttrKey({})", self.0)
    }
}

/// A typed custom-attribute value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum AttrValue {
    /// Free text (at most [`AttrValue::MAX_TEXT_CHARS`] characters).
    Text(String),
    /// An exact number.
    Number(Decimal),
    /// Yes or no.
    Bool(bool),
    /// A calendar date.
    Date(NaiveDate),
    /// An amount of money.
    Money(Money),
    /// A list of short texts (each at most [`AttrValue::MAX_TEXT_CHARS`] characters).
    TextList(Vec<String>),
}

impl AttrValue {
    /// Longest accepted text, in characters.
    pub const MAX_TEXT_CHARS: usize = 4096;

    fn check(&self, field: &str) -> Result<(), Error> {
        let too_long = |t: &String| t.chars().count() > Self::MAX_TEXT_CHARS;
        // No store keeps a NUL in text alike (PostgreSQL refuses it): refused everywhere.
        let nul = |t: &String| t.contains('\0');
        match self {
            AttrValue::Text(t) if nul(t) => Err(Error::validation(field, "text contains NUL")),
            AttrValue::TextList(items) if items.iter().any(nul) => {
                Err(Error::validation(field, "list item contains NUL"))
            }
            AttrValue::Text(t) if too_long(t) => Err(Error::validation(
                field,
                format!("text longer than {} characters", Self::MAX_TEXT_CHARS),
            )),
            AttrValue::TextList(items) if items.iter().any(too_long) => Err(Error::validation(
                field,
                format!("list item longer than {} characters", Self::MAX_TEXT_CHARS),
            )),
            _ => Ok(()),
        }
    }

    /// The name of the value's type, as in the serde form (`text`, `number`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            AttrValue::Text(_) => "text",
            AttrValue::Number(_) => "number",
            AttrValue::Bool(_) => "bool",
            AttrValue::Date(_) => "date",
            AttrValue::Money(_) => "money",
            AttrValue::TextList(_) => "text_list",
        }
    }
}

/// Custom attributes of a customer or interaction: validated keys to typed values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(
    try_from = "BTreeMap<AttrKey, AttrValue>",
    into = "BTreeMap<AttrKey, AttrValue>"
)]
pub struct Attributes(BTreeMap<AttrKey, AttrValue>);

impl Attributes {
    /// Most attributes one record may carry.
    pub const MAX_ENTRIES: usize = 256;

    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, validating both.
    pub fn set(&mut self, key: &str, value: AttrValue) -> Result<(), Error> {
        let key = AttrKey::parse(key)?;
        value.check(&format!("attributes.{key}"))?;
        if !self.0.contains_key(&key) && self.0.len() >= Self::MAX_ENTRIES {
            return Err(Error::validation(
                "attributes",
                format!("at most {} attributes", Self::MAX_ENTRIES),
            ));
        }
        self.0.insert(key, value);
        Ok(())
    }

    /// Builder form of [`Attributes::set`].
    pub fn with(mut self, key: &str, value: AttrValue) -> Result<Self, Error> {
        self.set(key, value)?;
        Ok(self)
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<AttrValue> {
        let key = self.0.keys().find(|k| k.as_str() == key)?.clone();
        self.0.remove(&key)
    }

    /// All attributes in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&AttrKey, &AttrValue)> {
        self.0.iter()
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<BTreeMap<AttrKey, AttrValue>> for Attributes {
    type Error = Error;
    fn try_from(map: BTreeMap<AttrKey, AttrValue>) -> Result<Self, Error> {
        let mut attrs = Attributes::new();
        for (k, v) in map {
            attrs.set(k.as_str(), v)?;
        }
        Ok(attrs)
    }
}

impl From<Attributes> for BTreeMap<AttrKey, AttrValue> {
    fn from(value: Attributes) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_checked() {
        let mut a = Attributes::new();
        a.set("industry", AttrValue::Text("auto".into())).unwrap();
        a.set("seats", AttrValue::Number(Decimal::from(12)))
            .unwrap();
        assert_eq!(
            a.set("Bad-Key", AttrValue::Bool(true)).unwrap_err().field(),
            Some("attributes.Bad-Key")
        );
        let long = "x".repeat(AttrValue::MAX_TEXT_CHARS + 1);
        assert_eq!(
            a.set("note", AttrValue::Text(long)).unwrap_err().field(),
            Some("attributes.note")
        );
        assert_eq!(a.len(), 2);
        assert_eq!(a.get("seats"), Some(&AttrValue::Number(Decimal::from(12))));
    }

    #[test]
    fn serde_form_is_typed_and_validated() {
        let a = Attributes::new()
            .with(
                "since",
                AttrValue::Date(NaiveDate::from_ymd_opt(2020, 2, 29).unwrap()),
            )
            .unwrap()
            .with("labels", AttrValue::TextList(vec!["a".into(), "b".into()]))
            .unwrap();
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(
            json,
            r#"{"labels":{"type":"text_list","value":["a","b"]},"since":{"type":"date","value":"2020-02-29"}}"#
        );
        assert_eq!(serde_json::from_str::<Attributes>(&json).unwrap(), a);
        assert!(
            serde_json::from_str::<Attributes>(r#"{"X":{"type":"bool","value":true}}"#).is_err()
        );
    }
}
