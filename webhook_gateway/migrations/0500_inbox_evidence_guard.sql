-- Records an auditor trusts (issue 20, contract §9). The gateway has no purely append-only table today:
-- inbox_events moves status/attempts/outcome as an event is applied, and the chain ledger re-points deposits
-- after a reorg. What the provider sent, though, is evidence: 0002 took UPDATE of those columns and DELETE
-- from the runtime role; this trigger binds the owner too (and any role granted more later), and refuses
-- TRUNCATE, until the owner drops or disables it explicitly (DDL).

CREATE FUNCTION inbox_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.id, NEW.provider, NEW.event_id, NEW.event_type, NEW.raw_body, NEW.received_at)
           IS NOT DISTINCT FROM (OLD.id, OLD.provider, OLD.event_id, OLD.event_type, OLD.raw_body, OLD.received_at)
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

CREATE TRIGGER inbox_events_evidence BEFORE UPDATE OR DELETE ON inbox_events
    FOR EACH ROW EXECUTE FUNCTION inbox_events_guard();
CREATE TRIGGER inbox_events_no_truncate BEFORE TRUNCATE ON inbox_events
    FOR EACH STATEMENT EXECUTE FUNCTION inbox_events_guard();
REVOKE TRUNCATE ON inbox_events FROM paygate_gateway;
