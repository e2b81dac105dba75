//! Conformance cases: profiles: aggregates equal a rebuild from the timeline, under concurrency too.

use super::*;

cases! {
    /// Profiles equal a rebuild after every operation, over generated data with re-sends.
    async fn profiles_equal_rebuild_after_every_batch(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut gen = Generator::new(42);
        let mut ids = Vec::new();
        for _ in 0..6 {
            ids.push(register(&crm, tenant, gen.customer()).await.id);
        }
        let mut sent: Vec<Interaction> = Vec::new();
        for round in 0..8i64 {
            let mut batch = gen.interactions(&ids, 25, t0() + Duration::days(round), Duration::days(3));
            if round % 3 == 2 {
                batch.extend(sent.iter().take(10).cloned());
            }
            crm.tenant(tenant).interactions().log_batch(batch.clone()).await.unwrap();
            sent.extend(batch);
            for id in &ids {
                assert_profile_is_rebuild(&store, tenant, *id).await;
            }
        }
    }

    /// A new customer's profile is empty; profile fields follow the documented rules.
    async fn profile_aggregates_follow_the_rules(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let owner = UserId::new();
        let c = register(&crm, tenant, Customer::person("A").owner(owner).build().unwrap()).await;
        assert_eq!(crm.tenant(tenant).customers().profile(c.id).await.unwrap(), Profile::default());
        let buy = |n: i64, amount: &str, cur: &str| Interaction::builder(c.id, Channel::Store, InteractionKind::Purchase)
            .at(t0() + Duration::days(n))
            .handled_by(owner)
            .amount(Money::parse(amount, cur).unwrap())
            .key("pos", &n.to_string())
            .build()
            .unwrap();
        let note = Interaction::builder(c.id, Channel::Other, InteractionKind::Note)
            .at(t0() + Duration::days(30))
            .build()
            .unwrap();
        let complaint = Interaction::builder(c.id, Channel::Email, InteractionKind::Complaint)
            .at(t0() + Duration::days(2))
            .build()
            .unwrap();
        crm.tenant(tenant).interactions().log_batch(vec![buy(1, "10.10", "EUR"), buy(5, "0.90", "EUR"), buy(3, "7", "USD"), note, complaint]).await.unwrap();
        let p = crm.tenant(tenant).customers().profile(c.id).await.unwrap();
        assert_eq!(p.interaction_count, 5);
        assert_eq!(p.purchase_count, 3);
        assert_eq!(p.complaint_count, 1);
        assert_eq!(p.first_purchase_at, Some(t0() + Duration::days(1)));
        assert_eq!(p.last_purchase_at, Some(t0() + Duration::days(5)));
        assert_eq!(p.last_contact_at, Some(t0() + Duration::days(5)), "a note is not a contact");
        assert_eq!(p.revenue_in(crm_core::Currency::parse("EUR").unwrap()), Decimal::new(1100, 2));
        assert_eq!(p.revenue_in(crm_core::Currency::parse("USD").unwrap()), Decimal::from(7));
        assert_eq!(p.last_contact_by(owner), Some(t0() + Duration::days(5)));
        assert_eq!(p.channel_counts[&Channel::Store], 3);
    }

    /// Concurrent batches for the same customers keep profiles equal to a rebuild.
    async fn concurrent_batches_keep_profiles_exact(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let mut gen = Generator::new(5);
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(register(&crm, tenant, gen.customer()).await.id);
        }
        let mut tasks = Vec::new();
        for w in 0..4 {
            let batch = gen.interactions(&ids, 40, t0() + Duration::days(w), Duration::days(2));
            let crm = crm.clone();
            tasks.push(tokio::spawn(async move { crm.tenant(tenant).interactions().log_batch(batch).await }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().inserted, 40);
        }
        for id in &ids {
            assert_profile_is_rebuild(&store, tenant, *id).await;
        }
    }

    /// Batch reads (`get_customers`, `ownership_histories`, `get_profiles`) answer what
    /// the single reads answer, each id once, unknown ids and other tenants left out; more
    /// than `MAX_IDS` ids is Validation on `ids`.
    async fn batch_reads_equal_single_reads(store) {
        let (crm, clock) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let (alice, bob) = (UserId::new(), UserId::new());
        let moved = register(&crm, tenant, Customer::person("Moved").owner(alice).build().unwrap()).await;
        let plain = register(&crm, tenant, simple("Plain")).await;
        let elsewhere = register(&crm, other, simple("Elsewhere")).await;
        clock.advance(Duration::hours(1));
        let t = crm.tenant(tenant);
        t.customers().change_owner(moved.id, Some(bob), 1, None, Some("hand-over")).await.unwrap();
        t.customers().change_owner(moved.id, None, 2, None, None).await.unwrap();
        t.interactions().log(event(plain.id, InteractionKind::Purchase, t0(), "1")).await.unwrap();
        let ids = [moved.id, plain.id, CustomerId::new(), elsewhere.id, moved.id];

        let mut got = store.get_customers(tenant, &ids).await.unwrap();
        got.sort_by_key(|c| c.id);
        let mut want = vec![store.get_customer(tenant, moved.id).await.unwrap(), store.get_customer(tenant, plain.id).await.unwrap()];
        want.sort_by_key(|c| c.id);
        assert_eq!(got, want, "each stored customer once");

        let histories = store.ownership_histories(tenant, &ids).await.unwrap();
        assert_eq!(histories.keys().collect::<Vec<_>>(), vec![&moved.id], "only customers with transfers");
        assert_eq!(histories[&moved.id], store.ownership_history(tenant, moved.id).await.unwrap());
        assert_eq!(histories[&moved.id].len(), 2);

        let profiles = store.get_profiles(tenant, &ids).await.unwrap();
        assert_eq!(profiles.len(), 2, "{profiles:?}");
        assert_eq!(profiles[&plain.id], store.get_profile(tenant, plain.id).await.unwrap());
        assert_eq!(profiles[&plain.id].purchase_count, 1);
        assert_eq!(profiles[&moved.id], store.get_profile(tenant, moved.id).await.unwrap());

        assert!(store.get_customers(tenant, &[]).await.unwrap().is_empty());
        assert!(store.get_customers(other, &[moved.id]).await.unwrap().is_empty(), "tenants apart");
        let many = vec![plain.id; crm_core::ports::MAX_IDS + 1];
        let r = store.get_customers(tenant, &many).await;
        assert_eq!(r.unwrap_err().field(), Some("ids"));
        assert_eq!(store.get_profiles(tenant, &many).await.unwrap_err().field(), Some("ids"));
        assert_eq!(store.ownership_histories(tenant, &many).await.unwrap_err().field(), Some("ids"));
        assert_eq!(store.get_customers(tenant, &many[..crm_core::ports::MAX_IDS]).await.unwrap().len(), 1);
    }
}
