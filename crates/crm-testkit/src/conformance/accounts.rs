//! Conformance cases: accounts, the people related to them, the organisation hierarchy;
//! merges, erasures and transfers of accounts.

use super::*;
use crm_core::merge::MergePolicy;
use crm_core::sales::{
    ContactRole, Relationship, RelationshipQuery, MAX_ACCOUNTS_PER_PERSON, MAX_HIERARCHY_DEPTH,
};

fn org(name: &str) -> Customer {
    Customer::organization(name).build().expect("valid name")
}

async fn orgs(crm: &Crm, tenant: TenantId, n: usize) -> Vec<Customer> {
    crm.tenant(tenant)
        .customers()
        .register_many((0..n).map(|i| org(&format!("Org {i}"))).collect())
        .await
        .expect("register")
}

async fn listed(
    store: &Arc<dyn Storage>,
    tenant: TenantId,
    query: RelationshipQuery,
) -> Vec<Relationship> {
    collect_pages(1, |page| async move {
        store.relationships(tenant, &query, &page).await
    })
    .await
}

async fn children(store: &Arc<dyn Storage>, tenant: TenantId, id: CustomerId) -> Vec<CustomerId> {
    collect_pages(2, |page| async move {
        store.subsidiaries(tenant, id, &page).await
    })
    .await
}

fn sorted(mut ids: Vec<CustomerId>) -> Vec<CustomerId> {
    ids.sort();
    ids
}

