//! Notifications through the outbox, delivered by a Python callable; domain events to
//! another.

use std::sync::Arc;

use async_trait::async_trait;
use crm::notify::{
    Directory, DispatchReport, Dispatcher, DomainEvent, Envelope, EventSink, Notifier,
    StaticDirectory,
};
use crm::{CustomerId, Notification, Recipient, TenantId};
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
        let data: serde_json::Value = match data {
            Some(d) => {
                let text: String = py.import("json")?.call_method1("dumps", (d,))?.extract()?;
                serde_json::from_str(&text).map_err(|e| invalid("data", e.to_string()))?
            }
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
    /// makes the message a dead letter; any other exception schedules a retry. Returns the
    /// counts: `sent`, `retried`, `dead`.
    #[pyo3(signature = (notifier, *, events=None))]
    fn dispatch(
        &self,
        py: Python<'_>,
        notifier: Py<PyAny>,
        events: Option<Py<PyAny>>,
    ) -> PyResult<std::collections::BTreeMap<&'static str, usize>> {
        let (t, runtime) = self.parts();
        let crm = t.crm().clone();
        let directory: Arc<dyn Directory> = Arc::new(StaticDirectory::new());
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
