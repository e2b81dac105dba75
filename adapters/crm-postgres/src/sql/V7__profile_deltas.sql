-- Pending profile deltas: each batch of interactions appends one row per customer it
-- touched (by binary COPY, no row locks); a customer's profile is its `profiles` row merged
-- with its pending rows here. Folding (PostgresStore::fold_profiles, and every segment query)
-- merges them into `profiles` and deletes them, in one transaction. Same columns and
-- encodings as `profiles`.
CREATE TABLE profile_deltas (
    tenant_id             bytea  NOT NULL,
    customer_id           bytea  NOT NULL,
    interaction_count     bigint NOT NULL,
    first_contact_at      bigint,
    last_contact_at       bigint,
    last_inbound_at       bigint,
    last_outbound_at      bigint,
    purchase_count        bigint NOT NULL,
    first_purchase_at     bigint,
    last_purchase_at      bigint,
    complaint_count       bigint NOT NULL,
    service_request_count bigint NOT NULL,
    revenue               text   NOT NULL,
    channel_counts        text   NOT NULL,
    last_contact_by       bytea  NOT NULL
);
CREATE INDEX profile_deltas_by_customer ON profile_deltas (tenant_id, customer_id);
