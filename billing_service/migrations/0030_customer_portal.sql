-- Customer portal (contract §12): a support URL beside the support email, and a lookup of every document
-- (invoice or credit note) of a set of sessions, for the customer's list of receipts.
ALTER TABLE billing_profiles
    ADD COLUMN support_url text NOT NULL DEFAULT '' CHECK (length(support_url) <= 500);
CREATE INDEX invoices_by_session_all_kinds ON invoices (session_id);
