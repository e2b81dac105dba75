-- Every table's key starts with tenant_id: no row is reachable without its tenant.

CREATE TABLE customers (
    tenant_id  BLOB    NOT NULL,
    id         BLOB    NOT NULL,
    name_key   TEXT    NOT NULL,   -- lower-cased name, for prefix search
    lifecycle  TEXT    NOT NULL,
    owner_id   BLOB,
    version    INTEGER NOT NULL,
    record     TEXT    NOT NULL,   -- the whole customer as JSON
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX customers_by_owner ON customers (tenant_id, owner_id, id);
CREATE INDEX customers_by_lifecycle ON customers (tenant_id, lifecycle, id);
CREATE INDEX customers_by_name ON customers (tenant_id, name_key);

CREATE TABLE customer_emails (
    tenant_id   BLOB NOT NULL,
    email_key   TEXT NOT NULL,     -- lower-cased address
    customer_id BLOB NOT NULL,
    PRIMARY KEY (tenant_id, email_key, customer_id)
) WITHOUT ROWID;

CREATE TABLE customer_phones (
    tenant_id   BLOB NOT NULL,
    phone       TEXT NOT NULL,     -- E.164
    customer_id BLOB NOT NULL,
    PRIMARY KEY (tenant_id, phone, customer_id)
) WITHOUT ROWID;

CREATE TABLE customer_tags (
    tenant_id   BLOB NOT NULL,
    tag         TEXT NOT NULL,
    customer_id BLOB NOT NULL,
    PRIMARY KEY (tenant_id, tag, customer_id)
) WITHOUT ROWID;

CREATE TABLE customer_external_ids (
    tenant_id   BLOB NOT NULL,
    source      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    customer_id BLOB NOT NULL,
    PRIMARY KEY (tenant_id, source, external_id)
) WITHOUT ROWID;

CREATE TABLE ownership_changes (
    tenant_id   BLOB    NOT NULL,
    customer_id BLOB    NOT NULL,
    version     INTEGER NOT NULL,  -- the customer's version after the change
    from_owner  BLOB,
    to_owner    BLOB,
    changed_by  BLOB,
    reason      TEXT,
    at          INTEGER NOT NULL,  -- microseconds since the Unix epoch
    PRIMARY KEY (tenant_id, customer_id, version)
) WITHOUT ROWID;

CREATE TABLE interactions (
    tenant_id     BLOB    NOT NULL,
    id            BLOB    NOT NULL,
    customer_id   BLOB    NOT NULL,
    channel       TEXT    NOT NULL,
    direction     TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    handled_by    BLOB,
    occurred_at   INTEGER NOT NULL,
    subject       TEXT,
    body          TEXT,
    amount        TEXT,             -- exact decimal as text
    currency      TEXT,
    duration_secs INTEGER,
    wait_secs     INTEGER,
    case_id       BLOB,
    attributes    TEXT,             -- JSON, NULL when empty
    source        TEXT    NOT NULL,
    external_id   TEXT    NOT NULL,
    recorded_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX interactions_by_key ON interactions (tenant_id, source, external_id);
CREATE INDEX interactions_timeline ON interactions (tenant_id, customer_id, occurred_at DESC, id DESC);

CREATE TABLE profiles (
    tenant_id             BLOB    NOT NULL,
    customer_id           BLOB    NOT NULL,
    interaction_count     INTEGER NOT NULL DEFAULT 0,
    first_contact_at      INTEGER,
    last_contact_at       INTEGER,
    last_inbound_at       INTEGER,
    last_outbound_at      INTEGER,
    purchase_count        INTEGER NOT NULL DEFAULT 0,
    first_purchase_at     INTEGER,
    last_purchase_at      INTEGER,
    complaint_count       INTEGER NOT NULL DEFAULT 0,
    service_request_count INTEGER NOT NULL DEFAULT 0,
    revenue               TEXT    NOT NULL DEFAULT '{}',  -- currency -> decimal text
    channel_counts        TEXT    NOT NULL DEFAULT '{}',
    last_contact_by       TEXT    NOT NULL DEFAULT '{}',  -- user id -> timestamp
    PRIMARY KEY (tenant_id, customer_id)
) WITHOUT ROWID;
