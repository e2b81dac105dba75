-- The transactional outbox: notifications waiting for delivery, claimed under leases
-- (FOR UPDATE SKIP LOCKED, so several dispatchers never take the same row).
CREATE TABLE outbox (
    tenant_id       bytea  NOT NULL,
    id              bytea  NOT NULL,
    idempotency_key text   NOT NULL,
    priority        bigint NOT NULL,  -- 0 low .. 3 urgent
    state           text   NOT NULL,  -- pending, sent, dead
    attempts        bigint NOT NULL,
    next_attempt_at bigint NOT NULL,  -- microseconds since the Unix epoch
    enqueued_at     bigint NOT NULL,
    lease_token     bytea,
    lease_until     bigint,
    last_error      text,
    sent_at         bigint,
    notification    text   NOT NULL,  -- JSON
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX outbox_by_key ON outbox (tenant_id, idempotency_key);
CREATE INDEX outbox_due ON outbox (tenant_id, priority DESC, next_attempt_at, id)
    WHERE state = 'pending';
CREATE INDEX outbox_dead ON outbox (tenant_id, id) WHERE state = 'dead';
