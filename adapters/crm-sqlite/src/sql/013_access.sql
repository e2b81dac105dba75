-- Per-record grants: one row per grant given, kept after revocation (active = 0) as the
-- record of who could see what. At most one grant in force per customer and grantee.
CREATE TABLE grants (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   BLOB    NOT NULL,
    customer_id BLOB    NOT NULL,
    grantee     TEXT    NOT NULL,
    active      INTEGER NOT NULL,
    record      TEXT    NOT NULL
);
CREATE INDEX grants_by_customer ON grants (tenant_id, customer_id, seq);
CREATE UNIQUE INDEX grants_in_force ON grants (tenant_id, grantee, customer_id) WHERE active = 1;

-- Sharing rules, by name, as JSON.
CREATE TABLE sharing_rules (
    tenant_id BLOB NOT NULL,
    name      TEXT NOT NULL,
    record    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;
