//! Relationships of people to organisations and the organisation hierarchy.

use crm_core::merge::CustomerMerge;
use crm_core::sales::{
    check_parent, merge_hierarchy, merge_relationships, HierarchyPlace, Relationship,
    RelationshipQuery, MAX_ACCOUNTS_PER_PERSON,
};
use crm_core::{CustomerId, Error, Result};
use crm_sql::accounts::{self as sql, numbered};
use deadpool_postgres::GenericClient;
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

use crate::codec::{id_bytes, json, to_json};
use crate::storage;

/// First key of the advisory lock that serialises changes of a tenant's hierarchy.
const HIERARCHY_LOCK: i32 = 0x6372_6d68; // "crmh"

/// Takes the tenant's hierarchy lock for the transaction.
pub(crate) async fn hierarchy_lock(tx: &Transaction<'_>, tenant: &[u8]) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(encode($2, 'hex')))",
        &[&HIERARCHY_LOCK, &tenant],
    )
    .await
    .map_err(storage)?;
    Ok(())
}

/// Rows of `(is_primary, record)` from `query`.
async fn rows<C: GenericClient>(
    client: &C,
    query: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Relationship>> {
    let found = client
        .query(&numbered(query), params)
        .await
        .map_err(storage)?;
    found
        .iter()
        .map(|row| {
            let mut r: Relationship = json(row.get::<_, &str>(1), "relationships")?;
            r.primary = row.get(0);
            Ok(r)
        })
        .collect()
}

/// Ids in the first column answered by `query`.
async fn ids<C: GenericClient>(
    client: &C,
    query: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<CustomerId>> {
    let found = client
        .query(&numbered(query), params)
        .await
        .map_err(storage)?;
    found
        .into_iter()
        .map(|row| Ok(CustomerId::from_bytes(id_bytes(row.get(0))?)))
        .collect()
}

/// Fails with `NotFound` unless customer `id` exists.
pub(crate) async fn need_customer<C: GenericClient>(
    client: &C,
    tenant: &[u8],
    id: CustomerId,
) -> Result<()> {
    let found = client
        .query_opt(
            &numbered(sql::CUSTOMER_EXISTS),
            &[&tenant, &id.as_bytes().as_slice()],
        )
        .await
        .map_err(storage)?;
    match found {
        Some(_) => Ok(()),
        None => Err(Error::not_found("customer", id)),
    }
}

/// Writes one relationship row (no checks).
async fn write(tx: &Transaction<'_>, tenant: &[u8], r: &Relationship) -> Result<()> {
    let record = to_json(r)?;
    tx.execute(
        &numbered(sql::PUT),
        &[
            &tenant,
            &r.organization.as_bytes().as_slice(),
            &r.person.as_bytes().as_slice(),
            &r.primary,
            &record,
        ],
    )
    .await
    .map_err(storage)?;
    Ok(())
}

/// Stores a relationship inside the caller's transaction, the person's row locked so that
/// concurrent puts for one person take turns.
pub(crate) async fn put(tx: &Transaction<'_>, tenant: &[u8], r: &Relationship) -> Result<()> {
    r.validate()?;
    need_customer(tx, tenant, r.organization).await?;
    let (o, p) = (
        r.organization.as_bytes().as_slice(),
        r.person.as_bytes().as_slice(),
    );
    let locked = tx
        .query_opt(
            "SELECT 1 FROM customers WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            &[&tenant, &p],
        )
        .await
        .map_err(storage)?;
    if locked.is_none() {
        return Err(Error::not_found("customer", r.person));
    }
    let others: i64 = tx
        .query_one(&numbered(sql::COUNT_ACCOUNTS), &[&tenant, &p, &o])
        .await
        .map_err(storage)?
        .get(0);
    if others >= MAX_ACCOUNTS_PER_PERSON as i64 {
        return Err(Error::validation(
            "person",
            format!("is related to {MAX_ACCOUNTS_PER_PERSON} organisations already"),
        ));
    }
    if r.primary {
        tx.execute(&numbered(sql::UNSET_PRIMARY), &[&tenant, &p, &o])
            .await
            .map_err(storage)?;
    }
    write(tx, tenant, r).await
}

/// Removes a relationship; `NotFound` if there is none.
pub(crate) async fn remove<C: GenericClient>(
    client: &C,
    tenant: &[u8],
    organization: CustomerId,
    person: CustomerId,
) -> Result<()> {
    let n = client
        .execute(
            &numbered(sql::REMOVE),
            &[
                &tenant,
                &organization.as_bytes().as_slice(),
                &person.as_bytes().as_slice(),
            ],
        )
        .await
        .map_err(storage)?;
    if n == 0 {
        return Err(Error::not_found(
            "relationship",
            format!("{organization} / {person}"),
        ));
    }
    Ok(())
}

/// One page (`limit` rows) of relationships.
pub(crate) async fn page<C: GenericClient>(
    client: &C,
    tenant: &[u8],
    query: &RelationshipQuery,
    after: Option<CustomerId>,
    limit: i64,
) -> Result<Vec<Relationship>> {
    let (column, id) = match query {
        RelationshipQuery::Contacts(o) => ("organization", *o),
        RelationshipQuery::Accounts(p) => ("person", *p),
    };
    let text = sql::page(column, after.is_some());
    let id = id.as_bytes().as_slice();
    match after {
        None => rows(client, &text, &[&tenant, &id, &limit]).await,
        Some(a) => {
            let a = a.as_bytes().as_slice();
            rows(client, &text, &[&tenant, &id, &limit, &a]).await
        }
    }
}

/// An organisation's ancestors, its parent first.
pub(crate) async fn line<C: GenericClient>(
    client: &C,
    tenant: &[u8],
    org: CustomerId,
) -> Result<Vec<CustomerId>> {
    let o = org.as_bytes().as_slice();
    ids(client, sql::LINE, &[&tenant, &o, &sql::WALK]).await
}

/// The levels of an organisation's subtree.
async fn height<C: GenericClient>(client: &C, tenant: &[u8], org: CustomerId) -> Result<usize> {
    let h: i32 = client
        .query_one(
            &numbered(sql::HEIGHT),
            &[&tenant, &org.as_bytes().as_slice(), &sql::WALK],
        )
        .await
        .map_err(storage)?
        .get(0);
    Ok(usize::try_from(h).unwrap_or(usize::MAX))
}

async fn place<C: GenericClient>(
    client: &C,
    tenant: &[u8],
    id: CustomerId,
) -> Result<HierarchyPlace> {
    Ok(HierarchyPlace {
        id,
        line: line(client, tenant, id).await?,
        height: height(client, tenant, id).await?,
    })
}

/// Sets or clears a parent inside the caller's transaction, under the hierarchy lock.
pub(crate) async fn set_parent(
    tx: &Transaction<'_>,
    tenant: &[u8],
    org: CustomerId,
    parent: Option<CustomerId>,
) -> Result<()> {
    hierarchy_lock(tx, tenant).await?;
    need_customer(tx, tenant, org).await?;
    let o = org.as_bytes().as_slice();
    let Some(parent) = parent else {
        tx.execute(&numbered(sql::CLEAR_PARENT), &[&tenant, &o])
            .await
            .map_err(storage)?;
        return Ok(());
    };
    need_customer(tx, tenant, parent).await?;
    let line = line(tx, tenant, parent).await?;
    check_parent(org, parent, &line, height(tx, tenant, org).await?)?;
    tx.execute(
        &numbered(sql::SET_PARENT),
        &[&tenant, &o, &parent.as_bytes().as_slice()],
    )
    .await
    .map_err(storage)?;
    Ok(())
}

/// One page of subsidiaries.
pub(crate) async fn subsidiaries<C: GenericClient>(
    client: &C,
    tenant: &[u8],
    org: CustomerId,
    after: Option<CustomerId>,
    limit: i64,
) -> Result<Vec<CustomerId>> {
    let text = sql::subsidiaries(after.is_some());
    let o = org.as_bytes().as_slice();
    match after {
        None => ids(client, &text, &[&tenant, &o, &limit]).await,
        Some(a) => {
            let a = a.as_bytes().as_slice();
            ids(client, &text, &[&tenant, &o, &limit, &a]).await
        }
    }
}

/// A merge's accounts, inside the caller's transaction: the hierarchy checked first
/// ([`merge_hierarchy`], under the hierarchy lock), then relationships and parents moved
/// to the survivor.
pub(crate) async fn merge(
    tx: &Transaction<'_>,
    tenant: &[u8],
    merge: &CustomerMerge,
) -> Result<()> {
    hierarchy_lock(tx, tenant).await?;
    let survivor = merge.survivor.id;
    let gone: Vec<CustomerId> = merge.merged.iter().map(|(id, _)| *id).collect();
    let mut merged = Vec::with_capacity(gone.len());
    for g in &gone {
        merged.push(place(tx, tenant, *g).await?);
    }
    let parent = merge_hierarchy(&place(tx, tenant, survivor).await?, &merged)?;
    let mut stored = Vec::new();
    for id in std::iter::once(survivor).chain(gone.iter().copied()) {
        let b = id.as_bytes().as_slice();
        for r in rows(tx, sql::NAMING, &[&tenant, &b]).await? {
            if !stored.contains(&r) {
                stored.push(r);
            }
        }
        tx.execute(&numbered(sql::REMOVE_NAMING), &[&tenant, &b])
            .await
            .map_err(storage)?;
    }
    for r in merge_relationships(survivor, &gone, stored) {
        write(tx, tenant, &r).await?;
    }
    let s = survivor.as_bytes().as_slice();
    for g in &gone {
        let g = g.as_bytes().as_slice();
        tx.execute(&numbered(sql::CLEAR_PARENT), &[&tenant, &g])
            .await
            .map_err(storage)?;
        tx.execute(&numbered(sql::ADOPT), &[&tenant, &g, &s])
            .await
            .map_err(storage)?;
    }
    match parent {
        None => {
            tx.execute(&numbered(sql::CLEAR_PARENT), &[&tenant, &s])
                .await
        }
        Some(p) => {
            let p = p.as_bytes().as_slice();
            tx.execute(&numbered(sql::SET_PARENT), &[&tenant, &s, &p])
                .await
        }
    }
    .map_err(storage)?;
    Ok(())
}

/// An erasure: the person's relationships lose their titles.
pub(crate) async fn anonymise(
    tx: &Transaction<'_>,
    tenant: &[u8],
    person: CustomerId,
) -> Result<()> {
    let p = person.as_bytes().as_slice();
    for r in rows(tx, sql::OF_PERSON, &[&tenant, &p]).await? {
        write(tx, tenant, &r.anonymised()).await?;
    }
    Ok(())
}
