-- Sales pipelines: the record as JSON.
CREATE TABLE pipelines (
    tenant_id BLOB    NOT NULL,
    id        BLOB    NOT NULL,
    version   INTEGER NOT NULL,
    record    TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;

-- Opportunities: the record as JSON, and the columns listings and forecasts use.
CREATE TABLE opportunities (
    tenant_id    BLOB    NOT NULL,
    id           BLOB    NOT NULL,
    owner        BLOB    NOT NULL,
    account      BLOB    NOT NULL,
    pipeline     BLOB    NOT NULL,
    stage        TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,  -- 'open', 'won', 'lost'
    category     TEXT    NOT NULL,  -- the forecast category
    probability  INTEGER NOT NULL,  -- percent
    currency     TEXT    NOT NULL,
    amount_minor INTEGER NOT NULL,  -- the amount in units of 10^-decimals of the currency
    close_date   TEXT    NOT NULL,  -- YYYY-MM-DD
    created_at   INTEGER NOT NULL,  -- microseconds since the Unix epoch
    closed_at    INTEGER,           -- microseconds since the Unix epoch, once closed
    order_ref    TEXT,              -- 'source:id' of the ERP order, once linked
    version      INTEGER NOT NULL,
    record       TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX opportunities_by_owner ON opportunities (tenant_id, owner, id);
CREATE INDEX opportunities_by_account ON opportunities (tenant_id, account, id);
-- Covering the forecast (by close date) and the funnel (by creation), so neither reads
-- the records.
CREATE INDEX opportunities_by_close ON opportunities
    (tenant_id, close_date, outcome, pipeline, owner, category, probability, currency,
     amount_minor);
CREATE INDEX opportunities_by_creation ON opportunities
    (tenant_id, pipeline, created_at, owner, outcome, closed_at);
CREATE UNIQUE INDEX opportunities_by_order ON opportunities (tenant_id, order_ref)
    WHERE order_ref IS NOT NULL;

-- Each opportunity's stage history, append-only, by the opportunity's version.
CREATE TABLE stage_changes (
    tenant_id   BLOB    NOT NULL,
    opportunity BLOB    NOT NULL,
    version     INTEGER NOT NULL,
    at          INTEGER NOT NULL,  -- microseconds since the Unix epoch
    from_stage  TEXT,
    to_stage    TEXT    NOT NULL,
    record      TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, opportunity, version)
) WITHOUT ROWID;
-- Covering the funnel's walk through each deal's history.
CREATE INDEX stage_changes_steps ON stage_changes (tenant_id, opportunity, version, at, to_stage);
