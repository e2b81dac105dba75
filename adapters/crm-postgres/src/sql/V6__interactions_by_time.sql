-- Interactions of a tenant by when they occurred (KPI rules and scorecards over
-- interactions).
CREATE INDEX interactions_by_time ON interactions (tenant_id, occurred_at, id);
