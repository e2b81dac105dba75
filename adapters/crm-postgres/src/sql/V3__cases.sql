-- Service cases: the record (with its event timeline) as JSON, and the columns listings
-- filter on.
CREATE TABLE cases (
    tenant_id   bytea   NOT NULL,
    id          bytea   NOT NULL,
    customer_id bytea   NOT NULL,
    assignee    bytea,
    done        boolean NOT NULL,  -- resolved or closed
    version     bigint  NOT NULL,
    record      text    NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX cases_by_customer ON cases (tenant_id, customer_id, id);
CREATE INDEX cases_by_assignee ON cases (tenant_id, assignee, id);
