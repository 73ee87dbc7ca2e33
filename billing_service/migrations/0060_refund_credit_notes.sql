-- Refunds (issue 19, contract §8): one credit note per refund, numbered in the merchant's sequence like every
-- document, referencing the session's invoice, for the refund's amount. A partial refund's credit note leaves
-- the invoice standing (`issued`); only VoidInvoice voids it. The credit notes of one invoice never add up to
-- more than it (checked by IssueCreditNote under the invoice's row lock).
ALTER TABLE invoices ADD COLUMN refund_id uuid;
ALTER TABLE invoices ADD CONSTRAINT invoices_refund_is_credit_note CHECK (refund_id IS NULL OR kind = 'credit_note');
-- The voiding credit note stays one per invoice; refund credit notes are one per refund instead.
DROP INDEX invoices_one_credit_note;
CREATE UNIQUE INDEX invoices_one_credit_note ON invoices (credits_invoice_id)
    WHERE credits_invoice_id IS NOT NULL AND refund_id IS NULL;
CREATE UNIQUE INDEX invoices_one_per_refund ON invoices (refund_id) WHERE refund_id IS NOT NULL;
