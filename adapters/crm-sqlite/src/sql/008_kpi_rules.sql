-- A tenant's KPI rules, by key, as JSON.
CREATE TABLE kpi_rules (
    tenant_id BLOB    NOT NULL,
    key       TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    record    TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, key)
) WITHOUT ROWID;
