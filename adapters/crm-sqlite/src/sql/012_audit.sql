-- The audit trail: one entry per customer and version, as JSON.
CREATE TABLE customer_audit (
    tenant_id   BLOB    NOT NULL,
    customer_id BLOB    NOT NULL,
    version     INTEGER NOT NULL,
    entry       TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, version)
) WITHOUT ROWID;
