//! The records as Python objects: read-only, with `repr`, and Python types for their
//! values (`uuid.UUID`, aware `datetime` in UTC, `decimal.Decimal`, `dict`).

use crm::chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use crm::rust_decimal::Decimal;
use crm::{AttrValue, Money};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use uuid::Uuid;

use crate::errors::invalid;

/// An instant from Python: an aware `datetime` (any offset, stored in UTC). A naive one is
/// refused, since its zone is a guess.
pub fn instant(value: &Bound<'_, PyAny>, field: &str) -> PyResult<DateTime<Utc>> {
    let tz = value.getattr("tzinfo").ok();
    if tz.as_ref().is_none_or(|t| t.is_none()) {
        return Err(invalid(
            field,
            "a naive datetime: give one with a time zone (for example datetime.now(timezone.utc))",
        ));
    }
    let aware: DateTime<FixedOffset> = value
        .extract()
        .map_err(|e| invalid(field, format!("not a datetime: {e}")))?;
    Ok(aware.with_timezone(&Utc))
}

/// A customer record.
#[pyclass(module = "crm_core", frozen, eq, skip_from_py_object)]
#[derive(Clone, PartialEq)]
pub struct Customer {
    pub(crate) inner: crm::Customer,
}

#[pymethods]
impl Customer {
    /// Its id.
    #[getter]
    fn id(&self) -> Uuid {
        self.inner.id.as_uuid()
    }
    /// Its display name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name.as_str()
    }
    /// `person` or `organization`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner.kind {
            crm::PartyKind::Person => "person",
            crm::PartyKind::Organization => "organization",
        }
    }
    /// Email addresses, the first the primary one.
    #[getter]
    fn emails(&self) -> Vec<String> {
        self.inner
            .emails
            .iter()
            .map(|e| e.as_str().to_string())
            .collect()
    }
    /// Phone numbers in E.164 form.
    #[getter]
    fn phones(&self) -> Vec<String> {
        self.inner
            .phones
            .iter()
            .map(|p| p.as_str().to_string())
            .collect()
    }
    /// Lifecycle stage: lead, prospect, active, at_risk or churned.
    #[getter]
    fn lifecycle(&self) -> &'static str {
        self.inner.lifecycle.as_str()
    }
    /// The owning user's id, if owned.
    #[getter]
    fn owner(&self) -> Option<Uuid> {
        self.inner.owner.map(|u| u.as_uuid())
    }
    /// Tags, sorted.
    #[getter]
    fn tags(&self) -> Vec<String> {
        self.inner
            .tags
            .iter()
            .map(|t| t.as_str().to_string())
            .collect()
    }
    /// Custom attributes: text, `Decimal`, bool, `date`, a list of texts, or money as
    /// `(Decimal, currency)`.
    #[getter]
    fn attributes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        attributes_to_py(py, &self.inner.attributes)
    }
    /// The version, for updates (each change adds one).
    #[getter]
    fn version(&self) -> u64 {
        self.inner.version
    }
    /// When it was registered (UTC).
    #[getter]
    fn created_at(&self) -> DateTime<Utc> {
        self.inner.created_at
    }
    /// When it last changed (UTC).
    #[getter]
    fn updated_at(&self) -> DateTime<Utc> {
        self.inner.updated_at
    }
    fn __repr__(&self) -> String {
        format!(
            "Customer(id={}, name={:?}, kind={:?}, lifecycle={:?}, version={})",
            self.inner.id,
            self.inner.name.as_str(),
            self.kind(),
            self.lifecycle(),
            self.inner.version
        )
    }
}

/// Custom attributes as a `dict`.
fn attributes_to_py<'py>(
    py: Python<'py>,
    attributes: &crm::Attributes,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (key, value) in attributes.iter() {
        out.set_item(key.as_str(), attribute_to_py(py, value)?)?;
    }
    Ok(out)
}

fn attribute_to_py<'py>(py: Python<'py>, value: &AttrValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        AttrValue::Text(t) => t.into_pyobject(py)?.into_any(),
        AttrValue::Number(n) => n.into_pyobject(py)?.into_any(),
        AttrValue::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        AttrValue::Date(d) => d.into_pyobject(py)?.into_any(),
        AttrValue::Money(m) => PyTuple::new(
            py,
            [
                m.amount().into_pyobject(py)?.into_any(),
                m.currency().to_string().into_pyobject(py)?.into_any(),
            ],
        )?
        .into_any(),
        AttrValue::TextList(items) => PyList::new(py, items)?.into_any(),
    })
}

