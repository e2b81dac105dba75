-- Due instants of scheduled work (see crm_core::schedule): one entry per record and kind.
-- due_at: microseconds since the Unix epoch; 0 when the record changed since its instant
-- was computed (due at once); NULL when nothing is pending until it changes.
-- mark: bumped by every change, so a run stores an instant only if nothing changed since
-- it read the entry.
CREATE TABLE schedule (
    tenant_id bytea  NOT NULL,
    kind      text   NOT NULL,  -- 'case', 'follow_up', 'deal', 'pool'
    id        bytea  NOT NULL,
    due_at    bigint,
    mark      bigint NOT NULL,
    PRIMARY KEY (tenant_id, kind, id)
);
CREATE INDEX schedule_due ON schedule (tenant_id, kind, due_at, id) WHERE due_at IS NOT NULL;

-- The fingerprint of the rules each kind's instants were computed under.
CREATE TABLE schedule_basis (
    tenant_id bytea NOT NULL,
    kind      text  NOT NULL,
    basis     text  NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

-- Marks the entry of (tenant, kind, id) changed, creating it if missing.
CREATE FUNCTION crm_schedule_mark(t bytea, k text, record_id bytea) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO schedule (tenant_id, kind, id, due_at, mark) VALUES (t, k, record_id, 0, 0)
    ON CONFLICT (tenant_id, kind, id) DO UPDATE SET due_at = 0, mark = schedule.mark + 1;
$$;

-- Every write of a case marks its entry and its customer's pool entry (the pool spares
-- customers with open cases).
CREATE FUNCTION crm_schedule_case() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM schedule WHERE tenant_id = OLD.tenant_id AND kind = 'case' AND id = OLD.id;
        RETURN NULL;
    END IF;
    PERFORM crm_schedule_mark(NEW.tenant_id, 'case', NEW.id);
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind = 'pool' AND id = NEW.customer_id;
    IF TG_OP = 'UPDATE' AND OLD.customer_id <> NEW.customer_id THEN
        UPDATE schedule SET due_at = 0, mark = mark + 1
         WHERE tenant_id = NEW.tenant_id AND kind = 'pool' AND id = OLD.customer_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER schedule_case AFTER INSERT OR UPDATE OR DELETE ON cases
    FOR EACH ROW EXECUTE FUNCTION crm_schedule_case();

-- Every write of an owned customer (or one that was owned) marks its follow-up and pool
-- entries; a change of lifecycle or tags (what rules filter customers on) marks its cases
-- and the deals it is the account of.
CREATE FUNCTION crm_schedule_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM schedule
         WHERE tenant_id = OLD.tenant_id AND kind IN ('follow_up', 'pool') AND id = OLD.id;
        RETURN NULL;
    END IF;
    IF NEW.owner_id IS NOT NULL OR (TG_OP = 'UPDATE' AND OLD.owner_id IS NOT NULL) THEN
        PERFORM crm_schedule_mark(NEW.tenant_id, 'follow_up', NEW.id);
        PERFORM crm_schedule_mark(NEW.tenant_id, 'pool', NEW.id);
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.lifecycle IS DISTINCT FROM OLD.lifecycle
        OR NEW.record -> 'tags' IS DISTINCT FROM OLD.record -> 'tags') THEN
        UPDATE schedule SET due_at = 0, mark = mark + 1
         WHERE tenant_id = NEW.tenant_id AND kind = 'case'
           AND id IN (SELECT c.id FROM cases c
                       WHERE c.tenant_id = NEW.tenant_id AND c.customer_id = NEW.id);
        UPDATE schedule SET due_at = 0, mark = mark + 1
         WHERE tenant_id = NEW.tenant_id AND kind = 'deal'
           AND id IN (SELECT o.id FROM opportunities o
                       WHERE o.tenant_id = NEW.tenant_id AND o.account = NEW.id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER schedule_customer AFTER INSERT OR UPDATE OR DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION crm_schedule_customer();

-- The contacts of each deal, kept from its record by the trigger below, so that a
-- contact's interactions find the deals they touch.
CREATE TABLE opportunity_contacts (
    tenant_id   bytea NOT NULL,
    contact     bytea NOT NULL,
    opportunity bytea NOT NULL,
    PRIMARY KEY (tenant_id, contact, opportunity)
);
CREATE INDEX opportunity_contacts_by_deal ON opportunity_contacts (tenant_id, opportunity);

-- Every write of a deal marks its entry and records its contacts.
CREATE FUNCTION crm_schedule_deal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM opportunity_contacts
         WHERE tenant_id = OLD.tenant_id AND opportunity = OLD.id;
    END IF;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM schedule WHERE tenant_id = OLD.tenant_id AND kind = 'deal' AND id = OLD.id;
        RETURN NULL;
    END IF;
    PERFORM crm_schedule_mark(NEW.tenant_id, 'deal', NEW.id);
    INSERT INTO opportunity_contacts (tenant_id, contact, opportunity)
    SELECT NEW.tenant_id, decode(replace(c ->> 'customer', '-', ''), 'hex'), NEW.id
      FROM jsonb_array_elements(NEW.record::jsonb -> 'contacts') AS c
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER schedule_deal AFTER INSERT OR UPDATE OR DELETE ON opportunities
    FOR EACH ROW EXECUTE FUNCTION crm_schedule_deal();

-- An interaction handled by staff marks its customer's follow-up entry and the deals the
-- customer is the account or a contact of: a contact can start a new gap (whose alerts
-- come later than any pending ones, but are new when the last gap's were all raised).
CREATE FUNCTION crm_schedule_interaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind = 'follow_up' AND id = NEW.customer_id;
    UPDATE schedule SET due_at = 0, mark = mark + 1
     WHERE tenant_id = NEW.tenant_id AND kind = 'deal'
       AND id IN (SELECT o.id FROM opportunities o
                   WHERE o.tenant_id = NEW.tenant_id AND o.account = NEW.customer_id
                  UNION
                  SELECT oc.opportunity FROM opportunity_contacts oc
                   WHERE oc.tenant_id = NEW.tenant_id AND oc.contact = NEW.customer_id);
    RETURN NULL;
END $$;
CREATE TRIGGER schedule_interaction AFTER INSERT ON interactions
    FOR EACH ROW WHEN (NEW.handled_by IS NOT NULL)
    EXECUTE FUNCTION crm_schedule_interaction();

-- Records stored before this migration: due at once.
INSERT INTO schedule SELECT tenant_id, 'case', id, 0, 0 FROM cases;
INSERT INTO schedule SELECT tenant_id, 'follow_up', id, 0, 0 FROM customers WHERE owner_id IS NOT NULL;
INSERT INTO schedule SELECT tenant_id, 'pool', id, 0, 0 FROM customers WHERE owner_id IS NOT NULL;
INSERT INTO schedule SELECT tenant_id, 'deal', id, 0, 0 FROM opportunities WHERE outcome = 'open';
INSERT INTO opportunity_contacts (tenant_id, contact, opportunity)
SELECT o.tenant_id, decode(replace(c ->> 'customer', '-', ''), 'hex'), o.id
  FROM opportunities o, jsonb_array_elements(o.record::jsonb -> 'contacts') AS c
ON CONFLICT DO NOTHING;
