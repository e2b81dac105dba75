//! Conformance cases: customer records: round trips, keys, versions, owners, search, pages, tenancy.

use super::*;

cases! {
    /// Every field of a customer survives a store round trip.
    async fn customer_round_trip_every_field(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = Customer::organization("Müller & Söhne 王 GmbH")
            .email("Info@Mueller.example")
            .email("sales@mueller.example")
            .phone("+49 30 1234567")
            .phone("+1 212 555 0143")
            .lifecycle(Lifecycle::AtRisk)
            .owner(UserId::new())
            .team(TeamId::new())
            .tag("VIP")
            .tag("b2b")
            .external_id("erp", "K-100")
            .external_id("web", "u/77")
            .attribute("industry", AttrValue::Text("auto".into()))
            .attribute("seats", AttrValue::Number(Decimal::new(12345, 2)))
            .attribute("active", AttrValue::Bool(true))
            .attribute("since", AttrValue::Date(chrono::NaiveDate::from_ymd_opt(2019, 12, 31).unwrap()))
            .attribute("limit", AttrValue::Money(Money::parse("5000.00", "EUR").unwrap()))
            .attribute("langs", AttrValue::TextList(vec!["de".into(), "zh".into()]))
            .consent(MarketingConsent { email: true, sms: false, phone: true })
            .referred_by(CustomerId::new())
            .build()
            .unwrap();
        let stored = register(&crm, tenant, c).await;
        let back = store.get_customer(tenant, stored.id).await.unwrap();
        assert_eq!(back, stored);
        assert_eq!(back.version, 1);
        assert_eq!(back.created_at, t0());
    }

    /// Reading an unknown customer is NotFound.
    async fn unknown_customer_is_not_found(store) {
        let tenant = TenantId::new();
        assert_not_found(store.get_customer(tenant, CustomerId::new()).await, "get");
        assert_not_found(store.get_profile(tenant, CustomerId::new()).await, "profile");
        assert_not_found(store.timeline(tenant, CustomerId::new(), &PageRequest::first(10)).await, "timeline");
        assert_not_found(store.ownership_history(tenant, CustomerId::new()).await, "history");
    }

    /// Inserting a second customer with the same id is Duplicate and changes nothing.
    async fn duplicate_customer_id_is_duplicate(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let first = register(&crm, tenant, simple("First")).await;
        let mut again = simple("Second");
        again.id = first.id;
        let r = crm.tenant(tenant).customers().register(again).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "got {r:?}");
        assert_eq!(store.get_customer(tenant, first.id).await.unwrap().name.as_str(), "First");
    }

    /// An external id already held by another customer of the tenant is Duplicate, on
    /// insert and on update.
    async fn duplicate_external_id_is_duplicate(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        register(&crm, tenant, Customer::person("A").external_id("erp", "1").build().unwrap()).await;
        let r = crm.tenant(tenant).customers().register(Customer::person("B").external_id("erp", "1").build().unwrap()).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "insert: got {r:?}");
        assert_eq!(list_all(&store, tenant, &CustomerQuery::all(), 10).await.len(), 1, "nothing half-written");
        let b = register(&crm, tenant, Customer::person("B").external_id("erp", "2").build().unwrap()).await;
        let mut changed = b.clone();
        changed.external_ids = [ExternalRef::new("erp", "1").unwrap()].into();
        let r = crm.tenant(tenant).customers().update(changed, None).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "update: got {r:?}");
        assert_eq!(store.get_customer(tenant, b.id).await.unwrap(), b);
    }

    /// An update is stored with the next version and a new `updated_at`.
    async fn update_bumps_version(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let mut c = register(&crm, tenant, simple("Ann")).await;
        clock.advance(Duration::minutes(5));
        c.lifecycle = Lifecycle::Active;
        c.tags.insert(Tag::parse("vip").unwrap());
        c.emails.push(EmailAddress::parse("ann@example.org").unwrap());
        let updated = crm.tenant(tenant).customers().update(c, None).await.unwrap();
        assert_eq!(updated.version, 2);
        assert_eq!(updated.updated_at, t0() + Duration::minutes(5));
        assert_eq!(updated.created_at, t0());
        assert_eq!(store.get_customer(tenant, updated.id).await.unwrap(), updated);
    }

    /// A stale version is Conflict and the stored record is unchanged.
    async fn stale_update_is_conflict(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("Ann")).await;
        let mut first = c.clone();
        first.lifecycle = Lifecycle::Active;
        let stored = crm.tenant(tenant).customers().update(first, None).await.unwrap();
        let mut stale = c.clone();
        stale.lifecycle = Lifecycle::Churned;
        let r = crm.tenant(tenant).customers().update(stale.clone(), None).await;
        assert!(matches!(r, Err(Error::Conflict { expected: 1, actual: 2, .. })), "got {r:?}");
        // The store itself checks the version, not only the service.
        stale.version = 2;
        let r = store.update_customer(tenant, &stale, 1, WriteOptions::new()).await;
        assert!(matches!(r, Err(Error::Conflict { .. })), "store: got {r:?}");
        assert_eq!(store.get_customer(tenant, c.id).await.unwrap(), stored);
    }

    /// Of many concurrent updates from the same version, exactly one wins.
    async fn concurrent_updates_exactly_one_wins(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("Ann")).await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            let mut next = c.clone();
            next.name = crm_core::DisplayName::parse(&format!("Ann {i}")).unwrap();
            next.version = 2;
            tasks.push(tokio::spawn(async move { store.update_customer(tenant, &next, 1, WriteOptions::new()).await }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => wins += 1,
                Err(Error::Conflict { .. }) => {}
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        assert_eq!(wins, 1);
        assert_eq!(store.get_customer(tenant, c.id).await.unwrap().version, 2);
    }

    /// Updating an unknown customer is NotFound.
    async fn update_unknown_is_not_found(store) {
        let tenant = TenantId::new();
        let mut c = simple("Ghost");
        c.version = 2;
        assert_not_found(store.update_customer(tenant, &c, 1, WriteOptions::new()).await, "update");
    }

    /// Owner changes are recorded, newest first, with who, why and the version.
    async fn owner_changes_are_recorded(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let (alice, bob, boss) = (UserId::new(), UserId::new(), UserId::new());
        let c = register(&crm, tenant, Customer::person("Ann").owner(alice).build().unwrap()).await;
        clock.advance(Duration::hours(1));
        let c = crm.tenant(tenant).customers().change_owner(c.id, Some(bob), 1, Some(boss), Some("alice left")).await.unwrap();
        assert_eq!((c.owner, c.version), (Some(bob), 2));
        clock.advance(Duration::hours(1));
        let mut c2 = c.clone();
        c2.owner = None;
        crm.tenant(tenant).customers().update(c2, Some(bob)).await.unwrap();
        let history = crm.tenant(tenant).customers().ownership_history(c.id).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!((history[0].from, history[0].to, history[0].version), (Some(bob), None, 3));
        assert_eq!(history[1].from, Some(alice));
        assert_eq!(history[1].to, Some(bob));
        assert_eq!(history[1].changed_by, Some(boss));
        assert_eq!(history[1].reason.as_deref(), Some("alice left"));
        assert_eq!(history[1].at, t0() + Duration::hours(1));
        assert_eq!(store.get_customer(tenant, c.id).await.unwrap().owner, None);
    }

    /// A stale owner change is Conflict and records nothing.
    async fn stale_owner_change_is_conflict(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("Ann")).await;
        crm.tenant(tenant).customers().change_owner(c.id, Some(UserId::new()), 1, None, None).await.unwrap();
        let r = crm.tenant(tenant).customers().change_owner(c.id, Some(UserId::new()), 1, None, None).await;
        assert!(matches!(r, Err(Error::Conflict { .. })), "got {r:?}");
        assert_eq!(crm.tenant(tenant).customers().ownership_history(c.id).await.unwrap().len(), 1);
    }

    /// Name-prefix search ignores case, in any script.
    async fn search_by_name_prefix(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        for n in ["Müller GmbH", "MÜLLER AG", "Mueller", "王小明", "王芳", "Miller"] {
            register(&crm, tenant, simple(n)).await;
        }
        let names = |q: &str| {
            let store = store.clone();
            let q = CustomerQuery { name_prefix: Some(q.to_string()), ..Default::default() };
            async move {
                let mut v: Vec<String> = list_all(&store, tenant, &q, 2).await.into_iter().map(|c| c.name.to_string()).collect();
                v.sort();
                v
            }
        };
        assert_eq!(names("mül").await, vec!["MÜLLER AG", "Müller GmbH"]);
        assert_eq!(names("王").await, vec!["王小明", "王芳"]);
        assert_eq!(names("M").await.len(), 4);
        assert!(names("Zed").await.is_empty());
        assert!(names("50%").await.is_empty(), "LIKE wildcards must be literal");
        assert!(names("_").await.is_empty(), "LIKE wildcards must be literal");
    }

    /// Email search matches any of the customer's addresses, ignoring case.
    async fn search_by_email(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, Customer::person("A").email("x@one.example").email("Shared@Two.example").build().unwrap()).await;
        let b = register(&crm, tenant, Customer::person("B").email("shared@two.example").build().unwrap()).await;
        register(&crm, tenant, Customer::person("C").email("c@three.example").build().unwrap()).await;
        let q = CustomerQuery { email: Some(EmailAddress::parse("SHARED@two.example").unwrap()), ..Default::default() };
        let ids: BTreeSet<_> = list_all(&store, tenant, &q, 10).await.into_iter().map(|c| c.id).collect();
        assert_eq!(ids, [a.id, b.id].into());
    }

    /// Phone search matches the E.164 form of any of the customer's numbers.
    async fn search_by_phone(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, Customer::person("A").phone("+49 30 1234567").phone("+1 212 555 0143").build().unwrap()).await;
        register(&crm, tenant, Customer::person("B").phone("+49 30 7654321").build().unwrap()).await;
        let q = CustomerQuery { phone: Some(PhoneNumber::parse("+12125550143").unwrap()), ..Default::default() };
        let found = list_all(&store, tenant, &q, 10).await;
        assert_eq!(found.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a.id]);
    }

    /// Tag search.
    async fn search_by_tag(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, Customer::person("A").tag("vip").tag("b2b").build().unwrap()).await;
        register(&crm, tenant, Customer::person("B").tag("b2b").build().unwrap()).await;
        let q = CustomerQuery { tag: Some(Tag::parse("VIP").unwrap()), ..Default::default() };
        assert_eq!(list_all(&store, tenant, &q, 10).await, vec![a]);
        let q = CustomerQuery { tag: Some(Tag::parse("b2b").unwrap()), ..Default::default() };
        assert_eq!(list_all(&store, tenant, &q, 1).await.len(), 2);
    }

    /// Owner and lifecycle filters combine with AND.
    async fn search_by_owner_and_lifecycle(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let (u1, u2) = (UserId::new(), UserId::new());
        let a = register(&crm, tenant, Customer::person("A").owner(u1).lifecycle(Lifecycle::Active).build().unwrap()).await;
        register(&crm, tenant, Customer::person("B").owner(u1).lifecycle(Lifecycle::Lead).build().unwrap()).await;
        register(&crm, tenant, Customer::person("C").owner(u2).lifecycle(Lifecycle::Active).build().unwrap()).await;
        let q = CustomerQuery { owner: Some(u1), lifecycle: Some(Lifecycle::Active), ..Default::default() };
        assert_eq!(list_all(&store, tenant, &q, 10).await, vec![a]);
        let q = CustomerQuery { owner: Some(u1), ..Default::default() };
        assert_eq!(list_all(&store, tenant, &q, 10).await.len(), 2);
        let q = CustomerQuery { lifecycle: Some(Lifecycle::Churned), ..Default::default() };
        assert!(list_all(&store, tenant, &q, 10).await.is_empty());
    }

    /// Lookup by an id in a source system.
    async fn search_by_external_id(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, Customer::person("A").external_id("erp", "K-1").build().unwrap()).await;
        register(&crm, tenant, Customer::person("B").external_id("web", "K-1").build().unwrap()).await;
        let q = CustomerQuery { external_id: Some(ExternalRef::new("erp", "K-1").unwrap()), ..Default::default() };
        assert_eq!(list_all(&store, tenant, &q, 10).await, vec![a]);
    }

    /// Paging through customers returns each exactly once, in id order.
    async fn customer_pages_have_no_gaps_or_repeats(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut gen = Generator::new(7);
        let mut ids = Vec::new();
        for _ in 0..57 {
            ids.push(register(&crm, tenant, gen.customer()).await.id);
        }
        ids.sort();
        for limit in [1, 10, 57, 100] {
            let got: Vec<_> = list_all(&store, tenant, &CustomerQuery::all(), limit).await.into_iter().map(|c| c.id).collect();
            assert_eq!(got, ids, "limit {limit}");
        }
        let first = store.list_customers(tenant, &CustomerQuery::all(), &PageRequest::first(57)).await.unwrap();
        assert!(first.next.is_none(), "an exactly full last page has no next cursor");
    }

    /// Customers inserted while a listing is paged through never cause a repeat or a gap
    /// among the customers that existed when it started.
    async fn customer_pages_under_concurrent_inserts(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut before = BTreeSet::new();
        for i in 0..40 {
            before.insert(register(&crm, tenant, simple(&format!("Old {i}"))).await.id);
        }
        let writer = {
            let crm = crm.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    crm.tenant(tenant).customers().register(simple(&format!("New {i}"))).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        };
        let seen = list_all(&store, tenant, &CustomerQuery::all(), 3).await;
        writer.await.unwrap();
        let ids: Vec<_> = seen.iter().map(|c| c.id).collect();
        let unique: BTreeSet<_> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "a customer was listed twice");
        assert!(before.is_subset(&unique), "a customer that existed before was skipped");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "not in id order");
    }

    /// A malformed cursor is a validation error naming `cursor`; a bad limit names `limit`.
    async fn bad_cursor_or_limit_is_validation(store) {
        let tenant = TenantId::new();
        let (crm, _) = crm(&store);
        let c = register(&crm, tenant, simple("A")).await;
        let bad = PageRequest::after(Cursor::from_text("garbage"), 10);
        let r = store.list_customers(tenant, &CustomerQuery::all(), &bad).await;
        assert_eq!(r.unwrap_err().field(), Some("cursor"));
        let r = store.timeline(tenant, c.id, &bad).await;
        assert_eq!(r.unwrap_err().field(), Some("cursor"));
        let r = crm.tenant(tenant).customers().search(&CustomerQuery::all(), &PageRequest::first(0)).await;
        assert_eq!(r.unwrap_err().field(), Some("limit"));
    }

    /// A customer failing validation is rejected with the field named and nothing stored.
    async fn invalid_customer_writes_nothing(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut c = simple("A");
        let email = EmailAddress::parse("a@x.example").unwrap();
        c.emails = vec![email.clone(), email];
        let r = crm.tenant(tenant).customers().register(c.clone()).await;
        assert_eq!(r.unwrap_err().field(), Some("emails[1]"));
        assert_not_found(store.get_customer(tenant, c.id).await, "rejected customer");
        assert!(list_all(&store, tenant, &CustomerQuery::all(), 10).await.is_empty());
    }

    /// Attributes and consent can be changed and removed by an update.
    async fn update_replaces_attributes_and_contact_points(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, Customer::person("A").email("a@x.example").tag("old").attribute("tier", AttrValue::Text("gold".into())).external_id("erp", "1").build().unwrap()).await;
        let mut next = c.clone();
        next.emails = vec![EmailAddress::parse("b@y.example").unwrap()];
        next.tags = [Tag::parse("new").unwrap()].into();
        next.attributes = Attributes::new();
        next.external_ids = [ExternalRef::new("erp", "2").unwrap()].into();
        next.consent.email = true;
        let stored = crm.tenant(tenant).customers().update(next, None).await.unwrap();
        assert_eq!(store.get_customer(tenant, c.id).await.unwrap(), stored);
        let by_old_email = CustomerQuery { email: Some(EmailAddress::parse("a@x.example").unwrap()), ..Default::default() };
        assert!(list_all(&store, tenant, &by_old_email, 10).await.is_empty(), "old email still indexed");
        let by_old_tag = CustomerQuery { tag: Some(Tag::parse("old").unwrap()), ..Default::default() };
        assert!(list_all(&store, tenant, &by_old_tag, 10).await.is_empty(), "old tag still indexed");
        let by_new_ref = CustomerQuery { external_id: Some(ExternalRef::new("erp", "2").unwrap()), ..Default::default() };
        assert_eq!(list_all(&store, tenant, &by_new_ref, 10).await.len(), 1);
        // The released external id can be taken by another customer.
        register(&crm, tenant, Customer::person("B").external_id("erp", "1").build().unwrap()).await;
    }

    /// Bulk registration stores every customer or none.
    async fn bulk_registration_is_all_or_nothing(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut gen = Generator::new(17);
        let batch: Vec<Customer> = (0..25).map(|_| gen.customer()).collect();
        let stored = crm.tenant(tenant).customers().register_many(batch).await.unwrap();
        for c in &stored {
            assert_eq!(store.get_customer(tenant, c.id).await.unwrap(), *c);
            assert_eq!(c.version, 1);
            assert_eq!(store.get_profile(tenant, c.id).await.unwrap(), Profile::default());
        }
        let fresh = simple("Fresh");
        let mut clash = simple("Clash");
        clash.id = stored[3].id;
        let r = crm.tenant(tenant).customers().register_many(vec![fresh.clone(), clash]).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "existing id: {r:?}");
        assert_not_found(store.get_customer(tenant, fresh.id).await, "nothing half-written");
        let a = Customer::person("A").external_id("erp", "same").build().unwrap();
        let b = Customer::person("B").external_id("erp", "same").build().unwrap();
        let r = crm.tenant(tenant).customers().register_many(vec![a.clone(), b]).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "repeated external id: {r:?}");
        assert_not_found(store.get_customer(tenant, a.id).await, "nothing half-written");
        let mut bad = simple("Bad");
        let email = EmailAddress::parse("x@y.example").unwrap();
        bad.emails = vec![email.clone(), email];
        let r = crm.tenant(tenant).customers().register_many(vec![simple("Ok"), bad]).await;
        assert_eq!(r.unwrap_err().field(), Some("customers[1].emails[1]"));
        assert_eq!(list_all(&store, tenant, &CustomerQuery::all(), 100).await.len(), 25);
    }

    /// Tenant B reads nothing of tenant A's, by any method.
    async fn tenant_isolation_on_reads(store) {
        let (crm, _) = crm(&store);
        let (a, b) = (TenantId::new(), TenantId::new());
        let owner = UserId::new();
        let c = register(&crm, a, Customer::person("Secret").email("s@a.example").phone("+49 30 1234567").tag("vip").owner(owner).external_id("erp", "1").build().unwrap()).await;
        crm.tenant(a).interactions().log(event(c.id, InteractionKind::Purchase, t0(), "1")).await.unwrap();
        crm.tenant(a).customers().change_owner(c.id, None, 1, None, None).await.unwrap();
        assert_not_found(store.get_customer(b, c.id).await, "get");
        assert_not_found(store.get_profile(b, c.id).await, "profile");
        assert_not_found(store.timeline(b, c.id, &PageRequest::first(10)).await, "timeline");
        assert_not_found(store.ownership_history(b, c.id).await, "history");
        let queries = [
            CustomerQuery::all(),
            CustomerQuery { name_prefix: Some("Sec".into()), ..Default::default() },
            CustomerQuery { email: Some(EmailAddress::parse("s@a.example").unwrap()), ..Default::default() },
            CustomerQuery { phone: Some(PhoneNumber::parse("+49301234567").unwrap()), ..Default::default() },
            CustomerQuery { tag: Some(Tag::parse("vip").unwrap()), ..Default::default() },
            CustomerQuery { owner: Some(owner), ..Default::default() },
            CustomerQuery { external_id: Some(ExternalRef::new("erp", "1").unwrap()), ..Default::default() },
        ];
        for q in &queries {
            assert!(list_all(&store, b, q, 10).await.is_empty(), "tenant B listed A's customer with {q:?}");
        }
        // A cursor from tenant A's listing leaks nothing into tenant B's.
        let after = PageRequest::after(Cursor::customer(CustomerId::from_bytes([0; 16])), 10);
        assert!(store.list_customers(b, &CustomerQuery::all(), &after).await.unwrap().items.is_empty());
    }

    /// Tenant B changes nothing of tenant A's, by any method.
    async fn tenant_isolation_on_writes(store) {
        let (crm, _) = crm(&store);
        let (a, b) = (TenantId::new(), TenantId::new());
        let c = register(&crm, a, simple("Mine")).await;
        let mut theirs = c.clone();
        theirs.lifecycle = Lifecycle::Churned;
        assert_not_found(crm.tenant(b).customers().update(theirs.clone(), None).await, "update");
        theirs.version = 2;
        assert_not_found(store.update_customer(b, &theirs, 1, WriteOptions::new()).await, "store update");
        assert_not_found(crm.tenant(b).customers().change_owner(c.id, Some(UserId::new()), 1, None, None).await, "change owner");
        assert_not_found(crm.tenant(b).interactions().log(event(c.id, InteractionKind::Purchase, t0(), "x")).await, "log");
        assert_eq!(store.get_customer(a, c.id).await.unwrap(), c);
        assert_eq!(store.get_profile(a, c.id).await.unwrap(), Profile::default());
        assert!(full_timeline(&store, a, c.id, 10).await.is_empty());
    }

    /// The same customer id may exist in two tenants as two independent records.
    async fn same_ids_in_two_tenants_are_independent(store) {
        let (crm, _) = crm(&store);
        let (a, b) = (TenantId::new(), TenantId::new());
        let ca = register(&crm, a, Customer::person("In A").external_id("erp", "1").build().unwrap()).await;
        let mut cb = Customer::person("In B").external_id("erp", "1").build().unwrap();
        cb.id = ca.id;
        let cb = register(&crm, b, cb).await;
        crm.tenant(a).interactions().log(event(ca.id, InteractionKind::Purchase, t0(), "1")).await.unwrap();
        assert_eq!(store.get_customer(a, ca.id).await.unwrap().name.as_str(), "In A");
        assert_eq!(store.get_customer(b, cb.id).await.unwrap().name.as_str(), "In B");
        assert_eq!(store.get_profile(a, ca.id).await.unwrap().purchase_count, 1);
        assert_eq!(store.get_profile(b, cb.id).await.unwrap().purchase_count, 0);
        let mut upd = cb.clone();
        upd.lifecycle = Lifecycle::Active;
        crm.tenant(b).customers().update(upd, None).await.unwrap();
        assert_eq!(store.get_customer(a, ca.id).await.unwrap().version, 1);
    }
}
