-- The `invoice.issued` trigger takes its invoice object by primary key (issue 16). invoice_event_objects
-- holds a row only inside the statement that records an invoice id (0102), so its statistics say "empty"
-- while its pages fill with dead rows until autovacuum comes: the trigger's DELETE, planned for an empty
-- table, read every page of it for each invoice (tests/integration/session/test_fulfilment_records_scale.py).
-- The take is its own function so that it alone is planned without sequential scans: the rest of the trigger
-- (the snapshot, the fan-out to endpoints) keeps the planner's choices.
CREATE OR REPLACE FUNCTION take_invoice_event_object(p_invoice_id text) RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path FROM CURRENT SET enable_seqscan = off AS $$
    DELETE FROM invoice_event_objects WHERE invoice_id = p_invoice_id RETURNING object
$$;

CREATE OR REPLACE FUNCTION session_merchant_event() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    invoice_object jsonb;
BEGIN
    IF TG_ARGV[0] = 'status' THEN
        PERFORM emit_merchant_event(NEW.merchant_id, NEW.mode, 'session.' || NEW.status, 'session',
                                    NEW.id::text, session_snapshot(NEW));
    ELSE
        invoice_object := take_invoice_event_object(NEW.invoice_id);
        PERFORM emit_merchant_event(NEW.merchant_id, NEW.mode, 'invoice.issued', 'invoice', NEW.invoice_id,
                                    jsonb_build_object('invoice_id', NEW.invoice_id,
                                                       'invoice_number', NEW.invoice_number,
                                                       'session_id', NEW.id)
                                    -- Absent (NULL) only for an invoice recorded without its object: the
                                    -- delivery then reads it from billing once, as before.
                                    || CASE WHEN invoice_object IS NULL THEN '{}'::jsonb
                                            ELSE jsonb_build_object('object', invoice_object) END);
    END IF;
    RETURN NULL;
END $$;
