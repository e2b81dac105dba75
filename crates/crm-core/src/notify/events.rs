//! Domain events for integration: what changed, for hosts (an ERP, a message bus, a webhook
//! sender) that subscribe through an [`EventSink`].
//!
//! Events travel through the same outbox as notifications, written in the same transaction
//! as the change, so an event is never lost and never announces a change that was rolled
//! back. Each carries the tenant, a sequence number that increases per tenant, the entity
//! and its version, and an idempotency key that lets a receiver drop repeats (delivery is
//! at least once). Events of one entity are delivered in order: the outbox hands out an
//! event only when no earlier event of the same entity is still pending.

use std::io::Write;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DeliveryChannel, Notification, OutboxMessage, Priority, Purpose, Recipient};
use crate::error::{Error, Result};
use crate::id::{CustomerId, SegmentId, TenantId};
use crate::segment::MembershipChange;

/// What happened. Serialised as its dotted name (`customer.created`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum EventKind {
    /// A customer was registered.
    CustomerCreated,
    /// A customer record was changed.
    CustomerUpdated,
    /// Customers were merged into a survivor.
    CustomerMerged,
    /// A customer's personal data was erased.
    CustomerErased,
    /// A customer changed hands.
    OwnerChanged,
    /// An interaction was logged.
    InteractionLogged,
    /// A service case was opened.
    CaseOpened,
    /// A case breached a service standard.
    CaseBreached,
    /// A case was resolved.
    CaseResolved,
    /// A customer entered a segment.
    SegmentEntered,
    /// A customer left a segment.
    SegmentLeft,
    /// An opportunity entered a stage (also when it was created, from no stage).
    OpportunityStageChanged,
    /// An opportunity was won: the data is its [`OrderSnapshot`](crate::sales::OrderSnapshot).
    OpportunityWon,
    /// An opportunity was lost.
    OpportunityLost,
}

impl EventKind {
    /// Every kind.
    pub const ALL: &'static [EventKind] = &[
        EventKind::CustomerCreated,
        EventKind::CustomerUpdated,
        EventKind::CustomerMerged,
        EventKind::CustomerErased,
        EventKind::OwnerChanged,
        EventKind::InteractionLogged,
        EventKind::CaseOpened,
        EventKind::CaseBreached,
        EventKind::CaseResolved,
        EventKind::SegmentEntered,
        EventKind::SegmentLeft,
        EventKind::OpportunityStageChanged,
        EventKind::OpportunityWon,
        EventKind::OpportunityLost,
    ];

    /// The dotted name (`customer.created`), also the outbox message's template name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CustomerCreated => "customer.created",
            EventKind::CustomerUpdated => "customer.updated",
            EventKind::CustomerMerged => "customer.merged",
            EventKind::CustomerErased => "customer.erased",
            EventKind::OwnerChanged => "customer.owner_changed",
            EventKind::InteractionLogged => "interaction.logged",
            EventKind::CaseOpened => "case.opened",
            EventKind::CaseBreached => "case.breached",
            EventKind::CaseResolved => "case.resolved",
            EventKind::SegmentEntered => "segment.entered",
            EventKind::SegmentLeft => "segment.left",
            EventKind::OpportunityStageChanged => "opportunity.stage_changed",
            EventKind::OpportunityWon => "opportunity.won",
            EventKind::OpportunityLost => "opportunity.lost",
        }
    }

    /// The kind of a dotted name. Errors: validation on `kind`.
    pub fn parse(text: &str) -> Result<Self> {
        EventKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| Error::validation("kind", format!("unknown event kind {text:?}")))
    }
}

impl From<EventKind> for String {
    fn from(kind: EventKind) -> String {
        kind.as_str().to_string()
    }
}

impl TryFrom<String> for EventKind {
    type Error = Error;
    fn try_from(text: String) -> Result<Self> {
        EventKind::parse(&text)
    }
}

/// The entity an event is about: its kind (`customer`, `interaction`, `segment`, `case`,
/// `opportunity`)
/// and id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EntityRef {
    /// The kind of entity.
    pub kind: String,
    /// Its id.
    pub id: uuid::Uuid,
}

impl EntityRef {
    /// A customer.
    pub fn customer(id: CustomerId) -> Self {
        EntityRef {
            kind: "customer".into(),
            id: id.as_uuid(),
        }
    }

    /// An opportunity.
    pub fn opportunity(id: crate::id::OpportunityId) -> Self {
        EntityRef {
            kind: "opportunity".into(),
            id: id.as_uuid(),
        }
    }

    /// The key that orders this entity's events.
    pub fn ordering_key(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }
}

/// A change, as a subscriber receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// The tenant it happened in.
    pub tenant: TenantId,
    /// Increases per tenant in the order events were stored (there may be gaps).
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
    /// To what.
    pub entity: EntityRef,
    /// The version of `data`'s shape for this kind ([`EventKind::schema_version`] when the
    /// event was written; see [`payload`](super::payload) for what may change within one).
    #[serde(default = "first_version")]
    pub schema_version: u32,
    /// The entity's version after the change (1 for entities without versions).
    pub version: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// Details: the kind's payload ([`payload`](super::payload) has its type for each kind).
    pub data: serde_json::Value,
    /// Stable across redeliveries: a receiver drops an event whose key it has seen.
    pub idempotency_key: String,
}

/// The schema version of events written before versions were recorded.
fn first_version() -> u32 {
    1
}

/// The body of an event message in the outbox.
#[derive(Serialize, Deserialize)]
struct Body {
    entity: EntityRef,
    #[serde(default = "first_version")]
    schema: u32,
    version: u64,
    at: DateTime<Utc>,
    data: serde_json::Value,
}

