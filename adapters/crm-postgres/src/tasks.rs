//! Follow-up tasks.

use async_trait::async_trait;
use crm_core::task::{Task, TaskQuery, TaskSubject};
use crm_core::WriteOptions;
use crm_core::{Cursor, Error, Page, PageRequest, Result, TaskId, TaskStore, TenantId};

use crm_sql::Value;
use deadpool_postgres::Transaction;

use crate::codec::{get_record, list_records, micros, stored_version, to_json, write_error};
use crate::outbox::write_outbox;
use crate::{storage, PostgresStore};

pub(crate) fn subject_key(subject: &TaskSubject) -> String {
    match subject {
        TaskSubject::Customer(c) => format!("customer:{c}"),
        TaskSubject::Case(c) => format!("case:{c}"),
    }
}

#[async_trait]
impl TaskStore for PostgresStore {
    async fn insert_task(&self, tenant: TenantId, task: &Task) -> Result<()> {
        let record = to_json(task)?;
        let t = tenant.as_bytes().to_vec();
        let (table, subject_id, entity, shown) = match task.subject {
            TaskSubject::Customer(c) => (
                "customers",
                c.as_bytes().to_vec(),
                "customer",
                c.to_string(),
            ),
            TaskSubject::Case(c) => ("cases", c.as_bytes().to_vec(), "case", c.to_string()),
        };
        let client = self.client(tenant).await?;
        let known = client
            .query_opt(
                &format!("SELECT 1 FROM {table} WHERE tenant_id = $1 AND id = $2"),
                &[&t, &subject_id],
            )
            .await
            .map_err(storage)?;
        if known.is_none() {
            return Err(Error::not_found(entity, shown));
        }
        client
            .execute(
                "INSERT INTO tasks (tenant_id, id, assignee, subject, open, due_at, announced, \
                 version, record) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &t,
                    &task.id.as_bytes().as_slice(),
                    &task.assignee.as_bytes().as_slice(),
                    &subject_key(&task.subject),
                    &task.is_open(),
                    &micros(task.due_at),
                    &(task.announced_for == Some(task.due_at)),
                    &(task.version as i64),
                    &record,
                ],
            )
            .await
            .map_err(|e| write_error(e, "task", || format!("id {}", task.id)))?;
        Ok(())
    }

    async fn get_task(&self, tenant: TenantId, id: TaskId) -> Result<Task> {
        let client = self.client(tenant).await?;
        get_record(
            &client,
            "tasks",
            "task",
            tenant.as_bytes(),
            id.as_bytes(),
            id,
        )
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
        let t = tenant.as_bytes().to_vec();
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            replace(&tx, &t, task, &record, expected_version).await?;
            write_outbox(&tx, tenant, &outbox).await?;
            tx.commit().await.map_err(storage)
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
        let mut filters = Vec::new();
        if let Some(a) = query.assignee {
            filters.push(("assignee", Value::Bytes(a.as_bytes().to_vec())));
        }
        if let Some(s) = &query.subject {
            filters.push(("subject", Value::Text(subject_key(s))));
        }
        let mut extra = String::new();
        if query.open_only {
            extra.push_str(" AND open");
        }
        if let Some(now) = query.needing_reminder_at {
            // A number formatted by us, not input text.
            extra.push_str(&format!(
                " AND open AND NOT announced AND due_at <= {}",
                micros(now)
            ));
        }
        let client = self.client(tenant).await?;
        let t = tenant.as_bytes().as_slice();
        let after = after.map(|a| *a.as_bytes());
        let tasks: Vec<Task> =
            list_records(&client, "tasks", t, after, filters, &extra, page.limit).await?;
        Ok(Page::from_overfetch(tasks, page.limit, |t| {
            Cursor::task(t.id)
        }))
    }
}

/// Replaces a task still at `expected_version`, inside the caller's transaction.
pub(crate) async fn replace(
    tx: &Transaction<'_>,
    tenant: &[u8],
    task: &Task,
    record: &str,
    expected_version: u64,
) -> Result<()> {
    let id = task.id.as_bytes().to_vec();
    let changed = tx
        .execute(
            "UPDATE tasks SET assignee = $3, subject = $4, open = $5, due_at = $6, \
             announced = $7, version = $8, record = $9 \
             WHERE tenant_id = $1 AND id = $2 AND version = $10",
            &[
                &tenant,
                &id,
                &task.assignee.as_bytes().as_slice(),
                &subject_key(&task.subject),
                &task.is_open(),
                &micros(task.due_at),
                &(task.announced_for == Some(task.due_at)),
                &(task.version as i64),
                &record,
                &(expected_version as i64),
            ],
        )
        .await
        .map_err(storage)?;
    if changed == 0 {
        let actual = stored_version(tx, "tasks", "id", tenant, &id).await?;
        return Err(Error::stale_write(
            "task",
            task.id,
            expected_version,
            actual,
        ));
    }
    Ok(())
}
