-- People related to organisations: the record as JSON (its primary flag is the column's).
CREATE TABLE relationships (
    tenant_id    BLOB    NOT NULL,
    organization BLOB    NOT NULL,
    person       BLOB    NOT NULL,
    is_primary   INTEGER NOT NULL,  -- 0 or 1
    record       TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, organization, person)
) WITHOUT ROWID;
CREATE INDEX relationships_by_person ON relationships (tenant_id, person, organization);

-- The organisation hierarchy: each organisation's parent.
CREATE TABLE account_parents (
    tenant_id    BLOB NOT NULL,
    organization BLOB NOT NULL,
    parent       BLOB NOT NULL,
    PRIMARY KEY (tenant_id, organization)
) WITHOUT ROWID;
CREATE INDEX account_parents_children ON account_parents (tenant_id, parent, organization);
