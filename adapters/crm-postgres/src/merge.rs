//! Merging customers: everything of the merged customers moves to the survivor in one
//! transaction, and each merged id leaves a redirect.

use std::collections::BTreeMap;

use crm_core::case::Case;
use crm_core::merge::CustomerMerge;
use crm_core::task::{Task, TaskSubject};
use crm_core::{CustomerId, Error, Profile, Result, TenantId};
use deadpool_postgres::Transaction;

use crate::codec::{id_bytes, json, to_json};
use crate::profiles::{fold_lock, lock_profiles, update_profiles};
use crate::storage;
use crate::tasks::subject_key;

/// First key of the advisory lock between batches (shared) and merges (exclusive) of a
/// tenant: a batch cannot add rows for a customer a merge is removing.
pub(crate) const MERGE_LOCK: i32 = 0x6372_6d6d; // "crmm"

/// Takes the tenant's merge lock for the transaction, shared (batches) or exclusive.
pub(crate) async fn merge_lock(tx: &Transaction<'_>, tenant: &[u8], exclusive: bool) -> Result<()> {
    let sql = if exclusive {
        "SELECT pg_advisory_xact_lock($1, hashtext(encode($2, 'hex')))"
    } else {
        "SELECT pg_advisory_xact_lock_shared($1, hashtext(encode($2, 'hex')))"
    };
    tx.execute(sql, &[&MERGE_LOCK, &tenant])
        .await
        .map_err(storage)?;
    Ok(())
}

/// Statements that move rows of customer `$2` to customer `$3`.
const MOVE: [&str; 5] = [
    "UPDATE interactions SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2",
    "UPDATE profile_deltas SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2",
    "INSERT INTO segment_members (tenant_id, segment_id, customer_id) \
     SELECT tenant_id, segment_id, $3 FROM segment_members WHERE tenant_id = $1 \
     AND customer_id = $2 ON CONFLICT DO NOTHING",
    "UPDATE customer_redirects SET to_id = $3 WHERE tenant_id = $1 AND to_id = $2",
    "INSERT INTO customer_redirects (tenant_id, from_id, to_id) VALUES ($1, $2, $3)",
];

/// Statements that then drop customer `$2`'s own rows.
const DROP: [&str; 5] = [
    "DELETE FROM segment_members WHERE tenant_id = $1 AND customer_id = $2",
    "DELETE FROM profiles WHERE tenant_id = $1 AND customer_id = $2",
    "DELETE FROM value_scores WHERE tenant_id = $1 AND customer_id = $2",
    "DELETE FROM value_classes WHERE tenant_id = $1 AND customer_id = $2",
    "DELETE FROM customers WHERE tenant_id = $1 AND id = $2",
];

/// Locks the customers involved (in key order) and checks every version given.
pub(crate) async fn check_versions(
    tx: &Transaction<'_>,
    tenant: &[u8],
    merge: &CustomerMerge,
) -> Result<()> {
    let mut expected: Vec<(CustomerId, u64)> =
        std::iter::once((merge.survivor.id, merge.survivor_version))
            .chain(merge.merged.iter().copied())
            .collect();
    expected.sort();
    let ids: Vec<Vec<u8>> = expected
        .iter()
        .map(|(id, _)| id.as_bytes().to_vec())
        .collect();
    let rows = tx
        .query(
            "SELECT id, version FROM customers WHERE tenant_id = $1 AND id = ANY($2) \
             ORDER BY id FOR UPDATE",
            &[&tenant, &ids],
        )
        .await
        .map_err(storage)?;
    let mut stored = BTreeMap::new();
    for r in &rows {
        stored.insert(
            CustomerId::from_bytes(id_bytes(r.get(0))?),
            r.get::<_, i64>(1) as u64,
        );
    }
    for (id, version) in expected {
        let actual = stored.get(&id).copied();
        if actual != Some(version) {
            return Err(Error::stale_write("customer", id, version, actual));
        }
    }
    Ok(())
}

