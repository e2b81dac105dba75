-- Customers merged into another leave a redirect to the survivor.
CREATE TABLE customer_redirects (
    tenant_id BLOB NOT NULL,
    from_id   BLOB NOT NULL,
    to_id     BLOB NOT NULL,
    PRIMARY KEY (tenant_id, from_id)
) WITHOUT ROWID;
CREATE INDEX customer_redirects_by_target ON customer_redirects (tenant_id, to_id);
