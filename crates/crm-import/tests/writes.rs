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

#[tokio::test]
async fn companies_become_accounts_on_the_memory_store() {
    companies_become_accounts(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn companies_become_accounts_on_sqlite() {
    let store = crm_sqlite::SqliteStore::open_in_memory().expect("open");
    companies_become_accounts(Arc::new(store)).await;
}

/// A company column: each company becomes one organisation (however it is spelt in
/// spacing and case), each person its contact (primary unless they have a primary account
/// already), organisation rows ignore it, a bad company name rejects the row, and a second
/// run changes nothing.
async fn companies_become_accounts(store: Arc<dyn Storage>) {
    use crm_core::sales::{Relationship, RelationshipQuery};
    let (crm, _) = crm(&store);
    let tenant = TenantId::new();
    let t = crm.tenant(tenant);
    // Already related elsewhere, as primary: the imported company is not made primary.
    let other = register(
        &crm,
        tenant,
        Customer::organization("Other Ltd").build().unwrap(),
    )
    .await;
    let file = "no,name,kind,company\n\
        P1,Pat,person,Acme GmbH\n\
        P2,Quinn,person,  acme   gmbh \n\
        P3,Robin,person,\n\
        O1,Zeta AG,organization,Acme GmbH\n\
        P4,Sam,person,Bolt\n\
        P5,Bad,person,\"Bad\u{7}Co\"\n";
    let mapping = CustomerMapping::new("erp", "no")
        .name("name")
        .kind("kind")
        .company("company");
    let run = || {
        let t = t.clone();
        let mapping = mapping.clone();
        async move {
            import_customers(
                &t,
                file.as_bytes(),
                &mapping,
                &ImportOptions::default(),
                |_| {},
            )
            .await
            .unwrap()
        }
    };
    // Sam works at Other Ltd already, as his primary account.
    let sam = t
        .sources()
        .upsert(
            "erp",
            "P4",
            &crm_core::sync::SourceFields {
                name: Some("Sam".into()),
                ..Default::default()
            },
            &[],
        )
        .await
        .unwrap()
        .customer()
        .clone();
    t.accounts()
        .relate(Relationship::new(other.id, sam.id, t0()).primary())
        .await
        .unwrap();

    let report = run().await;
    assert_eq!(
        (report.accounts, report.relationships),
        (2, 3),
        "{report:?}"
    );
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(
        (report.rejected[0].line, report.rejected[0].column.as_str()),
        (7, "company")
    );
    let find = |id: &str| {
        let store = store.clone();
        let key = ExternalRef::new("erp", id).unwrap();
        async move {
            store
                .list_customers(
                    tenant,
                    &CustomerQuery {
                        external_id: Some(key),
                        ..CustomerQuery::default()
                    },
                    &PageRequest::first(2),
                )
                .await
                .unwrap()
                .items
        }
    };
    let acme = find(&crm_import::company_key("Acme GmbH")).await;
    assert_eq!(acme.len(), 1);
    assert_eq!(acme[0].name.as_str(), "Acme GmbH");
    assert_eq!(acme[0].kind, crm_core::PartyKind::Organization);
    let contacts = store
        .relationships(
            tenant,
            &RelationshipQuery::Contacts(acme[0].id),
            &PageRequest::first(10),
        )
        .await
        .unwrap()
        .items;
    let pat = find("P1").await[0].id;
    let quinn = find("P2").await[0].id;
    let mut people: Vec<_> = contacts.iter().map(|r| (r.person, r.primary)).collect();
    people.sort();
    let mut want = vec![(pat, true), (quinn, true)];
    want.sort();
    assert_eq!(
        people, want,
        "Zeta AG (an organisation) is nobody's contact"
    );
    let sams = store
        .relationships(
            tenant,
            &RelationshipQuery::Accounts(sam.id),
            &PageRequest::first(10),
        )
        .await
        .unwrap()
        .items;
    let primaries: Vec<_> = sams
        .iter()
        .filter(|r| r.primary)
        .map(|r| r.organization)
        .collect();
    assert_eq!((sams.len(), primaries), (2, vec![other.id]));

    let again = run().await;
    assert_eq!(
        (again.accounts, again.relationships, again.created),
        (0, 0, 0)
    );
}
