//! KPI rules and staff scorecards: measurable service standards ("reply to a complaint
//! within 24 business hours, 95% of the time") evaluated automatically and rolled up per
//! person, team and tenant.
//!
//! A [`KpiRule`] is serde data a tenant stores and edits: a stable key and a name, a
//! [`KpiMetric`] (an SLA target of cases under a business calendar; the follow-up gap; the
//! time to answer an interaction; a numeric interaction attribute; days of an open deal in
//! its stage, since its owner touched it, or past its close date), a scope (case kinds,
//! priorities, channels, customer stages and tags, pipelines and stages), a compliance goal, and actions on
//! warning and on breach (notify the assignee, notify the team lead, reassign, return the
//! customer to the pool). A [`KpiEngine`]
//! holds the rules with their calendars precomputed; [`Kpis::evaluate`](crate::service::Kpis::evaluate) raises each
//! new warning and breach exactly once per rule, case and measurement, however often it
//! runs: the raised alert is recorded on the case in the same optimistic transaction as
//! its notifications and reassignment.
//!
//! [`scorecard`] rolls the measurements of a period up per rule and group: items
//! measured, met, breached, compliance, median and 90th percentile, and a ranking of
//! people.
//!
//! [`Kpis::evaluate`]: crate::service::Kpis::evaluate
// Counts and durations in scorecards are computed with checked arithmetic only.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{BusinessCalendar, CompiledCalendar};
use crate::case::{Case, CaseKind};
use crate::customer::{Customer, Lifecycle};
use crate::error::{Error, Result};
use crate::id::{CustomerId, PipelineId, TeamId, UserId};
use crate::interaction::Channel;
use crate::interaction::Interaction;
use crate::notify::{Priority, TemplateName};
use crate::sales::Opportunity;
use crate::sla::{evaluate, SlaState, SlaStatus, SlaTarget};
use crate::value::{AttrKey, AttrValue};
use crate::value::{StageKey, Tag};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

mod deals;
mod scorecard;
pub use deals::{days_since, DealMeasure};
#[cfg(test)]
use scorecard::percentile;
pub use scorecard::*;

/// Which cases (or customers) a rule applies to; an empty list does not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KpiScope {
    /// Customers in these lifecycle stages.
    #[serde(default)]
    pub lifecycles: Vec<Lifecycle>,
    /// Customers with at least one of these tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Case kinds.
    #[serde(default)]
    pub kinds: Vec<CaseKind>,
    /// Priorities.
    #[serde(default)]
    pub priorities: Vec<Priority>,
    /// Channels the case came in on.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Deals in these pipelines (rules on deals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipelines: Vec<PipelineId>,
    /// Deals in these stages, by key (rules on deals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageKey>,
}

impl KpiScope {
    /// Whether the scope filters on the customer (lifecycle or tags).
    pub fn needs_customer(&self) -> bool {
        !(self.lifecycles.is_empty() && self.tags.is_empty())
    }

    /// Whether `customer` passes the customer filters.
    pub fn matches_customer(&self, customer: &Customer) -> bool {
        (self.lifecycles.is_empty() || self.lifecycles.contains(&customer.lifecycle))
            && (self.tags.is_empty() || self.tags.iter().any(|t| customer.tags.contains(t)))
    }

    /// Whether `deal` (of `account`, when the scope filters on customers) is in scope.
    pub fn matches_deal(&self, deal: &Opportunity, account: Option<&Customer>) -> bool {
        (self.pipelines.is_empty() || self.pipelines.contains(&deal.pipeline))
            && (self.stages.is_empty() || self.stages.contains(&deal.stage))
            && (!self.needs_customer() || account.is_some_and(|c| self.matches_customer(c)))
    }

    /// Whether `case` (of `customer`, when the scope filters on customers) is in scope.
    pub fn matches(&self, case: &Case, customer: Option<&Customer>) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&case.kind))
            && (self.priorities.is_empty() || self.priorities.contains(&case.priority))
            && (self.channels.is_empty() || self.channels.contains(&case.channel))
            && (!self.needs_customer() || customer.is_some_and(|c| self.matches_customer(c)))
    }
}

