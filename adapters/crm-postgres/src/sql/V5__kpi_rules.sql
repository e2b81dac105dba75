-- A tenant's KPI rules, by key, as JSON.
CREATE TABLE kpi_rules (
    tenant_id bytea  NOT NULL,
    key       text   NOT NULL,
    version   bigint NOT NULL,
    record    text   NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
