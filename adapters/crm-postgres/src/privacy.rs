//! Erasure of a customer's personal data from the rows that hold it.

use std::collections::BTreeSet;

use crm_core::case::Case;
use crm_core::privacy::{erase_case, erase_task};
use crm_core::task::{Task, TaskSubject};
use crm_core::{CaseId, CustomerId, Result};
use deadpool_postgres::Transaction;

use crate::codec::{id_bytes, json, to_json};
use crate::storage;
use crate::tasks::subject_key;

/// Removes the free text of the customer's interactions, cases and tasks, and the titles
/// of its relationships (the record itself is the caller's).
pub(crate) async fn erase_rows(tx: &Transaction<'_>, tenant: &[u8], id: CustomerId) -> Result<()> {
    crate::accounts::anonymise(tx, tenant, id).await?;
    let c = id.as_bytes().as_slice();
    tx.execute(
        "UPDATE interactions SET subject = NULL, body = NULL, attributes = NULL \
         WHERE tenant_id = $1 AND customer_id = $2",
        &[&tenant, &c],
    )
    .await
    .map_err(storage)?;
    let rows = tx
        .query(
            "SELECT id, record FROM cases WHERE tenant_id = $1 AND customer_id = $2",
            &[&tenant, &c],
        )
        .await
        .map_err(storage)?;
    let mut subjects = BTreeSet::from([subject_key(&TaskSubject::Customer(id))]);
    for r in rows {
        let case_id: Vec<u8> = r.get(0);
        let mut case: Case = json(r.get::<_, &str>(1), "case record")?;
        erase_case(&mut case);
        let record = to_json(&case)?;
        tx.execute(
            "UPDATE cases SET record = $3 WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &case_id, &record],
        )
        .await
        .map_err(storage)?;
        subjects.insert(subject_key(&TaskSubject::Case(CaseId::from_bytes(
            id_bytes(case_id)?,
        ))));
    }
    for subject in subjects {
        let rows = tx
            .query(
                "SELECT id, record FROM tasks WHERE tenant_id = $1 AND subject = $2",
                &[&tenant, &subject],
            )
            .await
            .map_err(storage)?;
        for r in rows {
            let mut task: Task = json(r.get::<_, &str>(1), "task record")?;
            erase_task(&mut task);
            let record = to_json(&task)?;
            tx.execute(
                "UPDATE tasks SET record = $3 WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &r.get::<_, Vec<u8>>(0), &record],
            )
            .await
            .map_err(storage)?;
        }
    }
    Ok(())
}

/// Removes the reasons of the ownership changes recorded under `id`.
pub(crate) async fn erase_history(
    tx: &Transaction<'_>,
    tenant: &[u8],
    id: CustomerId,
) -> Result<()> {
    tx.execute(
        "UPDATE ownership_changes SET reason = NULL WHERE tenant_id = $1 AND customer_id = $2",
        &[&tenant, &id.as_bytes().as_slice()],
    )
    .await
    .map_err(storage)?;
    Ok(())
}
