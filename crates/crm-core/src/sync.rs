//! Source-system sync: records arriving from an ERP, a web shop or a call centre update the
//! one customer they belong to instead of creating duplicates.
//!
//! [`Sources::upsert`](crate::service::Sources::upsert) finds the customer by the record's external id in its source
//! system, else by a natural key (normalised email, E.164 phone, or a tax or registration
//! number kept in a text attribute, in the order given), and
//! updates it (adding the source's external id, so a second system's record of the same
//! person is found directly next time); only when nothing matches does it register a new
//! customer. Sending the same record again changes nothing.

use serde::{Deserialize, Serialize};

use crate::customer::{Customer, Lifecycle, PartyKind};
use crate::error::{Error, Result};
use crate::value::{AttrKey, AttrValue, DisplayName, EmailAddress, ExternalRef, PhoneNumber, Tag};

/// How records of different systems are recognised as the same customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NaturalKey {
    /// The first email address of the record, normalised.
    Email,
    /// The first phone number of the record, in E.164.
    Phone,
    /// A text attribute holding a tax or registration number (for organisations), matched
    /// exactly; for example `{"attribute": "vat_id"}`.
    Attribute(AttrKey),
}

/// The fields a source system sends; absent fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceFields {
    /// Display name (required to create a customer).
    #[serde(default)]
    pub name: Option<String>,
    /// Person or organisation (default person when creating).
    #[serde(default)]
    pub kind: Option<PartyKind>,
    /// Email addresses, added to the customer's.
    #[serde(default)]
    pub emails: Vec<String>,
    /// Phone numbers (international form), added to the customer's.
    #[serde(default)]
    pub phones: Vec<String>,
    /// Lifecycle stage.
    #[serde(default)]
    pub lifecycle: Option<Lifecycle>,
    /// Tags, added to the customer's.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Custom attributes, set (replacing a value under the same key).
    #[serde(default)]
    pub attributes: Vec<(String, AttrValue)>,
}

/// What an upsert did.
#[derive(Clone, Debug, PartialEq)]
pub enum SyncOutcome {
    /// No customer matched: one was registered.
    Created(Customer),
    /// A customer matched and was changed.
    Updated(Customer),
    /// A customer matched and already had everything the record says.
    Unchanged(Customer),
}

impl SyncOutcome {
    /// The customer, whatever happened.
    pub fn customer(&self) -> &Customer {
        match self {
            SyncOutcome::Created(c) | SyncOutcome::Updated(c) | SyncOutcome::Unchanged(c) => c,
        }
    }
}

/// The record's values, checked (errors name `fields.<field>`).
pub(crate) struct Checked {
    pub(crate) name: Option<DisplayName>,
    pub(crate) emails: Vec<EmailAddress>,
    pub(crate) phones: Vec<PhoneNumber>,
    pub(crate) tags: Vec<Tag>,
}

pub(crate) fn check(fields: &SourceFields) -> Result<Checked> {
    let at = |e: Error| e.in_field("fields");
    Ok(Checked {
        name: fields
            .name
            .as_deref()
            .map(|n| DisplayName::parse_field(n, "name"))
            .transpose()
            .map_err(at)?,
        emails: fields
            .emails
            .iter()
            .enumerate()
            .map(|(i, e)| EmailAddress::parse_field(e, &format!("emails[{i}]")))
            .collect::<Result<_>>()
            .map_err(at)?,
        phones: fields
            .phones
            .iter()
            .enumerate()
            .map(|(i, p)| PhoneNumber::parse_field(p, &format!("phones[{i}]")))
            .collect::<Result<_>>()
            .map_err(at)?,
        tags: fields
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| Tag::parse_field(t, &format!("tags[{i}]")))
            .collect::<Result<_>>()
            .map_err(at)?,
    })
}

/// Applies the record to `customer`; whether anything changed.
pub(crate) fn merge(
    customer: &mut Customer,
    fields: &SourceFields,
    checked: &Checked,
    key: &ExternalRef,
) -> Result<bool> {
    let before = customer.clone();
    if let Some(name) = &checked.name {
        customer.name = name.clone();
    }
    if let Some(kind) = fields.kind {
        customer.kind = kind;
    }
    if let Some(stage) = fields.lifecycle {
        customer.lifecycle = stage;
    }
    for e in &checked.emails {
        if !customer.emails.contains(e) {
            customer.emails.push(e.clone());
        }
    }
    for p in &checked.phones {
        if !customer.phones.contains(p) {
            customer.phones.push(p.clone());
        }
    }
    customer.tags.extend(checked.tags.iter().cloned());
    for (k, v) in &fields.attributes {
        customer
            .attributes
            .set(k, v.clone())
            .map_err(|e| e.in_field("fields.attributes"))?;
    }
    customer.external_ids.insert(key.clone());
    Ok(*customer != before)
}

/// The value of a text attribute in a source record.
pub(crate) fn text_attribute<'a>(fields: &'a SourceFields, attr: &AttrKey) -> Option<&'a str> {
    fields
        .attributes
        .iter()
        .find(|(k, _)| k == attr.as_str())
        .and_then(|(_, v)| match v {
            AttrValue::Text(t) => Some(t.as_str()),
            _ => None,
        })
}

/// Whether a customer already in hand is the one a source record belongs to (the same
/// lookups as [`Sources::find_source_match`](crate::service::Sources::find_source_match), in memory).
pub(crate) fn same_source_record(
    c: &Customer,
    key: &ExternalRef,
    fields: &SourceFields,
    checked: &Checked,
    natural_keys: &[NaturalKey],
) -> bool {
    c.external_ids.contains(key)
        || natural_keys.iter().any(|n| match n {
            NaturalKey::Email => checked
                .emails
                .first()
                .is_some_and(|e| c.emails.iter().any(|x| x.search_key() == e.search_key())),
            NaturalKey::Phone => checked.phones.first().is_some_and(|p| c.phones.contains(p)),
            NaturalKey::Attribute(attr) => text_attribute(fields, attr).is_some_and(
                |v| matches!(c.attributes.get(attr.as_str()), Some(AttrValue::Text(t)) if t == v),
            ),
        })
}

/// A new customer from a source record (which must name it).
pub(crate) fn new_customer(
    fields: &SourceFields,
    checked: &Checked,
    key: &ExternalRef,
) -> Result<Customer> {
    let name = checked
        .name
        .clone()
        .ok_or_else(|| Error::validation("fields.name", "is needed to create a customer"))?;
    let mut customer = match fields.kind.unwrap_or(PartyKind::Person) {
        PartyKind::Person => Customer::person(name.as_str()),
        PartyKind::Organization => Customer::organization(name.as_str()),
    }
    .build()?;
    merge(&mut customer, fields, checked, key)?;
    Ok(customer)
}
