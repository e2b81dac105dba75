//! The store fuzz target's seed reaches every part of the target: its customer registers,
//! and its pipeline and deal (the last two lines) are stored and read back, so a fuzzing
//! run starts from an input that exercises the sales port.

use std::sync::Arc;

use crm_core::sales::{Opportunity, Pipeline};
use crm_core::{Crm, Customer, ManualClock, TenantId};
use crm_testkit::MemoryStore;

#[tokio::test]
async fn the_store_seed_opens_its_deal() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/seeds/store/everything"
    );
    let text = std::fs::read_to_string(path).expect("the seed");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        8,
        "customer, interactions, case, task, segment, KPI rule, pipeline, deal"
    );
    let customer: Customer = serde_json::from_str(lines[0]).expect("a customer");
    let pipeline: Pipeline = serde_json::from_str(lines[6]).expect("a pipeline");
    let mut deal: Opportunity = serde_json::from_str(lines[7]).expect("a deal");
    let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("an instant");
    let crm = Crm::new(Arc::new(MemoryStore::new())).with_clock(Arc::new(ManualClock::new(at)));
    let tenant = crm.tenant(TenantId::new());
    let stored = tenant
        .customers()
        .register(customer)
        .await
        .expect("registers");
    let sales = tenant.sales();
    let pipeline = sales.create_pipeline(pipeline).await.expect("pipeline");
    deal.pipeline = pipeline.id;
    deal.account = stored.id;
    let opened = sales.open(deal).await.expect("the deal opens");
    assert_eq!(sales.get(opened.id).await.expect("reads back"), opened);
}
