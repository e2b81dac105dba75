//! KPI rules on deals: a stalled deal, a deal its owner has not touched, an expected close
//! date passed.

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::sales::Opportunity;

/// What a rule on deals measures, in whole days of the calendar (open deals only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DealMeasure {
    /// Days in the current stage: a stalled deal.
    DaysInStage,
    /// Days since the owner last touched the deal: the latest of its last stage move, its
    /// creation, when the owner got it, and the last interaction the owner handled with
    /// its account or one of its contacts.
    DaysSinceOwnerTouch,
    /// Days since the expected close date: 1 on the day after it.
    DaysPastCloseDate,
}

impl DealMeasure {
    /// The name as serialised (`days_in_stage`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DealMeasure::DaysInStage => "days_in_stage",
            DealMeasure::DaysSinceOwnerTouch => "days_since_owner_touch",
            DealMeasure::DaysPastCloseDate => "days_past_close_date",
        }
    }

    /// When the measured period of `deal` began; `touched` is the owner's last
    /// interaction with the deal's account or contacts, if any.
    pub fn since(self, deal: &Opportunity, touched: Option<DateTime<Utc>>) -> DateTime<Utc> {
        match self {
            DealMeasure::DaysInStage => deal.stage_entered_at,
            DealMeasure::DaysSinceOwnerTouch => deal
                .stage_entered_at
                .max(deal.created_at)
                .max(deal.owned_since.unwrap_or(deal.created_at))
                .max(touched.unwrap_or(deal.created_at)),
            DealMeasure::DaysPastCloseDate => deal.close_date.and_time(NaiveTime::MIN).and_utc(),
        }
    }
}

/// Whole days from `since` to `now` (0 when `now` is earlier).
pub fn days_since(since: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    now.signed_duration_since(since).num_days().max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{CustomerId, UserId};
    use crate::sales::{ForecastCategory, Pipeline, Stage};
    use crate::Money;
    use chrono::{Duration, NaiveDate, TimeZone};

    #[test]
    fn periods_begin_where_each_measure_says() {
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let pipeline = Pipeline::new(
            "P",
            vec![
                Stage::open("qualify", "Qualify", 10, ForecastCategory::Pipeline).unwrap(),
                Stage::open("proposal", "Proposal", 40, ForecastCategory::BestCase).unwrap(),
                Stage::won("won", "Won").unwrap(),
                Stage::lost("lost", "Lost").unwrap(),
            ],
        )
        .unwrap();
        let close = NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
        let mut deal = Opportunity::new(
            "Deal",
            CustomerId::new(),
            UserId::new(),
            &pipeline,
            Money::parse("10", "EUR").unwrap(),
            close,
            at,
        )
        .unwrap();
        deal.stage_entered_at = at + Duration::days(3);
        assert_eq!(
            DealMeasure::DaysInStage.since(&deal, None),
            at + Duration::days(3)
        );
        let touch = DealMeasure::DaysSinceOwnerTouch;
        assert_eq!(touch.since(&deal, None), at + Duration::days(3));
        assert_eq!(touch.since(&deal, Some(at)), at + Duration::days(3));
        assert_eq!(
            touch.since(&deal, Some(at + Duration::days(5))),
            at + Duration::days(5)
        );
        deal.owned_since = Some(at + Duration::days(7));
        assert_eq!(
            touch.since(&deal, Some(at + Duration::days(5))),
            at + Duration::days(7),
            "a new owner's period begins when they got the deal"
        );
        deal.owned_since = None;
        let past = DealMeasure::DaysPastCloseDate.since(&deal, None);
        assert_eq!(past, Utc.with_ymd_and_hms(2026, 3, 31, 0, 0, 0).unwrap());
        assert_eq!(days_since(past, past + Duration::hours(23)), 0);
        assert_eq!(days_since(past, past + Duration::hours(24)), 1);
        assert_eq!(days_since(past, past - Duration::days(3)), 0);
        for m in [
            DealMeasure::DaysInStage,
            DealMeasure::DaysSinceOwnerTouch,
            DealMeasure::DaysPastCloseDate,
        ] {
            let json = serde_json::to_value(m).unwrap();
            assert_eq!(json, m.as_str());
        }
    }
}
