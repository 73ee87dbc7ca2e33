-- paygate: outside a transaction
-- Money sent to a deposit address in another asset than its session's (ETH to a token session, one of the
-- merchant's other tokens to an ETH session) is recorded like any transfer, never counted for the session, and
-- sent on its own once confirmed, to be quarantined as a currency mismatch (contract §4: money is never
-- dropped). Each row now says which currency it is in (NULL on rows recorded before: those are all in their
-- session's own currency), and `wrong_asset` joins what a transfer may be reported as.
-- Outside a transaction, so the new check is validated without holding the table's exclusive lock while it
-- reads every row; each statement may run again.
ALTER TABLE chain_deposits ADD COLUMN IF NOT EXISTS currency text;
ALTER TABLE chain_deposits ADD COLUMN IF NOT EXISTS exponent integer;
ALTER TABLE chain_deposits DROP CONSTRAINT IF EXISTS chain_deposits_reported_as_kind;
ALTER TABLE chain_deposits ADD CONSTRAINT chain_deposits_reported_as_kind
    CHECK (reported_as IN ('late', 'extra', 'wrong_asset')) NOT VALID;
ALTER TABLE chain_deposits VALIDATE CONSTRAINT chain_deposits_reported_as_kind;
ALTER TABLE chain_deposits DROP CONSTRAINT IF EXISTS chain_deposits_reported_as_check;
