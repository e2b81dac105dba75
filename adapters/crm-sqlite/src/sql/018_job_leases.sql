-- The job runner's leases (crm_core::service::Jobs): who runs a tenant's job, until when.
CREATE TABLE job_leases (
    tenant_id BLOB    NOT NULL,
    job       TEXT    NOT NULL,
    holder    BLOB    NOT NULL,
    until     INTEGER NOT NULL,  -- microseconds since the Unix epoch
    PRIMARY KEY (tenant_id, job)
) WITHOUT ROWID;
