//! The sources service.

use std::sync::Arc;

use super::{Ctx, Customers};
use crate::customer::{Customer, CustomerQuery};
use crate::error::{Error, Result};
use crate::page::PageRequest;
use crate::ports::SegmentStore;
use crate::segment::{AttrType, CmpOp, FieldSchema, Literal, Operand, Rule};
use crate::sync::{
    check, merge, new_customer, same_source_record, text_attribute, Checked, NaturalKey,
    SourceFields, SyncOutcome,
};
use crate::value::{AttrKey, Currency, ExternalRef};

/// Customers of one tenant kept in step with source systems (see [`crate::sync`]). From
/// [`TenantCrm::sources`](super::TenantCrm::sources).
#[derive(Clone)]
pub struct Sources {
    ctx: Ctx,
    customers: Customers,
    segment_store: Arc<dyn SegmentStore>,
}

debug_by_tenant!(Sources);

impl Sources {
    pub(super) fn new(customers: Customers, segment_store: Arc<dyn SegmentStore>) -> Self {
        Sources {
            ctx: customers.ctx.clone(),
            customers,
            segment_store,
        }
    }

    /// The first customer (by id) whose text attribute `attr` is exactly `value`, through
    /// the segment rule `attr.<key> = "<value>"` (built as a tree, never from text).
    async fn find_by_attribute(&self, attr: &AttrKey, value: &str) -> Result<Option<Customer>> {
        let tenant = self.ctx.tenant;
        let rule = Rule::Compare {
            left: Operand::Field(format!("attr.{}", attr.as_str())),
            cmp: CmpOp::Eq,
            right: Operand::Literal(Literal::Text(value.to_string())),
        };
        let schema =
            FieldSchema::new(Currency::parse("EUR")?).with_attribute(attr.as_str(), AttrType::Text);
        let page = self
            .segment_store
            .find_matching(
                tenant,
                &rule,
                &schema,
                self.ctx.now(),
                &PageRequest::first(1),
            )
            .await?;
        match page.items.first() {
            Some(id) => self
                .customers
                .customer_store
                .get_customer(tenant, *id)
                .await
                .map(Some),
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
    pub async fn upsert(
        &self,
        source: &str,
        external_id: &str,
        fields: &SourceFields,
        natural_keys: &[NaturalKey],
    ) -> Result<SyncOutcome> {
        self.ctx.system_only("sources.upsert")?;
        let key = ExternalRef::new(source, external_id)?;
        let checked = check(fields)?;
        let found_customer = self
            .find_source_match(&key, fields, &checked, natural_keys)
            .await?;
        if let Some(mut customer) = found_customer {
            if !merge(&mut customer, fields, &checked, &key)? {
                return Ok(SyncOutcome::Unchanged(customer));
            }
            return self
                .customers
                .update(customer, None)
                .await
                .map(SyncOutcome::Updated);
        }
        let customer = new_customer(fields, &checked, &key)?;
        self.customers
            .register(customer)
            .await
            .map(SyncOutcome::Created)
    }

    /// The stored customer a source record belongs to: by its external id, else by each
    /// natural key in turn.
    async fn find_source_match(
        &self,
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
            let found = self.customers.search(query, &PageRequest::first(1)).await?;
            if let Some(c) = found.items.into_iter().next() {
                return Ok(Some(c));
            }
        }
        for (attr, value) in &attribute_keys {
            if let Some(c) = self.find_by_attribute(attr, value).await? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// [`upsert`](Self::upsert) for many records of one source:
    /// every record is checked first (errors name it, like `records[3].fields.emails[0]`,
    /// and then nothing is written); records that match no stored customer are registered
    /// together in one transaction (all or nothing); records that match one update it, each
    /// in its own optimistic transaction. Records of the batch that belong to the same
    /// customer (same external id or natural key) are applied to it in order. Outcomes are
    /// in the order of `records`, one per record: the first record of a new customer
    /// reports `Created`, a later record of the same new customer `Updated` (or
    /// `Unchanged` if it added nothing), each with the final record, so counting outcomes
    /// counts customers created once. Re-sending the batch changes nothing.
    pub async fn upsert_batch(
        &self,
        source: &str,
        records: &[(String, SourceFields)],
        natural_keys: &[NaturalKey],
    ) -> Result<Vec<SyncOutcome>> {
        self.ctx.system_only("sources.upsert_batch")?;
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
                .find_source_match(key, fields, checked, natural_keys)
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
            self.customers.register_many(created).await?
        };
        let mut saved = Vec::with_capacity(updated.len());
        for (customer, changed) in updated {
            saved.push(if changed {
                self.customers.update(customer, None).await?
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
