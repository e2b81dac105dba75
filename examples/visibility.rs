//! Record visibility in a small sales company: Sales with two units below it, North and
//! South, a manager and three salespeople. Shows what each person sees, a customer shared
//! with a colleague, a sharing rule, a pool customer whose contact points are masked, a
//! daily quota on contact reads refusing the read beyond it (with the access log), and a
//! departure that hands everything over in one transaction.
//!
//! `cargo run --example visibility` (SQLite in memory).

use std::sync::Arc;

use crm_core::access::{
    Access, AccessKind, Action, Grantee, Org, RecordKind, Role, Scope, SharingRule,
};
use crm_core::notify::StaticDirectory;
use crm_core::segment::{parse, FieldSchema};
use crm_core::{
    Crm, Currency, Customer, CustomerQuery, Error, ManualClock, PageRequest, TeamId, TenantCrm,
    TenantId, UserId,
};
use crm_sqlite::SqliteStore;

/// The names of the customers a handle sees, in id order.
async fn names(handle: &TenantCrm) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(100);
    loop {
        let got = handle
            .customers()
            .search(&CustomerQuery::all(), &page)
            .await?;
        out.extend(got.items.iter().map(|c| c.name.as_str().to_string()));
        match got.next {
            Some(next) => page = PageRequest::after(next, 100),
            None => return Ok(out),
        }
    }
}

