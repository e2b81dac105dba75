//! Conformance cases: due instants of scheduled work.

use super::*;
use crm_core::case::{Case, CaseKind};
use crm_core::sales::Opportunity;
use crm_core::schedule::{DueEntry, DueKind, Reschedule, CHANGED};

/// Every entry of `kind` due at or before `until`, in pages of 2.
async fn due(
    store: &Arc<dyn Storage>,
    tenant: TenantId,
    kind: DueKind,
    until: DateTime<Utc>,
) -> Vec<DueEntry> {
    collect_pages(2, |page| async move {
        store.due_entries(tenant, kind, until, &page).await
    })
    .await
}

/// The entry of `id` among `entries`.
fn entry(entries: &[DueEntry], id: uuid::Uuid) -> Option<&DueEntry> {
    entries.iter().find(|e| e.id == id)
}

/// Gives every listed entry of `kind` the instant `at`; how many were stored.
async fn put_all(
    store: &Arc<dyn Storage>,
    tenant: TenantId,
    kind: DueKind,
    at: Option<DateTime<Utc>>,
) -> usize {
    let far = t0() + Duration::days(36_500);
    let entries: Vec<Reschedule> = due(store, tenant, kind, far)
        .await
        .into_iter()
        .map(|e| Reschedule {
            id: e.id,
            mark: e.mark,
            next: at,
        })
        .collect();
    store.reschedule(tenant, kind, &entries).await.unwrap()
}

