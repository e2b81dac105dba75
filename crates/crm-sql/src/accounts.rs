//! The SQL of accounts: relationships of people to organisations and the organisations'
//! hierarchy, written once with `?N` placeholders ([`numbered`] turns them into
//! PostgreSQL's `$N`).
//!
//! Tables: `relationships (tenant_id, organization, person, is_primary, record)`, keyed by
//! the first three, with the record as JSON (its `primary` is the column's); and
//! `account_parents (tenant_id, organization, parent)`, keyed by the first two.

use crm_core::sales::MAX_HIERARCHY_DEPTH;

/// The statement text with `?N` placeholders as `$N` (PostgreSQL).
pub fn numbered(sql: &str) -> String {
    sql.replace('?', "$")
}

/// How far the hierarchy walks go: one level past the limit, so that a walk ends even on
/// data that breaks it, and a line that long is refused.
pub const WALK: i64 = MAX_HIERARCHY_DEPTH as i64 + 1;

/// Stores relationship `(?1, ?2, ?3)` with primary flag `?4` and record `?5`.
pub const PUT: &str = "INSERT INTO relationships (tenant_id, organization, person, is_primary, \
    record) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant_id, organization, person) \
    DO UPDATE SET is_primary = excluded.is_primary, record = excluded.record";

/// Makes person `?2`'s relationships other than to `?3` not primary.
pub const UNSET_PRIMARY: &str = "UPDATE relationships SET is_primary = FALSE \
    WHERE tenant_id = ?1 AND person = ?2 AND organization <> ?3 AND is_primary";

/// How many organisations other than `?3` person `?2` is related to.
pub const COUNT_ACCOUNTS: &str = "SELECT count(*) FROM relationships \
    WHERE tenant_id = ?1 AND person = ?2 AND organization <> ?3";

/// Removes relationship `(?1, ?2, ?3)`.
pub const REMOVE: &str =
    "DELETE FROM relationships WHERE tenant_id = ?1 AND organization = ?2 AND person = ?3";

/// Whether customer `?2` exists.
pub const CUSTOMER_EXISTS: &str = "SELECT 1 FROM customers WHERE tenant_id = ?1 AND id = ?2";

/// The relationships naming customer `?2` on either side, with their primary flags.
pub const NAMING: &str = "SELECT is_primary, record FROM relationships \
    WHERE tenant_id = ?1 AND (organization = ?2 OR person = ?2)";

/// Removes the relationships naming customer `?2` on either side.
pub const REMOVE_NAMING: &str =
    "DELETE FROM relationships WHERE tenant_id = ?1 AND (organization = ?2 OR person = ?2)";

/// Person `?2`'s relationships with their primary flags (an erasure rewrites them).
pub const OF_PERSON: &str = "SELECT is_primary, record FROM relationships \
    WHERE tenant_id = ?1 AND person = ?2";

/// A page of relationships: `column` is `organization` (contacts of `?2`, keyed by
/// person) or `person` (accounts of `?2`, keyed by organisation); with a cursor, keys
/// after `?4`; `?3` rows.
pub fn page(column: &str, after: bool) -> String {
    let key = if column == "organization" {
        "person"
    } else {
        "organization"
    };
    let cursor = if after {
        format!(" AND {key} > ?4")
    } else {
        String::new()
    };
    format!(
        "SELECT is_primary, record FROM relationships WHERE tenant_id = ?1 AND {column} = ?2\
         {cursor} ORDER BY {key} LIMIT ?3"
    )
}

/// Organisation `?2`'s ancestors, its parent first, at most `?3` of them.
pub const LINE: &str = "WITH RECURSIVE line (id, depth) AS ( \
    SELECT parent, 1 FROM account_parents WHERE tenant_id = ?1 AND organization = ?2 \
    UNION ALL SELECT p.parent, line.depth + 1 FROM account_parents p JOIN line \
    ON p.tenant_id = ?1 AND p.organization = line.id WHERE line.depth < CAST(?3 AS BIGINT)) \
    SELECT id FROM line ORDER BY depth";

/// The levels of organisation `?2`'s subtree, walked at most `?3` levels deep.
pub const HEIGHT: &str = "WITH RECURSIVE sub (id, depth) AS ( \
    SELECT organization, 1 FROM account_parents WHERE tenant_id = ?1 AND parent = ?2 \
    UNION ALL SELECT p.organization, sub.depth + 1 FROM account_parents p JOIN sub \
    ON p.tenant_id = ?1 AND p.parent = sub.id WHERE sub.depth < CAST(?3 AS BIGINT)) \
    SELECT 1 + coalesce(max(depth), 0) FROM sub";

/// Sets organisation `?2`'s parent to `?3`.
pub const SET_PARENT: &str = "INSERT INTO account_parents (tenant_id, organization, parent) \
    VALUES (?1, ?2, ?3) ON CONFLICT (tenant_id, organization) DO UPDATE SET parent = excluded.parent";

/// Clears organisation `?2`'s parent.
pub const CLEAR_PARENT: &str =
    "DELETE FROM account_parents WHERE tenant_id = ?1 AND organization = ?2";

/// Moves the subsidiaries of `?2` under `?3` (a merge).
pub const ADOPT: &str =
    "UPDATE account_parents SET parent = ?3 WHERE tenant_id = ?1 AND parent = ?2";

/// A page of organisation `?2`'s subsidiaries, `?3` rows, after `?4` with a cursor.
pub fn subsidiaries(after: bool) -> String {
    let cursor = if after { " AND organization > ?4" } else { "" };
    format!(
        "SELECT organization FROM account_parents WHERE tenant_id = ?1 AND parent = ?2\
         {cursor} ORDER BY organization LIMIT ?3"
    )
}
