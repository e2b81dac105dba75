-- The audit trail: one entry per customer and version, as JSON.
CREATE TABLE customer_audit (
    tenant_id   bytea  NOT NULL,
    customer_id bytea  NOT NULL,
    version     bigint NOT NULL,
    entry       text   NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, version)
);
