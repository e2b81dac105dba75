//! Conformance cases: follow-up tasks and their reminders.

use super::*;

cases! {
    /// Tasks on customers and cases round-trip, are snoozed and completed with optimistic
    /// concurrency, and are listed by assignee, subject and openness.
    async fn tasks_round_trip_snooze_and_complete(store) {
        use crm_core::task::{Task, TaskQuery, TaskSubject};
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let ann = register(&crm, tenant, simple("Ann")).await;
        let (x, y) = (UserId::new(), UserId::new());
        let case = crm.tenant(tenant).cases().open(crm_core::case::Case::open(ann.id, crm_core::case::CaseKind::Inquiry, "Q", Channel::Web, Some(x), t0()).unwrap()).await.unwrap();
        let call = crm.tenant(tenant).tasks().create(Task::new(TaskSubject::Customer(ann.id), "Call back about the offer", x, t0() + Duration::hours(2)).unwrap()).await.unwrap();
        let check = crm.tenant(tenant).tasks().create(Task::new(TaskSubject::Case(case.id), "Check the repair", y, t0() + Duration::days(1)).unwrap()).await.unwrap();
        assert_eq!(store.get_task(tenant, call.id).await.unwrap(), call);
        assert_not_found(crm.tenant(tenant).tasks().create(Task::new(TaskSubject::Customer(CustomerId::new()), "x", x, t0()).unwrap()).await, "unknown customer");
        assert_not_found(crm.tenant(tenant).tasks().create(Task::new(TaskSubject::Case(crm_core::CaseId::new()), "x", x, t0()).unwrap()).await, "unknown case");
        let mut again = Task::new(TaskSubject::Customer(ann.id), "x", x, t0()).unwrap();
        again.id = call.id;
        assert!(matches!(crm.tenant(tenant).tasks().create(again).await, Err(Error::Duplicate { .. })));
        let snoozed = crm.tenant(tenant).tasks().snooze(call.id, 1, t0() + Duration::hours(5)).await.unwrap();
        assert_eq!((snoozed.version, snoozed.due_at), (2, t0() + Duration::hours(5)));
        assert!(matches!(crm.tenant(tenant).tasks().complete(call.id, 1).await, Err(Error::Conflict { .. })));
        assert_eq!(crm.tenant(tenant).tasks().snooze(call.id, 2, t0()).await.unwrap_err().field(), Some("until"));
        clock.advance(Duration::hours(1));
        let done = crm.tenant(tenant).tasks().complete(call.id, 2).await.unwrap();
        assert_eq!(done.done_at, Some(t0() + Duration::hours(1)));
        assert_eq!(store.get_task(tenant, call.id).await.unwrap(), done);
        let ids = |q: TaskQuery| {
            let store = store.clone();
            async move { store.list_tasks(tenant, &q, &PageRequest::first(10)).await.unwrap().items.into_iter().map(|t| t.id).collect::<Vec<_>>() }
        };
        assert_eq!(ids(TaskQuery::default()).await, vec![call.id, check.id]);
        assert_eq!(ids(TaskQuery { assignee: Some(y), ..Default::default() }).await, vec![check.id]);
        assert_eq!(ids(TaskQuery { subject: Some(TaskSubject::Customer(ann.id)), ..Default::default() }).await, vec![call.id]);
        assert_eq!(ids(TaskQuery { open_only: true, ..Default::default() }).await, vec![check.id]);
        assert_not_found(store.get_task(TenantId::new(), call.id).await, "other tenant");
        let mut stale = done.clone();
        stale.version = 9;
        assert!(matches!(store.update_task(tenant, &stale, 1, WriteOptions::new()).await, Err(Error::Conflict { .. })));
    }

    /// Due tasks are announced once per due time, even by concurrent callers; a snoozed
    /// task is announced again at its new time, a recurring one at its next occurrence.
    async fn due_tasks_are_announced_once(store) {
        use crm_core::task::{Task, TaskSubject};
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let ann = register(&crm, tenant, simple("Ann")).await;
        let agent = UserId::new();
        let mut tasks = Vec::new();
        for i in 0..12 {
            let t = Task::new(TaskSubject::Customer(ann.id), &format!("Follow-up {i}"), agent, t0() + Duration::minutes(i * 10)).unwrap();
            tasks.push(crm.tenant(tenant).tasks().create(t).await.unwrap());
        }
        let weekly = crm.tenant(tenant).tasks().create(Task::new(TaskSubject::Customer(ann.id), "Weekly call", agent, t0()).unwrap().every_days(7).unwrap()).await.unwrap();
        let before = store.pending_count(tenant).await.unwrap();
        let now = t0() + Duration::minutes(55); // tasks 0..=5 and the weekly one are due
        let mut callers = Vec::new();
        for _ in 0..4 {
            let crm = crm.clone();
            callers.push(tokio::spawn(async move { crm.tenant(tenant).tasks().remind_due(now).await.unwrap().len() }));
        }
        let mut announced = 0;
        for c in callers {
            announced += c.await.unwrap();
        }
        assert_eq!(announced, 7, "each due task once");
        assert_eq!(store.pending_count(tenant).await.unwrap() - before, 7);
        assert!(crm.tenant(tenant).tasks().remind_due(now).await.unwrap().is_empty());
        let t1 = store.get_task(tenant, tasks[1].id).await.unwrap();
        crm.tenant(tenant).tasks().snooze(t1.id, t1.version, t0() + Duration::hours(3)).await.unwrap();
        clock.set(t0() + Duration::hours(1));
        let w = store.get_task(tenant, weekly.id).await.unwrap();
        let rolled = crm.tenant(tenant).tasks().complete(weekly.id, w.version).await.unwrap();
        assert_eq!(rolled.due_at, t0() + Duration::days(7));
        let later = crm.tenant(tenant).tasks().remind_due(t0() + Duration::hours(4)).await.unwrap();
        let mut got: Vec<_> = later.iter().map(|t| t.id).collect();
        got.sort();
        let mut want: Vec<_> = tasks[6..].iter().map(|t| t.id).chain([t1.id]).collect();
        want.sort();
        assert_eq!(got, want, "the rest, and the snoozed one again");
        let next_week = crm.tenant(tenant).tasks().remind_due(t0() + Duration::days(7)).await.unwrap();
        assert_eq!(next_week.iter().map(|t| t.id).collect::<Vec<_>>(), vec![weekly.id]);
        assert!(crm.tenant(TenantId::new()).tasks().remind_due(t0() + Duration::days(30)).await.unwrap().is_empty());
    }
}
