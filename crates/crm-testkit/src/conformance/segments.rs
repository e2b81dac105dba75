//! Conformance cases: segments: compiled rules against the reference evaluation, definitions, memberships.

use super::*;

cases! {
    /// Rules evaluated by the store select exactly the customers the in-memory reference
    /// selects, on 1,000 random rules over random customers, profiles, scores and
    /// attributes (some stored with the wrong type).
    async fn segment_rules_match_the_reference_evaluation(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let now = t0() + Duration::days(10);
        let mut gen = Generator::new(2718);
        let mut ids = Vec::new();
        for _ in 0..60 {
            // Registration times with microseconds, so created_at compares at full precision.
            clock.advance(Duration::microseconds(gen.below(20_000_000_000) as i64));
            ids.push(register(&crm, tenant, gen.segment_customer(now)).await.id);
        }
        let history = gen.interactions(&ids, 700, t0() - Duration::days(400), Duration::days(420));
        crm.tenant(tenant).interactions().log_batch(history).await.unwrap();
        let mut scored = Vec::new();
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
            let cur = if i % 5 == 0 { "USD" } else { "EUR" };
            scored.push((*id, ValueScores {
                p_alive: (i % 11) as f64 / 10.0,
                expected_purchases_90d: (i % 7) as f64 / 4.0,
                predicted_clv: Money::new(Decimal::new((i * 3_517 % 100_000) as i64, 2), cur).unwrap(),
                scored_at: now,
            }));
        }
        crm.tenant(tenant).value().set_scores(scored).await.unwrap();
        let segments = crm_core::value_class::RfmSegment::ALL;
        let abc = [crm_core::value_class::AbcClass::A, crm_core::value_class::AbcClass::B, crm_core::value_class::AbcClass::C];
        let classified: Vec<(CustomerId, ValueClasses)> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 != 1)
            .map(|(i, id)| (*id, ValueClasses {
                r: (i % 5) as u8 + 1,
                f: (i * 7 % 5) as u8 + 1,
                m: (i * 3 % 5) as u8 + 1,
                segment: segments[i % segments.len()],
                abc: abc[i % 3],
                as_of: now.date_naive(),
            }))
            .collect();
        crm.tenant(tenant).value().set_classes(classified).await.unwrap();
        let mut subjects = Vec::new();
        for id in &ids {
            subjects.push((
                store.get_customer(tenant, *id).await.unwrap(),
                store.get_profile(tenant, *id).await.unwrap(),
                store.value_scores(tenant, *id).await.unwrap(),
                store.value_classes(tenant, *id).await.unwrap(),
            ));
        }
        let mut nonempty = 0;
        for case in 0..1000 {
            let rule = gen.rule(3, now);
            let compiled = CompiledRule::new(&rule, &schema).unwrap_or_else(|e| panic!("case {case}: generated rule {rule} is ill-typed: {e}"));
            let mut expected: Vec<CustomerId> = subjects
                .iter()
                .filter(|(c, p, s, k)| compiled.matches(&Subject { customer: c, profile: p, scores: s.as_ref(), classes: k.as_ref(), sales: None }, now))
                .map(|(c, _, _, _)| c.id)
                .collect();
            expected.sort();
            let got = collect_pages(25, |page| {
                let (store, rule, schema) = (&store, &rule, &schema);
                async move { store.find_matching(tenant, rule, schema, now, &page).await }
            })
            .await;
            assert_eq!(got, expected, "case {case}: members of `{rule}` differ from the reference");
            let count = store.count_matching(tenant, &rule, &schema, now).await.unwrap();
            assert_eq!(count as usize, expected.len(), "case {case}: count of `{rule}`");
            if !expected.is_empty() && expected.len() < ids.len() {
                nonempty += 1;
            }
        }
        assert!(nonempty > 200, "the random rules should split the customers often, did {nonempty} times");
    }

    /// Segment definitions round-trip; names are unique per tenant.
    async fn segment_definitions_round_trip(store) {
        let (crm, _) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let schema = segment_schema();
        let vip = crm.tenant(tenant).segments().create(Segment::dynamic("VIP", parse(r#""vip" in tags and revenue > 100"#).unwrap()).unwrap(), &schema).await.unwrap();
        let picked = crm.tenant(tenant).segments().create(Segment::fixed("Fair 2025").unwrap(), &schema).await.unwrap();
        assert_eq!(vip.created_at, t0());
        assert_eq!(store.get_segment(tenant, vip.id).await.unwrap(), vip);
        let names: Vec<String> = crm.tenant(tenant).segments().list().await.unwrap().iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, vec!["Fair 2025", "VIP"]);
        let r = crm.tenant(tenant).segments().create(Segment::fixed("VIP").unwrap(), &schema).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "same name: {r:?}");
        assert_not_found(store.get_segment(other, picked.id).await, "other tenant");
        assert!(crm.tenant(other).segments().list().await.unwrap().is_empty());
        crm.tenant(other).segments().create(Segment::fixed("VIP").unwrap(), &schema).await.unwrap();
        let bad = Segment::dynamic("Bad", parse("revenue > \"x\"").unwrap()).unwrap();
        assert_eq!(crm.tenant(tenant).segments().create(bad, &schema).await.unwrap_err().field(), Some("rule"));
    }

    /// Refreshing a dynamic segment stores its members and reports who entered and left.
    async fn segment_refresh_reports_entered_and_left(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let a = register(&crm, tenant, Customer::person("A").lifecycle(Lifecycle::Active).build().unwrap()).await;
        let b = register(&crm, tenant, Customer::person("B").lifecycle(Lifecycle::Active).build().unwrap()).await;
        let c = register(&crm, tenant, Customer::person("C").lifecycle(Lifecycle::Lead).build().unwrap()).await;
        let seg = crm.tenant(tenant).segments().create(Segment::dynamic("Active", parse(r#"lifecycle = "active""#).unwrap()).unwrap(), &schema).await.unwrap();
        let (count, first) = crm.tenant(tenant).segments().preview(seg.rule().unwrap(), &schema, &PageRequest::first(1)).await.unwrap();
        assert_eq!(count, 2);
        assert_eq!(first.items, vec![a.id.min(b.id)]);
        let first = crm.tenant(tenant).segments().refresh(seg.id, &schema).await.unwrap();
        let mut both = vec![a.id, b.id];
        both.sort();
        assert_eq!((first.entered, first.left, first.members), (both, vec![], 2));
        let mut b2 = b.clone();
        b2.lifecycle = Lifecycle::Churned;
        crm.tenant(tenant).customers().update(b2, None).await.unwrap();
        let mut c2 = c.clone();
        c2.lifecycle = Lifecycle::Active;
        crm.tenant(tenant).customers().update(c2, None).await.unwrap();
        clock.advance(Duration::days(1));
        let second = crm.tenant(tenant).segments().refresh(seg.id, &schema).await.unwrap();
        assert_eq!((second.entered, second.left, second.members), (vec![c.id], vec![b.id], 2));
        let again = crm.tenant(tenant).segments().refresh(seg.id, &schema).await.unwrap();
        assert!(again.entered.is_empty() && again.left.is_empty());
        assert!(crm.tenant(tenant).segments().is_member(seg.id, c.id).await.unwrap());
        assert!(!crm.tenant(tenant).segments().is_member(seg.id, b.id).await.unwrap());
        assert_eq!(crm.tenant(tenant).segments().of_customer(a.id).await.unwrap(), vec![seg.id]);
        let members = collect_pages(1, |page| {
            let crm = crm.clone();
            async move { crm.tenant(tenant).segments().members(seg.id, &page).await }
        })
        .await;
        let mut expected = vec![a.id, c.id];
        expected.sort();
        assert_eq!(members, expected);
    }

    /// Static segments are changed by hand, all or nothing; dynamic and static do not mix.
    async fn static_segments_are_hand_picked(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let a = register(&crm, tenant, simple("A")).await;
        let b = register(&crm, tenant, simple("B")).await;
        let fair = crm.tenant(tenant).segments().create(Segment::fixed("Fair").unwrap(), &schema).await.unwrap();
        let change = crm.tenant(tenant).segments().change_static_members(fair.id, vec![a.id, b.id], vec![]).await.unwrap();
        assert_eq!(change.members, 2);
        let change = crm.tenant(tenant).segments().change_static_members(fair.id, vec![], vec![a.id]).await.unwrap();
        assert_eq!((change.entered, change.left, change.members), (vec![], vec![a.id], 1));
        let r = crm.tenant(tenant).segments().change_static_members(fair.id, vec![a.id, CustomerId::new()], vec![]).await;
        assert_not_found(r, "unknown customer");
        assert!(!crm.tenant(tenant).segments().is_member(fair.id, a.id).await.unwrap(), "nothing half-written");
        let r = crm.tenant(tenant).segments().refresh(fair.id, &schema).await;
        assert!(r.unwrap_err().is_validation());
        let dynamic = crm.tenant(tenant).segments().create(Segment::dynamic("All", parse("purchase_count >= 0").unwrap()).unwrap(), &schema).await.unwrap();
        let r = store.change_static_members(tenant, dynamic.id, vec![a.id], vec![], None).await;
        assert!(r.unwrap_err().is_validation());
        assert_not_found(crm.tenant(tenant).segments().refresh(crm_core::SegmentId::new(), &schema).await, "unknown segment");
    }

    /// Tenant B neither sees nor changes tenant A's segments, and rules never select
    /// another tenant's customers.
    async fn segments_are_tenant_isolated(store) {
        let (crm, _) = crm(&store);
        let (a, b) = (TenantId::new(), TenantId::new());
        let schema = segment_schema();
        let mine = register(&crm, a, simple("Mine")).await;
        register(&crm, b, simple("Theirs")).await;
        let seg = crm.tenant(a).segments().create(Segment::fixed("Picked").unwrap(), &schema).await.unwrap();
        crm.tenant(a).segments().change_static_members(seg.id, vec![mine.id], vec![]).await.unwrap();
        assert_not_found(crm.tenant(b).segments().members(seg.id, &PageRequest::first(10)).await, "members");
        assert_not_found(crm.tenant(b).segments().change_static_members(seg.id, vec![], vec![mine.id]).await, "change");
        assert_not_found(crm.tenant(b).segments().is_member(seg.id, mine.id).await, "is_member");
        let all = parse("interaction_count >= 0").unwrap();
        let (count, page) = crm.tenant(b).segments().preview(&all, &schema, &PageRequest::first(10)).await.unwrap();
        assert_eq!(count, 1);
        assert!(!page.items.contains(&mine.id));
        assert!(crm.tenant(a).segments().is_member(seg.id, mine.id).await.unwrap());
    }

    /// The largest rules the language accepts are stored, read back equal (one by one and
    /// in the tenant's list), refreshed and previewed with the reference answer; a NUL in
    /// a rule's text is a validation error everywhere.
    async fn largest_rules_are_stored_run_and_read_back(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let mut ids = Vec::new();
        for (i, tags) in [vec![], vec!["vip"], vec!["vip"], vec![]].into_iter().enumerate() {
            let mut b = Customer::person(&format!("Customer {i}"));
            for t in tags {
                b = b.tag(t);
            }
            let c = register(&crm, tenant, b.build().unwrap()).await;
            let buys: Vec<Interaction> = (0..i)
                .map(|k| Interaction::builder(c.id, Channel::Web, InteractionKind::Purchase).at(t0())
                    .amount(Money::parse("5", "EUR").unwrap()).key("shop", &format!("{i}-{k}")).build().unwrap())
                .collect();
            crm.tenant(tenant).interactions().log_batch(buys).await.unwrap();
            ids.push(c.id);
        }
        for (n, text) in crm_core::segment::largest_rules().into_iter().enumerate() {
            let rule = parse(&text).unwrap();
            let compiled = CompiledRule::new(&rule, &schema).unwrap();
            let mut expected = Vec::new();
            for id in &ids {
                let (c, p) = (store.get_customer(tenant, *id).await.unwrap(), store.get_profile(tenant, *id).await.unwrap());
                if compiled.matches(&Subject { customer: &c, profile: &p, scores: None, classes: None, sales: None }, t0()) {
                    expected.push(*id);
                }
            }
            expected.sort();
            let segment = crm.tenant(tenant).segments().create(Segment::dynamic(&format!("Largest {n}"), rule.clone()).unwrap(), &schema).await.unwrap();
            assert_eq!(store.get_segment(tenant, segment.id).await.unwrap(), segment);
            assert!(crm.tenant(tenant).segments().list().await.unwrap().contains(&segment));
            let change = crm.tenant(tenant).segments().refresh(segment.id, &schema).await.unwrap();
            let mut entered = change.entered.clone();
            entered.sort();
            assert_eq!(entered, expected, "rule {n}");
            let (count, _) = crm.tenant(tenant).segments().preview(&rule, &schema, &PageRequest::first(10)).await.unwrap();
            assert_eq!(count, expected.len() as u64, "rule {n}");
        }
        let nul = parse("name = \"a\\u{0}b\" or \"x\\u{0}\" in tags").unwrap();
        let e = crm.tenant(tenant).segments().preview(&nul, &schema, &PageRequest::first(10)).await.unwrap_err();
        assert_eq!(e.field(), Some("rule"), "{e}");
        let e = crm.tenant(tenant).segments().create(Segment::dynamic("NUL", nul).unwrap(), &schema).await.unwrap_err();
        assert_eq!(e.field(), Some("rule"), "{e}");
    }
}
