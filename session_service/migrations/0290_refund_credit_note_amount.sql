-- What each refund's credit note credits (issue 19). A refund that succeeded, got its credit note and then
-- failed keeps the note (a legal document) while its `credited_minor` drops to 0: without the note's own amount
-- the worker could not tell that credit on paper no standing refund accounts for, and the next refund of the
-- same money got a second note (domain/refunds.py `credit_note_amount`;
-- tests/integration/refunds/test_credit_notes_after_a_failed_refund.py). NULL: no note settled yet; 0: none
-- issued (billing refused one for a voided invoice, or an earlier note already credits the money).
ALTER TABLE refunds ADD COLUMN IF NOT EXISTS credit_note_minor numeric(78, 0) CHECK (credit_note_minor >= 0);

-- Notes settled before this migration. A succeeded refund's note says what it credits; a failed refund's
-- credited amount was reset when it failed, so its note is taken as its amount (what the note said unless the
-- refund went past the price, which a refund that failed almost never did).
UPDATE refunds
   SET credit_note_minor = CASE WHEN credit_note_id LIKE 'skipped:%' THEN 0
                                WHEN status = 'succeeded' THEN credited_minor
                                ELSE amount_minor END
 WHERE credit_note_id IS NOT NULL AND credit_note_minor IS NULL;
