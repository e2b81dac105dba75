//! The customer record: owned by the company, versioned, with contact points, lifecycle,
//! owner and team, tags, ids in source systems, custom attributes and marketing consent.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::id::{CustomerId, TeamId, UserId};
use crate::value::{
    AttrValue, Attributes, DisplayName, EmailAddress, ExternalRef, PhoneNumber, Tag,
};

/// Whether the customer is a person or an organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    /// A natural person.
    Person,
    /// A company, association or public body.
    Organization,
}

/// Where the customer stands in the relationship.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Known, not yet qualified.
    Lead,
    /// Qualified, no purchase yet.
    Prospect,
    /// Buying.
    Active,
    /// Buying less, or unhappy: needs attention.
    AtRisk,
    /// Gone.
    Churned,
}

impl Lifecycle {
    /// Every stage, in order.
    pub const ALL: [Lifecycle; 5] = [
        Lifecycle::Lead,
        Lifecycle::Prospect,
        Lifecycle::Active,
        Lifecycle::AtRisk,
        Lifecycle::Churned,
    ];

    /// The stage's name as stored and serialised (`at_risk`).
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Lead => "lead",
            Lifecycle::Prospect => "prospect",
            Lifecycle::Active => "active",
            Lifecycle::AtRisk => "at_risk",
            Lifecycle::Churned => "churned",
        }
    }

    /// Parses a stage name; the error's field is `lifecycle`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str() == text)
            .ok_or_else(|| Error::validation("lifecycle", format!("unknown stage {text:?}")))
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartyKind {
    /// The kind's name as stored and serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            PartyKind::Person => "person",
            PartyKind::Organization => "organization",
        }
    }

    /// Parses a kind name; the error's field is `kind`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text {
            "person" => Ok(PartyKind::Person),
            "organization" => Ok(PartyKind::Organization),
            _ => Err(Error::validation(
                "kind",
                format!("unknown party kind {text:?}"),
            )),
        }
    }
}

/// What marketing the customer has agreed to receive, per channel. Service messages about
/// the customer's own cases and orders do not need consent; campaigns do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MarketingConsent {
    /// Marketing by email.
    pub email: bool,
    /// Marketing by SMS.
    pub sms: bool,
    /// Marketing calls.
    pub phone: bool,
}

/// A customer record.
///
/// Build one with [`Customer::person`] or [`Customer::organization`]; the service assigns
/// `version`, `created_at` and `updated_at` when it registers the record. Every field holds
/// validated values, and [`Customer::validate`] checks the rules that span fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Customer {
    /// The record's id.
    pub id: CustomerId,
    /// Person or organisation.
    pub kind: PartyKind,
    /// Display name.
    pub name: DisplayName,
    /// Email addresses, the primary one first.
    pub emails: Vec<EmailAddress>,
    /// Phone numbers in E.164, the primary one first.
    pub phones: Vec<PhoneNumber>,
    /// Lifecycle stage.
    pub lifecycle: Lifecycle,
    /// The staff member responsible for the customer (`None`: in the shared pool).
    pub owner: Option<UserId>,
    /// The team the customer belongs to.
    pub team: Option<TeamId>,
    /// Tags.
    pub tags: BTreeSet<Tag>,
    /// The customer's ids in source systems, at most one per system.
    pub external_ids: BTreeSet<ExternalRef>,
    /// Custom attributes.
    pub attributes: Attributes,
    /// Marketing consent.
    pub consent: MarketingConsent,
    /// The customer who referred this one, if any (credited in the referral part of CLV).
    #[serde(default)]
    pub referred_by: Option<CustomerId>,
    /// Optimistic-concurrency version: 1 when registered, +1 on every stored change.
    pub version: u64,
    /// When the record was registered.
    pub created_at: DateTime<Utc>,
    /// When the record was last changed.
    pub updated_at: DateTime<Utc>,
}

impl Customer {
    /// Most email addresses or phone numbers one customer may hold.
    pub const MAX_CONTACT_POINTS: usize = 16;
    /// Most tags one customer may carry.
    pub const MAX_TAGS: usize = 64;

    /// Starts a person record with `name`.
    pub fn person(name: &str) -> CustomerBuilder {
        CustomerBuilder::new(PartyKind::Person, name)
    }

    /// Starts an organisation record with `name`.
    pub fn organization(name: &str) -> CustomerBuilder {
        CustomerBuilder::new(PartyKind::Organization, name)
    }

    /// The primary email address, if any.
    pub fn primary_email(&self) -> Option<&EmailAddress> {
        self.emails.first()
    }

    /// The primary phone number, if any.
    pub fn primary_phone(&self) -> Option<&PhoneNumber> {
        self.phones.first()
    }

    /// The customer's id in `source`, if it has one.
    pub fn external_id(&self, source: &str) -> Option<&str> {
        self.external_ids
            .iter()
            .find(|r| r.source().as_str() == source)
            .map(|r| r.external_id())
    }

