//! Customer resources that cannot walk out: daily quotas, the access log, and the report
//! of unusual access.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::UserId;

/// What a principal takes out of the system, counted per day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessKind {
    /// Customers read with their contact points unmasked (one per customer).
    ContactReads,
    /// Customers exported (one per export).
    Exports,
}

impl AccessKind {
    /// Both kinds.
    pub const ALL: [AccessKind; 2] = [AccessKind::ContactReads, AccessKind::Exports];

    /// `contact_reads` or `exports`: the form adapters store.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKind::ContactReads => "contact_reads",
            AccessKind::Exports => "exports",
        }
    }

    /// The kind from [`AccessKind::as_str`]'s form.
    pub fn parse(text: &str) -> Option<AccessKind> {
        AccessKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// How the kind reads in an error: `contact reads`, `exports`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            AccessKind::ContactReads => "contact reads",
            AccessKind::Exports => "exports",
        }
    }
}

/// One entry of the access log: who took how many of what, through which call, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// The principal.
    pub user: UserId,
    /// What was taken.
    pub kind: AccessKind,
    /// The call (`customers.search`, `privacy.export`, ...).
    pub operation: String,
    /// How many (customers).
    pub count: u64,
    /// When.
    pub at: DateTime<Utc>,
}

impl AccessEntry {
    /// Most characters of an operation's name.
    pub const MAX_OPERATION_CHARS: usize = 100;

    /// Checks the operation's name (1 to 100 characters, no control characters) and that
    /// the count is not zero; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let chars = self.operation.chars().count();
        if chars == 0
            || chars > Self::MAX_OPERATION_CHARS
            || self.operation.chars().any(char::is_control)
        {
            return Err(Error::validation(
                "operation",
                "1 to 100 characters, no control characters",
            ));
        }
        if self.count == 0 {
            return Err(Error::validation("count", "must be at least 1"));
        }
        crate::clock::check_instant("at", self.at)?;
        Ok(())
    }

    /// The UTC day the entry counts in.
    pub fn day(&self) -> NaiveDate {
        self.at.date_naive()
    }
}

/// How many of one kind a user took on one UTC day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyUsage {
    /// The user.
    pub user: UserId,
    /// The UTC day.
    pub day: NaiveDate,
    /// What.
    pub kind: AccessKind,
    /// How many.
    pub count: u64,
}

/// A user who took far more on one day than they usually do.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnusualAccess {
    /// The user.
    pub user: UserId,
    /// The UTC day.
    pub day: NaiveDate,
    /// What.
    pub kind: AccessKind,
    /// How many that day.
    pub count: u64,
    /// The user's usual day: the median of their earlier days in the window, days without
    /// use counting as zero.
    pub usual: f64,
}

/// What counts as unusual in [`unusual_access`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnusualRule {
    /// How many earlier days make the usual day (1 to 366).
    pub lookback_days: u32,
    /// How many times the usual day is unusual (at least 1).
    pub factor: f64,
    /// Below this count nothing is unusual (a quiet user reading ten customers once is
    /// not a leak).
    pub min_count: u64,
}

impl Default for UnusualRule {
    /// Four weeks back, three times the usual day, at least 50.
    fn default() -> Self {
        UnusualRule {
            lookback_days: 28,
            factor: 3.0,
            min_count: 50,
        }
    }
}

impl UnusualRule {
    /// Checks the bounds; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if !(1..=366).contains(&self.lookback_days) {
            return Err(Error::validation("lookback_days", "1 to 366"));
        }
        if !self.factor.is_finite() || self.factor < 1.0 {
            return Err(Error::validation("factor", "a finite number, at least 1"));
        }
        Ok(())
    }
}

/// The users whose use of one kind on `day` is at least `rule.min_count` and more than
/// `rule.factor` times their usual day (the median over the `rule.lookback_days` days
/// before, zero for a day without use), from their daily usage; largest count first.
/// Errors: validation of `rule`.
pub fn unusual_access(
    usage: &[DailyUsage],
    day: NaiveDate,
    rule: &UnusualRule,
) -> Result<Vec<UnusualAccess>> {
    rule.validate()?;
    let first = day
        .checked_sub_days(chrono::Days::new(u64::from(rule.lookback_days)))
        .unwrap_or(NaiveDate::MIN);
    let mut earlier: BTreeMap<(UserId, AccessKind), Vec<u64>> = BTreeMap::new();
    let mut today: BTreeMap<(UserId, AccessKind), u64> = BTreeMap::new();
    for u in usage {
        if u.day == day {
            let c = today.entry((u.user, u.kind)).or_default();
            *c = c.saturating_add(u.count);
        } else if u.day >= first && u.day < day {
            earlier.entry((u.user, u.kind)).or_default().push(u.count);
        }
    }
    let mut out: Vec<UnusualAccess> = today
        .into_iter()
        .filter(|(_, count)| *count >= rule.min_count)
        .filter_map(|((user, kind), count)| {
            let mut days = earlier.remove(&(user, kind)).unwrap_or_default();
            // Days without use count as zero.
            days.resize(rule.lookback_days as usize, 0);
            days.sort_unstable();
            let n = days.len();
            let usual = if n % 2 == 1 {
                days[n / 2] as f64
            } else {
                (days[n / 2 - 1] as f64 + days[n / 2] as f64) / 2.0
            };
            (count as f64 > rule.factor * usual).then_some(UnusualAccess {
                user,
                day,
                kind,
                count,
                usual,
            })
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.user.cmp(&b.user)));
    Ok(out)
}
