-- Stored segments and their members.

CREATE TABLE segments (
    tenant_id BLOB    NOT NULL,
    id        BLOB    NOT NULL,
    name      TEXT    NOT NULL,
    record    TEXT    NOT NULL,    -- the whole segment as JSON
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX segments_by_name ON segments (tenant_id, name);

CREATE TABLE segment_members (
    tenant_id   BLOB NOT NULL,
    segment_id  BLOB NOT NULL,
    customer_id BLOB NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, customer_id)
) WITHOUT ROWID;
CREATE INDEX segment_members_by_customer ON segment_members (tenant_id, customer_id, segment_id);
