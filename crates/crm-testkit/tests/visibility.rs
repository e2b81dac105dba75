//! Principal-scoped handles (`TenantCrm::as_user`): what a salesperson, a team lead and a
//! unit head see and change of the customers, and a sweep that calls every service method
//! of a scoped handle on a record its principal must not reach.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use crm_core::access::{Access, Action, Grantee, Org, RecordKind, Role, Scope, SharingRule};
use crm_core::calendar::{BusinessCalendar, Interval, Week};
use crm_core::case::{Case, CaseEventKind, CaseKind, CaseQuery};
use crm_core::dedup::MatchRules;
use crm_core::kpi::{KpiAction, KpiEngine, KpiMetric, KpiRule, KpiScope};
use crm_core::merge::MergePolicy;
use crm_core::notify::{Notification, Recipient, StaticDirectory, TemplateName};
use crm_core::pool::{ClaimLimits, PoolPolicy};
use crm_core::sales::{ForecastQuery, FunnelQuery, Opportunity, OpportunityQuery, Relationship};
use crm_core::segment::{FieldSchema, Segment, SegmentId};
use crm_core::sla::{SlaMetric, SlaTarget};
use crm_core::sync::SourceFields;
use crm_core::task::{Task, TaskQuery, TaskSubject};
use crm_core::value_class::{AbcClass, RfmSegment};
use crm_core::{
    Channel, Crm, Currency, Customer, CustomerId, CustomerQuery, Error, Interaction,
    InteractionKind, ManualClock, MessageId, Money, PageRequest, Result, TeamId, TenantCrm,
    TenantId, UserId, ValueClasses, ValueModel, ValueScores,
};
use crm_testkit::MemoryStore;

/// Sales (the head) with North (a lead and two reps) below it, and a rep in South.
struct Company {
    crm: Crm,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    north: TeamId,
    head: UserId,
    lead: UserId,
    reps: [UserId; 3],
}

fn company() -> Company {
    let (sales, north, south) = (TeamId::new(), TeamId::new(), TeamId::new());
    let (head, lead) = (UserId::new(), UserId::new());
    let reps = [UserId::new(), UserId::new(), UserId::new()];
    let mut org = Org::new();
    org.add_unit(sales, "Sales", None).unwrap();
    org.add_unit(north, "North", Some(sales)).unwrap();
    org.add_unit(south, "South", Some(sales)).unwrap();
    org.add_user(head, Some(sales), None).unwrap();
    org.add_user(lead, Some(north), Some(head)).unwrap();
    org.add_user(reps[0], Some(north), Some(lead)).unwrap();
    org.add_user(reps[1], Some(north), Some(lead)).unwrap();
    org.add_user(reps[2], Some(south), Some(head)).unwrap();
    let tenant = TenantId::new();
    let directory = Arc::new(StaticDirectory::new());
    directory.set_org(tenant, org);
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let crm = Crm::new(Arc::new(MemoryStore::new()))
        .with_clock(clock.clone())
        .with_directory(directory);
    Company {
        crm,
        clock,
        tenant,
        north,
        head,
        lead,
        reps,
    }
}

/// Reads, writes and transfers within `scope`; interactions likewise.
fn role(scope: Scope) -> Role {
    let mut role = Role::new("staff").unwrap();
    for kind in [RecordKind::Customers, RecordKind::Interactions] {
        for action in [Action::Read, Action::Write, Action::Transfer] {
            role = role.allow(kind, action, scope);
        }
    }
    role
}

fn forbidden<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(Error::Forbidden { .. }))
}

/// A list answered, showing none of the records `hidden` picks out.
fn shows_none<T>(r: Result<crm_core::Page<T>>, hidden: impl Fn(&T) -> bool) -> bool {
    r.is_ok_and(|p| !p.items.iter().any(hidden))
}

async fn register(system: &TenantCrm, name: &str, owner: Option<UserId>) -> Customer {
    let mut c = Customer::person(name).build().unwrap();
    c.owner = owner;
    system.customers().register(c).await.unwrap()
}

async fn all_pages(handle: &TenantCrm, limit: u32) -> Vec<CustomerId> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(limit);
    loop {
        let got = handle
            .customers()
            .search(&CustomerQuery::all(), &page)
            .await
            .unwrap();
        assert!(got.items.len() <= limit as usize);
        out.extend(got.items.iter().map(|c| c.id));
        match got.next {
            Some(next) => page = PageRequest::after(next, limit),
            None => return out,
        }
    }
}

