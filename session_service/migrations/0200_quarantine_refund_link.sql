-- A `refund_failed` entry names the refund it is about. When billing's credit note for that refund is recorded
-- after the failure, the one open entry of the refund is found by this column and its note names the credit
-- note (session_service/adapters/refund_repository.py `_name_credit_note_or_open`); before, the entry was
-- found by the exact text of its note, which any change to the note's wording would have broken.
-- Nullable and without a default: adding it rewrites nothing. Entries of every other reason leave it NULL.
ALTER TABLE quarantine ADD COLUMN refund_id uuid REFERENCES refunds (id);

-- Entries opened before this migration are linked by the text they were found by until now, once.
UPDATE quarantine q SET refund_id = r.id
  FROM refunds r
 WHERE q.reason = 'refund_failed' AND q.refund_id IS NULL AND r.session_id = q.session_id
   AND starts_with(q.note, 'refund ' || coalesce(r.provider_refund_id, r.id::text) || ' failed after it succeeded');

CREATE INDEX quarantine_refund_failed ON quarantine (refund_id) WHERE refund_id IS NOT NULL;
