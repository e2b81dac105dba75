//! The stored configuration types on arbitrary JSON: deserialising never panics, and
//! whatever is accepted serialises to a form that reads back equal (what a store writes
//! is what it reads). Calendars, KPI rules, pool policies, segments, cases and tasks.
#![no_main]

use crm_core::calendar::BusinessCalendar;
use crm_core::case::Case;
use crm_core::kpi::KpiRule;
use crm_core::pool::PoolPolicy;
use crm_core::segment::Segment;
use crm_core::task::Task;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(text: &str) {
    if let Ok(value) = serde_json::from_str::<T>(text) {
        let json = serde_json::to_string(&value).expect("an accepted value serialises");
        let back: T = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
        assert_eq!(back, value, "{json}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    round_trip::<BusinessCalendar>(text);
    round_trip::<KpiRule>(text);
    round_trip::<PoolPolicy>(text);
    round_trip::<Segment>(text);
    round_trip::<Case>(text);
    round_trip::<Task>(text);
});
