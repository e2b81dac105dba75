//! One tenant's use cases: customers, interactions, timelines, profiles.

use std::future::Future;
use std::sync::Arc;

use crm::rust_decimal::Decimal;
use crm::{
    AttrValue, Channel, CustomerId, CustomerQuery, Direction, EmailAddress, InteractionKind,
    Lifecycle, Money, PageRequest, PhoneNumber, Tag, TenantCrm, UserId,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use uuid::Uuid;

use crate::errors::{invalid, to_py};
use crate::types::{
    attribute_from_py, instant, BatchReport, Customer, Interaction, Profile, TimelinePage,
};

/// A tenant's handle: everything it reads and writes stays in the tenant.
#[pyclass(module = "crm_core", frozen)]
pub struct Tenant {
    t: TenantCrm,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Tenant {
    pub(crate) fn new(t: TenantCrm, runtime: Arc<tokio::runtime::Runtime>) -> Self {
        Tenant { t, runtime }
    }

    /// The tenant's handle and the runtime.
    pub(crate) fn parts(&self) -> (TenantCrm, Arc<tokio::runtime::Runtime>) {
        (self.t.clone(), self.runtime.clone())
    }

    /// Runs work on the whole CRM for this tenant on the runtime, GIL released.
    pub(crate) fn run_crm<T, F>(
        &self,
        py: Python<'_>,
        work: impl FnOnce(crm::Crm, crm::TenantId) -> F + Send,
    ) -> PyResult<T>
    where
        T: Send,
        F: Future<Output = crm::Result<T>>,
    {
        let (t, runtime) = self.parts();
        let (crm, tenant) = (t.crm().clone(), t.id());
        py.detach(move || runtime.block_on(work(crm, tenant)))
            .map_err(to_py)
    }

    /// Runs a use case on the runtime with the GIL released.
    pub(crate) fn run<T, F>(
        &self,
        py: Python<'_>,
        work: impl FnOnce(TenantCrm) -> F + Send,
    ) -> PyResult<T>
    where
        T: Send,
        F: Future<Output = crm::Result<T>>,
    {
        let t = self.t.clone();
        let runtime = self.runtime.clone();
        py.detach(move || runtime.block_on(work(t))).map_err(to_py)
    }
}

/// The first `limit` items of a paged listing, fetching page after page.
pub(crate) async fn up_to<T, F, Fut>(limit: u32, mut fetch: F) -> crm::Result<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = crm::Result<crm::Page<T>>>,
{
    let mut out = Vec::new();
    let mut page = PageRequest::first(limit.clamp(1, PageRequest::MAX_LIMIT));
    loop {
        let got = fetch(page).await?;
        out.extend(got.items);
        let left = (limit as usize).saturating_sub(out.len());
        match got.next {
            Some(next) if left > 0 => {
                page = PageRequest::after(
                    next,
                    u32::try_from(left)
                        .unwrap_or(u32::MAX)
                        .min(PageRequest::MAX_LIMIT),
                )
            }
            _ => break,
        }
    }
    out.truncate(limit as usize);
    Ok(out)
}

/// The attributes of a `dict`, checked.
fn attributes(dict: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, AttrValue)>> {
    let mut out = Vec::new();
    if let Some(dict) = dict {
        for (key, value) in dict.iter() {
            let key: String = key
                .extract()
                .map_err(|_| invalid("attributes", "keys must be str"))?;
            let value = attribute_from_py(&key, &value)?;
            out.push((key, value));
        }
    }
    Ok(out)
}

/// Each text of `list` parsed, errors naming `field[i]`.
fn each<T>(
    list: &[String],
    field: &str,
    parse: impl Fn(&str, &str) -> crm::Result<T>,
) -> PyResult<Vec<T>> {
    list.iter()
        .enumerate()
        .map(|(i, text)| parse(text, &format!("{field}[{i}]")).map_err(to_py))
        .collect()
}

/// The keys an interaction's dict may have (see `Tenant.log_interaction`).
const INTERACTION_KEYS: &[&str] = &[
    "customer",
    "channel",
    "kind",
    "occurred_at",
    "direction",
    "handled_by",
    "subject",
    "body",
    "amount",
    "currency",
    "duration_secs",
    "wait_secs",
    "case",
    "attributes",
    "key",
];

/// An interaction from a dict with the arguments of `Tenant.log_interaction` (checked by
/// the core's builder); errors name the key. A key of `None` counts as absent.
fn interaction(entry: &Bound<'_, PyDict>) -> PyResult<crm::Interaction> {
    let get = |name: &str| entry.get_item(name).ok().flatten().filter(|v| !v.is_none());
    let text = |name: &str| -> PyResult<Option<String>> {
        get(name)
            .map(|v| v.extract::<String>())
            .transpose()
            .map_err(|_| invalid(name, "not a str"))
    };
    let id = |name: &str| -> PyResult<Option<Uuid>> {
        get(name)
            .map(|v| v.extract::<Uuid>())
            .transpose()
            .map_err(|_| invalid(name, "not a uuid.UUID"))
    };
    let secs = |name: &str| -> PyResult<Option<u32>> {
        get(name)
            .map(|v| v.extract::<u32>())
            .transpose()
            .map_err(|_| invalid(name, "not a whole number of seconds from 0 to 4294967295"))
    };
    // A misspelt key would otherwise be dropped without a word.
    for key in entry.keys() {
        let known = key
            .extract::<String>()
            .ok()
            .filter(|k| INTERACTION_KEYS.contains(&k.as_str()));
        if known.is_none() {
            return Err(invalid(
                &key.str().map(|k| k.to_string()).unwrap_or_default(),
                "not a field of an interaction",
            ));
        }
    }
    let customer = id("customer")?.ok_or_else(|| invalid("customer", "missing"))?;
    let channel = Channel::parse(&text("channel")?.ok_or_else(|| invalid("channel", "missing"))?)
        .map_err(to_py)?;
    let kind = InteractionKind::parse(&text("kind")?.ok_or_else(|| invalid("kind", "missing"))?)
        .map_err(to_py)?;
    let occurred_at = get("occurred_at").ok_or_else(|| invalid("occurred_at", "missing"))?;
    let mut b = crm::Interaction::builder(CustomerId::from_uuid(customer), channel, kind)
        .at(instant(&occurred_at, "occurred_at")?);
    if let Some(d) = text("direction")? {
        b = b.direction(Direction::parse(&d).map_err(to_py)?);
    }
    if let Some(u) = id("handled_by")? {
        b = b.handled_by(UserId::from_uuid(u));
    }
    if let Some(s) = text("subject")? {
        b = b.subject(&s);
    }
    if let Some(s) = text("body")? {
        b = b.body(&s);
    }
    match (get("amount"), text("currency")?) {
        (Some(a), Some(c)) => {
            if a.is_instance_of::<pyo3::types::PyFloat>() {
                return Err(invalid(
                    "amount",
                    "a float: give a decimal.Decimal (or an int), so money stays exact",
                ));
            }
            let a: Decimal = a
                .extract()
                .map_err(|_| invalid("amount", "not a decimal.Decimal"))?;
            b = b.amount(Money::new(a, &c).map_err(to_py)?);
        }
        (None, None) => {}
        _ => return Err(invalid("amount", "give amount and currency together")),
    }
    if let Some(n) = secs("duration_secs")? {
        b = b.duration_secs(n);
    }
    if let Some(n) = secs("wait_secs")? {
        b = b.wait_secs(n);
    }
    if let Some(c) = id("case")? {
        b = b.case(crm::CaseId::from_uuid(c));
    }
    if let Some(dict) = get("attributes") {
        let dict = dict
            .cast::<PyDict>()
            .map_err(|_| invalid("attributes", "not a dict"))?;
        for (key, value) in attributes(Some(dict))? {
            b = b.attribute(&key, value);
        }
    }
    if let Some(key) = get("key") {
        let (source, id): (String, String) = key
            .extract()
            .map_err(|_| invalid("key", "not a (source, id) pair"))?;
        b = b.key(&source, &id);
    }
    b.build().map_err(to_py)
}

#[pymethods]
impl Tenant {
    /// Registers a customer. `kind` is `person` or `organization`; `attributes` maps keys
    /// to str, Decimal, int, bool, date, a list of str, or `(Decimal, currency)`.
    #[pyo3(signature = (name, *, kind="person", emails=None, phones=None, lifecycle=None, tags=None, owner=None, attributes=None, external_id=None))]
    #[allow(clippy::too_many_arguments)]
    fn register_customer(
        &self,
        py: Python<'_>,
        name: &str,
        kind: &str,
        emails: Option<Vec<String>>,
        phones: Option<Vec<String>>,
        lifecycle: Option<&str>,
        tags: Option<Vec<String>>,
        owner: Option<Uuid>,
        attributes: Option<&Bound<'_, PyDict>>,
        external_id: Option<(String, String)>,
    ) -> PyResult<Customer> {
        let mut b = match kind {
            "person" => crm::Customer::person(name),
            "organization" => crm::Customer::organization(name),
            other => {
                return Err(invalid(
                    "kind",
                    format!("{other:?} is not person or organization"),
                ))
            }
        };
        for e in emails.iter().flatten() {
            b = b.email(e);
        }
        for p in phones.iter().flatten() {
            b = b.phone(p);
        }
        if let Some(l) = lifecycle {
            b = b.lifecycle(Lifecycle::parse(l).map_err(to_py)?);
        }
        for t in tags.iter().flatten() {
            b = b.tag(t);
        }
        if let Some(o) = owner {
            b = b.owner(UserId::from_uuid(o));
        }
        for (key, value) in self::attributes(attributes)? {
            b = b.attribute(&key, value);
        }
        if let Some((source, id)) = &external_id {
            b = b.external_id(source, id);
        }
        let draft = b.build().map_err(to_py)?;
        let inner = self.run(py, |t| async move { t.customers().register(draft).await })?;
        Ok(Customer { inner })
    }

    /// The customer with this id (an id merged into another gives the survivor).
    fn get_customer(&self, py: Python<'_>, id: Uuid) -> PyResult<Customer> {
        let id = CustomerId::from_uuid(id);
        let inner = self.run(py, |t| async move { t.customers().get(id).await })?;
        Ok(Customer { inner })
    }

    /// Changes a customer: the fields given replace the record's (`attributes` are set
    /// one by one; a value of `None` removes one). Fails with `ConflictError` when the
    /// record changed since `customer` was read.
    #[pyo3(signature = (customer, *, name=None, lifecycle=None, emails=None, phones=None, tags=None, attributes=None))]
    #[allow(clippy::too_many_arguments)]
    fn update_customer(
        &self,
        py: Python<'_>,
        customer: &Customer,
        name: Option<&str>,
        lifecycle: Option<&str>,
        emails: Option<Vec<String>>,
        phones: Option<Vec<String>>,
        tags: Option<Vec<String>>,
        attributes: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Customer> {
        let mut next = customer.inner.clone();
        if let Some(n) = name {
            next.name = crm::DisplayName::parse_field(n, "name").map_err(to_py)?;
        }
        if let Some(l) = lifecycle {
            next.lifecycle = Lifecycle::parse(l).map_err(to_py)?;
        }
        if let Some(list) = emails {
            next.emails = each(&list, "emails", EmailAddress::parse_field)?;
        }
        if let Some(list) = phones {
            next.phones = each(&list, "phones", PhoneNumber::parse_field)?;
        }
        if let Some(list) = tags {
            next.tags = each(&list, "tags", Tag::parse_field)?.into_iter().collect();
        }
        if let Some(dict) = attributes {
            for (key, value) in dict.iter() {
                let key: String = key
                    .extract()
                    .map_err(|_| invalid("attributes", "keys must be str"))?;
                if value.is_none() {
                    next.attributes.remove(&key);
                } else {
                    let value = attribute_from_py(&key, &value)?;
                    next.attributes.set(&key, value).map_err(to_py)?;
                }
            }
        }
        let inner = self.run(
            py,
            |t| async move { t.customers().update(next, None).await },
        )?;
        Ok(Customer { inner })
    }

    /// Customers matching every filter given, oldest first, at most `limit`.
    #[pyo3(signature = (*, name_prefix=None, email=None, tag=None, owner=None, lifecycle=None, limit=100))]
    #[allow(clippy::too_many_arguments)]
    fn search_customers(
        &self,
        py: Python<'_>,
        name_prefix: Option<String>,
        email: Option<&str>,
        tag: Option<&str>,
        owner: Option<Uuid>,
        lifecycle: Option<&str>,
        limit: u32,
    ) -> PyResult<Vec<Customer>> {
        let query = CustomerQuery {
            name_prefix,
            email: email
                .map(|e| EmailAddress::parse_field(e, "email"))
                .transpose()
                .map_err(to_py)?,
            tag: tag
                .map(|t| Tag::parse_field(t, "tag"))
                .transpose()
                .map_err(to_py)?,
            owner: owner.map(UserId::from_uuid),
            lifecycle: lifecycle.map(Lifecycle::parse).transpose().map_err(to_py)?,
            ..CustomerQuery::all()
        };
        let found = self.run(py, |t| async move {
            let customers = t.customers();
            up_to(limit, |page| {
                let (customers, query) = (&customers, &query);
                async move { customers.search(query, &page).await }
            })
            .await
        })?;
        Ok(found.into_iter().map(|inner| Customer { inner }).collect())
    }

    /// Moves every customer `from_user` owns to `to_user`, recorded in each one's
    /// ownership history; how many moved.
    #[pyo3(signature = (from_user, to_user, *, reason=None))]
    fn transfer_customers(
        &self,
        py: Python<'_>,
        from_user: Uuid,
        to_user: Uuid,
        reason: Option<String>,
    ) -> PyResult<u64> {
        let (from, to) = (UserId::from_uuid(from_user), UserId::from_uuid(to_user));
        self.run(py, |t| async move {
            t.customers()
                .transfer_all(from, Some(to), None, reason.as_deref())
                .await
        })
    }

    /// Logs one interaction. `occurred_at` is an aware datetime; `amount` a Decimal with
    /// its ISO 4217 `currency`; `duration_secs` and `wait_secs` whole seconds (how long a
    /// call took, how long the customer waited for an answer); `case` the case it belongs
    /// to; `attributes` a dict as for customers; `key` a `(source, id)` pair that makes
    /// logging it again store nothing.
    #[pyo3(signature = (customer, channel, kind, *, occurred_at, direction=None, handled_by=None, subject=None, body=None, amount=None, currency=None, duration_secs=None, wait_secs=None, case=None, attributes=None, key=None))]
    #[allow(clippy::too_many_arguments)]
    fn log_interaction(
        &self,
        py: Python<'_>,
        customer: Bound<'_, PyAny>,
        channel: Bound<'_, PyAny>,
        kind: Bound<'_, PyAny>,
        occurred_at: Bound<'_, PyAny>,
        direction: Option<Bound<'_, PyAny>>,
        handled_by: Option<Bound<'_, PyAny>>,
        subject: Option<Bound<'_, PyAny>>,
        body: Option<Bound<'_, PyAny>>,
        amount: Option<Bound<'_, PyAny>>,
        currency: Option<Bound<'_, PyAny>>,
        duration_secs: Option<Bound<'_, PyAny>>,
        wait_secs: Option<Bound<'_, PyAny>>,
        case: Option<Bound<'_, PyAny>>,
        attributes: Option<Bound<'_, PyAny>>,
        key: Option<Bound<'_, PyAny>>,
    ) -> PyResult<BatchReport> {
        let entry = PyDict::new(py);
        let given = [
            ("customer", Some(customer)),
            ("channel", Some(channel)),
            ("kind", Some(kind)),
            ("occurred_at", Some(occurred_at)),
            ("direction", direction),
            ("handled_by", handled_by),
            ("subject", subject),
            ("body", body),
            ("amount", amount),
            ("currency", currency),
            ("duration_secs", duration_secs),
            ("wait_secs", wait_secs),
            ("case", case),
            ("attributes", attributes),
            ("key", key),
        ];
        for (name, value) in given {
            if let Some(value) = value {
                entry.set_item(name, value)?;
            }
        }
        let one = interaction(&entry)?;
        let report = self.run(py, |t| async move { t.interactions().log(one).await })?;
        Ok(BatchReport {
            inserted: report.inserted,
            duplicates: report.duplicates,
        })
    }

    /// Logs many interactions in one transaction: each a dict with the arguments of
    /// `log_interaction` (`customer`, `channel`, `kind`, `occurred_at`, and the optional
    /// ones). One bad entry refuses the batch, naming it (`batch[3].amount`), and nothing
    /// is written.
    fn log_batch(&self, py: Python<'_>, batch: Vec<Bound<'_, PyDict>>) -> PyResult<BatchReport> {
        let mut items = Vec::with_capacity(batch.len());
        for (i, entry) in batch.iter().enumerate() {
            let one = interaction(entry).map_err(|e| {
                let value = e.value(py);
                let field = value
                    .getattr("field")
                    .and_then(|f| f.extract::<String>())
                    .unwrap_or_else(|_| "entry".into());
                let reason = value
                    .getattr("reason")
                    .and_then(|r| r.extract::<String>())
                    .unwrap_or_else(|_| e.to_string());
                invalid(&format!("batch[{i}].{field}"), reason)
            })?;
            items.push(one);
        }
        let report = self.run(
            py,
            |t| async move { t.interactions().log_batch(items).await },
        )?;
        Ok(BatchReport {
            inserted: report.inserted,
            duplicates: report.duplicates,
        })
    }

    /// A customer's interactions, newest first: a page of at most `limit`, and the cursor
    /// of the next (pass it as `after`).
    #[pyo3(signature = (customer, *, limit=50, after=None))]
    fn timeline(
        &self,
        py: Python<'_>,
        customer: Uuid,
        limit: u32,
        after: Option<String>,
    ) -> PyResult<TimelinePage> {
        let id = CustomerId::from_uuid(customer);
        let page = match after {
            Some(cursor) => PageRequest::after(crm::Cursor::from_text(&cursor), limit),
            None => PageRequest::first(limit),
        };
        let got = self.run(
            py,
            |t| async move { t.interactions().timeline(id, &page).await },
        )?;
        Ok(TimelinePage {
            items: got
                .items
                .into_iter()
                .map(|inner| Interaction { inner })
                .collect(),
            next: got.next.map(|c| c.to_string()),
        })
    }

    /// A customer's profile.
    fn profile(&self, py: Python<'_>, customer: Uuid) -> PyResult<Profile> {
        let id = CustomerId::from_uuid(customer);
        let inner = self.run(py, |t| async move { t.customers().profile(id).await })?;
        Ok(Profile { inner })
    }

    /// The tenant's id.
    #[getter]
    fn id(&self) -> Uuid {
        self.t.id().as_uuid()
    }

    fn __repr__(&self) -> String {
        format!("Tenant(id={})", self.t.id())
    }
}
