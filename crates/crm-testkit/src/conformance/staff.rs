//! Conformance cases: what staff hold as a whole (the hand-over when someone leaves).

use super::*;

cases! {
    /// A departing owner's customers, open cases and open tasks go to the successor in one
    /// transaction, audited, closed work staying; a plan with one record changed meanwhile,
    /// or naming another tenant's records, moves nothing.
    async fn departure_hands_over_everything_in_one_transaction(store) {
        use crm_core::case::{Case, CaseEventKind, CaseKind, CaseQuery, CaseStatus};
        use crm_core::task::{Task, TaskQuery, TaskSubject};
        let (crm, _clock) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let (leaver, successor, boss) = (UserId::new(), UserId::new(), UserId::new());
        let acme = crm.tenant(tenant);
        let mut owned = Vec::new();
        for name in ["A", "B", "C"] {
            owned.push(register(&crm, tenant, Customer::person(name).owner(leaver).build().unwrap()).await);
        }
        let kept = register(&crm, tenant, Customer::person("Kept").owner(boss).build().unwrap()).await;
        let open = |subject: &str| Case::open(owned[0].id, CaseKind::Complaint, subject, Channel::Email, Some(leaver), t0()).unwrap();
        let case1 = acme.cases().open(open("One")).await.unwrap();
        let case2 = acme.cases().open(open("Two")).await.unwrap();
        let done = acme.cases().open(open("Done")).await.unwrap();
        let done = acme.cases().record_event(done.id, done.version, CaseEventKind::StatusChange { to: CaseStatus::Resolved, by: Some(leaver) }, vec![]).await.unwrap();
        let task = |title: &str| Task::new(TaskSubject::Customer(kept.id), title, leaver, t0() + Duration::days(1)).unwrap();
        let t1 = acme.tasks().create(task("Call")).await.unwrap();
        let t2 = acme.tasks().create(task("Mail")).await.unwrap();
        let finished = acme.tasks().create(task("Done")).await.unwrap();
        let finished = acme.tasks().complete(finished.id, finished.version).await.unwrap();

        // A plan whose last task changed after it was read moves nothing.
        let first = owned[0].id;
        let plan_of = |store: Arc<dyn Storage>| async move {
            let mut plan = crm_core::handover::HandOver::default();
            let current = store.get_customer(tenant, first).await.unwrap();
            let mut moved = current.clone();
            moved.owner = Some(successor);
            moved.version += 1;
            plan.customers.push(crm_core::handover::CustomerHandOver {
                ownership: crm_core::OwnershipChange { customer: first, from: Some(leaver), to: Some(successor), changed_by: None, reason: None, at: t0(), version: moved.version },
                audit: crm_core::audit::AuditEntry { customer: first, version: moved.version, at: t0(), actor: None, reason: None, change: crm_core::audit::AuditChange::Updated { fields: vec![] } },
                customer: moved,
                expected_version: current.version,
            });
            for id in [t1.id, t2.id] {
                let mut t = store.get_task(tenant, id).await.unwrap();
                let expected = t.version;
                t.assignee = successor;
                t.version += 1;
                plan.tasks.push((t, expected));
            }
            plan
        };
        let stale = plan_of(store.clone()).await;
        acme.tasks().snooze(t2.id, t2.version, t0() + Duration::days(9)).await.unwrap();
        let err = store.hand_over(tenant, &stale, WriteOptions::new()).await.unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
        assert_eq!(store.get_task(tenant, t1.id).await.unwrap().assignee, leaver, "nothing moved");
        assert_eq!(store.get_customer(tenant, first).await.unwrap(), owned[0], "nothing moved");
        assert!(store.ownership_history(tenant, first).await.unwrap().iter().all(|o| o.to != Some(successor)));
        // The same plan from another tenant finds nothing of this one's.
        let fresh = plan_of(store.clone()).await;
        let err = store.hand_over(other, &fresh, WriteOptions::new()).await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
        // A plan naming a record twice is refused before anything is read.
        let mut twice = fresh.clone();
        twice.tasks.push(twice.tasks[0].clone());
        assert!(matches!(store.hand_over(tenant, &twice, WriteOptions::new()).await, Err(Error::Validation { .. })));

        let report = acme.staff().hand_over(leaver, successor, Some(boss), Some("left the company")).await.unwrap();
        assert_eq!((report.customers, report.cases, report.tasks), (3, 2, 2));
        for c in &owned {
            let now = store.get_customer(tenant, c.id).await.unwrap();
            assert_eq!((now.owner, now.version), (Some(successor), c.version + 1));
            let history = store.ownership_history(tenant, c.id).await.unwrap();
            assert_eq!((history[0].from, history[0].to, history[0].changed_by), (Some(leaver), Some(successor), Some(boss)));
            assert_eq!(history[0].reason.as_deref(), Some("left the company"));
            let audit = store.audit_history(tenant, c.id, &PageRequest::first(5)).await.unwrap();
            assert_eq!((audit.items[0].version, audit.items[0].actor), (c.version + 1, Some(boss)));
        }
        assert_eq!(store.get_customer(tenant, kept.id).await.unwrap(), kept);
        for id in [case1.id, case2.id] {
            let c = store.get_case(tenant, id).await.unwrap();
            assert_eq!((c.assignee, c.version), (Some(successor), 2));
            assert!(matches!(c.events.last().map(|e| &e.kind), Some(CaseEventKind::Assignment { to: Some(s), by: Some(b), .. }) if *s == successor && *b == boss));
        }
        assert_eq!(store.get_case(tenant, done.id).await.unwrap(), done, "closed cases stay");
        for id in [t1.id, t2.id] {
            assert_eq!(store.get_task(tenant, id).await.unwrap().assignee, successor);
        }
        assert_eq!(store.get_task(tenant, finished.id).await.unwrap(), finished, "done tasks stay");
        let left = CaseQuery { assignee: Some(leaver), open_only: true, ..CaseQuery::default() };
        assert!(store.list_cases(tenant, &left, &PageRequest::first(5)).await.unwrap().items.is_empty());
        let left = TaskQuery { assignee: Some(leaver), open_only: true, ..TaskQuery::default() };
        assert!(store.list_tasks(tenant, &left, &PageRequest::first(5)).await.unwrap().items.is_empty());
        // Nothing left: a second hand-over moves nothing.
        let again = acme.staff().hand_over(leaver, successor, None, None).await.unwrap();
        assert_eq!((again.customers, again.cases, again.tasks), (0, 0, 0));
        assert!(matches!(acme.staff().hand_over(successor, successor, None, None).await, Err(Error::Validation { .. })));
    }
}
