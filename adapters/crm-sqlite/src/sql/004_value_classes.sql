-- RFM scores and segment, and ABC class, per customer.

CREATE TABLE value_classes (
    tenant_id   BLOB    NOT NULL,
    customer_id BLOB    NOT NULL,
    r           INTEGER NOT NULL,
    f           INTEGER NOT NULL,
    m           INTEGER NOT NULL,
    rfm_segment TEXT    NOT NULL,
    abc_class   TEXT    NOT NULL,
    as_of       TEXT    NOT NULL,  -- YYYY-MM-DD
    PRIMARY KEY (tenant_id, customer_id)
) WITHOUT ROWID;
