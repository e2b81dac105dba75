-- Customer-value results: per-customer scores and fitted models per tenant.

CREATE TABLE value_scores (
    tenant_id              BLOB    NOT NULL,
    customer_id            BLOB    NOT NULL,
    p_alive                REAL    NOT NULL,
    expected_purchases_90d REAL    NOT NULL,
    predicted_clv          TEXT    NOT NULL,  -- exact decimal as text
    currency               TEXT    NOT NULL,
    scored_at              INTEGER NOT NULL,  -- microseconds since the Unix epoch
    PRIMARY KEY (tenant_id, customer_id)
) WITHOUT ROWID;

CREATE TABLE value_models (
    tenant_id BLOB    NOT NULL,
    fitted_at INTEGER NOT NULL,
    model     TEXT    NOT NULL,               -- the model as JSON
    PRIMARY KEY (tenant_id, fitted_at)
) WITHOUT ROWID;
