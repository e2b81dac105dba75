-- Follow-up tasks: the record as JSON, and the columns listings and reminders filter on.
CREATE TABLE tasks (
    tenant_id bytea   NOT NULL,
    id        bytea   NOT NULL,
    assignee  bytea   NOT NULL,
    subject   text    NOT NULL,  -- 'customer:<uuid>' or 'case:<uuid>'
    open      boolean NOT NULL,
    due_at    bigint  NOT NULL,  -- microseconds since the Unix epoch
    announced boolean NOT NULL,  -- announced for its current due time
    version   bigint  NOT NULL,
    record    text    NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX tasks_by_assignee ON tasks (tenant_id, assignee, id);
CREATE INDEX tasks_by_subject ON tasks (tenant_id, subject, id);
CREATE INDEX tasks_due ON tasks (tenant_id, due_at) WHERE open AND NOT announced;
