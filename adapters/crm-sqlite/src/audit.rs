//! The audit trail table.

use crm_core::audit::AuditEntry;
use crm_core::{CustomerId, Result};
use rusqlite::{params, Connection};

use crate::codec::{json, to_json};
use crate::storage;

/// Records an entry (in the caller's transaction).
pub(crate) fn record(conn: &Connection, tenant: &[u8], entry: &AuditEntry) -> Result<()> {
    let text = to_json(entry)?;
    conn.prepare_cached(
        "INSERT INTO customer_audit (tenant_id, customer_id, version, entry) \
         VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant,
            entry.customer.as_bytes().as_slice(),
            entry.version as i64,
            text
        ])
    })
    .map_err(|e| {
        crate::codec::write_error(e, "audit entry", || {
            format!("{} version {}", entry.customer, entry.version)
        })
    })?;
    Ok(())
}

/// Replaces every entry of a customer by its scrubbed form (after an erasure).
pub(crate) fn scrub(conn: &Connection, tenant: &[u8], customer: CustomerId) -> Result<()> {
    let c = customer.as_bytes().as_slice();
    let rows: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT version, entry FROM customer_audit WHERE tenant_id = ?1 AND customer_id = ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![tenant, c], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(storage)?;
    for (version, text) in rows {
        let entry: AuditEntry = json(&text, "audit entry")?;
        let text = to_json(&entry.scrubbed())?;
        conn.prepare_cached(
            "UPDATE customer_audit SET entry = ?4 WHERE tenant_id = ?1 AND customer_id = ?2 \
             AND version = ?3",
        )
        .and_then(|mut s| s.execute(params![tenant, c, version, text]))
        .map_err(storage)?;
    }
    Ok(())
}

/// A page of a customer's entries, newest first, below version `before`.
pub(crate) fn history(
    conn: &Connection,
    tenant: &[u8],
    customer: CustomerId,
    before: u64,
    fetch: i64,
) -> Result<Vec<AuditEntry>> {
    let rows: Vec<String> = conn
        .prepare_cached(
            "SELECT entry FROM customer_audit WHERE tenant_id = ?1 AND customer_id = ?2 \
             AND version < ?3 ORDER BY version DESC LIMIT ?4",
        )
        .and_then(|mut s| {
            s.query_map(
                params![
                    tenant,
                    customer.as_bytes().as_slice(),
                    i64::try_from(before).unwrap_or(i64::MAX),
                    fetch
                ],
                |r| r.get(0),
            )?
            .collect()
        })
        .map_err(storage)?;
    rows.iter().map(|t| json(t, "audit entry")).collect()
}
