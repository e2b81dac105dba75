//! Business calendars: when a service standard's clock runs.
//!
//! A [`BusinessCalendar`] is a time zone, working intervals per weekday (several a day, for
//! example 09:00–12:00 and 13:30–18:00), holidays, and extra working days (weekend days
//! that are worked, as with make-up working days). Two pure functions answer the SLA
//! questions: [`BusinessCalendar::business_time`] (how much working time lies between two
//! instants) and [`BusinessCalendar::add_business_time`] (the instant a given amount of
//! working time after a start). Both work on real elapsed time across DST changes: an
//! interval 01:00–04:00 on the night clocks go forward holds two hours, on the night they go
//! back four. Working time is every instant whose local wall-clock time lies in a working
//! interval of its local date.
//!
//! ```
//! use chrono::{DateTime, Duration, Utc};
//! use crm_core::calendar::BusinessCalendar;
//!
//! let cal: BusinessCalendar = serde_json::from_str(r#"{
//!     "time_zone": "Asia/Shanghai",
//!     "week": {
//!         "mon": [["09:00", "12:00"], ["13:30", "18:00"]],
//!         "tue": [["09:00", "12:00"], ["13:30", "18:00"]],
//!         "wed": [["09:00", "12:00"], ["13:30", "18:00"]],
//!         "thu": [["09:00", "12:00"], ["13:30", "18:00"]],
//!         "fri": [["09:00", "12:00"], ["13:30", "18:00"]]
//!     },
//!     "holidays": ["2026-10-01", "2026-10-02"],
//!     "extra_working_days": ["2026-10-10"]
//! }"#)?;
//! // Friday 17:00 in Shanghai (09:00 UTC) plus 3 business hours: Monday 11:00 local.
//! let start: DateTime<Utc> = "2026-09-18T09:00:00Z".parse().unwrap();
//! let due = cal.add_business_time(start, Duration::hours(3)).unwrap();
//! assert_eq!(due, "2026-09-21T03:00:00Z".parse::<DateTime<Utc>>().unwrap());
//! assert_eq!(cal.business_time(start, due), Duration::hours(3));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike,
    Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::clock::clamp_instant;
use crate::error::{Error, Result};

mod compiled;
pub use compiled::CompiledCalendar;

/// Minutes in a day: an interval may end at 24:00.
const DAY_MINUTES: u16 = 24 * 60;

/// How far [`BusinessCalendar::add_business_time`] looks for working time before it gives
/// up (a calendar whose weekly schedule is empty has only its extra days).
const SEARCH_DAYS: i64 = 366 * 50;
/// The most holidays, and the most extra working days, one calendar holds (a century of
/// them, generously).
pub const MAX_SPECIAL_DAYS: usize = 10_000;

/// A working interval within one day, in local wall-clock minutes: `[start, end)`, with
/// `end` up to 24:00. Written `["09:00", "12:00"]` in serde.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    start: u16,
    end: u16,
}

fn parse_clock(text: &str, field: &str) -> Result<u16> {
    let bad = || {
        Error::validation(
            field,
            format!("{text:?} is not a time HH:MM (00:00 to 24:00)"),
        )
    };
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let minutes = h * 60 + m;
    if m >= 60 || minutes > DAY_MINUTES {
        return Err(bad());
    }
    Ok(minutes)
}

impl Interval {
    /// The interval from `start` to `end` (`"HH:MM"`, `end` may be `"24:00"`).
    /// Errors: validation on `interval` when a time is malformed or the interval is empty.
    pub fn parse(start: &str, end: &str) -> Result<Self> {
        let interval = Interval {
            start: parse_clock(start, "interval.start")?,
            end: parse_clock(end, "interval.end")?,
        };
        if interval.start >= interval.end {
            return Err(Error::validation(
                "interval",
                format!("{interval} is empty: it must end after it starts"),
            ));
        }
        Ok(interval)
    }

    /// The whole day, 00:00–24:00.
    pub const fn whole_day() -> Self {
        Interval {
            start: 0,
            end: DAY_MINUTES,
        }
    }

    /// Start, in minutes after local midnight.
    pub fn start_minutes(&self) -> u16 {
        self.start
    }

    /// End, in minutes after local midnight (at most 1440).
    pub fn end_minutes(&self) -> u16 {
        self.end
    }

