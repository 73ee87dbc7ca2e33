-- Billing-profile changes join the hash-chained billing audit (contract §9). The seller's name, address and VAT
-- id, the tax rate, the invoice prefix and the numbering policy are printed on legal documents: an auditor must
-- see who changed them, when, and to what.
--
-- Every change of a billing_profiles row (insert, or an update that changes anything but updated_at) is kept
-- whole in billing_profile_versions, append-only, and gets one billing_audit entry `billing_profile_updated`
-- whose related_id is the version's id, so that the entry's hash commits to the version. Both are written by a
-- trigger on billing_profiles, as the owner, in the writer's statement: no code path can change a profile
-- without its version and its audit entry, and an update that changes nothing writes neither.
--
-- Who asked reaches the trigger as the transaction-local setting `paygate.actor` (set_config(..., true)), which
-- the profile writer sets in the upsert's transaction ("merchant_key:<id>", "dashboard:merchant_key:<id>").
-- Unset (an internal caller naming nobody, or the previous release while it still serves): actor NULL, never a
-- stale actor of an earlier write as a column on the profile would keep.

CREATE TABLE IF NOT EXISTS billing_profile_versions (
    id           uuid PRIMARY KEY,
    merchant_id  text NOT NULL,
    mode         text NOT NULL CHECK (mode IN ('test', 'live')),
    -- The billing_profiles row as written, without updated_at (the version's `at` says when).
    profile      jsonb NOT NULL,
    actor        text CHECK (actor IS NULL OR length(actor) <= 200),
    at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS billing_profile_versions_by_profile
    ON billing_profile_versions (merchant_id, mode, at DESC);
-- Only the trigger (as the owner) writes versions; the runtime role may read them.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON billing_profile_versions FROM paygate_billing;
DROP TRIGGER IF EXISTS billing_profile_versions_append_only ON billing_profile_versions;
CREATE TRIGGER billing_profile_versions_append_only BEFORE UPDATE OR DELETE ON billing_profile_versions
    FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();
DROP TRIGGER IF EXISTS billing_profile_versions_no_truncate ON billing_profile_versions;
CREATE TRIGGER billing_profile_versions_no_truncate BEFORE TRUNCATE ON billing_profile_versions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_only_change();

-- A profile entry is about no document: its document columns are NULL (the canonical form spells NULL "~", so
-- `paygate audit verify` needs no change). Dropping NOT NULL is a catalog change only. The new checks are NOT
-- VALID: every existing row satisfied the old NOT NULLs and event list, and validating would scan the audit
-- under this migration's exclusive lock while invoices wait to be issued; they bind every new row all the same.
ALTER TABLE billing_audit
    ALTER COLUMN invoice_id DROP NOT NULL,
    ALTER COLUMN number DROP NOT NULL,
    ALTER COLUMN session_id DROP NOT NULL,
    ALTER COLUMN currency DROP NOT NULL,
    ALTER COLUMN total DROP NOT NULL;
ALTER TABLE billing_audit DROP CONSTRAINT IF EXISTS billing_audit_event_check;
ALTER TABLE billing_audit ADD CONSTRAINT billing_audit_event_check
    CHECK (event IN ('invoice_issued', 'credit_note_issued', 'invoice_voided', 'billing_profile_updated')) NOT VALID;
ALTER TABLE billing_audit DROP CONSTRAINT IF EXISTS billing_audit_document_fields;
ALTER TABLE billing_audit ADD CONSTRAINT billing_audit_document_fields
    CHECK (event = 'billing_profile_updated'
           OR (invoice_id IS NOT NULL AND number IS NOT NULL AND session_id IS NOT NULL AND currency IS NOT NULL
               AND total IS NOT NULL)) NOT VALID;
ALTER TABLE billing_audit DROP CONSTRAINT IF EXISTS billing_audit_profile_version;
ALTER TABLE billing_audit ADD CONSTRAINT billing_audit_profile_version
    CHECK (event <> 'billing_profile_updated' OR related_id IS NOT NULL) NOT VALID;

CREATE OR REPLACE FUNCTION billing_profile_versioned() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = billing, pg_temp AS $$
DECLARE
    content jsonb := to_jsonb(NEW) - 'updated_at';
    version_id uuid := gen_random_uuid();
    -- '' when unset in this transaction (or set by an earlier one of the session): no actor.
    who text := NULLIF(current_setting('paygate.actor', true), '');
BEGIN
    IF TG_OP = 'UPDATE' AND content = to_jsonb(OLD) - 'updated_at' THEN
        RETURN NULL;  -- a write that changes nothing printed is no change
    END IF;
    INSERT INTO billing_profile_versions (id, merchant_id, mode, profile, actor)
    VALUES (version_id, NEW.merchant_id, NEW.mode, content, left(who, 200));
    INSERT INTO billing_audit (event, merchant_id, mode, related_id, actor)
    VALUES ('billing_profile_updated', NEW.merchant_id, NEW.mode, version_id, left(who, 200));
    RETURN NULL;
END $$;
REVOKE EXECUTE ON FUNCTION billing_profile_versioned() FROM PUBLIC, paygate_billing;
DROP TRIGGER IF EXISTS billing_profiles_versioned ON billing_profiles;
CREATE TRIGGER billing_profiles_versioned AFTER INSERT OR UPDATE ON billing_profiles
    FOR EACH ROW EXECUTE FUNCTION billing_profile_versioned();
