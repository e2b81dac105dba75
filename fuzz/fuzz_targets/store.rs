//! Round trips through storage: arbitrary JSON read as a customer and as interactions,
//! and whatever the core accepts is written to the in-memory store and to SQLite and
//! read back equal from both (profiles equal a rebuild too).
#![no_main]

use std::sync::Arc;

use crm_core::{Clock, Crm, Customer, Interaction, ManualClock, Storage, TenantId};
use libfuzzer_sys::fuzz_target;

async fn check(store: Arc<dyn Storage>, customer: &Customer, interactions: &[Interaction]) {
    let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("an instant");
    let clock = Arc::new(ManualClock::new(at));
    let crm = Crm::new(store.clone()).with_clock(clock.clone());
    let tenant = TenantId::new();
    let Ok(stored) = crm.register(tenant, customer.clone()).await else {
        return;
    };
    assert_eq!(crm.customer(tenant, stored.id).await.expect("reads back"), stored);
    let rows: Vec<Interaction> = interactions
        .iter()
        .cloned()
        .map(|mut i| {
            i.customer = stored.id;
            i
        })
        .collect();
    if crm.log_batch(tenant, rows.clone()).await.is_err() {
        return;
    }
    let timeline = crm_testkit::conformance::full_timeline(&store, tenant, stored.id, 100).await;
    let mut seen = std::collections::BTreeSet::new();
    for i in rows.iter().filter(|i| seen.insert(i.key.clone())) {
        let mut expected = i.clone();
        expected.recorded_at = clock.now();
        assert!(timeline.contains(&expected), "{expected:?} reads back");
    }
    crm_testkit::conformance::assert_profile_is_rebuild(&store, tenant, stored.id).await;
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (head, tail) = text.split_once('\n').unwrap_or((text, "[]"));
    let Ok(customer) = serde_json::from_str::<Customer>(head) else {
        return;
    };
    let interactions: Vec<Interaction> = serde_json::from_str(tail).unwrap_or_default();
    if interactions.len() > 50 {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        check(Arc::new(crm_testkit::MemoryStore::new()), &customer, &interactions).await;
        let sqlite = crm_sqlite::SqliteStore::open_in_memory().expect("an in-memory database");
        check(Arc::new(sqlite), &customer, &interactions).await;
    });
});
