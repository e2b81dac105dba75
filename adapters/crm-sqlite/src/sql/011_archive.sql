-- The instant before which a tenant's interactions were archived and purged.
CREATE TABLE archive_horizons (
    tenant_id BLOB    NOT NULL PRIMARY KEY,
    before    INTEGER NOT NULL  -- microseconds since the Unix epoch
) WITHOUT ROWID;
