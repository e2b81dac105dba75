-- Sales pipelines: the record as JSON.
CREATE TABLE pipelines (
    tenant_id bytea   NOT NULL,
    id        bytea   NOT NULL,
    version   bigint  NOT NULL,
    record    text    NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Opportunities: the record as JSON, and the columns listings and forecasts use.
CREATE TABLE opportunities (
    tenant_id    bytea   NOT NULL,
    id           bytea   NOT NULL,
    owner        bytea   NOT NULL,
    account      bytea   NOT NULL,
    pipeline     bytea   NOT NULL,
    stage        text    NOT NULL,
    outcome      text    NOT NULL,  -- 'open', 'won', 'lost'
    category     text    NOT NULL,  -- the forecast category
    probability  bigint  NOT NULL,  -- percent
    currency     text    NOT NULL,
    amount_minor bigint  NOT NULL,  -- the amount in units of 10^-decimals of the currency
    close_date   text    COLLATE "C" NOT NULL,  -- YYYY-MM-DD, compared bytewise
    created_at   bigint  NOT NULL,  -- microseconds since the Unix epoch
    closed_at    bigint,            -- microseconds since the Unix epoch, once closed
    order_ref    text,              -- 'source:id' of the ERP order, once linked
    version      bigint  NOT NULL,
    record       text    NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX opportunities_by_owner ON opportunities (tenant_id, owner, id);
CREATE INDEX opportunities_by_account ON opportunities (tenant_id, account, id);
-- Covering the forecast (by close date) and the funnel (by creation), so neither reads
-- the records.
CREATE INDEX opportunities_by_close ON opportunities (tenant_id, close_date)
    INCLUDE (outcome, pipeline, owner, category, probability, currency, amount_minor);
CREATE INDEX opportunities_by_creation ON opportunities (tenant_id, pipeline, created_at)
    INCLUDE (id, owner, outcome, closed_at);
CREATE UNIQUE INDEX opportunities_by_order ON opportunities (tenant_id, order_ref)
    WHERE order_ref IS NOT NULL;

-- Each opportunity's stage history, append-only, by the opportunity's version.
CREATE TABLE stage_changes (
    tenant_id   bytea   NOT NULL,
    opportunity bytea   NOT NULL,
    version     bigint  NOT NULL,
    at          bigint  NOT NULL,  -- microseconds since the Unix epoch
    from_stage  text,
    to_stage    text    NOT NULL,
    record      text    NOT NULL,
    PRIMARY KEY (tenant_id, opportunity, version)
);
-- Covering the funnel's walk through each deal's history.
CREATE INDEX stage_changes_steps ON stage_changes (tenant_id, opportunity, version)
    INCLUDE (at, to_stage);