cases! {
    /// Relationships round-trip every field, are listed from either side in key order,
    /// are replaced per pair, keep one primary per person, and are removed; parties must
    /// exist, be of the right kind, and a person has a bounded number of accounts.
    async fn relationships_round_trip_with_one_primary(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let accounts = crm.tenant(tenant).accounts();
        let (a, b) = (register(&crm, tenant, org("Acme")).await, register(&crm, tenant, org("Bolt")).await);
        let (p, q) = (register(&crm, tenant, simple("Pat")).await, register(&crm, tenant, simple("Quinn")).await);
        let day = |d| chrono::NaiveDate::from_ymd_opt(2025, 1, d).unwrap();
        let first = Relationship::new(a.id, p.id, t0())
            .role(ContactRole::DecisionMaker)
            .role(ContactRole::Billing)
            .title("Head of purchasing").unwrap()
            .primary()
            .valid(Some(day(2)), Some(day(30))).unwrap();
        let stored = accounts.relate(first.clone()).await.unwrap();
        assert_eq!(stored, first);
        assert_eq!(listed(&store, tenant, RelationshipQuery::Contacts(a.id)).await, vec![first.clone()]);
        accounts.relate(Relationship::new(a.id, q.id, t0())).await.unwrap();
        let contacts = listed(&store, tenant, RelationshipQuery::Contacts(a.id)).await;
        assert_eq!(contacts.iter().map(|r| r.person).collect::<Vec<_>>(), sorted(vec![p.id, q.id]));

        // A second primary account takes the flag from the first.
        let second = accounts.relate(Relationship::new(b.id, p.id, t0()).primary()).await.unwrap();
        let mine = listed(&store, tenant, RelationshipQuery::Accounts(p.id)).await;
        assert_eq!(mine.iter().map(|r| r.organization).collect::<Vec<_>>(), sorted(vec![a.id, b.id]));
        let flags: Vec<(CustomerId, bool)> = mine.iter().map(|r| (r.organization, r.primary)).collect();
        assert!(flags.contains(&(a.id, false)) && flags.contains(&(b.id, true)), "{flags:?}");
        assert_eq!(accounts.primary_account(p.id).await.unwrap(), Some(second));

        // Stored again: replaced, not doubled.
        let renamed = Relationship { title: Some("CFO".into()), ..first.clone() };
        accounts.relate(renamed).await.unwrap();
        let again = listed(&store, tenant, RelationshipQuery::Contacts(a.id)).await;
        assert_eq!(again.len(), 2);
        assert_eq!(again.iter().find(|r| r.person == p.id).unwrap().title.as_deref(), Some("CFO"));

        accounts.unrelate(a.id, q.id).await.unwrap();
        assert_not_found(accounts.unrelate(a.id, q.id).await, "removed twice");
        assert_eq!(listed(&store, tenant, RelationshipQuery::Contacts(a.id)).await.len(), 1);

        assert_not_found(store.put_relationship(tenant, &Relationship::new(CustomerId::new(), p.id, t0())).await, "unknown organisation");
        assert_not_found(store.put_relationship(tenant, &Relationship::new(a.id, CustomerId::new(), t0())).await, "unknown person");
        assert_eq!(accounts.relate(Relationship::new(p.id, q.id, t0())).await.unwrap_err().field(), Some("organization"));
        assert_eq!(accounts.relate(Relationship::new(a.id, b.id, t0())).await.unwrap_err().field(), Some("person"));
        assert!(listed(&store, TenantId::new(), RelationshipQuery::Contacts(a.id)).await.is_empty());

        // The bound on a person's accounts: two taken, the rest up to the limit, one more refused.
        let more = orgs(&crm, tenant, MAX_ACCOUNTS_PER_PERSON - 1).await;
        for o in &more[..MAX_ACCOUNTS_PER_PERSON - 2] {
            store.put_relationship(tenant, &Relationship::new(o.id, p.id, t0())).await.unwrap();
        }
        let over = store.put_relationship(tenant, &Relationship::new(more[MAX_ACCOUNTS_PER_PERSON - 2].id, p.id, t0())).await;
        assert_eq!(over.unwrap_err().field(), Some("person"));
        store.put_relationship(tenant, &first).await.unwrap();
        assert_eq!(listed(&store, tenant, RelationshipQuery::Accounts(p.id)).await.len(), MAX_ACCOUNTS_PER_PERSON);
    }

    /// Parents form a hierarchy without cycles and at most `MAX_HIERARCHY_DEPTH` levels;
    /// lines and subsidiaries read it back.
    async fn hierarchies_refuse_cycles_and_depth(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let accounts = crm.tenant(tenant).accounts();
        let chain = orgs(&crm, tenant, MAX_HIERARCHY_DEPTH + 1).await;
        let ids: Vec<CustomerId> = chain.iter().map(|c| c.id).collect();
        // ids[i] under ids[i + 1], up to the limit
        for i in 0..MAX_HIERARCHY_DEPTH - 1 {
            accounts.set_parent(ids[i], Some(ids[i + 1])).await.unwrap();
        }
        let top = MAX_HIERARCHY_DEPTH - 1;
        assert_eq!(accounts.line(ids[0]).await.unwrap(), ids[1..=top].to_vec());
        assert!(accounts.line(ids[top]).await.unwrap().is_empty());
        let deeper = accounts.set_parent(ids[top], Some(ids[top + 1])).await;
        assert_eq!(deeper.unwrap_err().field(), Some("parent"), "one level too many");
        let cycle = accounts.set_parent(ids[top], Some(ids[0])).await;
        assert_eq!(cycle.unwrap_err().field(), Some("parent"), "a cycle");
        assert_eq!(accounts.set_parent(ids[3], Some(ids[3])).await.unwrap_err().field(), Some("parent"));
        assert!(accounts.line(ids[top]).await.unwrap().is_empty(), "nothing stored by a refusal");

        // Moving a branch: ids[0..2] under ids[top + 1] (a line of three levels is fine).
        accounts.set_parent(ids[1], Some(ids[top + 1])).await.unwrap();
        assert_eq!(accounts.line(ids[0]).await.unwrap(), vec![ids[1], ids[top + 1]]);
        assert_eq!(children(&store, tenant, ids[top + 1]).await, vec![ids[1]]);
        assert!(children(&store, tenant, ids[2]).await.is_empty());
        let (x, y) = (register(&crm, tenant, org("X")).await, register(&crm, tenant, org("Y")).await);
        accounts.set_parent(x.id, Some(ids[top + 1])).await.unwrap();
        accounts.set_parent(y.id, Some(ids[top + 1])).await.unwrap();
        assert_eq!(children(&store, tenant, ids[top + 1]).await, sorted(vec![ids[1], x.id, y.id]));
        accounts.set_parent(x.id, None).await.unwrap();
        assert_eq!(children(&store, tenant, ids[top + 1]).await, sorted(vec![ids[1], y.id]));

        let person = register(&crm, tenant, simple("Pat")).await;
        assert_eq!(accounts.set_parent(x.id, Some(person.id)).await.unwrap_err().field(), Some("parent"));
        assert_eq!(accounts.set_parent(person.id, Some(x.id)).await.unwrap_err().field(), Some("organization"));
        assert_not_found(store.set_parent(tenant, x.id, Some(CustomerId::new())).await, "unknown parent");
        assert_not_found(store.set_parent(tenant, CustomerId::new(), None).await, "unknown organisation");
        assert!(store.account_line(TenantId::new(), ids[0]).await.unwrap().is_empty());
    }

    /// A merge moves relationships and subsidiaries to the survivor (its own pairs and
    /// primary kept; the parent taken over when it had none); merging organisations in one
    /// line is refused with nothing changed; an erasure removes the person's titles.
    async fn merges_and_erasures_reach_accounts(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let accounts = crm.tenant(tenant).accounts();
        let s = register(&crm, tenant, org("Acme")).await;
        let g = register(&crm, tenant, org("ACME Ltd")).await;
        let (parent, sub) = (register(&crm, tenant, org("Holding")).await, register(&crm, tenant, org("Branch")).await);
        let (p, q, r) = (
            register(&crm, tenant, simple("Pat")).await,
            register(&crm, tenant, simple("Quinn")).await,
            register(&crm, tenant, simple("Robin")).await,
        );
        accounts.relate(Relationship::new(s.id, q.id, t0()).role(ContactRole::Technical).primary()).await.unwrap();
        accounts.relate(Relationship::new(g.id, q.id, t0()).role(ContactRole::Billing)).await.unwrap();
        accounts.relate(Relationship::new(g.id, p.id, t0()).title("Buyer").unwrap().primary()).await.unwrap();
        accounts.set_parent(g.id, Some(parent.id)).await.unwrap();
        accounts.set_parent(sub.id, Some(g.id)).await.unwrap();

        // One line: the survivor's subsidiary cannot be merged into it.
        let refused = crm.tenant(tenant).customers().merge(g.id, &[sub.id], &MergePolicy::default(), false).await;
        assert_eq!(refused.unwrap_err().field(), Some("merged"));
        assert_eq!(store.account_line(tenant, sub.id).await.unwrap(), vec![g.id, parent.id], "nothing moved");
        store.get_customer(tenant, sub.id).await.unwrap();

        crm.tenant(tenant).customers().merge(s.id, &[g.id], &MergePolicy::default(), false).await.unwrap();
        let contacts = listed(&store, tenant, RelationshipQuery::Contacts(s.id)).await;
        assert_eq!(contacts.iter().map(|c| c.person).collect::<Vec<_>>(), sorted(vec![p.id, q.id]));
        let quinn = contacts.iter().find(|c| c.person == q.id).unwrap();
        assert_eq!(quinn.roles.iter().copied().collect::<Vec<_>>(), vec![ContactRole::Technical], "the survivor's own pair kept");
        assert!(quinn.primary);
        let pat = contacts.iter().find(|c| c.person == p.id).unwrap();
        assert!(pat.primary && pat.title.as_deref() == Some("Buyer"));
        assert!(listed(&store, tenant, RelationshipQuery::Contacts(g.id)).await.is_empty());
        assert_eq!(listed(&store, tenant, RelationshipQuery::Accounts(q.id)).await.len(), 1);
        assert_eq!(store.account_line(tenant, s.id).await.unwrap(), vec![parent.id]);
        assert_eq!(store.account_line(tenant, sub.id).await.unwrap(), vec![s.id, parent.id]);
        assert_eq!(children(&store, tenant, s.id).await, vec![sub.id]);
        assert!(children(&store, tenant, g.id).await.is_empty());

        // A person merged into another keeps one primary account: the survivor's.
        accounts.relate(Relationship::new(sub.id, r.id, t0()).primary()).await.unwrap();
        crm.tenant(tenant).customers().merge(q.id, &[r.id], &MergePolicy::default(), false).await.unwrap();
        let quinns = listed(&store, tenant, RelationshipQuery::Accounts(q.id)).await;
        assert_eq!(quinns.len(), 2);
        let primaries: Vec<CustomerId> = quinns.iter().filter(|r| r.primary).map(|r| r.organization).collect();
        assert_eq!(primaries, vec![s.id]);

        // An export lists the relationships from either side.
        let privacy = crm.tenant(tenant).privacy();
        let mine = listed(&store, tenant, RelationshipQuery::Accounts(p.id)).await;
        assert_eq!(privacy.export(p.id).await.unwrap().relationships, mine);
        let theirs = listed(&store, tenant, RelationshipQuery::Contacts(s.id)).await;
        assert_eq!(privacy.export(s.id).await.unwrap().relationships, theirs);

        // Erasure: the title goes, the link stays.
        let pat = store.get_customer(tenant, p.id).await.unwrap();
        crm.tenant(tenant).privacy().erase(p.id, pat.version).await.unwrap();
        let after = listed(&store, tenant, RelationshipQuery::Accounts(p.id)).await;
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].title, None);
        assert!(after[0].primary);
    }

    /// An account's timeline interleaves the organisation's interactions with those of
    /// the people related to it, newest first across pages; its profile adds theirs up.
    async fn account_timelines_and_profiles_include_contacts(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let accounts = crm.tenant(tenant).accounts();
        let a = register(&crm, tenant, org("Acme")).await;
        let (p, q, other) = (
            register(&crm, tenant, simple("Pat")).await,
            register(&crm, tenant, simple("Quinn")).await,
            register(&crm, tenant, simple("Else")).await,
        );
        accounts.relate(Relationship::new(a.id, p.id, t0())).await.unwrap();
        accounts.relate(Relationship::new(a.id, q.id, t0())).await.unwrap();
        let mut logged = Vec::new();
        for (i, who) in [a.id, p.id, q.id, other.id, p.id, a.id, q.id].into_iter().enumerate() {
            let kind = if i % 2 == 0 { InteractionKind::Purchase } else { InteractionKind::Call };
            let mut e = event(who, kind, t0() + Duration::hours(i as i64), &format!("e{i}"));
            if kind == InteractionKind::Purchase {
                e.amount = Some(Money::parse("10", "EUR").unwrap());
            }
            crm.tenant(tenant).interactions().log(e.clone()).await.unwrap();
            if who != other.id {
                logged.push(e.id);
            }
        }
        logged.reverse();
        let timeline: Vec<_> = collect_pages(2, |page| {
            let accounts = accounts.clone();
            async move { accounts.timeline(a.id, &page).await }
        })
        .await
        .into_iter()
        .map(|i| i.id)
        .collect();
        assert_eq!(timeline, logged);
        assert_not_found(store.account_timeline(tenant, CustomerId::new(), &PageRequest::first(5)).await, "unknown");

        let profile = accounts.profile(a.id).await.unwrap();
        assert_eq!(profile.interaction_count, 6);
        assert_eq!(profile.purchase_count, 4);
        assert_eq!(profile.revenue.values().copied().sum::<Decimal>(), Decimal::from(40));
        let own = store.get_profile(tenant, a.id).await.unwrap();
        assert_eq!(own.interaction_count, 2);
    }

    /// A transfer of an account takes the contacts its owner owned along, in one
    /// transaction with an ownership change for each; others' contacts stay.
    async fn account_transfers_take_the_contacts_along(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let accounts = crm.tenant(tenant).accounts();
        let (u1, u2, u3) = (UserId::new(), UserId::new(), UserId::new());
        let a = register(&crm, tenant, Customer::organization("Acme").owner(u1).build().unwrap()).await;
        let p = register(&crm, tenant, Customer::person("Pat").owner(u1).build().unwrap()).await;
        let q = register(&crm, tenant, Customer::person("Quinn").owner(u2).build().unwrap()).await;
        let solo = register(&crm, tenant, Customer::person("Solo").owner(u1).build().unwrap()).await;
        accounts.relate(Relationship::new(a.id, p.id, t0())).await.unwrap();
        accounts.relate(Relationship::new(a.id, q.id, t0())).await.unwrap();

        assert!(matches!(accounts.transfer(a.id, Some(u3), a.version + 1, true, None, None).await, Err(Error::Conflict { .. })));
        let moved = accounts.transfer(a.id, Some(u3), a.version, true, Some(u1), Some("territory change")).await.unwrap();
        assert_eq!(moved.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a.id, p.id]);
        assert_eq!(store.get_customer(tenant, a.id).await.unwrap().owner, Some(u3));
        assert_eq!(store.get_customer(tenant, p.id).await.unwrap().owner, Some(u3));
        assert_eq!(store.get_customer(tenant, q.id).await.unwrap().owner, Some(u2));
        assert_eq!(store.get_customer(tenant, solo.id).await.unwrap().owner, Some(u1));
        let history = store.ownership_history(tenant, p.id).await.unwrap();
        assert_eq!((history[0].from, history[0].to), (Some(u1), Some(u3)));
        assert_eq!(history[0].reason.as_deref(), Some("territory change"));

        // Without the contacts: only the account moves.
        let a = store.get_customer(tenant, a.id).await.unwrap();
        let moved = accounts.transfer(a.id, None, a.version, false, None, None).await.unwrap();
        assert_eq!(moved.len(), 1);
        assert_eq!(store.get_customer(tenant, a.id).await.unwrap().owner, None);
        assert_eq!(store.get_customer(tenant, p.id).await.unwrap().owner, Some(u3));
        let person = store.get_customer(tenant, p.id).await.unwrap();
        assert_eq!(accounts.transfer(p.id, None, person.version, true, None, None).await.unwrap_err().field(), Some("organization"));
    }

    /// The rule language reads accounts and deals the same way in every store:
    /// `contacts_count`, `account.id`, `account.revenue`, `open_deals`, `open_deal_amount`
    /// and `deals.<stage>.amount` select exactly the customers they describe.
    async fn account_and_deal_fields_select_in_rules(store) {
        use crm_core::sales::Opportunity;
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let accounts = crm.tenant(tenant).accounts();
        let sales = crm.tenant(tenant).sales();
        let (a, b) = (register(&crm, tenant, org("Acme")).await, register(&crm, tenant, org("Bolt")).await);
        let [p, q, r, s] = [
            register(&crm, tenant, simple("Pat")).await,
            register(&crm, tenant, simple("Quinn")).await,
            register(&crm, tenant, simple("Robin")).await,
            register(&crm, tenant, simple("Sam")).await,
        ];
        accounts.relate(Relationship::new(a.id, p.id, t0()).primary()).await.unwrap();
        accounts.relate(Relationship::new(a.id, s.id, t0())).await.unwrap();
        accounts.relate(Relationship::new(b.id, q.id, t0()).primary()).await.unwrap();
        let mut buy = event(a.id, InteractionKind::Purchase, t0(), "buy");
        buy.amount = Some(Money::parse("100", "EUR").unwrap());
        crm.tenant(tenant).interactions().log(buy).await.unwrap();
        let pipeline = sales.create_pipeline(super::sales::sample_pipeline()).await.unwrap();
        let open = |account: CustomerId, amount: &str, currency: &str| {
            let deal = Opportunity::new("Deal", account, UserId::new(), &pipeline, Money::parse(amount, currency).unwrap(), t0().date_naive(), t0()).unwrap();
            let sales = sales.clone();
            async move { sales.open(deal).await.unwrap() }
        };
        let big = open(a.id, "12000", "EUR").await;
        sales.move_to(big.id, 1, "negotiation").await.unwrap();
        open(a.id, "500", "EUR").await;
        let usd = open(b.id, "20000", "USD").await;
        sales.move_to(usd.id, 1, "negotiation").await.unwrap();
        let won = open(b.id, "3000", "EUR").await;
        sales.win(won.id, 1).await.unwrap();

        // An account's export holds its deals, closed ones included.
        let exported = |id| {
            let privacy = crm.tenant(tenant).privacy();
            async move { privacy.export(id).await.unwrap().opportunities.into_iter().map(|d| d.id).collect::<BTreeSet<_>>() }
        };
        assert_eq!(exported(b.id).await, BTreeSet::from([usd.id, won.id]));
        assert_eq!(exported(a.id).await.len(), 2);
        assert!(exported(p.id).await.is_empty());
        // A person named among a deal's contacts finds that deal in their export.
        let mut with_pat = sales.get(big.id).await.unwrap();
        with_pat.contacts.push(crm_core::sales::DealContact { customer: p.id, role: crm_core::sales::ContactRole::Influencer });
        let version = with_pat.version;
        sales.update(with_pat, version).await.unwrap();
        assert_eq!(exported(p.id).await, BTreeSet::from([big.id]));
        let schema = crm_core::segment::FieldSchema::new(crm_core::Currency::parse("EUR").unwrap());
        let everyone = [a.id, b.id, p.id, q.id, r.id, s.id];
        let but = |out: &[CustomerId]| everyone.iter().copied().filter(|x| !out.contains(x)).collect::<Vec<_>>();
        let cases: Vec<(String, Vec<CustomerId>)> = vec![
            ("contacts_count >= 2".into(), vec![a.id]),
            ("contacts_count = 1".into(), vec![b.id]),
            ("contacts_count = 0".into(), vec![p.id, q.id, r.id, s.id]),
            ("account.revenue > 50".into(), vec![p.id]),
            ("account.revenue = 0".into(), vec![q.id]),
            ("account.id is null and kind = \"person\"".into(), vec![r.id, s.id]),
            (format!("account.id = \"{}\"", a.id), vec![p.id]),
            ("open_deals = 2".into(), vec![a.id]),
            ("open_deals = 1".into(), vec![b.id]),
            ("open_deal_amount = 12500".into(), vec![a.id]),
            ("open_deal_amount = 0 and kind = \"organization\"".into(), vec![b.id]),
            ("deals.negotiation.amount > 10000".into(), vec![a.id]),
            ("deals.negotiation.amount is null".into(), but(&[a.id])),
            ("deals.qualify.amount between 400 and 600".into(), vec![a.id]),
            ("deals.won.amount is not null".into(), vec![]),
        ];
        for (text, want) in cases {
            let rule = parse(&text).unwrap();
            let got: Vec<CustomerId> = collect_pages(2, |page| {
                let (store, rule, schema) = (store.clone(), rule.clone(), schema.clone());
                async move { store.find_matching(tenant, &rule, &schema, t0(), &page).await }
            })
            .await;
            let mut want = want;
            want.sort();
            assert_eq!(got, want, "{text}");
            assert_eq!(store.count_matching(tenant, &rule, &schema, t0()).await.unwrap(), want.len() as u64, "{text}");
        }
    }
}

