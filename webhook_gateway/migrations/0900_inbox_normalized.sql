-- Issue 15 item 4 and issue 16: an event is normalised once, by the webhook handler that verified it, and
-- stored normalised beside what the provider sent. The relay applies the stored form instead of parsing and
-- normalising the raw body again (webhook_gateway/providers/normalized_json.py). NULL for rows stored before
-- this column and for events no webhook stored (reconciliation): the relay normalises their raw body.
-- Written once by the INSERT, never updated (the runtime role has no UPDATE on it, see 0002).
ALTER TABLE inbox_events ADD COLUMN normalized jsonb;

-- The evidence guard of 0500 now covers the stored reading too. It fires only for an UPDATE that names one
-- of the evidence columns (every UPDATE the gateway runs names none), instead of comparing the raw body,
-- detoasted twice, on each of an event's status moves. A rewrite of evidence must name the column, and is
-- still refused for every role; DELETE and TRUNCATE are refused as before.
CREATE OR REPLACE FUNCTION inbox_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.id, NEW.provider, NEW.event_id, NEW.event_type, NEW.raw_body, NEW.received_at, NEW.normalized)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.provider, OLD.event_id, OLD.event_type, OLD.raw_body, OLD.received_at, OLD.normalized)
        THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'gateway.inbox_events: what the provider sent is never rewritten'
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'the owner must drop or disable the trigger explicitly to change evidence';
    END IF;
    RAISE EXCEPTION 'gateway.inbox_events is never emptied: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'the owner must drop or disable the trigger explicitly to change evidence';
END $$;

DROP TRIGGER inbox_events_evidence ON inbox_events;
CREATE TRIGGER inbox_events_evidence
    BEFORE UPDATE OF id, provider, event_id, event_type, raw_body, received_at, normalized OR DELETE
    ON inbox_events
    FOR EACH ROW EXECUTE FUNCTION inbox_events_guard();