impl DomainEvent {
    /// The outbox message that carries an event, ordered after earlier events of
    /// `ordered_by` (usually the entity itself; an interaction is ordered by its customer).
    ///
    /// Errors: validation if `key` is not a valid idempotency key.
    pub fn message(
        kind: EventKind,
        entity: EntityRef,
        ordered_by: &EntityRef,
        version: u64,
        at: DateTime<Utc>,
        data: serde_json::Value,
        key: String,
    ) -> Result<OutboxMessage> {
        let body = Body {
            entity,
            schema: kind.schema_version(),
            version,
            at,
            data,
        };
        let notification = Notification {
            recipient: Recipient::Subscribers,
            channel: DeliveryChannel::Event,
            template: super::TemplateName::parse(kind.as_str())?,
            data: serde_json::to_value(body).map_err(|e| Error::encoding("an event", e))?,
            locale: None,
            priority: Priority::Normal,
            purpose: Purpose::Service,
            idempotency_key: key,
            not_before: None,
        };
        notification.validate()?;
        let mut message = OutboxMessage::new(notification, at);
        message.ordering_key = Some(ordered_by.ordering_key());
        Ok(message)
    }

    /// Reads an event back from its outbox message.
    /// Errors: validation if the message is not an event.
    pub fn from_message(tenant: TenantId, message: &OutboxMessage) -> Result<Self> {
        let n = &message.notification;
        if n.channel != DeliveryChannel::Event {
            return Err(Error::validation("channel", "not an event message"));
        }
        let body: Body = serde_json::from_value(n.data.clone())
            .map_err(|e| Error::validation("data", e.to_string()))?;
        Ok(DomainEvent {
            tenant,
            seq: message.seq,
            kind: EventKind::parse(n.template.as_str())?,
            entity: body.entity,
            schema_version: body.schema,
            version: body.version,
            at: body.at,
            data: body.data,
            idempotency_key: n.idempotency_key.clone(),
        })
    }
}

/// The events a segment refresh or a static change produces: one per customer who entered
/// or left, ordered by customer.
pub fn membership_events(
    segment: SegmentId,
    change: &MembershipChange,
    at: DateTime<Utc>,
) -> Result<Vec<OutboxMessage>> {
    let stamp = at.timestamp_micros();
    let moves = change
        .entered
        .iter()
        .map(|c| (EventKind::SegmentEntered, c))
        .chain(change.left.iter().map(|c| (EventKind::SegmentLeft, c)));
    moves
        .map(|(kind, customer)| {
            let entity = EntityRef::customer(*customer);
            DomainEvent::message(
                kind,
                EntityRef {
                    kind: "segment".into(),
                    id: segment.as_uuid(),
                },
                &entity,
                1,
                at,
                serde_json::to_value(super::payload::SegmentMovePayload {
                    segment,
                    customer: *customer,
                })
                .map_err(|e| Error::encoding("a segment event", e))?,
                format!("{}:{segment}:{customer}:{stamp}", kind.as_str()),
            )
        })
        .collect()
}

/// Receives domain events (a message bus producer, a webhook sender, an ERP connector).
///
/// Errors: [`Error::Notify`]; `permanent` makes the event a dead letter (it can be
/// re-queued), otherwise it is retried with backoff.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Takes one event.
    async fn deliver(&self, event: &DomainEvent) -> Result<()>;
}

/// Writes each event as one JSON line: a sink for development, or for a log shipper to
/// pick up.
pub struct JsonLinesSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for JsonLinesSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesSink").finish_non_exhaustive()
    }
}

impl JsonLinesSink {
    /// Writes to `out` (a file, standard output, a buffer).
    pub fn new(out: impl Write + Send + 'static) -> Self {
        JsonLinesSink {
            out: Mutex::new(Box::new(out)),
        }
    }
}

#[async_trait]
impl EventSink for JsonLinesSink {
    async fn deliver(&self, event: &DomainEvent) -> Result<()> {
        let line = serde_json::to_string(event).map_err(|e| Error::notify(true, e))?;
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| Error::notify(false, e))
    }
}

/// Keeps every event it receives, for tests.
#[derive(Debug, Default)]
pub struct RecordingSink {
    events: Mutex<Vec<DomainEvent>>,
}

impl RecordingSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything received so far, in order.
    pub fn events(&self) -> Vec<DomainEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait]
impl EventSink for RecordingSink {
    async fn deliver(&self, event: &DomainEvent) -> Result<()> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()).unwrap(), *kind);
            assert!(super::super::TemplateName::parse(kind.as_str()).is_ok());
        }
        assert_eq!(EventKind::parse("nope").unwrap_err().field(), Some("kind"));
        let json = serde_json::to_string(&EventKind::OwnerChanged).unwrap();
        assert_eq!(json, r#""customer.owner_changed""#);
        assert_eq!(
            serde_json::from_str::<EventKind>(&json).unwrap(),
            EventKind::OwnerChanged
        );
    }

    #[test]
    fn an_event_survives_its_outbox_message() {
        let tenant = TenantId::new();
        let customer = CustomerId::new();
        let entity = EntityRef::customer(customer);
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut m = DomainEvent::message(
            EventKind::CustomerUpdated,
            entity.clone(),
            &entity,
            3,
            at,
            serde_json::json!({ "name": "Ann" }),
            format!("customer.updated:{customer}:3"),
        )
        .unwrap();
        m.seq = 42;
        assert_eq!(
            m.ordering_key,
            Some(format!("customer:{}", customer.as_uuid()))
        );
        let e = DomainEvent::from_message(tenant, &m).unwrap();
        assert_eq!(
            (e.seq, e.kind, e.version, e.at),
            (42, EventKind::CustomerUpdated, 3, at)
        );
        assert_eq!(e.entity, entity);
        assert_eq!(e.data["name"], "Ann");
    }
}
