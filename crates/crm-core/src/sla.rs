//! Service-level metrics computed from a case's events and a business calendar.
//!
//! A metric is data, not code ([`MetricDefinition`]): the events that start its clock, the
//! events that stop it, the statuses during which it is paused, and whether it measures
//! each cycle anew (next reply) or resumes (resolution after a reopen). The built-in
//! metrics ([`SlaMetric`]) are:
//!
//! | metric | starts | stops | paused while |
//! | --- | --- | --- | --- |
//! | first reply | opened | first public reply | — |
//! | next reply (per cycle) | oldest unanswered customer message | public reply | — |
//! | resolution | opened; resumes on reopen | resolved or closed | pending on the customer |
//! | requester wait | opened | closed | pending on the customer, resolved |
//!
//! [`evaluate`] replays the events up to `now` and gives, for a target, the state
//! (not started, running, paused, met, breached), the business time elapsed, the time
//! left, the breach instant and the warning instant. It is a pure function of the events,
//! the calendar and the target: a changed calendar or policy recomputes history the same
//! way every time.
//!
//! ```
//! use chrono::{Duration, TimeZone, Utc};
//! use crm_core::calendar::{BusinessCalendar, CompiledCalendar};
//! use crm_core::case::{Case, CaseEventKind, CaseKind};
//! use crm_core::sla::{evaluate, SlaMetric, SlaState, SlaTarget};
//! use crm_core::{Channel, CustomerId, UserId};
//!
//! let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
//! let cal = BusinessCalendar::always();
//! let compiled = CompiledCalendar::new(&cal, t0.date_naive(), t0.date_naive() + Duration::days(60));
//! let agent = UserId::new();
//! let mut case = Case::open(CustomerId::new(), CaseKind::Complaint, "Broken", Channel::Email, Some(agent), t0)?;
//! let target = SlaTarget::new(SlaMetric::FirstReply, Duration::hours(24), 0.8)?;
//!
//! let open = evaluate(&case.events, &target, &compiled, t0 + Duration::hours(20));
//! assert_eq!(open.state, SlaState::Running);
//! assert_eq!(open.warning_at, Some(t0 + Duration::minutes(1152))); // 80% of 24 h
//! assert_eq!(open.breach_at, Some(t0 + Duration::hours(24)));
//!
//! case.record(t0 + Duration::hours(26), CaseEventKind::PublicReply { by: agent })?;
//! let late = evaluate(&case.events, &target, &compiled, t0 + Duration::hours(30));
//! assert_eq!(late.state, SlaState::Breached);
//! assert_eq!(late.elapsed, Duration::hours(26));
//! # Ok::<(), crm_core::Error>(())
//! ```

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::CompiledCalendar;
use crate::case::{CaseEvent, CaseEventKind, CaseStatus};
use crate::error::{Error, Result};

/// An event that starts or stops a metric's clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The case was opened.
    Opened,
    /// The customer wrote.
    CustomerMessage,
    /// Staff answered the customer.
    PublicReply,
    /// The status changed to one of these.
    StatusEnters(Vec<CaseStatus>),
}

impl Trigger {
    fn fires(&self, kind: &CaseEventKind) -> bool {
        match (self, kind) {
            (Trigger::Opened, CaseEventKind::Opened)
            | (Trigger::CustomerMessage, CaseEventKind::CustomerMessage)
            | (Trigger::PublicReply, CaseEventKind::PublicReply { .. }) => true,
            (Trigger::StatusEnters(set), CaseEventKind::StatusChange { to, .. }) => {
                set.contains(to)
            }
            _ => false,
        }
    }
}

/// When a metric's clock runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricDefinition {
    /// Events that start the clock (or resume it, for a metric that does not repeat).
    pub start: Vec<Trigger>,
    /// Events that stop it.
    pub stop: Vec<Trigger>,
    /// Statuses during which a running clock is paused.
    #[serde(default)]
    pub pause_while: Vec<CaseStatus>,
    /// Whether each start begins a new measurement from zero (next reply), rather than
    /// resuming the one measurement (resolution).
    #[serde(default)]
    pub repeats: bool,
}

