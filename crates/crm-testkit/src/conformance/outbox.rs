//! Conformance cases: the outbox, the dispatcher and domain events.

use super::*;

cases! {
    /// Enqueued messages read back unchanged; a repeated idempotency key (stored before, or
    /// earlier in the same call) is skipped and counted; a bad message writes nothing.
    async fn outbox_enqueue_round_trips_and_skips_repeated_keys(store) {
        let tenant = TenantId::new();
        let first = OutboxMessage::new(note("a", Priority::High), t0());
        let report = store.enqueue(tenant, vec![first.clone()]).await.unwrap();
        assert_eq!((report.enqueued, report.duplicates), (1, 0));
        let back = store.outbox_message(tenant, first.id).await.unwrap();
        assert!(back.seq > 0, "the store assigns a sequence number");
        assert_eq!(back, OutboxMessage { seq: back.seq, ..first.clone() });
        let again = OutboxMessage::new(note("a", Priority::Low), t0());
        let fresh = OutboxMessage::new(note("b", Priority::Low), t0());
        let twice = OutboxMessage::new(note("b", Priority::Low), t0());
        let report = store.enqueue(tenant, vec![again.clone(), fresh.clone(), twice]).await.unwrap();
        assert_eq!((report.enqueued, report.duplicates), (1, 2));
        assert_not_found(store.outbox_message(tenant, again.id).await, "skipped message");
        assert_eq!(store.pending_count(tenant).await.unwrap(), 2);
        let mut bad = OutboxMessage::new(note("c", Priority::Low), t0());
        bad.notification.data = serde_json::json!("not an object");
        let ok = OutboxMessage::new(note("d", Priority::Low), t0());
        let r = store.enqueue(tenant, vec![ok.clone(), bad]).await;
        assert_eq!(r.unwrap_err().field(), Some("messages[1].notification.data"));
        assert_not_found(store.outbox_message(tenant, ok.id).await, "nothing half-written");
        let mut reused = OutboxMessage::new(note("e", Priority::Low), t0());
        reused.id = first.id;
        let r = store.enqueue(tenant, vec![reused]).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "reused id: {r:?}");
        assert_eq!(store.pending_count(tenant).await.unwrap(), 2);
        let not_before = t0() + Duration::hours(2);
        let later = OutboxMessage::new(
            Notification { not_before: Some(not_before), ..note("later", Priority::Normal) },
            t0(),
        );
        assert_eq!(later.next_attempt_at, not_before);
        store.enqueue(tenant, vec![later.clone()]).await.unwrap();
        let back_later = store.outbox_message(tenant, later.id).await.unwrap();
        assert_eq!(back_later, OutboxMessage { seq: back_later.seq, ..later });
        let back_fresh = store.outbox_message(tenant, fresh.id).await.unwrap();
        assert!(back.seq < back_fresh.seq && back_fresh.seq < back_later.seq, "seq increases");
    }

    /// Claims take due messages only, highest priority first, then by due time, up to the
    /// limit; a claimed message is not handed out again while its lease holds.
    async fn outbox_claims_due_messages_in_priority_order(store) {
        let tenant = TenantId::new();
        let at = |m: i64| t0() + Duration::minutes(m);
        let mut messages = vec![
            OutboxMessage::new(note("low", Priority::Low), at(0)),
            OutboxMessage::new(note("normal-late", Priority::Normal), at(2)),
            OutboxMessage::new(note("normal-early", Priority::Normal), at(1)),
            OutboxMessage::new(note("urgent", Priority::Urgent), at(3)),
        ];
        messages.push(OutboxMessage::new(
            Notification { not_before: Some(at(60)), ..note("future", Priority::Urgent) },
            at(0),
        ));
        store.enqueue(tenant, messages).await.unwrap();
        let now = at(5);
        let first = store.claim(tenant, now, lease_until(at(10)), 3).await.unwrap();
        assert_eq!(keys_of(&first), ["urgent", "normal-early", "normal-late"]);
        let second = store.claim(tenant, now, lease_until(at(10)), 10).await.unwrap();
        assert_eq!(keys_of(&second), ["low"], "leased messages are not claimed again");
        assert!(store.claim(tenant, at(9), lease_until(at(20)), 10).await.unwrap().is_empty());
        let lapsed = store.claim(tenant, at(10), lease_until(at(100)), 10).await.unwrap();
        assert_eq!(lapsed.len(), 4, "lapsed leases can be claimed again");
        let due = store.claim(tenant, at(60), lease_until(at(70)), 10).await.unwrap();
        assert_eq!(keys_of(&due), ["future"], "due at its not-before time");
        assert!(store.claim(tenant, at(0), lease_until(at(1)), 0).await.unwrap().is_empty());
    }

    /// Only the current lease can record an outcome: a stale lease is LeaseLost, an unknown
    /// message NotFound; a released message can be claimed again at once.
    async fn outbox_lease_guards_every_outcome(store) {
        let tenant = TenantId::new();
        let ids = enqueue_keys(&store, tenant, &["m"], t0()).await;
        let old = store.claim(tenant, t0(), lease_until(t0() + Duration::minutes(1)), 1).await.unwrap();
        let old_lease = old[0].lease;
        assert_lease_lost(store.mark_sent(tenant, ids[0], Lease::new(t0()), t0()).await, "foreign lease");
        let later = t0() + Duration::minutes(2);
        let new = store.claim(tenant, later, lease_until(later + Duration::minutes(1)), 1).await.unwrap();
        assert_eq!(new.len(), 1);
        assert_lease_lost(store.mark_sent(tenant, ids[0], old_lease, later).await, "lapsed lease");
        assert_lease_lost(store.mark_failed(tenant, ids[0], old_lease, "x", None).await, "lapsed lease");
        assert_lease_lost(store.release(tenant, ids[0], old_lease).await, "lapsed lease");
        store.release(tenant, ids[0], new[0].lease).await.unwrap();
        let again = store.claim(tenant, later, lease_until(later + Duration::minutes(1)), 1).await.unwrap();
        assert_eq!(again.len(), 1, "released: claimable at once");
        assert_eq!(again[0].message.attempts, 0, "a release is not an attempt");
        store.mark_sent(tenant, ids[0], again[0].lease, later).await.unwrap();
        let sent = store.outbox_message(tenant, ids[0]).await.unwrap();
        assert_eq!((sent.state, sent.sent_at), (MessageState::Sent, Some(later)));
        assert_lease_lost(store.mark_sent(tenant, ids[0], again[0].lease, later).await, "already sent");
        assert!(store.claim(tenant, later + Duration::days(1), lease_until(later + Duration::days(2)), 9).await.unwrap().is_empty());
        assert_eq!(store.pending_count(tenant).await.unwrap(), 0);
        assert_not_found(store.mark_sent(tenant, MessageId::new(), old_lease, later).await, "unknown");
    }

    /// A failed attempt is counted and rescheduled; without a retry time the message is a
    /// dead letter, listed page by page and re-queued with its attempts reset.
    async fn outbox_failures_retry_then_dead_letter_and_requeue(store) {
        let tenant = TenantId::new();
        let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let ids = enqueue_keys(&store, tenant, &refs, t0()).await;
        let lease = lease_until(t0() + Duration::minutes(5));
        let claimed = store.claim(tenant, t0(), lease, 5).await.unwrap();
        assert_eq!(claimed.len(), 5);
        let retry_at = t0() + Duration::minutes(30);
        store.mark_failed(tenant, ids[0], lease, "451 try later", Some(retry_at)).await.unwrap();
        let m = store.outbox_message(tenant, ids[0]).await.unwrap();
        assert_eq!((m.state, m.attempts, m.next_attempt_at), (MessageState::Pending, 1, retry_at));
        assert_eq!(m.last_error.as_deref(), Some("451 try later"));
        for id in &ids[1..] {
            store.mark_failed(tenant, *id, lease, "550 no such user", None).await.unwrap();
        }
        let later = t0() + Duration::minutes(10);
        assert!(store.claim(tenant, later, lease_until(later + Duration::minutes(5)), 9).await.unwrap().is_empty(), "not before its retry time");
        let retry = store.claim(tenant, retry_at, lease_until(retry_at + Duration::minutes(5)), 9).await.unwrap();
        assert_eq!(keys_of(&retry), ["k0"]);
        assert_eq!(retry[0].message.attempts, 1);
        let dead = collect_pages(3, |page| { let store = store.clone(); async move { store.dead_letters(tenant, &page).await } }).await;
        assert_eq!(dead.iter().map(|m| m.id).collect::<Vec<_>>(), ids[1..].to_vec());
        assert!(dead.iter().all(|m| m.state == MessageState::Dead && m.attempts == 1));
        store.requeue(tenant, ids[1], later).await.unwrap();
        let m = store.outbox_message(tenant, ids[1]).await.unwrap();
        assert_eq!((m.state, m.attempts, m.next_attempt_at), (MessageState::Pending, 0, later));
        let r = store.requeue(tenant, ids[1], later).await;
        assert_eq!(r.unwrap_err().field(), Some("state"), "only dead letters are re-queued");
        assert_not_found(store.requeue(tenant, MessageId::new(), later).await, "unknown");
        let claimed = store.claim(tenant, later, lease_until(later + Duration::minutes(5)), 9).await.unwrap();
        assert_eq!(keys_of(&claimed), ["k1"]);
        assert_eq!(store.dead_letters(tenant, &PageRequest::first(10)).await.unwrap().items.len(), 3);
        let r = store.dead_letters(tenant, &PageRequest::after(Cursor::from_text("junk"), 10)).await;
        assert_eq!(r.unwrap_err().field(), Some("cursor"));
    }

    /// Dispatchers claiming at the same time never get the same message, and together they
    /// deliver every message exactly once.
    async fn outbox_concurrent_claims_never_share_a_message(store) {
        let tenant = TenantId::new();
        let keys: Vec<String> = (0..120).map(|i| format!("c{i:03}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        enqueue_keys(&store, tenant, &refs, t0()).await;
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let lease = Lease::new(t0() + Duration::minutes(5));
                    let batch = store.claim(tenant, t0(), lease, 7).await.expect("claim");
                    if batch.is_empty() {
                        return mine;
                    }
                    // The other dispatchers claim while this batch is held.
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    for c in batch {
                        store.mark_sent(tenant, c.message.id, c.lease, t0()).await.expect("sent under its lease");
                        mine.push(c.message.notification.idempotency_key);
                    }
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        all.sort();
        assert_eq!(all, keys, "every message exactly once");
        assert_eq!(store.pending_count(tenant).await.unwrap(), 0);
    }

    /// Outboxes of two tenants are independent, including equal idempotency keys.
    async fn outbox_is_tenant_isolated(store) {
        let (a, b) = (TenantId::new(), TenantId::new());
        let ids = enqueue_keys(&store, a, &["same"], t0()).await;
        enqueue_keys(&store, b, &["same"], t0()).await;
        assert_not_found(store.outbox_message(b, ids[0]).await, "other tenant's message");
        let lease = lease_until(t0() + Duration::minutes(1));
        let claimed = store.claim(b, t0(), lease, 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_ne!(claimed[0].message.id, ids[0]);
        assert_not_found(store.mark_sent(b, ids[0], lease, t0()).await, "other tenant's message");
        assert_eq!(store.pending_count(a).await.unwrap(), 1);
        assert!(store.dead_letters(b, &PageRequest::first(10)).await.unwrap().items.is_empty());
    }

    /// The dispatcher resolves staff through the directory (and escalates to team leads),
    /// reaches customers at their primary email, and sends marketing only with consent.
    async fn dispatcher_resolves_recipients_and_respects_consent(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let (agent, lead) = (UserId::new(), UserId::new());
        let directory = Arc::new(StaticDirectory::new());
        let staff = |id, name: &str, email: &str, team_lead| StaffMember {
            id, name: name.into(), email: EmailAddress::parse(email).unwrap(),
            locale: Some(crm_core::notify::Locale::parse("zh-CN").unwrap()), team: None, team_lead,
        };
        directory.insert(tenant, staff(agent, "Wang Fang", "fang@example.com", Some(lead)));
        directory.insert(tenant, staff(lead, "Li Lei", "lei@example.com", None));
        let consenting = register(&crm, tenant, Customer::person("Ann").email("ann@example.com")
            .consent(MarketingConsent { email: true, sms: false, phone: false }).build().unwrap()).await;
        let silent = register(&crm, tenant, Customer::person("Bob").email("bob@example.com").build().unwrap()).await;
        let make = |to: Recipient, key: &str, purpose: Purpose| {
            Notification::builder(to, "t", key).purpose(purpose).build().unwrap()
        };
        let report = crm.tenant(tenant).notifications().enqueue(vec![
            make(Recipient::User(agent), "agent", Purpose::Service),
            make(Recipient::TeamLeadOf(agent), "lead", Purpose::Service),
            make(Recipient::Customer(consenting.id), "ann-offer", Purpose::Marketing),
            make(Recipient::Customer(silent.id), "bob-offer", Purpose::Marketing),
            make(Recipient::Customer(silent.id), "bob-service", Purpose::Service),
            make(Recipient::User(UserId::new()), "nobody", Purpose::Service),
            Notification::builder(Recipient::Customer(consenting.id), "t", "ann-sms")
                .purpose(Purpose::Marketing).channel(DeliveryChannel::Sms).build().unwrap(),
        ]).await.unwrap();
        assert_eq!(report.enqueued, 7);
        let notifier = Arc::new(RecordingNotifier::new());
        let clock = Arc::new(ManualClock::new(t0()));
        let dispatcher = Dispatcher::new(tenant, store.clone(), notifier.clone(), directory, clock);
        let run = dispatcher.run_once(t0()).await.unwrap();
        assert_eq!((run.claimed, run.sent, run.dead, run.retried), (7, 4, 3, 0));
        let sent: std::collections::BTreeMap<String, (Option<String>, Option<String>)> = notifier
            .sent()
            .into_iter()
            .map(|(t, e)| {
                assert_eq!(t, tenant);
                (e.notification.idempotency_key.clone(), (e.to.email.map(|m| m.as_str().to_string()), e.to.name))
            })
            .collect();
        let expect = |email: &str, name: &str| (Some(email.to_string()), Some(name.to_string()));
        assert_eq!(sent["agent"], expect("fang@example.com", "Wang Fang"));
        assert_eq!(sent["lead"], expect("lei@example.com", "Li Lei"));
        assert_eq!(sent["ann-offer"], expect("ann@example.com", "Ann"));
        assert_eq!(sent["bob-service"], expect("bob@example.com", "Bob"));
        let dead = store.dead_letters(tenant, &PageRequest::first(10)).await.unwrap().items;
        let mut reasons: Vec<(String, String)> = dead.into_iter()
            .map(|m| (m.notification.idempotency_key, m.last_error.unwrap_or_default())).collect();
        reasons.sort();
        assert_eq!(reasons.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["ann-sms", "bob-offer", "nobody"]);
        assert!(reasons[1].1.contains("consent"), "{reasons:?}");
        assert!(reasons[2].1.contains("unknown user"), "{reasons:?}");
        assert_eq!(dispatcher.run_once(t0() + Duration::days(1)).await.unwrap().claimed, 0, "nothing sent twice");
    }

    /// A transient failure is retried after a backoff; a permanent one, or the last allowed
    /// attempt, makes a dead letter; a re-queued dead letter is delivered once.
    async fn dispatcher_retries_transient_and_buries_permanent_failures(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        crm.tenant(tenant).notifications().enqueue(vec![note("flaky", Priority::Urgent), note("doomed", Priority::Normal)]).await.unwrap();
        let notifier = Arc::new(RecordingNotifier::new());
        let clock = Arc::new(ManualClock::new(t0()));
        let retry = RetryPolicy { base: std::time::Duration::from_secs(60), max_delay: std::time::Duration::from_secs(600), max_attempts: 3, jitter: 0.0 };
        let config = crm_core::notify::DispatchConfig::default().with_retry(retry);
        let dispatcher = Dispatcher::new(tenant, store.clone(), notifier.clone(), Arc::new(StaticDirectory::new()), clock)
            .with_config(config);
        notifier.fail_next(1, false);
        notifier.fail_next(1, true);
        let run = dispatcher.run_once(t0()).await.unwrap();
        assert_eq!((run.sent, run.retried, run.dead), (0, 1, 1));
        assert_eq!(dispatcher.run_once(t0() + Duration::seconds(59)).await.unwrap().claimed, 0, "backoff holds");
        notifier.fail_next(2, false);
        let run = dispatcher.run_once(t0() + Duration::seconds(60)).await.unwrap();
        assert_eq!((run.retried, run.dead), (1, 0), "second attempt fails again");
        let run = dispatcher.run_once(t0() + Duration::seconds(180)).await.unwrap();
        assert_eq!((run.retried, run.dead), (0, 1), "third failure is the last attempt");
        let dead = store.dead_letters(tenant, &PageRequest::first(10)).await.unwrap().items;
        assert_eq!(dead.len(), 2);
        let flaky = dead.iter().find(|m| m.notification.idempotency_key == "flaky").unwrap();
        assert_eq!(flaky.attempts, 3);
        crm.tenant(tenant).notifications().requeue(flaky.id).await.unwrap();
        let run = dispatcher.run_once(t0()).await.unwrap();
        assert_eq!(run.sent, 1);
        assert_eq!(notifier.count(), 1);
        assert_eq!(notifier.sent()[0].1.notification.idempotency_key, "flaky");
        assert_eq!(dispatcher.run_once(t0() + Duration::days(30)).await.unwrap().claimed, 0);
    }

    /// A change and the outbox messages it causes commit together: a change that fails
    /// leaves no message behind, and a re-sent batch adds no event.
    async fn changes_and_their_outbox_messages_commit_together(store) {
        let (crm, _) = crm_with_events(&store);
        let tenant = TenantId::new();
        let ann = register(&crm, tenant, simple("Ann")).await;
        assert_eq!(store.pending_count(tenant).await.unwrap(), 1, "customer.created");
        let mut clash = simple("Clash");
        clash.id = ann.id;
        assert!(crm.tenant(tenant).customers().register(clash).await.is_err());
        assert_eq!(store.pending_count(tenant).await.unwrap(), 1, "failed insert: no event");
        let owner = UserId::new();
        let welcome = Notification::builder(Recipient::User(owner), "owner.assigned", "assigned:ann:2").build().unwrap();
        let transfer = |v| crm_core::Transfer { new_owner: Some(owner), expected_version: v, actor: None, reason: Some("territory") };
        let stale = crm.tenant(tenant).customers().change_owner_notifying(ann.id, transfer(7), vec![welcome.clone()]).await;
        assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
        assert_eq!(store.pending_count(tenant).await.unwrap(), 1, "failed transfer: nothing queued");
        crm.tenant(tenant).customers().change_owner_notifying(ann.id, transfer(1), vec![welcome]).await.unwrap();
        assert_eq!(store.pending_count(tenant).await.unwrap(), 4, "updated + owner changed + notice");
        let orphan = event(CustomerId::new(), InteractionKind::Note, t0(), "orphan");
        let note = Notification::builder(Recipient::User(owner), "t", "batch-note").build().unwrap();
        assert_not_found(crm.tenant(tenant).interactions().log_batch_notifying(vec![event(ann.id, InteractionKind::Note, t0(), "ok"), orphan], vec![note.clone()]).await, "batch");
        assert_eq!(store.pending_count(tenant).await.unwrap(), 4, "failed batch: nothing queued");
        let batch = vec![event(ann.id, InteractionKind::Note, t0(), "n1"), event(ann.id, InteractionKind::Call, t0(), "n2")];
        crm.tenant(tenant).interactions().log_batch_notifying(batch.clone(), vec![note]).await.unwrap();
        assert_eq!(store.pending_count(tenant).await.unwrap(), 7, "two interaction events + notice");
        let resent: Vec<Interaction> = batch.iter().map(|i| Interaction { id: crm_core::InteractionId::new(), ..i.clone() }).collect();
        assert_eq!(crm.tenant(tenant).interactions().log_batch(resent).await.unwrap().duplicates, 2);
        assert_eq!(store.pending_count(tenant).await.unwrap(), 7, "re-sent batch: no new event");
        let events = drain_events(&store, tenant).await;
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::CustomerCreated, EventKind::CustomerUpdated, EventKind::OwnerChanged, EventKind::InteractionLogged, EventKind::InteractionLogged]);
        let quiet = TenantId::new();
        let crm_off = Crm::new(store.clone());
        register(&crm_off, quiet, simple("Quiet")).await;
        assert_eq!(store.pending_count(quiet).await.unwrap(), 0, "events are off by default");
    }

    /// Events carry the tenant, increasing sequence numbers and the entity's version, and
    /// an entity's events are handed out one at a time, in order, even across retries.
    async fn events_are_delivered_in_order_per_entity(store) {
        let (crm, clock) = crm_with_events(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, simple("A")).await;
        let b = register(&crm, tenant, simple("B")).await;
        let mut a2 = a.clone();
        a2.lifecycle = Lifecycle::Active;
        clock.advance(Duration::minutes(1));
        let a2 = crm.tenant(tenant).customers().update(a2, None).await.unwrap();
        let mut a3 = a2.clone();
        a3.tags.insert(Tag::parse("vip").unwrap());
        crm.tenant(tenant).customers().update(a3, None).await.unwrap();
        crm.tenant(tenant).interactions().log(event(a.id, InteractionKind::Call, t0(), "call-a")).await.unwrap();
        let sink = Arc::new(RecordingSink::new());
        let notifier = Arc::new(RecordingNotifier::new());
        let dispatcher = Dispatcher::new(tenant, store.clone(), notifier, Arc::new(StaticDirectory::new()), Arc::new(ManualClock::new(t0())))
            .with_event_sink(sink.clone())
            .with_config(crm_core::notify::DispatchConfig::default().with_retry(RetryPolicy { base: std::time::Duration::from_secs(60), max_delay: std::time::Duration::from_secs(60), max_attempts: 5, jitter: 0.0 }));
        let now = t0() + Duration::hours(1);
        let first = dispatcher.run_once(now).await.unwrap();
        assert_eq!(first.claimed, 2, "one event per entity at a time: {first:?}");
        let mut rounds = 1;
        while dispatcher.run_once(now).await.unwrap().claimed > 0 {
            rounds += 1;
        }
        assert_eq!(rounds, 4, "A has four events");
        let events = sink.events();
        assert_eq!(events.len(), 5);
        assert!(events.iter().all(|e| e.tenant == tenant));
        let of = |id: CustomerId| events.iter().filter(|e| e.entity == crm_core::notify::EntityRef::customer(id) || e.data["customer"] == serde_json::json!(id)).collect::<Vec<_>>();
        let a_events = of(a.id);
        let a_kinds: Vec<(EventKind, u64)> = a_events.iter().map(|e| (e.kind, e.version)).collect();
        assert_eq!(a_kinds, [(EventKind::CustomerCreated, 1), (EventKind::CustomerUpdated, 2), (EventKind::CustomerUpdated, 3), (EventKind::InteractionLogged, 1)]);
        assert!(a_events.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
        assert_eq!(of(b.id).len(), 1);
        let keys: BTreeSet<&str> = events.iter().map(|e| e.idempotency_key.as_str()).collect();
        assert_eq!(keys.len(), 5, "distinct idempotency keys");
        assert_eq!(events[0].data["name"], "A");

        // A failing first event holds back the entity's later events until it is delivered.
        let c = register(&crm, tenant, simple("C")).await;
        let mut c2 = c.clone();
        c2.lifecycle = Lifecycle::Active;
        crm.tenant(tenant).customers().update(c2, None).await.unwrap();
        let flaky = Arc::new(FlakySink { inner: RecordingSink::new(), failures: std::sync::Mutex::new(1) });
        let dispatcher = Dispatcher::new(tenant, store.clone(), Arc::new(RecordingNotifier::new()), Arc::new(StaticDirectory::new()), Arc::new(ManualClock::new(t0())))
            .with_event_sink(flaky.clone())
            .with_config(crm_core::notify::DispatchConfig::default().with_retry(RetryPolicy { base: std::time::Duration::from_secs(60), max_delay: std::time::Duration::from_secs(60), max_attempts: 5, jitter: 0.0 }));
        let r = dispatcher.run_once(now).await.unwrap();
        assert_eq!((r.claimed, r.retried), (1, 1));
        assert_eq!(dispatcher.run_once(now).await.unwrap().claimed, 0, "the update waits for the creation");
        let later = now + Duration::minutes(1);
        assert_eq!(dispatcher.run_once(later).await.unwrap().sent, 1);
        assert_eq!(dispatcher.run_once(later).await.unwrap().sent, 1);
        let got: Vec<EventKind> = flaky.inner.events().iter().map(|e| e.kind).collect();
        assert_eq!(got, [EventKind::CustomerCreated, EventKind::CustomerUpdated]);
    }

    /// Refreshing a segment and changing a static one store an event per customer who
    /// entered or left, in the same transaction.
    async fn segment_changes_emit_entered_and_left_events(store) {
        let (crm, clock) = crm_with_events(&store);
        let tenant = TenantId::new();
        let schema = segment_schema();
        let a = register(&crm, tenant, Customer::person("A").lifecycle(Lifecycle::Active).build().unwrap()).await;
        let b = register(&crm, tenant, Customer::person("B").lifecycle(Lifecycle::Lead).build().unwrap()).await;
        let seg = crm.tenant(tenant).segments().create(Segment::dynamic("Active", parse(r#"lifecycle = "active""#).unwrap()).unwrap(), &schema).await.unwrap();
        crm.tenant(tenant).segments().refresh(seg.id, &schema).await.unwrap();
        let mut a2 = store.get_customer(tenant, a.id).await.unwrap();
        a2.lifecycle = Lifecycle::Churned;
        crm.tenant(tenant).customers().update(a2, None).await.unwrap();
        let mut b2 = store.get_customer(tenant, b.id).await.unwrap();
        b2.lifecycle = Lifecycle::Active;
        crm.tenant(tenant).customers().update(b2, None).await.unwrap();
        clock.advance(Duration::days(1));
        crm.tenant(tenant).segments().refresh(seg.id, &schema).await.unwrap();
        crm.tenant(tenant).segments().refresh(seg.id, &schema).await.unwrap();
        let fixed = crm.tenant(tenant).segments().create(Segment::fixed("Hand-picked").unwrap(), &schema).await.unwrap();
        crm.tenant(tenant).segments().change_static_members(fixed.id, vec![a.id, b.id], vec![]).await.unwrap();
        crm.tenant(tenant).segments().change_static_members(fixed.id, vec![], vec![a.id]).await.unwrap();
        let moves: Vec<(EventKind, crm_core::SegmentId, CustomerId)> = drain_events(&store, tenant).await.into_iter()
            .filter(|e| matches!(e.kind, EventKind::SegmentEntered | EventKind::SegmentLeft))
            .map(|e| (e.kind, serde_json::from_value(e.data["segment"].clone()).unwrap(), serde_json::from_value(e.data["customer"].clone()).unwrap()))
            .collect();
        let mut expected = vec![
            (EventKind::SegmentEntered, seg.id, a.id),
            (EventKind::SegmentEntered, seg.id, b.id),
            (EventKind::SegmentLeft, seg.id, a.id),
            (EventKind::SegmentEntered, fixed.id, a.id),
            (EventKind::SegmentEntered, fixed.id, b.id),
            (EventKind::SegmentLeft, fixed.id, a.id),
        ];
        let mut got = moves.clone();
        got.sort_by_key(|m| (m.1, m.2, format!("{:?}", m.0)));
        expected.sort_by_key(|m| (m.1, m.2, format!("{:?}", m.0)));
        assert_eq!(got, expected, "no event for an unchanged refresh");
    }

    /// `enqueue_groups` stores every group in one call with one report per group, in
    /// order (a key of an earlier group, or stored before, is a duplicate); a bad message
    /// in any group writes nothing.
    async fn outbox_groups_report_each_group_and_are_all_or_nothing(store) {
        let tenant = TenantId::new();
        let m = |key: &str| OutboxMessage::new(note(key, Priority::Normal), t0());
        store.enqueue(tenant, vec![m("old")]).await.unwrap();
        let groups = vec![
            vec![m("a"), m("b")],
            vec![m("a"), m("c")],
            vec![],
            vec![m("old")],
        ];
        let ids: Vec<MessageId> = groups.iter().flatten().map(|m| m.id).collect();
        let reports = store.enqueue_groups(tenant, groups).await.unwrap();
        let counts: Vec<(usize, usize)> = reports.iter().map(|r| (r.enqueued, r.duplicates)).collect();
        assert_eq!(counts, vec![(2, 0), (1, 1), (0, 0), (0, 1)]);
        assert_eq!(store.pending_count(tenant).await.unwrap(), 4);
        assert!(store.outbox_message(tenant, ids[0]).await.unwrap().seq < store.outbox_message(tenant, ids[3]).await.unwrap().seq, "in order");
        assert_not_found(store.outbox_message(tenant, ids[2]).await, "the repeated key");

        let mut bad = m("bad");
        bad.notification.data = serde_json::json!("not an object");
        let fine = m("fine");
        let r = store.enqueue_groups(tenant, vec![vec![fine.clone()], vec![bad]]).await;
        assert!(matches!(r, Err(Error::Validation { .. })), "{r:?}");
        assert_not_found(store.outbox_message(tenant, fine.id).await, "nothing half-written");
        assert_eq!(store.pending_count(tenant).await.unwrap(), 4);
        assert!(store.enqueue_groups(TenantId::new(), vec![]).await.unwrap().is_empty());
    }
}