/// What a rule measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KpiMetric {
    /// An SLA metric of cases: first reply, next reply, resolution, requester wait.
    Case(SlaTarget),
    /// The follow-up gap: days since the owner last contacted the customer (or got it).
    FollowUpGap {
        /// The most days allowed.
        max_days: u32,
        /// Warn after this many days.
        warn_days: u32,
    },
    /// Time to answer: an interaction's `wait_secs` (a call, a chat), per interaction.
    InteractionWait {
        /// The most seconds allowed.
        max_secs: u32,
    },
    /// A numeric custom attribute of interactions (handling minutes, a survey score), per
    /// interaction that has it.
    InteractionAttribute {
        /// The attribute.
        key: AttrKey,
        /// The largest value allowed.
        max: Decimal,
    },
    /// A measure of open deals in whole days ([`DealMeasure`]): a stalled deal, one its
    /// owner has not touched, one past its close date.
    Deal {
        /// What is measured.
        measure: DealMeasure,
        /// The most days allowed.
        max_days: u32,
        /// Warn after this many days.
        warn_days: u32,
    },
}

/// What to do when a warning or breach is raised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KpiAction {
    /// Send the case's assignee a notice (template `kpi.warning` or `kpi.breach`).
    NotifyAssignee,
    /// Send the assignee's team lead a notice.
    NotifyTeamLead,
    /// Give the case to someone else (recorded on the case with the rule as the reason).
    Reassign {
        /// The new assignee.
        to: UserId,
    },
    /// Return the case's customer to the public pool (its owner is cleared, with the rule
    /// as the reason). Done right after the alert is recorded, in a transaction of its own
    /// (retried on a concurrent change of the customer).
    ReturnToPool,
}

/// A measurable service standard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KpiRule {
    /// Stable key (`complaint-first-reply`), part of every alert's idempotency key.
    pub key: TemplateName,
    /// Display name.
    pub name: String,
    /// What is measured, the target and the warning threshold.
    pub metric: KpiMetric,
    /// When the clock runs (case metrics; the follow-up gap counts calendar days and
    /// interactions are measured as they are).
    #[serde(default)]
    pub calendar: BusinessCalendar,
    /// Which cases it applies to.
    #[serde(default)]
    pub scope: KpiScope,
    /// The share of items that should meet the target (for example 0.95).
    pub compliance_goal: f64,
    /// Actions when the warning threshold is reached.
    #[serde(default)]
    pub on_warning: Vec<KpiAction>,
    /// Actions when the target is breached.
    #[serde(default)]
    pub on_breach: Vec<KpiAction>,
}

impl KpiRule {
    /// Checks the rule (a deserialised one may be wrong). Errors name the field:
    /// `name`, `compliance_goal`, or the target's.
    pub fn validate(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(Error::validation(
                "name",
                "must be 1 to 200 characters, no control characters",
            ));
        }
        if !(0.0..=1.0).contains(&self.compliance_goal) {
            return Err(Error::validation(
                "compliance_goal",
                "must be between 0 and 1",
            ));
        }
        match &self.metric {
            KpiMetric::Case(target) => target.validate().map_err(|e| e.in_field("metric")),
            KpiMetric::FollowUpGap {
                max_days,
                warn_days,
            }
            | KpiMetric::Deal {
                max_days,
                warn_days,
                ..
            } => {
                if *max_days == 0 || warn_days > max_days {
                    return Err(Error::validation(
                        "metric",
                        "max_days must be at least 1 and warn_days at most max_days",
                    ));
                }
                Ok(())
            }
            KpiMetric::InteractionWait { .. } | KpiMetric::InteractionAttribute { .. } => {
                let notify_only = |a: &KpiAction| {
                    matches!(a, KpiAction::NotifyAssignee | KpiAction::NotifyTeamLead)
                };
                if !self
                    .on_breach
                    .iter()
                    .chain(&self.on_warning)
                    .all(notify_only)
                {
                    return Err(Error::validation(
                        "on_breach",
                        "rules on interactions can only notify (the handler or their team lead)",
                    ));
                }
                Ok(())
            }
        }
    }

    /// For a rule on interactions, whether `interaction` is measured and, if so, whether it
    /// met the target and its value (seconds, or the attribute's value).
    pub fn measure_interaction(&self, interaction: &Interaction) -> Option<(bool, f64)> {
        if !(self.scope.channels.is_empty() || self.scope.channels.contains(&interaction.channel)) {
            return None;
        }
        match &self.metric {
            KpiMetric::InteractionWait { max_secs } => {
                let wait = interaction.wait_secs?;
                Some((wait <= *max_secs, f64::from(wait)))
            }
            KpiMetric::InteractionAttribute { key, max } => {
                match interaction.attributes.get(key.as_str())? {
                    AttrValue::Number(n) => Some((n <= max, n.to_f64().unwrap_or(f64::NAN))),
                    _ => None,
                }
            }
            KpiMetric::Case(_) | KpiMetric::FollowUpGap { .. } | KpiMetric::Deal { .. } => None,
        }
    }

    /// The SLA target of a case rule.
    pub fn case_target(&self) -> Option<&SlaTarget> {
        match &self.metric {
            KpiMetric::Case(t) => Some(t),
            _ => None,
        }
    }
}