/// A Python value as an attribute value (see [`Customer::attributes`]).
pub fn attribute_from_py(key: &str, value: &Bound<'_, PyAny>) -> PyResult<AttrValue> {
    let field = format!("attributes.{key}");
    if let Ok(b) = value.cast::<pyo3::types::PyBool>() {
        return Ok(AttrValue::Bool(b.is_true()));
    }
    if let Ok(text) = value.extract::<String>() {
        return Ok(AttrValue::Text(text));
    }
    if value.is_instance_of::<pyo3::types::PyFloat>() {
        return Err(invalid(
            &field,
            "a float: give a decimal.Decimal or an int, so the number is exact",
        ));
    }
    if let Ok(n) = value.extract::<Decimal>() {
        return Ok(AttrValue::Number(n));
    }
    if value.is_instance_of::<pyo3::types::PyDateTime>() {
        return Err(invalid(&field, "a datetime: attributes hold dates"));
    }
    if let Ok(d) = value.extract::<NaiveDate>() {
        return Ok(AttrValue::Date(d));
    }
    if let Ok((amount, currency)) = value.extract::<(Decimal, String)>() {
        return Ok(AttrValue::Money(
            Money::new(amount, &currency).map_err(crate::errors::to_py)?,
        ));
    }
    if let Ok(items) = value.extract::<Vec<String>>() {
        return Ok(AttrValue::TextList(items));
    }
    Err(invalid(
        &field,
        "not a str, Decimal, int, bool, date, list of str or (Decimal, currency)",
    ))
}

/// One contact with a customer, or a purchase.
#[pyclass(module = "crm_core", frozen, eq, skip_from_py_object)]
#[derive(Clone, PartialEq)]
pub struct Interaction {
    pub(crate) inner: crm::Interaction,
}

#[pymethods]
impl Interaction {
    /// Its id.
    #[getter]
    fn id(&self) -> Uuid {
        self.inner.id.as_uuid()
    }
    /// The customer's id.
    #[getter]
    fn customer(&self) -> Uuid {
        self.inner.customer.as_uuid()
    }
    /// The channel: email, phone, web, store, ...
    #[getter]
    fn channel(&self) -> &'static str {
        self.inner.channel.as_str()
    }
    /// The kind: purchase, call, email, complaint, ...
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.as_str()
    }
    /// inbound, outbound or internal.
    #[getter]
    fn direction(&self) -> &'static str {
        self.inner.direction.as_str()
    }
    /// Who handled it, if known.
    #[getter]
    fn handled_by(&self) -> Option<Uuid> {
        self.inner.handled_by.map(|u| u.as_uuid())
    }
    /// When it happened (UTC).
    #[getter]
    fn occurred_at(&self) -> DateTime<Utc> {
        self.inner.occurred_at
    }
    /// The amount, for a purchase.
    #[getter]
    fn amount(&self) -> Option<Decimal> {
        self.inner.amount.as_ref().map(|m| m.amount())
    }
    /// The amount's ISO 4217 currency.
    #[getter]
    fn currency(&self) -> Option<String> {
        self.inner.amount.as_ref().map(|m| m.currency().to_string())
    }
    /// The subject line, if any.
    #[getter]
    fn subject(&self) -> Option<&str> {
        self.inner.subject.as_deref()
    }
    /// The text, if any.
    #[getter]
    fn body(&self) -> Option<&str> {
        self.inner.body.as_deref()
    }
    /// How long it took (a call), in seconds.
    #[getter]
    fn duration_secs(&self) -> Option<u32> {
        self.inner.duration_secs
    }
    /// How long the customer waited for an answer, in seconds.
    #[getter]
    fn wait_secs(&self) -> Option<u32> {
        self.inner.wait_secs
    }
    /// The case it belongs to, if any.
    #[getter]
    fn case(&self) -> Option<Uuid> {
        self.inner.case.map(|c| c.as_uuid())
    }
    /// Custom attributes, as for customers.
    #[getter]
    fn attributes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        attributes_to_py(py, &self.inner.attributes)
    }
    /// Its idempotency key as `(source, id)`: logging it again stores nothing.
    #[getter]
    fn key(&self) -> (String, String) {
        (
            self.inner.key.source().as_str().to_string(),
            self.inner.key.external_id().to_string(),
        )
    }
    fn __repr__(&self) -> String {
        let amount = match &self.inner.amount {
            Some(m) => format!(", amount={} {}", m.amount(), m.currency()),
            None => String::new(),
        };
        format!(
            "Interaction(kind={:?}, channel={:?}, occurred_at={}{amount})",
            self.kind(),
            self.channel(),
            self.inner.occurred_at.to_rfc3339()
        )
    }
}

