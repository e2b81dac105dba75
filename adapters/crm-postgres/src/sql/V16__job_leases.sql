-- The job runner's leases (crm_core::service::Jobs): who runs a tenant's job, until when.
CREATE TABLE job_leases (
    tenant_id bytea  NOT NULL,
    job       text   NOT NULL,
    holder    bytea  NOT NULL,
    until     bigint NOT NULL,  -- microseconds since the Unix epoch
    PRIMARY KEY (tenant_id, job)
);