/// A rule as stored, with its optimistic-concurrency version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredKpiRule {
    /// The rule.
    pub rule: KpiRule,
    /// Bumped by every stored change.
    pub version: u64,
}

/// Rules ready to evaluate: validated, with their calendars precomputed around an instant
/// (a year either side; beyond that the calendar answers by itself, more slowly).
#[derive(Clone, Debug)]
pub struct KpiEngine {
    rules: Vec<(KpiRule, CompiledCalendar)>,
    interaction_lookback: Duration,
}

impl KpiEngine {
    /// Checks every rule and compiles its calendar around `around`.
    /// Errors: validation naming `rules[i]` and the field; duplicate keys.
    pub fn new(rules: Vec<KpiRule>, around: DateTime<Utc>) -> Result<Self> {
        let day = around.date_naive();
        let year = chrono::Days::new(366);
        let (first, last) = (
            day.checked_sub_days(year).unwrap_or(day),
            day.checked_add_days(year).unwrap_or(day),
        );
        let mut seen = std::collections::BTreeSet::new();
        let mut compiled = Vec::with_capacity(rules.len());
        for (i, rule) in rules.into_iter().enumerate() {
            rule.validate()
                .map_err(|e| e.in_field(&format!("rules[{i}]")))?;
            if !seen.insert(rule.key.clone()) {
                return Err(Error::validation(
                    format!("rules[{i}].key"),
                    format!("{} is used by an earlier rule", rule.key),
                ));
            }
            let cal = CompiledCalendar::new(&rule.calendar, first, last);
            compiled.push((rule, cal));
        }
        Ok(KpiEngine {
            rules: compiled,
            interaction_lookback: Duration::days(2),
        })
    }

    /// How far back each evaluation looks for interactions that breach a rule on
    /// interactions (default two days): interactions that occurred longer ago are not
    /// alerted on, so evaluate at least that often.
    pub fn with_interaction_lookback(mut self, lookback: Duration) -> Self {
        self.interaction_lookback = lookback;
        self
    }

    /// See [`KpiEngine::with_interaction_lookback`].
    pub fn interaction_lookback(&self) -> Duration {
        self.interaction_lookback
    }

    /// The rules.
    pub fn rules(&self) -> impl Iterator<Item = &KpiRule> {
        self.rules.iter().map(|(r, _)| r)
    }