/// Reads, writes and transfers of customers and their interactions within `scope`.
fn role(name: &str, scope: Scope) -> Result<Role, Error> {
    let mut role = Role::new(name)?;
    for kind in [RecordKind::Customers, RecordKind::Interactions] {
        for action in [Action::Read, Action::Write, Action::Transfer] {
            role = role.allow(kind, action, scope);
        }
    }
    Ok(role)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (sales, north, south) = (TeamId::new(), TeamId::new(), TeamId::new());
    let (mia, ann, bo, chen) = (UserId::new(), UserId::new(), UserId::new(), UserId::new());
    let mut org = Org::new();
    org.add_unit(sales, "Sales", None)?;
    org.add_unit(north, "Sales North", Some(sales))?;
    org.add_unit(south, "Sales South", Some(sales))?;
    org.add_user(mia, Some(sales), None)?;
    org.add_user(ann, Some(north), Some(mia))?;
    org.add_user(bo, Some(north), Some(mia))?;
    org.add_user(chen, Some(south), Some(mia))?;
    let who = |u: UserId| match u {
        u if u == mia => "Mia (manager)",
        u if u == ann => "Ann (North)",
        u if u == bo => "Bo (North)",
        _ => "Chen (South)",
    };

    let tenant = TenantId::new();
    let directory = Arc::new(StaticDirectory::new());
    directory.set_org(tenant, org);
    // A clock the example moves on to the next day (quotas count per UTC day).
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .map_err(|e| Error::validation("start", e.to_string()))?
        .to_utc();
    let clock = Arc::new(ManualClock::new(start));
    let crm = Crm::new(Arc::new(SqliteStore::open_in_memory()?))
        .with_clock(clock.clone())
        .with_directory(directory);
    let system = crm.tenant(tenant);
    let customers = system.customers();
    let mut cedar = None;
    let mut anns = Vec::new();
    for (name, owner, email) in [
        ("Alder GmbH", ann, "sales@alder.example"),
        ("Aspen Ltd", ann, "info@aspen.example"),
        ("Birch & Co", bo, "hello@birch.example"),
        ("Beech AG", bo, "office@beech.example"),
        ("Cedar Foods", chen, "buy@cedar.example"),
    ] {
        let c = customers
            .register(
                Customer::organization(name)
                    .owner(owner)
                    .email(email)
                    .build()?,
            )
            .await?;
        if owner == ann {
            anns.push(c.id);
        }
        if name == "Cedar Foods" {
            cedar = Some(c);
        }
    }
    let cedar = cedar.ok_or_else(|| Error::not_found("customer", "Cedar Foods"))?;
    customers
        .register(
            Customer::organization("Cypress Steel")
                .owner(chen)
                .tag("key-account")
                .build()?,
        )
        .await?;
    let pooled = customers
        .register(
            Customer::person("Pat Pool")
                .email("pat.pool@example.com")
                .phone("+86 138 1234 5678")
                .build()?,
        )
        .await?;

    let salesperson = [role("salesperson", Scope::Own)?];
    let manager = [role("manager", Scope::All)?];
    let handle = |user: UserId| {
        let roles = if user == mia { &manager } else { &salesperson };
        system.as_user(user, roles)
    };

    println!("Who sees which customers (salespeople: their own; the manager: all):");
    for user in [mia, ann, bo, chen] {
        println!(
            "  {:<14} {}",
            who(user),
            names(&handle(user).await?).await?.join(", ")
        );
    }

    println!("\nChen shares Cedar Foods with Ann, read only:");
    let chen_h = handle(chen).await?;
    chen_h
        .sharing()
        .share(cedar.id, Grantee::User(ann), Access::Read, None)
        .await?;
    let ann_h = handle(ann).await?;
    println!("  Ann sees      {}", names(&ann_h).await?.join(", "));
    match ann_h.customers().update(cedar.clone(), Some(ann)).await {
        Err(Error::Forbidden { action, record }) => {
            println!("  Ann edits it: refused ({action} {record})")
        }
        other => println!("  Ann edits it: {other:?}"),
    }

    println!("\nA sharing rule shows key accounts to Sales North:");
    let schema = FieldSchema::new(Currency::parse("EUR")?);
    let rule = SharingRule::new(
        "key accounts to North",
        parse(r#""key-account" in tags"#)?,
        schema,
        north,
        Access::Read,
    )?;
    system.sharing().put_rule(rule, Some(mia)).await?;
    for user in [ann, bo] {
        println!(
            "  {:<14} {}",
            who(user),
            names(&handle(user).await?).await?.join(", ")
        );
    }

    println!("\nA pool customer's contact points stay masked until someone claims it:");
    let seen = handle(mia).await?.customers().get(pooled.id).await?;
    println!(
        "  Mia reads     {} <{}> {}",
        seen.name.as_str(),
        seen.emails[0].as_str(),
        seen.phones[0].as_str()
    );
    let whole = system.customers().get(pooled.id).await?;
    println!(
        "  stored        {} <{}> {}",
        whole.name.as_str(),
        whole.emails[0].as_str(),
        whole.phones[0].as_str()
    );

    println!("\nThe next day Ann may read two unmasked customers; the third read is refused:");
    clock.advance(chrono::Duration::days(1));
    let limited = [role("salesperson", Scope::Own)?.limit_per_day(AccessKind::ContactReads, 2)];
    let ann_limited = system.as_user(ann, &limited).await?;
    for id in anns.iter().chain([&cedar.id]) {
        match ann_limited.customers().get(*id).await {
            Ok(c) => println!(
                "  read          {} <{}>",
                c.name.as_str(),
                c.emails[0].as_str()
            ),
            Err(e @ Error::QuotaExceeded { .. }) => println!("  refused       {e}"),
            Err(e) => return Err(e),
        }
    }
    let log = system
        .access_log()
        .entries(Some(ann), start + chrono::Duration::days(1), 10)
        .await?;
    println!(
        "  access log    {} entries today (the refused read is not one)",
        log.len()
    );

    println!("\nBo leaves; everything he holds goes to Ann in one transaction:");
    chen_h
        .sharing()
        .share(cedar.id, Grantee::User(bo), Access::Write, None)
        .await?;
    let report = system
        .staff()
        .hand_over(bo, ann, Some(mia), Some("Bo left the company"))
        .await?;
    println!(
        "  moved: {} customers, {} open cases, {} open tasks, {} grants",
        report.customers, report.cases, report.tasks, report.grants
    );
    println!(
        "  Ann sees      {}",
        names(&handle(ann).await?).await?.join(", ")
    );
    println!(
        "  Bo sees       {} (the North sharing rule, until the directory drops him)",
        names(&handle(bo).await?).await?.join(", ")
    );
    let grants = system.sharing().grants(cedar.id).await?;
    println!("  grants on Cedar Foods, oldest first:");
    for g in grants {
        let to = match g.grantee {
            Grantee::User(u) => who(u).to_string(),
            Grantee::Unit(_) => "a unit".to_string(),
        };
        let state = if g.is_active() { "in force" } else { "revoked" };
        println!("    {:<14} {:<6} {state}", to, g.access.as_str());
    }
    Ok(())
}