#[tokio::test]
async fn each_principal_sees_and_changes_what_its_scope_reaches() {
    let co = company();
    let system = co.crm.tenant(co.tenant);
    let [a, b, c] = co.reps;
    // 30 customers: ten each for a, b and c, registered in turns so pages mix owners.
    let mut owned = std::collections::BTreeMap::<UserId, BTreeSet<CustomerId>>::new();
    for i in 0..30 {
        let owner = co.reps[i % 3];
        let customer = register(&system, &format!("Customer {i}"), Some(owner)).await;
        owned.entry(owner).or_default().insert(customer.id);
    }
    let pool = register(&system, "Pool", None).await;
    let mut teamed = Customer::person("North account").build().unwrap();
    teamed.team = Some(co.north);
    let teamed = system.customers().register(teamed).await.unwrap();

    let as_a = system.as_user(a, &[role(Scope::Own)]).await.unwrap();
    let as_lead = system
        .as_user(co.lead, &[role(Scope::OwnAndSubordinates)])
        .await
        .unwrap();
    let as_head = system
        .as_user(co.head, &[role(Scope::UnitAndDescendants)])
        .await
        .unwrap();
    let as_nobody = system.as_user(a, &[]).await.unwrap();

    // Searches return exactly what each reaches, in id order, over pages of every size.
    for limit in [1, 4, 7, 100] {
        let mine: Vec<CustomerId> = owned[&a].iter().copied().collect();
        assert_eq!(all_pages(&as_a, limit).await, mine, "page size {limit}");
        let team: BTreeSet<CustomerId> = owned[&a].union(&owned[&b]).copied().collect();
        assert_eq!(
            all_pages(&as_lead, limit).await,
            team.iter().copied().collect::<Vec<_>>()
        );
        let mut unit = BTreeSet::from([teamed.id]);
        for rep in co.reps {
            unit.extend(&owned[&rep]);
        }
        assert_eq!(
            all_pages(&as_head, limit).await,
            unit.into_iter().collect::<Vec<_>>()
        );
        assert!(all_pages(&as_nobody, limit).await.is_empty());
    }
    let everything = all_pages(&system, 100).await;
    assert!(
        everything.contains(&pool.id),
        "the system handle sees the pool"
    );

    // Reads of one record.
    let a_first = *owned[&a].first().unwrap();
    let c_first = *owned[&c].first().unwrap();
    assert_eq!(as_a.customers().get(a_first).await.unwrap().id, a_first);
    assert!(forbidden(as_a.customers().get(c_first).await));
    assert!(forbidden(as_a.customers().get(pool.id).await));
    assert!(forbidden(as_lead.customers().get(c_first).await));
    assert!(as_head.customers().get(c_first).await.is_ok());
    assert!(as_head.customers().get(teamed.id).await.is_ok());
    assert!(forbidden(as_a.customers().profile(c_first).await));
    assert!(as_a.customers().profile(a_first).await.is_ok());

    // Writes: a's own customer changes; c's does not, and stays as it was.
    let mut mine = as_a.customers().get(a_first).await.unwrap();
    mine.tags.insert(crm_core::Tag::parse("called").unwrap());
    assert!(as_a.customers().update(mine, Some(a)).await.is_ok());
    let before = system.customers().get(c_first).await.unwrap();
    let mut theirs = before.clone();
    theirs.tags.insert(crm_core::Tag::parse("poached").unwrap());
    assert!(forbidden(as_a.customers().update(theirs, Some(a)).await));
    assert_eq!(system.customers().get(c_first).await.unwrap(), before);
    // Taking someone else's customer by changing the owner is a transfer of theirs.
    let mut grab = before.clone();
    grab.owner = Some(a);
    assert!(forbidden(as_a.customers().update(grab, Some(a)).await));
    assert!(forbidden(
        as_a.customers()
            .change_owner(c_first, Some(a), before.version, Some(a), None)
            .await
    ));
    // Registering for someone else, or into the pool, needs their reach.
    let mut for_c = Customer::person("New").build().unwrap();
    for_c.owner = Some(c);
    assert!(forbidden(as_a.customers().register(for_c).await));
    let mut for_me = Customer::person("New").build().unwrap();
    for_me.owner = Some(a);
    assert!(as_a.customers().register(for_me).await.is_ok());
    assert_eq!(system.customers().get(c_first).await.unwrap(), before);

    // Interactions follow their customer.
    let call = |customer: CustomerId, key: &str| {
        Interaction::builder(customer, Channel::Phone, InteractionKind::Call)
            .at(Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap())
            .key("test", key)
            .build()
            .unwrap()
    };
    assert_eq!(
        as_a.interactions()
            .log(call(a_first, "1"))
            .await
            .unwrap()
            .inserted,
        1
    );
    // A batch with one foreign row is refused whole.
    assert!(forbidden(
        as_a.interactions()
            .log_batch(vec![call(a_first, "2"), call(c_first, "3")])
            .await
    ));
    let page = PageRequest::first(10);
    assert_eq!(
        as_a.interactions()
            .timeline(a_first, &page)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(system
        .interactions()
        .timeline(c_first, &page)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(forbidden(
        as_a.interactions().timeline(c_first, &page).await
    ));
}

#[tokio::test]
async fn a_role_that_only_reads_cannot_write() {
    let co = company();
    let system = co.crm.tenant(co.tenant);
    let a = co.reps[0];
    let mine = register(&system, "Mine", Some(a)).await;
    let reader =
        Role::new("reader")
            .unwrap()
            .allow(RecordKind::Customers, Action::Read, Scope::Own);
    let as_a = system.as_user(a, &[reader]).await.unwrap();
    let got = as_a.customers().get(mine.id).await.unwrap();
    assert!(forbidden(
        as_a.customers().update(got.clone(), Some(a)).await
    ));
    assert!(forbidden(
        as_a.customers()
            .change_owner(mine.id, None, got.version, Some(a), None)
            .await
    ));
    // Interactions are a kind of their own: reading customers gives no timeline.
    assert!(forbidden(
        as_a.interactions()
            .timeline(mine.id, &PageRequest::first(5))
            .await
    ));
    assert_eq!(system.customers().get(mine.id).await.unwrap(), mine);
}

#[tokio::test]
async fn a_scoped_handle_cannot_rescope_itself() {
    let co = company();
    let system = co.crm.tenant(co.tenant);
    let as_a = system
        .as_user(co.reps[0], &[role(Scope::Own)])
        .await
        .unwrap();
    assert!(forbidden(as_a.as_user(co.head, &[role(Scope::All)]).await));
    assert!(forbidden(
        as_a.as_user(co.reps[0], &[role(Scope::All)]).await
    ));
    assert!(system.as_user(co.head, &[role(Scope::All)]).await.is_ok());
}

#[tokio::test]
async fn bad_roles_are_validation_errors_naming_them() {
    let co = company();
    let mut bad = role(Scope::Own);
    bad.name = String::new();
    let err = co
        .crm
        .tenant(co.tenant)
        .as_user(co.reps[0], &[role(Scope::All), bad])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "roles[1].name"),
        "{err}"
    );
}