/// Moves the merged customers' rows to the survivor (whose own record the caller writes),
/// relationships and the organisation hierarchy included.
pub(crate) async fn move_rows(
    tx: &Transaction<'_>,
    tenant: TenantId,
    merge: &CustomerMerge,
) -> Result<()> {
    let t = tenant.as_bytes().as_slice();
    crate::accounts::merge(tx, t, merge).await?;
    // Folds take turns with merges, so no fold is halfway through these profiles.
    fold_lock(tx, t).await?;
    let survivor = merge.survivor.id;
    let all: Vec<CustomerId> = std::iter::once(survivor)
        .chain(merge.merged.iter().map(|(id, _)| *id))
        .collect();
    let stored = lock_profiles(tx, t, &all).await?;
    let mut profile: Profile = stored.get(&survivor).cloned().unwrap_or_default();
    for (gone, _) in &merge.merged {
        if let Some(p) = stored.get(gone) {
            profile.merge(p)?;
        }
    }
    update_profiles(tx, t, &BTreeMap::from([(survivor, profile)])).await?;
    let gone: Vec<CustomerId> = merge.merged.iter().map(|(id, _)| *id).collect();
    crate::sales::move_deals(tx, t, &gone, survivor).await?;
    let s = survivor.as_bytes().to_vec();
    for (gone, _) in &merge.merged {
        let g = gone.as_bytes().to_vec();
        move_cases(tx, t, *gone, survivor).await?;
        move_tasks(tx, t, *gone, survivor).await?;
        for sql in MOVE {
            tx.execute(sql, &[&t, &g, &s]).await.map_err(storage)?;
        }
        for sql in DROP {
            tx.execute(sql, &[&t, &g]).await.map_err(storage)?;
        }
    }
    Ok(())
}

async fn move_cases(
    tx: &Transaction<'_>,
    tenant: &[u8],
    from: CustomerId,
    to: CustomerId,
) -> Result<()> {
    let rows = tx
        .query(
            "SELECT id, record FROM cases WHERE tenant_id = $1 AND customer_id = $2",
            &[&tenant, &from.as_bytes().as_slice()],
        )
        .await
        .map_err(storage)?;
    for r in rows {
        let mut case: Case = json(r.get::<_, &str>(1), "case record")?;
        case.customer = to;
        let record = to_json(&case)?;
        tx.execute(
            "UPDATE cases SET customer_id = $3, record = $4 WHERE tenant_id = $1 AND id = $2",
            &[
                &tenant,
                &r.get::<_, Vec<u8>>(0),
                &to.as_bytes().as_slice(),
                &record,
            ],
        )
        .await
        .map_err(storage)?;
    }
    Ok(())
}

async fn move_tasks(
    tx: &Transaction<'_>,
    tenant: &[u8],
    from: CustomerId,
    to: CustomerId,
) -> Result<()> {
    let (old, new) = (
        subject_key(&TaskSubject::Customer(from)),
        subject_key(&TaskSubject::Customer(to)),
    );
    let rows = tx
        .query(
            "SELECT id, record FROM tasks WHERE tenant_id = $1 AND subject = $2",
            &[&tenant, &old],
        )
        .await
        .map_err(storage)?;
    for r in rows {
        let mut task: Task = json(r.get::<_, &str>(1), "task record")?;
        task.subject = TaskSubject::Customer(to);
        let record = to_json(&task)?;
        tx.execute(
            "UPDATE tasks SET subject = $3, record = $4 WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &r.get::<_, Vec<u8>>(0), &new, &record],
        )
        .await
        .map_err(storage)?;
    }
    Ok(())
}

/// The customers merged (directly or through later merges) into `id`.
pub(crate) async fn merged_into(
    tx: &Transaction<'_>,
    tenant: &[u8],
    id: CustomerId,
) -> Result<Vec<CustomerId>> {
    let rows = tx
        .query(
            "SELECT from_id FROM customer_redirects WHERE tenant_id = $1 AND to_id = $2",
            &[&tenant, &id.as_bytes().as_slice()],
        )
        .await
        .map_err(storage)?;
    rows.into_iter()
        .map(|r| id_bytes(r.get(0)).map(CustomerId::from_bytes))
        .collect()
}
