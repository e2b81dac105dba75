-- The access log: who took how many of what (contact reads, exports), when; as JSON.
CREATE TABLE access_log (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BLOB    NOT NULL,
    user_id   BLOB    NOT NULL,
    at        INTEGER NOT NULL,
    record    TEXT    NOT NULL
);
CREATE INDEX access_log_by_time ON access_log (tenant_id, at);

-- Each user's use of each kind per UTC day (days counted from the common era), for quotas.
CREATE TABLE access_usage (
    tenant_id BLOB    NOT NULL,
    day       INTEGER NOT NULL,
    user_id   BLOB    NOT NULL,
    kind      TEXT    NOT NULL,
    used      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day, user_id, kind)
) WITHOUT ROWID;