    /// Whether a local time of day lies in `[start, end)`.
    pub fn contains(&self, time: NaiveTime) -> bool {
        let minute = (time.hour() * 60 + time.minute()) as u16;
        self.start <= minute && minute < self.end
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

impl Serialize for Interval {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let clock = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        (clock(self.start), clock(self.end)).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let (start, end) = <(String, String)>::deserialize(d)?;
        Interval::parse(&start, &end).map_err(serde::de::Error::custom)
    }
}

/// Working intervals for each weekday (absent days are not worked). Serde keys: `mon` to
/// `sun`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Week {
    /// Monday.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mon: Vec<Interval>,
    /// Tuesday.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tue: Vec<Interval>,
    /// Wednesday.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wed: Vec<Interval>,
    /// Thursday.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thu: Vec<Interval>,
    /// Friday.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fri: Vec<Interval>,
    /// Saturday.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sat: Vec<Interval>,
    /// Sunday.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sun: Vec<Interval>,
}

impl Week {
    /// The same intervals Monday to Friday.
    pub fn weekdays(intervals: &[Interval]) -> Self {
        Week {
            mon: intervals.to_vec(),
            tue: intervals.to_vec(),
            wed: intervals.to_vec(),
            thu: intervals.to_vec(),
            fri: intervals.to_vec(),
            ..Week::default()
        }
    }

    /// Every day, all day.
    pub fn always() -> Self {
        let all = [Interval::whole_day()];
        Week {
            sat: all.to_vec(),
            sun: all.to_vec(),
            ..Week::weekdays(&all)
        }
    }

    /// The intervals of a weekday.
    pub fn day(&self, day: Weekday) -> &[Interval] {
        match day {
            Weekday::Mon => &self.mon,
            Weekday::Tue => &self.tue,
            Weekday::Wed => &self.wed,
            Weekday::Thu => &self.thu,
            Weekday::Fri => &self.fri,
            Weekday::Sat => &self.sat,
            Weekday::Sun => &self.sun,
        }
    }

    fn days(&self) -> [(&'static str, &[Interval]); 7] {
        [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
        ]
    }
}

/// The weekday whose intervals an extra working day uses when none is named.
fn default_template() -> WeekdayName {
    WeekdayName(Weekday::Mon)
}

/// A weekday, written `mon` to `sun`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeekdayName(pub Weekday);

impl Serialize for WeekdayName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string().to_lowercase())
    }
}

impl<'de> Deserialize<'de> for WeekdayName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Weekday::from_str(&text)
            .map(WeekdayName)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a weekday")))
    }
}

/// Time zone, weekly working intervals, holidays and extra working days.
///
/// Build one with [`BusinessCalendar::new`] or from serde (both validate); the default is
/// 24/7 in UTC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BusinessCalendar {
    #[serde(serialize_with = "serialize_tz")]
    time_zone: Tz,
    week: Week,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    holidays: BTreeSet<NaiveDate>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    extra_working_days: BTreeSet<NaiveDate>,
    extra_day_hours: WeekdayName,
}

fn serialize_tz<S: serde::Serializer>(tz: &Tz, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

/// The serde form, checked by [`BusinessCalendar::new`] on the way in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    time_zone: String,
    week: Week,
    #[serde(default)]
    holidays: BTreeSet<NaiveDate>,
    #[serde(default)]
    extra_working_days: BTreeSet<NaiveDate>,
    #[serde(default = "default_template")]
    extra_day_hours: WeekdayName,
}

impl<'de> Deserialize<'de> for BusinessCalendar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = RawCalendar::deserialize(d)?;
        let tz = Tz::from_str(&raw.time_zone).map_err(|_| {
            serde::de::Error::custom(format!("unknown time zone {:?}", raw.time_zone))
        })?;
        BusinessCalendar::new(tz, raw.week)
            .and_then(|c| c.with_holidays(raw.holidays))
            .and_then(|c| c.with_extra_working_days(raw.extra_working_days))
            .map(|c| c.with_extra_day_hours(raw.extra_day_hours.0))
            .map_err(serde::de::Error::custom)
    }
}

impl Default for BusinessCalendar {
    /// Every instant is working time (24/7), in UTC.
    fn default() -> Self {
        BusinessCalendar {
            time_zone: Tz::UTC,
            week: Week::always(),
            holidays: BTreeSet::new(),
            extra_working_days: BTreeSet::new(),
            extra_day_hours: default_template(),
        }
    }
}

