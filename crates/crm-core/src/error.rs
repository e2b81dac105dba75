//! The one error type of the core, with kinds a host can `match` on.

use std::error::Error as StdError;

/// A boxed error from a driver or transport, kept as the `source` of an [`Error`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core or in an adapter, by kind.
///
/// Adapters map their driver errors into these kinds (a unique violation is
/// [`Error::Duplicate`], a stale version is [`Error::Conflict`]) and keep the driver
/// error as the `source`, so a host can match on the kind without parsing strings.
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
    /// A record with the same unique key already exists.
    #[error("{entity} with {key} already exists")]
    Duplicate {
        /// Kind of entity.
        entity: &'static str,
        /// The key that collided, as text.
        key: String,
    },
    /// The storage backend failed; the driver error is kept as the source.
    #[error("storage backend {backend} failed")]
    Storage {
        /// Name of the backend (`sqlite`, `postgres`, `memory`, ...).
        backend: &'static str,
        /// The underlying driver error.
        #[source]
        source: BoxError,
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

    /// A [`Error::Notify`], permanent or transient, wrapping a transport error.
    pub fn notify(permanent: bool, source: impl Into<BoxError>) -> Self {
        Error::Notify {
            permanent,
            source: source.into(),
        }
    }

    /// Whether trying the same operation again later may succeed: a transient delivery
    /// failure, a storage failure, a concurrent change, or contention.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Notify {
                permanent: false,
                ..
            } | Error::Storage { .. }
                | Error::Conflict { .. }
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
