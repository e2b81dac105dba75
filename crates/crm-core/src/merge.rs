//! Merging duplicate customers into one survivor.
//!
//! [`Customers::merge`](crate::service::Customers::merge) folds one or more customers into a survivor, in one transaction:
//! the survivor's record takes each field by a [`FieldRule`] (most recent non-empty value,
//! most trusted source, or the survivor's own), keeps every email address, phone number,
//! tag and external id of all of them (one external id per source system: the survivor's,
//! else the first by the rule; any other is reported as dropped), and everything that
//! pointed at the merged customers moves to it: interactions, cases, tasks, segment
//! memberships. Its profile becomes the merge of all their profiles (profiles are
//! mergeable, so it equals a rebuild from the moved history). The merged records are
//! removed and leave redirects: [`Customers::get`](crate::service::Customers::get) and [`Customers::resolve`](crate::service::Customers::resolve) still find
//! the survivor through an old id. A dry run computes the same result and writes nothing.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::audit::AuditEntry;
use crate::customer::Customer;
use crate::error::{Error, Result};
use crate::id::CustomerId;
use crate::profile::Profile;
use crate::value::{ExternalRef, SourceSystem};

/// How the survivor's single-valued fields (name, kind, lifecycle, owner, team, consent,
/// each attribute) are chosen among the merged records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldRule {
    /// The value of the most recently updated record that has one.
    #[default]
    MostRecent,
    /// The value of the record from the most trusted source system (earliest in the list
    /// among the record's external ids) that has one; records from none of them come after,
    /// most recent first.
    TrustedSources(Vec<SourceSystem>),
    /// The survivor's value, unless it has none.
    Survivor,
}

/// Survivorship rules of a merge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergePolicy {
    /// For name, kind, lifecycle, owner, team, consent and referrer.
    pub fields: FieldRule,
    /// For each custom attribute, per key.
    pub attributes: FieldRule,
}

/// What a merge writes, as the storage port receives it.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerMerge {
    /// The survivor's new record (its version one above `survivor_version`).
    pub survivor: Customer,
    /// The survivor's version the merge was computed from.
    pub survivor_version: u64,
    /// The customers folded in, each with the version the merge was computed from.
    pub merged: Vec<(CustomerId, u64)>,
    /// The audit entries: one for the survivor, one for each customer merged away.
    pub audit: Vec<AuditEntry>,
}

/// The result of a merge (or of its dry run).
#[derive(Clone, Debug, PartialEq)]
pub struct MergeOutcome {
    /// The survivor's record after the merge.
    pub customer: Customer,
    /// The survivor's profile after the merge.
    pub profile: Profile,
    /// The customers folded in.
    pub merged: Vec<CustomerId>,
    /// External ids that could not be kept (a second id in one source system).
    pub dropped_external_ids: Vec<ExternalRef>,
    /// Interactions moved to the survivor.
    pub interactions_moved: u64,
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
}

/// The records in the order `rule` prefers them (the survivor is `records[0]`).
fn preference<'a>(records: &'a [Customer], rule: &FieldRule) -> Vec<&'a Customer> {
    let mut order: Vec<&Customer> = records.iter().collect();
    // Most recent first; the survivor first among equals (stable sort).
    order.sort_by_key(|c| std::cmp::Reverse(c.updated_at));
    match rule {
        FieldRule::MostRecent => {}
        FieldRule::Survivor => {
            order.retain(|c| c.id != records[0].id);
            order.insert(0, &records[0]);
        }
        FieldRule::TrustedSources(sources) => {
            let rank = |c: &Customer| {
                sources
                    .iter()
                    .position(|s| c.external_ids.iter().any(|r| r.source() == s))
                    .unwrap_or(usize::MAX)
            };
            order.sort_by_key(|c| rank(c));
        }
    }
    order
}

