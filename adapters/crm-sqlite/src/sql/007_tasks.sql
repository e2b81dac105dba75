-- Follow-up tasks: the record as JSON, and the columns listings and reminders filter on.
CREATE TABLE tasks (
    tenant_id BLOB    NOT NULL,
    id        BLOB    NOT NULL,
    assignee  BLOB    NOT NULL,
    subject   TEXT    NOT NULL,  -- "customer:<uuid>" or "case:<uuid>"
    open      INTEGER NOT NULL,
    due_at    INTEGER NOT NULL,  -- microseconds since the Unix epoch
    announced INTEGER NOT NULL,  -- 1 when announced for its current due time
    version   INTEGER NOT NULL,
    record    TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX tasks_by_assignee ON tasks (tenant_id, assignee, id);
CREATE INDEX tasks_by_subject ON tasks (tenant_id, subject, id);
CREATE INDEX tasks_due ON tasks (tenant_id, due_at) WHERE open = 1 AND announced = 0;