/// The built-in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SlaMetric {
    /// Opened to the first public reply.
    FirstReply,
    /// Oldest unanswered customer message to the next public reply, per cycle.
    NextReply,
    /// Opened to resolved, paused while pending on the customer; resumes on reopen.
    Resolution,
    /// How long the customer waited: paused while pending on them or resolved, until closed.
    RequesterWait,
}

impl SlaMetric {
    /// The metric's definition.
    pub fn definition(self) -> MetricDefinition {
        use CaseStatus::*;
        match self {
            SlaMetric::FirstReply => MetricDefinition {
                start: vec![Trigger::Opened],
                stop: vec![Trigger::PublicReply],
                pause_while: vec![],
                repeats: false,
            },
            SlaMetric::NextReply => MetricDefinition {
                start: vec![Trigger::CustomerMessage],
                stop: vec![Trigger::PublicReply],
                pause_while: vec![],
                repeats: true,
            },
            SlaMetric::Resolution => MetricDefinition {
                start: vec![Trigger::Opened, Trigger::StatusEnters(vec![Reopened])],
                stop: vec![Trigger::StatusEnters(vec![Resolved, Closed])],
                pause_while: vec![PendingCustomer],
                repeats: false,
            },
            SlaMetric::RequesterWait => MetricDefinition {
                start: vec![Trigger::Opened],
                stop: vec![Trigger::StatusEnters(vec![Closed])],
                pause_while: vec![PendingCustomer, Resolved],
                repeats: false,
            },
        }
    }
}

/// A target for one metric: the business time allowed, and when to warn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlaTarget {
    /// What is measured.
    pub metric: SlaMetric,
    /// How it is measured (the metric's built-in definition unless replaced).
    pub definition: MetricDefinition,
    /// Business time allowed, in seconds.
    pub target_secs: i64,
    /// Warn when this fraction of the target has passed (for example 0.8).
    pub warn_fraction: f64,
}

impl SlaTarget {
    /// A target of `target` business time for `metric`, warning at `warn_fraction` of it.
    /// Errors: validation on `target` (not positive) or `warn_fraction` (not in 0..=1).
    pub fn new(metric: SlaMetric, target: Duration, warn_fraction: f64) -> Result<Self> {
        let t = SlaTarget {
            metric,
            definition: metric.definition(),
            target_secs: target.num_seconds(),
            warn_fraction,
        };
        t.validate()?;
        Ok(t)
    }

    /// Replaces how the metric is measured.
    pub fn with_definition(mut self, definition: MetricDefinition) -> Self {
        self.definition = definition;
        self
    }

    /// Checks the fields (a deserialised target may break them).
    pub fn validate(&self) -> Result<()> {
        if self.target_secs <= 0 {
            return Err(Error::validation("target", "must be positive"));
        }
        if !(0.0..=1.0).contains(&self.warn_fraction) {
            return Err(Error::validation(
                "warn_fraction",
                "must be between 0 and 1",
            ));
        }
        if self.definition.start.is_empty() || self.definition.stop.is_empty() {
            return Err(Error::validation(
                "definition",
                "needs at least one start and one stop trigger",
            ));
        }
        Ok(())
    }

    /// The business time allowed.
    pub fn target(&self) -> Duration {
        Duration::seconds(self.target_secs)
    }
}

/// Where a measurement stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// The clock has not started (no customer message to answer yet, say).
    NotStarted,
    /// Running, within target.
    Running,
    /// Paused (pending on the customer, say), within target.
    Paused,
    /// Stopped within target.
    Met,
    /// Over target: running late, or stopped late.
    Breached,
}

