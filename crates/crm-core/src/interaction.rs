//! Interactions: append-only facts of every contact with a customer, on every channel.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::id::{CaseId, CustomerId, InteractionId, UserId};
use crate::value::{AttrValue, Attributes, ExternalRef, Money, SourceSystem};

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name as stored and serialised.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses a name; the error names the field.
            pub fn parse(text: &str) -> Result<Self, Error> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::validation($field, format!("unknown value {text:?}"))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// The channel an interaction happened on.
    Channel, "channel" {
        /// A phone call.
        Phone = "phone",
        /// Email.
        Email = "email",
        /// A visit (at the customer's site or ours).
        Visit = "visit",
        /// The web site or web shop.
        Web = "web",
        /// Live chat or messenger.
        Chat = "chat",
        /// SMS.
        Sms = "sms",
        /// A store or branch.
        Store = "store",
        /// Self-service (portal, kiosk, IVR).
        SelfService = "self_service",
        /// Anything else.
        Other = "other",
    }
);

named_enum!(
    /// Who started the contact.
    Direction, "direction" {
        /// From the customer to us.
        Inbound = "inbound",
        /// From us to the customer.
        Outbound = "outbound",
        /// Internal only (a note): not a contact with the customer.
        Internal = "internal",
    }
);

named_enum!(
    /// What kind of interaction it was.
    InteractionKind, "kind" {
        /// A phone call.
        Call = "call",
        /// A meeting.
        Meeting = "meeting",
        /// An email.
        Email = "email",
        /// A note.
        Note = "note",
        /// A complaint.
        Complaint = "complaint",
        /// A service request.
        ServiceRequest = "service_request",
        /// A purchase (its amount counts as revenue).
        Purchase = "purchase",
        /// A payment.
        Payment = "payment",
        /// Feedback (survey, review).
        Feedback = "feedback",
        /// A campaign touch (mailing, ad, event invitation).
        CampaignTouch = "campaign_touch",
    }
);

/// One interaction with a customer: an append-only fact.
///
/// Its `key` (source system + external id) is its idempotency key: logging an interaction
/// whose key the tenant already has is skipped and counted, never stored twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Interaction {
    /// The interaction's id.
    pub id: InteractionId,
    /// The customer it concerns.
    pub customer: CustomerId,
    /// The channel.
    pub channel: Channel,
    /// Who started it.
    pub direction: Direction,
    /// What it was.
    pub kind: InteractionKind,
    /// The staff member who handled it.
    pub handled_by: Option<UserId>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Subject line or short summary.
    pub subject: Option<String>,
    /// Body or notes.
    pub body: Option<String>,
    /// Amount (purchases, payments).
    pub amount: Option<Money>,
    /// How long it lasted, in seconds (calls, visits).
    pub duration_secs: Option<u32>,
    /// How long the customer waited to be answered, in seconds (calls, chats).
    pub wait_secs: Option<u32>,
    /// The case it belongs to.
    pub case: Option<CaseId>,
    /// Custom attributes.
    pub attributes: Attributes,
    /// Idempotency key: source system and the interaction's id there.
    pub key: ExternalRef,
    /// When the CRM recorded it (set by the service when logged).
    pub recorded_at: DateTime<Utc>,
}

impl Interaction {
    /// Longest accepted subject, in characters.
    pub const MAX_SUBJECT_CHARS: usize = 998;
    /// Longest accepted body, in bytes.
    pub const MAX_BODY_BYTES: usize = 256 * 1024;

    /// Starts an interaction of `kind` with `customer` on `channel`.
    pub fn builder(
        customer: CustomerId,
        channel: Channel,
        kind: InteractionKind,
    ) -> InteractionBuilder {
        InteractionBuilder {
            customer,
            channel,
            kind,
            direction: None,
            id: None,
            handled_by: None,
            occurred_at: None,
            subject: None,
            body: None,
            amount: None,
            duration_secs: None,
            wait_secs: None,
            case: None,
            attributes: Vec::new(),
            key: None,
        }
    }

    /// Whether this was a contact with the customer (anything but an internal note).
    pub fn is_contact(&self) -> bool {
        self.direction != Direction::Internal
    }

    /// Checks the rules that span fields (text sizes) and that `occurred_at` is within the
    /// supported range ([`crate::clock::min_instant`] to [`crate::clock::max_instant`]).
    pub fn validate(&self) -> Result<(), Error> {
        crate::clock::check_instant("occurred_at", self.occurred_at)?;
        // No store keeps a NUL in text alike (PostgreSQL refuses it): refused everywhere.
        for (field, text) in [("subject", &self.subject), ("body", &self.body)] {
            if text.as_deref().is_some_and(|t| t.contains('\0')) {
                return Err(Error::validation(field, "contains NUL"));
            }
        }
        if let Some(s) = &self.subject {
            if s.chars().count() > Self::MAX_SUBJECT_CHARS {
                return Err(Error::validation(
                    "subject",
                    format!("at most {} characters", Self::MAX_SUBJECT_CHARS),
                ));
            }
        }
        if let Some(b) = &self.body {
            if b.len() > Self::MAX_BODY_BYTES {
                return Err(Error::validation(
                    "body",
                    format!("at most {} bytes", Self::MAX_BODY_BYTES),
                ));
            }
        }
        Ok(())
    }
}

