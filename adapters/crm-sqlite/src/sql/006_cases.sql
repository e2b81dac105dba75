-- Service cases: the record (with its event timeline) as JSON, and the columns listings
-- filter on.
CREATE TABLE cases (
    tenant_id   BLOB    NOT NULL,
    id          BLOB    NOT NULL,
    customer_id BLOB    NOT NULL,
    assignee    BLOB,
    done        INTEGER NOT NULL,  -- 1 when resolved or closed
    version     INTEGER NOT NULL,
    record      TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX cases_by_customer ON cases (tenant_id, customer_id, id);
CREATE INDEX cases_by_assignee ON cases (tenant_id, assignee, id);