/// A customer's profile: counts and dates from every interaction, kept exact.
#[pyclass(module = "crm_core", frozen)]
pub struct Profile {
    pub(crate) inner: crm::Profile,
}

#[pymethods]
impl Profile {
    /// Interactions of every kind.
    #[getter]
    fn interaction_count(&self) -> u64 {
        self.inner.interaction_count
    }
    /// Purchases.
    #[getter]
    fn purchase_count(&self) -> u64 {
        self.inner.purchase_count
    }
    /// Complaints.
    #[getter]
    fn complaint_count(&self) -> u64 {
        self.inner.complaint_count
    }
    /// The first contact (UTC).
    #[getter]
    fn first_contact_at(&self) -> Option<DateTime<Utc>> {
        self.inner.first_contact_at
    }
    /// The last contact (UTC).
    #[getter]
    fn last_contact_at(&self) -> Option<DateTime<Utc>> {
        self.inner.last_contact_at
    }
    /// The last purchase (UTC).
    #[getter]
    fn last_purchase_at(&self) -> Option<DateTime<Utc>> {
        self.inner.last_purchase_at
    }
    /// Revenue per currency, exact.
    #[getter]
    fn revenue(&self) -> std::collections::BTreeMap<String, Decimal> {
        self.inner
            .revenue
            .iter()
            .map(|(c, a)| (c.to_string(), *a))
            .collect()
    }
    fn __repr__(&self) -> String {
        format!(
            "Profile(interaction_count={}, purchase_count={}, revenue={:?})",
            self.inner.interaction_count,
            self.inner.purchase_count,
            self.revenue()
        )
    }
}

/// What logging a batch did.
#[pyclass(module = "crm_core", frozen, get_all)]
pub struct BatchReport {
    /// Interactions stored.
    pub inserted: usize,
    /// Interactions already stored under the same key (nothing written for them).
    pub duplicates: usize,
}

#[pymethods]
impl BatchReport {
    fn __repr__(&self) -> String {
        format!(
            "BatchReport(inserted={}, duplicates={})",
            self.inserted, self.duplicates
        )
    }
}

/// A page of a timeline: its items, and the cursor of the next page (`None` at the end).
#[pyclass(module = "crm_core", frozen, get_all)]
pub struct TimelinePage {
    /// Newest first.
    pub items: Vec<Interaction>,
    /// Pass it as `after` for the next page.
    pub next: Option<String>,
}

#[pymethods]
impl TimelinePage {
    fn __repr__(&self) -> String {
        format!(
            "TimelinePage({} items, next={:?})",
            self.items.len(),
            self.next
        )
    }
}

/// A value the core serialises, as Python values: through Python's `json`, so a struct
/// becomes a `dict` (ids and instants as text).
pub fn to_python<'py>(
    py: Python<'py>,
    value: &impl serde::Serialize,
    what: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| crate::errors::StorageError::new_err(format!("cannot encode {what}: {e}")))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// A Python value (a `dict`, a list, a str) as JSON, for a value of the core's serde
/// form. It goes through `json.dumps` with `default=str`, so `uuid.UUID`,
/// `decimal.Decimal` and `date` values cross as their text. Errors: `ValidationError` on
/// `field`.
pub fn json_value(value: &Bound<'_, PyAny>, field: &str) -> PyResult<serde_json::Value> {
    let py = value.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("default", py.get_type::<pyo3::types::PyString>())?;
    let text: String = py
        .import("json")?
        .call_method("dumps", (value,), Some(&kwargs))
        .map_err(|e| invalid(field, format!("not JSON-like: {e}")))?
        .extract()?;
    serde_json::from_str(&text).map_err(|e| invalid(field, e.to_string()))
}

/// One of the names of a serde enum of the core (`service_request`, `urgent`), for
/// `field`.
pub fn named<T: serde::de::DeserializeOwned>(text: &str, field: &str) -> PyResult<T> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|e| invalid(field, e.to_string()))
}