/// Builds an [`Interaction`].
#[derive(Debug)]
#[must_use = "call build() to get the interaction"]
pub struct InteractionBuilder {
    customer: CustomerId,
    channel: Channel,
    kind: InteractionKind,
    direction: Option<Direction>,
    id: Option<InteractionId>,
    handled_by: Option<UserId>,
    occurred_at: Option<DateTime<Utc>>,
    subject: Option<String>,
    body: Option<String>,
    amount: Option<Money>,
    duration_secs: Option<u32>,
    wait_secs: Option<u32>,
    case: Option<CaseId>,
    attributes: Vec<(String, AttrValue)>,
    key: Option<(String, String)>,
}

impl InteractionBuilder {
    /// Uses a given id instead of a new one.
    pub fn id(mut self, id: InteractionId) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the direction (default: inbound, or internal for notes).
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = Some(direction);
        self
    }

    /// Sets the staff member who handled it.
    pub fn handled_by(mut self, user: UserId) -> Self {
        self.handled_by = Some(user);
        self
    }

    /// Sets when it happened (required).
    pub fn at(mut self, when: DateTime<Utc>) -> Self {
        self.occurred_at = Some(when);
        self
    }

    /// Sets the subject.
    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_string());
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(body.to_string());
        self
    }

    /// Sets the amount.
    pub fn amount(mut self, amount: Money) -> Self {
        self.amount = Some(amount);
        self
    }

    /// Sets the duration in seconds.
    pub fn duration_secs(mut self, secs: u32) -> Self {
        self.duration_secs = Some(secs);
        self
    }

    /// Sets the wait time (time to answer) in seconds.
    pub fn wait_secs(mut self, secs: u32) -> Self {
        self.wait_secs = Some(secs);
        self
    }

    /// Links the interaction to a case.
    pub fn case(mut self, case: CaseId) -> Self {
        self.case = Some(case);
        self
    }

    /// Sets a custom attribute.
    pub fn attribute(mut self, key: &str, value: AttrValue) -> Self {
        self.attributes.push((key.to_string(), value));
        self
    }

    /// Sets the idempotency key: the source system and the interaction's id there
    /// (default: source `crm` and the interaction's own id).
    pub fn key(mut self, source: &str, external_id: &str) -> Self {
        self.key = Some((source.to_string(), external_id.to_string()));
        self
    }

    /// Validates and returns the interaction. `recorded_at` equals `occurred_at` until the
    /// service logs it. Timestamps keep microsecond precision.
    pub fn build(self) -> Result<Interaction, Error> {
        let occurred_at = self
            .occurred_at
            .ok_or_else(|| Error::validation("occurred_at", "is required"))?;
        let occurred_at = crate::clock::truncate_to_micros(occurred_at);
        let id = self.id.unwrap_or_default();
        let key = match self.key {
            Some((source, external)) => ExternalRef::new(&source, &external)?,
            None => ExternalRef::new(SourceSystem::CRM, &id.to_string())?,
        };
        let mut attributes = Attributes::new();
        for (k, v) in self.attributes {
            attributes.set(&k, v)?;
        }
        let direction = self.direction.unwrap_or(match self.kind {
            InteractionKind::Note => Direction::Internal,
            _ => Direction::Inbound,
        });
        let interaction = Interaction {
            id,
            customer: self.customer,
            channel: self.channel,
            direction,
            kind: self.kind,
            handled_by: self.handled_by,
            occurred_at,
            subject: self.subject,
            body: self.body,
            amount: self.amount,
            duration_secs: self.duration_secs,
            wait_secs: self.wait_secs,
            case: self.case,
            attributes,
            key,
            recorded_at: occurred_at,
        };
        interaction.validate()?;
        Ok(interaction)
    }
}

/// What logging a batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReport {
    /// Interactions stored.
    pub inserted: usize,
    /// Interactions skipped because their idempotency key was already stored (or appeared
    /// earlier in the same batch).
    pub duplicates: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_their_names() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()).unwrap(), *c);
            assert_eq!(serde_json::to_string(c).unwrap(), format!("\"{c}\""));
        }
        for k in InteractionKind::ALL {
            assert_eq!(InteractionKind::parse(k.as_str()).unwrap(), *k);
        }
        assert_eq!(
            Direction::parse("sideways").unwrap_err().field(),
            Some("direction")
        );
    }

    #[test]
    fn builder_defaults_and_checks() {
        let c = CustomerId::new();
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let i = Interaction::builder(c, Channel::Phone, InteractionKind::Call)
            .at(at)
            .build()
            .unwrap();
        assert_eq!(i.direction, Direction::Inbound);
        assert_eq!(i.key.source().as_str(), "crm");
        assert_eq!(i.key.external_id(), i.id.to_string());
        assert_eq!(i.occurred_at.timestamp_subsec_nanos(), 123_456_000);

        let note = Interaction::builder(c, Channel::Other, InteractionKind::Note)
            .at(at)
            .build()
            .unwrap();
        assert!(!note.is_contact());

        let err = Interaction::builder(c, Channel::Web, InteractionKind::Purchase)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), Some("occurred_at"));
        let err = Interaction::builder(c, Channel::Web, InteractionKind::Purchase)
            .at(at)
            .subject(&"s".repeat(999))
            .build()
            .unwrap_err();
        assert_eq!(err.field(), Some("subject"));
        let err = Interaction::builder(c, Channel::Web, InteractionKind::Purchase)
            .at(at)
            .key("ERP", "1")
            .build()
            .unwrap_err();
        assert_eq!(err.field(), Some("source"));
    }
}