    /// Checks the rules that span fields: limits on contact points and tags, no repeated
    /// or masked contact point, at most one external id per source system.
    pub fn validate(&self) -> Result<(), Error> {
        check_list("emails", &self.emails, Self::MAX_CONTACT_POINTS)?;
        check_list("phones", &self.phones, Self::MAX_CONTACT_POINTS)?;
        // Masked contact points (what a principal without contact access reads) are not
        // data: storing one would lose the real address.
        if let Some(i) = self.emails.iter().position(EmailAddress::is_masked) {
            return Err(Error::validation(
                format!("emails[{i}]"),
                "is masked: give the full address, or keep the masked one as it was read",
            ));
        }
        if let Some(i) = self.phones.iter().position(PhoneNumber::is_masked) {
            return Err(Error::validation(
                format!("phones[{i}]"),
                "is masked: give the full number, or keep the masked one as it was read",
            ));
        }
        if self.tags.len() > Self::MAX_TAGS {
            return Err(Error::validation(
                "tags",
                format!("at most {} tags", Self::MAX_TAGS),
            ));
        }
        if self.referred_by == Some(self.id) {
            return Err(Error::validation(
                "referred_by",
                "a customer cannot refer itself",
            ));
        }
        let mut sources = BTreeSet::new();
        for r in &self.external_ids {
            if !sources.insert(r.source()) {
                return Err(Error::validation(
                    "external_ids",
                    format!("more than one id from source {}", r.source()),
                ));
            }
        }
        Ok(())
    }
}

fn check_list<T: PartialEq>(field: &str, items: &[T], max: usize) -> Result<(), Error> {
    if items.len() > max {
        return Err(Error::validation(field, format!("at most {max} entries")));
    }
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            return Err(Error::validation(format!("{field}[{i}]"), "listed twice"));
        }
    }
    Ok(())
}

/// Builds a [`Customer`], collecting the first validation error for [`CustomerBuilder::build`].
#[derive(Debug)]
#[must_use = "call build() to get the customer"]
pub struct CustomerBuilder {
    kind: PartyKind,
    name: String,
    id: Option<CustomerId>,
    emails: Vec<String>,
    phones: Vec<String>,
    lifecycle: Lifecycle,
    owner: Option<UserId>,
    team: Option<TeamId>,
    tags: Vec<String>,
    external_ids: Vec<(String, String)>,
    attributes: Vec<(String, AttrValue)>,
    consent: MarketingConsent,
    referred_by: Option<CustomerId>,
}

impl CustomerBuilder {
    fn new(kind: PartyKind, name: &str) -> Self {
        CustomerBuilder {
            kind,
            name: name.to_string(),
            id: None,
            emails: Vec::new(),
            phones: Vec::new(),
            lifecycle: Lifecycle::Lead,
            owner: None,
            team: None,
            tags: Vec::new(),
            external_ids: Vec::new(),
            attributes: Vec::new(),
            consent: MarketingConsent::default(),
            referred_by: None,
        }
    }

    /// Uses a given id instead of a new one (for records migrated from elsewhere).
    pub fn id(mut self, id: CustomerId) -> Self {
        self.id = Some(id);
        self
    }

    /// Adds an email address (the first one added is the primary one).
    pub fn email(mut self, email: &str) -> Self {
        self.emails.push(email.to_string());
        self
    }

    /// Adds an international phone number (the first one added is the primary one).
    pub fn phone(mut self, phone: &str) -> Self {
        self.phones.push(phone.to_string());
        self
    }