/// Every service method of a scoped handle, called on records its principal does not
/// reach (or, for services not open to scoped handles yet, at all): each must be refused
/// with `Forbidden`, or (searches and lists) return nothing of them, or (definitions
/// without customer data: segments, the fitted value model) answer; nothing may change.
#[tokio::test]
async fn sweep_no_method_of_a_scoped_handle_leaks_a_record() {
    let co = company();
    let system = co.crm.tenant(co.tenant);
    let [a, _, c] = co.reps;
    let hidden = register(&system, "Hidden", Some(c)).await;
    let other = register(&system, "Other", Some(c)).await;
    let case = system
        .cases()
        .open(
            Case::open(
                hidden.id,
                CaseKind::Complaint,
                "Broken",
                Channel::Email,
                Some(c),
                system.crm().now(),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let task = system
        .tasks()
        .create(
            Task::new(
                TaskSubject::Customer(hidden.id),
                "Call",
                c,
                system.crm().now() + Duration::days(1),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let schema = FieldSchema::new(Currency::parse("EUR").unwrap());
    let segment = system
        .segments()
        .create(Segment::fixed("Fixed").unwrap(), &schema)
        .await
        .unwrap();
    system
        .segments()
        .change_static_members(segment.id, vec![hidden.id], vec![])
        .await
        .unwrap();
    let pipeline = system
        .sales()
        .create_pipeline(crm_testkit::conformance::sample_pipeline())
        .await
        .unwrap();
    let close = system.crm().now().date_naive();
    let deal = |account: CustomerId| {
        Opportunity::new(
            "Hidden deal",
            account,
            c,
            &pipeline,
            Money::parse("900", "EUR").unwrap(),
            close,
            system.crm().now(),
        )
        .unwrap()
    };
    let hidden_deal = system.sales().open(deal(hidden.id)).await.unwrap();
    let won_deal = system.sales().open(deal(other.id)).await.unwrap();
    let won_deal = system.sales().win(won_deal.id, 1).await.unwrap();
    let firm = Customer::organization("Hidden firm")
        .owner(c)
        .build()
        .unwrap();
    let firm = system.customers().register(firm).await.unwrap();
    let mine = Customer::organization("My firm").owner(a).build().unwrap();
    let mine = system.customers().register(mine).await.unwrap();
    let now = system.crm().now();
    for account in [firm.id, mine.id] {
        system
            .accounts()
            .relate(Relationship::new(account, hidden.id, now))
            .await
            .unwrap();
    }
    system
        .accounts()
        .set_parent(firm.id, Some(mine.id))
        .await
        .unwrap();
    let logged = Interaction::builder(hidden.id, Channel::Email, InteractionKind::Email)
        .at(now)
        .key("sweep", "0")
        .build()
        .unwrap();
    system.interactions().log(logged).await.unwrap();
    let snapshot = |s: TenantCrm| async move {
        let deals = s
            .sales()
            .list(&OpportunityQuery::default(), &PageRequest::first(100))
            .await
            .unwrap()
            .items;
        let customers = s
            .customers()
            .search(&CustomerQuery::all(), &PageRequest::first(100))
            .await
            .unwrap()
            .items;
        let cases = s
            .cases()
            .list(&CaseQuery::default(), &PageRequest::first(100))
            .await
            .unwrap()
            .items;
        let tasks = s
            .tasks()
            .list(&TaskQuery::default(), &PageRequest::first(100))
            .await
            .unwrap()
            .items;
        (customers, cases, tasks, deals)
    };
    let before = snapshot(system.clone()).await;

    let h = system.as_user(a, &[role(Scope::Own)]).await.unwrap();
    let (id, v) = (hidden.id, hidden.version);
    let page = PageRequest::first(10);
    let note = || {
        Notification::builder(Recipient::User(a), "t", "k")
            .build()
            .unwrap()
    };
    let call = Interaction::builder(id, Channel::Phone, InteractionKind::Call)
        .at(system.crm().now())
        .key("sweep", "1")
        .build()
        .unwrap();
    let rule = KpiRule {
        key: TemplateName::parse("first-reply").unwrap(),
        name: "First reply".into(),
        metric: KpiMetric::Case(
            SlaTarget::new(SlaMetric::FirstReply, Duration::hours(4), 0.75).unwrap(),
        ),
        calendar: BusinessCalendar::new(
            chrono_tz::Tz::UTC,
            Week::weekdays(&[Interval::parse("09:00", "17:00").unwrap()]),
        )
        .unwrap(),
        scope: KpiScope::default(),
        compliance_goal: 0.9,
        on_warning: vec![KpiAction::NotifyAssignee],
        on_breach: vec![KpiAction::NotifyAssignee],
    };
    let engine = KpiEngine::new(vec![], system.crm().now()).unwrap();
    let model: ValueModel = serde_json::from_value(serde_json::json!({
        "fitted_at": "2026-03-01T00:00:00Z", "calibration_end": "1997-09-30", "unit_days": 7,
        "customers": 2357, "repeat_customers": 946,
        "purchases": {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43, "log_likelihood": -9582.4},
        "spend": {"p": 6.25, "q": 3.74, "gamma": 15.44, "log_likelihood": -4058.1}
    }))
    .unwrap();
    let scores = ValueScores {
        p_alive: 0.5,
        expected_purchases_90d: 1.0,
        predicted_clv: Money::parse("20", "EUR").unwrap(),
        scored_at: system.crm().now(),
    };
    let classes = ValueClasses {
        r: 1,
        f: 1,
        m: 1,
        segment: RfmSegment::Lost,
        abc: AbcClass::C,
        as_of: system.crm().now().date_naive(),
    };
    let policy = PoolPolicy {
        rules: vec![],
        limits: ClaimLimits {
            per_day: 1,
            max_held: 1,
            reclaim_block_days: 0,
        },
        exempt_open_cases: false,
        time_zone: chrono_tz::Tz::UTC,
    };
    let rules = MatchRules::standard();
    let mut archive = Vec::new();

    let refused: Vec<(&str, bool)> = vec![
        (
            "customers.register",
            forbidden(
                h.customers()
                    .register(Customer::person("X").build().unwrap())
                    .await,
            ),
        ),
        (
            "customers.register_many",
            forbidden(
                h.customers()
                    .register_many(vec![Customer::person("X").build().unwrap()])
                    .await,
            ),
        ),
        ("customers.get", forbidden(h.customers().get(id).await)),
        (
            "customers.update",
            forbidden(h.customers().update(hidden.clone(), Some(a)).await),
        ),
        (
            "customers.change_owner",
            forbidden(
                h.customers()
                    .change_owner(id, Some(a), v, Some(a), None)
                    .await,
            ),
        ),
        (
            "customers.change_owner_notifying",
            forbidden(
                h.customers()
                    .change_owner_notifying(
                        id,
                        crm_core::Transfer {
                            new_owner: Some(a),
                            expected_version: v,
                            actor: Some(a),
                            reason: None,
                        },
                        vec![note()],
                    )
                    .await,
            ),
        ),
        (
            "customers.transfer_all",
            forbidden(h.customers().transfer_all(c, Some(a), Some(a), None).await),
        ),
        (
            "customers.ownership_history",
            forbidden(h.customers().ownership_history(id).await),
        ),
        (
            "customers.profile",
            forbidden(h.customers().profile(id).await),
        ),
        (
            "customers.audit_history",
            forbidden(h.customers().audit_history(id, &page).await),
        ),
        (
            "customers.merge",
            forbidden(
                h.customers()
                    .merge(id, &[other.id], &MergePolicy::default(), true)
                    .await,
            ),
        ),
        (
            "customers.merge_by",
            forbidden(
                h.customers()
                    .merge_by(
                        id,
                        &[other.id],
                        &MergePolicy::default(),
                        false,
                        Some(a),
                        None,
                    )
                    .await,
            ),
        ),
        (
            "customers.resolve",
            forbidden(h.customers().resolve(id).await),
        ),
        (
            "duplicates.check",
            forbidden(h.duplicates().check(&hidden, &rules).await),
        ),
        (
            "duplicates.register_checked",
            forbidden(
                h.duplicates()
                    .register_checked(Customer::person("Hidden").build().unwrap(), &rules)
                    .await,
            ),
        ),
        (
            "duplicates.find",
            forbidden(h.duplicates().find(&rules).await),
        ),
        (
            "sources.upsert",
            forbidden(
                h.sources()
                    .upsert("erp", "1", &SourceFields::default(), &[])
                    .await,
            ),
        ),
        (
            "sources.upsert_batch",
            forbidden(
                h.sources()
                    .upsert_batch("erp", &[("1".to_string(), SourceFields::default())], &[])
                    .await,
            ),
        ),
        (
            "interactions.log",
            forbidden(h.interactions().log(call.clone()).await),
        ),
        (
            "interactions.log_batch",
            forbidden(h.interactions().log_batch(vec![call.clone()]).await),
        ),
        (
            "interactions.log_batch_notifying",
            forbidden(
                h.interactions()
                    .log_batch_notifying(vec![call.clone()], vec![note()])
                    .await,
            ),
        ),
        (
            "interactions.timeline",
            forbidden(h.interactions().timeline(id, &page).await),
        ),
        (
            "interactions.archive",
            forbidden(
                h.interactions()
                    .archive(system.crm().now(), &mut archive)
                    .await,
            ),
        ),
        (
            "interactions.archive_horizon",
            forbidden(h.interactions().archive_horizon().await),
        ),
        (
            "value.set_scores",
            forbidden(h.value().set_scores(vec![(id, scores)]).await),
        ),
        ("value.scores", forbidden(h.value().scores(id).await)),
        (
            "value.set_classes",
            forbidden(h.value().set_classes(vec![(id, classes)]).await),
        ),
        ("value.classes", forbidden(h.value().classes(id).await)),
        (
            "value.save_model",
            forbidden(h.value().save_model(&model).await),
        ),
        (
            "value.latest_model",
            // The tenant's fitted model: figures, no customer in it.
            h.value().latest_model().await.is_ok(),
        ),
        (
            "segments.preview",
            // Counted and listed over what the principal reads: none of c's customers,
            // only a's own account.
            h.segments()
                .preview(
                    &crm_core::segment::parse("interaction_count >= 0").unwrap(),
                    &schema,
                    &page,
                )
                .await
                .is_ok_and(|(count, first)| count == 1 && first.items == [mine.id]),
        ),
        (
            "segments.create",
            forbidden(
                h.segments()
                    .create(Segment::fixed("Mine").unwrap(), &schema)
                    .await,
            ),
        ),
        (
            "segments.get",
            // Definitions name no customer (this one is hand-picked: no rule either).
            h.segments().get(segment.id).await.is_ok(),
        ),
        ("segments.list", h.segments().list().await.is_ok()),
        (
            "segments.refresh",
            forbidden(h.segments().refresh(SegmentId::new(), &schema).await),
        ),
        (
            "segments.change_static_members",
            forbidden(
                h.segments()
                    .change_static_members(segment.id, vec![], vec![id])
                    .await,
            ),
        ),
        (
            "segments.members",
            shows_none(h.segments().members(segment.id, &page).await, |c| *c == id),
        ),
        (
            "segments.is_member",
            forbidden(h.segments().is_member(segment.id, id).await),
        ),
        (
            "segments.of_customer",
            forbidden(h.segments().of_customer(id).await),
        ),
        (
            "cases.open",
            forbidden(
                h.cases()
                    .open(
                        Case::open(
                            id,
                            CaseKind::Inquiry,
                            "X",
                            Channel::Email,
                            Some(a),
                            system.crm().now(),
                        )
                        .unwrap(),
                    )
                    .await,
            ),
        ),
        ("cases.get", forbidden(h.cases().get(case.id).await)),
        (
            "cases.list",
            shows_none(h.cases().list(&CaseQuery::default(), &page).await, |c| {
                c.customer == id
            }),
        ),
        (
            "cases.record_event",
            forbidden(
                h.cases()
                    .record_event(
                        case.id,
                        case.version,
                        CaseEventKind::PublicReply { by: a },
                        vec![],
                    )
                    .await,
            ),
        ),
        (
            "tasks.create",
            forbidden(
                h.tasks()
                    .create(
                        Task::new(TaskSubject::Customer(id), "X", a, system.crm().now()).unwrap(),
                    )
                    .await,
            ),
        ),
        ("tasks.get", forbidden(h.tasks().get(task.id).await)),
        (
            "tasks.list",
            shows_none(h.tasks().list(&TaskQuery::default(), &page).await, |t| {
                t.id == task.id
            }),
        ),
        (
            "tasks.snooze",
            forbidden(
                h.tasks()
                    .snooze(
                        task.id,
                        task.version,
                        system.crm().now() + Duration::days(2),
                    )
                    .await,
            ),
        ),
        (
            "tasks.complete",
            forbidden(h.tasks().complete(task.id, task.version).await),
        ),
        (
            "tasks.remind_due",
            forbidden(
                h.tasks()
                    .remind_due(system.crm().now() + Duration::days(3))
                    .await,
            ),
        ),
        (
            "notifications.enqueue",
            forbidden(h.notifications().enqueue(vec![note()]).await),
        ),
        (
            "notifications.dead_letters",
            forbidden(h.notifications().dead_letters(&page).await),
        ),
        (
            "notifications.requeue",
            forbidden(h.notifications().requeue(MessageId::new()).await),
        ),
        (
            "kpis.add_rule",
            forbidden(h.kpis().add_rule(rule.clone()).await),
        ),
        (
            "kpis.update_rule",
            forbidden(h.kpis().update_rule(rule.clone(), 1).await),
        ),
        (
            "kpis.delete_rule",
            forbidden(h.kpis().delete_rule(&rule.key).await),
        ),
        ("kpis.rules", forbidden(h.kpis().rules().await)),
        ("kpis.engine", forbidden(h.kpis().engine().await)),
        (
            "kpis.evaluate",
            forbidden(h.kpis().evaluate(&engine, system.crm().now()).await),
        ),
        (
            "kpis.follow_up_gaps",
            forbidden(h.kpis().follow_up_gaps().await),
        ),
        ("pool.reclaim", forbidden(h.pool().reclaim(&policy).await)),
        (
            "pool.claim",
            forbidden(h.pool().claim(id, a, &policy).await),
        ),
        ("privacy.erase", forbidden(h.privacy().erase(id, v).await)),
        (
            "privacy.erase_by",
            forbidden(h.privacy().erase_by(id, v, Some(a)).await),
        ),
        ("privacy.export", forbidden(h.privacy().export(id).await)),
        (
            "staff.hand_over",
            forbidden(h.staff().hand_over(c, a, Some(a), None).await),
        ),
        (
            "sharing.share",
            forbidden(
                h.sharing()
                    .share(id, Grantee::User(a), Access::Write, None)
                    .await,
            ),
        ),
        (
            "sharing.unshare",
            forbidden(h.sharing().unshare(id, Grantee::User(c), None).await),
        ),
        ("sharing.grants", forbidden(h.sharing().grants(id).await)),
        (
            "sharing.put_rule",
            forbidden(
                h.sharing()
                    .put_rule(
                        SharingRule::new(
                            "all",
                            crm_core::segment::parse("interaction_count >= 0").unwrap(),
                            schema.clone(),
                            co.north,
                            Access::Write,
                        )
                        .unwrap(),
                        None,
                    )
                    .await,
            ),
        ),
        (
            "sharing.delete_rule",
            forbidden(h.sharing().delete_rule("all").await),
        ),
        ("sharing.rules", forbidden(h.sharing().rules().await)),
        (
            "access_log.entries",
            forbidden(
                h.access_log()
                    .entries(Some(c), system.crm().now(), 10)
                    .await,
            ),
        ),
        (
            "access_log.usage",
            forbidden(
                h.access_log()
                    .usage(
                        system.crm().now().date_naive(),
                        system.crm().now().date_naive(),
                    )
                    .await,
            ),
        ),
        (
            "sales.create_pipeline",
            forbidden(
                h.sales()
                    .create_pipeline(crm_testkit::conformance::sample_pipeline())
                    .await,
            ),
        ),
        (
            "sales.update_pipeline",
            forbidden(h.sales().update_pipeline(pipeline.clone(), 1).await),
        ),
        (
            "sales.open",
            forbidden(h.sales().open(deal(hidden.id)).await),
        ),
        ("sales.get", forbidden(h.sales().get(hidden_deal.id).await)),
        (
            "sales.history",
            forbidden(h.sales().history(hidden_deal.id, &page).await),
        ),
        (
            "sales.update",
            forbidden(h.sales().update(hidden_deal.clone(), 1).await),
        ),
        (
            "sales.move_to",
            forbidden(h.sales().move_to(hidden_deal.id, 1, "proposal").await),
        ),
        (
            "sales.win",
            forbidden(h.sales().win(hidden_deal.id, 1).await),
        ),
        (
            "sales.lose",
            forbidden(h.sales().lose(hidden_deal.id, 1, "Price", None).await),
        ),
        (
            "sales.reopen",
            forbidden(h.sales().reopen(won_deal.id, 2, "qualify").await),
        ),
        (
            "sales.link_order",
            forbidden(
                h.sales()
                    .link_order(
                        won_deal.id,
                        crm_core::ExternalRef::new("erp", "SO-1").unwrap(),
                    )
                    .await,
            ),
        ),
        (
            "sales.list",
            shows_none(
                h.sales().list(&OpportunityQuery::default(), &page).await,
                |d| d.id == hidden_deal.id || d.id == won_deal.id,
            ),
        ),
        (
            "sales.forecast",
            h.sales()
                .forecast(
                    &ForecastQuery {
                        include_closed: true,
                        ..ForecastQuery::new(close, close)
                    },
                    None,
                )
                .await
                .is_ok_and(|f| f.rows.is_empty()),
        ),
        (
            "sales.funnel",
            h.sales()
                .funnel(
                    &FunnelQuery {
                        pipeline: pipeline.id,
                        from: system.crm().now() - Duration::days(1),
                        to: system.crm().now() + Duration::days(1),
                    },
                    None,
                )
                .await
                .is_ok_and(|r| r.all.deals == 0),
        ),
        (
            "accounts.relate",
            forbidden(
                h.accounts()
                    .relate(Relationship::new(firm.id, other.id, now))
                    .await,
            ),
        ),
        (
            "accounts.relate (a hidden person)",
            forbidden(
                h.accounts()
                    .relate(Relationship::new(mine.id, other.id, now))
                    .await,
            ),
        ),
        (
            "accounts.unrelate",
            forbidden(h.accounts().unrelate(firm.id, hidden.id).await),
        ),
        (
            "accounts.contacts",
            forbidden(h.accounts().contacts(firm.id, &page).await),
        ),
        (
            "accounts.contacts (own account)",
            shows_none(h.accounts().contacts(mine.id, &page).await, |r| {
                r.person == id
            }),
        ),
        (
            "accounts.accounts_of",
            forbidden(h.accounts().accounts_of(id, &page).await),
        ),
        (
            "accounts.primary_account",
            forbidden(h.accounts().primary_account(id).await),
        ),
        (
            "accounts.set_parent",
            forbidden(h.accounts().set_parent(firm.id, None).await),
        ),
        (
            "accounts.set_parent (a hidden parent)",
            forbidden(h.accounts().set_parent(mine.id, Some(firm.id)).await),
        ),
        ("accounts.line", forbidden(h.accounts().line(firm.id).await)),
        (
            "accounts.subsidiaries",
            forbidden(h.accounts().subsidiaries(firm.id, &page).await),
        ),
        (
            "accounts.subsidiaries (own account)",
            shows_none(h.accounts().subsidiaries(mine.id, &page).await, |s| {
                *s == firm.id
            }),
        ),
        (
            "accounts.timeline",
            forbidden(h.accounts().timeline(firm.id, &page).await),
        ),
        (
            "accounts.timeline (own account)",
            shows_none(h.accounts().timeline(mine.id, &page).await, |i| {
                i.customer == id
            }),
        ),
        (
            "accounts.profile",
            forbidden(h.accounts().profile(firm.id).await),
        ),
        (
            "accounts.profile (own account)",
            h.accounts()
                .profile(mine.id)
                .await
                .is_ok_and(|p| p.interaction_count == 0),
        ),
        (
            "accounts.transfer",
            forbidden(
                h.accounts()
                    .transfer(mine.id, None, mine.version, true, None, None)
                    .await,
            ),
        ),
        (
            "access_log.unusual",
            forbidden(
                h.access_log()
                    .unusual(
                        system.crm().now().date_naive(),
                        &crm_core::access::UnusualRule::default(),
                    )
                    .await,
            ),
        ),
    ];
    // Searches are filtered rather than refused: the hidden customer never appears.
    let searched = h
        .customers()
        .search(&CustomerQuery::all(), &PageRequest::first(100))
        .await
        .unwrap();
    let leaks: Vec<&str> = refused
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| *name)
        .chain(
            searched
                .items
                .iter()
                .any(|x| x.id == id)
                .then_some("customers.search"),
        )
        .collect();
    println!(
        "scoped-handle sweep: {} methods tried, {} leaks",
        refused.len() + 1,
        leaks.len()
    );
    assert!(leaks.is_empty(), "leaks: {leaks:?}");
    assert!(archive.is_empty());
    assert!(system.sharing().grants(id).await.unwrap().is_empty());
    assert!(system.sharing().rules().await.unwrap().is_empty());
    assert_eq!(snapshot(system).await, before, "nothing changed");
}

/// A grant widens what one principal reads (read) or changes (write), interactions
/// included; a grant to a unit reaches its members only; revoking takes it back from the
/// next handle on; a principal shares what its roles let it write, and nothing else.
#[tokio::test]
async fn grants_widen_what_a_principal_reads_and_writes() {
    let co = company();
    let system = co.crm.tenant(co.tenant);
    let [a, b, c] = co.reps;
    let theirs = register(&system, "Theirs", Some(c)).await;
    let mine = register(&system, "Mine", Some(a)).await;
    let own = [role(Scope::Own)];
    let as_a = || system.as_user(a, &own);
    let visible = |h: TenantCrm| async move { all_pages(&h, 10).await };
    assert!(forbidden(
        as_a().await.unwrap().customers().get(theirs.id).await
    ));

    let sharing = system.sharing();
    let g = sharing
        .share(theirs.id, Grantee::User(a), Access::Read, Some(co.head))
        .await
        .unwrap();
    assert_eq!((g.granted_by, g.access), (Some(co.head), Access::Read));
    let h = as_a().await.unwrap();
    assert_eq!(h.customers().get(theirs.id).await.unwrap().id, theirs.id);
    assert!(h
        .interactions()
        .timeline(theirs.id, &PageRequest::first(5))
        .await
        .is_ok());
    assert!(forbidden(
        h.customers().update(theirs.clone(), Some(a)).await
    ));
    let call = Interaction::builder(theirs.id, Channel::Phone, InteractionKind::Call)
        .at(system.crm().now())
        .build()
        .unwrap();
    assert!(forbidden(h.interactions().log(call.clone()).await));
    assert!(forbidden(
        h.customers()
            .change_owner(theirs.id, Some(a), 1, Some(a), None)
            .await
    ));
    assert_eq!(visible(h.clone()).await, vec![theirs.id, mine.id]);
    // The handle scoped before the write grant keeps what it had.
    sharing
        .share(theirs.id, Grantee::User(a), Access::Write, Some(co.head))
        .await
        .unwrap();
    assert!(forbidden(
        h.customers().update(theirs.clone(), Some(a)).await
    ));
    let h = as_a().await.unwrap();
    let renamed = h.customers().update(theirs.clone(), Some(a)).await.unwrap();
    assert_eq!(renamed.version, 2);
    assert_eq!(h.interactions().log(call).await.unwrap().inserted, 1);
    // A principal cannot pass on what it holds by a grant, only what its roles reach.
    assert!(forbidden(
        h.sharing()
            .share(theirs.id, Grantee::User(b), Access::Read, None)
            .await
    ));
    let passed = h
        .sharing()
        .share(mine.id, Grantee::User(b), Access::Read, Some(co.head))
        .await
        .unwrap();
    assert_eq!(passed.granted_by, Some(a), "recorded as the principal's");
    assert!(forbidden(h.sharing().rules().await));

    // A grant to North reaches its members, not South's.
    sharing
        .share(
            theirs.id,
            Grantee::Unit(co.north),
            Access::Read,
            Some(co.head),
        )
        .await
        .unwrap();
    let as_b = system.as_user(b, &own).await.unwrap();
    assert_eq!(visible(as_b.clone()).await, vec![theirs.id, mine.id]);
    let other_rep_in_south = UserId::new();
    let stranger = system.as_user(other_rep_in_south, &own).await.unwrap();
    assert!(forbidden(stranger.customers().get(theirs.id).await));

    assert!(sharing
        .unshare(theirs.id, Grantee::User(a), Some(co.head))
        .await
        .unwrap());
    assert!(!sharing
        .unshare(theirs.id, Grantee::User(a), Some(co.head))
        .await
        .unwrap());
    // Still North's, and so a's: until the unit's grant goes too.
    assert!(as_a()
        .await
        .unwrap()
        .customers()
        .get(theirs.id)
        .await
        .is_ok());
    assert!(sharing
        .unshare(theirs.id, Grantee::Unit(co.north), None)
        .await
        .unwrap());
    assert!(forbidden(
        as_a().await.unwrap().customers().get(theirs.id).await
    ));
    let history = sharing.grants(theirs.id).await.unwrap();
    assert_eq!(history.len(), 3);
    assert!(history[..2]
        .iter()
        .all(|g| g.grantee == Grantee::User(a) && !g.is_active()));
    assert_eq!(history[1].revoked_by, Some(co.head));
}

/// A sharing rule shows the customers it matches (rule fields included: tags, revenue
/// from the profile) to its unit's members, read-only when it gives read; others see
/// nothing more.
#[tokio::test]
async fn sharing_rules_show_matching_customers_to_the_unit() {
    let co = company();
    let system = co.crm.tenant(co.tenant);
    let [a, _, c] = co.reps;
    let vip = system
        .customers()
        .register(
            Customer::person("Vip")
                .owner(co.head)
                .tag("vip")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let plain = register(&system, "Plain", Some(co.head)).await;
    let schema = FieldSchema::new(Currency::parse("EUR").unwrap());
    let rule = SharingRule::new(
        "vips to North",
        crm_core::segment::parse(r#""vip" in tags and interaction_count = 0"#).unwrap(),
        schema,
        co.north,
        Access::Read,
    )
    .unwrap();
    let stored = system
        .sharing()
        .put_rule(rule, Some(co.head))
        .await
        .unwrap();
    assert_eq!(stored.created_by, Some(co.head));
    assert_eq!(system.sharing().rules().await.unwrap(), vec![stored]);
    let own = [role(Scope::Own)];
    let north_rep = system.as_user(a, &own).await.unwrap();
    assert_eq!(all_pages(&north_rep, 1).await, vec![vip.id]);
    assert_eq!(north_rep.customers().get(vip.id).await.unwrap().id, vip.id);
    assert!(forbidden(north_rep.customers().get(plain.id).await));
    assert!(forbidden(
        north_rep.customers().update(vip.clone(), Some(a)).await
    ));
    let south_rep = system.as_user(c, &own).await.unwrap();
    assert!(all_pages(&south_rep, 5).await.is_empty());
    // The rule reads the profile: once the customer has an interaction it no longer matches.
    let call = Interaction::builder(vip.id, Channel::Phone, InteractionKind::Call)
        .at(system.crm().now())
        .build()
        .unwrap();
    system.interactions().log(call).await.unwrap();
    assert!(forbidden(north_rep.customers().get(vip.id).await));
    system.sharing().delete_rule("vips to North").await.unwrap();
    assert!(matches!(
        system.sharing().delete_rule("vips to North").await,
        Err(Error::NotFound { .. })
    ));
}

/// A masking role reads contact points masked, in reads and searches; a masked contact
/// point sent back in an update keeps the stored one; a masked one cannot be stored as
/// data; pool customers are masked for every principal until claimed.
#[tokio::test]
async fn contacts_come_back_masked_and_stay_stored() {
    let co = company();
    let system = co.crm.tenant(co.tenant);
    let a = co.reps[0];
    let stored = system
        .customers()
        .register(
            Customer::person("Ann")
                .owner(a)
                .email("ann.lee@example.com")
                .phone("+8613812345678")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let masking = role(Scope::Own).masking_contacts();
    let h = system.as_user(a, &[masking]).await.unwrap();
    let seen = h.customers().get(stored.id).await.unwrap();
    assert_eq!(seen.emails[0].as_str(), "a***@example.com");
    assert_eq!(seen.phones[0].as_str(), "+86138****5678");
    let found = h
        .customers()
        .search(&CustomerQuery::all(), &PageRequest::first(5))
        .await
        .unwrap();
    assert_eq!(found.items, vec![seen.clone()]);
    // Sent back with a new name, the masked contact points keep the stored ones.
    let mut edited = seen.clone();
    edited.name = crm_core::DisplayName::parse("Ann Lee").unwrap();
    edited
        .emails
        .push(crm_core::EmailAddress::parse("ann@work.example").unwrap());
    let back = h.customers().update(edited, Some(a)).await.unwrap();
    assert_eq!(
        back.emails[0].as_str(),
        "a***@example.com",
        "still masked to it"
    );
    let now = system.customers().get(stored.id).await.unwrap();
    assert_eq!(now.emails[0].as_str(), "ann.lee@example.com");
    assert_eq!(now.emails[1].as_str(), "ann@work.example");
    assert_eq!(now.phones, stored.phones);
    // A masked value that masks none of the stored ones, or a new customer with one, is
    // refused naming the field, and nothing is written.
    let mut forged = h.customers().get(stored.id).await.unwrap();
    forged.phones = vec![seen.phones[0].clone(), now.phones[0].masked()];
    let err = h.customers().update(forged, Some(a)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "phones[1]"),
        "{err:?}"
    );
    let mut copy = Customer::person("Copy").owner(a).build().unwrap();
    copy.emails = seen.emails.clone();
    let err = h.customers().register(copy).await.unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "emails[0]"),
        "{err:?}"
    );
    assert_eq!(system.customers().get(stored.id).await.unwrap(), now);
    // The masked form survives a host's serialisation round trip.
    let json = serde_json::to_string(&seen).unwrap();
    assert_eq!(serde_json::from_str::<Customer>(&json).unwrap(), seen);

    // A pool customer is masked even for a principal that reads everything, not for the
    // system handle.
    let pooled = system
        .customers()
        .register(
            Customer::person("Pooled")
                .phone("+4930901820")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let everything = system.as_user(co.head, &[role(Scope::All)]).await.unwrap();
    let p = everything.customers().get(pooled.id).await.unwrap();
    assert!(p.phones[0].is_masked(), "{:?}", p.phones);
    assert_eq!(system.customers().get(pooled.id).await.unwrap(), pooled);
}

/// Cases follow their customer (or their assignee), tasks their assignee or customer;
/// reassigning a case is a transfer; exports and erasure need their own actions; segment
/// members and value data show only what the principal reads.
#[tokio::test]
async fn cases_tasks_exports_and_memberships_follow_the_roles() {
    let co = company();
    let system = co.crm.tenant(co.tenant);
    let [a, _, c] = co.reps;
    let mine = register(&system, "Mine", Some(a)).await;
    let theirs = register(&system, "Theirs", Some(c)).await;
    let now = system.crm().now();
    let case = |customer: CustomerId, assignee: UserId, subject: &str| {
        Case::open(
            customer,
            CaseKind::Complaint,
            subject,
            Channel::Email,
            Some(assignee),
            now,
        )
        .unwrap()
    };
    let on_mine = system
        .cases()
        .open(case(mine.id, c, "On mine"))
        .await
        .unwrap();
    let assigned = system
        .cases()
        .open(case(theirs.id, a, "Assigned to a"))
        .await
        .unwrap();
    let hidden = system
        .cases()
        .open(case(theirs.id, c, "Hidden"))
        .await
        .unwrap();
    let mut reps_role = role(Scope::Own);
    for kind in [RecordKind::Cases, RecordKind::Tasks] {
        for action in [Action::Read, Action::Write] {
            reps_role = reps_role.allow(kind, action, Scope::Own);
        }
    }
    let h = system
        .as_user(a, std::slice::from_ref(&reps_role))
        .await
        .unwrap();
    let listed: Vec<_> = h
        .cases()
        .list(&CaseQuery::default(), &PageRequest::first(1))
        .await
        .map(|p| p.items.into_iter().map(|c| c.id).collect())
        .unwrap();
    assert_eq!(listed, vec![on_mine.id], "one per page");
    let mut all = Vec::new();
    let mut page = PageRequest::first(1);
    loop {
        let got = h.cases().list(&CaseQuery::default(), &page).await.unwrap();
        all.extend(got.items.iter().map(|c| c.id));
        match got.next {
            Some(n) => page = PageRequest::after(n, 1),
            None => break,
        }
    }
    assert_eq!(all, vec![on_mine.id, assigned.id]);
    assert!(forbidden(h.cases().get(hidden.id).await));
    assert!(h.cases().open(case(mine.id, a, "New")).await.is_ok());
    assert!(forbidden(
        h.cases().open(case(theirs.id, c, "Not mine")).await
    ));
    let reply = CaseEventKind::PublicReply { by: a };
    let replied = h
        .cases()
        .record_event(on_mine.id, 1, reply, vec![])
        .await
        .unwrap();
    let reassign = CaseEventKind::Assignment {
        to: Some(c),
        by: Some(a),
        reason: None,
    };
    assert!(forbidden(
        h.cases()
            .record_event(on_mine.id, replied.version, reassign, vec![])
            .await
    ));

    // Tasks: a's own about a hidden customer cannot be made by a, but one the system gave
    // a is a's to see and complete.
    let due = now + Duration::days(1);
    let about_theirs = Task::new(TaskSubject::Customer(theirs.id), "Call", a, due).unwrap();
    assert!(forbidden(h.tasks().create(about_theirs.clone()).await));
    let given = system.tasks().create(about_theirs).await.unwrap();
    let theirs_task = system
        .tasks()
        .create(Task::new(TaskSubject::Case(hidden.id), "Reply", c, due).unwrap())
        .await
        .unwrap();
    let seen: Vec<_> = h
        .tasks()
        .list(&TaskQuery::default(), &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(seen, vec![given.id]);
    assert!(h.tasks().complete(given.id, given.version).await.is_ok());
    assert!(forbidden(h.tasks().get(theirs_task.id).await));

    // Exports and erasure need their own actions.
    assert!(forbidden(h.privacy().export(mine.id).await));
    assert!(forbidden(h.privacy().erase(mine.id, mine.version).await));
    let exporter = reps_role
        .clone()
        .allow(RecordKind::Customers, Action::Export, Scope::Own);
    let e = system.as_user(a, &[exporter]).await.unwrap();
    assert_eq!(
        e.privacy().export(mine.id).await.unwrap().customer.id,
        mine.id
    );
    assert!(forbidden(e.privacy().export(theirs.id).await));

    // Memberships and value data: only what the principal reads.
    let schema = FieldSchema::new(Currency::parse("EUR").unwrap());
    let both = system
        .segments()
        .create(Segment::fixed("Both").unwrap(), &schema)
        .await
        .unwrap();
    system
        .segments()
        .change_static_members(both.id, vec![mine.id, theirs.id], vec![])
        .await
        .unwrap();
    let members = h
        .segments()
        .members(both.id, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(members.items, vec![mine.id]);
    assert!(h.segments().is_member(both.id, mine.id).await.unwrap());
    assert!(forbidden(h.segments().is_member(both.id, theirs.id).await));
    assert!(forbidden(h.value().scores(theirs.id).await));
    assert_eq!(h.value().scores(mine.id).await.unwrap(), None);
}

/// A salesperson reads at most N unmasked customers a day: the N+1th read is refused with
/// nothing else changed, masked and contact-less reads do not count, the quota renews the
/// next day; exports have their own quota; every counted read is in the access log, which
/// a manager reads for the team, and a user reading far more than usual is reported.
#[tokio::test]
async fn quotas_refuse_the_read_beyond_them_and_the_log_has_every_read() {
    use crm_core::access::{AccessEntry, AccessKind, UnusualRule};
    let co = company();
    let system = co.crm.tenant(co.tenant);
    let [a, b, _] = co.reps;
    let mut with_contacts = Vec::new();
    for i in 0..4 {
        let c = Customer::person(&format!("Contact {i}"))
            .owner(a)
            .email(&format!("c{i}@example.com"))
            .build()
            .unwrap();
        with_contacts.push(system.customers().register(c).await.unwrap());
    }
    let bare = register(&system, "No contacts", Some(a)).await;
    let limited = role(Scope::Own)
        .allow(RecordKind::Customers, Action::Export, Scope::Own)
        .limit_per_day(AccessKind::ContactReads, 3)
        .limit_per_day(AccessKind::Exports, 1);
    let h = system
        .as_user(a, std::slice::from_ref(&limited))
        .await
        .unwrap();
    for c in &with_contacts[..3] {
        h.customers().get(c.id).await.unwrap();
    }
    h.customers().get(bare.id).await.unwrap();
    let err = h.customers().get(with_contacts[3].id).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::QuotaExceeded {
                quota: "contact reads",
                limit: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("renews at 2026-03-03 00:00:00 UTC"),
        "{err}"
    );
    // A search page with unmasked customers is refused whole.
    let err = h
        .customers()
        .search(&CustomerQuery::all(), &PageRequest::first(10))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::QuotaExceeded { .. }));
    // Masked reads do not count.
    let masked = system
        .as_user(a, &[limited.clone().masking_contacts()])
        .await
        .unwrap();
    assert_eq!(all_pages(&masked, 10).await.len(), 5);
    let log = system.access_log();
    let day_start = system.crm().now() - Duration::hours(9);
    let entries = log.entries(Some(a), day_start, 100).await.unwrap();
    assert_eq!(entries.len(), 3, "the refused reads left nothing");
    assert!(entries
        .iter()
        .all(|e| e.kind == AccessKind::ContactReads && e.count == 1));
    assert_eq!(entries[0].operation, "customers.get");

    // Exports: one a day (under a wider contact-read quota: an export reads the customer
    // too).
    let exporter = system
        .as_user(
            a,
            &[limited.clone().limit_per_day(AccessKind::ContactReads, 100)],
        )
        .await
        .unwrap();
    exporter.privacy().export(bare.id).await.unwrap();
    let err = exporter.privacy().export(bare.id).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::QuotaExceeded {
                quota: "exports",
                ..
            }
        ),
        "{err:?}"
    );

    // The next day the quota is new.
    co.clock.advance(Duration::days(1));
    let h = system
        .as_user(a, std::slice::from_ref(&limited))
        .await
        .unwrap();
    assert!(h.customers().get(with_contacts[3].id).await.is_ok());

    // A manager reads the team's log; a rep not the manager's, nor everyone's.
    let lead = system
        .as_user(co.lead, &[role(Scope::OwnAndSubordinates)])
        .await
        .unwrap();
    assert!(!lead
        .access_log()
        .entries(Some(a), day_start, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(forbidden(
        h.access_log().entries(Some(co.lead), day_start, 100).await
    ));
    assert!(forbidden(
        h.access_log().entries(None, day_start, 100).await
    ));
    assert!(forbidden(
        h.access_log()
            .usage(day_start.date_naive(), day_start.date_naive())
            .await
    ));

    // Unusual access: b read about 20 a day for four weeks, then 400.
    let store = system.crm().storage().clone();
    let today = system.crm().now();
    for d in 1..=28_u64 {
        let e = AccessEntry {
            user: b,
            kind: AccessKind::ContactReads,
            operation: "customers.search".into(),
            count: 18 + d % 5,
            at: today - Duration::days(d as i64),
        };
        store.record_access(co.tenant, &e, None).await.unwrap();
    }
    let spike = AccessEntry {
        user: b,
        kind: AccessKind::ContactReads,
        operation: "customers.search".into(),
        count: 400,
        at: today,
    };
    store.record_access(co.tenant, &spike, None).await.unwrap();
    let report = log
        .unusual(today.date_naive(), &UnusualRule::default())
        .await
        .unwrap();
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!((report[0].user, report[0].count), (b, 400));
    assert!((report[0].usual - 20.0).abs() <= 1.0, "{}", report[0].usual);
    let usage = log
        .usage(today.date_naive(), today.date_naive())
        .await
        .unwrap();
    assert!(usage.iter().any(|u| u.user == a && u.count == 1));
}

/// A preview through a scoped handle whose reach cannot go into the query (a sharing rule
/// over an attribute the preview's schema does not know) filters member by member and
/// answers the same: only what the principal reads, paged.
#[tokio::test]
async fn previews_that_cannot_push_the_reach_down_filter_with_the_same_answer() {
    use crm_core::segment::AttrType;
    let co = company();
    let system = co.crm.tenant(co.tenant);
    let [a, _, c] = co.reps;
    let mut mine = Vec::new();
    for i in 0..5 {
        mine.push(register(&system, &format!("Mine {i}"), Some(a)).await.id);
    }
    let auto = system
        .customers()
        .register(
            Customer::person("Auto")
                .owner(c)
                .attribute("industry", crm_core::AttrValue::Text("auto".into()))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    register(&system, "Theirs", Some(c)).await;
    let eur = FieldSchema::new(Currency::parse("EUR").unwrap());
    let with_industry = eur.clone().with_attribute("industry", AttrType::Text);
    let rule = SharingRule::new(
        "auto to North",
        crm_core::segment::parse(r#"attr.industry = "auto""#).unwrap(),
        with_industry,
        co.north,
        Access::Read,
    )
    .unwrap();
    system.sharing().put_rule(rule, None).await.unwrap();
    let h = system.as_user(a, &[role(Scope::Own)]).await.unwrap();
    let all = crm_core::segment::parse("interaction_count = 0").unwrap();
    let reach = h
        .principal()
        .unwrap()
        .customer_rule(RecordKind::Customers, Action::Read)
        .unwrap()
        .unwrap();
    assert!(eur
        .check(&crm_core::segment::Rule::and(all.clone(), reach))
        .is_err());
    let (count, first) = h
        .segments()
        .preview(&all, &eur, &PageRequest::first(4))
        .await
        .unwrap();
    let mut want = mine.clone();
    want.push(auto.id);
    want.sort();
    assert_eq!(count, 6);
    assert_eq!(first.items, want[..4].to_vec());
    assert!(first.next.is_some());
}

/// A principal claims pool customers for itself (and reads them whole once claimed), not
/// for someone else, and learns nothing of others' customers by trying to claim them.
#[tokio::test]
async fn a_principal_claims_from_the_pool_for_itself() {
    use crm_core::pool::{ClaimLimits, PoolPolicy};
    let co = company();
    let system = co.crm.tenant(co.tenant);
    let [a, b, c] = co.reps;
    let pooled = system
        .customers()
        .register(
            Customer::person("Pooled")
                .email("p.pool@example.com")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let theirs = register(&system, "Theirs", Some(c)).await;
    let policy = PoolPolicy {
        rules: vec![],
        limits: ClaimLimits {
            per_day: 5,
            max_held: 10,
            reclaim_block_days: 0,
        },
        exempt_open_cases: false,
        time_zone: chrono_tz::Tz::UTC,
    };
    let h = system.as_user(a, &[role(Scope::Own)]).await.unwrap();
    assert!(forbidden(h.pool().claim(pooled.id, b, &policy).await));
    assert!(forbidden(h.pool().claim(theirs.id, a, &policy).await));
    let claimed = h.pool().claim(pooled.id, a, &policy).await.unwrap();
    assert_eq!(claimed.owner, Some(a));
    assert_eq!(
        claimed.emails[0].as_str(),
        "p.pool@example.com",
        "no longer masked"
    );
    let history = system
        .customers()
        .ownership_history(pooled.id)
        .await
        .unwrap();
    assert_eq!((history[0].to, history[0].changed_by), (Some(a), Some(a)));
}

/// Deals follow the roles' scope for opportunities (their owner), their team and their
/// account; moves record who made them; giving a deal away needs `Transfer`; a principal's
/// forecast counts only the deals it reaches.
#[tokio::test]
async fn deals_follow_the_opportunity_roles() {
    let co = company();
    let system = co.crm.tenant(co.tenant);
    let [a, b, c] = co.reps;
    let pipeline = system
        .sales()
        .create_pipeline(crm_testkit::conformance::sample_pipeline())
        .await
        .unwrap();
    let now = system.crm().now();
    let deal = |account: CustomerId, owner: UserId, amount: &str| {
        Opportunity::new(
            "Deal",
            account,
            owner,
            &pipeline,
            Money::parse(amount, "EUR").unwrap(),
            now.date_naive(),
            now,
        )
        .unwrap()
    };
    let mine = register(&system, "Mine", Some(a)).await;
    let theirs = register(&system, "Theirs", Some(c)).await;
    let sales_role = |scope: Scope| {
        let mut r = role(scope);
        for action in [Action::Read, Action::Write] {
            r = r.allow(RecordKind::Opportunities, action, scope);
        }
        r
    };
    let rep = system.as_user(a, &[sales_role(Scope::Own)]).await.unwrap();
    // The rep opens a deal on its own account, and is recorded as having done so.
    let own = rep.sales().open(deal(mine.id, a, "100")).await.unwrap();
    let history = rep
        .sales()
        .history(own.id, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(history.items[0].by, Some(a));
    assert!(
        forbidden(rep.sales().open(deal(theirs.id, c, "1")).await),
        "not its account"
    );
    // Another's deal on another's account: out of reach, until the rep joins its team.
    let mut foreign = deal(theirs.id, c, "200");
    let foreign_open = system.sales().open(foreign.clone()).await.unwrap();
    assert!(forbidden(rep.sales().get(foreign_open.id).await));
    foreign = foreign_open.clone();
    foreign.team = vec![a];
    let foreign = system.sales().update(foreign, 1).await.unwrap();
    assert_eq!(rep.sales().get(foreign.id).await.unwrap(), foreign);
    let moved = rep
        .sales()
        .move_to(foreign.id, 2, "proposal")
        .await
        .unwrap();
    assert_eq!(moved.stage.as_str(), "proposal");
    // A deal owned by someone else on the rep's own account: reached through the account.
    let on_mine = system.sales().open(deal(mine.id, b, "300")).await.unwrap();
    assert!(rep.sales().get(on_mine.id).await.is_ok());
    // Handing a deal to another owner needs Transfer, which the role does not give.
    let mut given = own.clone();
    given.owner = b;
    assert!(forbidden(rep.sales().update(given, 1).await));
    let listed: BTreeSet<_> = rep
        .sales()
        .list(&OpportunityQuery::default(), &PageRequest::first(100))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(listed, BTreeSet::from([own.id, foreign.id, on_mine.id]));
    let hidden = system
        .sales()
        .open(deal(theirs.id, c, "5000"))
        .await
        .unwrap();
    let query = ForecastQuery::new(now.date_naive(), now.date_naive());
    let total = |f: crm_core::sales::Forecast| f.totals().unwrap().rows[0].amount;
    assert_eq!(
        total(rep.sales().forecast(&query, None).await.unwrap()),
        "600".parse().unwrap(),
        "the rep's forecast leaves out the deal it does not reach"
    );
    assert_eq!(
        total(system.sales().forecast(&query, None).await.unwrap()),
        "5600".parse().unwrap()
    );
    let cohort = FunnelQuery {
        pipeline: pipeline.id,
        from: now - Duration::days(1),
        to: now + Duration::days(1),
    };
    assert_eq!(
        rep.sales().funnel(&cohort, None).await.unwrap().all.deals,
        3
    );
    assert_eq!(
        system
            .sales()
            .funnel(&cohort, None)
            .await
            .unwrap()
            .all
            .deals,
        4
    );
    // The lead reaches its reps' deals; the unit head of the org, everything in its units.
    let lead = system
        .as_user(co.lead, &[sales_role(Scope::OwnAndSubordinates)])
        .await
        .unwrap();
    assert!(lead.sales().get(own.id).await.is_ok());
    assert!(forbidden(lead.sales().get(hidden.id).await));
    let head = system
        .as_user(co.head, &[sales_role(Scope::UnitAndDescendants)])
        .await
        .unwrap();
    assert!(head.sales().get(hidden.id).await.is_ok());
}
