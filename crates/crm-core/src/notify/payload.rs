//! The `data` of each event kind, as types, and its schema version.
//!
//! Every [`DomainEvent`](super::DomainEvent) carries `schema_version`: the version of the
//! shape of its kind's `data`. The JSON Schema of each kind and version is generated from
//! these types (feature `schema`) and kept in the repository under
//! `crates/crm-core/schemas/events/`, one file per kind and version, so a receiver can
//! validate what it gets and a change to a payload shows up in review.
//!
//! ## Compatibility
//!
//! Within one schema version a payload may only gain optional fields (absent or `null` in
//! events written before). Removing or renaming a field, changing its type or meaning,
//! making an optional field required, or adding a required one needs the next version:
//! the kind's [`EventKind::schema_version`](super::EventKind::schema_version) goes up and
//! a new schema file joins the old ones. Only the current version's file is regenerated
//! (when optional fields are added); earlier versions' files never change, and events
//! already in the outbox keep the version they were written with. Receivers should ignore
//! fields they do not know. A test fails whenever the generated schema differs from the
//! file in the repository, so no payload changes unnoticed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::case::{CaseKind, CaseStatus};
use crate::customer::{Customer, OwnershipChange};
use crate::id::{CaseId, CustomerId, SegmentId, UserId};
use crate::interaction::Interaction;
use crate::notify::TemplateName;
use crate::sales::{Opportunity, OrderSnapshot, StageChange};
use crate::sla::SlaMetric;

use super::EventKind;

impl EventKind {
    /// The version of this kind's payload shape, carried by every event as
    /// `schema_version` (see the [module docs](crate::notify::payload) for what may change
    /// within a version).
    pub fn schema_version(self) -> u32 {
        match self {
            EventKind::CustomerCreated
            | EventKind::CustomerUpdated
            | EventKind::CustomerMerged
            | EventKind::CustomerErased
            | EventKind::OwnerChanged
            | EventKind::InteractionLogged
            | EventKind::CaseOpened
            | EventKind::CaseBreached
            | EventKind::CaseResolved
            | EventKind::SegmentEntered
            | EventKind::SegmentLeft
            | EventKind::OpportunityStageChanged
            | EventKind::OpportunityWon
            | EventKind::OpportunityLost => 1,
        }
    }
}

/// `customer.created` and `customer.updated`: the record as stored after the change.
pub type CustomerPayload = Customer;

/// `customer.owner_changed`: the transfer.
pub type OwnerChangedPayload = OwnershipChange;

/// `customer.merged`, on the survivor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MergedPayload {
    /// The customer that remains.
    pub survivor: CustomerId,
    /// The customers merged into it (they now redirect to it).
    pub merged: Vec<CustomerId>,
    /// The survivor's record after the merge.
    pub customer: Customer,
}

/// `customer.erased`: only the id, nothing personal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErasedPayload {
    /// The customer whose personal data was erased.
    pub customer: CustomerId,
}

/// `interaction.logged`: the interaction as stored.
pub type InteractionPayload = Interaction;

/// `case.opened` and `case.resolved`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CasePayload {
    /// The customer the case is about.
    pub customer: CustomerId,
    /// What kind of case.
    pub kind: CaseKind,
    /// Its subject line.
    pub subject: String,
    /// Its status after the change.
    pub status: CaseStatus,
    /// Who works on it, if anyone.
    pub assignee: Option<UserId>,
}

/// `case.breached`: which rule a case broke, and by how much.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CaseBreachedPayload {
    /// The rule's name.
    pub rule: String,
    /// The rule's key.
    pub rule_key: TemplateName,
    /// The case.
    pub case: CaseId,
    /// The case's subject line.
    pub subject: String,
    /// What the rule measures.
    pub metric: SlaMetric,
    /// Business minutes counted so far.
    pub elapsed_minutes: i64,
    /// The rule's target in business minutes, if it has one.
    pub target_minutes: Option<i64>,
    /// When the target was (or will be) missed.
    pub breach_at: Option<DateTime<Utc>>,
}

/// `segment.entered` and `segment.left`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SegmentMovePayload {
    /// The segment.
    pub segment: SegmentId,
    /// The customer who entered or left it.
    pub customer: CustomerId,
}

/// `opportunity.stage_changed`: the deal after the move, and the history entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StageChangedPayload {
    /// The deal as stored after the move.
    pub opportunity: Opportunity,
    /// The move.
    pub change: StageChange,
}

/// `opportunity.won`: the order snapshot an ERP turns into an order.
pub type WonPayload = OrderSnapshot;

/// `opportunity.lost`: the deal as stored.
pub type LostPayload = Opportunity;

/// The JSON Schema (draft 2020-12) of a whole event of `kind` at its current schema
/// version, as a receiver gets it (the [`DomainEvent`](super::DomainEvent) fields with
/// `data` of the kind's payload type). Feature `schema`.
#[cfg(feature = "schema")]
pub fn event_schema(kind: EventKind) -> serde_json::Value {
    use schemars::generate::SchemaSettings;
    use schemars::JsonSchema;

    /// The envelope every event shares, generic over its payload.
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Envelope<T> {
        /// The tenant it happened in.
        tenant: crate::id::TenantId,
        /// Increases per tenant in the order events were stored (there may be gaps).
        seq: u64,
        /// What happened.
        kind: String,
        /// The version of `data`'s shape.
        schema_version: u32,
        /// The entity the event is about.
        entity: super::EntityRef,
        /// The entity's version after the change (1 for entities without versions).
        version: u64,
        /// When.
        at: DateTime<Utc>,
        /// The kind's payload.
        data: T,
        /// Stable across redeliveries: a receiver drops an event whose key it has seen.
        idempotency_key: String,
    }

    fn of<T: JsonSchema>() -> serde_json::Value {
        let generator = SchemaSettings::draft2020_12()
            .for_serialize()
            .into_generator();
        generator.into_root_schema_for::<Envelope<T>>().to_value()
    }

    let mut schema = match kind {
        EventKind::CustomerCreated | EventKind::CustomerUpdated => of::<CustomerPayload>(),
        EventKind::CustomerMerged => of::<MergedPayload>(),
        EventKind::CustomerErased => of::<ErasedPayload>(),
        EventKind::OwnerChanged => of::<OwnerChangedPayload>(),
        EventKind::InteractionLogged => of::<InteractionPayload>(),
        EventKind::CaseOpened | EventKind::CaseResolved => of::<CasePayload>(),
        EventKind::CaseBreached => of::<CaseBreachedPayload>(),
        EventKind::SegmentEntered | EventKind::SegmentLeft => of::<SegmentMovePayload>(),
        EventKind::OpportunityStageChanged => of::<StageChangedPayload>(),
        EventKind::OpportunityWon => of::<WonPayload>(),
        EventKind::OpportunityLost => of::<LostPayload>(),
    };
    let version = kind.schema_version();
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "$id".into(),
            format!("urn:crm:event:{}:v{version}", kind.as_str()).into(),
        );
        object.insert(
            "title".into(),
            format!("{} (schema version {version})", kind.as_str()).into(),
        );
        if let Some(properties) = object
            .get_mut("properties")
            .and_then(serde_json::Value::as_object_mut)
        {
            properties.insert(
                "kind".into(),
                serde_json::json!({ "const": kind.as_str(), "description": "What happened." }),
            );
            properties.insert(
                "schema_version".into(),
                serde_json::json!({ "const": version, "description": "The version of `data`'s shape." }),
            );
        }
    }
    schema
}
