use super::*;

/// Sales (head) with two units below it, North (lead, two reps) and South (one rep); a
/// finance unit apart.
struct Company {
    org: Org,
    sales: TeamId,
    north: TeamId,
    south: TeamId,
    finance: TeamId,
    head: UserId,
    lead: UserId,
    reps: [UserId; 3],
    clerk: UserId,
}

fn company() -> Company {
    let (sales, north, south, finance) =
        (TeamId::new(), TeamId::new(), TeamId::new(), TeamId::new());
    let (head, lead, clerk) = (UserId::new(), UserId::new(), UserId::new());
    let reps = [UserId::new(), UserId::new(), UserId::new()];
    let mut org = Org::new();
    org.add_unit(sales, "Sales", None).unwrap();
    org.add_unit(north, "North", Some(sales)).unwrap();
    org.add_unit(south, "South", Some(sales)).unwrap();
    org.add_unit(finance, "Finance", None).unwrap();
    org.add_user(head, Some(sales), None).unwrap();
    org.add_user(lead, Some(north), Some(head)).unwrap();
    org.add_user(reps[0], Some(north), Some(lead)).unwrap();
    org.add_user(reps[1], Some(north), Some(lead)).unwrap();
    org.add_user(reps[2], Some(south), Some(head)).unwrap();
    org.add_user(clerk, Some(finance), None).unwrap();
    Company {
        org,
        sales,
        north,
        south,
        finance,
        head,
        lead,
        reps,
        clerk,
    }
}

fn owned_by(owner: Option<UserId>, team: Option<TeamId>) -> Customer {
    let mut c = Customer::person("Ann").build().unwrap();
    c.owner = owner;
    c.team = team;
    c
}

fn reading(scope: Scope) -> Role {
    Role::new("r")
        .unwrap()
        .allow(RecordKind::Customers, Action::Read, scope)
}

#[test]
fn each_scope_reaches_what_its_name_says() {
    let co = company();
    let [a, b, c] = co.reps;
    let records = [
        ("a's", owned_by(Some(a), None)),
        ("b's", owned_by(Some(b), None)),
        ("c's", owned_by(Some(c), None)),
        ("lead's", owned_by(Some(co.lead), None)),
        ("head's", owned_by(Some(co.head), None)),
        ("clerk's", owned_by(Some(co.clerk), None)),
        ("north's", owned_by(None, Some(co.north))),
        ("sales'", owned_by(None, Some(co.sales))),
        ("finance's", owned_by(None, Some(co.finance))),
        ("pool", owned_by(None, None)),
    ];
    let sees = |user: UserId, scope: Scope| -> Vec<&str> {
        let v = Visibility::resolve(&co.org, user, &[reading(scope)]);
        records
            .iter()
            .filter(|(_, r)| v.permits_customer(Action::Read, r))
            .map(|(n, _)| *n)
            .collect()
    };
    assert_eq!(sees(a, Scope::Own), ["a's"]);
    assert_eq!(
        sees(co.lead, Scope::OwnAndSubordinates),
        ["a's", "b's", "lead's"]
    );
    assert_eq!(
        sees(co.head, Scope::OwnAndSubordinates),
        ["a's", "b's", "c's", "lead's", "head's"]
    );
    assert_eq!(sees(a, Scope::Unit), ["a's", "b's", "lead's", "north's"]);
    assert_eq!(sees(co.head, Scope::Unit), ["head's", "sales'"]);
    assert_eq!(
        sees(co.head, Scope::UnitAndDescendants),
        ["a's", "b's", "c's", "lead's", "head's", "north's", "sales'"]
    );
    assert_eq!(sees(co.clerk, Scope::All).len(), records.len());
    // A user the organisation does not know reaches their own records only.
    let stranger = UserId::new();
    let theirs = owned_by(Some(stranger), None);
    let v = Visibility::resolve(&co.org, stranger, &[reading(Scope::UnitAndDescendants)]);
    assert!(v.permits_customer(Action::Read, &theirs));
    assert!(!records
        .iter()
        .any(|(_, r)| v.permits_customer(Action::Read, r)));
}