    /// Each case rule in scope of `case` (of `customer`, needed by rules that filter on
    /// customers) with the case's status under it at `now`.
    pub fn measure<'a>(
        &'a self,
        case: &'a Case,
        customer: Option<&'a Customer>,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = (&'a KpiRule, SlaStatus)> + 'a {
        self.rules.iter().filter_map(move |(rule, cal)| {
            let target = rule.case_target()?;
            rule.scope
                .matches(case, customer)
                .then(|| (rule, evaluate(&case.events, target, cal, now)))
        })
    }

    /// Whether any case rule filters on customers.
    pub fn needs_customers(&self) -> bool {
        self.rules
            .iter()
            .any(|(r, _)| r.case_target().is_some() && r.scope.needs_customer())
    }

    /// The fingerprint of the rules that schedule entries of `kind`
    /// ([`crate::schedule::basis`] of their JSON): case rules for cases, follow-up gap
    /// rules for follow-ups, deal rules for deals (no rule schedules the pool).
    pub fn basis(&self, kind: crate::schedule::DueKind) -> String {
        use crate::schedule::DueKind;
        let rules: Vec<&KpiRule> = self
            .rules()
            .filter(|r| match kind {
                DueKind::Case => r.case_target().is_some(),
                DueKind::FollowUp => matches!(r.metric, KpiMetric::FollowUpGap { .. }),
                DueKind::Deal => matches!(r.metric, KpiMetric::Deal { .. }),
                DueKind::Pool => false,
            })
            .collect();
        crate::schedule::basis(&serde_json::to_string(&rules).unwrap_or_default())
    }

    /// The follow-up gap rules.
    pub fn gap_rules(&self) -> impl Iterator<Item = (&KpiRule, u32, u32)> {
        self.rules.iter().filter_map(|(r, _)| match r.metric {
            KpiMetric::FollowUpGap {
                max_days,
                warn_days,
            } => Some((r, max_days, warn_days)),
            _ => None,
        })
    }

    /// The rules on deals, with their measure, most days and warning days.
    pub fn deal_rules(&self) -> impl Iterator<Item = (&KpiRule, DealMeasure, u32, u32)> {
        self.rules.iter().filter_map(|(r, _)| match r.metric {
            KpiMetric::Deal {
                measure,
                max_days,
                warn_days,
            } => Some((r, measure, max_days, warn_days)),
            _ => None,
        })
    }

    /// The rules on interactions.
    pub fn interaction_rules(&self) -> impl Iterator<Item = &KpiRule> {
        self.rules.iter().map(|(r, _)| r).filter(|r| {
            matches!(
                r.metric,
                KpiMetric::InteractionWait { .. } | KpiMetric::InteractionAttribute { .. }
            )
        })
    }
}

/// A warning or breach to raise.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// Unique per rule, case, measurement and level: recorded on the case once raised.
    pub key: String,
    /// Warning or breach.
    pub breach: bool,
    /// The rule's key.
    pub rule: TemplateName,
    /// The measurement.
    pub status: SlaStatus,
}

/// The warnings and breaches `case` has at `now` that are not yet recorded on it.
pub fn new_alerts<'a>(
    engine: &'a KpiEngine,
    case: &'a Case,
    customer: Option<&'a Customer>,
    now: DateTime<Utc>,
) -> Vec<(Alert, &'a KpiRule)> {
    case_alerts(engine, case, customer, now).0
}

/// [`new_alerts`], with when `case` next needs evaluating under `engine`: the earliest
/// warning or breach of a rule in scope that is not yet recorded on it (`now` for one
/// already due), or `None` while nothing is pending (a paused or stopped measurement
/// moves again only when the case changes). One walk over the rules for both.
pub fn case_alerts<'a>(
    engine: &'a KpiEngine,
    case: &'a Case,
    customer: Option<&'a Customer>,
    now: DateTime<Utc>,
) -> (Vec<(Alert, &'a KpiRule)>, Option<DateTime<Utc>>) {
    let mut out = Vec::new();
    let mut next: Option<DateTime<Utc>> = None;
    for (rule, status) in engine.measure(case, customer, now) {
        let Some(started) = status.started_at else {
            continue;
        };
        let base = format!(
            "kpi:{}:{}:{}",
            rule.key,
            case.id,
            started.timestamp_micros()
        );
        let warned = status.warning_at.is_some_and(|w| w <= now);
        let breached = status.state == SlaState::Breached;
        let levels = [
            ("warning", status.warning_at, warned),
            (
                "breach",
                if breached {
                    Some(now)
                } else {
                    status.breach_at
                },
                breached,
            ),
        ];
        for (level, at, raised) in levels {
            let key = format!("{base}:{level}");
            if case.alerts.contains(&key) {
                continue;
            }
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
            if raised {
                let alert = Alert {
                    key,
                    breach: level == "breach",
                    rule: rule.key.clone(),
                    status: status.clone(),
                };
                out.push((alert, rule));
            }
        }
    }
    (out, next)
}

/// What one evaluation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KpiReport {
    /// Interactions looked at by rules on interactions.
    pub interactions: usize,
    /// Customers looked at by follow-up gap rules.
    pub customers: usize,
    /// Customers returned to the pool by rules.
    pub returned_to_pool: usize,
    /// Cases looked at.
    pub cases: usize,
    /// Open deals looked at by rules on deals (those in a rule's scope).
    #[serde(default)]
    pub deals: usize,
    /// Warnings raised now.
    pub warnings: usize,
    /// Breaches raised now.
    pub breaches: usize,
    /// Cases changed concurrently (their alerts are raised by the next evaluation).
    pub conflicts: usize,
    /// Due entries read (cases, customers and deals), with
    /// [`Capability::Schedule`](crate::Capability::Schedule).
    #[serde(default)]
    pub due: usize,
    /// Entries marked for recomputation because the rules changed since the last run.
    #[serde(default)]
    pub reset: u64,
}

