//! Follow-up tasks.

use async_trait::async_trait;
use crm_core::task::{Task, TaskQuery, TaskSubject};
use crm_core::WriteOptions;
use crm_core::{Cursor, Error, Page, PageRequest, Result, TaskId, TaskStore, TenantId};
use rusqlite::{params, Transaction, TransactionBehavior};

use crate::codec::{get_record, list_records, micros, stored_version, to_json, write_error};
use crate::outbox::write_outbox;
use crate::{storage, SqliteStore};

/// The subject as the `subject` column holds it.
pub(crate) fn subject_key(subject: &TaskSubject) -> String {
    match subject {
        TaskSubject::Customer(c) => format!("customer:{c}"),
        TaskSubject::Case(c) => format!("case:{c}"),
    }
}

/// The filter columns of a task: assignee, subject, open, due, announced.
fn columns(t: &Task) -> (Vec<u8>, String, bool, i64, bool) {
    (
        t.assignee.as_bytes().to_vec(),
        subject_key(&t.subject),
        t.is_open(),
        micros(t.due_at),
        t.announced_for == Some(t.due_at),
    )
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn insert_task(&self, tenant: TenantId, task: &Task) -> Result<()> {
        let record = to_json(task)?;
        let t = task.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let tb = tenant.as_bytes().as_slice();
            let (table, id, entity) = match t.subject {
                TaskSubject::Customer(c) => {
                    ("customers", *c.as_bytes(), ("customer", c.to_string()))
                }
                TaskSubject::Case(c) => ("cases", *c.as_bytes(), ("case", c.to_string())),
            };
            let known = tx
                .prepare_cached(&format!(
                    "SELECT 1 FROM {table} WHERE tenant_id = ?1 AND id = ?2"
                ))
                .and_then(|mut s| s.exists(params![tb, id.as_slice()]))
                .map_err(storage)?;
            if !known {
                return Err(Error::not_found(entity.0, entity.1));
            }
            let (assignee, subject, open, due, announced) = columns(&t);
            tx.prepare_cached(
                "INSERT INTO tasks (tenant_id, id, assignee, subject, open, due_at, announced, \
                 version, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tb,
                    t.id.as_bytes().as_slice(),
                    assignee,
                    subject,
                    open,
                    due,
                    announced,
                    t.version as i64,
                    record
                ])
            })
            .map_err(|e| write_error(e, "task", || format!("id {}", t.id)))?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn get_task(&self, tenant: TenantId, id: TaskId) -> Result<Task> {
        self.read(move |conn| {
            get_record(conn, "tasks", "task", tenant.as_bytes(), id.as_bytes(), id)
        })
        .await
    }

    async fn update_task(
        &self,
        tenant: TenantId,
        task: &Task,
        expected_version: u64,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let record = to_json(task)?;
        let t = task.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            replace(&tx, tenant.as_bytes(), &t, &record, expected_version)?;
            write_outbox(&tx, tenant, &outbox)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn list_tasks(
        &self,
        tenant: TenantId,
        query: &TaskQuery,
        page: &PageRequest,
    ) -> Result<Page<Task>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_task).transpose()?;
        let query = query.clone();
        let limit = page.limit;
        self.read(move |conn| {
            let mut filters = Vec::new();
            if let Some(a) = query.assignee {
                filters.push(("assignee", crm_sql::Value::Bytes(a.as_bytes().to_vec())));
            }
            if let Some(s) = &query.subject {
                filters.push(("subject", crm_sql::Value::Text(subject_key(s))));
            }
            let mut extra = String::new();
            if query.open_only {
                extra.push_str(" AND open = 1");
            }
            if let Some(now) = query.needing_reminder_at {
                // A number formatted by us, not input text.
                extra.push_str(&format!(
                    " AND open = 1 AND announced = 0 AND due_at <= {}",
                    micros(now)
                ));
            }
            let t = tenant.as_bytes().as_slice();
            let tasks: Vec<Task> = list_records(
                conn,
                "tasks",
                t,
                after.map(|a| *a.as_bytes()),
                filters,
                &extra,
                limit,
            )?;
            Ok(Page::from_overfetch(tasks, limit, |t| Cursor::task(t.id)))
        })
        .await
    }
}

/// Replaces a task still at `expected_version`, inside the caller's transaction.
pub(crate) fn replace(
    tx: &Transaction<'_>,
    tenant: &[u8],
    t: &Task,
    record: &str,
    expected_version: u64,
) -> Result<()> {
    let id = t.id.as_bytes().as_slice();
    let (assignee, subject, open, due, announced) = columns(t);
    let changed = tx
        .prepare_cached(
            "UPDATE tasks SET assignee = ?3, subject = ?4, open = ?5, due_at = ?6, \
             announced = ?7, version = ?8, record = ?9 \
             WHERE tenant_id = ?1 AND id = ?2 AND version = ?10",
        )
        .and_then(|mut s| {
            s.execute(params![
                tenant,
                id,
                assignee,
                subject,
                open,
                due,
                announced,
                t.version as i64,
                record,
                expected_version as i64
            ])
        })
        .map_err(storage)?;
    if changed == 0 {
        let actual = stored_version(tx, "tasks", "id", tenant, &id)?;
        return Err(Error::stale_write("task", t.id, expected_version, actual));
    }
    Ok(())
}
