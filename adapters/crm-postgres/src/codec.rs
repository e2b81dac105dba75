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

/// The version of the row keyed `(tenant, key)` in `table`, `None` if there is none: what a
/// versioned write that changed nothing reports (see [`Error::stale_write`]).
pub(crate) async fn stored_version(
    client: &impl deadpool_postgres::GenericClient,
    table: &str,
    key_column: &str,
    tenant: &[u8],
    key: &(dyn tokio_postgres::types::ToSql + Sync),
) -> Result<Option<u64>, Error> {
    let row = client
        .query_opt(
            &format!("SELECT version FROM {table} WHERE tenant_id = $1 AND {key_column} = $2"),
            &[&tenant, key],
        )
        .await
        .map_err(|e| Error::storage(BACKEND, e))?;
    row.map(|r| r.try_get::<_, i64>(0).map(|v| v as u64))
        .transpose()
        .map_err(|e| Error::storage(BACKEND, e))
}

/// One page of JSON `record`s of `table` for `tenant`, by id after `after`, with each
/// `(column, value)` filter and the `extra` SQL condition (trusted text, no input).
pub(crate) async fn list_records<T: serde::de::DeserializeOwned>(
    client: &impl deadpool_postgres::GenericClient,
    table: &str,
    tenant: &[u8],
    after: Option<[u8; 16]>,
    filters: &[(&str, &(dyn tokio_postgres::types::ToSql + Sync))],
    extra: &str,
    limit: u32,
) -> Result<Vec<T>, Error> {
    let after = after.unwrap_or([0; 16]).to_vec();
    let fetch = i64::from(limit) + 1;
    let mut sql = format!("SELECT record FROM {table} WHERE tenant_id = $1 AND id > $2");
    let mut args: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&tenant, &after];
    for (column, value) in filters {
        args.push(*value);
        sql.push_str(&format!(" AND {column} = ${}", args.len()));
    }
    sql.push_str(extra);
    args.push(&fetch);
    sql.push_str(&format!(" ORDER BY id LIMIT ${}", args.len()));
    let rows = client
        .query(&sql, &args)
        .await
        .map_err(|e| Error::storage(BACKEND, e))?;
    rows.iter()
        .map(|r| {
            let text: &str = r.try_get(0).map_err(|e| Error::storage(BACKEND, e))?;
            json(text, table)
        })
        .collect()
}

/// The JSON `record` of row `id` in `table` for `tenant`, decoded; NotFound naming `entity`.
pub(crate) async fn get_record<T: serde::de::DeserializeOwned>(
    client: &impl deadpool_postgres::GenericClient,
    table: &str,
    entity: &'static str,
    tenant: &[u8],
    id: &[u8; 16],
    shown: impl ToString,
) -> Result<T, Error> {
    let row = client
        .query_opt(
            &format!("SELECT record FROM {table} WHERE tenant_id = $1 AND id = $2"),
            &[&tenant, &id.as_slice()],
        )
        .await
        .map_err(|e| Error::storage(BACKEND, e))?
        .ok_or_else(|| Error::not_found(entity, shown))?;
    json(
        row.try_get(0).map_err(|e| Error::storage(BACKEND, e))?,
        table,
    )
}

/// Where a binary `COPY` for `table` goes: the table itself, or, under row-level security
/// (which `COPY FROM` does not support), a temporary table of the same shape, emptied at
/// commit, that [`unstage`] then moves into `table` with one `INSERT` the policies check.
pub(crate) async fn copy_target(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    rls: bool,
) -> Result<String, Error> {
    if !rls {
        return Ok(table.to_string());
    }
    let stage = format!("crm_stage_{table}");
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DELETE ROWS"
    ))
    .await
    .map_err(crate::storage)?;
    Ok(stage)
}

/// Moves rows copied into the staging table of `table` (see [`copy_target`]) into it.
pub(crate) async fn unstage(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    columns: &str,
    rls: bool,
) -> Result<(), tokio_postgres::Error> {
    if rls {
        tx.execute(
            &format!("INSERT INTO {table} ({columns}) SELECT {columns} FROM crm_stage_{table}"),
            &[],
        )
        .await?;
    }
    Ok(())
}
