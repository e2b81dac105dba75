//! The one error type of the core, with kinds a host can `match` on.

use std::error::Error as StdError;

/// A boxed error from a driver or transport, kept as the `source` of an [`Error`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core or in an adapter, by kind.
///
/// Adapters map their driver errors into these kinds (a unique violation is
/// [`Error::Duplicate`], a stale version is [`Error::Conflict`], an undecodable stored
/// value is [`Error::Corrupt`]) and keep the driver error as the `source`, so a host can
/// match on the kind without parsing strings. Each kind says when it occurs and what a
/// caller can do; [`Error::is_transient`] says which are worth retrying unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input was rejected before anything was written. `field` names the offending field
    /// (for example `emails[1]` or `interactions[3].amount.currency`).
    #[error("invalid {field}: {reason}")]
    Validation {
        /// The field that failed validation, as a path.
        field: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The entity does not exist in this tenant.
    #[error("{entity} {id} not found")]
    NotFound {
        /// Kind of entity (`customer`, `interaction`, ...).
        entity: &'static str,
        /// Its id as text.
        id: String,
    },
    /// An optimistic-concurrency check failed: the record changed since it was read.
    /// Retrying the same write cannot succeed (the version stays stale): read the record
    /// again, reapply the change, and write with the new version.
    #[error(
        "{entity} {id} was changed concurrently (expected version {expected}, found {actual})"
    )]
    Conflict {
        /// Kind of entity.
        entity: &'static str,
        /// Its id as text.
        id: String,
        /// The version the caller based its change on.
        expected: u64,
        /// The version currently stored.
        actual: u64,
    },
    /// Concurrent transactions kept getting in each other's way (for example PostgreSQL
    /// serialization failures or deadlocks), still so after the adapter's own retries.
    /// Nothing was written; trying again later may succeed. Unlike [`Error::Conflict`] there
    /// is no stale version to report: the caller's input was not out of date.
    #[error("{backend}: concurrent transactions kept conflicting; nothing was written")]
    Contention {
        /// Which adapter.
        backend: &'static str,
        /// The last driver error.
        #[source]
        source: BoxError,
    },
    /// A record with the same unique key (id, external id, name) already exists: an exact
    /// collision found by the store. Nothing was written.
    #[error("{entity} with {key} already exists")]
    Duplicate {
        /// Kind of entity.
        entity: &'static str,
        /// The key that collided, as text.
        key: String,
    },
    /// Duplicate detection judged the new record to be very likely the same as an existing
    /// one (a heuristic score at or above the blocking threshold, not a key collision).
    /// Nothing was written; merge into `existing`, or register without the check.
    #[error("{entity} is likely the same as {existing} ({rule}, score {score:.2})")]
    LikelyDuplicate {
        /// Kind of entity.
        entity: &'static str,
        /// The id of the existing record it matches best.
        existing: String,
        /// The matching rule that fired.
        rule: String,
        /// The match score, from 0 to 1.
        score: f64,
    },
    /// The storage backend failed (a lost connection, a full disk, a driver error); the
    /// driver error is kept as the source. Trying again later may succeed.
    #[error("storage backend {backend} failed")]
    Storage {
        /// Name of the backend (`sqlite`, `postgres`, `memory`, ...).
        backend: &'static str,
        /// The underlying driver error.
        #[source]
        source: BoxError,
    },
    /// A stored value cannot be decoded: the database was changed outside the adapter, or
    /// is damaged. Retrying cannot help; the record needs repair from a backup or by hand.
    #[error("storage backend {backend} holds a corrupt value: {what}")]
    Corrupt {
        /// Name of the backend.
        backend: &'static str,
        /// What could not be decoded, and why.
        what: String,
    },
    /// Reading input or writing output failed (an import file, an archive writer). What
    /// was written before the failure is reported by the operation's docs.
    #[error("{what}: {source}")]
    Io {
        /// Which input or output.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A value could not be encoded to or decoded from JSON where the core does so itself
    /// (event payloads, exports). A defect of the value's type, not of the input.
    #[error("cannot encode {what}: {source}")]
    Encoding {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: BoxError,
    },
    /// A lease (on an outbox message or a job) is no longer the caller's: it lapsed and was
    /// taken again, or the work it guarded is finished. Drop the work in hand; whoever
    /// holds the lease now completes it.
    #[error("the lease on {entity} {id} was lost")]
    LeaseLost {
        /// Kind of entity leased.
        entity: &'static str,
        /// Its id as text.
        id: String,
    },
    /// The principal of a scoped handle ([`TenantCrm::as_user`](crate::TenantCrm::as_user))
    /// may not do this: its roles do not reach the record, or the operation is not open to
    /// scoped handles. Nothing was read into the answer and nothing was written.
    #[error("not allowed to {action} {record}")]
    Forbidden {
        /// What was refused (`read`, `write`, `transfer`, ..., or an operation's name).
        action: &'static str,
        /// The record, as `customer <id>`, or what was asked for.
        record: String,
    },
    /// The principal of a scoped handle used up a daily quota of its roles (contact
    /// points read, exports): the call is refused, nothing was read into the answer and
    /// nothing was written. The quota is counted per UTC day.
    #[error("the daily quota of {limit} {quota} is used up; it renews at {renews_at}")]
    QuotaExceeded {
        /// Which quota (`contact reads`, `exports`).
        quota: &'static str,
        /// Its daily limit.
        limit: u64,
        /// When the next day's quota starts.
        renews_at: chrono::DateTime<chrono::Utc>,
    },
    /// The storage adapter does not provide this operation (an optional capability it
    /// declares it lacks). Nothing was done.
    #[error("{backend} does not support {operation}")]
    Unsupported {
        /// The operation asked for.
        operation: &'static str,
        /// Name of the backend.
        backend: &'static str,
    },
    /// A notification could not be delivered; the transport error is kept as the source.
    #[error("notification delivery failed ({})", if *permanent { "permanent" } else { "transient" })]
    Notify {
        /// Whether retrying cannot help (an SMTP 5xx reply, a missing template); transient
        /// failures (a 4xx reply, a refused connection, a timeout) are retried.
        permanent: bool,
        /// The underlying transport error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// A [`Error::Validation`] for `field` with `reason`.
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A [`Error::NotFound`] for the entity kind and id.
    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// A [`Error::Forbidden`] for `action` on `record`.
    pub fn forbidden(action: &'static str, record: impl Into<String>) -> Self {
        Error::Forbidden {
            action,
            record: record.into(),
        }
    }

    /// A [`Error::Storage`] wrapping a driver error.
    pub fn storage(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Storage {
            backend,
            source: source.into(),
        }
    }

    /// The error for a versioned write that found the record changed or gone:
    /// [`Error::NotFound`] when `actual` is `None`, else [`Error::Conflict`].
    pub fn stale_write(
        entity: &'static str,
        id: impl ToString,
        expected: u64,
        actual: Option<u64>,
    ) -> Self {
        match actual {
            None => Error::not_found(entity, id),
            Some(actual) => Error::Conflict {
                entity,
                id: id.to_string(),
                expected,
                actual,
            },
        }
    }

    /// A [`Error::Corrupt`] of `backend` saying `what` could not be decoded.
    pub fn corrupt(backend: &'static str, what: impl Into<String>) -> Self {
        Error::Corrupt {
            backend,
            what: what.into(),
        }
    }

    /// An [`Error::Io`] on `what`.
    pub fn io(what: &'static str, source: std::io::Error) -> Self {
        Error::Io { what, source }
    }

    /// An [`Error::Encoding`] of `what`.
    pub fn encoding(what: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Encoding {
            what,
            source: source.into(),
        }
    }

    /// An [`Error::Unsupported`]: `backend` does not provide `operation`.
    pub fn unsupported(operation: &'static str, backend: &'static str) -> Self {
        Error::Unsupported { operation, backend }
    }

    /// A [`Error::Notify`], permanent or transient, wrapping a transport error.
    pub fn notify(permanent: bool, source: impl Into<BoxError>) -> Self {
        Error::Notify {
            permanent,
            source: source.into(),
        }
    }

    /// Whether trying the same operation again later, unchanged, may succeed: a transient
    /// delivery failure, a storage failure, or contention. Not a [`Error::Conflict`]
    /// (the version stays stale), not [`Error::Corrupt`] data, not a lost lease.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Notify {
                permanent: false,
                ..
            } | Error::Storage { .. }
                | Error::Contention { .. }
        )
    }

    /// Whether trying again cannot help (the opposite of [`Error::is_transient`]).
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }

    /// Prefixes the field path of a validation error (`name` becomes `customers[2].name`);
    /// other kinds pass through unchanged.
    pub fn in_field(self, prefix: &str) -> Self {
        match self {
            Error::Validation { field, reason } => Error::Validation {
                field: format!("{prefix}.{field}"),
                reason,
            },
            other => other,
        }
    }

    /// Whether this is a validation error.
    pub fn is_validation(&self) -> bool {
        matches!(self, Error::Validation { .. })
    }

    /// The field path of a validation error.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Validation { field, .. } => Some(field),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_may_succeed_unchanged_is_transient() {
        let io = || std::io::Error::other("x");
        let transient = [
            Error::storage("t", io()),
            Error::notify(false, io()),
            Error::Contention {
                backend: "t",
                source: io().into(),
            },
        ];
        let permanent = [
            Error::stale_write("customer", 1, 1, Some(2)),
            Error::corrupt("t", "record"),
            Error::LeaseLost {
                entity: "message",
                id: "m".into(),
            },
            Error::unsupported("merge_customers", "t"),
            Error::io("import input", io()),
            Error::encoding("an event", io()),
            Error::validation("name", "empty"),
            Error::notify(true, io()),
            Error::LikelyDuplicate {
                entity: "customer",
                existing: "c".into(),
                rule: "email".into(),
                score: 0.97,
            },
        ];
        for e in &transient {
            assert!(e.is_transient(), "{e}");
        }
        for e in &permanent {
            assert!(e.is_permanent(), "{e}");
        }
    }

    #[test]
    fn messages_name_what_happened() {
        assert_eq!(
            Error::unsupported("merge_customers", "memory").to_string(),
            "memory does not support merge_customers"
        );
        assert_eq!(
            Error::corrupt("sqlite", "customer: EOF").to_string(),
            "storage backend sqlite holds a corrupt value: customer: EOF"
        );
    }
}