/// Sorts a day's intervals and refuses overlaps.
fn check_day(name: &str, intervals: &[Interval]) -> Result<Vec<Interval>> {
    let mut sorted = intervals.to_vec();
    sorted.sort();
    for pair in sorted.windows(2) {
        if pair[1].start < pair[0].end {
            return Err(Error::validation(
                format!("week.{name}"),
                format!("intervals {} and {} overlap", pair[0], pair[1]),
            ));
        }
    }
    Ok(sorted)
}

impl BusinessCalendar {
    /// A calendar in `time_zone` with working intervals `week`.
    ///
    /// Errors: validation on `week.<day>` when two intervals of a day overlap (empty
    /// intervals cannot be built).
    pub fn new(time_zone: Tz, week: Week) -> Result<Self> {
        let mut checked = Week::default();
        for (name, intervals) in week.days() {
            let sorted = check_day(name, intervals)?;
            match name {
                "mon" => checked.mon = sorted,
                "tue" => checked.tue = sorted,
                "wed" => checked.wed = sorted,
                "thu" => checked.thu = sorted,
                "fri" => checked.fri = sorted,
                "sat" => checked.sat = sorted,
                _ => checked.sun = sorted,
            }
        }
        Ok(BusinessCalendar {
            time_zone,
            week: checked,
            holidays: BTreeSet::new(),
            extra_working_days: BTreeSet::new(),
            extra_day_hours: default_template(),
        })
    }

    /// 24/7 in UTC (the default).
    pub fn always() -> Self {
        Self::default()
    }

    /// Adds holidays (dates not worked). Errors: validation on `holidays` for a date that
    /// is also an extra working day.
    pub fn with_holidays(mut self, days: impl IntoIterator<Item = NaiveDate>) -> Result<Self> {
        self.holidays.extend(days);
        self.check_days()?;
        Ok(self)
    }

    /// Adds extra working days (dates worked although their weekday is not), worked with
    /// the intervals of [`BusinessCalendar::with_extra_day_hours`] (Monday's by default).
    /// Errors: validation on `holidays` for a date that is also a holiday.
    pub fn with_extra_working_days(
        mut self,
        days: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<Self> {
        self.extra_working_days.extend(days);
        self.check_days()?;
        Ok(self)
    }

    /// Which weekday's intervals an extra working day follows.
    pub fn with_extra_day_hours(mut self, day: Weekday) -> Self {
        self.extra_day_hours = WeekdayName(day);
        self
    }

    fn check_days(&self) -> Result<()> {
        for (field, days) in [
            ("holidays", &self.holidays),
            ("extra_working_days", &self.extra_working_days),
        ] {
            if days.len() > MAX_SPECIAL_DAYS {
                return Err(Error::validation(
                    field,
                    format!("at most {MAX_SPECIAL_DAYS} dates"),
                ));
            }
        }
        match self.holidays.intersection(&self.extra_working_days).next() {
            Some(day) => Err(Error::validation(
                "holidays",
                format!("{day} is both a holiday and an extra working day"),
            )),
            None => Ok(()),
        }
    }

    /// The time zone.
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// The working intervals of a local date (none on holidays).
    pub fn intervals_on(&self, date: NaiveDate) -> &[Interval] {
        if self.holidays.contains(&date) {
            &[]
        } else if self.extra_working_days.contains(&date) {
            self.week.day(self.extra_day_hours.0)
        } else {
            self.week.day(date.weekday())
        }
    }

    /// Whether `at` is working time.
    pub fn is_working(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.time_zone).naive_local();
        self.intervals_on(local.date())
            .iter()
            .any(|i| i.contains(local.time()))
    }

    /// The UTC offset in force at `at`, in seconds.
    fn offset_at(&self, at: DateTime<Utc>) -> i32 {
        self.time_zone
            .offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc()
    }