/// The survivor's merged record (not yet versioned) and the external ids left out.
/// `records[0]` is the survivor.
pub fn merge_records(
    records: &[Customer],
    policy: &MergePolicy,
) -> Result<(Customer, Vec<ExternalRef>)> {
    let Some(first) = records.first() else {
        return Err(Error::validation("customers", "nothing to merge"));
    };
    let mut out = first.clone();
    let fields = preference(records, &policy.fields);
    let best = fields[0];
    out.name = best.name.clone();
    out.kind = best.kind;
    out.lifecycle = best.lifecycle;
    out.consent = best.consent;
    out.owner = fields.iter().find_map(|c| c.owner);
    out.team = fields.iter().find_map(|c| c.team);
    let merged_ids: BTreeSet<CustomerId> = records.iter().map(|c| c.id).collect();
    out.referred_by = fields
        .iter()
        .filter_map(|c| c.referred_by)
        .find(|r| !merged_ids.contains(r));
    // Contact points: the survivor's first (its primary stays primary), then the others'.
    out.emails.clear();
    out.phones.clear();
    for c in std::iter::once(first).chain(fields.iter().copied()) {
        for e in &c.emails {
            if !out.emails.iter().any(|x| x.search_key() == e.search_key()) {
                out.emails.push(e.clone());
            }
        }
        for p in &c.phones {
            if !out.phones.contains(p) {
                out.phones.push(p.clone());
            }
        }
        out.tags.extend(c.tags.iter().cloned());
    }
    // One external id per source system: in the fields' order of preference, the
    // survivor's first.
    let mut dropped = Vec::new();
    out.external_ids.clear();
    for c in std::iter::once(first).chain(fields.iter().copied()) {
        for r in &c.external_ids {
            if out.external_ids.contains(r) {
                continue;
            }
            if out.external_ids.iter().any(|x| x.source() == r.source()) {
                if !dropped.contains(r) {
                    dropped.push(r.clone());
                }
            } else {
                out.external_ids.insert(r.clone());
            }
        }
    }
    dropped.retain(|r| !out.external_ids.contains(r));
    let attrs = preference(records, &policy.attributes);
    let keys: BTreeSet<String> = records
        .iter()
        .flat_map(|c| c.attributes.iter().map(|(k, _)| k.as_str().to_string()))
        .collect();
    for key in keys {
        if let Some(v) = attrs.iter().find_map(|c| c.attributes.get(&key)) {
            out.attributes.set(&key, v.clone())?;
        }
    }
    out.created_at = records
        .iter()
        .map(|c| c.created_at)
        .min()
        .unwrap_or(out.created_at);
    out.validate().map_err(|e| e.in_field("merged customer"))?;
    Ok((out, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn record(name: &str, hours: i64, source: Option<(&str, &str)>) -> Customer {
        let mut b = Customer::person(name).email(&format!(
            "{}@example.com",
            name.to_lowercase().replace(' ', ".")
        ));
        if let Some((s, id)) = source {
            b = b.external_id(s, id);
        }
        let mut c = b.build().unwrap();
        c.updated_at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + Duration::hours(hours);
        c.created_at = c.updated_at;
        c
    }

    fn policy(rule: FieldRule) -> MergePolicy {
        MergePolicy {
            fields: rule.clone(),
            attributes: rule,
        }
    }

    #[test]
    fn fields_follow_the_rule() {
        let survivor = record("Ada Lovelace", 0, Some(("shop", "S1")));
        let newer = record("Ada King", 5, None);
        let erp = record("Augusta Ada King", 2, Some(("erp", "E1")));
        let all = [survivor.clone(), newer.clone(), erp.clone()];
        let name = |rule| {
            merge_records(&all, &policy(rule))
                .unwrap()
                .0
                .name
                .as_str()
                .to_string()
        };
        assert_eq!(name(FieldRule::MostRecent), "Ada King");
        assert_eq!(name(FieldRule::Survivor), "Ada Lovelace");
        let erp_first = FieldRule::TrustedSources(vec![SourceSystem::parse("erp").unwrap()]);
        assert_eq!(name(erp_first), "Augusta Ada King");
        let (merged, dropped) = merge_records(&all, &MergePolicy::default()).unwrap();
        assert_eq!(merged.id, survivor.id);
        assert_eq!(
            merged.emails[0], survivor.emails[0],
            "the survivor's primary stays first"
        );
        assert_eq!(merged.emails.len(), 3);
        assert_eq!(merged.external_ids.len(), 2);
        assert!(dropped.is_empty());
        assert_eq!(merged.created_at, survivor.created_at);
    }

    #[test]
    fn one_external_id_per_source_is_kept_and_the_rest_reported() {
        let a = record("A", 0, Some(("erp", "E1")));
        let b = record("B", 1, Some(("erp", "E2")));
        let (merged, dropped) = merge_records(&[a, b], &policy(FieldRule::MostRecent)).unwrap();
        assert_eq!(
            merged.external_ids.iter().next().unwrap().external_id(),
            "E1",
            "the survivor's id in a source wins"
        );
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].external_id(), "E2");
    }

    #[test]
    fn a_merged_record_beyond_the_limits_is_refused() {
        let records: Vec<Customer> = (0..=Customer::MAX_CONTACT_POINTS)
            .map(|i| record(&format!("P{i}"), i as i64, None))
            .collect();
        match merge_records(&records, &MergePolicy::default()) {
            Err(Error::Validation { field, .. }) => {
                assert!(field.starts_with("merged customer"), "{field}")
            }
            other => panic!("{other:?}"),
        }
    }
}
