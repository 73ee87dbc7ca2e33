-- Billing schema: merchant profiles, gapless invoice counters, immutable invoices and an append-only audit.
-- Runs as paygate_billing_owner; the service connects as paygate_billing, whose privileges are cut below
-- so that the database itself refuses edits to issued documents, whatever the application does.

-- Per-merchant billing profile (seller on invoices, invoice prefix, tax rate, numbering policy).
CREATE TABLE billing_profiles (
    merchant_id             text PRIMARY KEY CHECK (length(merchant_id) BETWEEN 1 AND 200),
    seller_name             text NOT NULL DEFAULT '',
    seller_email            text NOT NULL DEFAULT '',
    seller_address_lines    text[] NOT NULL DEFAULT '{}',
    seller_country          text NOT NULL DEFAULT '',
    seller_tax_id           text NOT NULL DEFAULT '',
    invoice_prefix          text NOT NULL DEFAULT 'INV' CHECK (invoice_prefix ~ '^[A-Z0-9]{1,12}$'),
    tax_rate_bps            integer NOT NULL DEFAULT 0 CHECK (tax_rate_bps BETWEEN 0 AND 10000),
    reset_numbering_yearly  boolean NOT NULL DEFAULT false,
    support_email           text NOT NULL DEFAULT '',
    updated_at              timestamptz NOT NULL DEFAULT now()
);
-- Profiles are replaced, never removed: a merchant's past invoices already carry their seller snapshot.
REVOKE DELETE ON billing_profiles FROM paygate_billing;

-- One row per numbering sequence. `period` is 0 for the never-resetting sequence, else the UTC year.
-- The row is incremented in the issuing statement itself, so a rolled-back issue never burns a number
-- (a Postgres sequence would).
CREATE TABLE invoice_counters (
    merchant_id    text NOT NULL,
    mode           text NOT NULL CHECK (mode IN ('test', 'live')),
    period         integer NOT NULL CHECK (period >= 0),
    last_sequence  bigint NOT NULL CHECK (last_sequence >= 1),
    PRIMARY KEY (merchant_id, mode, period)
);
-- Deleting a counter would restart a sequence at 1; the unique index on invoices would refuse the
-- duplicate anyway, but the runtime role has no business deleting one.
REVOKE DELETE ON invoice_counters FROM paygate_billing;

CREATE TABLE invoices (
    id                  uuid PRIMARY KEY,
    merchant_id         text NOT NULL,
    mode                text NOT NULL CHECK (mode IN ('test', 'live')),
    kind                text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    number              text NOT NULL,
    counter_period      integer NOT NULL,
    sequence            bigint NOT NULL CHECK (sequence >= 1),
    session_id          text NOT NULL,
    seller              jsonb NOT NULL,
    buyer               jsonb NOT NULL,
    -- Line items live on the row so that they share its immutability; nothing can edit one line alone.
    line_items          jsonb NOT NULL,
    currency            text NOT NULL,
    exponent            smallint NOT NULL CHECK (exponent BETWEEN 0 AND 18),
    subtotal            numeric(78, 0) NOT NULL,
    tax_rate_bps        integer NOT NULL CHECK (tax_rate_bps BETWEEN 0 AND 10000),
    tax                 numeric(78, 0) NOT NULL,
    total               numeric(78, 0) NOT NULL,
    issued_at           timestamptz NOT NULL,
    paid_at             timestamptz,
    status              text NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'void')),
    credits_invoice_id  uuid REFERENCES invoices (id),
    credit_note_id      uuid REFERENCES invoices (id),
    reason              text NOT NULL DEFAULT '',
    CHECK (subtotal + tax = total),
    CHECK ((kind = 'invoice' AND total > 0 AND credits_invoice_id IS NULL)
        OR (kind = 'credit_note' AND total < 0 AND credits_invoice_id IS NOT NULL AND credit_note_id IS NULL
            AND status = 'issued')),
    CHECK ((status = 'void') = (credit_note_id IS NOT NULL)),
    -- Gapless and unique within a sequence; the number itself is unique per merchant and mode.
    UNIQUE (merchant_id, mode, counter_period, sequence),
    UNIQUE (merchant_id, mode, number)
);
-- One credit note per invoice. Partial, so that issuing an invoice (NULL here) maintains no entry at all.
CREATE UNIQUE INDEX invoices_one_credit_note ON invoices (credits_invoice_id) WHERE credits_invoice_id IS NOT NULL;

