//! Conformance cases: per-record grants and sharing rules.

use super::*;
use crm_core::access::{Access, AccessEntry, AccessKind, DailyUsage, Grant, Grantee, SharingRule};

fn grant(
    customer: CustomerId,
    grantee: Grantee,
    access: Access,
    by: UserId,
    at: DateTime<Utc>,
) -> Grant {
    Grant {
        customer,
        grantee,
        access,
        granted_by: Some(by),
        granted_at: at,
        revoked_by: None,
        revoked_at: None,
    }
}

cases! {
    /// Grants read back equal; a second grant to the same grantee replaces the first, which
    /// stays in the record as revoked by whoever gave the second; revoking answers whether
    /// there was one; grants in force are found by user and by unit; tenants are apart.
    async fn grants_are_recorded_replaced_and_revoked(store) {
        let (crm, _clock) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let (ann, bob, boss) = (UserId::new(), UserId::new(), UserId::new());
        let north = TeamId::new();
        let a = register(&crm, tenant, simple("A")).await;
        let b = register(&crm, tenant, simple("B")).await;
        let at = t0();
        let first = grant(a.id, Grantee::User(ann), Access::Read, boss, at);
        store.put_grant(tenant, &first).await.unwrap();
        assert_eq!(store.grants_on(tenant, a.id).await.unwrap(), vec![first.clone()]);
        let unknown = grant(CustomerId::new(), Grantee::User(ann), Access::Read, boss, at);
        assert!(matches!(store.put_grant(tenant, &unknown).await, Err(Error::NotFound { .. })));
        assert!(matches!(store.put_grant(other, &first).await, Err(Error::NotFound { .. })), "another tenant's customer");
        // A revoked grant is not stored as if in force (it would read back differently).
        let revoked = Grant { revoked_by: Some(boss), revoked_at: Some(at), ..first.clone() };
        assert!(matches!(store.put_grant(tenant, &revoked).await, Err(Error::Validation { .. })));
        assert!(store.grants_on(other, a.id).await.unwrap().is_empty());

        let wider = grant(a.id, Grantee::User(ann), Access::Write, bob, at + Duration::hours(1));
        store.put_grant(tenant, &wider).await.unwrap();
        let unit = grant(a.id, Grantee::Unit(north), Access::Read, boss, at + Duration::hours(2));
        store.put_grant(tenant, &unit).await.unwrap();
        let on_b = grant(b.id, Grantee::User(ann), Access::Read, boss, at + Duration::hours(3));
        store.put_grant(tenant, &on_b).await.unwrap();
        let replaced = Grant { revoked_by: Some(bob), revoked_at: Some(at + Duration::hours(1)), ..first.clone() };
        assert_eq!(store.grants_on(tenant, a.id).await.unwrap(), vec![replaced.clone(), wider.clone(), unit.clone()]);

        let mine = |mut v: Vec<Grant>| { v.sort_by_key(|g| (g.customer, g.grantee)); v };
        let found = mine(store.grants_to(tenant, ann, Some(north), 10).await.unwrap());
        assert_eq!(found, mine(vec![wider.clone(), unit.clone(), on_b.clone()]));
        assert_eq!(mine(store.grants_to(tenant, ann, None, 10).await.unwrap()), mine(vec![wider.clone(), on_b.clone()]));
        assert_eq!(store.grants_to(tenant, bob, Some(north), 10).await.unwrap(), vec![unit.clone()]);
        assert_eq!(store.grants_to(tenant, ann, Some(north), 2).await.unwrap().len(), 2, "at most the limit");
        assert!(store.grants_to(other, ann, Some(north), 10).await.unwrap().is_empty());

        let later = at + Duration::hours(4);
        assert!(store.revoke_grant(tenant, a.id, Grantee::User(ann), Some(boss), later).await.unwrap());
        assert!(!store.revoke_grant(tenant, a.id, Grantee::User(ann), Some(boss), later).await.unwrap(), "nothing in force");
        assert!(!store.revoke_grant(other, b.id, Grantee::User(ann), Some(boss), later).await.unwrap());
        let revoked = Grant { revoked_by: Some(boss), revoked_at: Some(later), ..wider.clone() };
        assert_eq!(store.grants_on(tenant, a.id).await.unwrap(), vec![replaced, revoked, unit]);
        assert_eq!(store.grants_to(tenant, ann, None, 10).await.unwrap(), vec![on_b], "another tenant's revoke changed nothing");
    }

    /// Sharing rules read back equal (rule, schema, unit, access), by name; a rule of the
    /// same name replaces the first; deleting an unknown one is `NotFound`; tenants apart.
    async fn sharing_rules_round_trip(store) {
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let schema = segment_schema();
        let rule = |name: &str, text: &str, access| {
            let mut r = SharingRule::new(name, parse(text).unwrap(), schema.clone(), TeamId::new(), access).unwrap();
            r.created_by = Some(UserId::new());
            r.created_at = t0();
            r
        };
        let vip = rule("vip", r#""vip" in tags and revenue >= 1000"#, Access::Read);
        let auto = rule("auto", r#"attr.industry = "auto" or lifecycle = "active""#, Access::Write);
        store.put_sharing_rule(tenant, &vip).await.unwrap();
        store.put_sharing_rule(tenant, &auto).await.unwrap();
        assert_eq!(store.sharing_rules(tenant).await.unwrap(), vec![auto.clone(), vip.clone()]);
        assert!(store.sharing_rules(other).await.unwrap().is_empty());
        let changed = rule("vip", "revenue > 5000", Access::Write);
        store.put_sharing_rule(tenant, &changed).await.unwrap();
        assert_eq!(store.sharing_rules(tenant).await.unwrap(), vec![auto.clone(), changed]);
        assert!(matches!(store.delete_sharing_rule(other, "vip").await, Err(Error::NotFound { .. })));
        store.delete_sharing_rule(tenant, "vip").await.unwrap();
        assert!(matches!(store.delete_sharing_rule(tenant, "vip").await, Err(Error::NotFound { .. })));
        assert_eq!(store.sharing_rules(tenant).await.unwrap(), vec![auto]);
    }

    /// A departure gives the leaver's grants to the successor in the hand-over's
    /// transaction (the wider access when the successor had one; grants to the unit stay);
    /// a plan whose customer changed meanwhile moves no grant either.
    async fn hand_over_moves_grants(store) {
        use crm_core::handover::{GrantHandOver, HandOver};
        let (crm, _clock) = crm(&store);
        let tenant = TenantId::new();
        let (leaver, successor, boss) = (UserId::new(), UserId::new(), UserId::new());
        let north = TeamId::new();
        let acme = crm.tenant(tenant);
        let a = register(&crm, tenant, Customer::person("A").owner(boss).build().unwrap()).await;
        let b = register(&crm, tenant, Customer::person("B").owner(boss).build().unwrap()).await;
        let owned = register(&crm, tenant, Customer::person("Owned").owner(leaver).build().unwrap()).await;
        let sharing = acme.sharing();
        sharing.share(a.id, Grantee::User(leaver), Access::Write, Some(boss)).await.unwrap();
        sharing.share(b.id, Grantee::User(leaver), Access::Read, Some(boss)).await.unwrap();
        sharing.share(b.id, Grantee::User(successor), Access::Write, Some(boss)).await.unwrap();
        sharing.share(a.id, Grantee::Unit(north), Access::Read, Some(boss)).await.unwrap();

        // A plan that also moves a customer changed since it was read moves nothing.
        let mut stale = HandOver::default();
        stale.grants.push(GrantHandOver {
            from: Grantee::User(leaver),
            grant: grant(a.id, Grantee::User(successor), Access::Write, boss, t0()),
        });
        // Read at a version before the stored one: stale.
        let mut moved = owned.clone();
        moved.owner = Some(successor);
        stale.customers.push(crm_core::handover::CustomerHandOver {
            ownership: crm_core::OwnershipChange { customer: owned.id, from: Some(leaver), to: Some(successor), changed_by: None, reason: None, at: t0(), version: moved.version },
            audit: crm_core::audit::AuditEntry { customer: owned.id, version: moved.version, at: t0(), actor: None, reason: None, change: crm_core::audit::AuditChange::Updated { fields: vec![] } },
            customer: moved,
            expected_version: owned.version - 1,
        });
        let err = store.hand_over(tenant, &stale, WriteOptions::new()).await.unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
        let in_force = |g: &[Grant], who: Grantee| g.iter().filter(|x| x.is_active() && x.grantee == who).map(|x| x.access).collect::<Vec<_>>();
        assert_eq!(in_force(&store.grants_on(tenant, a.id).await.unwrap(), Grantee::User(leaver)), vec![Access::Write], "nothing moved");

        let report = acme.staff().hand_over(leaver, successor, Some(boss), None).await.unwrap();
        assert_eq!((report.customers, report.grants), (1, 2));
        let on_a = store.grants_on(tenant, a.id).await.unwrap();
        assert!(in_force(&on_a, Grantee::User(leaver)).is_empty());
        assert_eq!(in_force(&on_a, Grantee::User(successor)), vec![Access::Write]);
        assert_eq!(in_force(&on_a, Grantee::Unit(north)), vec![Access::Read], "the unit's grant stays");
        let revoked = on_a.iter().find(|g| g.grantee == Grantee::User(leaver)).unwrap();
        assert_eq!(revoked.revoked_by, Some(boss));
        let on_b = store.grants_on(tenant, b.id).await.unwrap();
        assert_eq!(in_force(&on_b, Grantee::User(successor)), vec![Access::Write], "the wider access kept");
        assert!(in_force(&on_b, Grantee::User(leaver)).is_empty());
        assert!(store.grants_to(tenant, leaver, None, 10).await.unwrap().is_empty());
    }

    /// Each entry is logged and counted on its UTC day; an entry that would go above the
    /// limit writes nothing; the log reads newest first, by user and time, within a limit;
    /// daily use is per user, kind and day; tenants are apart; entries read back equal.
    async fn access_is_logged_and_counted_within_the_limit(store) {
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let (ann, bob) = (UserId::new(), UserId::new());
        let entry = |user, kind, count, hours: i64| AccessEntry { user, kind, operation: "customers.search".into(), count, at: t0() + Duration::hours(hours) };
        let e1 = entry(ann, AccessKind::ContactReads, 30, 0);
        assert_eq!(store.record_access(tenant, &e1, Some(50)).await.unwrap(), Some(30));
        let e2 = entry(ann, AccessKind::ContactReads, 20, 1);
        assert_eq!(store.record_access(tenant, &e2, Some(50)).await.unwrap(), Some(50), "up to the limit");
        let over = entry(ann, AccessKind::ContactReads, 1, 2);
        assert_eq!(store.record_access(tenant, &over, Some(50)).await.unwrap(), None);
        let e3 = entry(ann, AccessKind::Exports, 1, 2);
        assert_eq!(store.record_access(tenant, &e3, Some(1)).await.unwrap(), Some(1), "kinds are apart");
        let e4 = entry(bob, AccessKind::ContactReads, 40, 3);
        assert_eq!(store.record_access(tenant, &e4, Some(50)).await.unwrap(), Some(40), "users are apart");
        let next_day = entry(ann, AccessKind::ContactReads, 50, 24);
        assert_eq!(store.record_access(tenant, &next_day, Some(50)).await.unwrap(), Some(50), "a new day");
        let unlimited = entry(bob, AccessKind::ContactReads, 1000, 25);
        assert_eq!(store.record_access(tenant, &unlimited, None).await.unwrap(), Some(1000));
        assert_eq!(store.record_access(other, &over, Some(50)).await.unwrap(), Some(1), "another tenant counts apart");
        let bad = AccessEntry { count: 0, ..e1.clone() };
        assert!(matches!(store.record_access(tenant, &bad, None).await, Err(Error::Validation { .. })));

        let all = store.access_log(tenant, None, t0(), 100).await.unwrap();
        assert_eq!(all, vec![unlimited.clone(), next_day.clone(), e4.clone(), e3.clone(), e2.clone(), e1.clone()]);
        assert_eq!(store.access_log(tenant, Some(ann), t0() + Duration::hours(1), 100).await.unwrap(), vec![next_day.clone(), e3.clone(), e2.clone()]);
        assert_eq!(store.access_log(tenant, None, t0(), 2).await.unwrap(), vec![unlimited.clone(), next_day.clone()]);
        assert_eq!(store.access_log(other, None, t0(), 100).await.unwrap(), vec![over.clone()]);

        let day = t0().date_naive();
        let mut used = store.daily_usage(tenant, day, day).await.unwrap();
        used.sort_by_key(|u| (u.user, u.kind));
        let mut want = vec![
            DailyUsage { user: ann, day, kind: AccessKind::ContactReads, count: 50 },
            DailyUsage { user: ann, day, kind: AccessKind::Exports, count: 1 },
            DailyUsage { user: bob, day, kind: AccessKind::ContactReads, count: 40 },
        ];
        want.sort_by_key(|u| (u.user, u.kind));
        assert_eq!(used, want);
        let both = store.daily_usage(tenant, day, day.succ_opt().unwrap()).await.unwrap();
        assert_eq!(both.len(), 5);
        assert!(store.daily_usage(other, day.succ_opt().unwrap(), day.succ_opt().unwrap()).await.unwrap().is_empty());
    }

    /// Twenty concurrent takers of one each under a limit of ten: exactly ten succeed, and
    /// the day's use and the log say ten.
    async fn concurrent_takers_never_pass_the_limit(store) {
        let tenant = TenantId::new();
        let ann = UserId::new();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let e = AccessEntry { user: ann, kind: AccessKind::ContactReads, operation: "customers.get".into(), count: 1, at: t0() + Duration::seconds(i) };
                store.record_access(tenant, &e, Some(10)).await.unwrap()
            }));
        }
        let mut taken = 0;
        for t in tasks {
            if t.await.unwrap().is_some() {
                taken += 1;
            }
        }
        assert_eq!(taken, 10);
        let day = t0().date_naive();
        assert_eq!(store.daily_usage(tenant, day, day).await.unwrap()[0].count, 10);
        assert_eq!(store.access_log(tenant, Some(ann), t0(), 100).await.unwrap().len(), 10);
    }

    /// A random organisation, customers, roles, grants and sharing rules: for every
    /// principal, a scoped preview (the principal's reach compiled into the adapter's
    /// query) counts and lists exactly the customers the rule matches that the principal
    /// reads record by record (the core's check against the record), no more, no less.
    async fn scoped_previews_match_record_by_record_reads(store) {
        use crm_core::access::{Action, Org, RecordKind, Role, Scope};
        let mut gen = Generator::new(1515);
        let tenant = TenantId::new();
        let mut org = Org::new();
        let units: Vec<TeamId> = (0..5).map(|_| TeamId::new()).collect();
        for (i, u) in units.iter().enumerate() {
            let parent = (i > 0).then(|| units[gen.below(i as u64) as usize]);
            org.add_unit(*u, &format!("Unit {i}"), parent).unwrap();
        }
        let users: Vec<UserId> = (0..12).map(|_| UserId::new()).collect();
        for (i, u) in users.iter().enumerate() {
            let unit = (gen.below(6) > 0).then(|| *gen.pick(&units));
            let manager = (i > 0 && gen.below(3) > 0).then(|| users[gen.below(i as u64) as usize]);
            org.add_user(*u, unit, manager).unwrap();
        }
        let directory = Arc::new(StaticDirectory::new());
        directory.set_org(tenant, org);
        let crm = Crm::new(store.clone())
            .with_clock(Arc::new(ManualClock::new(t0())))
            .with_directory(directory);
        let system = crm.tenant(tenant);
        let mut customers = Vec::new();
        for i in 0..80 {
            let mut b = Customer::person(&format!("C{i}"));
            if gen.below(10) > 0 {
                b = b.owner(*gen.pick(&users));
            }
            if gen.below(2) == 0 {
                b = b.team(*gen.pick(&units));
            }
            for tag in ["vip", "gold"] {
                if gen.below(3) == 0 {
                    b = b.tag(tag);
                }
            }
            customers.push(system.customers().register(b.build().unwrap()).await.unwrap());
        }
        // Organisations with people related to them, for a sharing rule over accounts.
        let mut firms = Vec::new();
        for i in 0..6 {
            let mut b = Customer::organization(&format!("Firm {i}"));
            if gen.below(2) == 0 {
                b = b.owner(*gen.pick(&users));
            }
            firms.push(system.customers().register(b.build().unwrap()).await.unwrap());
        }
        for _ in 0..14 {
            let (firm, person) = (gen.pick(&firms).id, gen.pick(&customers).id);
            let mut link = crm_core::sales::Relationship::new(firm, person, t0());
            link.primary = gen.below(2) == 0;
            system.accounts().relate(link).await.unwrap();
        }
        customers.extend(firms);
        for _ in 0..15 {
            let c = gen.pick(&customers).id;
            let to = if gen.below(2) == 0 { Grantee::User(*gen.pick(&users)) } else { Grantee::Unit(*gen.pick(&units)) };
            let access = if gen.below(2) == 0 { Access::Read } else { Access::Write };
            system.sharing().share(c, to, access, None).await.unwrap();
        }
        let schema = segment_schema();
        for (name, text, access) in [
            ("vips", r#""vip" in tags"#, Access::Read),
            ("gold", r#""gold" in tags and team is null"#, Access::Write),
            ("accounts", r#"contacts_count >= 3 or account.id is not null and "vip" in tags"#, Access::Read),
        ] {
            let rule = SharingRule::new(name, parse(text).unwrap(), schema.clone(), *gen.pick(&units), access).unwrap();
            system.sharing().put_rule(rule, None).await.unwrap();
        }
        let scopes = [Scope::Own, Scope::OwnAndSubordinates, Scope::Unit, Scope::UnitAndDescendants, Scope::All];
        let rules = [r#""gold" in tags or name starts_with "C1""#, "interaction_count = 0"];
        for round in 0..12 {
            let user = *gen.pick(&users);
            let mut roles = vec![Role::new("r").unwrap().allow(RecordKind::Customers, Action::Read, *gen.pick(&scopes))];
            if round % 3 == 0 {
                roles.push(Role::new("w").unwrap().allow(RecordKind::Customers, Action::Write, *gen.pick(&scopes)));
            }
            if round == 11 {
                roles.clear(); // no role: only grants and sharing rules
            }
            let h = system.as_user(user, &roles).await.unwrap();
            for text in rules {
                let rule = parse(text).unwrap();
                // The reach must go into the query, not fall back to filtering.
                let reach = h.principal().unwrap().customer_rule(RecordKind::Customers, Action::Read).unwrap();
                if let Some(r) = &reach {
                    schema.check(&crm_core::segment::Rule::and(rule.clone(), r.clone())).unwrap();
                }
                let (all, everyone) = system.segments().preview(&rule, &schema, &PageRequest::first(1000)).await.unwrap();
                assert_eq!(all as usize, everyone.items.len());
                let mut expected = Vec::new();
                for id in &everyone.items {
                    if h.customers().get(*id).await.is_ok() {
                        expected.push(*id);
                    }
                }
                let (count, page) = h.segments().preview(&rule, &schema, &PageRequest::first(1000)).await.unwrap();
                assert_eq!(page.items, expected, "round {round}, rule {text}");
                assert_eq!(count as usize, expected.len(), "round {round}, rule {text}");
            }
        }
    }
}
