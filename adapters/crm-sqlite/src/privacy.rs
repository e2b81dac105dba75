//! Erasure of a customer's personal data from the rows that hold it.

use std::collections::BTreeSet;

use crm_core::case::Case;
use crm_core::privacy::{erase_case, erase_task};
use crm_core::task::{Task, TaskSubject};
use crm_core::{CaseId, CustomerId, Result};
use rusqlite::{params, Transaction};

use crate::codec::{id_bytes, json, to_json};
use crate::storage;
use crate::tasks::subject_key;

/// Removes the free text of the customer's interactions, cases and tasks, and the titles
/// of its relationships (the record itself is the caller's).
pub(crate) fn erase_rows(tx: &Transaction<'_>, tenant: &[u8], id: CustomerId) -> Result<()> {
    crate::accounts::anonymise(tx, tenant, id)?;
    let c = id.as_bytes().as_slice();
    tx.prepare_cached(
        "UPDATE interactions SET subject = NULL, body = NULL, attributes = NULL \
         WHERE tenant_id = ?1 AND customer_id = ?2",
    )
    .and_then(|mut s| s.execute(params![tenant, c]))
    .map_err(storage)?;
    let rows: Vec<(Vec<u8>, String)> = tx
        .prepare_cached("SELECT id, record FROM cases WHERE tenant_id = ?1 AND customer_id = ?2")
        .and_then(|mut s| {
            s.query_map(params![tenant, c], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(storage)?;
    let mut subjects = BTreeSet::from([subject_key(&TaskSubject::Customer(id))]);
    for (case_id, record) in rows {
        let mut case: Case = json(&record, "case record")?;
        erase_case(&mut case);
        let record = to_json(&case)?;
        tx.prepare_cached("UPDATE cases SET record = ?3 WHERE tenant_id = ?1 AND id = ?2")
            .and_then(|mut s| s.execute(params![tenant, case_id, record]))
            .map_err(storage)?;
        subjects.insert(subject_key(&TaskSubject::Case(CaseId::from_bytes(
            id_bytes(case_id)?,
        ))));
    }
    for subject in subjects {
        let rows: Vec<(Vec<u8>, String)> = tx
            .prepare_cached("SELECT id, record FROM tasks WHERE tenant_id = ?1 AND subject = ?2")
            .and_then(|mut s| {
                s.query_map(params![tenant, subject], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(storage)?;
        for (task_id, record) in rows {
            let mut task: Task = json(&record, "task record")?;
            erase_task(&mut task);
            let record = to_json(&task)?;
            tx.prepare_cached("UPDATE tasks SET record = ?3 WHERE tenant_id = ?1 AND id = ?2")
                .and_then(|mut s| s.execute(params![tenant, task_id, record]))
                .map_err(storage)?;
        }
    }
    Ok(())
}

/// Removes the reasons of the ownership changes recorded under `id`.
pub(crate) fn erase_history(tx: &Transaction<'_>, tenant: &[u8], id: CustomerId) -> Result<()> {
    tx.prepare_cached(
        "UPDATE ownership_changes SET reason = NULL WHERE tenant_id = ?1 AND customer_id = ?2",
    )
    .and_then(|mut s| s.execute(params![tenant, id.as_bytes().as_slice()]))
    .map_err(storage)?;
    Ok(())
}
