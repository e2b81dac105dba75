//! Service cases, KPI rules and their evaluation, and scorecards, from Python.

use std::collections::{BTreeMap, BTreeSet};

use crm::case::{Case as CoreCase, CaseEventKind, CaseKind, CaseQuery, CaseStatus};
use crm::chrono::{DateTime, Utc};
use crm::kpi::{scorecard, Group, Grouping, KpiEngine, KpiRule};
use crm::notify::{Priority, TemplateName};
use crm::{CaseId, Channel, CustomerId, UserId};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use uuid::Uuid;

use crate::errors::{invalid, to_py};
use crate::notify::teams_of;
use crate::tenant::{up_to, Tenant};
use crate::types::{instant, json_value, named, to_python};

/// A service case: what it is about, who holds it, where it stands, what happened.
#[pyclass(module = "crm_core", frozen, eq, skip_from_py_object)]
#[derive(Clone, PartialEq)]
pub struct Case {
    pub(crate) inner: CoreCase,
}

#[pymethods]
impl Case {
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
    /// `complaint`, `service_request`, `inquiry`, or a kind the host named.
    #[getter]
    fn kind(&self) -> String {
        match &self.inner.kind {
            CaseKind::Complaint => "complaint".into(),
            CaseKind::ServiceRequest => "service_request".into(),
            CaseKind::Inquiry => "inquiry".into(),
            CaseKind::Other(name) => name.as_str().into(),
        }
    }
    /// The short description.
    #[getter]
    fn subject(&self) -> &str {
        &self.inner.subject
    }
    /// `low`, `normal`, `high` or `urgent`.
    #[getter]
    fn priority(&self) -> &'static str {
        priority_name(self.inner.priority)
    }
    /// The channel it came in on.
    #[getter]
    fn channel(&self) -> &'static str {
        self.inner.channel.as_str()
    }
    /// Who holds it now, if anyone.
    #[getter]
    fn assignee(&self) -> Option<Uuid> {
        self.inner.assignee.map(|u| u.as_uuid())
    }
    /// `new`, `open`, `pending_customer`, `on_hold`, `resolved`, `closed` or `reopened`.
    #[getter]
    fn status(&self) -> &'static str {
        self.inner.status.as_str()
    }
    /// When it was opened (UTC).
    #[getter]
    fn opened_at(&self) -> DateTime<Utc> {
        self.inner.opened_at
    }
    /// The version, for recording events (each change adds one).
    #[getter]
    fn version(&self) -> u64 {
        self.inner.version
    }
    /// What happened, oldest first: dicts with `at` (a datetime), `type` (`opened`,
    /// `public_reply`, `customer_message`, `internal_note`, `status_change`,
    /// `assignment`) and, as the type has them, `by`, `to` (a UUID, or the new status for a
    /// status change) and `reason`.
    #[getter]
    fn events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for event in &self.inner.events {
            let d = PyDict::new(py);
            d.set_item("at", event.at)?;
            let uuid = |u: Option<UserId>| u.map(|u| u.as_uuid());
            match &event.kind {
                CaseEventKind::Opened => d.set_item("type", "opened")?,
                CaseEventKind::CustomerMessage => d.set_item("type", "customer_message")?,
                CaseEventKind::PublicReply { by } => {
                    d.set_item("type", "public_reply")?;
                    d.set_item("by", by.as_uuid())?;
                }
                CaseEventKind::InternalNote { by } => {
                    d.set_item("type", "internal_note")?;
                    d.set_item("by", by.as_uuid())?;
                }
                CaseEventKind::StatusChange { to, by } => {
                    d.set_item("type", "status_change")?;
                    d.set_item("to", to.as_str())?;
                    d.set_item("by", uuid(*by))?;
                }
                CaseEventKind::Assignment { to, by, reason } => {
                    d.set_item("type", "assignment")?;
                    d.set_item("to", uuid(*to))?;
                    d.set_item("by", uuid(*by))?;
                    d.set_item("reason", reason.as_deref())?;
                }
            }
            out.append(d)?;
        }
        Ok(out)
    }
    /// Keys of the KPI warnings and breaches raised on it (each is raised once).
    #[getter]
    fn alerts(&self) -> Vec<String> {
        self.inner.alerts.iter().cloned().collect()
    }
    fn __repr__(&self) -> String {
        format!(
            "Case(id={}, kind={:?}, status={:?}, priority={:?}, subject={:?}, version={})",
            self.inner.id,
            self.kind(),
            self.status(),
            self.priority(),
            self.inner.subject,
            self.inner.version
        )
    }
}

fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

/// One rule's results for one group of a scorecard.
#[pyclass(module = "crm_core", frozen, get_all)]
pub struct ScoreLine {
    /// The rule's key.
    pub rule: String,
    /// `person`, `team`, `unassigned` or `tenant`.
    pub group: &'static str,
    /// The person's or team's id (for `person` and `team`).
    pub who: Option<Uuid>,
    /// Finished measurements: met plus breached.
    pub measured: u32,
    /// Within target.
    pub met: u32,
    /// Over target.
    pub breached: u32,
    /// `met / measured` (1.0 when nothing was measured).
    pub compliance: f64,
    /// Whether compliance reaches the rule's goal.
    pub goal_reached: bool,
    /// Median business seconds of the measurements.
    pub median_secs: Option<i64>,
    /// 90th percentile (nearest rank) of the business seconds.
    pub p90_secs: Option<i64>,
}

#[pymethods]
impl ScoreLine {
    fn __repr__(&self) -> String {
        let who = self.who.map(|w| format!(" {w}")).unwrap_or_default();
        format!(
            "ScoreLine(rule={:?}, group={}{who}, measured={}, met={}, breached={}, compliance={:.3}, goal_reached={})",
            self.rule,
            self.group,
            self.measured,
            self.met,
            self.breached,
            self.compliance,
            if self.goal_reached { "True" } else { "False" }
        )
    }
}

/// A rule of the core's serde form from a `dict`; a case metric given without its
/// `definition` gets the metric's built-in one.
fn kpi_rule(rule: &Bound<'_, PyAny>) -> PyResult<KpiRule> {
    let mut value = json_value(rule, "rule")?;
    if let Some(target) = value
        .get_mut("metric")
        .and_then(|m| m.get_mut("case"))
        .and_then(|c| c.as_object_mut())
    {
        if !target.contains_key("definition") {
            let metric: crm::sla::SlaMetric =
                serde_json::from_value(target.get("metric").cloned().unwrap_or_default())
                    .map_err(|e| invalid("rule.metric.case.metric", e.to_string()))?;
            let definition = serde_json::to_value(metric.definition())
                .map_err(|e| invalid("rule.metric", e.to_string()))?;
            target.insert("definition".into(), definition);
        }
    }
    let rule: KpiRule =
        serde_json::from_value(value).map_err(|e| invalid("rule", e.to_string()))?;
    rule.validate().map_err(to_py)?;
    Ok(rule)
}

#[pymethods]
impl Tenant {
    /// Opens a case for a customer now. `kind` is `complaint`, `service_request`,
    /// `inquiry` or a name of the host's (`warranty`); `priority` `low`, `normal`, `high`
    /// or `urgent`.
    #[pyo3(signature = (customer, subject, *, kind="inquiry", channel="email", priority="normal", assignee=None))]
    #[allow(clippy::too_many_arguments)]
    fn open_case(
        &self,
        py: Python<'_>,
        customer: Uuid,
        subject: &str,
        kind: &str,
        channel: &str,
        priority: &str,
        assignee: Option<Uuid>,
    ) -> PyResult<Case> {
        let kind = match kind {
            "complaint" => CaseKind::Complaint,
            "service_request" => CaseKind::ServiceRequest,
            "inquiry" => CaseKind::Inquiry,
            other => CaseKind::other(other).map_err(to_py)?,
        };
        let channel = Channel::parse(channel).map_err(to_py)?;
        let priority: Priority = named(priority, "priority")?;
        let mut draft = CoreCase::open(
            CustomerId::from_uuid(customer),
            kind,
            subject,
            channel,
            assignee.map(UserId::from_uuid),
            Utc::now(),
        )
        .map_err(to_py)?;
        draft.priority = priority;
        let inner = self.run(py, |t| async move { t.cases().open(draft).await })?;
        Ok(Case { inner })
    }

