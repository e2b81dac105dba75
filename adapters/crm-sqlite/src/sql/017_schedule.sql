-- Due instants of scheduled work (see crm_core::schedule): one entry per record and kind.
-- due_at: microseconds since the Unix epoch; 0 when the record changed since its instant
-- was computed (due at once); NULL when nothing is pending until it changes.
-- mark: bumped by every change, so a run stores an instant only if nothing changed since
-- it read the entry.
CREATE TABLE schedule (
    tenant_id BLOB    NOT NULL,
    kind      TEXT    NOT NULL,  -- 'case', 'follow_up', 'deal', 'pool'
    id        BLOB    NOT NULL,
    due_at    INTEGER,
    mark      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, id)
) WITHOUT ROWID;
CREATE INDEX schedule_due ON schedule (tenant_id, kind, due_at, id) WHERE due_at IS NOT NULL;

-- The fingerprint of the rules each kind's instants were computed under.
CREATE TABLE schedule_basis (
    tenant_id BLOB NOT NULL,
    kind      TEXT NOT NULL,
    basis     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
) WITHOUT ROWID;

-- Every write of a case marks its entry and its customer's pool entry (the pool spares
-- customers with open cases).
CREATE TRIGGER schedule_case_insert AFTER INSERT ON cases BEGIN
    INSERT OR IGNORE INTO schedule VALUES (NEW.tenant_id, 'case', NEW.id, 0, 0);
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind = 'case' AND id = NEW.id;
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind = 'pool' AND id = NEW.customer_id;
END;
CREATE TRIGGER schedule_case_update AFTER UPDATE ON cases BEGIN
    INSERT OR IGNORE INTO schedule VALUES (NEW.tenant_id, 'case', NEW.id, 0, 0);
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind = 'case' AND id = NEW.id;
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind = 'pool' AND id IN (NEW.customer_id, OLD.customer_id);
END;
CREATE TRIGGER schedule_case_delete AFTER DELETE ON cases BEGIN
    DELETE FROM schedule WHERE tenant_id = OLD.tenant_id AND kind = 'case' AND id = OLD.id;
END;

-- Every write of an owned customer (or one that was owned) marks its follow-up and pool
-- entries.
CREATE TRIGGER schedule_customer_insert AFTER INSERT ON customers
WHEN NEW.owner_id IS NOT NULL BEGIN
    INSERT OR IGNORE INTO schedule VALUES (NEW.tenant_id, 'follow_up', NEW.id, 0, 0);
    INSERT OR IGNORE INTO schedule VALUES (NEW.tenant_id, 'pool', NEW.id, 0, 0);
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind IN ('follow_up', 'pool') AND id = NEW.id;
END;
CREATE TRIGGER schedule_customer_update AFTER UPDATE ON customers
WHEN NEW.owner_id IS NOT NULL OR OLD.owner_id IS NOT NULL BEGIN
    INSERT OR IGNORE INTO schedule VALUES (NEW.tenant_id, 'follow_up', NEW.id, 0, 0);
    INSERT OR IGNORE INTO schedule VALUES (NEW.tenant_id, 'pool', NEW.id, 0, 0);
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind IN ('follow_up', 'pool') AND id = NEW.id;
END;
-- A change of lifecycle or tags (what rules filter customers on) marks the customer's
-- cases and the deals it is the account of.
CREATE TRIGGER schedule_customer_scope AFTER UPDATE ON customers
WHEN NEW.lifecycle IS NOT OLD.lifecycle
  OR json_extract(NEW.record, '$.tags') IS NOT json_extract(OLD.record, '$.tags') BEGIN
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind = 'case'
       AND id IN (SELECT id FROM cases WHERE tenant_id = NEW.tenant_id AND customer_id = NEW.id);
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind = 'deal'
       AND id IN (SELECT id FROM opportunities WHERE tenant_id = NEW.tenant_id AND account = NEW.id);
