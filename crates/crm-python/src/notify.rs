//! Notifications through the outbox, delivered by a Python callable; domain events to
//! another.

use std::sync::Arc;

use async_trait::async_trait;
use crm::notify::{
    Directory, DispatchReport, Dispatcher, DomainEvent, Envelope, EventSink, Notifier,
    StaticDirectory,
};
use crm::notify::{Locale, StaffMember};
use crm::{CustomerId, EmailAddress, Notification, Recipient, TeamId, TenantId, UserId};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use uuid::Uuid;

use crate::errors::{invalid, to_py, DeliveryRefused};
use crate::tenant::Tenant;

/// Calls `callable` with `value` (serialised, then parsed by Python's `json`) on tokio's
/// blocking pool, holding the GIL only there. `DeliveryRefused` raised by it is a
/// permanent failure, any other exception a transient one.
async fn call(callable: &Py<PyAny>, value: String) -> crm::Result<()> {
    let callable = Python::attach(|py| callable.clone_ref(py));
    let outcome = tokio::task::spawn_blocking(move || {
        Python::attach(|py| -> PyResult<()> {
            let parsed = py.import("json")?.call_method1("loads", (value,))?;
            callable.call1(py, (parsed,))?;
            Ok(())
        })
        .map_err(|e| Python::attach(|py| (e.is_instance_of::<DeliveryRefused>(py), e.to_string())))
    })
    .await
    .map_err(|e| crm::Error::notify(false, e.to_string()))?;
    outcome.map_err(|(permanent, message)| {
        crm::Error::notify(permanent, format!("the Python callable raised {message}"))
    })
}

/// A notifier that hands each envelope, as a dict, to a Python callable.
struct PyNotifier(Py<PyAny>);

#[async_trait]
impl Notifier for PyNotifier {
    async fn notify(&self, _tenant: TenantId, envelope: &Envelope) -> crm::Result<()> {
        let text =
            serde_json::to_string(envelope).map_err(|e| crm::Error::encoding("an envelope", e))?;
        call(&self.0, text).await
    }
}

/// An event sink that hands each domain event, as a dict, to a Python callable.
struct PySink(Py<PyAny>);

#[async_trait]
impl EventSink for PySink {
    async fn deliver(&self, event: &DomainEvent) -> crm::Result<()> {
        let text = serde_json::to_string(event).map_err(|e| crm::Error::encoding("an event", e))?;
        call(&self.0, text).await
    }
}

/// A staff member from what the staff callable returned for `user`: `None`, or a dict
/// with `name` and `email`, and optionally `locale`, `team` and `team_lead` (UUIDs).
fn staff_member(user: UserId, found: &Bound<'_, PyAny>) -> PyResult<Option<StaffMember>> {
    if found.is_none() {
        return Ok(None);
    }
    let field = |name: &str| found.get_item(name).ok().filter(|v| !v.is_none());
    let text = |name: &str| -> PyResult<Option<String>> {
        field(name)
            .map(|v| v.extract::<String>())
            .transpose()
            .map_err(|_| invalid(&format!("staff.{name}"), "not a str"))
    };
    let id = |name: &str| -> PyResult<Option<Uuid>> {
        field(name)
            .map(|v| v.extract::<Uuid>())
            .transpose()
            .map_err(|_| invalid(&format!("staff.{name}"), "not a uuid.UUID"))
    };
    let name = text("name")?.ok_or_else(|| invalid("staff.name", "missing"))?;
    let email = text("email")?.ok_or_else(|| invalid("staff.email", "missing"))?;
    Ok(Some(StaffMember {
        id: user,
        name,
        email: EmailAddress::parse_field(&email, "staff.email").map_err(to_py)?,
        locale: text("locale")?
            .map(|l| Locale::parse(&l).map_err(|e| invalid("staff.locale", e.to_string())))
            .transpose()?,
        team: id("team")?.map(TeamId::from_uuid),
        team_lead: id("team_lead")?.map(UserId::from_uuid),
    }))
}

/// The staff directory over a Python callable: `staff(user_id)` returns `None` or a dict
/// (see [`staff_member`]). It runs on tokio's blocking pool, holding the GIL only there.
/// An exception of the callable is a transient failure of the message (retried); an
/// answer that is not such a dict, a permanent one.
struct PyDirectory(Py<PyAny>);

