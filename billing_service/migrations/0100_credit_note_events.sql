-- Merchant events of the billing service (contract §7: `credit_note.issued`). Every credit note is a row of
-- `invoices` inserted by billing, whatever issued it: a refund's or a lost dispute's (IssueCreditNote) or a
-- void's (VoidInvoice). So the event is written here, by a trigger, in the very transaction that inserts the
-- credit note: no code path can issue one without its event, and none emits one twice (one outbox row per
-- document). The session service owns merchant events and a service never writes another's tables, so this
-- is billing's own outbox, as the keys service has one (keys migration 0050): the forwarder
-- (billing_service/service_layer/merchant_event_forwarder.py) renders the credit note as GET /v1/invoices/{id}
-- returns it and hands it to the session service's RecordMerchantEvent, idempotent on
-- 'billing:<type>:<document id>', then marks the row forwarded. A credit note never changes once inserted
-- (invoices_guard_update allows only an invoice's issued -> void), so the object rendered when the row is
-- forwarded is the object as it was issued.
CREATE TABLE merchant_event_outbox (
    id              bigserial PRIMARY KEY,
    event_type      text NOT NULL,
    -- The document the event is about (a credit note).
    invoice_id      uuid NOT NULL,
    merchant_id     text NOT NULL,
    mode            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    last_error      text,
    forwarded_at    timestamptz,
    UNIQUE (invoice_id, event_type)
);
CREATE INDEX merchant_event_outbox_due ON merchant_event_outbox (next_attempt_at) WHERE forwarded_at IS NULL;

CREATE FUNCTION credit_note_issued_event() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO merchant_event_outbox (event_type, invoice_id, merchant_id, mode)
    VALUES ('credit_note.issued', NEW.id, NEW.merchant_id, NEW.mode);
    PERFORM pg_notify('billing_merchant_events', '');
    RETURN NULL;
END $$;

-- The WHEN clause is evaluated without calling the function: issuing an invoice costs nothing here.
CREATE TRIGGER invoices_credit_note_issued_event AFTER INSERT ON invoices FOR EACH ROW
    WHEN (NEW.kind = 'credit_note')
    EXECUTE FUNCTION credit_note_issued_event();
