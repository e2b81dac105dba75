//! The audit trail: who changed what about a customer, when and why.
//!
//! Every stored change to a customer writes one [`AuditEntry`] in the change's transaction,
//! keyed by the version the change produced: registration (version 1), each update with
//! the fields that changed and their old and new values, ownership transfers, merges (on
//! the survivor and on each customer merged away) and erasure. [`Customers::audit_history`](crate::service::Customers::audit_history)
//! lists a customer's entries newest first, page by page; the entries of a customer merged
//! away stay readable under its old id. Erasure keeps that the erasure happened and which
//! fields earlier entries changed, but removes their values and reasons.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::customer::Customer;
use crate::error::Result;
use crate::id::{CustomerId, UserId};
use crate::page::PageRequest;

/// One field's change: its name in the customer record, old and new value as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field (`name`, `emails`, `owner`, `attributes`, ...).
    pub field: String,
    /// The value before (`null` when absent, or after erasure).
    pub old: serde_json::Value,
    /// The value after (`null` when absent, or after erasure).
    pub new: serde_json::Value,
}

/// What a change did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditChange {
    /// The customer was registered.
    Created,
    /// Fields changed (an owner change is a change of `owner`).
    Updated {
        /// The fields that changed.
        fields: Vec<FieldChange>,
    },
    /// Other customers were merged into this one.
    Merged {
        /// The customers merged in.
        merged: Vec<CustomerId>,
        /// The survivor's fields that changed.
        fields: Vec<FieldChange>,
    },
    /// This customer was merged into another.
    MergedInto {
        /// The survivor.
        survivor: CustomerId,
    },
    /// Personal data was erased.
    Erased,
}

/// One entry of a customer's audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The customer.
    pub customer: CustomerId,
    /// The version the change produced (entries are unique per customer and version).
    pub version: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`None`: the system or an import).
    pub actor: Option<UserId>,
    /// Why, if given.
    pub reason: Option<String>,
    /// What.
    pub change: AuditChange,
}

impl AuditEntry {
    /// The entry of a registration (version 1, at the record's creation).
    pub fn created(customer: &Customer) -> AuditEntry {
        AuditEntry {
            customer: customer.id,
            version: customer.version,
            at: customer.created_at,
            actor: None,
            reason: None,
            change: AuditChange::Created,
        }
    }

    /// The entry as stored after an erasure of its customer: field values and the reason
    /// removed, the rest kept.
    pub fn scrubbed(&self) -> AuditEntry {
        let mut out = self.clone();
        out.reason = None;
        let blank = |fields: &mut Vec<FieldChange>| {
            for f in fields {
                f.old = serde_json::Value::Null;
                f.new = serde_json::Value::Null;
            }
        };
        match &mut out.change {
            AuditChange::Updated { fields } | AuditChange::Merged { fields, .. } => blank(fields),
            _ => {}
        }
        out
    }
}

/// The fields that differ between two versions of a record (bookkeeping fields —
/// `version`, `updated_at`, `created_at` — left out), in field order.
pub fn field_changes(old: &Customer, new: &Customer) -> Vec<FieldChange> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !matches!(k.as_str(), "version" | "updated_at" | "created_at"))
        .filter_map(|k| {
            let (o, n) = (
                a.get(k).cloned().unwrap_or_default(),
                b.get(k).cloned().unwrap_or_default(),
            );
            (o != n).then(|| FieldChange {
                field: k.clone(),
                old: o,
                new: n,
            })
        })
        .collect()
}

/// For adapters: checks an audit-history page request and gives the version its entries
/// must be below (`u64::MAX` for the first page).
pub fn page_before(page: &PageRequest) -> Result<u64> {
    page.validate()?;
    Ok(page
        .after
        .as_ref()
        .map(crate::page::Cursor::as_audit)
        .transpose()?
        .unwrap_or(u64::MAX))
}
