//! Time is injected: domain logic asks a [`Clock`], never the system time directly.

use std::fmt;
use std::sync::Mutex;

use chrono::{DateTime, Duration, DurationRound, Utc};

/// A source of the current time. Timestamps are kept to microsecond precision everywhere
/// (what every storage adapter can store exactly).
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// Truncates an instant to whole microseconds.
pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::microseconds(1)).unwrap_or(t)
}

/// The first supported instant, 1900-01-01T00:00:00Z, in microseconds since the epoch.
pub const MIN_INSTANT_MICROS: i64 = -2_208_988_800_000_000;
/// The last supported instant, 9999-12-31T23:59:59.999999Z, in microseconds since the epoch.
pub const MAX_INSTANT_MICROS: i64 = 253_402_300_799_999_999;

/// The first supported instant (1900-01-01T00:00:00Z).
///
/// Instants a host supplies (when an interaction occurred, when a case was opened, when a
/// task is due) must lie in `[min_instant(), max_instant()]`; outside it they are a
/// validation error naming the field. Calendars clamp to the range, so local dates around
/// it stay far inside what the date library can represent in any time zone.
pub fn min_instant() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(MIN_INSTANT_MICROS).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The last supported instant (9999-12-31T23:59:59.999999Z); see [`min_instant`].
pub fn max_instant() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(MAX_INSTANT_MICROS).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at` itself when it is within the supported range, else a validation error on `field`.
pub fn check_instant(field: &str, at: DateTime<Utc>) -> Result<DateTime<Utc>, crate::Error> {
    if at < min_instant() || at > max_instant() {
        return Err(crate::Error::validation(
            field,
            format!(
                "{at} is outside the supported range {} to {}",
                min_instant(),
                max_instant()
            ),
        ));
    }
    Ok(at)
}

/// `at` moved into the supported range.
pub fn clamp_instant(at: DateTime<Utc>) -> DateTime<Utc> {
    at.clamp(min_instant(), max_instant())
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_to_micros(Utc::now())
    }
}

/// A clock that stands still until told to move: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(truncate_to_micros(start)))
    }

    /// Sets the time.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = truncate_to_micros(to);
    }

    /// Moves the time forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t = truncate_to_micros(*t + by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_supported_range_is_1900_to_9999() {
        assert_eq!(min_instant().to_rfc3339(), "1900-01-01T00:00:00+00:00");
        assert_eq!(
            max_instant().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "9999-12-31T23:59:59.999999Z"
        );
        assert!(check_instant("at", min_instant()).is_ok());
        assert!(check_instant("at", max_instant()).is_ok());
        for bad in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            assert_eq!(check_instant("at", bad).unwrap_err().field(), Some("at"));
            assert!(clamp_instant(bad) == min_instant() || clamp_instant(bad) == max_instant());
        }
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::from_timestamp(1_700_000_000, 999).unwrap();
        let c = ManualClock::new(start);
        assert_eq!(c.now().timestamp_subsec_nanos(), 0);
        c.advance(Duration::hours(1));
        assert_eq!(c.now().timestamp(), 1_700_003_600);
        assert!(SystemClock
            .now()
            .timestamp_subsec_nanos()
            .is_multiple_of(1000));
    }
}
