-- The instant before which a tenant's interactions were archived and purged.
CREATE TABLE archive_horizons (
    tenant_id bytea  NOT NULL PRIMARY KEY,
    before    bigint NOT NULL  -- microseconds since the Unix epoch
);
