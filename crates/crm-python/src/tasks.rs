//! Follow-up tasks and their reminders, from Python.

use crm::chrono::{DateTime, Utc};
use crm::task::{Task as CoreTask, TaskQuery, TaskSubject};
use crm::{CaseId, CustomerId, TaskId, UserId};
use pyo3::prelude::*;
use uuid::Uuid;

use crate::errors::{invalid, to_py};
use crate::tenant::{up_to, Tenant};
use crate::types::instant;

/// A follow-up task: what to do, about which customer or case, by whom, by when.
#[pyclass(module = "crm_core", frozen, eq, skip_from_py_object)]
#[derive(Clone, PartialEq)]
pub struct Task {
    pub(crate) inner: CoreTask,
}

#[pymethods]
impl Task {
    /// Its id.
    #[getter]
    fn id(&self) -> Uuid {
        self.inner.id.as_uuid()
    }
    /// The customer's id, for a task about a customer.
    #[getter]
    fn customer(&self) -> Option<Uuid> {
        match self.inner.subject {
            TaskSubject::Customer(c) => Some(c.as_uuid()),
            TaskSubject::Case(_) => None,
        }
    }
    /// The case's id, for a task about a case.
    #[getter]
    fn case(&self) -> Option<Uuid> {
        match self.inner.subject {
            TaskSubject::Case(c) => Some(c.as_uuid()),
            TaskSubject::Customer(_) => None,
        }
    }
    /// What to do.
    #[getter]
    fn title(&self) -> &str {
        &self.inner.title
    }
    /// Who does it.
    #[getter]
    fn assignee(&self) -> Uuid {
        self.inner.assignee.as_uuid()
    }
    /// When it is due (UTC); snoozing moves it, and so does completing a recurring task.
    #[getter]
    fn due_at(&self) -> DateTime<Utc> {
        self.inner.due_at
    }
    /// For a recurring task, the days from one completion to the next due time.
    #[getter]
    fn every_days(&self) -> Option<u32> {
        self.inner.every_days
    }
    /// When it was completed for good (UTC); `None` while open.
    #[getter]
    fn done_at(&self) -> Option<DateTime<Utc>> {
        self.inner.done_at
    }
    /// Whether it is still to do.
    #[getter]
    fn is_open(&self) -> bool {
        self.inner.is_open()
    }
    /// The version, for snoozing and completing (each change adds one).
    #[getter]
    fn version(&self) -> u64 {
        self.inner.version
    }
    fn __repr__(&self) -> String {
        format!(
            "Task(id={}, title={:?}, due_at={}, open={}, version={})",
            self.inner.id,
            self.inner.title,
            self.inner.due_at.to_rfc3339(),
            if self.inner.is_open() {
                "True"
            } else {
                "False"
            },
            self.inner.version
        )
    }
}

/// What a task is about: exactly one of `customer` and `case`.
fn subject(customer: Option<Uuid>, case: Option<Uuid>) -> PyResult<Option<TaskSubject>> {
    match (customer, case) {
        (Some(c), None) => Ok(Some(TaskSubject::Customer(CustomerId::from_uuid(c)))),
        (None, Some(c)) => Ok(Some(TaskSubject::Case(CaseId::from_uuid(c)))),
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(invalid("case", "give customer or case, not both")),
    }
}

#[pymethods]
impl Tenant {
    /// Creates a task for `assignee` about a customer or a case (exactly one of the two),
    /// due at `due_at` (an aware datetime). With `every_days`, completing it makes it due
    /// again that many days later.
    #[pyo3(signature = (title, assignee, due_at, *, customer=None, case=None, every_days=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_task(
        &self,
        py: Python<'_>,
        title: &str,
        assignee: Uuid,
        due_at: &Bound<'_, PyAny>,
        customer: Option<Uuid>,
        case: Option<Uuid>,
        every_days: Option<u32>,
    ) -> PyResult<Task> {
        let subject =
            subject(customer, case)?.ok_or_else(|| invalid("customer", "give customer or case"))?;
        let mut task = CoreTask::new(
            subject,
            title,
            UserId::from_uuid(assignee),
            instant(due_at, "due_at")?,
        )
        .map_err(to_py)?;
        if let Some(days) = every_days {
            task = task.every_days(days).map_err(to_py)?;
        }
        let inner = self.run(py, |t| async move { t.tasks().create(task).await })?;
        Ok(Task { inner })
    }

    /// The task with this id.
    fn get_task(&self, py: Python<'_>, id: Uuid) -> PyResult<Task> {
        let id = TaskId::from_uuid(id);
        let inner = self.run(py, |t| async move { t.tasks().get(id).await })?;
        Ok(Task { inner })
    }

    /// Tasks matching every filter given (an assignee; a customer or a case; only open
    /// ones), at most `limit`.
    #[pyo3(signature = (*, assignee=None, customer=None, case=None, open_only=false, limit=100))]
    #[allow(clippy::too_many_arguments)]
    fn list_tasks(
        &self,
        py: Python<'_>,
        assignee: Option<Uuid>,
        customer: Option<Uuid>,
        case: Option<Uuid>,
        open_only: bool,
        limit: u32,
    ) -> PyResult<Vec<Task>> {
        let query = TaskQuery {
            assignee: assignee.map(UserId::from_uuid),
            subject: subject(customer, case)?,
            open_only,
            needing_reminder_at: None,
        };
        let found = self.run(py, |t| async move {
            let tasks = t.tasks();
            up_to(limit, |page| {
                let (tasks, query) = (&tasks, &query);
                async move { tasks.list(query, &page).await }
            })
            .await
        })?;
        Ok(found.into_iter().map(|inner| Task { inner }).collect())
    }

    /// Moves `task` (as last read: a change since raises `ConflictError`) to be due at
    /// `until`, which must be in the future. The task as it now is.
    fn snooze_task(&self, py: Python<'_>, task: &Task, until: &Bound<'_, PyAny>) -> PyResult<Task> {
        let until = instant(until, "until")?;
        let (id, version) = (task.inner.id, task.inner.version);
        let inner = self.run(
            py,
            |t| async move { t.tasks().snooze(id, version, until).await },
        )?;
        Ok(Task { inner })
    }

    /// Completes `task` (as last read) now; a recurring one becomes due again. The task as
    /// it now is.
    fn complete_task(&self, py: Python<'_>, task: &Task) -> PyResult<Task> {
        let (id, version) = (task.inner.id, task.inner.version);
        let inner = self.run(py, |t| async move { t.tasks().complete(id, version).await })?;
        Ok(Task { inner })
    }

    /// Queues a `task.due` reminder to the assignee of every open task due by `now`
    /// (default: the current time), once per due time however often it runs; the tasks
    /// reminded of now. The reminders go out with `dispatch` (they are addressed through
    /// its `staff` callable).
    #[pyo3(signature = (*, now=None))]
    fn remind_due(&self, py: Python<'_>, now: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Task>> {
        let now = now.map(|n| instant(n, "now")).transpose()?;
        let reminded = self.run(py, |t| async move {
            let now = now.unwrap_or_else(|| t.crm().now());
            t.tasks().remind_due(now).await
        })?;
        Ok(reminded.into_iter().map(|inner| Task { inner }).collect())
    }
}
