//! Column conversions and error mapping shared by the store's modules.

use crm_core::Error;
use rusqlite::ffi;

use rusqlite::params_from_iter;

use crate::dialect::Sqlite;
use crate::BACKEND;

crm_sql::codec!(BACKEND);

/// Maps a write error: a unique or primary-key violation is `Duplicate` (with `key` saying
/// which); any other constraint (`NOT NULL`, `CHECK`, a foreign key) and everything else is
/// `Storage`, keeping SQLite's message.
pub(crate) fn write_error(
    e: rusqlite::Error,
    entity: &'static str,
    key: impl FnOnce() -> String,
) -> Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            Error::Duplicate { entity, key: key() }
        }
        _ => Error::storage(BACKEND, e),
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
    filters: Vec<(&str, crm_sql::Value)>,
    extra: &str,
    limit: u32,
) -> Result<Vec<T>, Error> {
    let sql = crm_sql::records_page(&Sqlite, table, tenant, after, filters, extra, limit);
    let rows: Vec<String> = conn
        .prepare_cached(&sql.text)
        .and_then(|mut s| {
            s.query_map(params_from_iter(sql.params.into_iter().map(value)), |r| {
                r.get(0)
            })?
            .collect()
        })
        .map_err(|e| Error::storage(BACKEND, e))?;
    rows.iter().map(|text| json(text, table)).collect()
}

/// The driver's value of a value bound by `crm_sql`.
pub(crate) fn value(v: crm_sql::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        crm_sql::Value::Text(t) => Value::Text(t),
        crm_sql::Value::Real(r) => r.map_or(Value::Null, Value::Real),
        crm_sql::Value::Integer(i) => Value::Integer(i),
        crm_sql::Value::Bool(b) => Value::Integer(i64::from(b)),
        crm_sql::Value::Bytes(b) => Value::Blob(b),
        // The dialect binds paths as text; an array has no SQLite form.
        crm_sql::Value::TextArray(_) => Value::Null,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(sql: &str) -> rusqlite::Error {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (k INTEGER PRIMARY KEY, u TEXT UNIQUE, n TEXT NOT NULL, \
             c INTEGER CHECK (c > 0)); INSERT INTO t VALUES (1, 'a', 'x', 1);",
        )
        .unwrap();
        conn.execute(sql, []).unwrap_err()
    }

    #[test]
    fn only_key_collisions_are_duplicates() {
        for sql in [
            "INSERT INTO t VALUES (1, 'b', 'x', 1)",
            "INSERT INTO t VALUES (2, 'a', 'x', 1)",
        ] {
            let e = write_error(failing(sql), "thing", || "k".into());
            assert!(
                matches!(
                    e,
                    Error::Duplicate {
                        entity: "thing",
                        ..
                    }
                ),
                "{sql}: {e:?}"
            );
        }
        for sql in [
            "INSERT INTO t VALUES (2, 'b', NULL, 1)",
            "INSERT INTO t VALUES (2, 'b', 'x', 0)",
        ] {
            let e = write_error(failing(sql), "thing", || "k".into());
            assert!(
                matches!(
                    e,
                    Error::Storage {
                        backend: "sqlite",
                        ..
                    }
                ),
                "{sql}: {e:?}"
            );
        }
    }
}
