//! Conformance cases: per-record grants and sharing rules.

use super::*;
use crm_core::access::{Access, Grant, Grantee, SharingRule};

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
}