/// A metric's state for one target at one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlaStatus {
    /// The metric.
    pub metric: SlaMetric,
    /// The state of the current (or last) measurement.
    pub state: SlaState,
    /// Business time elapsed in it.
    pub elapsed: Duration,
    /// Business time left before the target (zero when over).
    pub remaining: Duration,
    /// When the measurement started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it stopped, if it has.
    pub stopped_at: Option<DateTime<Utc>>,
    /// When the target was or will be breached: past for a breach, future while running,
    /// `None` while paused or once met.
    pub breach_at: Option<DateTime<Utc>>,
    /// When the warning threshold was or will be reached, on the same terms.
    pub warning_at: Option<DateTime<Utc>>,
    /// Completed measurements before the current one (next reply has several).
    pub completed: u32,
    /// How many of those breached their target.
    pub completed_breached: u32,
}

/// One measurement being replayed.
#[derive(Clone, Copy)]
struct Cycle {
    started: DateTime<Utc>,
    stopped: Option<DateTime<Utc>>,
    elapsed: Duration,
    breach_at: Option<DateTime<Utc>>,
    warning_at: Option<DateTime<Utc>>,
}

impl Cycle {
    fn new(at: DateTime<Utc>) -> Self {
        Cycle {
            started: at,
            stopped: None,
            elapsed: Duration::zero(),
            breach_at: None,
            warning_at: None,
        }
    }

    /// Counts the running span `[from, to)`, noting when the warning and the breach fell
    /// in it.
    fn run(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limits: Limits,
        cal: &CompiledCalendar,
    ) {
        if to <= from {
            return;
        }
        let worked = cal.business_time(from, to);
        let before = self.elapsed;
        let after = before + worked;
        if self.warning_at.is_none() && after >= limits.warning && before < limits.warning {
            self.warning_at = cal.add_business_time(from, limits.warning - before);
        }
        if self.breach_at.is_none() && after > limits.target && before <= limits.target {
            self.breach_at = cal.add_business_time(from, limits.target - before);
        }
        self.elapsed = after;
    }

    fn breached(&self, limits: Limits) -> bool {
        self.elapsed > limits.target
    }
}

#[derive(Clone, Copy)]
struct Limits {
    target: Duration,
    warning: Duration,
}

