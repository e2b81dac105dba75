//! Reminders and follow-up tasks on a customer or a case: a due time, an assignee, snooze
//! and done, and recurring follow-ups (every N days, for key customers).
//!
//! A task is announced once per due instant: [`Tasks::remind_due`](crate::service::Tasks::remind_due) finds the open tasks due
//! by `now` that have not been announced for their current due time, and records the
//! announcement on the task in the same optimistic transaction as the reminder it queues.
//! Snoozing moves the due time (and the task is announced again then); completing a
//! recurring task moves it to its next occurrence.
//!
//! [`Tasks::remind_due`]: crate::service::Tasks::remind_due
//!
//! ```
//! use chrono::{Duration, TimeZone, Utc};
//! use crm_core::task::{Task, TaskSubject};
//! use crm_core::{CustomerId, UserId};
//!
//! let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
//! let mut call = Task::new(TaskSubject::Customer(CustomerId::new()), "Quarterly call", UserId::new(), t0)?
//!     .every_days(90)?;
//! call.complete(t0 + Duration::days(1));
//! assert!(call.is_open(), "a recurring task rolls over");
//! assert_eq!(call.due_at, t0 + Duration::days(90));
//! # Ok::<(), crm_core::Error>(())
//! ```

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{CaseId, CustomerId, TaskId, UserId};

/// What a task is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSubject {
    /// A customer.
    Customer(CustomerId),
    /// A case.
    Case(CaseId),
}

/// A follow-up task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// The task's id.
    pub id: TaskId,
    /// What it is about.
    pub subject: TaskSubject,
    /// What to do.
    pub title: String,
    /// Who does it.
    pub assignee: UserId,
    /// When it is due (moved by snoozing, and by completing a recurring task).
    pub due_at: DateTime<Utc>,
    /// Repeat every this many days after completion, if set.
    pub every_days: Option<u32>,
    /// When it was last completed for good; `None` while open.
    pub done_at: Option<DateTime<Utc>>,
    /// The due instant it was last announced for (announced once per due instant).
    pub announced_for: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 300;

impl Task {
    /// An open task due at `due_at`. Errors: validation on `title`, and on `due_at` outside
    /// the supported range ([`crate::clock::check_instant`]).
    pub fn new(
        subject: TaskSubject,
        title: &str,
        assignee: UserId,
        due_at: DateTime<Utc>,
    ) -> Result<Self> {
        crate::clock::check_instant("due_at", due_at)?;
        let title = title.trim();
        if title.is_empty()
            || title.chars().count() > MAX_TITLE_CHARS
            || title.chars().any(char::is_control)
        {
            return Err(Error::validation(
                "title",
                format!("must be 1 to {MAX_TITLE_CHARS} characters, no control characters"),
            ));
        }
        Ok(Task {
            id: TaskId::new(),
            subject,
            title: title.to_string(),
            assignee,
            due_at,
            every_days: None,
            done_at: None,
            announced_for: None,
            version: 1,
        })
    }

    /// Makes it recur every `days` days. Errors: validation on `every_days` (0 or over
    /// ten years).
    pub fn every_days(mut self, days: u32) -> Result<Self> {
        if days == 0 || days > 3660 {
            return Err(Error::validation("every_days", "must be 1 to 3660"));
        }
        self.every_days = Some(days);
        Ok(self)
    }

    /// Whether it is still to do.
    pub fn is_open(&self) -> bool {
        self.done_at.is_none()
    }

    /// Whether it is due at `now` and not yet announced for its current due time.
    pub fn needs_reminder(&self, now: DateTime<Utc>) -> bool {
        self.is_open() && self.due_at <= now && self.announced_for != Some(self.due_at)
    }

    /// Moves the due time to `until` (it is announced again then).
    pub fn snooze(&mut self, until: DateTime<Utc>) {
        self.due_at = until;
    }

    /// Completes it at `at`: a recurring task moves to its next due time after `at`
    /// (whole periods after the current due time) and stays open; another is done, and so
    /// is a recurring one whose next due time would be past the supported range.
    pub fn complete(&mut self, at: DateTime<Utc>) {
        let next = self.every_days.and_then(|days| {
            let period = Duration::days(i64::from(days));
            let next = self.due_at.checked_add_signed(period)?;
            let next = if next <= at {
                let behind = (at - next).num_seconds() / period.num_seconds() + 1;
                next.checked_add_signed(period.checked_mul(i32::try_from(behind).ok()?)?)?
            } else {
                next
            };
            crate::clock::check_instant("due_at", next).ok()
        });
        match next {
            Some(next) => self.due_at = next,
            None => self.done_at = Some(at),
        }
    }
}

/// Filters for listing tasks; `None` fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskQuery {
    /// Tasks of this assignee.
    pub assignee: Option<UserId>,
    /// Tasks about this customer or case.
    pub subject: Option<TaskSubject>,
    /// Only open tasks.
    pub open_only: bool,
    /// Only open tasks due by this instant and not yet announced for their due time.
    pub needing_reminder_at: Option<DateTime<Utc>>,
}

impl TaskQuery {
    /// Whether `task` passes every filter.
    pub fn matches(&self, task: &Task) -> bool {
        self.assignee.is_none_or(|a| a == task.assignee)
            && self.subject.is_none_or(|s| s == task.subject)
            && (!self.open_only || task.is_open())
            && self
                .needing_reminder_at
                .is_none_or(|now| task.needs_reminder(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
    }

    #[test]
    fn snooze_and_complete() {
        let mut t = Task::new(
            TaskSubject::Customer(CustomerId::new()),
            "Call back",
            UserId::new(),
            t0(),
        )
        .unwrap();
        assert!(t.needs_reminder(t0()));
        t.announced_for = Some(t.due_at);
        assert!(!t.needs_reminder(t0() + Duration::hours(1)));
        t.snooze(t0() + Duration::hours(2));
        assert!(!t.needs_reminder(t0() + Duration::hours(1)));
        assert!(
            t.needs_reminder(t0() + Duration::hours(2)),
            "announced again when due again"
        );
        t.complete(t0() + Duration::hours(3));
        assert!(!t.is_open());
        assert!(!t.needs_reminder(t0() + Duration::days(9)));
    }

    #[test]
    fn recurring_tasks_roll_to_the_next_period_after_completion() {
        let mut t = Task::new(
            TaskSubject::Customer(CustomerId::new()),
            "Visit",
            UserId::new(),
            t0(),
        )
        .unwrap()
        .every_days(7)
        .unwrap();
        t.complete(t0() + Duration::days(1));
        assert_eq!(t.due_at, t0() + Duration::days(7));
        t.complete(t0() + Duration::days(30)); // weeks late
        assert_eq!(t.due_at, t0() + Duration::days(35));
        assert!(t.is_open());
        assert_eq!(
            t.clone().every_days(0).unwrap_err().field(),
            Some("every_days")
        );
        assert!(Task::new(
            TaskSubject::Case(CaseId::new()),
            "\u{7}",
            UserId::new(),
            t0()
        )
        .is_err());
    }
}