    /// The spans of real time `[from, to)` whose local date is `date` and whose local time
    /// lies in `interval`, in order. Usually one span; two when clocks go back inside it.
    fn spans(&self, date: NaiveDate, interval: Interval) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let midnight = NaiveDateTime::from(date);
        let local_from = midnight + Duration::minutes(i64::from(interval.start));
        let local_to = midnight + Duration::minutes(i64::from(interval.end));
        // Every offset in force on the day is in force somewhere in a window of a day and a
        // half around it in UTC: walk that window in pieces of constant offset.
        let window_start = Utc.from_utc_datetime(&(midnight - Duration::hours(15)));
        let window_end = Utc.from_utc_datetime(&(midnight + Duration::hours(39)));
        let mut out = Vec::new();
        for (seg_from, seg_to, offset) in self.constant_offset_pieces(window_start, window_end) {
            let offset = Duration::seconds(i64::from(offset));
            let from = Utc.from_utc_datetime(&(local_from - offset)).max(seg_from);
            let to = Utc.from_utc_datetime(&(local_to - offset)).min(seg_to);
            if from < to {
                match out.last_mut() {
                    Some((_, last_to)) if *last_to == from => *last_to = to,
                    _ => out.push((from, to)),
                }
            }
        }
        out
    }

    /// Splits `[from, to)` at every offset change, returning each piece with its offset.
    fn constant_offset_pieces(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>, i32)> {
        let mut pieces = Vec::new();
        let mut start = from;
        while start < to {
            let offset = self.offset_at(start);
            let end = if self.offset_at(to - Duration::seconds(1)) == offset {
                // Assumes at most one change per direction inside a window of 54 hours,
                // which holds for every zone in the database.
                to
            } else {
                self.next_change(start, to, offset)
            };
            pieces.push((start, end, offset));
            start = end;
        }
        pieces
    }

    /// The first instant after `from` (and before `to`) whose offset differs from
    /// `offset`, to the second, by bisection.
    fn next_change(&self, from: DateTime<Utc>, to: DateTime<Utc>, offset: i32) -> DateTime<Utc> {
        // Offsets change on whole seconds: bisect on whole seconds.
        let (mut lo, mut hi) = (from.timestamp(), to.timestamp());
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or(to);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.offset_at(at(mid)) == offset {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        at(hi)
    }

    /// The working spans of every local date from `first` to `last`, in order.
    fn spans_between(
        &self,
        first: NaiveDate,
        last: NaiveDate,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        first
            .iter_days()
            .take_while(move |d| *d <= last)
            .flat_map(move |date| {
                self.intervals_on(date)
                    .iter()
                    .flat_map(move |i| self.spans(date, *i))
                    .collect::<Vec<_>>()
            })
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.time_zone).date_naive()
    }

    /// Working time in a week of a regular weekly pattern: every interval of every weekday.
    fn week_total(&self) -> Duration {
        let minutes: i64 = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ]
        .iter()
        .flat_map(|d| self.week.day(*d))
        .map(|i| i64::from(i.end - i.start))
        .sum();
        Duration::minutes(minutes)
    }

    /// Whether the seven local dates from `monday` on are worked by the weekly pattern
    /// alone: no holiday or extra working day among them, and one UTC offset over the
    /// whole window their spans can fall in (checked at every day boundary, with the same
    /// assumption as [`BusinessCalendar::spans`]: at most one change per direction within
    /// a day and a half). Their working time is then [`BusinessCalendar::week_total`].
    fn is_regular_week(&self, monday: NaiveDate) -> bool {
        let Some(sunday) = monday.checked_add_days(chrono::Days::new(6)) else {
            return false;
        };
        if self.holidays.range(monday..=sunday).next().is_some()
            || self
                .extra_working_days
                .range(monday..=sunday)
                .next()
                .is_some()
        {
            return false;
        }
        let midnight = Utc.from_utc_datetime(&NaiveDateTime::from(monday));
        let offset = self.offset_at(midnight - Duration::hours(15));
        // The spans of the week's days fall in [midnight - 15 h, midnight + 6 days + 39 h].
        (1..=8).all(|day| self.offset_at(midnight + Duration::hours(24 * day - 15)) == offset)
            && self.offset_at(midnight + Duration::hours(24 * 6 + 39)) == offset
    }

    /// Working time between `from` and `to` (zero when `to` is not after `from`).
    ///
    /// Both ends are clamped to the supported range ([`crate::clock::min_instant`] to
    /// [`crate::clock::max_instant`]). Days near the ends, weeks holding a holiday, an extra
    /// working day or a change of UTC offset are walked day by day; every other week
    /// counts in one step, so even the whole supported range takes a fraction of a second.
    pub fn business_time(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let (from, to) = (clamp_instant(from), clamp_instant(to));
        if to <= from {
            return Duration::zero();
        }
        let (from_day, to_day) = (self.local_date(from), self.local_date(to));
        let first = from_day.pred_opt().unwrap_or(from_day);
        let last = to_day.succ_opt().unwrap_or(to_day);
        let week = self.week_total();
        let mut total = Duration::zero();
        let mut date = first;
        while date <= last {
            // A whole week strictly inside (from, to) in local dates: its spans lie
            // entirely within the range.
            let inside = date > from_day
                && date
                    .checked_add_days(chrono::Days::new(7))
                    .is_some_and(|end| end < to_day);
            if inside && date.weekday() == Weekday::Mon && self.is_regular_week(date) {
                total += week;
                date = date + chrono::Days::new(7);
                continue;
            }
            for interval in self.intervals_on(date) {
                for (a, b) in self.spans(date, *interval) {
                    total += (b.min(to) - a.max(from)).max(Duration::zero());
                }
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        total
    }

    /// The instant at which `amount` of working time has passed since `start`: the end of
    /// a target of `amount` business time started at `start`. `start` itself for a zero
    /// or negative amount; `None` if the calendar has no working time left within 50
    /// years (a calendar without weekly hours, past its last extra day).
    ///
    /// `None` too when the end would be past the supported range
    /// ([`crate::clock::max_instant`]); a `start` outside the range counts from its edge.
    /// Regular weeks (see [`BusinessCalendar::business_time`]) are passed in one step.
    pub fn add_business_time(
        &self,
        start: DateTime<Utc>,
        amount: Duration,
    ) -> Option<DateTime<Utc>> {
        if amount <= Duration::zero() {
            return Some(start);
        }
        let start = clamp_instant(start);
        let mut left = amount;
        let start_day = self.local_date(start);
        let first = start_day.pred_opt().unwrap_or(start_day);
        let last = first
            .checked_add_days(chrono::Days::new(SEARCH_DAYS as u64))?
            .min(self.local_date(crate::clock::max_instant()));
        let week = self.week_total();
        let mut date = first;
        while date <= last {
            if date > start_day
                && date.weekday() == Weekday::Mon
                && left > week
                && self.is_regular_week(date)
            {
                left -= week;
                date = date + chrono::Days::new(7);
                continue;
            }
            for interval in self.intervals_on(date) {
                for (a, b) in self.spans(date, *interval) {
                    if b <= start {
                        continue;
                    }
                    let a = a.max(start);
                    let span = b - a;
                    if left <= span {
                        return a
                            .checked_add_signed(left)
                            .and_then(|end| crate::clock::check_instant("end", end).ok());
                    }
                    left -= span;
                }
            }
            date = date.succ_opt()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn office(tz: Tz) -> BusinessCalendar {
        let day = [
            Interval::parse("09:00", "12:00").unwrap(),
            Interval::parse("13:30", "18:00").unwrap(),
        ];
        BusinessCalendar::new(tz, Week::weekdays(&day)).unwrap()
    }

    /// Working minutes in `[from, to)`, one minute at a time: the slow obvious oracle.
    fn walk(cal: &BusinessCalendar, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        let mut t = from;
        let mut n = 0;
        while t < to {
            if cal.is_working(t) {
                n += 1;
            }
            t += Duration::minutes(1);
        }
        n
    }

    #[test]
    fn the_default_is_24_7() {
        let cal = BusinessCalendar::default();
        let (a, b) = (utc("2026-12-31T22:00:00Z"), utc("2027-01-02T01:30:00Z"));
        assert_eq!(cal.business_time(a, b), b - a);
        assert_eq!(
            cal.add_business_time(a, Duration::hours(27)),
            Some(a + Duration::hours(27))
        );
    }

    #[test]
    fn office_hours_skip_lunch_nights_and_weekends() {
        let cal = office(chrono_tz::Asia::Shanghai);
        // Friday 2026-09-18 17:00 local is 09:00 UTC.
        let fri_5pm = utc("2026-09-18T09:00:00Z");
        assert_eq!(
            cal.add_business_time(fri_5pm, Duration::hours(3)),
            Some(utc("2026-09-21T03:00:00Z")),
            "1 h on Friday, 2 h on Monday morning"
        );
        let mon_11am = utc("2026-09-21T03:00:00Z");
        assert_eq!(
            cal.add_business_time(mon_11am, Duration::hours(2)),
            Some(utc("2026-09-21T06:30:00Z")),
            "lunch 12:00-13:30 does not count"
        );
        assert_eq!(
            cal.business_time(fri_5pm, utc("2026-09-21T06:30:00Z")),
            Duration::hours(5)
        );
    }

    #[test]
    fn holidays_and_make_up_days() {
        let cal = office(chrono_tz::Asia::Shanghai)
            .with_holidays([NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()])
            .unwrap()
            .with_extra_working_days([NaiveDate::from_ymd_opt(2026, 10, 10).unwrap()])
            .unwrap();
        // Thursday 1 October is a holiday: a Wednesday 17:00 start resumes on Friday.
        let wed_5pm = utc("2026-09-30T09:00:00Z");
        assert_eq!(
            cal.add_business_time(wed_5pm, Duration::hours(2)),
            Some(utc("2026-10-02T02:00:00Z"))
        );
        // Saturday 10 October is worked with Monday's hours.
        let sat = utc("2026-10-10T01:00:00Z"); // 09:00 local
        assert!(cal.is_working(sat));
        assert!(
            !cal.is_working(utc("2026-10-03T01:00:00Z")),
            "an ordinary Saturday"
        );
        let clash = office(chrono_tz::Asia::Shanghai)
            .with_holidays([NaiveDate::from_ymd_opt(2026, 10, 10).unwrap()])
            .unwrap()
            .with_extra_working_days([NaiveDate::from_ymd_opt(2026, 10, 10).unwrap()]);
        assert_eq!(clash.unwrap_err().field(), Some("holidays"));
    }

    #[test]
    fn dst_nights_hold_real_time() {
        let night = [Interval::parse("01:00", "04:00").unwrap()];
        let sundays = Week {
            sun: night.to_vec(),
            ..Week::default()
        };
        let cal = BusinessCalendar::new(chrono_tz::Europe::Berlin, sundays).unwrap();
        // Clocks go forward on 2026-03-29 (02:00 -> 03:00) and back on 2026-10-25.
        let spring = cal.business_time(utc("2026-03-28T12:00:00Z"), utc("2026-03-29T12:00:00Z"));
        assert_eq!(spring, Duration::hours(2));
        let autumn = cal.business_time(utc("2026-10-24T12:00:00Z"), utc("2026-10-25T12:00:00Z"));
        assert_eq!(autumn, Duration::hours(4));
        let start = utc("2026-10-24T23:00:00Z"); // 01:00 CEST
        assert_eq!(
            cal.add_business_time(start, Duration::hours(4)),
            Some(utc("2026-10-25T03:00:00Z"))
        );
    }

    #[test]
    fn bad_calendars_name_the_field() {
        let overlap = Week {
            tue: vec![
                Interval::parse("09:00", "12:00").unwrap(),
                Interval::parse("11:00", "13:00").unwrap(),
            ],
            ..Week::default()
        };
        let e = BusinessCalendar::new(Tz::UTC, overlap).unwrap_err();
        assert_eq!(e.field(), Some("week.tue"));
        assert_eq!(
            Interval::parse("10:00", "10:00").unwrap_err().field(),
            Some("interval")
        );
        assert_eq!(
            Interval::parse("25:00", "26:00").unwrap_err().field(),
            Some("interval.start")
        );
        assert_eq!(
            Interval::parse("09:00", "24:01").unwrap_err().field(),
            Some("interval.end")
        );
        let json = r#"{"time_zone": "Mars/Olympus", "week": {}}"#;
        assert!(serde_json::from_str::<BusinessCalendar>(json).is_err());
        let json = r#"{"time_zone": "UTC", "week": {"mon": [["09:00", "08:00"]]}}"#;
        assert!(serde_json::from_str::<BusinessCalendar>(json).is_err());
    }

    #[test]
    fn serde_round_trips() {
        let cal = office(chrono_tz::America::New_York)
            .with_holidays([NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()])
            .unwrap();
        let json = serde_json::to_string(&cal).unwrap();
        assert!(json.contains(r#""time_zone":"America/New_York""#), "{json}");
        assert!(json.contains(r#"["09:00","12:00"]"#), "{json}");
        let back: BusinessCalendar = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cal);
    }

    #[test]
    fn no_working_time_left_is_none() {
        let never = BusinessCalendar::new(Tz::UTC, Week::default()).unwrap();
        let start = utc("2026-01-01T00:00:00Z");
        assert_eq!(never.add_business_time(start, Duration::hours(1)), None);
        assert_eq!(
            never.add_business_time(start, Duration::zero()),
            Some(start)
        );
        let sundays = Week {
            sun: vec![Interval::whole_day()],
            ..Week::default()
        };
        let cal = BusinessCalendar::new(Tz::UTC, sundays)
            .unwrap()
            .with_extra_day_hours(Weekday::Sun)
            .with_extra_working_days([NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()])
            .unwrap();
        // Friday 2 January is worked like a Sunday; Sunday 4 January as usual.
        assert_eq!(
            cal.add_business_time(start, Duration::hours(30)),
            Some(utc("2026-01-04T06:00:00Z"))
        );
    }

    fn zones() -> impl Strategy<Value = Tz> {
        prop_oneof![
            Just(chrono_tz::Asia::Shanghai),
            Just(chrono_tz::Europe::Berlin),
            Just(chrono_tz::America::New_York),
            Just(chrono_tz::Australia::Lord_Howe), // half-hour DST
            Just(Tz::UTC),
        ]
    }

    fn day_intervals() -> impl Strategy<Value = Vec<Interval>> {
        // Up to three intervals on a half-hour grid, then drop overlaps.
        prop::collection::vec((0u16..48, 1u16..12), 0..3).prop_map(|raw| {
            let mut out: Vec<Interval> = Vec::new();
            let mut pieces: Vec<(u16, u16)> = raw
                .into_iter()
                .map(|(s, len)| (s * 30, ((s + len) * 30).min(DAY_MINUTES)))
                .collect();
            pieces.sort();
            for (start, end) in pieces {
                if start < end && out.last().is_none_or(|l| l.end <= start) {
                    out.push(Interval { start, end });
                }
            }
            out
        })
    }

    fn calendars() -> impl Strategy<Value = BusinessCalendar> {
        (
            zones(),
            prop::collection::vec(day_intervals(), 7),
            0u32..30,
            0u32..30,
        )
            .prop_map(|(tz, days, holiday, extra)| {
                let week = Week {
                    mon: days[0].clone(),
                    tue: days[1].clone(),
                    wed: days[2].clone(),
                    thu: days[3].clone(),
                    fri: days[4].clone(),
                    sat: days[5].clone(),
                    sun: days[6].clone(),
                };
                let base = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
                let holiday = base + Duration::days(i64::from(holiday));
                let extra = base + Duration::days(i64::from(extra));
                let cal = BusinessCalendar::new(tz, week)
                    .unwrap()
                    .with_holidays([holiday])
                    .unwrap();
                cal.clone().with_extra_working_days([extra]).unwrap_or(cal)
            })
    }

    /// Instants on a minute grid around DST changes (New York 8 March and 1 November,
    /// Berlin 29 March and 25 October, Lord Howe 5 April, half an hour) and a year end.
    fn instants() -> impl Strategy<Value = DateTime<Utc>> {
        let around = |start: &'static str, days: i64| {
            (0i64..60 * 24 * days).prop_map(move |m| utc(start) + Duration::minutes(m))
        };
        prop_oneof![
            around("2026-03-05T00:00:00Z", 6),
            around("2026-03-26T00:00:00Z", 12),
            around("2026-10-22T00:00:00Z", 13),
            around("2026-12-29T00:00:00Z", 6),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Business time equals the minute-by-minute walk, across DST changes and year ends.
        #[test]
        fn business_time_matches_the_minute_walk(cal in calendars(), a in instants(), len in 0i64..60 * 24 * 4) {
            let b = a + Duration::minutes(len);
            prop_assert_eq!(cal.business_time(a, b), Duration::minutes(walk(&cal, a, b)));
        }

        /// The compiled calendar answers exactly as the calendar, inside its range and out,
        /// at any precision.
        #[test]
        fn compiled_answers_as_the_calendar(cal in calendars(), a in instants(), len in 0i64..60 * 24 * 5, micros in 0i64..60_000_000, minutes in 0i64..60 * 40) {
            let compiled = CompiledCalendar::new(
                &cal,
                NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            );
            let a = a + Duration::microseconds(micros);
            let b = a + Duration::minutes(len);
            prop_assert_eq!(compiled.business_time(a, b), cal.business_time(a, b));
            let d = Duration::minutes(minutes) + Duration::microseconds(micros / 7);
            prop_assert_eq!(compiled.add_business_time(a, d), cal.add_business_time(a, d));
        }

        /// Over long ranges, stepping whole weeks gives the day-by-day answer, across DST
        /// changes, holidays and extra working days.
        #[test]
        fn whole_weeks_count_as_their_days(cal in calendars(), a in instants(), days in 0i64..800, minutes in 0i64..60 * 24) {
            let start = a - Duration::days(200);
            let end = start + Duration::days(days) + Duration::minutes(minutes);
            let first = cal.local_date(start).pred_opt().unwrap();
            let last = cal.local_date(end).succ_opt().unwrap();
            let by_days: Duration = cal
                .spans_between(first, last)
                .map(|(x, y)| (y.min(end) - x.max(start)).max(Duration::zero()))
                .sum();
            prop_assert_eq!(cal.business_time(start, end), by_days);
            let hours = Duration::hours(days * 3);
            if let Some(done) = cal.add_business_time(start, hours) {
                prop_assert_eq!(cal.business_time(start, done), hours);
            }
        }

        /// Adding business time lands where exactly that much has passed, on working time.
        #[test]
        fn add_is_the_inverse_of_between(cal in calendars(), a in instants(), minutes in 1i64..60 * 30) {
            let d = Duration::minutes(minutes);
            if let Some(end) = cal.add_business_time(a, d) {
                prop_assert_eq!(cal.business_time(a, end), d);
                prop_assert!(cal.is_working(end - Duration::minutes(1)), "the last minute is worked");
            } else {
                prop_assert!(cal.business_time(a, a + Duration::days(366)) < d);
            }
        }
    }

    #[test]
    fn the_edges_of_time_are_quick_and_never_panic() {
        let (min, max) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
        let always = BusinessCalendar::always();
        assert_eq!(
            always.business_time(min, max),
            crate::clock::max_instant() - crate::clock::min_instant()
        );
        // A zone with DST; one at +14 h, where local dates run ahead of UTC the most.
        for tz in [chrono_tz::Europe::Berlin, chrono_tz::Pacific::Kiritimati] {
            let cal = office(tz)
                .with_holidays([NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()])
                .unwrap();
            // A century of office hours, step by step, equals its whole weeks.
            let a = utc("2000-01-03T00:00:00Z");
            let b = utc("2100-01-04T00:00:00Z");
            assert!(cal.business_time(a, b) > Duration::hours(7 * 5 * 52 * 99));
            assert!(cal.business_time(min, max) > cal.business_time(a, b));
            assert_eq!(cal.business_time(max, min), Duration::zero());
            for start in [min, max, crate::clock::max_instant() - Duration::days(3)] {
                for amount in [Duration::hours(1), Duration::days(400), Duration::MAX] {
                    if let Some(end) = cal.add_business_time(start, amount) {
                        assert!(end <= crate::clock::max_instant());
                    }
                }
            }
            let widest =
                (tz == chrono_tz::Europe::Berlin).then_some((NaiveDate::MIN, NaiveDate::MAX));
            for (first, last) in [
                (NaiveDate::MIN, NaiveDate::MIN),
                (NaiveDate::MAX, NaiveDate::MAX),
                (NaiveDate::MAX, NaiveDate::MIN),
            ]
            .into_iter()
            .chain(widest)
            {
                let compiled = CompiledCalendar::new(&cal, first, last);
                assert_eq!(compiled.business_time(a, b), cal.business_time(a, b));
                assert_eq!(
                    compiled.add_business_time(a, Duration::MAX),
                    cal.add_business_time(a, Duration::MAX)
                );
                assert_eq!(
                    compiled.add_business_time(a, Duration::hours(30)),
                    cal.add_business_time(a, Duration::hours(30))
                );
            }
        }
    }

    #[test]
    fn special_days_are_bounded() {
        let start = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
        let many: Vec<NaiveDate> = start.iter_days().take(MAX_SPECIAL_DAYS + 1).collect();
        let e = BusinessCalendar::always()
            .with_holidays(many.clone())
            .unwrap_err();
        assert_eq!(e.field(), Some("holidays"));
        let e = BusinessCalendar::always()
            .with_extra_working_days(many[..MAX_SPECIAL_DAYS + 1].iter().copied())
            .unwrap_err();
        assert_eq!(e.field(), Some("extra_working_days"));
        let fine = BusinessCalendar::always()
            .with_holidays(many[..MAX_SPECIAL_DAYS].iter().copied())
            .unwrap();
        let json = serde_json::to_string(&fine).unwrap();
        assert_eq!(
            serde_json::from_str::<BusinessCalendar>(&json).unwrap(),
            fine
        );
    }
}
