//! Compiled calendars: a calendar's working time precomputed, so questions take a binary search.

use super::*;

/// A calendar's working time over a range of dates, precomputed as spans of real time with
/// running totals, so that both questions take a binary search (tens of nanoseconds)
/// instead of a walk over the days. Outside its range it asks the calendar itself, so
/// answers are the same everywhere.
#[derive(Clone, Debug)]
pub struct CompiledCalendar {
    calendar: BusinessCalendar,
    /// Working spans `[start, end)` in microseconds since the epoch, in order.
    spans: Vec<(i64, i64)>,
    /// Working microseconds before each span (from the range start).
    before: Vec<i64>,
    /// Working microseconds up to the end of each span.
    through: Vec<i64>,
    /// The range covered: `[from, to)` in microseconds.
    from: i64,
    to: i64,
}

impl CompiledCalendar {
    /// The most local dates one compiled calendar covers (about a century); beyond them
    /// answers come from the calendar itself.
    pub const MAX_DAYS: u64 = 36_600;

    /// Precomputes the working spans of local dates `first` to `last`. The dates are
    /// clamped to those of the supported instant range, and the range to
    /// [`CompiledCalendar::MAX_DAYS`] days from `first`; an empty range (`last` before
    /// `first`) covers nothing. Outside what it covers it asks the calendar, so every
    /// answer is the calendar's.
    pub fn new(calendar: &BusinessCalendar, first: NaiveDate, last: NaiveDate) -> Self {
        let lowest = crate::clock::min_instant().date_naive() + chrono::Days::new(1);
        let highest = crate::clock::max_instant().date_naive() - chrono::Days::new(1);
        let first = first.clamp(lowest, highest);
        let last = last
            .clamp(lowest, highest)
            .min(first + chrono::Days::new(Self::MAX_DAYS));
        let micros = |t: DateTime<Utc>| t.timestamp_micros();
        let day_start = |d: NaiveDate| {
            let local = NaiveDateTime::from(d);
            // The earliest instant of the local date, whatever its offset.
            calendar
                .time_zone
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&(local - Duration::hours(14))))
        };
        let from = micros(day_start(first));
        let to = last
            .succ_opt()
            .map(|d| micros(day_start(d)))
            .unwrap_or(i64::MAX)
            .max(from);
        let mut spans: Vec<(i64, i64)> = Vec::new();
        for (a, b) in calendar.spans_between(first, last) {
            let (a, b) = (micros(a).max(from), micros(b).min(to));
            if a >= b {
                continue;
            }
            match spans.last_mut() {
                Some(last) if last.1 == a => last.1 = b,
                _ => spans.push((a, b)),
            }
        }
        let mut before = Vec::with_capacity(spans.len());
        let mut through = Vec::with_capacity(spans.len());
        let mut total = 0;
        for (a, b) in &spans {
            before.push(total);
            total += b - a;
            through.push(total);
        }
        CompiledCalendar {
            calendar: calendar.clone(),
            spans,
            before,
            through,
            from,
            to,
        }
    }

    /// The calendar it was compiled from.
    pub fn calendar(&self) -> &BusinessCalendar {
        &self.calendar
    }

    /// Working microseconds in `[range start, t)`; `t` within the range.
    fn worked_before(&self, t: i64) -> i64 {
        let i = self.spans.partition_point(|(a, _)| *a <= t);
        if i == 0 {
            return 0;
        }
        let (a, b) = self.spans[i - 1];
        self.before[i - 1] + (t.min(b) - a)
    }

    fn covers(&self, t: i64) -> bool {
        self.from <= t && t <= self.to
    }

    /// As [`BusinessCalendar::business_time`].
    pub fn business_time(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        if to <= from {
            return Duration::zero();
        }
        let (a, b) = (from.timestamp_micros(), to.timestamp_micros());
        if !(self.covers(a) && self.covers(b)) {
            return self.calendar.business_time(from, to);
        }
        Duration::microseconds(self.worked_before(b) - self.worked_before(a))
    }

    /// As [`BusinessCalendar::add_business_time`].
    pub fn add_business_time(
        &self,
        start: DateTime<Utc>,
        amount: Duration,
    ) -> Option<DateTime<Utc>> {
        if amount <= Duration::zero() {
            return Some(start);
        }
        let s = start.timestamp_micros();
        let Some(amount_us) = amount.num_microseconds() else {
            return self.calendar.add_business_time(start, amount);
        };
        if !self.covers(s) {
            return self.calendar.add_business_time(start, amount);
        }
        let Some(target) = self.worked_before(s).checked_add(amount_us) else {
            return self.calendar.add_business_time(start, amount);
        };
        let i = self.through.partition_point(|t| *t < target);
        if i == self.spans.len() {
            // Not within the range: continue from its end with what is left.
            let total = self.through.last().copied().unwrap_or(0);
            let end = DateTime::from_timestamp_micros(self.to)?;
            return self
                .calendar
                .add_business_time(end.max(start), Duration::microseconds(target - total));
        }
        let (a, _) = self.spans[i];
        let at = a + (target - self.before[i]);
        DateTime::from_timestamp_micros(at.max(s))
    }
}
