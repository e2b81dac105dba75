//! Round trips through storage: arbitrary JSON lines read as a customer, its interactions,
//! a case, a task, a segment, a KPI rule, a pipeline and a deal (on the customer, in the
//! pipeline); whatever the core accepts is written to the
//! in-memory store and to SQLite and read back equal from both (profiles equal a rebuild
//! too).
#![no_main]

use crm_core::WriteOptions;
use std::sync::Arc;

use crm_core::case::Case;
use crm_core::kpi::KpiRule;
use crm_core::sales::{Opportunity, OpportunityQuery, Pipeline};
use crm_core::segment::{FieldSchema, Segment};
use crm_core::task::{Task, TaskSubject};
use crm_core::{Clock, Crm, Currency, Customer, Interaction, ManualClock, Storage, TenantId};

/// What one input holds, each part optional but the customer.
struct Records {
    customer: Customer,
    interactions: Vec<Interaction>,
    case: Option<Case>,
    task: Option<Task>,
    segment: Option<Segment>,
    kpi_rule: Option<KpiRule>,
    pipeline: Option<Pipeline>,
    deal: Option<Opportunity>,
}
use libfuzzer_sys::fuzz_target;

async fn check(store: Arc<dyn Storage>, records: &Records) {
    let (customer, interactions) = (&records.customer, &records.interactions);
    let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("an instant");
    let clock = Arc::new(ManualClock::new(at));
    let crm = Crm::new(store.clone()).with_clock(clock.clone());
    let tenant = TenantId::new();
    let Ok(stored) = crm.tenant(tenant).customers().register(customer.clone()).await else {
        return;
    };
    assert_eq!(crm.tenant(tenant).customers().get(stored.id).await.expect("reads back"), stored);
    let rows: Vec<Interaction> = interactions
        .iter()
        .cloned()
        .map(|mut i| {
            i.customer = stored.id;
            i
        })
        .collect();
    if crm.tenant(tenant).interactions().log_batch(rows.clone()).await.is_err() {
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
    if let Some(case) = &records.case {
        let mut case = case.clone();
        case.customer = stored.id;
        if store.insert_case(tenant, &case, WriteOptions::new()).await.is_ok() {
            assert_eq!(store.get_case(tenant, case.id).await.expect("reads back"), case);
        }
    }
    if let Some(task) = &records.task {
        let mut task = task.clone();
        task.subject = TaskSubject::Customer(stored.id);
        if store.insert_task(tenant, &task).await.is_ok() {
            assert_eq!(store.get_task(tenant, task.id).await.expect("reads back"), task);
        }
    }
    if let Some(segment) = &records.segment {
        let schema = FieldSchema::new(Currency::parse("EUR").expect("EUR"));
        if let Ok(saved) = crm.tenant(tenant).segments().create(segment.clone(), &schema).await {
            assert_eq!(store.get_segment(tenant, saved.id).await.expect("reads back"), saved);
        }
    }
    if let Some(rule) = &records.kpi_rule {
        if crm.tenant(tenant).kpis().add_rule(rule.clone()).await.is_ok() {
            let stored = crm.tenant(tenant).kpis().rules().await.expect("rules");
            assert!(stored.iter().any(|r| r.rule == *rule), "{rule:?} reads back");
        }
    }
    if let Some(pipeline) = &records.pipeline {
        let sales = crm.tenant(tenant).sales();
        let Ok(pipeline) = sales.create_pipeline(pipeline.clone()).await else {
            return;
        };
        assert_eq!(sales.pipeline(pipeline.id).await.expect("reads back"), pipeline);
        if let Some(deal) = &records.deal {
            let mut deal = deal.clone();
            deal.pipeline = pipeline.id;
            deal.account = stored.id;
            deal.contacts.clear();
            if let Ok(opened) = sales.open(deal).await {
                assert_eq!(sales.get(opened.id).await.expect("reads back"), opened);
                let listed = sales
                    .list(&OpportunityQuery::default(), &crm_core::PageRequest::first(10))
                    .await
                    .expect("lists");
                assert_eq!(listed.items, vec![opened]);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let Ok(customer) = serde_json::from_str::<Customer>(lines.next().unwrap_or("")) else {
        return;
    };
    let mut next = || lines.next().unwrap_or("");
    let records = Records {
        customer,
        interactions: serde_json::from_str(next()).unwrap_or_default(),
        case: serde_json::from_str(next()).ok(),
        task: serde_json::from_str(next()).ok(),
        segment: serde_json::from_str(next()).ok(),
        kpi_rule: serde_json::from_str(next()).ok(),
        pipeline: serde_json::from_str(next()).ok(),
        deal: serde_json::from_str(next()).ok(),
    };
    if records.interactions.len() > 50 {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        check(Arc::new(crm_testkit::MemoryStore::new()), &records).await;
        let sqlite = crm_sqlite::SqliteStore::open_in_memory().expect("an in-memory database");
        check(Arc::new(sqlite), &records).await;
    });
});
