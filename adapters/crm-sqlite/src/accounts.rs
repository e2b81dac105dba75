//! Relationships of people to organisations and the organisation hierarchy.

use crm_core::merge::CustomerMerge;
use crm_core::sales::{
    check_parent, merge_hierarchy, merge_relationships, HierarchyPlace, Relationship,
    RelationshipQuery, MAX_ACCOUNTS_PER_PERSON,
};
use crm_core::{CustomerId, Error, Result};
use crm_sql::accounts as sql;
use rusqlite::{params, Connection};

use crate::codec::{id_bytes, json, to_json};
use crate::storage;

/// Decodes a `(is_primary, record)` row.
fn decode(primary: bool, record: &str) -> Result<Relationship> {
    let mut r: Relationship = json(record, "relationships")?;
    r.primary = primary;
    Ok(r)
}

/// Rows of `(is_primary, record)` from `query` with `params`.
fn rows(
    conn: &Connection,
    query: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Relationship>> {
    let raw: Vec<(bool, String)> = conn
        .prepare_cached(query)
        .and_then(|mut s| {
            s.query_map(params, |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(storage)?;
    raw.iter().map(|(p, r)| decode(*p, r)).collect()
}

/// Fails with `NotFound` unless customer `id` exists.
pub(crate) fn need_customer(conn: &Connection, tenant: &[u8], id: CustomerId) -> Result<()> {
    let known = conn
        .prepare_cached(sql::CUSTOMER_EXISTS)
        .and_then(|mut s| s.exists(params![tenant, id.as_bytes().as_slice()]))
        .map_err(storage)?;
    if known {
        Ok(())
    } else {
        Err(Error::not_found("customer", id))
    }
}

/// Writes one relationship row (no checks).
fn write(conn: &Connection, tenant: &[u8], r: &Relationship) -> Result<()> {
    let record = to_json(r)?;
    conn.prepare_cached(sql::PUT)
        .and_then(|mut s| {
            s.execute(params![
                tenant,
                r.organization.as_bytes().as_slice(),
                r.person.as_bytes().as_slice(),
                r.primary,
                record
            ])
        })
        .map_err(storage)?;
    Ok(())
}

/// Stores a relationship inside the caller's transaction (see `SalesStore::put_relationship`).
pub(crate) fn put(conn: &Connection, tenant: &[u8], r: &Relationship) -> Result<()> {
    r.validate()?;
    need_customer(conn, tenant, r.organization)?;
    need_customer(conn, tenant, r.person)?;
    let (o, p) = (
        r.organization.as_bytes().as_slice(),
        r.person.as_bytes().as_slice(),
    );
    let others: i64 = conn
        .prepare_cached(sql::COUNT_ACCOUNTS)
        .and_then(|mut s| s.query_row(params![tenant, p, o], |row| row.get(0)))
        .map_err(storage)?;
    if others >= MAX_ACCOUNTS_PER_PERSON as i64 {
        return Err(Error::validation(
            "person",
            format!("is related to {MAX_ACCOUNTS_PER_PERSON} organisations already"),
        ));
    }
    if r.primary {
        conn.prepare_cached(sql::UNSET_PRIMARY)
            .and_then(|mut s| s.execute(params![tenant, p, o]))
            .map_err(storage)?;
    }
    write(conn, tenant, r)
}

/// Removes a relationship; `NotFound` if there is none.
pub(crate) fn remove(
    conn: &Connection,
    tenant: &[u8],
    organization: CustomerId,
    person: CustomerId,
) -> Result<()> {
    let n = conn
        .prepare_cached(sql::REMOVE)
        .and_then(|mut s| {
            s.execute(params![
                tenant,
                organization.as_bytes().as_slice(),
                person.as_bytes().as_slice()
            ])
        })
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
pub(crate) fn page(
    conn: &Connection,
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
        None => rows(conn, &text, &[&tenant, &id, &limit]),
        Some(a) => rows(
            conn,
            &text,
            &[&tenant, &id, &limit, &a.as_bytes().as_slice()],
        ),
    }
}

/// Ids answered by `query` with `(tenant, id, n)` and an optional cursor.
fn ids(conn: &Connection, query: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<CustomerId>> {
    let raw: Vec<Vec<u8>> = conn
        .prepare_cached(query)
        .and_then(|mut s| s.query_map(params, |r| r.get(0))?.collect())
        .map_err(storage)?;
    raw.into_iter()
        .map(|b| Ok(CustomerId::from_bytes(id_bytes(b)?)))
        .collect()
}

/// An organisation's ancestors, its parent first.
pub(crate) fn line(conn: &Connection, tenant: &[u8], org: CustomerId) -> Result<Vec<CustomerId>> {
    ids(
        conn,
        sql::LINE,
        &[&tenant, &org.as_bytes().as_slice(), &sql::WALK],
    )
}

/// The levels of an organisation's subtree.
fn height(conn: &Connection, tenant: &[u8], org: CustomerId) -> Result<usize> {
    let h: i64 = conn
        .prepare_cached(sql::HEIGHT)
        .and_then(|mut s| {
            s.query_row(params![tenant, org.as_bytes().as_slice(), sql::WALK], |r| {
                r.get(0)
            })
        })
        .map_err(storage)?;
    Ok(usize::try_from(h).unwrap_or(usize::MAX))
}

fn place(conn: &Connection, tenant: &[u8], id: CustomerId) -> Result<HierarchyPlace> {
    Ok(HierarchyPlace {
        id,
        line: line(conn, tenant, id)?,
        height: height(conn, tenant, id)?,
    })
}

/// Sets or clears a parent inside the caller's (immediate) transaction.
pub(crate) fn set_parent(
    conn: &Connection,
    tenant: &[u8],
    org: CustomerId,
    parent: Option<CustomerId>,
) -> Result<()> {
    need_customer(conn, tenant, org)?;
    let o = org.as_bytes().as_slice();
    let Some(parent) = parent else {
        conn.prepare_cached(sql::CLEAR_PARENT)
            .and_then(|mut s| s.execute(params![tenant, o]))
            .map_err(storage)?;
        return Ok(());
    };
    need_customer(conn, tenant, parent)?;
    check_parent(
        org,
        parent,
        &line(conn, tenant, parent)?,
        height(conn, tenant, org)?,
    )?;
    conn.prepare_cached(sql::SET_PARENT)
        .and_then(|mut s| s.execute(params![tenant, o, parent.as_bytes().as_slice()]))
        .map_err(storage)?;
    Ok(())
}

/// One page of subsidiaries.
pub(crate) fn subsidiaries(
    conn: &Connection,
    tenant: &[u8],
    org: CustomerId,
    after: Option<CustomerId>,
    limit: i64,
) -> Result<Vec<CustomerId>> {
    let text = sql::subsidiaries(after.is_some());
    let o = org.as_bytes().as_slice();
    match after {
        None => ids(conn, &text, &[&tenant, &o, &limit]),
        Some(a) => ids(
            conn,
            &text,
            &[&tenant, &o, &limit, &a.as_bytes().as_slice()],
        ),
    }
}

/// A merge's accounts, inside the caller's transaction: the hierarchy checked first
/// ([`merge_hierarchy`]), then relationships and parents moved to the survivor.
pub(crate) fn merge(conn: &Connection, tenant: &[u8], merge: &CustomerMerge) -> Result<()> {
    let survivor = merge.survivor.id;
    let gone: Vec<CustomerId> = merge.merged.iter().map(|(id, _)| *id).collect();
    let merged = gone
        .iter()
        .map(|g| place(conn, tenant, *g))
        .collect::<Result<Vec<_>>>()?;
    let parent = merge_hierarchy(&place(conn, tenant, survivor)?, &merged)?;
    let mut stored = Vec::new();
    for id in std::iter::once(survivor).chain(gone.iter().copied()) {
        let b = id.as_bytes().as_slice();
        for r in rows(conn, sql::NAMING, &[&tenant, &b])? {
            if !stored.contains(&r) {
                stored.push(r);
            }
        }
        conn.prepare_cached(sql::REMOVE_NAMING)
            .and_then(|mut s| s.execute(params![tenant, b]))
            .map_err(storage)?;
    }
    for r in merge_relationships(survivor, &gone, stored) {
        write(conn, tenant, &r)?;
    }
    let s = survivor.as_bytes().as_slice();
    for g in &gone {
        let g = g.as_bytes().as_slice();
        conn.prepare_cached(sql::CLEAR_PARENT)
            .and_then(|mut st| st.execute(params![tenant, g]))
            .and_then(|_| conn.prepare_cached(sql::ADOPT))
            .and_then(|mut st| st.execute(params![tenant, g, s]))
            .map_err(storage)?;
    }
    match parent {
        None => conn
            .prepare_cached(sql::CLEAR_PARENT)
            .and_then(|mut st| st.execute(params![tenant, s])),
        Some(p) => conn
            .prepare_cached(sql::SET_PARENT)
            .and_then(|mut st| st.execute(params![tenant, s, p.as_bytes().as_slice()])),
    }
    .map_err(storage)?;
    Ok(())
}

/// An erasure: the person's relationships lose their titles.
pub(crate) fn anonymise(conn: &Connection, tenant: &[u8], person: CustomerId) -> Result<()> {
    let p = person.as_bytes().as_slice();
    for r in rows(conn, sql::OF_PERSON, &[&tenant, &p])? {
        write(conn, tenant, &r.anonymised())?;
    }
    Ok(())
}
