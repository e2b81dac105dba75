//! Conversions and error mapping shared by the store's modules.

use crm_core::Error;
use tokio_postgres::error::SqlState;

use tokio_postgres::types::ToSql;

use crate::dialect::Postgres;
use crate::BACKEND;

crm_sql::codec!(BACKEND);

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
    filters: Vec<(&str, crm_sql::Value)>,
    extra: &str,
    limit: u32,
) -> Result<Vec<T>, Error> {
    let sql = crm_sql::records_page(&Postgres, table, tenant, after, filters, extra, limit);
    query(client, sql)
        .await?
        .iter()
        .map(|r| {
            let text: &str = r.try_get(0).map_err(|e| Error::storage(BACKEND, e))?;
            json(text, table)
        })
        .collect()
}

/// A parameter of the driver.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// The driver's parameter of a value bound by `crm_sql`.
pub(crate) fn param(v: crm_sql::Value) -> Param {
    use crm_sql::Value;
    match v {
        Value::Text(t) => Box::new(t),
        Value::Real(r) => Box::new(r),
        Value::Integer(i) => Box::new(i),
        Value::Bool(b) => Box::new(b),
        Value::Bytes(b) => Box::new(b),
        Value::TextArray(a) => Box::new(a),
    }
}

/// Runs SQL built by `crm_sql`; its rows.
pub(crate) async fn query(
    client: &impl deadpool_postgres::GenericClient,
    sql: crm_sql::Sql,
) -> Result<Vec<tokio_postgres::Row>, Error> {
    let params: Vec<Param> = sql.params.into_iter().map(param).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    client
        .query(&sql.text, &refs)
        .await
        .map_err(|e| Error::storage(BACKEND, e))
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
