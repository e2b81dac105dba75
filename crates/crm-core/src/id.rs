//! Identifiers: newtypes over UUIDv7, so ids sort by creation time and cannot be mixed up.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $entity:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered id (UUIDv7) from the system clock and a random tail.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (for ids made elsewhere, or read back from storage).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// Builds an id from its 16 bytes (as adapters store it).
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// The 16 bytes of the id, in the order that sorts like the UUID.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// Parses the hyphenated text form; the error names `field`.
            pub fn parse_field(text: &str, field: &str) -> Result<Self, Error> {
                Uuid::parse_str(text)
                    .map(Self)
                    .map_err(|e| Error::validation(field, format!("not a UUID: {e}")))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::parse_field(s, $entity)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

uuid_id!(
    /// A tenant: one company using the CRM. Every storage call is scoped by it.
    TenantId, "tenant_id"
);
uuid_id!(
    /// A customer record (person or organisation).
    CustomerId, "customer_id"
);
uuid_id!(
    /// One recorded interaction with a customer.
    InteractionId, "interaction_id"
);
uuid_id!(
    /// A staff member of the tenant (an owner, a handler of interactions).
    UserId, "user_id"
);
uuid_id!(
    /// A team of staff members.
    TeamId, "team_id"
);
uuid_id!(
    /// A stored segment of customers.
    SegmentId, "segment_id"
);
uuid_id!(
    /// A service case (complaint, service request, inquiry).
    CaseId, "case_id"
);
uuid_id!(
    /// A follow-up task or reminder.
    TaskId, "task_id"
);
uuid_id!(
    /// A sales pipeline: an ordered list of stages.
    PipelineId, "pipeline_id"
);
uuid_id!(
    /// A sales opportunity (a deal).
    OpportunityId, "opportunity_id"
);
uuid_id!(
    /// A notification in the outbox.
    MessageId, "message_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_and_round_trip() {
        let a = CustomerId::new();
        let b = CustomerId::new();
        assert!(a < b, "UUIDv7 ids created later sort later");
        let parsed: CustomerId = a.to_string().parse().unwrap();
        assert_eq!(parsed, a);
        assert_eq!(CustomerId::from_bytes(*a.as_bytes()), a);
    }

    #[test]
    fn bad_id_text_names_the_field() {
        let err = "nope".parse::<TenantId>().unwrap_err();
        assert_eq!(err.field(), Some("tenant_id"));
    }
}