#[test]
fn no_role_reaches_nothing_and_roles_only_widen() {
    let co = company();
    let [a, b, _] = co.reps;
    let mine = owned_by(Some(a), None);
    let colleagues = owned_by(Some(b), None);
    let none = Visibility::resolve(&co.org, a, &[]);
    assert!(!none.permits_customer(Action::Read, &mine));
    assert_eq!(
        none.reach(RecordKind::Customers, Action::Read),
        &Reach::Nothing
    );
    let writer = Role::new("w")
        .unwrap()
        .allow(RecordKind::Customers, Action::Write, Scope::Own);
    let both = Visibility::resolve(&co.org, a, &[reading(Scope::Unit), writer.clone()]);
    assert!(both.permits_customer(Action::Read, &colleagues));
    assert!(!both.permits_customer(Action::Write, &colleagues));
    assert!(both.permits_customer(Action::Write, &mine));
    // The order of roles does not matter, and a narrower role does not narrow a wider one.
    let other_order = Visibility::resolve(&co.org, a, &[writer, reading(Scope::Unit)]);
    assert_eq!(both, other_order);
    let narrow_too = Visibility::resolve(&co.org, a, &[reading(Scope::Unit), reading(Scope::Own)]);
    assert!(narrow_too.permits_customer(Action::Read, &colleagues));
    // Kinds are apart: customers' scopes say nothing of cases.
    assert_eq!(both.reach(RecordKind::Cases, Action::Read), &Reach::Nothing);
}

#[test]
fn contacts_are_masked_only_when_every_reading_role_masks() {
    let co = company();
    let a = co.reps[0];
    let masked = reading(Scope::Own).masking_contacts();
    assert!(Visibility::resolve(&co.org, a, std::slice::from_ref(&masked)).masks_contacts());
    assert!(!Visibility::resolve(&co.org, a, &[masked, reading(Scope::Unit)]).masks_contacts());
    assert!(!Visibility::resolve(&co.org, a, &[]).masks_contacts());
}

#[test]
fn the_organisation_refuses_loops_unknown_parents_and_depth() {
    let co = company();
    let mut org = co.org.clone();
    let err = org.add_unit(co.sales, "Sales", Some(co.north)).unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "parent"),
        "{err}"
    );
    let err = org
        .add_unit(TeamId::new(), "X", Some(TeamId::new()))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "parent"),
        "{err}"
    );
    let err = org
        .add_user(co.head, Some(co.sales), Some(co.reps[0]))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "manager"),
        "{err}"
    );
    let err = org
        .add_user(co.head, Some(co.sales), Some(co.head))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "manager"),
        "{err}"
    );
    let err = org
        .add_user(UserId::new(), Some(TeamId::new()), None)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "unit"),
        "{err}"
    );
    assert_eq!(org, co.org, "refused changes change nothing");
    // A chain of units exactly as deep as allowed, and not one more.
    let mut deep = Org::new();
    let mut parent = None;
    for _ in 0..Org::MAX_DEPTH {
        let id = TeamId::new();
        deep.add_unit(id, "u", parent).unwrap();
        parent = Some(id);
    }
    let err = deep.add_unit(TeamId::new(), "u", parent).unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "parent"),
        "{err}"
    );
    // The same for managers; hanging a chain under another counts both.
    let mut chain = Org::new();
    let mut boss = None;
    let mut first = None;
    for _ in 0..Org::MAX_DEPTH {
        let id = UserId::new();
        chain.add_user(id, None, boss).unwrap();
        first.get_or_insert(id);
        boss = Some(id);
    }
    let err = chain.add_user(UserId::new(), None, boss).unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "manager"),
        "{err}"
    );
    let top = first.unwrap();
    let other = UserId::new();
    chain.add_user(other, None, None).unwrap();
    let err = chain.add_user(top, None, Some(other)).unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "manager"),
        "{err}"
    );
}

#[test]
fn chains_and_descendants_are_walked_without_the_root() {
    let co = company();
    assert_eq!(co.org.manager_chain(co.reps[0]), [co.lead, co.head]);
    assert!(co.org.manager_chain(co.head).is_empty());
    assert_eq!(
        co.org.subordinates(co.head),
        BTreeSet::from([co.lead, co.reps[0], co.reps[1], co.reps[2]])
    );
    assert!(co.org.subordinates(co.clerk).is_empty());
    assert_eq!(
        co.org.unit_and_descendants(co.sales),
        BTreeSet::from([co.sales, co.north, co.south])
    );
    assert_eq!(
        co.org.unit_and_descendants(co.finance),
        BTreeSet::from([co.finance])
    );
}

#[test]
fn a_deserialised_loop_cannot_hang_a_walk() {
    // Serde does not go through the builder: a host's stored organisation may hold a loop.
    let (a, b) = (UserId::new(), UserId::new());
    let (x, y) = (TeamId::new(), TeamId::new());
    let json = serde_json::json!({
        "units": { x.to_string(): {"name": "X", "parent": y}, y.to_string(): {"name": "Y", "parent": x} },
        "users": { a.to_string(): {"unit": x, "manager": b}, b.to_string(): {"unit": y, "manager": a} },
    });
    let org: Org = serde_json::from_value(json).unwrap();
    assert_eq!(org.manager_chain(a), [b]);
    assert_eq!(org.subordinates(a), BTreeSet::from([b]));
    assert_eq!(org.unit_and_descendants(x), BTreeSet::from([x, y]));
    let v = Visibility::resolve(&org, a, &[reading(Scope::UnitAndDescendants)]);
    assert!(v.permits_customer(Action::Read, &owned_by(Some(b), None)));
}

