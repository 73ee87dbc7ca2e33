-- Who voided an invoice (issue 17: every dashboard action is audited with the dashboard as its actor).
-- The billing audit is written by a trigger, so that no code path can void without its audit row; the actor
-- reaches that trigger as a column the void UPDATE sets (`voided_by`), which the trigger copies into the
-- audit's new `actor` column. NULL: a void from before this migration, or a caller that named nobody.
ALTER TABLE invoices ADD COLUMN voided_by text CHECK (voided_by IS NULL OR length(voided_by) <= 200);
GRANT UPDATE (voided_by) ON invoices TO paygate_billing;
ALTER TABLE billing_audit ADD COLUMN actor text;

-- The one allowed change stays issued -> void with its credit note; voided_by may be set by that change
-- only (the comparison leaves it out like the two void columns; the status check below still binds it).
CREATE OR REPLACE FUNCTION invoices_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - 'status' - 'credit_note_id' - 'voided_by')
       IS DISTINCT FROM (to_jsonb(OLD) - 'status' - 'credit_note_id' - 'voided_by') THEN
        RAISE EXCEPTION 'issued invoices are immutable' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NOT (OLD.kind = 'invoice' AND OLD.status = 'issued' AND NEW.status = 'void'
            AND OLD.credit_note_id IS NULL AND NEW.credit_note_id IS NOT NULL) THEN
        RAISE EXCEPTION 'the only allowed change is status issued -> void with its credit note'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM invoices c
                    WHERE c.id = NEW.credit_note_id AND c.kind = 'credit_note' AND c.credits_invoice_id = OLD.id) THEN
        RAISE EXCEPTION 'credit_note_id must name the credit note that cancels this invoice'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION billing_audit_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = billing, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO billing_audit (event, invoice_id, merchant_id, mode, number, session_id, currency, total, related_id)
        VALUES (CASE NEW.kind WHEN 'invoice' THEN 'invoice_issued' ELSE 'credit_note_issued' END,
                NEW.id, NEW.merchant_id, NEW.mode, NEW.number, NEW.session_id, NEW.currency, NEW.total,
                NEW.credits_invoice_id);
    ELSIF NEW.status = 'void' AND OLD.status = 'issued' THEN
        INSERT INTO billing_audit (event, invoice_id, merchant_id, mode, number, session_id, currency, total,
                                   related_id, actor)
        VALUES ('invoice_voided', NEW.id, NEW.merchant_id, NEW.mode, NEW.number, NEW.session_id, NEW.currency,
                NEW.total, NEW.credit_note_id, NEW.voided_by);
    END IF;
    RETURN NULL;
END $$;
REVOKE EXECUTE ON FUNCTION billing_audit_write() FROM PUBLIC, paygate_billing;
