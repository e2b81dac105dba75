-- People related to organisations: the record as JSON (its primary flag is the column's).
CREATE TABLE relationships (
    tenant_id    bytea   NOT NULL,
    organization bytea   NOT NULL,
    person       bytea   NOT NULL,
    is_primary   boolean NOT NULL,
    record       text    NOT NULL,
    PRIMARY KEY (tenant_id, organization, person)
);
CREATE INDEX relationships_by_person ON relationships (tenant_id, person, organization);

-- The organisation hierarchy: each organisation's parent.
CREATE TABLE account_parents (
    tenant_id    bytea NOT NULL,
    organization bytea NOT NULL,
    parent       bytea NOT NULL,
    PRIMARY KEY (tenant_id, organization)
);
CREATE INDEX account_parents_children ON account_parents (tenant_id, parent, organization);
