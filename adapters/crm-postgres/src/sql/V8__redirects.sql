-- Customers merged into another leave a redirect to the survivor.
CREATE TABLE customer_redirects (
    tenant_id bytea NOT NULL,
    from_id   bytea NOT NULL,
    to_id     bytea NOT NULL,
    PRIMARY KEY (tenant_id, from_id)
);
CREATE INDEX customer_redirects_by_target ON customer_redirects (tenant_id, to_id);