#[test]
fn roles_check_their_names_and_round_trip() {
    assert!(matches!(Role::new(""), Err(Error::Validation { field, .. }) if field == "name"));
    assert!(Role::new(&"x".repeat(101)).is_err());
    assert!(Role::new("a\u{7}b").is_err());
    let role = Role::new("unit head")
        .unwrap()
        .allow(
            RecordKind::Customers,
            Action::Read,
            Scope::UnitAndDescendants,
        )
        .allow(RecordKind::Cases, Action::Write, Scope::Unit)
        .allow(RecordKind::Customers, Action::Read, Scope::Unit)
        .masking_contacts();
    assert_eq!(
        role.scope(RecordKind::Customers, Action::Read),
        Some(Scope::Unit)
    );
    assert_eq!(
        role.allows.len(),
        2,
        "a later allow replaces the earlier one"
    );
    let json = serde_json::to_string(&role).unwrap();
    assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
    let mut many = role;
    many.allows = vec![many.allows[0]; Role::MAX_ALLOWS + 1];
    assert!(matches!(many.validate(), Err(Error::Validation { field, .. }) if field == "allows"));
}

#[tokio::test]
async fn a_directory_hands_out_the_tenant_organisation() {
    use crate::notify::StaticDirectory;
    let co = company();
    let (acme, beta) = (TenantId::new(), TenantId::new());
    let directory = StaticDirectory::new();
    directory.set_org(acme, co.org.clone());
    let theirs = owned_by(Some(co.reps[0]), None);
    let roles = [reading(Scope::OwnAndSubordinates)];
    let at_acme = Visibility::of(&directory, acme, co.lead, &roles)
        .await
        .unwrap();
    assert!(at_acme.permits_customer(Action::Read, &theirs));
    // Another tenant's organisation is empty: the lead has no subordinates there.
    let at_beta = Visibility::of(&directory, beta, co.lead, &roles)
        .await
        .unwrap();
    assert!(!at_beta.permits_customer(Action::Read, &theirs));
}

fn granted(customer: &Customer, grantee: Grantee, access: Access, revoked: bool) -> Grant {
    let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    Grant {
        customer: customer.id,
        grantee,
        access,
        granted_by: None,
        granted_at: at,
        revoked_by: None,
        revoked_at: revoked.then_some(at),
    }
}

#[test]
fn grants_in_force_to_the_principal_or_its_unit_widen_it() {
    let co = company();
    let [a, b, c] = co.reps;
    let (x, y, z, w) = (
        owned_by(Some(c), None),
        owned_by(Some(c), None),
        owned_by(Some(c), None),
        owned_by(Some(c), None),
    );
    let grants = [
        granted(&x, Grantee::User(a), Access::Read, false),
        granted(&x, Grantee::Unit(co.north), Access::Write, false),
        granted(&y, Grantee::User(a), Access::Write, true),
        granted(&z, Grantee::User(b), Access::Write, false),
        granted(&w, Grantee::Unit(co.south), Access::Read, false),
    ];
    let v = Visibility::resolve(&co.org, a, &[reading(Scope::Own)])
        .with_grants(&grants)
        .unwrap();
    assert_eq!(v.granted(x.id), Some(Access::Write), "the wider of two");
    assert_eq!(v.granted(y.id), None, "revoked");
    assert_eq!(v.granted(z.id), None, "someone else's");
    assert_eq!(v.granted(w.id), None, "another unit's");
    assert!(v.permits_customer(Action::Write, &x));
    assert!(v.permits(RecordKind::Interactions, Action::Read, &x));
    assert!(
        !v.permits(RecordKind::Cases, Action::Read, &x),
        "cases are not widened"
    );
    assert!(
        !v.permits_customer(Action::Transfer, &x),
        "only roles transfer"
    );
    assert!(!v.permits_customer(Action::Read, &y));
}

