-- `invoice.issued` without a billing call per event (issue 18). The fulfilment step already holds the invoice
-- IssueInvoice returned; it renders the event object from it (the same renderer as GET /v1/invoices/{id}) and
-- hands it over here, in the statement that records the invoice id (session_repository.record_fulfilment, a
-- sibling CTE). The AFTER trigger that emits the event takes it out again and puts it in the snapshot, so
-- the event is complete at commit: no GetInvoice at delivery or listing. A row lives only inside that one
-- statement; the one way one stays behind is two fulfilment attempts of a session racing (lease run out),
-- where the second finds the invoice id already recorded and fires no event: a few bytes, harmless.
CREATE TABLE invoice_event_objects (
    invoice_id  text PRIMARY KEY,
    object      jsonb NOT NULL
);

CREATE OR REPLACE FUNCTION session_merchant_event() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    invoice_object jsonb;
BEGIN
    IF TG_ARGV[0] = 'status' THEN
        PERFORM emit_merchant_event(NEW.merchant_id, NEW.mode, 'session.' || NEW.status, 'session',
                                    NEW.id::text, session_snapshot(NEW));
    ELSE
        DELETE FROM invoice_event_objects WHERE invoice_id = NEW.invoice_id RETURNING object INTO invoice_object;
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