impl KpiReport {
    /// Adds a due run's counts.
    pub(crate) fn add_due(&mut self, due: &crate::schedule::DueReport) {
        self.due = self.due.saturating_add(due.read);
        self.reset = self.reset.saturating_add(due.reset);
    }

    /// Adds another part's counts (the records of one page, evaluated concurrently).
    pub(crate) fn absorb(&mut self, part: &KpiReport) {
        for (mine, theirs) in [
            (&mut self.interactions, part.interactions),
            (&mut self.customers, part.customers),
            (&mut self.returned_to_pool, part.returned_to_pool),
            (&mut self.cases, part.cases),
            (&mut self.deals, part.deals),
            (&mut self.warnings, part.warnings),
            (&mut self.breaches, part.breaches),
            (&mut self.conflicts, part.conflicts),
            (&mut self.due, part.due),
        ] {
            *mine = mine.saturating_add(theirs);
        }
        self.reset = self.reset.saturating_add(part.reset);
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::case::CaseEventKind;
    use crate::id::CustomerId;
    use crate::sla::SlaMetric;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
    }

    fn rule(key: &str, hours: i64) -> KpiRule {
        KpiRule {
            key: TemplateName::parse(key).unwrap(),
            name: "Reply to complaints within a day".into(),
            metric: KpiMetric::Case(
                SlaTarget::new(SlaMetric::FirstReply, Duration::hours(hours), 0.5).unwrap(),
            ),
            calendar: BusinessCalendar::always(),
            scope: KpiScope {
                kinds: vec![CaseKind::Complaint],
                ..KpiScope::default()
            },
            compliance_goal: 0.9,
            on_warning: vec![KpiAction::NotifyAssignee],
            on_breach: vec![KpiAction::NotifyTeamLead],
        }
    }

    fn case_replied_after(agent: UserId, hours: i64) -> Case {
        let mut c = Case::open(
            CustomerId::new(),
            CaseKind::Complaint,
            "x",
            Channel::Email,
            Some(agent),
            t0(),
        )
        .unwrap();
        c.record(
            t0() + Duration::hours(hours),
            CaseEventKind::PublicReply { by: agent },
        )
        .unwrap();
        c
    }

    #[test]
    fn alerts_are_new_until_recorded() {
        let engine = KpiEngine::new(vec![rule("reply", 4)], t0()).unwrap();
        let mut c = case_replied_after(UserId::new(), 10);
        assert!(new_alerts(&engine, &c, None, t0() + Duration::hours(1)).is_empty());
        let both = new_alerts(&engine, &c, None, t0() + Duration::hours(5));
        assert_eq!(
            both.iter().map(|(a, _)| a.breach).collect::<Vec<_>>(),
            [false, true]
        );
        let keys: Vec<String> = both.into_iter().map(|(a, _)| a.key).collect();
        c.alerts.extend(keys);
        assert!(new_alerts(&engine, &c, None, t0() + Duration::hours(50)).is_empty());
        let inquiry = Case {
            kind: CaseKind::Inquiry,
            alerts: Default::default(),
            ..c
        };
        assert!(
            new_alerts(&engine, &inquiry, None, t0() + Duration::hours(50)).is_empty(),
            "out of scope"
        );
    }