cases! {
    /// Every write of a case, deal or owned customer marks its entries changed (due at
    /// once, in a page order of instant then id); a stored instant keeps the entry out of
    /// the listing until then; a stale mark stores nothing; a customer's lifecycle change
    /// marks its cases and its deals, a case write its customer's pool entry; a reset
    /// marks every entry of the kind and records the basis; tenants are apart.
    async fn schedule_marks_changes_and_keeps_instants(store) {
        let (crm, _) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let x = UserId::new();
        let owned = register(&crm, tenant, Customer::person("Owned").owner(x).build().unwrap()).await;
        let free = register(&crm, tenant, simple("Free")).await;
        let t = crm.tenant(tenant);
        let mut cases = Vec::new();
        for i in 0..5 {
            let draft = Case::open(owned.id, CaseKind::Complaint, &format!("Case {i}"), Channel::Email, Some(x), t0()).unwrap();
            cases.push(t.cases().open(draft).await.unwrap());
        }
        let pipeline = t.sales().create_pipeline(sample_pipeline()).await.unwrap();
        let amount = Money::parse("100", "EUR").unwrap();
        let close = chrono::NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let deal = t.sales().open(Opportunity::new("Deal", owned.id, x, &pipeline, amount, close, t0()).unwrap()).await.unwrap();

        // Everything written is changed: due at once, in order, each once.
        let now = t0();
        let listed = due(&store, tenant, DueKind::Case, now).await;
        let mut ids: Vec<uuid::Uuid> = cases.iter().map(|c| c.id.as_uuid()).collect();
        ids.sort();
        assert_eq!(listed.iter().map(|e| e.id).collect::<Vec<_>>(), ids, "every case once, by id among equal instants");
        assert!(listed.iter().all(DueEntry::changed));
        let follow = due(&store, tenant, DueKind::FollowUp, now).await;
        assert!(entry(&follow, owned.id.as_uuid()).is_some_and(DueEntry::changed), "the owned customer: {follow:?}");
        assert!(entry(&follow, free.id.as_uuid()).is_none(), "an unowned customer has no follow-up");
        assert!(entry(&due(&store, tenant, DueKind::Pool, now).await, owned.id.as_uuid()).is_some());
        assert!(entry(&due(&store, tenant, DueKind::Deal, now).await, deal.id.as_uuid()).is_some());

        // Instants: out of the listing until they come, then in instant order.
        let case_entries = due(&store, tenant, DueKind::Case, now).await;
        let plan: Vec<Reschedule> = case_entries.iter().enumerate().map(|(i, e)| Reschedule {
            id: e.id,
            mark: e.mark,
            next: Some(now + Duration::hours(5 - i as i64)),
        }).collect();
        assert_eq!(store.reschedule(tenant, DueKind::Case, &plan).await.unwrap(), 5);
        assert!(due(&store, tenant, DueKind::Case, now).await.is_empty(), "nothing due before its instant");
        let by_3h = due(&store, tenant, DueKind::Case, now + Duration::hours(3)).await;
        assert_eq!(by_3h.iter().map(|e| e.id).collect::<Vec<_>>(), vec![plan[4].id, plan[3].id, plan[2].id], "soonest first");
        assert_eq!(by_3h[0].due_at, now + Duration::hours(1));
        assert_eq!(by_3h[0].mark, plan[4].mark, "the mark is kept");
        // A stale mark stores nothing.
        let stale = Reschedule { id: plan[0].id, mark: plan[0].mark + 1, next: None };
        assert_eq!(store.reschedule(tenant, DueKind::Case, &[stale]).await.unwrap(), 0);
        assert_eq!(entry(&due(&store, tenant, DueKind::Case, now + Duration::hours(5)).await, plan[0].id).map(|e| e.due_at), Some(now + Duration::hours(5)));

        // A write marks the entry changed, with a new mark; the old mark is then stale.
        let mut changed = store.get_case(tenant, cases[0].id).await.unwrap();
        let expected = changed.version;
        changed.subject = "Edited".into();
        changed.version += 1;
        store.update_case(tenant, &changed, expected, WriteOptions::new()).await.unwrap();
        let again = due(&store, tenant, DueKind::Case, now).await;
        let e = entry(&again, cases[0].id.as_uuid()).expect("the written case is due");
        assert!(e.changed());
        let old = plan.iter().find(|p| p.id == e.id).unwrap();
        assert_ne!(e.mark, old.mark);
        assert_eq!(store.reschedule(tenant, DueKind::Case, std::slice::from_ref(old)).await.unwrap(), 0, "stale");
        // Nothing pending: never listed until the record changes.
        assert_eq!(put_all(&store, tenant, DueKind::Case, None).await, 5);
        assert!(due(&store, tenant, DueKind::Case, now + Duration::days(36_500)).await.is_empty());

        // A customer's lifecycle change marks its cases and the deals it is the account of;
        // a case write marks its customer's pool entry.
        assert_eq!(put_all(&store, tenant, DueKind::Deal, None).await, 1);
        assert!(put_all(&store, tenant, DueKind::Pool, None).await >= 1);
        let mut c = store.get_customer(tenant, owned.id).await.unwrap();
        c.lifecycle = Lifecycle::Churned;
        let c = t.customers().update(c, None).await.unwrap();
        assert_eq!(due(&store, tenant, DueKind::Case, now).await.len(), 5, "its cases");
        assert_eq!(due(&store, tenant, DueKind::Deal, now).await.len(), 1, "its deal");
        assert!(entry(&due(&store, tenant, DueKind::Pool, now).await, c.id.as_uuid()).is_some());
        assert!(put_all(&store, tenant, DueKind::Pool, None).await >= 1);
        let mut edited = store.get_case(tenant, cases[1].id).await.unwrap();
        let expected = edited.version;
        edited.version += 1;
        store.update_case(tenant, &edited, expected, WriteOptions::new()).await.unwrap();
        assert!(entry(&due(&store, tenant, DueKind::Pool, now).await, c.id.as_uuid()).is_some(), "its customer's pool entry");

        // An interaction handled by staff marks the customer's follow-up entry and the
        // deals it is the account or a contact of; one handled by nobody marks nothing.
        let mut with_contact = Opportunity::new("Other", free.id, x, &pipeline, Money::parse("5", "EUR").unwrap(), close, t0()).unwrap();
        with_contact.contacts.push(crm_core::sales::DealContact { customer: owned.id, role: crm_core::sales::ContactRole::Technical });
        let with_contact = t.sales().open(with_contact).await.unwrap();
        assert_eq!(put_all(&store, tenant, DueKind::Deal, None).await, 2);
        assert!(put_all(&store, tenant, DueKind::FollowUp, None).await >= 1);
        t.interactions().log(event(free.id, InteractionKind::Note, now, "unhandled")).await.unwrap();
        assert!(due(&store, tenant, DueKind::Deal, now).await.is_empty(), "nobody handled it");
        let call = Interaction::builder(owned.id, Channel::Phone, InteractionKind::Call).at(now).handled_by(x).key("test", "call").build().unwrap();
        t.interactions().log(call).await.unwrap();
        let deals: BTreeSet<uuid::Uuid> = due(&store, tenant, DueKind::Deal, now).await.into_iter().map(|e| e.id).collect();
        assert_eq!(deals, BTreeSet::from([deal.id.as_uuid(), with_contact.id.as_uuid()]), "as account and as contact");
        assert!(entry(&due(&store, tenant, DueKind::FollowUp, now).await, owned.id.as_uuid()).is_some());

        // A reset marks every entry of the kind and records the basis.
        assert_eq!(store.schedule_basis(tenant, DueKind::Case).await.unwrap(), None);
        assert_eq!(put_all(&store, tenant, DueKind::Case, Some(now + Duration::days(1))).await, 5);
        assert_eq!(store.reset_schedule(tenant, DueKind::Case, "rules-2").await.unwrap(), 5);
        assert_eq!(store.schedule_basis(tenant, DueKind::Case).await.unwrap().as_deref(), Some("rules-2"));
        let reset = due(&store, tenant, DueKind::Case, now).await;
        assert_eq!(reset.len(), 5);
        assert!(reset.iter().all(|e| e.due_at == CHANGED));

        // Tenants are apart.
        assert!(due(&store, other, DueKind::Case, now + Duration::days(36_500)).await.is_empty());
        assert_eq!(store.schedule_basis(other, DueKind::Case).await.unwrap(), None);
        assert_eq!(store.reset_schedule(other, DueKind::Case, "x").await.unwrap(), 0);
        let foreign = Reschedule { id: reset[0].id, mark: reset[0].mark, next: None };
        assert_eq!(store.reschedule(other, DueKind::Case, &[foreign]).await.unwrap(), 0);
        assert_eq!(due(&store, tenant, DueKind::Case, now).await.len(), 5, "untouched by the other tenant");
        assert!(matches!(
            store.due_entries(tenant, DueKind::Case, now, &PageRequest::after(crm_core::Cursor::customer(owned.id), 10)).await,
            Err(Error::Validation { .. })
        ));
    }

    /// A KPI run reads only what is due: everything once after the rules appear, nothing
    /// while nothing is due, the cases whose warning has come, and everything again after
    /// a rule changes; the alerts are those of a full scan.
    async fn kpi_runs_read_only_what_is_due(store) {
        use crm_core::kpi::{KpiAction, KpiMetric, KpiRule, KpiScope};
        use crm_core::notify::TemplateName;
        use crm_core::sla::{SlaMetric, SlaTarget};
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let x = UserId::new();
        let t = crm.tenant(tenant);
        let ann = register(&crm, tenant, Customer::person("Ann").owner(x).build().unwrap()).await;
        let rule = |hours: i64| KpiRule {
            key: TemplateName::parse("reply").unwrap(),
            name: "Reply".into(),
            metric: KpiMetric::Case(SlaTarget::new(SlaMetric::FirstReply, Duration::hours(hours), 0.5).unwrap()),
            calendar: crm_core::calendar::BusinessCalendar::always(),
            scope: KpiScope::default(),
            compliance_goal: 0.9,
            on_warning: vec![KpiAction::NotifyAssignee],
            on_breach: vec![KpiAction::NotifyTeamLead],
        };
        t.kpis().add_rule(rule(4)).await.unwrap();
        for i in 0..3 {
            let opened = t0() + Duration::minutes(i);
            clock.set(opened);
            let draft = Case::open(ann.id, CaseKind::Complaint, &format!("Case {i}"), Channel::Email, Some(x), opened).unwrap();
            t.cases().open(draft).await.unwrap();
        }
        let run = |at: DateTime<Utc>| {
            let t = t.clone();
            let clock = clock.clone();
            async move {
                clock.set(at);
                let engine = t.kpis().engine().await.unwrap();
                t.kpis().evaluate(&engine, at).await.unwrap()
            }
        };
        let first = run(t0() + Duration::minutes(5)).await;
        assert_eq!((first.cases, first.warnings, first.breaches), (3, 0, 0), "{first:?}");
        let quiet = run(t0() + Duration::minutes(6)).await;
        assert_eq!((quiet.due, quiet.cases), (0, 0), "nothing due: {quiet:?}");
        // The warnings (half of 4 h) of the first two cases have come, not the third's.
        let warned = run(t0() + Duration::hours(2) + Duration::minutes(1)).await;
        assert_eq!((warned.cases, warned.warnings), (2, 2), "{warned:?}");
        // Those two changed (their alerts were stored): looked at once more, nothing raised.
        let after = run(t0() + Duration::hours(2) + Duration::minutes(2)).await;
        assert_eq!((after.cases, after.warnings, after.breaches), (3, 1, 0), "the third warns now: {after:?}");
        let settled = run(t0() + Duration::hours(2) + Duration::minutes(3)).await;
        assert_eq!((settled.cases, settled.warnings), (1, 0), "{settled:?}");
        assert_eq!(run(t0() + Duration::hours(3)).await.cases, 0);
        // A full scan at the same instant raises nothing new either.
        let engine = t.kpis().engine().await.unwrap();
        let scan = t.kpis().evaluate_scan(&engine, t0() + Duration::hours(3)).await.unwrap();
        assert_eq!((scan.cases, scan.warnings, scan.breaches), (3, 0, 0));
        // Breaches at 4 h, then a rule change recomputes every case.
        let breached = run(t0() + Duration::hours(4) + Duration::minutes(3)).await;
        assert_eq!(breached.breaches, 3, "{breached:?}");
        let version = t.kpis().rules().await.unwrap()[0].version;
        t.kpis().update_rule(rule(8), version).await.unwrap();
        let changed = run(t0() + Duration::hours(4) + Duration::minutes(4)).await;
        assert_eq!((changed.reset, changed.cases), (3, 3), "{changed:?}");
    }

    /// The store lists its tenants (those with customers) in id order, a page at a time
    /// (or answers `Unsupported` when its connections see one tenant each);
    /// a job's lease is held by one holder at a time until it lapses or is given back,
    /// per tenant and job, and of runners racing for it exactly one gets it.
    async fn tenants_are_listed_and_job_leases_exclude(store) {
        let (crm, _) = crm(&store);
        let mut tenants: Vec<TenantId> = (0..3).map(|_| TenantId::new()).collect();
        tenants.sort();
        for (i, &t) in tenants.iter().enumerate() {
            register(&crm, t, simple(&format!("Customer {i}"))).await;
        }
        // A store whose connections see one tenant each cannot list them.
        match store.tenants(None, 1000).await {
            Err(Error::Unsupported { .. }) => {}
            listed => {
                assert_eq!(listed.unwrap(), tenants, "every tenant with customers, in order");
                assert_eq!(store.tenants(None, 2).await.unwrap(), tenants[..2]);
                assert_eq!(store.tenants(Some(tenants[1]), 2).await.unwrap(), tenants[2..]);
                assert!(store.tenants(Some(tenants[2]), 10).await.unwrap().is_empty());
            }
        }

        let (t, other) = (tenants[0], tenants[1]);
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let now = t0();
        let at = move |m: i64| now + Duration::minutes(m);
        assert!(store.take_lease(t, "kpis", a, at(0), at(10)).await.unwrap());
        assert!(!store.take_lease(t, "kpis", b, at(1), at(11)).await.unwrap(), "held by a");
        assert!(store.take_lease(t, "kpis", a, at(2), at(12)).await.unwrap(), "a renews");
        assert!(!store.take_lease(t, "kpis", b, at(11), at(21)).await.unwrap(), "renewed until 12");
        assert!(store.take_lease(t, "kpis", b, at(12), at(22)).await.unwrap(), "lapsed");
        assert!(!store.take_lease(t, "kpis", a, at(13), at(23)).await.unwrap(), "now b's");
        store.release_lease(t, "kpis", a).await.unwrap();
        assert!(!store.take_lease(t, "kpis", a, at(13), at(23)).await.unwrap(), "a gave back nothing");
        store.release_lease(t, "kpis", b).await.unwrap();
        assert!(store.take_lease(t, "kpis", a, at(13), at(23)).await.unwrap(), "given back");
        assert!(store.take_lease(other, "kpis", b, at(13), at(23)).await.unwrap(), "per tenant");
        assert!(store.take_lease(t, "pool", b, at(13), at(23)).await.unwrap(), "per job");

        let racers: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store.take_lease(t, "race", uuid::Uuid::new_v4(), at(30), at(40)).await.unwrap()
                })
            })
            .collect();
        let mut won = 0;
        for r in racers {
            won += usize::from(r.await.unwrap());
        }
        assert_eq!(won, 1, "exactly one racer holds the lease");
    }
}
