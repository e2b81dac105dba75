//! The tasks service.

use std::sync::Arc;

use tracing::instrument;

use super::Ctx;
use crate::access::{Action, RecordKind};
use crate::error::{Error, Result};
use crate::id::TaskId;
use crate::notify::{Notification, OutboxMessage, Priority, Recipient};
use crate::page::{Page, PageRequest};
use crate::ports::{Capability, TaskStore, WriteOptions};
use crate::task::{Task, TaskQuery};

/// Tasks of one tenant and their reminders.
/// From [`TenantCrm::tasks`](super::TenantCrm::tasks).
///
/// On a principal-scoped handle a task is reached when the principal's scope for tasks
/// reaches its assignee, or the owner or unit of the customer it is about
/// ([`Visibility::permits_task`](crate::access::Visibility::permits_task)); lists return
/// only reached tasks, the rest is [`Error::Forbidden`], and reminders are the system
/// handle's job.
#[derive(Clone)]
pub struct Tasks {
    ctx: Ctx,
    task_store: Arc<dyn TaskStore>,
}

debug_by_tenant!(Tasks);

impl Tasks {
    pub(super) fn new(ctx: Ctx, task_store: Arc<dyn TaskStore>) -> Self {
        Tasks { ctx, task_store }
    }

    /// Creates a task (version 1). Errors: validation; [`Error::NotFound`] for an unknown
    /// customer or case; [`Error::Duplicate`].
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, task = %task.id))]
    pub async fn create(&self, mut task: Task) -> Result<Task> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Tasks, "create_task")?;
        self.ctx.check_task(Action::Write, &task).await?;
        if self.ctx.scoped() {
            // A task about a customer the principal does not see would tell it the
            // customer exists.
            let customer = self.ctx.subject_customer(&task).await?;
            self.ctx
                .check(RecordKind::Customers, Action::Read, &customer)
                .await?;
        }
        task.version = 1;
        task.announced_for = None;
        self.task_store.insert_task(tenant, &task).await?;
        Ok(task)
    }

    /// A task. Errors: [`Error::NotFound`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn get(&self, id: TaskId) -> Result<Task> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Tasks, "task")?;
        let task = self.task_store.get_task(tenant, id).await?;
        self.ctx.check_task(Action::Read, &task).await?;
        Ok(task)
    }

    /// Tasks matching `query`, by id.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn list(&self, query: &TaskQuery, page: &PageRequest) -> Result<Page<Task>> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Tasks, "tasks")?;
        page.validate()?;
        self.ctx
            .visible_page(page, |p| async move {
                self.task_store.list_tasks(tenant, query, &p).await
            })
            .await
    }

    /// Moves a task's due time to `until`. Errors: [`Error::NotFound`], [`Error::Conflict`],
    /// validation on `until` if it is not after now or outside the supported range.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn snooze(
        &self,
        id: TaskId,
        expected_version: u64,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Task> {
        self.ctx.need(Capability::Tasks, "snooze_task")?;
        crate::clock::check_instant("until", until)?;
        if until <= self.ctx.now() {
            return Err(Error::validation("until", "must be in the future"));
        }
        self.change_task(id, expected_version, |t| t.snooze(until))
            .await
    }

    /// Completes a task now (a recurring one moves to its next due time).
    /// Errors: [`Error::NotFound`], [`Error::Conflict`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn complete(&self, id: TaskId, expected_version: u64) -> Result<Task> {
        self.ctx.need(Capability::Tasks, "complete_task")?;
        let now = self.ctx.now();
        self.change_task(id, expected_version, |t| t.complete(now))
            .await
    }

    async fn change_task(
        &self,
        id: TaskId,
        expected_version: u64,
        change: impl FnOnce(&mut Task),
    ) -> Result<Task> {
        let tenant = self.ctx.tenant;
        let mut task = self.task_store.get_task(tenant, id).await?;
        self.ctx.check_task(Action::Write, &task).await?;
        if task.version != expected_version {
            return Err(Error::stale_write(
                "task",
                id,
                expected_version,
                Some(task.version),
            ));
        }
        change(&mut task);
        task.version = self.ctx.next_version("task", expected_version)?;
        self.task_store
            .update_task(tenant, &task, expected_version, WriteOptions::new())
            .await?;
        Ok(task)
    }

    /// Announces every task due by `now` exactly once per due time: a `task.due` reminder
    /// to its assignee is queued in the same optimistic transaction that records the
    /// announcement on the task, so concurrent or repeated calls never remind twice.
    /// Returns the tasks announced now.
    ///
    /// Errors: storage errors.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn remind_due(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<Task>> {
        self.ctx.system_only("tasks.remind_due")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Tasks, "remind_due")?;
        let query = TaskQuery {
            needing_reminder_at: Some(now),
            ..TaskQuery::default()
        };
        let mut announced = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let batch = self.task_store.list_tasks(tenant, &query, &page).await?;
            for task in &batch.items {
                let mut next = task.clone();
                next.announced_for = Some(task.due_at);
                next.version = self.ctx.next_version("task", task.version)?;
                let key = format!("task:{}:{}", task.id, task.due_at.timestamp_micros());
                let reminder =
                    Notification::builder(Recipient::User(task.assignee), "task.due", &key)
                        .data(serde_json::json!({
                            "task": task.id,
                            "title": task.title,
                            "subject": task.subject,
                            "due_at": task.due_at,
                        }))
                        .priority(Priority::High)
                        .build()?;
                let outbox = vec![OutboxMessage::new(reminder, self.ctx.now())];
                match self
                    .task_store
                    .update_task(
                        tenant,
                        &next,
                        task.version,
                        WriteOptions::new().outbox(outbox),
                    )
                    .await
                {
                    Ok(()) => announced.push(next),
                    Err(Error::Conflict { .. }) => {} // changed meanwhile: the next call decides
                    Err(other) => return Err(other),
                }
            }
            match batch.next {
                Some(cursor) => page = PageRequest::after(cursor, 500),
                None => return Ok(announced),
            }
        }
    }
}