    /// The case with this id.
    fn get_case(&self, py: Python<'_>, id: Uuid) -> PyResult<Case> {
        let id = CaseId::from_uuid(id);
        let inner = self.run(py, |t| async move { t.cases().get(id).await })?;
        Ok(Case { inner })
    }

    /// Cases matching every filter given, by id, at most `limit`.
    #[pyo3(signature = (*, customer=None, assignee=None, open_only=false, limit=100))]
    fn list_cases(
        &self,
        py: Python<'_>,
        customer: Option<Uuid>,
        assignee: Option<Uuid>,
        open_only: bool,
        limit: u32,
    ) -> PyResult<Vec<Case>> {
        let query = CaseQuery {
            customer: customer.map(CustomerId::from_uuid),
            assignee: assignee.map(UserId::from_uuid),
            open_only,
        };
        let found = self.run(py, |t| async move {
            let cases = t.cases();
            up_to(limit, |page| {
                let (cases, query) = (&cases, &query);
                async move { cases.list(query, &page).await }
            })
            .await
        })?;
        Ok(found.into_iter().map(|inner| Case { inner }).collect())
    }

    /// Records what happened on `case` now; `case` is the record as last read (a change
    /// since raises `ConflictError`). `event` is one of:
    ///
    /// - `public_reply` (staff answered the customer; `by` required),
    /// - `customer_message` (the customer wrote),
    /// - `internal_note` (`by` required),
    /// - `status_change` (`status` required: `open`, `pending_customer`, `on_hold`,
    ///   `resolved`, `closed`, `reopened`; `by` optional),
    /// - `assignment` (to `to`, or to nobody; `by` and `reason` optional).
    ///
    /// The case as it now is.
    #[pyo3(signature = (case, event, *, by=None, to=None, status=None, reason=None))]
    #[allow(clippy::too_many_arguments)]
    fn record_case_event(
        &self,
        py: Python<'_>,
        case: &Case,
        event: &str,
        by: Option<Uuid>,
        to: Option<Uuid>,
        status: Option<&str>,
        reason: Option<String>,
    ) -> PyResult<Case> {
        let by = by.map(UserId::from_uuid);
        let needed = |who: Option<UserId>| who.ok_or_else(|| invalid("by", "required"));
        let kind = match event {
            "public_reply" => CaseEventKind::PublicReply { by: needed(by)? },
            "customer_message" => CaseEventKind::CustomerMessage,
            "internal_note" => CaseEventKind::InternalNote { by: needed(by)? },
            "status_change" => CaseEventKind::StatusChange {
                to: CaseStatus::parse(status.ok_or_else(|| invalid("status", "required"))?)
                    .map_err(to_py)?,
                by,
            },
            "assignment" => CaseEventKind::Assignment {
                to: to.map(UserId::from_uuid),
                by,
                reason,
            },
            other => {
                return Err(invalid(
                    "event",
                    format!(
                        "{other:?} is not public_reply, customer_message, internal_note, \
                         status_change or assignment"
                    ),
                ))
            }
        };
        let (id, version) = (case.inner.id, case.inner.version);
        let inner = self.run(py, |t| async move {
            t.cases().record_event(id, version, kind, Vec::new()).await
        })?;
        Ok(Case { inner })
    }