/// Replays `events` (oldest first; later ones than `now` are ignored) and says where
/// `target`'s metric stands at `now`.
pub fn evaluate(
    events: &[CaseEvent],
    target: &SlaTarget,
    calendar: &CompiledCalendar,
    now: DateTime<Utc>,
) -> SlaStatus {
    let def = &target.definition;
    let limits = Limits {
        target: target.target(),
        warning: Duration::milliseconds(
            (target.target().num_milliseconds() as f64 * target.warn_fraction).round() as i64,
        ),
    };
    let mut status = CaseStatus::New;
    let mut current: Option<Cycle> = None;
    let mut completed = 0u32;
    let mut completed_breached = 0u32;
    let mut mark = events.first().map_or(now, |e| e.at);
    for event in events.iter().take_while(|e| e.at <= now) {
        // The time since the last event counts if the clock ran through it.
        if let Some(cycle) = current.as_mut() {
            if cycle.stopped.is_none() && !def.pause_while.contains(&status) {
                cycle.run(mark, event.at, limits, calendar);
            }
        }
        mark = event.at;
        if let CaseEventKind::StatusChange { to, .. } = &event.kind {
            status = *to;
        }
        let stops = def.stop.iter().any(|t| t.fires(&event.kind));
        let starts = def.start.iter().any(|t| t.fires(&event.kind));
        if let Some(cycle) = current.as_mut() {
            if cycle.stopped.is_none() && stops {
                cycle.stopped = Some(event.at);
                if def.repeats {
                    completed += 1;
                    completed_breached += u32::from(cycle.breached(limits));
                }
                continue;
            }
        }
        if starts {
            match current.as_mut() {
                None => current = Some(Cycle::new(event.at)),
                Some(cycle) if cycle.stopped.is_some() => {
                    if def.repeats {
                        *cycle = Cycle::new(event.at);
                    } else {
                        cycle.stopped = None; // resumes, keeping its elapsed time
                    }
                }
                Some(_) => {} // already running: the oldest start counts
            }
        }
    }
    let paused = def.pause_while.contains(&status);
    let Some(mut cycle) = current else {
        return SlaStatus {
            metric: target.metric,
            state: SlaState::NotStarted,
            elapsed: Duration::zero(),
            remaining: limits.target,
            started_at: None,
            stopped_at: None,
            breach_at: None,
            warning_at: None,
            completed,
            completed_breached,
        };
    };
    let running = cycle.stopped.is_none();
    if running && !paused {
        // Project from the last event: where the warning and breach fall if nothing stops
        // the clock, and how much has run by now.
        let before = cycle.elapsed;
        if cycle.warning_at.is_none() && before < limits.warning {
            cycle.warning_at = calendar.add_business_time(mark, limits.warning - before);
        }
        if cycle.breach_at.is_none() && before <= limits.target {
            cycle.breach_at = calendar.add_business_time(mark, limits.target - before);
        }
        cycle.elapsed = before + calendar.business_time(mark, now);
    }
    let breached = cycle.breached(limits);
    let state = match (running, breached, paused) {
        (_, true, _) => SlaState::Breached,
        (false, false, _) => SlaState::Met,
        (true, false, true) => SlaState::Paused,
        (true, false, false) => SlaState::Running,
    };
    let (breach_at, warning_at) = match state {
        SlaState::Met => (None, cycle.warning_at.filter(|w| *w <= now)),
        SlaState::Paused => (None, cycle.warning_at.filter(|w| *w <= now)),
        _ => (cycle.breach_at, cycle.warning_at),
    };
    SlaStatus {
        metric: target.metric,
        state,
        elapsed: cycle.elapsed,
        remaining: (limits.target - cycle.elapsed).max(Duration::zero()),
        started_at: Some(cycle.started),
        stopped_at: cycle.stopped,
        breach_at,
        warning_at,
        completed,
        completed_breached,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{BusinessCalendar, Interval, Week};
    use crate::case::{Case, CaseKind};
    use crate::id::{CustomerId, UserId};
    use crate::interaction::Channel;
    use chrono::{NaiveDate, TimeZone};

    fn t0() -> DateTime<Utc> {
        // Monday 2 March 2026, 09:00 UTC.
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
    }

    fn always() -> CompiledCalendar {
        compiled(&BusinessCalendar::always())
    }

    fn compiled(cal: &BusinessCalendar) -> CompiledCalendar {
        CompiledCalendar::new(
            cal,
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        )
    }

    fn office() -> BusinessCalendar {
        BusinessCalendar::new(
            chrono_tz::UTC,
            Week::weekdays(&[Interval::parse("09:00", "17:00").unwrap()]),
        )
        .unwrap()
    }

    fn h(n: i64) -> Duration {
        Duration::hours(n)
    }

    fn case() -> (Case, UserId) {
        let agent = UserId::new();
        let c = Case::open(
            CustomerId::new(),
            CaseKind::Complaint,
            "Broken",
            Channel::Email,
            Some(agent),
            t0(),
        )
        .unwrap();
        (c, agent)
    }

    fn status(to: CaseStatus) -> CaseEventKind {
        CaseEventKind::StatusChange { to, by: None }
    }

    #[test]
    fn first_reply_met_in_business_hours() {
        let (mut c, agent) = case();
        let target = SlaTarget::new(SlaMetric::FirstReply, h(4), 0.5).unwrap();
        let cal = compiled(&office());
        // Opened Monday 09:00; replied Monday 18:00 (after hours): 8 business hours.
        c.record(t0() + h(9), CaseEventKind::PublicReply { by: agent })
            .unwrap();
        let s = evaluate(&c.events, &target, &cal, t0() + h(30));
        assert_eq!(s.state, SlaState::Breached);
        assert_eq!(s.elapsed, h(8));
        assert_eq!(s.breach_at, Some(t0() + h(4)));
        assert_eq!(s.warning_at, Some(t0() + h(2)));
        assert_eq!(s.stopped_at, Some(t0() + h(9)));
        let early = evaluate(&c.events, &target, &cal, t0() + h(1));
        assert_eq!(
            (early.state, early.elapsed, early.remaining),
            (SlaState::Running, h(1), h(3))
        );
    }

    #[test]
    fn resolution_pauses_while_pending_and_resumes_on_reopen() {
        let (mut c, agent) = case();
        let target = SlaTarget::new(SlaMetric::Resolution, h(10), 0.8).unwrap();
        let cal = always();
        c.record(t0() + h(1), CaseEventKind::PublicReply { by: agent })
            .unwrap();
        c.record(t0() + h(2), status(CaseStatus::PendingCustomer))
            .unwrap();
        let paused = evaluate(&c.events, &target, &cal, t0() + h(20));
        assert_eq!((paused.state, paused.elapsed), (SlaState::Paused, h(2)));
        assert_eq!(paused.breach_at, None, "unknown while paused");
        c.record(t0() + h(30), CaseEventKind::CustomerMessage)
            .unwrap();
        c.record(t0() + h(30), status(CaseStatus::Open)).unwrap();
        c.record(t0() + h(33), status(CaseStatus::Resolved))
            .unwrap();
        let met = evaluate(&c.events, &target, &cal, t0() + h(40));
        assert_eq!((met.state, met.elapsed), (SlaState::Met, h(5)));
        c.record(t0() + h(50), status(CaseStatus::Reopened))
            .unwrap();
        let again = evaluate(&c.events, &target, &cal, t0() + h(52));
        assert_eq!(
            (again.state, again.elapsed),
            (SlaState::Running, h(7)),
            "resumed, not restarted"
        );
        assert_eq!(again.breach_at, Some(t0() + h(55)));
        assert_eq!(again.warning_at, Some(t0() + h(53)));
        let late = evaluate(&c.events, &target, &cal, t0() + h(60));
        assert_eq!(
            (late.state, late.breach_at),
            (SlaState::Breached, Some(t0() + h(55)))
        );
    }

    #[test]
    fn next_reply_measures_each_cycle_from_the_oldest_message() {
        let (mut c, agent) = case();
        let target = SlaTarget::new(SlaMetric::NextReply, h(2), 0.5).unwrap();
        let cal = always();
        assert_eq!(
            evaluate(&c.events, &target, &cal, t0()).state,
            SlaState::NotStarted
        );
        c.record(t0() + h(1), CaseEventKind::CustomerMessage)
            .unwrap();
        c.record(t0() + h(2), CaseEventKind::CustomerMessage)
            .unwrap();
        c.record(t0() + h(4), CaseEventKind::PublicReply { by: agent })
            .unwrap(); // 3 h: late
        c.record(t0() + h(5), CaseEventKind::CustomerMessage)
            .unwrap();
        let s = evaluate(&c.events, &target, &cal, t0() + h(6));
        assert_eq!((s.completed, s.completed_breached), (1, 1));
        assert_eq!(
            (s.state, s.elapsed, s.started_at),
            (SlaState::Running, h(1), Some(t0() + h(5)))
        );
        c.record(t0() + h(6), CaseEventKind::PublicReply { by: agent })
            .unwrap();
        let s = evaluate(&c.events, &target, &cal, t0() + h(7));
        assert_eq!(
            (s.state, s.completed, s.completed_breached),
            (SlaState::Met, 2, 1)
        );
    }

    #[test]
    fn requester_wait_excludes_pending_and_resolved_time() {
        let (mut c, _) = case();
        let target = SlaTarget::new(SlaMetric::RequesterWait, h(100), 0.8).unwrap();
        let cal = always();
        c.record(t0() + h(3), status(CaseStatus::PendingCustomer))
            .unwrap();
        c.record(t0() + h(10), status(CaseStatus::Open)).unwrap();
        c.record(t0() + h(12), status(CaseStatus::Resolved))
            .unwrap();
        c.record(t0() + h(40), status(CaseStatus::Closed)).unwrap();
        let s = evaluate(&c.events, &target, &cal, t0() + h(50));
        assert_eq!((s.state, s.elapsed), (SlaState::Met, h(5)));
    }

    #[test]
    fn a_calendar_change_recomputes_history_the_same_way() {
        let (mut c, agent) = case();
        c.record(t0() + h(30), CaseEventKind::PublicReply { by: agent })
            .unwrap();
        let target = SlaTarget::new(SlaMetric::FirstReply, h(16), 0.8).unwrap();
        let now = t0() + h(40);
        let (a, b) = (always(), compiled(&office()));
        assert_eq!(
            evaluate(&c.events, &target, &a, now).state,
            SlaState::Breached
        );
        let office_hours = evaluate(&c.events, &target, &b, now);
        assert_eq!(
            (office_hours.state, office_hours.elapsed),
            (SlaState::Met, h(14))
        );
        assert_eq!(evaluate(&c.events, &target, &b, now), office_hours);
    }

    #[test]
    fn bad_targets_name_the_field() {
        assert_eq!(
            SlaTarget::new(SlaMetric::FirstReply, h(0), 0.8)
                .unwrap_err()
                .field(),
            Some("target")
        );
        assert_eq!(
            SlaTarget::new(SlaMetric::FirstReply, h(1), 1.5)
                .unwrap_err()
                .field(),
            Some("warn_fraction")
        );
        let json =
            serde_json::to_string(&SlaTarget::new(SlaMetric::Resolution, h(24), 0.8).unwrap())
                .unwrap();
        let back: SlaTarget = serde_json::from_str(&json).unwrap();
        assert_eq!(back.definition, SlaMetric::Resolution.definition());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn event_kinds() -> impl Strategy<Value = CaseEventKind> {
            let agent = UserId::from_bytes([1; 16]);
            prop_oneof![
                Just(CaseEventKind::CustomerMessage),
                Just(CaseEventKind::PublicReply { by: agent }),
                prop::sample::select(vec![
                    CaseStatus::Open,
                    CaseStatus::PendingCustomer,
                    CaseStatus::OnHold,
                    CaseStatus::Resolved,
                    CaseStatus::Closed,
                    CaseStatus::Reopened,
                ])
                .prop_map(|to| CaseEventKind::StatusChange { to, by: None }),
            ]
        }

        fn histories() -> impl Strategy<Value = Case> {
            prop::collection::vec((0i64..60 * 30, event_kinds()), 0..12).prop_map(|steps| {
                let (mut c, _) = case();
                let mut at = t0();
                for (gap, kind) in steps {
                    at += Duration::minutes(gap);
                    let _ = c.record(at, kind); // invalid steps are simply skipped
                }
                c
            })
        }

        fn metrics() -> impl Strategy<Value = SlaMetric> {
            prop::sample::select(vec![
                SlaMetric::FirstReply,
                SlaMetric::NextReply,
                SlaMetric::Resolution,
                SlaMetric::RequesterWait,
            ])
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// The breach and warning instants are where exactly the target and the warning
            /// threshold of business time have run, and elapsed time never runs backwards.
            #[test]
            fn breach_and_warning_instants_are_exact(c in histories(), metric in metrics(), hours in 1i64..30, later in 0i64..60 * 24 * 10) {
                let target = SlaTarget::new(metric, h(hours), 0.75).unwrap();
                let cal = compiled(&office());
                let now = t0() + Duration::minutes(later);
                let s = evaluate(&c.events, &target, &cal, now);
                let last_start = s.started_at;
                for (instant, amount) in [(s.breach_at, target.target()), (s.warning_at, h(hours) * 3 / 4)] {
                    let Some(at) = instant else { continue };
                    // A projection assumes nothing happens before it: skip if something did.
                    if c.events.iter().any(|e| e.at > now && e.at <= at) {
                        continue;
                    }
                    let at_then = evaluate(&c.events, &target, &cal, at);
                    if at_then.started_at == last_start && !metric.definition().repeats {
                        prop_assert_eq!(at_then.elapsed, amount, "at {}", at);
                    }
                }
                if !metric.definition().repeats {
                    let before = evaluate(&c.events, &target, &cal, now - Duration::minutes(37));
                    prop_assert!(before.elapsed <= s.elapsed);
                }
            }
        }
    }
}