END;
CREATE TRIGGER schedule_customer_delete AFTER DELETE ON customers BEGIN
    DELETE FROM schedule
     WHERE tenant_id = OLD.tenant_id AND kind IN ('follow_up', 'pool') AND id = OLD.id;
END;

-- The contacts of each deal, kept from its record by the triggers below, so that a
-- contact's interactions find the deals they touch.
CREATE TABLE opportunity_contacts (
    tenant_id   BLOB NOT NULL,
    contact     BLOB NOT NULL,
    opportunity BLOB NOT NULL,
    PRIMARY KEY (tenant_id, contact, opportunity)
) WITHOUT ROWID;
CREATE INDEX opportunity_contacts_by_deal ON opportunity_contacts (tenant_id, opportunity);

-- Every write of a deal marks its entry and records its contacts.
CREATE TRIGGER schedule_deal_insert AFTER INSERT ON opportunities BEGIN
    INSERT OR IGNORE INTO schedule VALUES (NEW.tenant_id, 'deal', NEW.id, 0, 0);
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind = 'deal' AND id = NEW.id;
    INSERT OR IGNORE INTO opportunity_contacts
    SELECT NEW.tenant_id, unhex(replace(json_extract(value, '$.customer'), '-', '')), NEW.id
      FROM json_each(NEW.record, '$.contacts');
END;
CREATE TRIGGER schedule_deal_update AFTER UPDATE ON opportunities BEGIN
    INSERT OR IGNORE INTO schedule VALUES (NEW.tenant_id, 'deal', NEW.id, 0, 0);
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind = 'deal' AND id = NEW.id;
    DELETE FROM opportunity_contacts WHERE tenant_id = NEW.tenant_id AND opportunity = NEW.id;
    INSERT OR IGNORE INTO opportunity_contacts
    SELECT NEW.tenant_id, unhex(replace(json_extract(value, '$.customer'), '-', '')), NEW.id
      FROM json_each(NEW.record, '$.contacts');
END;
CREATE TRIGGER schedule_deal_delete AFTER DELETE ON opportunities BEGIN
    DELETE FROM schedule WHERE tenant_id = OLD.tenant_id AND kind = 'deal' AND id = OLD.id;
    DELETE FROM opportunity_contacts WHERE tenant_id = OLD.tenant_id AND opportunity = OLD.id;
END;

-- An interaction handled by staff marks its customer's follow-up entry and the deals the
-- customer is the account or a contact of: a contact can start a new gap (whose alerts
-- come later than any pending ones, but are new when the last gap's were all raised).
CREATE TRIGGER schedule_interaction AFTER INSERT ON interactions
WHEN NEW.handled_by IS NOT NULL BEGIN
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind = 'follow_up' AND id = NEW.customer_id;
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind = 'deal'
       AND id IN (SELECT id FROM opportunities
                   WHERE tenant_id = NEW.tenant_id AND account = NEW.customer_id
                  UNION
                  SELECT opportunity FROM opportunity_contacts
                   WHERE tenant_id = NEW.tenant_id AND contact = NEW.customer_id);
END;

-- Records stored before this migration: due at once.
INSERT INTO schedule SELECT tenant_id, 'case', id, 0, 0 FROM cases;
INSERT INTO schedule SELECT tenant_id, 'follow_up', id, 0, 0 FROM customers WHERE owner_id IS NOT NULL;
INSERT INTO schedule SELECT tenant_id, 'pool', id, 0, 0 FROM customers WHERE owner_id IS NOT NULL;
INSERT INTO schedule SELECT tenant_id, 'deal', id, 0, 0 FROM opportunities WHERE outcome = 'open';
INSERT OR IGNORE INTO opportunity_contacts
SELECT o.tenant_id, unhex(replace(json_extract(c.value, '$.customer'), '-', '')), o.id
  FROM opportunities o, json_each(o.record, '$.contacts') c;
