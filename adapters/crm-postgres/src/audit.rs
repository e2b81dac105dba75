//! The audit trail table.

use crm_core::audit::AuditEntry;
use crm_core::{CustomerId, Result};
use deadpool_postgres::GenericClient;

use crate::codec::{json, to_json, write_error};
use crate::storage;

/// Records entries, one statement over arrays (in the caller's transaction).
pub(crate) async fn record(
    client: &impl GenericClient,
    tenant: &[u8],
    entries: &[AuditEntry],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let ids: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| e.customer.as_bytes().to_vec())
        .collect();
    let versions: Vec<i64> = entries.iter().map(|e| e.version as i64).collect();
    let texts = entries.iter().map(to_json).collect::<Result<Vec<_>>>()?;
    client
        .execute(
            "INSERT INTO customer_audit (tenant_id, customer_id, version, entry) \
             SELECT $1, * FROM UNNEST($2::bytea[], $3::int8[], $4::text[])",
            &[&tenant, &ids, &versions, &texts],
        )
        .await
        .map_err(|e| write_error(e, "audit entry", || "customer and version".to_string()))?;
    Ok(())
}

/// Replaces every entry of a customer by its scrubbed form (after an erasure).
pub(crate) async fn scrub(
    client: &impl GenericClient,
    tenant: &[u8],
    customer: CustomerId,
) -> Result<()> {
    let c = customer.as_bytes().to_vec();
    let rows = client
        .query(
            "SELECT version, entry FROM customer_audit WHERE tenant_id = $1 AND customer_id = $2",
            &[&tenant, &c],
        )
        .await
        .map_err(storage)?;
    for r in rows {
        let entry: AuditEntry = json(r.get::<_, &str>(1), "audit entry")?;
        let text = to_json(&entry.scrubbed())?;
        client
            .execute(
                "UPDATE customer_audit SET entry = $4 WHERE tenant_id = $1 AND customer_id = $2 \
                 AND version = $3",
                &[&tenant, &c, &r.get::<_, i64>(0), &text],
            )
            .await
            .map_err(storage)?;
    }
    Ok(())
}

/// A page of a customer's entries, newest first, below version `before`.
pub(crate) async fn history(
    client: &impl GenericClient,
    tenant: &[u8],
    customer: CustomerId,
    before: u64,
    fetch: i64,
) -> Result<Vec<AuditEntry>> {
    let rows = client
        .query(
            "SELECT entry FROM customer_audit WHERE tenant_id = $1 AND customer_id = $2 \
             AND version < $3 ORDER BY version DESC LIMIT $4",
            &[
                &tenant,
                &customer.as_bytes().as_slice(),
                &i64::try_from(before).unwrap_or(i64::MAX),
                &fetch,
            ],
        )
        .await
        .map_err(storage)?;
    rows.iter()
        .map(|r| json(r.get::<_, &str>(0), "audit entry"))
        .collect()
}