-- IssueInvoice is idempotent on the session: one invoice per session. Partial, because a credit note keeps
-- the session id of the invoice it cancels.
CREATE UNIQUE INDEX invoices_one_per_session ON invoices (session_id) WHERE kind = 'invoice';

-- Serves RevenueSummary (merchant, mode, issued_at range; kind/currency/exponent/total from the index
-- alone, so an index-only scan once the visibility map is set) and ListInvoices (newest first, keyset
-- cursor on (issued_at, id)). status is left out on purpose: it is the one mutable column, and keeping it
-- out of every index lets the void UPDATE stay a HOT update.
CREATE INDEX invoices_merchant_issued ON invoices (merchant_id, mode, issued_at, id)
    INCLUDE (kind, currency, exponent, total);

-- Immutability, part 1: privileges. The runtime role may insert, and update only the two void columns.
REVOKE UPDATE, DELETE, TRUNCATE ON invoices FROM paygate_billing;
GRANT UPDATE (status, credit_note_id) ON invoices TO paygate_billing;

-- Immutability, part 2: a trigger, which also binds the owner and any role granted more later.
CREATE FUNCTION invoices_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - 'status' - 'credit_note_id') IS DISTINCT FROM (to_jsonb(OLD) - 'status' - 'credit_note_id') THEN
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
CREATE TRIGGER invoices_guard_update BEFORE UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_guard_update();

CREATE FUNCTION invoices_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'issued invoices are never deleted' USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER invoices_refuse_delete BEFORE DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_refuse_delete();

-- Append-only audit: one row per issued invoice or credit note and per void, written by triggers so that
-- no code path can issue a document without its audit row. The trigger runs as the owner (SECURITY
-- DEFINER), so the runtime role needs no write privilege on the audit at all.
CREATE TABLE billing_audit (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    event        text NOT NULL CHECK (event IN ('invoice_issued', 'credit_note_issued', 'invoice_voided')),
    invoice_id   uuid NOT NULL,
    merchant_id  text NOT NULL,
    mode         text NOT NULL,
    number       text NOT NULL,
    session_id   text NOT NULL,
    currency     text NOT NULL,
    total        numeric(78, 0) NOT NULL,
    related_id   uuid,
    db_user      text NOT NULL DEFAULT session_user
);
CREATE INDEX billing_audit_invoice ON billing_audit (invoice_id);
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON billing_audit FROM paygate_billing;

CREATE FUNCTION billing_audit_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = billing, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO billing_audit (event, invoice_id, merchant_id, mode, number, session_id, currency, total, related_id)
        VALUES (CASE NEW.kind WHEN 'invoice' THEN 'invoice_issued' ELSE 'credit_note_issued' END,
                NEW.id, NEW.merchant_id, NEW.mode, NEW.number, NEW.session_id, NEW.currency, NEW.total,
                NEW.credits_invoice_id);
    ELSIF NEW.status = 'void' AND OLD.status = 'issued' THEN
        INSERT INTO billing_audit (event, invoice_id, merchant_id, mode, number, session_id, currency, total, related_id)
        VALUES ('invoice_voided', NEW.id, NEW.merchant_id, NEW.mode, NEW.number, NEW.session_id, NEW.currency,
                NEW.total, NEW.credit_note_id);
    END IF;
    RETURN NULL;
END $$;
REVOKE EXECUTE ON FUNCTION billing_audit_write() FROM PUBLIC, paygate_billing;
CREATE TRIGGER billing_audit_write AFTER INSERT OR UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION billing_audit_write();
CREATE FUNCTION billing_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the billing audit is append-only' USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER billing_audit_append_only BEFORE UPDATE OR DELETE ON billing_audit
    FOR EACH ROW EXECUTE FUNCTION billing_audit_refuse_change();

-- The stored invoice number, spelled exactly as billing_service.domain.numbering.format_invoice_number
-- spells it (tests compare the two). Formatting in SQL lets one statement draw the number and insert the
-- invoice, so the hot counter row is locked only for that statement and its commit.
CREATE FUNCTION format_invoice_number(prefix text, year integer, seq bigint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT prefix || '-' || lpad(year::text, 4, '0') || '-'
        || CASE WHEN seq < 1000000 THEN lpad(seq::text, 6, '0') ELSE seq::text END
$$;