#[test]
fn sharing_rules_apply_to_their_unit_only() {
    use crate::segment::{parse, FieldSchema};
    let co = company();
    let [a, _, c] = co.reps;
    let schema = FieldSchema::new(crate::value::Currency::parse("EUR").unwrap());
    let rule = |unit| {
        SharingRule::new(
            "r",
            parse(r#""vip" in tags"#).unwrap(),
            schema.clone(),
            unit,
            Access::Read,
        )
        .unwrap()
    };
    let mut vip = owned_by(Some(co.head), None);
    vip.tags.insert(crate::value::Tag::parse("vip").unwrap());
    let profile = crate::profile::Profile::default();
    let subject = crate::segment::Subject {
        customer: &vip,
        profile: &profile,
        scores: None,
        classes: None,
        sales: None,
    };
    let now = chrono::Utc::now();
    let north = Visibility::resolve(&co.org, a, &[])
        .with_sharing_rules(&[rule(co.north)])
        .unwrap();
    assert!(north.shares(RecordKind::Customers, Action::Read));
    assert!(!north.shares(RecordKind::Customers, Action::Write));
    assert!(north.shared(RecordKind::Customers, Action::Read, &subject, now));
    assert!(!north.shared(RecordKind::Cases, Action::Read, &subject, now));
    let south = Visibility::resolve(&co.org, c, &[])
        .with_sharing_rules(&[rule(co.north)])
        .unwrap();
    assert!(!south.shares(RecordKind::Customers, Action::Read));
    assert!(!south.shared(RecordKind::Customers, Action::Read, &subject, now));
    assert!(SharingRule::new(
        "",
        parse("revenue > 1").unwrap(),
        schema.clone(),
        co.north,
        Access::Read
    )
    .is_err());
    assert!(SharingRule::new(
        "r",
        parse("attr.nope = 1").unwrap(),
        schema,
        co.north,
        Access::Read
    )
    .is_err());
}

#[test]
fn pool_customers_are_masked_for_every_principal() {
    let co = company();
    let a = co.reps[0];
    let v = Visibility::resolve(&co.org, a, &[reading(Scope::All)]);
    assert!(v.masks(&owned_by(None, Some(co.north))));
    assert!(!v.masks(&owned_by(Some(a), None)));
    let masked = Visibility::resolve(&co.org, a, &[reading(Scope::All).masking_contacts()]);
    assert!(masked.masks(&owned_by(Some(a), None)));
}

#[test]
fn daily_limits_widen_like_roles() {
    let co = company();
    let a = co.reps[0];
    let limited = |n| reading(Scope::Own).limit_per_day(AccessKind::ContactReads, n);
    let v = Visibility::resolve(&co.org, a, &[limited(10), limited(30)]);
    assert_eq!(
        v.daily_limit(AccessKind::ContactReads),
        Some(30),
        "the largest"
    );
    let v = Visibility::resolve(&co.org, a, &[limited(10), reading(Scope::Own)]);
    assert_eq!(
        v.daily_limit(AccessKind::ContactReads),
        None,
        "a role without a limit"
    );
    let writer_only =
        Role::new("w")
            .unwrap()
            .allow(RecordKind::Customers, Action::Write, Scope::Own);
    let v = Visibility::resolve(&co.org, a, &[limited(10), writer_only]);
    assert_eq!(
        v.daily_limit(AccessKind::ContactReads),
        Some(10),
        "a role that reads nothing does not widen"
    );
    assert_eq!(v.daily_limit(AccessKind::Exports), None, "nobody exports");
}

#[test]
fn unusual_access_is_far_above_the_median_day() {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 30).unwrap();
    let (steady, rare, quiet) = (UserId::new(), UserId::new(), UserId::new());
    let mut usage = Vec::new();
    let use_on = |user, back: u64, count| DailyUsage {
        user,
        day: day - chrono::Days::new(back),
        kind: AccessKind::ContactReads,
        count,
    };
    for back in 1..=28 {
        usage.push(use_on(steady, back, 40));
    }
    for back in [3, 9] {
        usage.push(use_on(rare, back, 500)); // two busy days: the median day is still 0
    }
    usage.push(use_on(steady, 0, 121)); // above 3 x 40
    usage.push(use_on(rare, 0, 60));
    usage.push(use_on(quiet, 0, 49)); // below the minimum
    usage.push(use_on(steady, 40, 100_000)); // outside the window
    let rule = UnusualRule::default();
    let found = unusual_access(&usage, day, &rule).unwrap();
    let who: Vec<_> = found.iter().map(|u| (u.user, u.count, u.usual)).collect();
    assert_eq!(who, vec![(steady, 121, 40.0), (rare, 60, 0.0)]);
    usage.push(use_on(steady, 0, -1i64 as u64 - 200)); // saturates, no overflow
    assert_eq!(unusual_access(&usage, day, &rule).unwrap()[0].user, steady);
    let exactly = UnusualRule {
        factor: 121.0 / 40.0,
        ..rule
    };
    assert!(
        unusual_access(&usage[..usage.len() - 1], day, &exactly)
            .unwrap()
            .iter()
            .all(|u| u.user != steady),
        "more than, not as much as"
    );
    assert!(UnusualRule {
        lookback_days: 0,
        ..rule
    }
    .validate()
    .is_err());
    for bad in [0, u32::MAX] {
        let rule = UnusualRule {
            lookback_days: bad,
            ..rule
        };
        // Refused: not an index into an empty window, nor a window of billions of days.
        assert!(unusual_access(&usage, day, &rule).is_err());
    }
    assert!(UnusualRule {
        factor: f64::NAN,
        ..rule
    }
    .validate()
    .is_err());
}
