//! Source-system sync: records arriving from an ERP, a web shop or a call centre update the
//! one customer they belong to instead of creating duplicates.
//!
//! [`Crm::upsert_from_source`] finds the customer by the record's external id in its source
//! system, else by a natural key (normalised email, E.164 phone, or a tax or registration
//! number kept in a text attribute, in the order given), and
//! updates it (adding the source's external id, so a second system's record of the same
//! person is found directly next time); only when nothing matches does it register a new
//! customer. Sending the same record again changes nothing.

use serde::{Deserialize, Serialize};

use crate::customer::{Customer, CustomerQuery, Lifecycle, PartyKind};
use crate::error::{Error, Result};
use crate::id::TenantId;
use crate::page::PageRequest;
use crate::segment::{AttrType, CmpOp, FieldSchema, Literal, Operand, Rule};
use crate::service::Crm;
use crate::value::{
    AttrKey, AttrValue, Currency, DisplayName, EmailAddress, ExternalRef, PhoneNumber, Tag,
};

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
struct Checked {
    name: Option<DisplayName>,
    emails: Vec<EmailAddress>,
    phones: Vec<PhoneNumber>,
    tags: Vec<Tag>,
}

fn check(fields: &SourceFields) -> Result<Checked> {
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
fn merge(
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

impl Crm {
    /// The first customer (by id) whose text attribute `attr` is exactly `value`, through
    /// the segment rule `attr.<key> = "<value>"` (built as a tree, never from text).
    async fn find_by_attribute(
        &self,
        tenant: TenantId,
        attr: &AttrKey,
        value: &str,
    ) -> Result<Option<Customer>> {
        let rule = Rule::Compare {
            left: Operand::Field(format!("attr.{}", attr.as_str())),
            cmp: CmpOp::Eq,
            right: Operand::Literal(Literal::Text(value.to_string())),
        };
        let schema =
            FieldSchema::new(Currency::parse("EUR")?).with_attribute(attr.as_str(), AttrType::Text);
        let page = self
            .storage()
            .find_matching(tenant, &rule, &schema, self.now(), &PageRequest::first(1))
            .await?;
        match page.items.first() {
            Some(id) => self.storage().get_customer(tenant, *id).await.map(Some),
            None => Ok(None),
        }
    }

    /// Creates or updates the customer a source system's record belongs to (see the module
    /// docs), idempotently.
    ///
    /// Errors: validation naming the field (`fields.emails[1]`, `fields.name` when a new
    /// customer would have none); [`Error::Conflict`] if the customer changed meanwhile
    /// (send the record again); [`Error::Duplicate`] if the external id was taken
    /// concurrently by another record.
    pub async fn upsert_from_source(
        &self,
        tenant: TenantId,
        source: &str,
        external_id: &str,
        fields: &SourceFields,
        natural_keys: &[NaturalKey],
    ) -> Result<SyncOutcome> {
        let key = ExternalRef::new(source, external_id)?;
        let checked = check(fields)?;
        let found_customer = self
            .find_source_match(tenant, &key, fields, &checked, natural_keys)
            .await?;
        if let Some(mut customer) = found_customer {
            if !merge(&mut customer, fields, &checked, &key)? {
                return Ok(SyncOutcome::Unchanged(customer));
            }
            return self
                .update(tenant, customer, None)
                .await
                .map(SyncOutcome::Updated);
        }
        let customer = new_customer(fields, &checked, &key)?;
        self.register(tenant, customer)
            .await
            .map(SyncOutcome::Created)
    }

    /// The stored customer a source record belongs to: by its external id, else by each
    /// natural key in turn.
    async fn find_source_match(
        &self,
        tenant: TenantId,
        key: &ExternalRef,
        fields: &SourceFields,
        checked: &Checked,
        natural_keys: &[NaturalKey],
    ) -> Result<Option<Customer>> {
        let mut queries = vec![CustomerQuery {
            external_id: Some(key.clone()),
            ..CustomerQuery::all()
        }];
        let mut attribute_keys: Vec<(AttrKey, String)> = Vec::new();
        for natural in natural_keys {
            let query = match natural {
                NaturalKey::Email => checked.emails.first().map(|e| CustomerQuery {
                    email: Some(e.clone()),
                    ..CustomerQuery::all()
                }),
                NaturalKey::Phone => checked.phones.first().map(|p| CustomerQuery {
                    phone: Some(p.clone()),
                    ..CustomerQuery::all()
                }),
                NaturalKey::Attribute(attr) => {
                    if let Some(value) = text_attribute(fields, attr) {
                        attribute_keys.push((attr.clone(), value.to_string()));
                    }
                    None
                }
            };
            queries.extend(query);
        }
        for query in &queries {
            let found = self.search(tenant, query, &PageRequest::first(1)).await?;
            if let Some(c) = found.items.into_iter().next() {
                return Ok(Some(c));
            }
        }
        for (attr, value) in &attribute_keys {
            if let Some(c) = self.find_by_attribute(tenant, attr, value).await? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// [`upsert_from_source`](Self::upsert_from_source) for many records of one source:
    /// every record is checked first (errors name it, like `records[3].fields.emails[0]`,
    /// and then nothing is written); records that match no stored customer are registered
    /// together in one transaction (all or nothing); records that match one update it, each
    /// in its own optimistic transaction. Records of the batch that belong to the same
    /// customer (same external id or natural key) are applied to it in order. Outcomes are
    /// in the order of `records`, one per record: the first record of a new customer
    /// reports `Created`, a later record of the same new customer `Updated` (or
    /// `Unchanged` if it added nothing), each with the final record, so counting outcomes
    /// counts customers created once. Re-sending the batch changes nothing.
    pub async fn upsert_batch_from_source(
        &self,
        tenant: TenantId,
        source: &str,
        records: &[(String, SourceFields)],
        natural_keys: &[NaturalKey],
    ) -> Result<Vec<SyncOutcome>> {
        let mut prepared = Vec::with_capacity(records.len());
        for (i, (external_id, fields)) in records.iter().enumerate() {
            let at = |e: Error| e.in_field(&format!("records[{i}]"));
            let key = ExternalRef::new(source, external_id).map_err(at)?;
            let checked = check(fields).map_err(at)?;
            prepared.push((key, checked));
        }
        // Where each record went: a new customer (index into `created`; the first record
        // of it creates it, a later one changes it or not) or a stored one (index into
        // `updated`, with whether the record changed it).
        enum Target {
            New(usize),
            Stored(usize, bool),
            NewAgain(usize, bool),
        }
        let mut created: Vec<Customer> = Vec::new();
        let mut updated: Vec<(Customer, bool)> = Vec::new();
        let mut targets = Vec::with_capacity(records.len());
        for (i, ((_, fields), (key, checked))) in records.iter().zip(&prepared).enumerate() {
            let at = |e: Error| e.in_field(&format!("records[{i}]"));
            let same = |c: &Customer| same_source_record(c, key, fields, checked, natural_keys);
            if let Some(n) = created.iter().position(&same) {
                let changed = merge(&mut created[n], fields, checked, key).map_err(at)?;
                targets.push(Target::NewAgain(n, changed));
            } else if let Some(n) = updated.iter().position(|(c, _)| same(c)) {
                let changed = merge(&mut updated[n].0, fields, checked, key).map_err(at)?;
                updated[n].1 |= changed;
                targets.push(Target::Stored(n, changed));
            } else if let Some(mut c) = self
                .find_source_match(tenant, key, fields, checked, natural_keys)
                .await?
            {
                let changed = merge(&mut c, fields, checked, key).map_err(at)?;
                updated.push((c, changed));
                targets.push(Target::Stored(updated.len() - 1, changed));
            } else {
                created.push(new_customer(fields, checked, key).map_err(at)?);
                targets.push(Target::New(created.len() - 1));
            }
        }
        let created = if created.is_empty() {
            created
        } else {
            self.register_many(tenant, created).await?
        };
        let mut saved = Vec::with_capacity(updated.len());
        for (customer, changed) in updated {
            saved.push(if changed {
                self.update(tenant, customer, None).await?
            } else {
                customer
            });
        }
        Ok(targets
            .into_iter()
            .map(|t| match t {
                Target::New(n) => SyncOutcome::Created(created[n].clone()),
                Target::NewAgain(n, true) => SyncOutcome::Updated(created[n].clone()),
                Target::NewAgain(n, false) => SyncOutcome::Unchanged(created[n].clone()),
                Target::Stored(n, true) => SyncOutcome::Updated(saved[n].clone()),
                Target::Stored(n, false) => SyncOutcome::Unchanged(saved[n].clone()),
            })
            .collect())
    }
}

/// The value of a text attribute in a source record.
fn text_attribute<'a>(fields: &'a SourceFields, attr: &AttrKey) -> Option<&'a str> {
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
/// lookups as [`Crm::find_source_match`], in memory).
fn same_source_record(
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
fn new_customer(fields: &SourceFields, checked: &Checked, key: &ExternalRef) -> Result<Customer> {
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
