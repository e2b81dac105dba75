-- The transactional outbox: notifications waiting for delivery, claimed under leases.
CREATE TABLE outbox (
    tenant_id       BLOB    NOT NULL,
    id              BLOB    NOT NULL,
    seq             INTEGER NOT NULL,  -- increases per tenant in the order rows were stored
    ordering_key    TEXT,              -- rows with one key are delivered one at a time
    idempotency_key TEXT    NOT NULL,
    priority        INTEGER NOT NULL,  -- 0 low .. 3 urgent
    state           TEXT    NOT NULL,  -- pending, sent, dead
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,  -- microseconds since the Unix epoch
    enqueued_at     INTEGER NOT NULL,
    lease_token     BLOB,
    lease_until     INTEGER,
    last_error      TEXT,
    sent_at         INTEGER,
    notification    TEXT    NOT NULL,  -- JSON
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX outbox_by_key ON outbox (tenant_id, idempotency_key);
CREATE UNIQUE INDEX outbox_by_seq ON outbox (tenant_id, seq);
CREATE INDEX outbox_due ON outbox (tenant_id, priority DESC, next_attempt_at, seq)
    WHERE state = 'pending';
CREATE INDEX outbox_ordered ON outbox (tenant_id, ordering_key, seq)
    WHERE state = 'pending' AND ordering_key IS NOT NULL;
CREATE INDEX outbox_dead ON outbox (tenant_id, id) WHERE state = 'dead';