    /// Stores a KPI rule, a dict in the core's form, for example
    /// `{"key": "first-reply-4h", "name": "First reply within 4 hours", "metric": {"case":
    /// {"metric": "first_reply", "target_secs": 14400, "warn_fraction": 0.75}},
    /// "compliance_goal": 0.9, "on_warning": ["notify_assignee"], "on_breach":
    /// ["notify_team_lead", {"reassign": {"to": lead_id}}]}`. Other metrics:
    /// `{"follow_up_gap": {"max_days": 30, "warn_days": 21}}`, `{"interaction_wait":
    /// {"max_secs": 60}}`, `{"deal": {"measure": "stalled", "max_days": 14, "warn_days":
    /// 10}}`. Optional: `calendar` (`{"time_zone": "Europe/Berlin", "week": {"mon":
    /// [{"start": "08:00", "end": "18:00"}], ...}, "holidays": [...]}`; the default is 24/7
    /// in UTC) and `scope` (`kinds`, `priorities`, `channels`, `lifecycles`, `tags`).
    /// Errors: `ValidationError` naming the field; `DuplicateError` for a key in use.
    fn add_kpi_rule(&self, py: Python<'_>, rule: &Bound<'_, PyAny>) -> PyResult<()> {
        let rule = kpi_rule(rule)?;
        self.run(py, |t| async move { t.kpis().add_rule(rule).await })
    }

    /// Replaces the rule with the same key, last read at `version` (see `kpi_rules`).
    fn update_kpi_rule(
        &self,
        py: Python<'_>,
        rule: &Bound<'_, PyAny>,
        version: u64,
    ) -> PyResult<()> {
        let rule = kpi_rule(rule)?;
        self.run(
            py,
            |t| async move { t.kpis().update_rule(rule, version).await },
        )
    }

    /// Removes the rule with this key.
    fn delete_kpi_rule(&self, py: Python<'_>, key: &str) -> PyResult<()> {
        let key = TemplateName::parse(key).map_err(|e| invalid("key", e.to_string()))?;
        self.run(py, |t| async move { t.kpis().delete_rule(&key).await })
    }

