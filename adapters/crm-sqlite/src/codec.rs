//! Column conversions and error mapping shared by the store's modules.

use chrono::{DateTime, Utc};
use crm_core::Error;
use rusqlite::ErrorCode;

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

/// Maps a write error: a unique or primary-key violation is `Duplicate` (with `key` saying
/// which), anything else is `Storage`.
pub(crate) fn write_error(
    e: rusqlite::Error,
    entity: &'static str,
    key: impl FnOnce() -> String,
) -> Error {
    if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
        Error::Duplicate { entity, key: key() }
    } else {
        Error::storage(BACKEND, e)
    }
}

/// The version of the row keyed `(tenant, key)` in `table`, `None` if there is none: what a
/// versioned write that changed nothing reports (see [`Error::stale_write`]).
pub(crate) fn stored_version(
    conn: &rusqlite::Connection,
    table: &str,
    key_column: &str,
    tenant: &[u8],
    key: &dyn rusqlite::ToSql,
) -> Result<Option<u64>, Error> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        &format!("SELECT version FROM {table} WHERE tenant_id = ?1 AND {key_column} = ?2"),
        rusqlite::params![tenant, key],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|v| v.map(|v| v as u64))
    .map_err(|e| Error::storage(BACKEND, e))
}

/// One page of JSON `record`s of `table` for `tenant`, by id after `after`, with each
/// `(column, value)` filter and the `extra` SQL condition (trusted text, no input).
pub(crate) fn list_records<T: serde::de::DeserializeOwned>(
    conn: &rusqlite::Connection,
    table: &str,
    tenant: &[u8],
    after: Option<[u8; 16]>,
    filters: Vec<(&str, rusqlite::types::Value)>,
    extra: &str,
    limit: u32,
) -> Result<Vec<T>, Error> {
    use rusqlite::types::Value;
    let mut sql = format!("SELECT record FROM {table} WHERE tenant_id = ?1 AND id > ?2");
    let mut args = vec![
        Value::Blob(tenant.to_vec()),
        Value::Blob(after.unwrap_or([0; 16]).to_vec()),
    ];
    for (column, value) in filters {
        args.push(value);
        sql.push_str(&format!(" AND {column} = ?{}", args.len()));
    }
    sql.push_str(extra);
    args.push(Value::Integer(i64::from(limit) + 1));
    sql.push_str(&format!(" ORDER BY id LIMIT ?{}", args.len()));
    let rows: Vec<String> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(rusqlite::params_from_iter(args), |r| r.get(0))?
                .collect()
        })
        .map_err(|e| Error::storage(BACKEND, e))?;
    rows.iter().map(|text| json(text, table)).collect()
}

/// The JSON `record` of row `id` in `table` for `tenant`, decoded; NotFound naming `entity`.
pub(crate) fn get_record<T: serde::de::DeserializeOwned>(
    conn: &rusqlite::Connection,
    table: &str,
    entity: &'static str,
    tenant: &[u8],
    id: &[u8; 16],
    shown: impl ToString,
) -> Result<T, Error> {
    use rusqlite::OptionalExtension;
    let record: Option<String> = conn
        .prepare_cached(&format!(
            "SELECT record FROM {table} WHERE tenant_id = ?1 AND id = ?2"
        ))
        .and_then(|mut s| {
            s.query_row(rusqlite::params![tenant, id.as_slice()], |r| r.get(0))
                .optional()
        })
        .map_err(|e| Error::storage(BACKEND, e))?;
    match record {
        Some(text) => json(&text, table),
        None => Err(Error::not_found(entity, shown)),
    }
}
