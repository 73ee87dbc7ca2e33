-- Modes are separate worlds and events bind to their provider (issue 12, contract §6a).

-- A session created without a provider is a card session ('card') that either card rail may pay; the first
-- payment event binds it to 'stripe' or 'onecom'.
ALTER TABLE sessions DROP CONSTRAINT sessions_provider_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_provider_check
    CHECK (provider IN ('stripe', 'onecom', 'web3', 'card'));

-- An Idempotency-Key belongs to (merchant, mode): a key used in test never answers a live request.
DROP INDEX sessions_idempotency;
CREATE UNIQUE INDEX sessions_idempotency ON sessions (merchant_id, mode, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
DROP INDEX sessions_merchant_newest;
CREATE INDEX sessions_merchant_newest ON sessions (merchant_id, mode, created_at DESC, id DESC);

-- A quarantine entry belongs to one mode: the event's own mode when it is known (a live event's real money
-- is shown to the live world even when it named a test session), else its session's.
ALTER TABLE quarantine ADD COLUMN mode text CHECK (mode IN ('test', 'live'));
UPDATE quarantine q SET mode = s.mode FROM sessions s WHERE s.id = q.session_id;
ALTER TABLE quarantine ALTER COLUMN mode SET NOT NULL;
ALTER TABLE quarantine DROP CONSTRAINT quarantine_reason_check;
ALTER TABLE quarantine ADD CONSTRAINT quarantine_reason_check
    CHECK (reason IN ('amount_mismatch', 'overpaid', 'payment_on_closed_session', 'mode_mismatch',
                      'provider_mismatch', 'refunded', 'disputed'));
DROP INDEX quarantine_merchant_newest;
CREATE INDEX quarantine_merchant_newest ON quarantine (merchant_id, mode, created_at DESC, id DESC);