    /// The tenant's KPI rules, by key: dicts in the core's form, each with its `version`.
    fn kpi_rules<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let stored = self.run(py, |t| async move { t.kpis().rules().await })?;
        stored
            .iter()
            .map(|s| {
                let rule = to_python(py, &s.rule, "a rule")?;
                rule.set_item("version", s.version)?;
                Ok(rule)
            })
            .collect()
    }

    /// Evaluates the KPI rules at `now` (default: the current time), raising each new
    /// warning and breach once: notices to the outbox, reassignments, returns to the pool.
    /// A `now` other than the current time is for replays and tests: what the evaluation
    /// stores is stamped at it (a `case.breached` event at a later `now` waits until
    /// then). With `scan`, reads every record instead of only those due. Returns the counts:
    /// `cases`, `customers`, `interactions`, `deals`, `warnings`, `breaches`,
    /// `returned_to_pool`, `conflicts`, ...
    #[pyo3(signature = (*, now=None, scan=false))]
    fn evaluate_kpis<'py>(
        &self,
        py: Python<'py>,
        now: Option<&Bound<'py, PyAny>>,
        scan: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let now = now.map(|n| instant(n, "now")).transpose()?;
        let report = self.run(py, |t| async move {
            let kpis = t.kpis();
            let now = now.unwrap_or_else(|| t.crm().now());
            let engine = kpis.engine().await?;
            if scan {
                kpis.evaluate_scan(&engine, now).await
            } else {
                kpis.evaluate(&engine, now).await
            }
        })?;
        to_python(py, &report, "a KPI report")
    }

    /// The case rules' scorecard: cases opened in `[start, end)`, measured at `now`
    /// (default: the current time), per rule and `grouping` (`person`: who held the case
    /// when each measurement was decided; `team`: their team, from `staff`, the callable
    /// of `dispatch`; `tenant`), with `ranking`, the people by compliance over every rule.
    /// Returns `(lines, ranking)`.
    #[pyo3(signature = (start, end, *, now=None, grouping="person", staff=None))]
    #[allow(clippy::type_complexity)]
    fn scorecard(
        &self,
        py: Python<'_>,
        start: &Bound<'_, PyAny>,
        end: &Bound<'_, PyAny>,
        now: Option<&Bound<'_, PyAny>>,
        grouping: &str,
        staff: Option<Py<PyAny>>,
    ) -> PyResult<(Vec<ScoreLine>, Vec<(Uuid, f64)>)> {
        let (from, to) = (instant(start, "start")?, instant(end, "end")?);
        let now = now.map(|n| instant(n, "now")).transpose()?;
        let grouping: Grouping = named(grouping, "grouping")?;
        if grouping == Grouping::Team && staff.is_none() {
            return Err(invalid(
                "staff",
                "grouping by team needs the staff callable",
            ));
        }
        let (engine, cases, customers, now) = self.run_crm(py, |crm, tenant| async move {
            let t = crm.tenant(tenant);
            let now = now.unwrap_or_else(|| crm.now());
            let engine: KpiEngine = t.kpis().engine().await?;
            let cases = t.cases();
            let all = up_to(u32::MAX, |page| {
                let cases = &cases;
                async move { cases.list(&CaseQuery::default(), &page).await }
            })
            .await?;
            let mut customers = BTreeMap::new();
            if engine.needs_customers() {
                let ids: Vec<CustomerId> = all
                    .iter()
                    .map(|c| c.customer)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                for chunk in ids.chunks(500) {
                    for c in crm.storage().get_customers(tenant, chunk).await? {
                        customers.insert(c.id, c);
                    }
                }
            }
            Ok((engine, all, customers, now))
        })?;
        let teams = match &staff {
            Some(staff) => {
                // Everyone who held a case: its first assignee and every reassignment's.
                let holders = cases.iter().flat_map(|c| {
                    c.initial_assignee
                        .into_iter()
                        .chain(c.events.iter().filter_map(|e| match e.kind {
                            CaseEventKind::Assignment { to, .. } => to,
                            _ => None,
                        }))
                });
                teams_of(py, staff, holders.collect::<BTreeSet<_>>())?
            }
            None => BTreeMap::new(),
        };
        let card = py.detach(|| {
            scorecard(&engine, &cases, &customers, from, to, now, grouping, &|u| {
                teams.get(&u).copied()
            })
        });
        let lines = card
            .lines
            .into_iter()
            .map(|l| {
                let (group, who) = match l.group {
                    Group::Person(u) => ("person", Some(u.as_uuid())),
                    Group::Team(t) => ("team", Some(t.as_uuid())),
                    Group::Unassigned => ("unassigned", None),
                    Group::Tenant => ("tenant", None),
                };
                ScoreLine {
                    rule: l.rule.as_str().to_string(),
                    group,
                    who,
                    measured: l.measured,
                    met: l.met,
                    breached: l.breached,
                    compliance: l.compliance,
                    goal_reached: l.goal_reached,
                    median_secs: l.median_secs,
                    p90_secs: l.p90_secs,
                }
            })
            .collect();
        let ranking = card
            .ranking
            .into_iter()
            .map(|(u, c)| (u.as_uuid(), c))
            .collect();
        Ok((lines, ranking))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn priority_names_are_the_serde_names() {
        for p in [
            super::Priority::Low,
            super::Priority::Normal,
            super::Priority::High,
            super::Priority::Urgent,
        ] {
            let serde = serde_json::to_value(p).unwrap();
            assert_eq!(serde.as_str(), Some(super::priority_name(p)));
        }
    }
}
