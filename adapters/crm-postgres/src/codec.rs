//! Conversions and error mapping shared by the store's modules.

use chrono::{DateTime, Utc};
use crm_core::Error;
use tokio_postgres::error::SqlState;

use crate::BACKEND;

pub(crate) fn corrupt(what: impl Into<String>) -> Error {
    crm_core::stored::corrupt(BACKEND, what)
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> Result<DateTime<Utc>, Error> {
    crm_core::stored::from_micros(BACKEND, us)
}

pub(crate) fn opt_from_micros(us: Option<i64>) -> Result<Option<DateTime<Utc>>, Error> {
    us.map(from_micros).transpose()
}

pub(crate) fn id_bytes(blob: Vec<u8>) -> Result<[u8; 16], Error> {
    crm_core::stored::id_bytes(BACKEND, blob)
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("{what}: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::storage(BACKEND, e))
}

/// Maps a write error: a unique violation is `Duplicate` (with `key` saying which),
/// anything else is `Storage`.
pub(crate) fn write_error(
    e: tokio_postgres::Error,
    entity: &'static str,
    key: impl FnOnce() -> String,
) -> Error {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        Error::Duplicate { entity, key: key() }
    } else {
        Error::storage(BACKEND, e)
    }
}
