//! Conformance cases: service cases.

use super::*;

cases! {
    /// A case round-trips with its timeline; a case of an unknown customer or a reused
    /// id is refused; a stale change is Conflict and writes nothing.
    async fn cases_round_trip_with_their_timeline(store) {
        let (crm, clock) = crm_with_events(&store);
        let tenant = TenantId::new();
        let ann = register(&crm, tenant, simple("Ann")).await;
        let agent = UserId::new();
        let draft = crm_core::case::Case::open(ann.id, crm_core::case::CaseKind::Complaint, "Parcel arrived broken — 破损", Channel::Email, Some(agent), t0()).unwrap();
        let opened = crm.tenant(tenant).cases().open(draft.clone()).await.unwrap();
        assert_eq!(store.get_case(tenant, opened.id).await.unwrap(), opened);
        clock.advance(Duration::minutes(40));
        let replied = crm.tenant(tenant).cases().record_event(opened.id, 1, crm_core::case::CaseEventKind::PublicReply { by: agent }, vec![]).await.unwrap();
        assert_eq!(replied.version, 2);
        let stale = crm.tenant(tenant).cases().record_event(opened.id, 1, crm_core::case::CaseEventKind::CustomerMessage, vec![]).await;
        assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
        let lead = UserId::new();
        clock.advance(Duration::hours(2));
        let notice = Notification::builder(Recipient::User(lead), "case.reassigned", &format!("reassigned:{}", opened.id)).build().unwrap();
        let moved = crm.tenant(tenant).cases().record_event(opened.id, 2, crm_core::case::CaseEventKind::Assignment { to: Some(lead), by: None, reason: Some("escalation".into()) }, vec![notice]).await.unwrap();
        let back = store.get_case(tenant, opened.id).await.unwrap();
        assert_eq!(back, moved);
        assert_eq!(back.assignee, Some(lead));
        assert_eq!(back.events.len(), 3);
        assert_eq!(back.events[1].at, t0() + Duration::minutes(40));
        let r = store.update_case(tenant, &back, 2, WriteOptions::new()).await;
        assert!(matches!(r, Err(Error::Conflict { .. })), "stale update: {r:?}");
        let mut orphan = draft.clone();
        orphan.id = crm_core::CaseId::new();
        orphan.customer = CustomerId::new();
        assert_not_found(crm.tenant(tenant).cases().open(orphan).await, "unknown customer");
        let mut reused = draft;
        reused.id = opened.id;
        assert!(matches!(crm.tenant(tenant).cases().open(reused).await, Err(Error::Duplicate { .. })));
        assert_not_found(store.get_case(tenant, crm_core::CaseId::new()).await, "unknown case");
        assert_not_found(store.get_case(TenantId::new(), opened.id).await, "other tenant");
        let kinds: Vec<EventKind> = drain_events(&store, tenant).await.into_iter().map(|e| e.kind).collect();
        assert!(kinds.contains(&EventKind::CaseOpened), "{kinds:?}");
    }

    /// Cases are listed by customer, assignee and openness, page by page.
    async fn cases_are_listed_by_customer_assignee_and_openness(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, simple("A")).await;
        let b = register(&crm, tenant, simple("B")).await;
        let (x, y) = (UserId::new(), UserId::new());
        let mut ids = Vec::new();
        for i in 0..7 {
            let (customer, agent) = if i % 2 == 0 { (a.id, x) } else { (b.id, y) };
            let draft = crm_core::case::Case::open(customer, crm_core::case::CaseKind::Inquiry, &format!("Question {i}"), Channel::Web, Some(agent), t0()).unwrap();
            ids.push(crm.tenant(tenant).cases().open(draft).await.unwrap());
        }
        crm.tenant(tenant).cases().record_event(ids[0].id, 1, crm_core::case::CaseEventKind::StatusChange { to: crm_core::case::CaseStatus::Resolved, by: Some(x) }, vec![]).await.unwrap();
        let list = |query: crm_core::case::CaseQuery| {
            let store = store.clone();
            async move {
                collect_pages(2, |page| {
                    let (store, query) = (store.clone(), query.clone());
                    async move { store.list_cases(tenant, &query, &page).await }
                })
                .await
                .into_iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
            }
        };
        let all: Vec<_> = ids.iter().map(|c| c.id).collect();
        assert_eq!(list(Default::default()).await, all);
        let of_a = list(crm_core::case::CaseQuery { customer: Some(a.id), ..Default::default() }).await;
        assert_eq!(of_a, vec![all[0], all[2], all[4], all[6]]);
        let of_y = list(crm_core::case::CaseQuery { assignee: Some(y), ..Default::default() }).await;
        assert_eq!(of_y, vec![all[1], all[3], all[5]]);
        let open_of_x = list(crm_core::case::CaseQuery { assignee: Some(x), open_only: true, ..Default::default() }).await;
        assert_eq!(open_of_x, vec![all[2], all[4], all[6]]);
        assert!(store.list_cases(TenantId::new(), &Default::default(), &PageRequest::first(10)).await.unwrap().items.is_empty());
        let bad = store.list_cases(tenant, &Default::default(), &PageRequest::after(Cursor::customer(a.id), 10)).await;
        assert_eq!(bad.unwrap_err().field(), Some("cursor"));
    }

    /// Concurrent changes to one case: exactly one wins, the others are Conflict.
    async fn concurrent_case_changes_exactly_one_wins(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, simple("A")).await;
        let draft = crm_core::case::Case::open(a.id, crm_core::case::CaseKind::ServiceRequest, "Install", Channel::Phone, None, t0()).unwrap();
        let case = crm.tenant(tenant).cases().open(draft).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (store, mut next) = (store.clone(), case.clone());
            tasks.push(tokio::spawn(async move {
                next.record(t0() + Duration::minutes(1), crm_core::case::CaseEventKind::InternalNote { by: UserId::new() }).unwrap();
                next.version = 2;
                store.update_case(tenant, &next, 1, WriteOptions::new()).await
            }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => wins += 1,
                Err(Error::Conflict { .. }) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(wins, 1);
        let stored = store.get_case(tenant, case.id).await.unwrap();
        assert_eq!((stored.version, stored.events.len()), (2, 2));
    }

    /// `get_cases` answers what `get_case` answers, each id once, unknown ids and other
    /// tenants left out; more than `MAX_IDS` ids is Validation on `ids`.
    async fn batch_case_reads_equal_single_reads(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let ann = register(&crm, tenant, simple("Ann")).await;
        let mut opened = Vec::new();
        for i in 0..3 {
            let draft = crm_core::case::Case::open(ann.id, crm_core::case::CaseKind::Inquiry, &format!("Case {i}"), Channel::Phone, None, t0()).unwrap();
            opened.push(crm.tenant(tenant).cases().open(draft).await.unwrap());
        }
        let ids = [opened[2].id, crm_core::CaseId::new(), opened[0].id, opened[2].id];
        let mut got = store.get_cases(tenant, &ids).await.unwrap();
        got.sort_by_key(|c| c.id);
        let mut want = vec![opened[0].clone(), opened[2].clone()];
        want.sort_by_key(|c| c.id);
        assert_eq!(got, want);
        assert!(store.get_cases(TenantId::new(), &ids).await.unwrap().is_empty(), "tenants apart");
        let many = vec![opened[1].id; crm_core::ports::MAX_IDS + 1];
        assert_eq!(store.get_cases(tenant, &many).await.unwrap_err().field(), Some("ids"));
    }

    /// `update_cases` stores each write whose version is current, with its outbox
    /// messages, and answers `false` for a stale or unknown case (nothing of it stored);
    /// a bad message stores nothing at all; more than `MAX_IDS` writes is Validation on
    /// `writes`.
    async fn batch_case_writes_store_the_current_ones(store) {
        use crm_core::case::CaseEventKind;
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let ann = register(&crm, tenant, simple("Ann")).await;
        let mut opened = Vec::new();
        for i in 0..2 {
            let draft = crm_core::case::Case::open(ann.id, crm_core::case::CaseKind::Inquiry, &format!("Case {i}"), Channel::Phone, None, t0()).unwrap();
            opened.push(crm.tenant(tenant).cases().open(draft).await.unwrap());
        }
        let next = |c: &crm_core::case::Case| {
            let mut n = c.clone();
            n.record(t0() + Duration::minutes(5), CaseEventKind::CustomerMessage).unwrap();
            n.version += 1;
            n
        };
        let message = |key: &str| OutboxMessage::new(note(key, Priority::Normal), t0());
        let (a, b) = (next(&opened[0]), next(&opened[1]));
        let (sent, lost) = (message("a"), message("b"));
        let mut unknown = next(&opened[0]);
        unknown.id = crm_core::CaseId::new();
        let stored = store.update_cases(tenant, vec![
            (a.clone(), 1, WriteOptions::new().outbox(vec![sent.clone()])),
            (b.clone(), 7, WriteOptions::new().outbox(vec![lost.clone()])),
            (unknown, 1, WriteOptions::new()),
        ]).await.unwrap();
        assert_eq!(stored, vec![true, false, false]);
        assert_eq!(store.get_case(tenant, a.id).await.unwrap(), a);
        assert_eq!(store.get_case(tenant, b.id).await.unwrap(), opened[1], "the stale write stored nothing");
        assert!(store.outbox_message(tenant, sent.id).await.is_ok());
        assert_not_found(store.outbox_message(tenant, lost.id).await, "the stale write's message");

        let mut bad = message("bad");
        bad.notification.data = serde_json::json!("not an object");
        let b2 = next(&opened[1]);
        let r = store.update_cases(tenant, vec![
            (b2, 1, WriteOptions::new()),
            (next(&a), 2, WriteOptions::new().outbox(vec![bad])),
        ]).await;
        assert!(matches!(r, Err(Error::Validation { .. })), "{r:?}");
        assert_eq!(store.get_case(tenant, b.id).await.unwrap(), opened[1], "nothing stored");
        // One case twice in a call: the second write sees the first.
        let (b3, b4) = (next(&opened[1]), next(&next(&opened[1])));
        let stored = store.update_cases(tenant, vec![
            (b3, 1, WriteOptions::new()),
            (b4.clone(), 2, WriteOptions::new()),
            (b4.clone(), 2, WriteOptions::new()),
        ]).await.unwrap();
        assert_eq!(stored, vec![true, true, false]);
        assert_eq!(store.get_case(tenant, b.id).await.unwrap(), b4);
        assert!(store.update_cases(tenant, vec![]).await.unwrap().is_empty());
        let many = vec![(a.clone(), 2, WriteOptions::new()); crm_core::ports::MAX_IDS + 1];
        assert_eq!(store.update_cases(tenant, many).await.unwrap_err().field(), Some("writes"));
    }
}
