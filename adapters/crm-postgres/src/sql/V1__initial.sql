-- Every table's key and every index lead with tenant_id, and every statement filters by
-- it: the schema can be distributed by tenant_id (see the crate docs on Citus).

CREATE TABLE customers (
    tenant_id bytea  NOT NULL,
    id        bytea  NOT NULL,
    name_key  text   NOT NULL,
    lifecycle text   NOT NULL,
    owner_id  bytea,
    version   bigint NOT NULL,
    record    jsonb  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX customers_by_owner ON customers (tenant_id, owner_id, id);
CREATE INDEX customers_by_lifecycle ON customers (tenant_id, lifecycle, id);
CREATE INDEX customers_by_name ON customers (tenant_id, name_key text_pattern_ops);

CREATE TABLE customer_emails (
    tenant_id bytea NOT NULL, email_key text NOT NULL, customer_id bytea NOT NULL,
    PRIMARY KEY (tenant_id, email_key, customer_id)
);
CREATE TABLE customer_phones (
    tenant_id bytea NOT NULL, phone text NOT NULL, customer_id bytea NOT NULL,
    PRIMARY KEY (tenant_id, phone, customer_id)
);
CREATE TABLE customer_tags (
    tenant_id bytea NOT NULL, tag text NOT NULL, customer_id bytea NOT NULL,
    PRIMARY KEY (tenant_id, tag, customer_id)
);
CREATE TABLE customer_external_ids (
    tenant_id bytea NOT NULL, source text NOT NULL, external_id text NOT NULL,
    customer_id bytea NOT NULL,
    PRIMARY KEY (tenant_id, source, external_id)
);
CREATE TABLE ownership_changes (
    tenant_id bytea NOT NULL, customer_id bytea NOT NULL, version bigint NOT NULL,
    from_owner bytea, to_owner bytea, changed_by bytea, reason text, at bigint NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, version)
);

CREATE TABLE interactions (
    tenant_id     bytea  NOT NULL,
    id            bytea  NOT NULL,
    customer_id   bytea  NOT NULL,
    channel       text   NOT NULL,
    direction     text   NOT NULL,
    kind          text   NOT NULL,
    handled_by    bytea,
    occurred_at   bigint NOT NULL,   -- microseconds since the Unix epoch
    subject       text,
    body          text,
    amount        text,              -- exact decimal
    currency      text,
    duration_secs bigint,
    wait_secs     bigint,
    case_id       bytea,
    attributes    text,              -- JSON, NULL when empty
    source        text   NOT NULL,
    external_id   text   NOT NULL,
    recorded_at   bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX interactions_by_key ON interactions (tenant_id, source, external_id);
CREATE INDEX interactions_timeline ON interactions (tenant_id, customer_id, occurred_at DESC, id DESC);

CREATE TABLE profiles (
    tenant_id             bytea  NOT NULL,
    customer_id           bytea  NOT NULL,
    interaction_count     bigint NOT NULL DEFAULT 0,
    first_contact_at      bigint,
    last_contact_at       bigint,
    last_inbound_at       bigint,
    last_outbound_at      bigint,
    purchase_count        bigint NOT NULL DEFAULT 0,
    first_purchase_at     bigint,
    last_purchase_at      bigint,
    complaint_count       bigint NOT NULL DEFAULT 0,
    service_request_count bigint NOT NULL DEFAULT 0,
    revenue               text   NOT NULL DEFAULT '{}',  -- JSON: currency -> decimal text
    channel_counts        text   NOT NULL DEFAULT '{}',  -- JSON: channel -> count
    last_contact_by       bytea  NOT NULL DEFAULT '',   -- 16-byte user id + 8-byte micros each
    PRIMARY KEY (tenant_id, customer_id)
) WITH (fillfactor = 70);  -- room on each page for HOT updates: every batch rewrites rows

CREATE TABLE value_scores (
    tenant_id bytea NOT NULL, customer_id bytea NOT NULL,
    p_alive double precision NOT NULL, expected_purchases_90d double precision NOT NULL,
    predicted_clv text NOT NULL, currency text NOT NULL, scored_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);
CREATE TABLE value_models (
    tenant_id bytea NOT NULL, fitted_at bigint NOT NULL, model jsonb NOT NULL,
    PRIMARY KEY (tenant_id, fitted_at)
);
CREATE TABLE value_classes (
    tenant_id bytea NOT NULL, customer_id bytea NOT NULL,
    r bigint NOT NULL, f bigint NOT NULL, m bigint NOT NULL,
    rfm_segment text NOT NULL, abc_class text NOT NULL, as_of date NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);

CREATE TABLE segments (
    tenant_id bytea NOT NULL, id bytea NOT NULL, name text NOT NULL, record jsonb NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX segments_by_name ON segments (tenant_id, name);
CREATE TABLE segment_members (
    tenant_id bytea NOT NULL, segment_id bytea NOT NULL, customer_id bytea NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, customer_id)
);
CREATE INDEX segment_members_by_customer ON segment_members (tenant_id, customer_id, segment_id);
