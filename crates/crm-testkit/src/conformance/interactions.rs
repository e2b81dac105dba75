//! Conformance cases: interactions: append-only batches, idempotency keys, timelines, listings by time.

use super::*;

cases! {
    /// Every field of an interaction survives a round trip, and `recorded_at` is the clock's.
    async fn interaction_round_trip_every_field(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        clock.advance(Duration::days(1));
        let i = Interaction::builder(c.id, Channel::SelfService, InteractionKind::Purchase)
            .direction(Direction::Inbound)
            .handled_by(UserId::new())
            .at(t0() + Duration::microseconds(123_456_789))
            .subject("Bestellung 订单 #17")
            .body("line one\nline two\ttabbed")
            .amount(Money::parse("-12.345", "KWD").unwrap())
            .duration_secs(61)
            .wait_secs(7)
            .case(crm_core::CaseId::new())
            .attribute("sku", AttrValue::TextList(vec!["A-1".into(), "B-2".into()]))
            .attribute("qty", AttrValue::Number(Decimal::from(3)))
            .key("web-shop", "order/17")
            .build()
            .unwrap();
        let report = crm.tenant(tenant).interactions().log(i.clone()).await.unwrap();
        assert_eq!((report.inserted, report.duplicates), (1, 0));
        let back = full_timeline(&store, tenant, c.id, 10).await;
        let mut expected = i;
        expected.recorded_at = t0() + Duration::days(1);
        assert_eq!(back, vec![expected]);
    }

    /// Logging for an unknown customer is NotFound and writes nothing.
    async fn interaction_for_unknown_customer_is_not_found(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let batch = vec![
            event(c.id, InteractionKind::Call, t0(), "1"),
            event(CustomerId::new(), InteractionKind::Call, t0(), "2"),
        ];
        assert_not_found(crm.tenant(tenant).interactions().log_batch(batch).await, "log_batch");
        assert!(full_timeline(&store, tenant, c.id, 10).await.is_empty());
        assert_eq!(store.get_profile(tenant, c.id).await.unwrap(), Profile::default());
        // Nothing was remembered either: the same keys go in later.
        let r = crm.tenant(tenant).interactions().log(event(c.id, InteractionKind::Call, t0(), "1")).await.unwrap();
        assert_eq!(r.inserted, 1);
    }

    /// A batch with one invalid row is rejected whole, naming the row and field.
    async fn batch_with_bad_row_writes_nothing(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let mut batch: Vec<_> = (0..5).map(|n| event(c.id, InteractionKind::Purchase, t0(), &n.to_string())).collect();
        batch[3].subject = Some("x".repeat(Interaction::MAX_SUBJECT_CHARS + 1));
        let r = crm.tenant(tenant).interactions().log_batch(batch).await;
        assert_eq!(r.unwrap_err().field(), Some("interactions[3].subject"));
        assert!(full_timeline(&store, tenant, c.id, 10).await.is_empty());
        assert_eq!(store.get_profile(tenant, c.id).await.unwrap(), Profile::default());
    }

    /// Re-sending a batch stores nothing new and counts every row as a duplicate.
    async fn resent_batch_is_idempotent(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let mut gen = Generator::new(11);
        let batch = gen.interactions(&[c.id], 30, t0(), Duration::days(7));
        let r = crm.tenant(tenant).interactions().log_batch(batch.clone()).await.unwrap();
        assert_eq!((r.inserted, r.duplicates), (30, 0));
        let profile = store.get_profile(tenant, c.id).await.unwrap();
        // Same keys, fresh ids: still duplicates.
        let resent: Vec<_> = batch.iter().map(|i| { let mut j = i.clone(); j.id = crm_core::InteractionId::new(); j }).collect();
        let r = crm.tenant(tenant).interactions().log_batch(resent).await.unwrap();
        assert_eq!((r.inserted, r.duplicates), (0, 30));
        assert_eq!(store.get_profile(tenant, c.id).await.unwrap(), profile, "re-send changed the profile");
        assert_eq!(full_timeline(&store, tenant, c.id, 7).await.len(), 30);
    }

    /// A key repeated inside one batch is stored once.
    async fn duplicate_keys_within_a_batch_count_once(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let batch = vec![
            event(c.id, InteractionKind::Purchase, t0(), "same"),
            event(c.id, InteractionKind::Purchase, t0() + Duration::hours(1), "same"),
            event(c.id, InteractionKind::Call, t0(), "other"),
        ];
        let first_id = batch[0].id;
        let r = crm.tenant(tenant).interactions().log_batch(batch).await.unwrap();
        assert_eq!((r.inserted, r.duplicates), (2, 1));
        let stored = full_timeline(&store, tenant, c.id, 10).await;
        assert!(stored.iter().any(|i| i.id == first_id), "the first row with a key wins");
        assert_eq!(store.get_profile(tenant, c.id).await.unwrap().purchase_count, 1);
        assert_profile_is_rebuild(&store, tenant, c.id).await;
    }

    /// Idempotency keys are per tenant: the same key in another tenant is a new interaction.
    async fn same_key_in_other_tenant_is_independent(store) {
        let (crm, _) = crm(&store);
        let (t1, t2) = (TenantId::new(), TenantId::new());
        let a = register(&crm, t1, simple("A")).await;
        let b = register(&crm, t2, simple("B")).await;
        assert_eq!(crm.tenant(t1).interactions().log(event(a.id, InteractionKind::Call, t0(), "k")).await.unwrap().inserted, 1);
        assert_eq!(crm.tenant(t2).interactions().log(event(b.id, InteractionKind::Call, t0(), "k")).await.unwrap().inserted, 1);
    }

    /// Reusing a stored interaction id under a new key is Duplicate, and the batch is
    /// rolled back.
    async fn reused_interaction_id_is_duplicate(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let first = event(c.id, InteractionKind::Call, t0(), "1");
        crm.tenant(tenant).interactions().log(first.clone()).await.unwrap();
        let mut clash = event(c.id, InteractionKind::Call, t0(), "2");
        clash.id = first.id;
        let batch = vec![event(c.id, InteractionKind::Purchase, t0(), "3"), clash];
        let r = crm.tenant(tenant).interactions().log_batch(batch).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "got {r:?}");
        assert_eq!(full_timeline(&store, tenant, c.id, 10).await.len(), 1);
        assert_profile_is_rebuild(&store, tenant, c.id).await;
    }

    /// The timeline is newest first; equal times are ordered by id, descending.
    async fn timeline_is_newest_first(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let mut batch = Vec::new();
        for n in 0..10 {
            let at = t0() + Duration::minutes(n % 4);
            batch.push(event(c.id, InteractionKind::Call, at, &n.to_string()));
        }
        crm.tenant(tenant).interactions().log_batch(batch.clone()).await.unwrap();
        let mut expected: Vec<_> = batch.iter().map(|i| (i.occurred_at, i.id)).collect();
        expected.sort();
        expected.reverse();
        for limit in [1, 3, 10] {
            let got: Vec<_> = full_timeline(&store, tenant, c.id, limit).await.iter().map(|i| (i.occurred_at, i.id)).collect();
            assert_eq!(got, expected, "limit {limit}");
        }
    }

    /// Interactions logged while a timeline is paged through cause no repeats, and every
    /// older interaction is still reached.
    async fn timeline_pages_under_concurrent_inserts(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let c = register(&crm, tenant, simple("A")).await;
        let mut gen = Generator::new(3);
        let old = gen.interactions(&[c.id], 60, t0(), Duration::days(30));
        crm.tenant(tenant).interactions().log_batch(old.clone()).await.unwrap();
        let writer = {
            let crm = crm.clone();
            let newer = gen.interactions(&[c.id], 30, t0() + Duration::days(31), Duration::days(5));
            tokio::spawn(async move {
                for i in newer {
                    crm.tenant(tenant).interactions().log(i).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        };
        let seen = full_timeline(&store, tenant, c.id, 4).await;
        writer.await.unwrap();
        let ids: Vec<_> = seen.iter().map(|i| i.id).collect();
        let unique: BTreeSet<_> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "an interaction was listed twice");
        assert!(old.iter().all(|i| unique.contains(&i.id)), "an older interaction was skipped");
        assert_profile_is_rebuild(&store, tenant, c.id).await;
    }

    /// An empty batch is a no-op.
    async fn empty_batch_is_a_no_op(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let r = crm.tenant(tenant).interactions().log_batch(Vec::new()).await.unwrap();
        assert_eq!((r.inserted, r.duplicates), (0, 0));
        let r = store.append_interactions(tenant, Vec::new(), WriteOptions::new()).await.unwrap();
        assert_eq!((r.inserted, r.duplicates), (0, 0));
    }

    /// A large batch over many customers is stored whole with exact profiles.
    async fn large_batch_over_many_customers(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut gen = Generator::new(99);
        let mut ids = Vec::new();
        for _ in 0..50 {
            ids.push(register(&crm, tenant, gen.customer()).await.id);
        }
        let batch = gen.interactions(&ids, 2000, t0(), Duration::days(90));
        let r = crm.tenant(tenant).interactions().log_batch(batch).await.unwrap();
        assert_eq!(r.inserted, 2000);
        let mut total = 0;
        for id in &ids {
            assert_profile_is_rebuild(&store, tenant, *id).await;
            total += store.get_profile(tenant, *id).await.unwrap().interaction_count;
        }
        assert_eq!(total, 2000);
    }

    /// Interactions of a tenant by occurrence: the half-open range, oldest first with ties
    /// by id, page by page, only the tenant's.
    async fn interactions_are_listed_by_time(store) {
        let (crm, _) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let a = register(&crm, tenant, simple("A")).await;
        let b = register(&crm, tenant, simple("B")).await;
        let elsewhere = register(&crm, other, simple("C")).await;
        let mut batch = Vec::new();
        for i in 0..9 {
            let who = if i % 2 == 0 { a.id } else { b.id };
            // Three share each instant, so ties are broken by id.
            batch.push(event(who, InteractionKind::Note, t0() + Duration::hours(i / 3), &format!("n{i}")));
        }
        crm.tenant(tenant).interactions().log_batch(batch.clone()).await.unwrap();
        crm.tenant(other).interactions().log(event(elsewhere.id, InteractionKind::Note, t0(), "x")).await.unwrap();
        let got = collect_pages(2, |page| {
            let store = store.clone();
            async move { store.interactions_between(tenant, t0(), t0() + Duration::hours(2), &page).await }
        })
        .await;
        let mut want: Vec<_> = batch.iter().filter(|i| i.occurred_at < t0() + Duration::hours(2)).map(|i| (i.occurred_at, i.id)).collect();
        want.sort();
        assert_eq!(got.iter().map(|i| (i.occurred_at, i.id)).collect::<Vec<_>>(), want);
        assert_eq!(got.len(), 6, "[from, to): the third hour is out");
        let all = store.interactions_between(tenant, t0() - Duration::days(1), t0() + Duration::days(1), &PageRequest::first(100)).await.unwrap();
        assert_eq!(all.items.len(), 9, "only the tenant's");
        let none = store.interactions_between(tenant, t0() + Duration::hours(5), t0() + Duration::hours(6), &PageRequest::first(10)).await.unwrap();
        assert!(none.items.is_empty() && none.next.is_none());
    }
}
