//! Segments by rule text, and personal data (export, erasure), from Python.

use std::str::FromStr;

use crm::segment::{parse, FieldSchema, Segment};
use crm::{Currency, CustomerId, PageRequest, SegmentId};
use pyo3::prelude::*;
use pyo3::types::PyAny;
use uuid::Uuid;

use crate::errors::{invalid, to_py};
use crate::tenant::Tenant;
use crate::types::Customer;

/// The schema rules are checked against: built-in fields, money in `currency`.
fn schema(currency: &str) -> PyResult<FieldSchema> {
    let code = Currency::from_str(currency)
        .map_err(|_| invalid("currency", format!("{currency:?} is not an ISO 4217 code")))?;
    Ok(FieldSchema::new(code))
}

/// Rule text parsed and checked; errors name `rule` with the line and column.
fn rule(text: &str, schema: &FieldSchema) -> PyResult<crm::segment::Rule> {
    let rule = parse(text).map_err(|e| invalid("rule", e.to_string()))?;
    schema.check(&rule).map_err(to_py)?;
    Ok(rule)
}

#[pymethods]
impl Tenant {
    /// How many customers a rule selects now, and the ids of the first `limit`; stores
    /// nothing. For example `lifecycle = "active" and revenue >= 1000`.
    #[pyo3(signature = (rule, *, currency="EUR", limit=20))]
    fn preview_segment(
        &self,
        py: Python<'_>,
        rule: &str,
        currency: &str,
        limit: u32,
    ) -> PyResult<(u64, Vec<Uuid>)> {
        let schema = self::schema(currency)?;
        let rule = self::rule(rule, &schema)?;
        let (count, page) = self.run(py, |t| async move {
            t.segments()
                .preview(&rule, &schema, &PageRequest::first(limit))
                .await
        })?;
        Ok((count, page.items.iter().map(|c| c.as_uuid()).collect()))
    }

    /// Stores a segment selecting by `rule` and fills it; its id.
    #[pyo3(signature = (name, rule, *, currency="EUR"))]
    fn create_segment(
        &self,
        py: Python<'_>,
        name: &str,
        rule: &str,
        currency: &str,
    ) -> PyResult<Uuid> {
        let schema = self::schema(currency)?;
        let segment = Segment::dynamic(name, self::rule(rule, &schema)?).map_err(to_py)?;
        self.run(py, |t| async move {
            let created = t.segments().create(segment, &schema).await?;
            t.segments().refresh(created.id, &schema).await?;
            Ok(created.id.as_uuid())
        })
    }

    /// Evaluates a segment's rule again: `(entered, left, members)`, the first two lists
    /// of customer ids.
    #[pyo3(signature = (segment, *, currency="EUR"))]
    fn refresh_segment(
        &self,
        py: Python<'_>,
        segment: Uuid,
        currency: &str,
    ) -> PyResult<(Vec<Uuid>, Vec<Uuid>, u64)> {
        let schema = self::schema(currency)?;
        let id = SegmentId::from_uuid(segment);
        let change = self.run(
            py,
            |t| async move { t.segments().refresh(id, &schema).await },
        )?;
        let ids = |list: &[CustomerId]| list.iter().map(|c| c.as_uuid()).collect();
        Ok((ids(&change.entered), ids(&change.left), change.members))
    }

    /// The ids of a segment's members (at most `limit`).
    #[pyo3(signature = (segment, *, limit=1000))]
    fn segment_members(&self, py: Python<'_>, segment: Uuid, limit: u32) -> PyResult<Vec<Uuid>> {
        let id = SegmentId::from_uuid(segment);
        let page = self.run(py, |t| async move {
            t.segments().members(id, &PageRequest::first(limit)).await
        })?;
        Ok(page.items.iter().map(|c| c.as_uuid()).collect())
    }

    /// Everything held about a customer (record, profile, interactions, cases, tasks,
    /// segments, value, ownership history), as the JSON document a data-subject request
    /// answers with, parsed into Python values.
    fn export_customer<'py>(&self, py: Python<'py>, customer: Uuid) -> PyResult<Bound<'py, PyAny>> {
        let id = CustomerId::from_uuid(customer);
        let export = self.run(py, |t| async move { t.privacy().export(id).await })?;
        crate::types::to_python(py, &export, "the export")
    }

    /// Erases a customer's personal data for good; `version` is the version the decision
    /// was taken on (a later change raises `ConflictError`). The record as it now is.
    fn erase_customer(&self, py: Python<'_>, customer: Uuid, version: u64) -> PyResult<Customer> {
        let id = CustomerId::from_uuid(customer);
        let inner = self.run(py, |t| async move { t.privacy().erase(id, version).await })?;
        Ok(Customer { inner })
    }
}
