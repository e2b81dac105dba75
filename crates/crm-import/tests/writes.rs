//! What the importer writes, through the whole core, on the in-memory store and on SQLite:
//! bad rows reported and never written, good rows written, matches by natural key, and
//! re-runs that change nothing.

use std::sync::Arc;

use crm_core::{
    Crm, Customer, CustomerQuery, ExternalRef, Lifecycle, ManualClock, PageRequest, Storage,
    TenantId,
};
use crm_import::{
    import_customers, import_interactions, CustomerMapping, ImportOptions, InteractionMapping,
};
use crm_testkit::conformance::{assert_profile_is_rebuild, t0};
use crm_testkit::MemoryStore;

fn crm(store: &Arc<dyn Storage>) -> (Crm, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t0()));
    (Crm::new(store.clone()).with_clock(clock.clone()), clock)
}

async fn register(crm: &Crm, tenant: TenantId, c: Customer) -> Customer {
    crm.tenant(tenant)
        .customers()
        .register(c)
        .await
        .expect("register")
}

#[tokio::test]
async fn on_the_memory_store() {
    writes_good_rows_reports_bad_ones_and_is_idempotent(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn on_sqlite() {
    let store = crm_sqlite::SqliteStore::open_in_memory().expect("open");
    writes_good_rows_reports_bad_ones_and_is_idempotent(Arc::new(store)).await;
}

/// CSV import: bad rows are reported (line, column, reason) and never written, good
/// rows are, a row matching another system's customer by email updates it, and a second
/// run of the same files changes nothing.
#[rustfmt::skip]
async fn writes_good_rows_reports_bad_ones_and_is_idempotent(store: Arc<dyn Storage>) {
    use crm_core::segment::AttrType;
    use crm_core::sync::NaturalKey;
    let (crm, _) = crm(&store);
    let tenant = TenantId::new();
    // Registered earlier by another system: the file's row with this email updates it.
    let known = register(&crm, tenant, Customer::person("Lena Jensen").email("lena@example.com").build().unwrap()).await;
    let customers = "no,name,email,phone,stage,born,tags\n\
        C1,Ada Lovelace,ada@example.com,+44 20 7946 0001,active,1815-12-10,vip;b2b\n\
        C2,Charles Babbage,not-an-email,,lead,,\n\
        C3,Mary Somerville,mary@example.com,,superstar,,\n\
        ,No Id,noid@example.com,,,,\n\
        C5,Lena Jensen,LENA@example.com,,active,,\n\
        C6,Grace Hopper,grace@example.com,+1 212 555,,,\n\
        C7,,nameless@example.com,,,,\n\
        C8,Alan Turing,alan@example.com,,,1912-13-23,\n\
        C1,Ada Lovelace,,,,,newsletter\n";
    let mapping = CustomerMapping::new("erp", "no").name("name").email("email").phone("phone")
        .lifecycle("stage").tags("tags")
        .attribute("born", "birth_date", AttrType::Date).unwrap()
        .natural_key(NaturalKey::Email);
    let options = ImportOptions { batch_size: 3, ..ImportOptions::default() };
    let mut calls = 0;
    let report = import_customers(&crm.tenant(tenant), customers.as_bytes(), &mapping, &options, |_| calls += 1).await.unwrap();
    let rejected: Vec<(u64, &str)> = report.rejected.iter().map(|r| (r.line, r.column.as_str())).collect();
    assert_eq!(rejected, [(3, "email"), (4, "stage"), (5, "no"), (7, "phone"), (8, "name"), (9, "born")], "{:?}", report.rejected);
    assert_eq!(report.rows, 9);
    assert_eq!((report.created, report.updated, report.unchanged), (1, 2, 0), "per row: C1 new, C5 matched by email, C1 again in a later batch; {report:?}");
    assert!(calls >= 2, "progress after every batch");
    let all = crm.storage().list_customers(tenant, &CustomerQuery::all(), &PageRequest::first(100)).await.unwrap().items;
    let mut names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Ada Lovelace", "Lena Jensen"], "only good rows are written");
    let ada = all.iter().find(|c| c.name.as_str() == "Ada Lovelace").unwrap();
    let tags: Vec<&str> = ada.tags.iter().map(|t| t.as_str()).collect();
    assert_eq!(tags, ["b2b", "newsletter", "vip"], "both rows for C1 applied, in order");
    let lena = all.iter().find(|c| c.id == known.id).unwrap();
    assert!(lena.external_ids.contains(&ExternalRef::new("erp", "C5").unwrap()));
    assert_eq!(lena.lifecycle, Lifecycle::Active);

    let interactions = "id,customer,channel,kind,at,amount,currency\n\
        T1,C1,store,purchase,2025-03-01T10:00:00Z,120.50,EUR\n\
        T2,C1,email,email,2025-03-02,,\n\
        T3,C9,phone,call,2025-03-02,,\n\
        T4,C5,pigeon,call,2025-03-02,,\n\
        T5,C5,phone,complaint,yesterday,,\n\
        T6,C5,store,purchase,2025-03-03,10,\n\
        T7,C5,store,purchase,2025-03-04,10,XYZ\n\
        T8,C5,phone,complaint,2025-03-05T08:00:00+01:00,,\n";
    let imapping = InteractionMapping::new("pos", "id", "customer", "channel", "kind", "at")
        .customer_source("erp").amount("amount", "currency");
    let ireport = import_interactions(&crm.tenant(tenant), interactions.as_bytes(), &imapping, &options, |_| {}).await.unwrap();
    let rejected: Vec<(u64, &str)> = ireport.rejected.iter().map(|r| (r.line, r.column.as_str())).collect();
    assert_eq!(rejected, [(4, "customer"), (5, "channel"), (6, "at"), (7, "currency"), (8, "currency")], "{:?}", ireport.rejected);
    assert_eq!((ireport.inserted, ireport.duplicates), (3, 0));
    assert_eq!(crm.tenant(tenant).customers().profile(ada.id).await.unwrap().interaction_count, 2);
    assert_eq!(crm.tenant(tenant).customers().profile(known.id).await.unwrap().complaint_count, 1);
    for id in [ada.id, known.id] {
        assert_profile_is_rebuild(&store, tenant, id).await;
    }

    // The same files again: nothing changes.
    let again = import_customers(&crm.tenant(tenant), customers.as_bytes(), &mapping, &options, |_| {}).await.unwrap();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 3), "{again:?}");
    assert_eq!(again.rejected, report.rejected);
    let after = crm.storage().list_customers(tenant, &CustomerQuery::all(), &PageRequest::first(100)).await.unwrap().items;
    assert_eq!(after, all, "no record changed, versions included");
    let iagain = import_interactions(&crm.tenant(tenant), interactions.as_bytes(), &imapping, &options, |_| {}).await.unwrap();
    assert_eq!((iagain.inserted, iagain.duplicates), (0, 3));
    assert_eq!(crm.tenant(tenant).customers().profile(ada.id).await.unwrap().interaction_count, 2);
}