    #[test]
    fn scorecards_count_met_breached_and_percentiles() {
        let engine = KpiEngine::new(vec![rule("reply", 4)], t0()).unwrap();
        let (good, bad) = (UserId::new(), UserId::new());
        let team = TeamId::new();
        let mut cases: Vec<Case> = [1, 2, 3]
            .iter()
            .map(|h| case_replied_after(good, *h))
            .collect();
        cases.extend([2, 6, 9].iter().map(|h| case_replied_after(bad, *h)));
        let now = t0() + Duration::days(1);
        let card = scorecard(
            &engine,
            &cases,
            &BTreeMap::new(),
            t0(),
            now,
            now,
            Grouping::Person,
            &|_| Some(team),
        );
        let line = |u| {
            card.lines
                .iter()
                .find(|l| l.group == Group::Person(u))
                .unwrap()
        };
        let g = line(good);
        assert_eq!(
            (g.measured, g.met, g.breached, g.compliance),
            (3, 3, 0, 1.0)
        );
        assert_eq!((g.median_secs, g.p90_secs), (Some(7200), Some(10800)));
        let b = line(bad);
        assert_eq!((b.met, b.breached), (1, 2));
        assert!(!b.goal_reached);
        assert_eq!(
            card.ranking.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
            [good, bad]
        );
        let by_team = scorecard(
            &engine,
            &cases,
            &BTreeMap::new(),
            t0(),
            now,
            now,
            Grouping::Team,
            &|_| Some(team),
        );
        assert_eq!(by_team.lines.len(), 1);
        assert_eq!((by_team.lines[0].measured, by_team.lines[0].met), (6, 4));
        let empty = scorecard(
            &engine,
            &cases,
            &BTreeMap::new(),
            now,
            now + Duration::days(1),
            now,
            Grouping::Tenant,
            &|_| None,
        );
        assert!(empty.lines.is_empty());
    }

    #[test]
    fn a_breach_counts_for_who_held_the_case_then() {
        let engine = KpiEngine::new(vec![rule("reply", 4)], t0()).unwrap();
        let (slow, lead) = (UserId::new(), UserId::new());
        let mut c = Case::open(
            CustomerId::new(),
            CaseKind::Complaint,
            "x",
            Channel::Email,
            Some(slow),
            t0(),
        )
        .unwrap();
        let moved = CaseEventKind::Assignment {
            to: Some(lead),
            by: None,
            reason: None,
        };
        c.record(t0() + Duration::hours(5), moved).unwrap();
        c.record(
            t0() + Duration::hours(6),
            CaseEventKind::PublicReply { by: lead },
        )
        .unwrap();
        let now = t0() + Duration::days(1);
        let card = scorecard(
            &engine,
            &[c],
            &BTreeMap::new(),
            t0(),
            now,
            now,
            Grouping::Person,
            &|_| None,
        );
        assert_eq!(card.lines.len(), 1);
        assert_eq!(card.lines[0].group, Group::Person(slow));
        assert_eq!(card.lines[0].breached, 1);
    }

    #[test]
    fn bad_rules_name_the_field() {
        let mut r = rule("reply", 4);
        r.compliance_goal = 1.5;
        let e = KpiEngine::new(vec![rule("a", 1), r], t0()).unwrap_err();
        assert_eq!(e.field(), Some("rules[1].compliance_goal"));
        let mut gap = rule("gap", 4);
        gap.metric = KpiMetric::FollowUpGap {
            max_days: 30,
            warn_days: 40,
        };
        assert_eq!(gap.validate().unwrap_err().field(), Some("metric"));
        let e = KpiEngine::new(vec![rule("a", 1), rule("a", 2)], t0()).unwrap_err();
        assert_eq!(e.field(), Some("rules[1].key"));
        let json = serde_json::to_string(&rule("reply", 4)).unwrap();
        let back: KpiRule = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rule("reply", 4));
        assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), Some(9));
    }
}