    /// Sets the lifecycle stage (default: lead).
    pub fn lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycle = lifecycle;
        self
    }

    /// Sets the owner.
    pub fn owner(mut self, owner: UserId) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Sets the team.
    pub fn team(mut self, team: TeamId) -> Self {
        self.team = Some(team);
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: &str) -> Self {
        self.tags.push(tag.to_string());
        self
    }

    /// Records the customer's id in a source system.
    pub fn external_id(mut self, source: &str, id: &str) -> Self {
        self.external_ids.push((source.to_string(), id.to_string()));
        self
    }

    /// Sets a custom attribute.
    pub fn attribute(mut self, key: &str, value: AttrValue) -> Self {
        self.attributes.push((key.to_string(), value));
        self
    }

    /// Sets marketing consent.
    pub fn consent(mut self, consent: MarketingConsent) -> Self {
        self.consent = consent;
        self
    }

    /// Records who referred this customer.
    pub fn referred_by(mut self, referrer: CustomerId) -> Self {
        self.referred_by = Some(referrer);
        self
    }

    /// Validates everything and returns the customer (version 0, timestamps at the Unix
    /// epoch until the service registers it). Errors name the field, such as `emails[1]`.
    pub fn build(self) -> Result<Customer, Error> {
        let name = DisplayName::parse_field(&self.name, "name")?;
        let emails = self
            .emails
            .iter()
            .enumerate()
            .map(|(i, e)| EmailAddress::parse_field(e, &format!("emails[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let phones = self
            .phones
            .iter()
            .enumerate()
            .map(|(i, p)| PhoneNumber::parse_field(p, &format!("phones[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let tags = self
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| Tag::parse_field(t, &format!("tags[{i}]")))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let external_ids = self
            .external_ids
            .iter()
            .enumerate()
            .map(|(i, (s, id))| {
                ExternalRef::new(s, id).map_err(|e| e.in_field(&format!("external_ids[{i}]")))
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        let mut attributes = Attributes::new();
        for (k, v) in self.attributes {
            attributes.set(&k, v)?;
        }
        let customer = Customer {
            id: self.id.unwrap_or_default(),
            kind: self.kind,
            name,
            emails,
            phones,
            lifecycle: self.lifecycle,
            owner: self.owner,
            team: self.team,
            tags,
            external_ids,
            attributes,
            consent: self.consent,
            referred_by: self.referred_by,
            version: 0,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        };
        customer.validate()?;
        Ok(customer)
    }
}

/// A recorded transfer of a customer from one owner to another (or to or from the pool).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OwnershipChange {
    /// The customer.
    pub customer: CustomerId,
    /// Previous owner (`None`: the pool).
    pub from: Option<UserId>,
    /// New owner (`None`: back to the pool).
    pub to: Option<UserId>,
    /// Who made the change, if a person did.
    pub changed_by: Option<UserId>,
    /// Why, in words.
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// The customer's version after the change.
    pub version: u64,
}

/// Filters for listing customers; every set filter must match. An empty query lists all
/// customers of the tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerQuery {
    /// Name starts with this text, ignoring case.
    pub name_prefix: Option<String>,
    /// Has this email address (ignoring case).
    pub email: Option<EmailAddress>,
    /// Has this phone number.
    pub phone: Option<PhoneNumber>,
    /// Carries this tag.
    pub tag: Option<Tag>,
    /// Owned by this user.
    pub owner: Option<UserId>,
    /// In this lifecycle stage.
    pub lifecycle: Option<Lifecycle>,
    /// Known under this id in a source system.
    pub external_id: Option<ExternalRef>,
}

impl CustomerQuery {
    /// Matches everyone.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether `customer` matches every set filter (the reference semantics adapters follow).
    pub fn matches(&self, customer: &Customer) -> bool {
        let prefix_ok = self
            .name_prefix
            .as_ref()
            .is_none_or(|p| customer.name.search_key().starts_with(&p.to_lowercase()));
        let email_ok = self.email.as_ref().is_none_or(|e| {
            let key = e.search_key();
            customer.emails.iter().any(|c| c.search_key() == key)
        });
        prefix_ok
            && email_ok
            && self
                .phone
                .as_ref()
                .is_none_or(|p| customer.phones.contains(p))
            && self.tag.as_ref().is_none_or(|t| customer.tags.contains(t))
            && self.owner.is_none_or(|o| customer.owner == Some(o))
            && self.lifecycle.is_none_or(|l| customer.lifecycle == l)
            && self
                .external_id
                .as_ref()
                .is_none_or(|r| customer.external_ids.contains(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_validates_each_field() {
        let c = Customer::person("Ann Lee")
            .email("ann@example.com")
            .phone("+49 30 1234567")
            .tag("VIP")
            .external_id("erp", "C-1")
            .build()
            .unwrap();
        assert_eq!(c.primary_email().unwrap().as_str(), "ann@example.com");
        assert_eq!(c.external_id("erp"), Some("C-1"));
        assert!(c.tags.contains(&Tag::parse("vip").unwrap()));

        let err = Customer::person("Ann")
            .email("a@x.org")
            .email("bad")
            .build()
            .unwrap_err();
        assert_eq!(err.field(), Some("emails[1]"));
        let err = Customer::person(" ").build().unwrap_err();
        assert_eq!(err.field(), Some("name"));
        let err = Customer::person("A").phone("12").build().unwrap_err();
        assert_eq!(err.field(), Some("phones[0]"));
        let err = Customer::person("A")
            .external_id("erp", "")
            .build()
            .unwrap_err();
        assert_eq!(err.field(), Some("external_ids[0].external_id"));
        let err = Customer::person("A")
            .external_id("erp", "1")
            .external_id("erp", "2")
            .build()
            .unwrap_err();
        assert_eq!(err.field(), Some("external_ids"));
        let err = Customer::person("A")
            .email("a@x.org")
            .email("a@X.org")
            .build()
            .unwrap_err();
        assert_eq!(err.field(), Some("emails[1]"));
    }

    #[test]
    fn query_matches_every_set_filter() {
        let c = Customer::organization("Müller GmbH")
            .email("Info@Mueller.de")
            .lifecycle(Lifecycle::Active)
            .build()
            .unwrap();
        assert!(CustomerQuery::all().matches(&c));
        let q = CustomerQuery {
            name_prefix: Some("MÜLL".into()),
            email: Some(EmailAddress::parse("info@mueller.de").unwrap()),
            lifecycle: Some(Lifecycle::Active),
            ..Default::default()
        };
        assert!(q.matches(&c));
        let q = CustomerQuery {
            lifecycle: Some(Lifecycle::Lead),
            ..q
        };
        assert!(!q.matches(&c));
    }
}
