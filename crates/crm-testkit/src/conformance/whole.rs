//! Conformance cases: cases across every port: the pool, source sync, duplicates, merges, privacy, archiving, the audit trail, edge values and tenancy over every method.

use super::*;

cases! {
    /// Quiet customers return to the pool once, with warnings ahead and exemptions for
    /// open cases; claims obey the daily limit, the holding limit and the block on the
    /// previous owner, and one of two racing claims wins.
    async fn the_pool_reclaims_and_limits_claims(store) {
        use crm_core::pool::{ClaimLimits, PoolPolicy, PoolRule};
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let (x, y, z) = (UserId::new(), UserId::new(), UserId::new());
        let active = |name: &str, owner: Option<UserId>| {
            let b = Customer::person(name).lifecycle(Lifecycle::Active);
            match owner { Some(o) => b.owner(o), None => b }.build().unwrap()
        };
        let a = register(&crm, tenant, active("A", Some(x))).await;
        let b = register(&crm, tenant, active("B", Some(x))).await;
        let c = register(&crm, tenant, active("C", Some(x))).await;
        let lead = register(&crm, tenant, Customer::person("D").lifecycle(Lifecycle::Lead).owner(x).build().unwrap()).await;
        let call = Interaction::builder(a.id, Channel::Phone, InteractionKind::Call).at(t0() + Duration::days(5)).handled_by(x).key("pool", "a-call").build().unwrap();
        crm.tenant(tenant).interactions().log(call).await.unwrap();
        crm.tenant(tenant).cases().open(crm_core::case::Case::open(c.id, crm_core::case::CaseKind::Complaint, "Open", Channel::Email, Some(x), t0()).unwrap()).await.unwrap();
        let policy = PoolPolicy {
            rules: vec![PoolRule { lifecycles: vec![Lifecycle::Active], tag: None, no_contact_days: Some(30), no_purchase_days: None, notice_days: 7 }],
            limits: ClaimLimits { per_day: 2, max_held: 3, reclaim_block_days: 14 },
            exempt_open_cases: true,
            time_zone: chrono_tz::Tz::UTC,
        };
        let day = |d: i64| t0() + Duration::days(d);
        let r = { clock.set(day(24)); crm.tenant(tenant).pool().reclaim(&policy).await }.unwrap();
        assert_eq!((r.checked, r.warned, r.reclaimed.len()), (4, 2, 0), "B and C warned: {r:?}");
        assert_eq!({ clock.set(day(24)); crm.tenant(tenant).pool().reclaim(&policy).await }.unwrap().warned, 0, "warned once");
        let r = { clock.set(day(31)); crm.tenant(tenant).pool().reclaim(&policy).await }.unwrap();
        assert_eq!((r.reclaimed.clone(), r.exempt), (vec![(b.id, x)], 1), "{r:?}");
        assert_eq!({ clock.set(day(31)); crm.tenant(tenant).pool().reclaim(&policy).await }.unwrap().reclaimed, vec![]);
        assert_eq!(store.get_customer(tenant, b.id).await.unwrap().owner, None);
        let history = store.ownership_history(tenant, b.id).await.unwrap();
        assert_eq!((history[0].from, history[0].to), (Some(x), None));
        assert!(history[0].reason.as_deref().unwrap_or("").contains("30 days"));
        assert_eq!(store.get_customer(tenant, a.id).await.unwrap().owner, Some(x), "contacted on day 5");
        assert_eq!(store.get_customer(tenant, lead.id).await.unwrap().owner, Some(x), "no rule for leads");
        let r = { clock.set(day(36)); crm.tenant(tenant).pool().reclaim(&policy).await }.unwrap();
        assert_eq!(r.reclaimed, vec![(a.id, x)]);

        clock.set(day(37));
        let blocked = crm.tenant(tenant).pool().claim(b.id, x, &policy).await;
        assert_eq!(blocked.unwrap_err().field(), Some("limits.reclaim_block_days"));
        let taken = crm.tenant(tenant).pool().claim(b.id, y, &policy).await.unwrap();
        assert_eq!(taken.owner, Some(y));
        assert_eq!(crm.tenant(tenant).pool().claim(b.id, z, &policy).await.unwrap_err().field(), Some("customer"));
        let mut pool = Vec::new();
        for i in 0..4 {
            pool.push(register(&crm, tenant, active(&format!("P{i}"), None)).await);
        }
        crm.tenant(tenant).pool().claim(pool[0].id, z, &policy).await.unwrap();
        crm.tenant(tenant).pool().claim(pool[1].id, z, &policy).await.unwrap();
        let third = crm.tenant(tenant).pool().claim(pool[2].id, z, &policy).await;
        assert_eq!(third.unwrap_err().field(), Some("limits.per_day"));
        clock.set(day(38));
        crm.tenant(tenant).pool().claim(pool[2].id, z, &policy).await.unwrap();
        let fourth = crm.tenant(tenant).pool().claim(pool[3].id, z, &policy).await;
        assert_eq!(fourth.unwrap_err().field(), Some("limits.max_held"));
        let (w1, w2) = (UserId::new(), UserId::new());
        let (crm1, crm2, p1, p2) = (crm.clone(), crm.clone(), policy.clone(), policy.clone());
        let id = pool[3].id;
        let first = tokio::spawn(async move { crm1.tenant(tenant).pool().claim(id, w1, &p1).await });
        let second = tokio::spawn(async move { crm2.tenant(tenant).pool().claim(id, w2, &p2).await });
        let results = [first.await.unwrap(), second.await.unwrap()];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        assert!(results.iter().any(|r| matches!(r, Err(Error::Conflict { .. }) | Err(Error::Validation { .. }))));
    }

    /// Records from source systems update the one customer they belong to: by external id,
    /// else by email or phone; a repeated record changes nothing; bad fields are named.
    async fn source_records_update_one_customer(store) {
        use crm_core::sync::{NaturalKey, SourceFields, SyncOutcome};
        let (crm, _) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let keys = [NaturalKey::Email, NaturalKey::Phone];
        let erp = SourceFields {
            name: Some("Li Na".into()),
            emails: vec!["Li.Na@Example.com".into()],
            lifecycle: Some(Lifecycle::Active),
            tags: vec!["b2b".into()],
            ..SourceFields::default()
        };
        let created = crm.tenant(tenant).sources().upsert("erp", "K-1", &erp, &keys).await.unwrap();
        let SyncOutcome::Created(li) = created else { panic!("{created:?}") };
        let again = crm.tenant(tenant).sources().upsert("erp", "K-1", &erp, &keys).await.unwrap();
        assert!(matches!(again, SyncOutcome::Unchanged(_)), "{again:?}");
        let shop = SourceFields {
            emails: vec!["li.na@example.com".into()],
            phones: vec!["+86 10 6552 9988".into()],
            tags: vec!["web".into()],
            ..SourceFields::default()
        };
        let updated = crm.tenant(tenant).sources().upsert("shop", "u-77", &shop, &keys).await.unwrap();
        let SyncOutcome::Updated(merged) = updated else { panic!("{updated:?}") };
        assert_eq!(merged.id, li.id, "same person by email");
        assert_eq!(merged.version, 2);
        assert_eq!(merged.name.as_str(), "Li Na");
        assert_eq!(merged.phones.len(), 1);
        assert_eq!(merged.tags.len(), 2);
        assert_eq!(merged.external_ids.len(), 2);
        let by_shop = list_all(&store, tenant, &CustomerQuery { external_id: Some(ExternalRef::new("shop", "u-77").unwrap()), ..CustomerQuery::all() }, 10).await;
        assert_eq!(by_shop.iter().map(|c| c.id).collect::<Vec<_>>(), vec![li.id]);
        let call_centre = SourceFields { phones: vec!["+861065529988".into()], ..SourceFields::default() };
        let by_phone = crm.tenant(tenant).sources().upsert("cc", "9", &call_centre, &[NaturalKey::Phone]).await.unwrap();
        assert_eq!(by_phone.customer().id, li.id, "same person by phone");
        assert_eq!(list_all(&store, tenant, &CustomerQuery::all(), 10).await.len(), 1, "no duplicates");
        let nameless = crm.tenant(tenant).sources().upsert("erp", "K-2", &SourceFields::default(), &keys).await;
        assert_eq!(nameless.unwrap_err().field(), Some("fields.name"));
        let bad = SourceFields { name: Some("X".into()), emails: vec!["ok@example.com".into(), "nope".into()], ..SourceFields::default() };
        assert_eq!(crm.tenant(tenant).sources().upsert("erp", "K-3", &bad, &keys).await.unwrap_err().field(), Some("fields.emails[1]"));
        let elsewhere = crm.tenant(other).sources().upsert("erp", "K-1", &erp, &keys).await.unwrap();
        assert!(matches!(elsewhere, SyncOutcome::Created(_)), "tenants are independent");
        let vat = |name: &str| SourceFields {
            name: Some(name.into()),
            kind: Some(crm_core::PartyKind::Organization),
            attributes: vec![("vat_id".into(), AttrValue::Text("DE811907980".into()))],
            ..SourceFields::default()
        };
        let by_vat = [NaturalKey::Attribute(crm_core::AttrKey::parse("vat_id").unwrap())];
        let org = crm.tenant(tenant).sources().upsert("erp", "C-9", &vat("Müller GmbH"), &by_vat).await.unwrap();
        assert!(matches!(org, SyncOutcome::Created(_)));
        let same = crm.tenant(tenant).sources().upsert("crm-import", "77", &vat("Mueller GmbH"), &by_vat).await.unwrap();
        assert!(matches!(same, SyncOutcome::Updated(_)), "{same:?}");
        assert_eq!(same.customer().id, org.customer().id, "same company by VAT id");
        assert_eq!(same.customer().name.as_str(), "Mueller GmbH");
        assert_eq!(list_all(&store, tenant, &CustomerQuery::all(), 10).await.len(), 2);
    }

    /// Duplicates: one record checked before it is saved (clear, warned, refused with
    /// nothing written), and candidate groups over the whole tenant, planted ones included.
    async fn duplicates_are_checked_refused_and_found(store) {
        use crm_core::dedup::{MatchRules, Verdict};
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let rules = MatchRules::standard();
        let born = |y, m, d| AttrValue::Date(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let ada = register(&crm, tenant, Customer::person("Ada Lovelace")
            .email("ada@example.com")
            .attribute("birth_date", born(1815, 12, 10))
            .build().unwrap()).await;
        let charles = register(&crm, tenant, Customer::person("Charles Babbage")
            .phone("+44 20 7946 0001")
            .build().unwrap()).await;
        register(&crm, tenant, Customer::person("Mary Somerville")
            .email("mary@example.com")
            .attribute("birth_date", born(1780, 12, 26))
            .build().unwrap()).await;

        // Someone new: clear, and saved.
        let (_, check) = crm.tenant(tenant).duplicates().register_checked(Customer::person("Grace Hopper")
            .email("grace@example.com").build().unwrap(), &rules).await.unwrap();
        assert_eq!(check.verdict, Verdict::Clear);
        assert!(check.matches.is_empty());

        // Same email, other case: refused, nothing written.
        let before = crm.storage().list_customers(tenant, &CustomerQuery::all(), &PageRequest::first(100)).await.unwrap().items.len();
        let err = crm.tenant(tenant).duplicates().register_checked(Customer::person("A. Lovelace")
            .email("ADA@example.com").build().unwrap(), &rules).await.unwrap_err();
        assert!(matches!(&err, Error::LikelyDuplicate { entity: "customer", existing, score, .. } if *existing == ada.id.to_string() && Some(*score) >= rules.block_at), "{err:?}");
        let after = crm.storage().list_customers(tenant, &CustomerQuery::all(), &PageRequest::first(100)).await.unwrap().items.len();
        assert_eq!(before, after, "a refused record is not saved");

        // Same phone, misspelt name: a warning naming Charles (checked, not saved).
        let check = crm.tenant(tenant).duplicates().check(&Customer::person("Charles Babage")
            .phone("+44 20 7946 0001").build().unwrap(), &rules).await.unwrap();
        assert_eq!(check.verdict, Verdict::Warn);
        assert_eq!(check.matches.len(), 1);
        assert!(check.matches[0].a == charles.id || check.matches[0].b == charles.id);
        assert_eq!(check.matches[0].rule, "same phone, similar name");

        // Words in the other order, same birth date, no contact point in common: warned,
        // saved, and then found as a group of two.
        let (twin, check) = crm.tenant(tenant).duplicates().register_checked(Customer::person("Lovelace Ada")
            .email("countess@example.org")
            .attribute("birth_date", born(1815, 12, 10))
            .build().unwrap(), &rules).await.unwrap();
        assert_eq!(check.verdict, Verdict::Warn);
        assert_eq!(check.matches[0].rule, "similar name, same birth date");
        let report = crm.tenant(tenant).duplicates().find(&rules).await.unwrap();
        assert_eq!(report.customers, 5);
        assert_eq!(report.groups.len(), 1, "{report:?}");
        let mut expected = vec![ada.id, twin.id];
        expected.sort();
        assert_eq!(report.groups[0].members, expected);

        // Generated people with planted duplicates: every planted pair is reported.
        let other = TenantId::new();
        let planted = Generator::new(3).people_with_duplicates(300, 0.05);
        store.insert_customers(other, planted.customers.clone(), WriteOptions::new()).await.unwrap();
        let report = crm.tenant(other).duplicates().find(&rules).await.unwrap();
        assert_eq!(report.customers, planted.customers.len());
        let found: BTreeSet<(CustomerId, CustomerId)> = report.pairs().map(|p| (p.a, p.b)).collect();
        for &(x, y) in &planted.pairs {
            assert!(found.contains(&(x.min(y), x.max(y))), "planted pair {x} {y} not reported");
        }
    }

    /// Merging duplicates: a dry run writes nothing; the merge moves every interaction,
    /// case, task, segment membership and external id to the survivor in one step, its
    /// profile equals a rebuild, old ids redirect (through later merges too), and stale
    /// versions write nothing.
    async fn merge_moves_everything_to_the_survivor(store) {
        use crm_core::merge::{CustomerMerge, FieldRule, MergePolicy};
        use crm_core::task::{Task, TaskQuery, TaskSubject};
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let agent = UserId::new();
        let a = register(&crm, tenant, Customer::person("Ada Lovelace").email("ada@example.com").tag("vip")
            .external_id("erp", "C1").attribute("city", AttrValue::Text("London".into())).build().unwrap()).await;
        clock.advance(Duration::hours(1));
        let b = register(&crm, tenant, Customer::person("Ada King").email("countess@example.org").phone("+44 20 7946 0001")
            .external_id("shop", "S9").external_id("erp", "C7").owner(agent).build().unwrap()).await;
        clock.advance(Duration::hours(1));
        let c = register(&crm, tenant, Customer::person("A. Lovelace").attribute("company", AttrValue::Text("Analytical".into())).build().unwrap()).await;
        let mut gen = Generator::new(21);
        for id in [a.id, b.id, c.id] {
            crm.tenant(tenant).interactions().log_batch(gen.interactions(&[id], 7, t0(), Duration::days(30))).await.unwrap();
        }
        let case = crm.tenant(tenant).cases().open(crm_core::case::Case::open(b.id, crm_core::case::CaseKind::Inquiry, "Where is my order", Channel::Web, Some(agent), t0()).unwrap()).await.unwrap();
        let task = crm.tenant(tenant).tasks().create(Task::new(TaskSubject::Customer(c.id), "Call back", agent, t0() + Duration::hours(2)).unwrap()).await.unwrap();
        let fair = crm.tenant(tenant).segments().create(Segment::fixed("Fair").unwrap(), &schema).await.unwrap();
        crm.tenant(tenant).segments().change_static_members(fair.id, vec![b.id], vec![]).await.unwrap();
        let sales = crm.tenant(tenant).sales();
        let pipeline = sales.create_pipeline(super::sales::sample_pipeline()).await.unwrap();
        let close = chrono::NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let deal = |account: CustomerId| crm_core::sales::Opportunity::new("Deal", account, agent, &pipeline, Money::parse("10", "EUR").unwrap(), close, t0()).unwrap();
        let on_b = sales.open(deal(b.id).with_contact(c.id, crm_core::sales::ContactRole::Technical).with_contact(a.id, crm_core::sales::ContactRole::Billing)).await.unwrap();
        let untouched = sales.open(deal(a.id)).await.unwrap();
        let before_a = store.get_customer(tenant, a.id).await.unwrap();

        // Dry run: the result, nothing written.
        let policy = MergePolicy { fields: FieldRule::Survivor, attributes: FieldRule::MostRecent };
        let dry = crm.tenant(tenant).customers().merge(a.id, &[b.id, c.id], &policy, true).await.unwrap();
        assert!(dry.dry_run);
        assert_eq!(dry.customer.name.as_str(), "Ada Lovelace");
        assert_eq!(dry.customer.owner, Some(agent), "the survivor has none: the next one's");
        let emails: Vec<&str> = dry.customer.emails.iter().map(|e| e.as_str()).collect();
        assert_eq!(emails, ["ada@example.com", "countess@example.org"]);
        assert_eq!(dry.dropped_external_ids, vec![ExternalRef::new("erp", "C7").unwrap()]);
        assert_eq!(dry.interactions_moved, 14);
        assert_eq!(store.get_customer(tenant, a.id).await.unwrap(), before_a);
        assert!(store.get_customer(tenant, b.id).await.is_ok());

        // Stale versions: nothing written.
        let stale = CustomerMerge { survivor: dry.customer.clone(), survivor_version: a.version, merged: vec![(b.id, b.version + 1), (c.id, c.version)], audit: vec![] };
        assert!(matches!(store.merge_customers(tenant, &stale, WriteOptions::new()).await, Err(Error::Conflict { .. })));
        assert!(store.get_customer(tenant, b.id).await.is_ok());
        assert_eq!(store.get_customer(tenant, a.id).await.unwrap(), before_a);

        let done = crm.tenant(tenant).customers().merge(a.id, &[b.id, c.id], &policy, false).await.unwrap();
        assert!(!done.dry_run);
        let survivor = store.get_customer(tenant, a.id).await.unwrap();
        assert_eq!(survivor, done.customer);
        assert_eq!(survivor.version, 2);
        assert_eq!(survivor.attributes.get("company"), Some(&AttrValue::Text("Analytical".into())));
        // Every interaction, on one timeline; the profile is a rebuild and the dry run's.
        let history = full_timeline(&store, tenant, a.id, 5).await;
        assert_eq!(history.len(), 21);
        assert!(history.iter().all(|i| i.customer == a.id));
        assert_profile_is_rebuild(&store, tenant, a.id).await;
        assert_eq!(store.get_profile(tenant, a.id).await.unwrap(), dry.profile);
        // Deals name the survivor as account and contact (once, with its own role).
        let moved = store.get_opportunity(tenant, on_b.id).await.unwrap();
        assert_eq!(moved.account, a.id);
        assert_eq!(moved.contacts, vec![crm_core::sales::DealContact { customer: a.id, role: crm_core::sales::ContactRole::Billing }]);
        assert_eq!(moved.version, on_b.version + 1, "changed once (it named two merged customers), at its next version");
        assert!(matches!(sales.update(on_b.clone(), on_b.version).await, Err(Error::Conflict { .. })), "an edit of the deal as it was is stale");
        assert_eq!(sales.update(moved.clone(), moved.version).await.unwrap().account, a.id, "a moved deal can be edited");
        assert_eq!(store.get_opportunity(tenant, untouched.id).await.unwrap(), untouched);
        // The merged records are gone; their ids resolve to the survivor.
        for old in [b.id, c.id] {
            assert_not_found(store.get_customer(tenant, old).await, "merged away");
            assert_not_found(store.get_profile(tenant, old).await, "merged away");
            assert_eq!(crm.tenant(tenant).customers().get(old).await.unwrap().id, a.id);
            assert_eq!(crm.tenant(tenant).customers().resolve(old).await.unwrap(), a.id);
            assert_eq!(store.redirect(tenant, old).await.unwrap(), Some(a.id));
        }
        assert_eq!(store.redirect(tenant, a.id).await.unwrap(), None);
        assert_eq!(store.redirect(TenantId::new(), b.id).await.unwrap(), None);
        // Case, task and membership moved; lookups by the moved contact points find it.
        assert_eq!(store.get_case(tenant, case.id).await.unwrap().customer, a.id);
        let tasks = store.list_tasks(tenant, &TaskQuery { subject: Some(TaskSubject::Customer(a.id)), ..Default::default() }, &PageRequest::first(10)).await.unwrap().items;
        assert_eq!(tasks.iter().map(|t| t.id).collect::<Vec<_>>(), vec![task.id]);
        assert!(store.is_member(tenant, fair.id, a.id).await.unwrap());
        assert!(!store.is_member(tenant, fair.id, b.id).await.unwrap());
        let by = |q: CustomerQuery| { let crm = crm.clone(); async move { crm.tenant(tenant).customers().search(&q, &PageRequest::first(10)).await.unwrap().items.into_iter().map(|c| c.id).collect::<Vec<_>>() } };
        assert_eq!(by(CustomerQuery { external_id: Some(ExternalRef::new("shop", "S9").unwrap()), ..CustomerQuery::all() }).await, vec![a.id]);
        assert_eq!(by(CustomerQuery { email: Some(EmailAddress::parse("countess@example.org").unwrap()), ..CustomerQuery::all() }).await, vec![a.id]);
        assert_eq!(by(CustomerQuery { external_id: Some(ExternalRef::new("erp", "C7").unwrap()), ..CustomerQuery::all() }).await, Vec::<CustomerId>::new());
        assert_eq!(by(CustomerQuery::all()).await, vec![a.id]);

        // A later merge carries the redirects along.
        let d = register(&crm, tenant, simple("Augusta Ada")).await;
        crm.tenant(tenant).customers().merge(d.id, &[a.id], &MergePolicy::default(), false).await.unwrap();
        for old in [a.id, b.id, c.id] {
            assert_eq!(crm.tenant(tenant).customers().resolve(old).await.unwrap(), d.id);
        }
        assert_eq!(full_timeline(&store, tenant, d.id, 50).await.len(), 21);
        assert_profile_is_rebuild(&store, tenant, d.id).await;
        // Refused: nothing to merge, the survivor among the others, an unknown id.
        assert!(matches!(crm.tenant(tenant).customers().merge(d.id, &[], &policy, false).await, Err(Error::Validation { .. })));
        assert!(matches!(crm.tenant(tenant).customers().merge(d.id, &[d.id], &policy, false).await, Err(Error::Validation { .. })));
        assert_not_found(crm.tenant(tenant).customers().merge(d.id, &[CustomerId::new()], &policy, false).await, "unknown");
    }

    /// Export: one document with the record, profile, every interaction, cases, tasks
    /// about the customer or its cases, segments and ownership history, and nothing of
    /// another customer.
    async fn export_holds_everything_about_one_customer(store) {
        use crm_core::task::{Task, TaskSubject};
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let agent = UserId::new();
        let ann = register(&crm, tenant, Customer::person("Ann Lee").email("ann@example.com").build().unwrap()).await;
        let bob = register(&crm, tenant, simple("Bob")).await;
        let mut gen = Generator::new(5);
        crm.tenant(tenant).interactions().log_batch(gen.interactions(&[ann.id], 1200, t0(), Duration::days(90))).await.unwrap();
        crm.tenant(tenant).interactions().log_batch(gen.interactions(&[bob.id], 30, t0(), Duration::days(90))).await.unwrap();
        let case = crm.tenant(tenant).cases().open(crm_core::case::Case::open(ann.id, crm_core::case::CaseKind::Complaint, "Broken lid", Channel::Phone, Some(agent), t0()).unwrap()).await.unwrap();
        crm.tenant(tenant).cases().open(crm_core::case::Case::open(bob.id, crm_core::case::CaseKind::Inquiry, "Bob's", Channel::Phone, Some(agent), t0()).unwrap()).await.unwrap();
        let call = crm.tenant(tenant).tasks().create(Task::new(TaskSubject::Customer(ann.id), "Call back", agent, t0()).unwrap()).await.unwrap();
        let check = crm.tenant(tenant).tasks().create(Task::new(TaskSubject::Case(case.id), "Check the lid", agent, t0()).unwrap()).await.unwrap();
        crm.tenant(tenant).tasks().create(Task::new(TaskSubject::Customer(bob.id), "Bob's task", agent, t0()).unwrap()).await.unwrap();
        let fair = crm.tenant(tenant).segments().create(Segment::fixed("Fair").unwrap(), &schema).await.unwrap();
        crm.tenant(tenant).segments().change_static_members(fair.id, vec![ann.id], vec![]).await.unwrap();

        let export = crm.tenant(tenant).privacy().export(ann.id).await.unwrap();
        assert_eq!(export.customer, store.get_customer(tenant, ann.id).await.unwrap());
        assert_eq!(export.profile, store.get_profile(tenant, ann.id).await.unwrap());
        assert_eq!(export.interactions.len(), 1200, "every page of the timeline");
        assert!(export.interactions.iter().all(|i| i.customer == ann.id));
        assert_eq!(export.cases.iter().map(|c| c.id).collect::<Vec<_>>(), vec![case.id]);
        let mut tasks: Vec<_> = export.tasks.iter().map(|t| t.id).collect();
        tasks.sort();
        let mut want = vec![call.id, check.id];
        want.sort();
        assert_eq!(tasks, want);
        assert_eq!(export.segments, vec![fair.id]);
        // One JSON document, read back whole.
        let json = export.to_json().unwrap();
        let back: crm_core::privacy::CustomerExport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, export);
        assert!(!json.contains("Bob"), "nothing of another customer");
        assert_not_found(crm.tenant(tenant).privacy().export(CustomerId::new()).await, "unknown");
        assert_not_found(crm.tenant(TenantId::new()).privacy().export(ann.id).await, "other tenant");
    }

    /// Erasure: personal data leaves the record, its interactions, cases, tasks and
    /// ownership history, no query or export finds it any more, and the anonymous facts
    /// (profile, amounts, channels, instants) stay as they were.
    async fn erased_data_cannot_be_found(store) {
        use crm_core::task::{Task, TaskSubject};
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let agent = UserId::new();
        let ann = register(&crm, tenant, Customer::person("Annabel Secretname").email("annabel@secret.example")
            .phone("+44 20 7946 0999").tag("whisper").external_id("erp", "SECRET-7")
            .attribute("birth_date", AttrValue::Date(chrono::NaiveDate::from_ymd_opt(1980, 1, 2).unwrap()))
            .build().unwrap()).await;
        let bob = register(&crm, tenant, simple("Bob Keeps")).await;
        let mut batch = Vec::new();
        for n in 0..5 {
            batch.push(Interaction::builder(ann.id, Channel::Email, InteractionKind::Purchase)
                .at(t0() + Duration::days(n)).subject("Secret subject").body("Secret body text")
                .amount(Money::parse("19.90", "EUR").unwrap())
                .attribute("note", AttrValue::Text("secret attribute".into()))
                .key("shop", &format!("o{n}")).build().unwrap());
        }
        batch.push(Interaction::builder(bob.id, Channel::Email, InteractionKind::Email).at(t0())
            .subject("Bob's subject").key("shop", "b1").build().unwrap());
        crm.tenant(tenant).interactions().log_batch(batch).await.unwrap();
        let case = crm.tenant(tenant).cases().open(crm_core::case::Case::open(ann.id, crm_core::case::CaseKind::Complaint, "Secret complaint", Channel::Phone, Some(agent), t0()).unwrap()).await.unwrap();
        crm.tenant(tenant).tasks().create(Task::new(TaskSubject::Customer(ann.id), "Call Annabel Secretname", agent, t0()).unwrap()).await.unwrap();
        crm.tenant(tenant).tasks().create(Task::new(TaskSubject::Case(case.id), "Secret case task", agent, t0()).unwrap()).await.unwrap();
        let ann = crm.tenant(tenant).customers().change_owner(ann.id, Some(agent), ann.version, Some(agent), Some("secret reason")).await.unwrap();
        let profile = store.get_profile(tenant, ann.id).await.unwrap();

        assert!(matches!(crm.tenant(tenant).privacy().erase(ann.id, ann.version - 1).await, Err(Error::Conflict { .. })));
        let erased = crm.tenant(tenant).privacy().erase(ann.id, ann.version).await.unwrap();
        assert_eq!(erased.version, ann.version + 1);
        assert_eq!(store.get_customer(tenant, ann.id).await.unwrap(), erased);
        assert_eq!(erased.name.as_str(), crm_core::privacy::ERASED);
        assert!(erased.emails.is_empty() && erased.phones.is_empty() && erased.tags.is_empty());
        assert!(erased.external_ids.is_empty() && erased.attributes.is_empty());
        assert_eq!(erased.owner, Some(agent), "who owns it is not personal data of the customer");
        // No query finds it by what was erased.
        let none = |q: CustomerQuery| { let crm = crm.clone(); async move { crm.tenant(tenant).customers().search(&q, &PageRequest::first(10)).await.unwrap().items.len() } };
        assert_eq!(none(CustomerQuery { email: Some(EmailAddress::parse("annabel@secret.example").unwrap()), ..CustomerQuery::all() }).await, 0);
        assert_eq!(none(CustomerQuery { phone: Some(PhoneNumber::parse("+44 20 7946 0999").unwrap()), ..CustomerQuery::all() }).await, 0);
        assert_eq!(none(CustomerQuery { tag: Some(Tag::parse("whisper").unwrap()), ..CustomerQuery::all() }).await, 0);
        assert_eq!(none(CustomerQuery { external_id: Some(ExternalRef::new("erp", "SECRET-7").unwrap()), ..CustomerQuery::all() }).await, 0);
        assert_eq!(none(CustomerQuery { name_prefix: Some("Annabel".into()), ..CustomerQuery::all() }).await, 0);
        // Nothing personal in the export, anonymous facts kept.
        let export = crm.tenant(tenant).privacy().export(ann.id).await.unwrap();
        let json = export.to_json().unwrap().to_lowercase();
        for secret in ["secret", "annabel", "whisper", "1980-01-02"] {
            assert!(!json.contains(secret), "{secret:?} is still in the export");
        }
        assert_eq!(export.interactions.len(), 5);
        assert!(export.interactions.iter().all(|i| i.subject.is_none() && i.body.is_none() && i.attributes.is_empty()));
        assert!(export.interactions.iter().all(|i| i.amount == Some(Money::parse("19.90", "EUR").unwrap())));
        assert_eq!(export.cases.len(), 1);
        assert_eq!(export.tasks.len(), 2);
        assert_eq!(store.get_profile(tenant, ann.id).await.unwrap(), profile, "profiles stay as they were");
        assert_profile_is_rebuild(&store, tenant, ann.id).await;
        // The other customer is untouched.
        let bobs = full_timeline(&store, tenant, bob.id, 10).await;
        assert_eq!(bobs[0].subject.as_deref(), Some("Bob's subject"));
        assert_eq!(store.get_customer(tenant, bob.id).await.unwrap(), bob);
        assert_not_found(crm.tenant(tenant).privacy().erase(CustomerId::new(), 1).await, "unknown");
    }

    /// Retention: history before a horizon is written out as JSON lines and purged;
    /// profiles keep their aggregates; rows before the horizon are refused afterwards;
    /// newer rows and other tenants are untouched.
    async fn archived_history_is_exported_purged_and_refused(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let other = TenantId::new();
        let ann = register(&crm, tenant, simple("Ann")).await;
        let bob = register(&crm, other, simple("Bob")).await;
        let mut gen = Generator::new(8);
        let old = gen.interactions(&[ann.id], 40, t0(), Duration::days(30));
        let new = gen.interactions(&[ann.id], 25, t0() + Duration::days(60), Duration::days(30));
        crm.tenant(tenant).interactions().log_batch(old.clone()).await.unwrap();
        crm.tenant(tenant).interactions().log_batch(new.clone()).await.unwrap();
        crm.tenant(other).interactions().log_batch(gen.interactions(&[bob.id], 10, t0(), Duration::days(30))).await.unwrap();
        let profile = store.get_profile(tenant, ann.id).await.unwrap();
        assert_eq!(crm.tenant(tenant).interactions().archive_horizon().await.unwrap(), None);
        clock.advance(Duration::days(200));

        let horizon = t0() + Duration::days(45);
        let mut file: Vec<u8> = Vec::new();
        let report = crm.tenant(tenant).interactions().archive(horizon, &mut file).await.unwrap();
        assert_eq!((report.exported, report.purged, report.horizon), (40, 40, horizon));
        let archived: Vec<Interaction> = String::from_utf8(file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let mut want: Vec<_> = old.iter().map(|i| i.id).collect();
        want.sort();
        let mut got: Vec<_> = archived.iter().map(|i| i.id).collect();
        got.sort();
        assert_eq!(got, want, "exactly the old rows, complete");
        assert_eq!(crm.tenant(tenant).interactions().archive_horizon().await.unwrap(), Some(horizon));
        let left = full_timeline(&store, tenant, ann.id, 10).await;
        assert_eq!(left.len(), 25);
        assert!(left.iter().all(|i| i.occurred_at >= horizon));
        assert_eq!(store.get_profile(tenant, ann.id).await.unwrap(), profile, "aggregates kept");
        // Before the horizon: refused, nothing written; after it: accepted as usual.
        let r = crm.tenant(tenant).interactions().log_batch(old[..3].to_vec()).await;
        assert!(matches!(&r, Err(Error::Validation { field, .. }) if field == "interactions[0].occurred_at"), "{r:?}");
        assert_eq!(store.get_profile(tenant, ann.id).await.unwrap(), profile);
        assert_eq!(crm.tenant(tenant).interactions().log_batch(new.clone()).await.unwrap().duplicates, 25);
        // An earlier horizon later does not move it back; the other tenant is untouched.
        let mut sink = Vec::new();
        let again = crm.tenant(tenant).interactions().archive(t0(), &mut sink).await.unwrap();
        assert_eq!((again.exported, again.purged, again.horizon), (0, 0, horizon));
        assert_eq!(full_timeline(&store, other, bob.id, 10).await.len(), 10);
        assert_eq!(crm.tenant(other).interactions().archive_horizon().await.unwrap(), None);
    }

    /// Audit trail: registration, field changes with old and new values, transfers (one
    /// by one and in bulk), merges on both sides and erasure, newest first, page by page;
    /// erasure keeps that it happened and which fields changed, not the values.
    async fn audit_trail_records_every_change(store) {
        use crm_core::audit::AuditChange;
        use crm_core::merge::MergePolicy;
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let (agent, lead, next) = (UserId::new(), UserId::new(), UserId::new());
        let ann = register(&crm, tenant, Customer::person("Ann Lee").email("ann@example.com").owner(agent).build().unwrap()).await;
        let also = register(&crm, tenant, simple("Also Owned")).await;
        let also = crm.tenant(tenant).customers().change_owner(also.id, Some(agent), also.version, Some(lead), None).await.unwrap();
        clock.advance(Duration::hours(1));
        let mut renamed = ann.clone();
        renamed.name = crm_core::DisplayName::parse("Ann Lee-Smith").unwrap();
        let ann = crm.tenant(tenant).customers().update(renamed, Some(agent)).await.unwrap();
        clock.advance(Duration::hours(1));
        // Someone leaves: everything they own moves, each transfer audited.
        assert_eq!(crm.tenant(tenant).customers().transfer_all(agent, Some(next), Some(lead), Some("left the company")).await.unwrap(), 2);
        assert_eq!(crm.tenant(tenant).customers().get(also.id).await.unwrap().owner, Some(next));
        let ann = crm.tenant(tenant).customers().get(ann.id).await.unwrap();
        let bob = register(&crm, tenant, Customer::person("Ann L.").email("annl@example.com").build().unwrap()).await;
        crm.tenant(tenant).customers().merge_by(ann.id, &[bob.id], &MergePolicy::default(), false, Some(lead), Some("same person")).await.unwrap();

        let all = |id: CustomerId| { let store = store.clone(); async move {
            collect_pages(2, |page| { let store = store.clone(); async move { store.audit_history(tenant, id, &page).await } }).await
        } };
        let history = all(ann.id).await;
        let versions: Vec<u64> = history.iter().map(|e| e.version).collect();
        assert_eq!(versions, [4, 3, 2, 1], "newest first, one entry per version");
        assert!(matches!(&history[3].change, AuditChange::Created));
        match &history[2].change {
            AuditChange::Updated { fields } => {
                assert_eq!(fields.len(), 1, "{fields:?}");
                assert_eq!(fields[0].field, "name");
                assert_eq!(fields[0].old, serde_json::json!("Ann Lee"));
                assert_eq!(fields[0].new, serde_json::json!("Ann Lee-Smith"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(history[2].actor, Some(agent));
        match &history[1].change {
            AuditChange::Updated { fields } => assert_eq!(fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["owner"]),
            other => panic!("{other:?}"),
        }
        assert_eq!((history[1].actor, history[1].reason.as_deref()), (Some(lead), Some("left the company")));
        assert!(matches!(&history[0].change, AuditChange::Merged { merged, fields } if merged == &vec![bob.id] && fields.iter().any(|f| f.field == "emails")));
        // The merged-away customer's trail stays readable under its old id.
        let bobs = all(bob.id).await;
        assert!(matches!(&bobs[0].change, AuditChange::MergedInto { survivor } if *survivor == ann.id));
        assert!(matches!(&bobs[1].change, AuditChange::Created));

        // Erasure: recorded; earlier entries keep which fields changed, not the values.
        crm.tenant(tenant).privacy().erase(ann.id, 4).await.unwrap();
        let history = all(ann.id).await;
        assert_eq!(history.len(), 5);
        assert!(matches!(&history[0].change, AuditChange::Erased));
        let json = serde_json::to_string(&history).unwrap();
        for secret in ["Ann Lee", "ann@example.com", "left the company", "same person"] {
            assert!(!json.contains(secret), "{secret:?} is still in the audit trail");
        }
        assert!(matches!(&history[3].change, AuditChange::Updated { fields } if fields[0].field == "name" && fields[0].old.is_null()));
        assert!(all(CustomerId::new()).await.is_empty());
        assert!(store.audit_history(TenantId::new(), ann.id, &PageRequest::first(10)).await.unwrap().items.is_empty());
        assert!(store.audit_history(tenant, ann.id, &PageRequest { after: Some(Cursor::customer(ann.id)), limit: 10 }).await.is_err(), "a cursor of another listing");

        // Erasing a survivor also scrubs the history kept under the ids merged into it.
        let dora = register(&crm, tenant, simple("Dora")).await;
        let old = register(&crm, tenant, simple("Dora Old")).await;
        let mut renamed = old.clone();
        renamed.name = crm_core::DisplayName::parse("Dora Secretmaiden").unwrap();
        let old = crm.tenant(tenant).customers().update(renamed, Some(agent)).await.unwrap();
        let old = crm.tenant(tenant).customers().change_owner(old.id, Some(agent), old.version, Some(lead), Some("moved to dora's branch")).await.unwrap();
        crm.tenant(tenant).customers().merge(dora.id, &[old.id], &MergePolicy::default(), false).await.unwrap();
        let dora = crm.tenant(tenant).customers().get(dora.id).await.unwrap();
        crm.tenant(tenant).privacy().erase(dora.id, dora.version).await.unwrap();
        let trail = serde_json::to_string(&all(old.id).await).unwrap();
        assert!(trail.contains("owner"), "the transfer is still recorded: {trail}");
        for secret in ["Secretmaiden", "branch"] {
            assert!(!trail.contains(secret), "{secret:?} is still in {trail}");
        }
    }

    /// The largest amounts add up in profiles, exports, segments and merges, and read back;
    /// amounts beyond the bound are refused before anything is stored.
    async fn largest_amounts_add_up_and_read_back(store) {
        use crm_core::merge::MergePolicy;
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let max = Money::from_parts(Money::MAX_AMOUNT, crm_core::Currency::parse("EUR").unwrap()).unwrap();
        let buy = |c: CustomerId, key: &str, amount: Money| {
            Interaction::builder(c, Channel::Web, InteractionKind::Purchase).at(t0()).amount(amount).key("shop", key).build().unwrap()
        };
        // The amounts that broke profiles before are refused where they are made.
        assert_eq!(Money::parse("79228162514264337593543950335", "EUR").unwrap_err().field(), Some("amount"));
        assert!(serde_json::from_str::<Money>(r#"{"amount":"79228162514264337593543950335","currency":"EUR"}"#).is_err());
        let a = register(&crm, tenant, simple("Big Spender A")).await;
        let b = register(&crm, tenant, simple("Big Spender B")).await;
        let batch = vec![buy(a.id, "a1", max), buy(a.id, "a2", max), buy(b.id, "b1", max), buy(b.id, "b2", max)];
        assert_eq!(crm.tenant(tenant).interactions().log_batch(batch).await.unwrap().inserted, 4);
        let two = Money::MAX_AMOUNT * Decimal::TWO;
        for c in [a.id, b.id] {
            assert_profile_is_rebuild(&store, tenant, c).await;
            assert_eq!(crm.tenant(tenant).customers().profile(c).await.unwrap().revenue_in(max.currency()), two);
            let export = crm.tenant(tenant).privacy().export(c).await.unwrap();
            assert_eq!(export.profile.revenue_in(max.currency()), two);
        }
        let rule = crm_core::segment::parse("revenue >= 2000000000000000").unwrap();
        let (count, _) = crm.tenant(tenant).segments().preview(&rule, &schema, &PageRequest::first(10)).await.unwrap();
        assert_eq!(count, 2);
        // A refund of the largest amount in the other direction.
        let refund = Money::from_parts(-Money::MAX_AMOUNT, max.currency()).unwrap();
        crm.tenant(tenant).interactions().log_batch(vec![buy(b.id, "b3", refund)]).await.unwrap();
        assert_profile_is_rebuild(&store, tenant, b.id).await;
        let merged = crm.tenant(tenant).customers().merge(a.id, &[b.id], &MergePolicy::default(), false).await.unwrap();
        assert_eq!(merged.profile.revenue_in(max.currency()), Money::MAX_AMOUNT * Decimal::from(3));
        assert_eq!(crm.tenant(tenant).customers().profile(a.id).await.unwrap(), merged.profile);
        assert_profile_is_rebuild(&store, tenant, a.id).await;
        let (count, _) = crm.tenant(tenant).segments().preview(&rule, &schema, &PageRequest::first(10)).await.unwrap();
        assert_eq!(count, 1);
    }

    /// Whatever the core accepts reads back equal: customers, interactions (and the
    /// profiles they make), cases with timelines up to the longest, tasks, segments and
    /// KPI rules generated at the edges ([`crate::wild`]); a NUL in any text is refused.
    async fn wild_records_read_back_equal(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let mut wild = crate::wild::Wild::new(0x7769_6c64);
        let mut customers = Vec::new();
        for _ in 0..24 {
            let c = register(&crm, tenant, wild.customer()).await;
            assert_eq!(store.get_customer(tenant, c.id).await.unwrap(), c);
            customers.push(c);
        }
        let mut sent = Vec::new();
        for (n, c) in customers.iter().enumerate() {
            for k in 0..3 {
                sent.push(wild.interaction(c.id, &format!("{n}-{k}")));
            }
        }
        crm.tenant(tenant).interactions().log_batch(sent.clone()).await.unwrap();
        for c in &customers {
            let mut back = full_timeline(&store, tenant, c.id, 50).await;
            back.sort_by_key(|i| i.id);
            let mut expected: Vec<Interaction> = sent.iter().filter(|i| i.customer == c.id).cloned().collect();
            for i in &mut expected {
                i.recorded_at = crm_core::Clock::now(clock.as_ref());
            }
            expected.sort_by_key(|i| i.id);
            assert_eq!(back, expected);
            assert_profile_is_rebuild(&store, tenant, c.id).await;
        }
        for (n, events) in [1, 2, 40, 300, crm_core::case::MAX_EVENTS].into_iter().enumerate() {
            let case = wild.case(customers[n].id, events);
            store.insert_case(tenant, &case, WriteOptions::new()).await.unwrap();
            assert_eq!(store.get_case(tenant, case.id).await.unwrap(), case);
        }
        for c in customers.iter().take(10) {
            let task = wild.task(c.id);
            store.insert_task(tenant, &task).await.unwrap();
            assert_eq!(store.get_task(tenant, task.id).await.unwrap(), task);
        }
        let mut segments = Vec::new();
        for n in 0..10 {
            let s = crm.tenant(tenant).segments().create(wild.segment(n), &schema).await.unwrap();
            assert_eq!(store.get_segment(tenant, s.id).await.unwrap(), s);
            segments.push(s);
        }
        let listed = crm.tenant(tenant).segments().list().await.unwrap();
        assert!(segments.iter().all(|s| listed.contains(s)));
        for n in 0..3 {
            let rule = wild.kpi_rule(n);
            crm.tenant(tenant).kpis().add_rule(rule.clone()).await.unwrap();
            assert!(crm.tenant(tenant).kpis().rules().await.unwrap().iter().any(|r| r.rule == rule));
        }
        assert!(wild.refused > 0, "the generator reached values the core refuses");
        // NUL in text is refused alike everywhere, before anything is stored.
        let with_nul = Customer::person("Nul").attribute("note", AttrValue::Text("a\0b".into())).build();
        assert_eq!(with_nul.unwrap_err().field(), Some("attributes.note"));
        let with_nul = Interaction::builder(customers[0].id, Channel::Web, InteractionKind::Note).at(t0()).body("a\0b").build();
        assert_eq!(with_nul.unwrap_err().field(), Some("body"));
    }

    /// Tenant B calls every storage method with tenant A's ids and records
    /// ([`FOREIGN_CALLS`] calls): it reads nothing of A's, changes nothing of A's, and A's
    /// records read the same afterwards.
    async fn a_foreign_tenant_reaches_nothing(store) {
        use crm_core::case::{Case, CaseKind, CaseQuery};
        use crm_core::merge::CustomerMerge;
        use crm_core::task::{Task, TaskQuery, TaskSubject};
        let (crm, _) = crm(&store);
        let schema = segment_schema();
        let (a, b) = (TenantId::new(), TenantId::new());
        let c = register(&crm, a, Customer::person("Secret").email("s@a.example").tag("vip").external_id("erp", "S1").build().unwrap()).await;
        let other = register(&crm, a, simple("Second")).await;
        let buy = Interaction::builder(c.id, Channel::Web, InteractionKind::Purchase).at(t0()).amount(Money::parse("10", "EUR").unwrap()).key("shop", "1").build().unwrap();
        crm.tenant(a).interactions().log(buy.clone()).await.unwrap();
        let case = crm.tenant(a).cases().open(Case::open(c.id, CaseKind::Complaint, "Broken", Channel::Web, None, t0()).unwrap()).await.unwrap();
        let task = crm.tenant(a).tasks().create(Task::new(TaskSubject::Customer(c.id), "Call", UserId::new(), t0()).unwrap()).await.unwrap();
        let seg = crm.tenant(a).segments().create(Segment::fixed("Picked").unwrap(), &schema).await.unwrap();
        crm.tenant(a).segments().change_static_members(seg.id, vec![c.id], vec![]).await.unwrap();
        crm.tenant(a).value().set_scores(vec![(c.id, scores(0.5, "10"))]).await.unwrap();
        let rule = isolation_kpi_rule();
        crm.tenant(a).kpis().add_rule(rule.clone()).await.unwrap();
        let pipeline = crm.tenant(a).sales().create_pipeline(super::sales::sample_pipeline()).await.unwrap();
        let deal = crm_core::sales::Opportunity::new("Secret deal", c.id, UserId::new(), &pipeline, Money::parse("5000", "EUR").unwrap(), t0().date_naive(), t0()).unwrap();
        let deal = crm.tenant(a).sales().open(deal).await.unwrap();
        let deal = crm.tenant(a).sales().move_to(deal.id, 1, "proposal").await.unwrap();
        let snapshot = |store: Arc<dyn Storage>| async move {
            (
                store.get_customer(a, c.id).await.unwrap(),
                store.get_profile(a, c.id).await.unwrap(),
                full_timeline(&store, a, c.id, 10).await,
                store.get_case(a, case.id).await.unwrap(),
                store.get_task(a, task.id).await.unwrap(),
                store.segment_members(a, seg.id, &PageRequest::first(10)).await.unwrap().items,
                store.value_scores(a, c.id).await.unwrap(),
                store.kpi_rules(a).await.unwrap(),
                store.ownership_history(a, c.id).await.unwrap(),
                (store.pipelines(a).await.unwrap(), store.get_opportunity(a, deal.id).await.unwrap()),
                store.stage_history(a, deal.id, &PageRequest::first(10)).await.unwrap().items,
            )
        };
        let before = snapshot(store.clone()).await;
        let mut calls = 0;
        // Refused, or answered as if A's records did not exist.
        fn nothing<T: std::fmt::Debug>(r: crm_core::Result<T>, empty: impl Fn(&T) -> bool, what: &str) {
            match r {
                Ok(v) => assert!(empty(&v), "{what}: tenant B got {v:?}"),
                Err(Error::NotFound { .. } | Error::Conflict { .. } | Error::Validation { .. }) => {}
                Err(e) => panic!("{what}: {e:?}"),
            }
        }
        let all = PageRequest::first(100);
        macro_rules! probe {
            ($call:expr, $empty:expr, $what:expr) => {{
                calls += 1;
                nothing($call.await, $empty, $what);
            }};
        }
        let no = |_: &()| true;
        probe!(store.get_customer(b, c.id), |_| false, "get_customer");
        probe!(store.ownership_history(b, c.id), |v| v.is_empty(), "ownership_history");
        probe!(store.redirect(b, c.id), |v| v.is_none(), "redirect");
        probe!(store.audit_history(b, c.id, &all), |p| p.items.is_empty(), "audit_history");
        probe!(store.timeline(b, c.id, &all), |p| p.items.is_empty(), "timeline");
        probe!(store.get_profile(b, c.id), |_| false, "get_profile");
        probe!(store.get_customers(b, &[c.id, other.id]), |v| v.is_empty(), "get_customers");
        probe!(store.ownership_histories(b, &[c.id]), |v| v.is_empty(), "ownership_histories");
        probe!(store.get_profiles(b, &[c.id]), |v| v.is_empty(), "get_profiles");
        probe!(store.value_scores(b, c.id), |v| v.is_none(), "value_scores");
        probe!(store.value_classes(b, c.id), |v| v.is_none(), "value_classes");
        for q in [
            CustomerQuery::all(),
            CustomerQuery { email: Some(EmailAddress::parse("s@a.example").unwrap()), ..Default::default() },
            CustomerQuery { external_id: Some(ExternalRef::new("erp", "S1").unwrap()), ..Default::default() },
            CustomerQuery { tag: Some(Tag::parse("vip").unwrap()), ..Default::default() },
        ] {
            probe!(store.list_customers(b, &q, &all), |p| p.items.is_empty(), "list_customers");
        }
        probe!(store.interactions_between(b, t0() - Duration::days(1), t0() + Duration::days(1), &all), |p| p.items.is_empty(), "interactions_between");
        let everyone = parse("revenue >= 0 or name is not null").unwrap();
        probe!(store.find_matching(b, &everyone, &schema, t0(), &all), |p| p.items.is_empty(), "find_matching");
        probe!(store.count_matching(b, &everyone, &schema, t0()), |n| *n == 0, "count_matching");
        probe!(store.get_segment(b, seg.id), |_| false, "get_segment");
        probe!(store.list_segments(b), |v| v.is_empty(), "list_segments");
        probe!(store.segment_members(b, seg.id, &all), |p| p.items.is_empty(), "segment_members");
        probe!(store.is_member(b, seg.id, c.id), |m| !*m, "is_member");
        probe!(store.segments_of(b, c.id), |v| v.is_empty(), "segments_of");
        probe!(store.get_case(b, case.id), |_| false, "get_case");
        probe!(store.get_cases(b, &[case.id]), |v| v.is_empty(), "get_cases");
        probe!(store.list_cases(b, &CaseQuery::default(), &all), |p| p.items.is_empty(), "list_cases");
        probe!(store.get_task(b, task.id), |_| false, "get_task");
        probe!(store.list_tasks(b, &TaskQuery::default(), &all), |p| p.items.is_empty(), "list_tasks");
        probe!(store.kpi_rules(b), |v| v.is_empty(), "kpi_rules");
        probe!(store.latest_value_model(b), |v| v.is_none(), "latest_value_model");
        probe!(store.archive_horizon(b), |v| v.is_none(), "archive_horizon");
        probe!(store.get_pipeline(b, pipeline.id), |_| false, "get_pipeline");
        probe!(store.pipelines(b), |v| v.is_empty(), "pipelines");
        probe!(store.get_opportunity(b, deal.id), |_| false, "get_opportunity");
        probe!(store.list_opportunities(b, &crm_core::sales::OpportunityQuery::default(), &all), |p| p.items.is_empty(), "list_opportunities");
        probe!(store.stage_history(b, deal.id, &all), |p| p.items.is_empty(), "stage_history");
        let forever = crm_core::sales::ForecastQuery { include_closed: true, ..crm_core::sales::ForecastQuery::new(chrono::NaiveDate::MIN, chrono::NaiveDate::MAX) };
        probe!(store.forecast_cells(b, &forever), |v| v.is_empty(), "forecast_cells");
        // Writes with A's ids and records.
        let mut changed = c.clone();
        changed.name = crm_core::DisplayName::parse("Stolen").unwrap();
        changed.version = 2;
        probe!(store.update_customer(b, &changed, 1, WriteOptions::new()), no, "update_customer");
        probe!(store.erase_customer(b, &changed, 1, WriteOptions::new().audit(crm_core::audit::AuditEntry::created(&changed))), no, "erase_customer");
        let merge = CustomerMerge { survivor: changed.clone(), survivor_version: 1, merged: vec![(other.id, 1)], audit: vec![] };
        probe!(store.merge_customers(b, &merge, WriteOptions::new()), no, "merge_customers");
        let mut again = buy.clone();
        again.id = crm_core::InteractionId::new();
        again.key = ExternalRef::new("shop", "2").unwrap();
        probe!(store.append_interactions(b, vec![again], WriteOptions::new()), |r| r.inserted == 0, "append_interactions");
        probe!(store.set_value_scores(b, vec![(c.id, scores(0.9, "99"))]), no, "set_value_scores");
        probe!(store.refresh_segment(b, seg.id, &schema, t0(), None), |m| m.members == 0, "refresh_segment");
        probe!(store.change_static_members(b, seg.id, vec![], vec![c.id], None), |m| m.left.is_empty(), "change_static_members");
        let mut moved = case.clone();
        moved.version += 1;
        probe!(store.update_case(b, &moved, case.version, WriteOptions::new()), no, "update_case");
        probe!(store.update_cases(b, vec![(moved.clone(), case.version, WriteOptions::new())]), |v| v == &[false], "update_cases");
        probe!(store.insert_case(b, &case, WriteOptions::new()), no, "insert_case");
        let mut done = task.clone();
        done.version += 1;
        probe!(store.update_task(b, &done, task.version, WriteOptions::new()), no, "update_task");
        probe!(store.update_kpi_rule(b, &rule, 1), no, "update_kpi_rule");
        let mut renamed = pipeline.clone();
        renamed.version = 2;
        probe!(store.update_pipeline(b, &renamed, 1), no, "update_pipeline");
        let mut won = deal.clone();
        won.version += 1;
        probe!(store.update_opportunity(b, &won, deal.version, &[], WriteOptions::new()), no, "update_opportunity");
        probe!(store.insert_opportunity(b, &deal, &deal.stage_change(None, None), WriteOptions::new()), no, "insert_opportunity");
        calls += super::accounts::foreign_account_probes(&store, &crm, a, b, c.id).await;
        // These succeed or not on B's side; either way A's records stay as they were.
        calls += 4;
        let _ = store.delete_kpi_rule(b, &rule.key).await;
        store.archive_interactions(b, t0() + Duration::days(365), t0() + Duration::days(365)).await.unwrap();
        store.insert_customer(b, &c, WriteOptions::new()).await.unwrap();
        store.save_segment(b, &seg).await.unwrap();
        assert_eq!(calls, FOREIGN_CALLS);
        assert_eq!(snapshot(store.clone()).await, before, "tenant A reads the same");
    }
}