#[async_trait]
impl Directory for PyDirectory {
    async fn staff_member(
        &self,
        _tenant: TenantId,
        user: UserId,
    ) -> crm::Result<Option<StaffMember>> {
        let callable = Python::attach(|py| self.0.clone_ref(py));
        tokio::task::spawn_blocking(move || {
            Python::attach(|py| {
                // An exception of the callable may pass (a directory that is down): retried.
                let found = callable.call1(py, (user.as_uuid(),)).map_err(|e| {
                    crm::Error::notify(false, format!("the staff callable raised {e}"))
                })?;
                // A malformed answer stays malformed: a permanent failure.
                staff_member(user, found.bind(py))
                    .map_err(|e| crm::Error::validation("staff", e.to_string()))
            })
        })
        .await
        .map_err(|e| crm::Error::notify(false, e.to_string()))?
    }
}

/// The teams of `users` from the staff callable (for scorecards by team), asked once each.
pub(crate) fn teams_of(
    py: Python<'_>,
    staff: &Py<PyAny>,
    users: impl IntoIterator<Item = UserId>,
) -> PyResult<std::collections::BTreeMap<UserId, TeamId>> {
    let mut out = std::collections::BTreeMap::new();
    for user in users {
        let found = staff.call1(py, (user.as_uuid(),))?;
        if let Some(team) = staff_member(user, found.bind(py))?.and_then(|m| m.team) {
            out.insert(user, team);
        }
    }
    Ok(out)
}

#[pymethods]
impl Tenant {
    /// Queues a notification to a customer (at the email address of their record) in the
    /// outbox: `template` names the message, `data` fills it, `key` makes queueing it
    /// twice queue it once. Returns how many were queued (0 or 1).
    #[pyo3(signature = (customer, template, key, *, data=None))]
    fn notify_customer(
        &self,
        py: Python<'_>,
        customer: Uuid,
        template: &str,
        key: &str,
        data: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<usize> {
        let data = match data {
            Some(d) => crate::types::json_value(d, "data")?,
            None => serde_json::Value::Null,
        };
        let mut builder = Notification::builder(
            Recipient::Customer(CustomerId::from_uuid(customer)),
            template,
            key,
        );
        if !data.is_null() {
            builder = builder.data(data);
        }
        let notification = builder.build().map_err(to_py)?;
        let report = self.run(py, |t| async move {
            t.notifications().enqueue(vec![notification]).await
        })?;
        Ok(report.enqueued)
    }

    /// How many messages (notifications and events) wait in the outbox.
    fn pending(&self, py: Python<'_>) -> PyResult<u64> {
        self.run_crm(py, |crm, tenant| async move {
            crm.storage().pending_count(tenant).await
        })
    }

    /// Delivers what is due in the outbox: each notification, as a dict (the message and
    /// the resolved address), to `notifier`; each domain event (with `Crm.open_*(...,
    /// events=True)`), as a dict, to `events`. A callable that raises `DeliveryRefused`
    /// makes the message a dead letter; any other exception schedules a retry.
    ///
    /// `staff` is the staff directory that notifications to staff (KPI alerts, task
    /// reminders, escalations to a team lead) are addressed through: called with a user's
    /// `uuid.UUID`, it returns `None` (no such user: the message is a dead letter) or a
    /// dict with `name`, `email` and optionally `locale`, `team` and `team_lead` (UUIDs).
    /// A dict's `get` will do. Without it, only customers and literal addresses are
    /// reached. Returns the counts: `sent`, `retried`, `dead`.
    #[pyo3(signature = (notifier, *, events=None, staff=None))]
    fn dispatch(
        &self,
        py: Python<'_>,
        notifier: Py<PyAny>,
        events: Option<Py<PyAny>>,
        staff: Option<Py<PyAny>>,
    ) -> PyResult<std::collections::BTreeMap<&'static str, usize>> {
        let (t, runtime) = self.parts();
        let crm = t.crm().clone();
        let directory: Arc<dyn Directory> = match staff {
            Some(staff) => Arc::new(PyDirectory(staff)),
            None => Arc::new(StaticDirectory::new()),
        };
        let mut dispatcher = Dispatcher::new(
            t.id(),
            crm.storage().clone(),
            Arc::new(PyNotifier(notifier)),
            directory,
            Arc::new(crm::SystemClock),
        );
        if let Some(sink) = events {
            dispatcher = dispatcher.with_event_sink(Arc::new(PySink(sink)));
        }
        let report = py
            .detach(move || {
                runtime.block_on(async move {
                    let mut total = DispatchReport::default();
                    loop {
                        let round = dispatcher.run_once(crm.now()).await?;
                        total += round;
                        if round.claimed == 0 {
                            return Ok::<_, crm::Error>(total);
                        }
                    }
                })
            })
            .map_err(to_py)?;
        Ok([
            ("sent", report.sent),
            ("retried", report.retried),
            ("dead", report.dead),
        ]
        .into_iter()
        .collect())
    }
}