/// Calls tenant B makes on tenant A's accounts in `a_foreign_tenant_reaches_nothing`.
const FOREIGN_ACCOUNT_CALLS: usize = 8;

/// Tenant B's calls on tenant A's accounts (part of `a_foreign_tenant_reaches_nothing`):
/// an organisation of A with `person` related to it and a subsidiary; B reads nothing of
/// it and changes nothing. Answers how many calls B made.
pub(super) async fn foreign_account_probes(
    store: &Arc<dyn Storage>,
    crm: &Crm,
    a: TenantId,
    b: TenantId,
    person: CustomerId,
) -> usize {
    let accounts = crm.tenant(a).accounts();
    let (firm, branch) = (
        register(crm, a, org("Firm")).await,
        register(crm, a, org("Branch")).await,
    );
    let link = accounts
        .relate(
            Relationship::new(firm.id, person, t0())
                .title("Buyer")
                .unwrap(),
        )
        .await
        .unwrap();
    accounts.set_parent(branch.id, Some(firm.id)).await.unwrap();
    let snapshot = || async {
        (
            listed(store, a, RelationshipQuery::Contacts(firm.id)).await,
            store.account_line(a, branch.id).await.unwrap(),
        )
    };
    let before = snapshot().await;
    assert_eq!(before, (vec![link.clone()], vec![firm.id]));
    let all = PageRequest::first(100);
    assert!(store
        .relationships(b, &RelationshipQuery::Contacts(firm.id), &all)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .relationships(b, &RelationshipQuery::Accounts(person), &all)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store.account_line(b, branch.id).await.unwrap().is_empty());
    assert!(store
        .subsidiaries(b, firm.id, &all)
        .await
        .unwrap()
        .items
        .is_empty());
    assert_not_found(
        store.account_timeline(b, firm.id, &all).await,
        "account_timeline",
    );
    assert_not_found(store.put_relationship(b, &link).await, "put_relationship");
    assert_not_found(
        store.remove_relationship(b, firm.id, person).await,
        "remove_relationship",
    );
    assert_not_found(store.set_parent(b, branch.id, None).await, "set_parent");
    assert_eq!(
        snapshot().await,
        before,
        "tenant A's accounts read the same"
    );
    FOREIGN_ACCOUNT_CALLS
}
