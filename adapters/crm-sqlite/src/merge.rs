//! Merging customers: everything of the merged customers moves to the survivor in one
//! immediate transaction, and each merged id leaves a redirect.

use crm_core::case::Case;
use crm_core::merge::CustomerMerge;
use crm_core::task::{Task, TaskSubject};
use crm_core::{CustomerId, Error, Result};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::codec::{id_bytes, json, to_json};
use crate::interactions::{read_profile, write_profile};
use crate::storage;
use crate::tasks::subject_key;

/// Statements that move rows of customer `?2` to customer `?3`.
const MOVE: [&str; 4] = [
    "UPDATE interactions SET customer_id = ?3 WHERE tenant_id = ?1 AND customer_id = ?2",
    "INSERT OR IGNORE INTO segment_members (tenant_id, segment_id, customer_id) \
     SELECT tenant_id, segment_id, ?3 FROM segment_members WHERE tenant_id = ?1 AND customer_id = ?2",
    "UPDATE customer_redirects SET to_id = ?3 WHERE tenant_id = ?1 AND to_id = ?2",
    "INSERT INTO customer_redirects (tenant_id, from_id, to_id) VALUES (?1, ?2, ?3)",
];

/// Statements that then drop customer `?2`'s own rows.
const DROP: [&str; 5] = [
    "DELETE FROM segment_members WHERE tenant_id = ?1 AND customer_id = ?2",
    "DELETE FROM profiles WHERE tenant_id = ?1 AND customer_id = ?2",
    "DELETE FROM value_scores WHERE tenant_id = ?1 AND customer_id = ?2",
    "DELETE FROM value_classes WHERE tenant_id = ?1 AND customer_id = ?2",
    "DELETE FROM customers WHERE tenant_id = ?1 AND id = ?2",
];

/// Checks every version given against the stored one.
pub(crate) fn check_versions(
    tx: &Transaction<'_>,
    tenant: &[u8],
    merge: &CustomerMerge,
) -> Result<()> {
    let expected = std::iter::once((merge.survivor.id, merge.survivor_version))
        .chain(merge.merged.iter().copied());
    for (id, version) in expected {
        let actual: Option<i64> = tx
            .prepare_cached("SELECT version FROM customers WHERE tenant_id = ?1 AND id = ?2")
            .and_then(|mut s| {
                s.query_row(params![tenant, id.as_bytes().as_slice()], |r| r.get(0))
                    .optional()
            })
            .map_err(storage)?;
        if actual != Some(version as i64) {
            return Err(Error::stale_write(
                "customer",
                id,
                version,
                actual.map(|v| v as u64),
            ));
        }
    }
    Ok(())
}

/// Moves the rows of the merged customers to the survivor (the survivor's own record is
/// written by the caller): profile, interactions, cases, tasks, deals, relationships and the
/// hierarchy, memberships, redirects.
pub(crate) fn move_rows(tx: &Transaction<'_>, tenant: &[u8], merge: &CustomerMerge) -> Result<()> {
    let survivor = merge.survivor.id;
    let s = survivor.as_bytes().as_slice();
    crate::accounts::merge(tx, tenant, merge)?;
    let gone: Vec<CustomerId> = merge.merged.iter().map(|(id, _)| *id).collect();
    crate::sales::move_deals(tx, tenant, &gone, survivor)?;
    let mut profile = read_profile(tx, tenant, survivor)?.unwrap_or_default();
    for (gone, _) in &merge.merged {
        let g = gone.as_bytes().as_slice();
        if let Some(p) = read_profile(tx, tenant, *gone)? {
            profile.merge(&p)?;
        }
        move_cases(tx, tenant, *gone, survivor)?;
        move_tasks(tx, tenant, *gone, survivor)?;
        for sql in MOVE {
            tx.prepare_cached(sql)
                .and_then(|mut st| st.execute(params![tenant, g, s]))
                .map_err(storage)?;
        }
        for sql in DROP {
            tx.prepare_cached(sql)
                .and_then(|mut st| st.execute(params![tenant, g]))
                .map_err(storage)?;
        }
    }
    write_profile(tx, tenant, survivor, &profile)
}

fn move_cases(tx: &Transaction<'_>, tenant: &[u8], from: CustomerId, to: CustomerId) -> Result<()> {
    let rows: Vec<(Vec<u8>, String)> = tx
        .prepare_cached("SELECT id, record FROM cases WHERE tenant_id = ?1 AND customer_id = ?2")
        .and_then(|mut s| {
            s.query_map(params![tenant, from.as_bytes().as_slice()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect()
        })
        .map_err(storage)?;
    for (id, record) in rows {
        let mut case: Case = json(&record, "case record")?;
        case.customer = to;
        let record = to_json(&case)?;
        tx.prepare_cached(
            "UPDATE cases SET customer_id = ?3, record = ?4 WHERE tenant_id = ?1 AND id = ?2",
        )
        .and_then(|mut s| s.execute(params![tenant, id, to.as_bytes().as_slice(), record]))
        .map_err(storage)?;
    }
    Ok(())
}

fn move_tasks(tx: &Transaction<'_>, tenant: &[u8], from: CustomerId, to: CustomerId) -> Result<()> {
    let (old, new) = (
        subject_key(&TaskSubject::Customer(from)),
        subject_key(&TaskSubject::Customer(to)),
    );
    let rows: Vec<(Vec<u8>, String)> = tx
        .prepare_cached("SELECT id, record FROM tasks WHERE tenant_id = ?1 AND subject = ?2")
        .and_then(|mut s| {
            s.query_map(params![tenant, old], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(storage)?;
    for (id, record) in rows {
        let mut task: Task = json(&record, "task record")?;
        task.subject = TaskSubject::Customer(to);
        let record = to_json(&task)?;
        tx.prepare_cached(
            "UPDATE tasks SET subject = ?3, record = ?4 WHERE tenant_id = ?1 AND id = ?2",
        )
        .and_then(|mut s| s.execute(params![tenant, id, new, record]))
        .map_err(storage)?;
    }
    Ok(())
}

/// The survivor a merged id leads to.
pub(crate) fn redirect(
    conn: &rusqlite::Connection,
    tenant: &[u8],
    id: CustomerId,
) -> Result<Option<CustomerId>> {
    let to: Option<Vec<u8>> = conn
        .prepare_cached(
            "SELECT to_id FROM customer_redirects WHERE tenant_id = ?1 AND from_id = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![tenant, id.as_bytes().as_slice()], |r| r.get(0))
                .optional()
        })
        .map_err(storage)?;
    to.map(|b| id_bytes(b).map(CustomerId::from_bytes))
        .transpose()
}

/// The customers merged (directly or through later merges) into `id`.
pub(crate) fn merged_into(
    conn: &rusqlite::Connection,
    tenant: &[u8],
    id: CustomerId,
) -> Result<Vec<CustomerId>> {
    let rows: Vec<Vec<u8>> = conn
        .prepare_cached(
            "SELECT from_id FROM customer_redirects WHERE tenant_id = ?1 AND to_id = ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![tenant, id.as_bytes().as_slice()], |r| r.get(0))?
                .collect()
        })
        .map_err(storage)?;
    rows.into_iter()
        .map(|b| id_bytes(b).map(CustomerId::from_bytes))
        .collect()
}
