-- Refunds and disputes (issue 19, contract §6, §8).

-- `refunded`: the whole amount went back (refunds or a lost dispute). The session keeps the reference of the
-- payment that paid it, so refund and dispute events still find it and a re-report is `already_paid`.
ALTER TABLE sessions DROP CONSTRAINT sessions_status_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_status_check
    CHECK (status IN ('created', 'pending', 'paid', 'failed', 'expired', 'refunded'));
DO $$
DECLARE
    found text;
BEGIN
    SELECT conname INTO found FROM pg_constraint
     WHERE conrelid = 'sessions'::regclass AND contype = 'c'
       AND pg_get_constraintdef(oid) LIKE '%paid_reference IS NOT NULL%';
    IF found IS NOT NULL THEN
        EXECUTE format('ALTER TABLE sessions DROP CONSTRAINT %I', found);
    END IF;
END $$;
ALTER TABLE sessions ADD CONSTRAINT sessions_paid_reference
    CHECK ((status IN ('paid', 'refunded')) = (paid_reference IS NOT NULL));

ALTER TABLE sessions
    -- The sum of what the session's refunds credit (each refund's credit note says its part).
    ADD COLUMN amount_refunded_minor numeric(78, 0) NOT NULL DEFAULT 0 CHECK (amount_refunded_minor >= 0),
    -- The largest total the provider reported refunded for the payment (Stripe's amount_refunded), in the
    -- session's minor units: paygate never credits more.
    ADD COLUMN provider_refunded_minor numeric(78, 0) CHECK (provider_refunded_minor >= 0),
    ADD COLUMN dispute_status text CHECK (dispute_status IN ('open', 'won', 'lost')),
    ADD COLUMN dispute_id text,
    -- What the session's customer keys should be (derived from status and dispute), and what the keys service
    -- last confirmed. The refund effects worker brings the second to the first.
    ADD COLUMN key_access text NOT NULL DEFAULT 'active' CHECK (key_access IN ('active', 'suspended', 'revoked')),
    ADD COLUMN key_access_applied text NOT NULL DEFAULT 'active'
        CHECK (key_access_applied IN ('active', 'suspended', 'revoked')),
    ADD CONSTRAINT sessions_refunded_within_amount CHECK (amount_refunded_minor <= amount_minor);
CREATE INDEX sessions_key_access_due ON sessions (id) WHERE key_access <> key_access_applied;
-- Refund and dispute events that name only the charge find the session through it.
ALTER TABLE sessions ADD COLUMN provider_charge_id text;
CREATE INDEX sessions_charge ON sessions (provider, provider_charge_id) WHERE provider_charge_id IS NOT NULL;

-- One row per refund, whoever started it. `credited_minor` is what its credit note says (0 until it has
-- succeeded, and possibly 0 when the provider's total leaves no room).
CREATE TABLE refunds (
    id                  uuid PRIMARY KEY,
    session_id          uuid NOT NULL REFERENCES sessions (id),
    merchant_id         uuid NOT NULL,
    mode                text NOT NULL CHECK (mode IN ('test', 'live')),
    amount_minor        numeric(78, 0) NOT NULL CHECK (amount_minor > 0),
    credited_minor      numeric(78, 0) NOT NULL DEFAULT 0 CHECK (credited_minor >= 0 AND credited_minor <= amount_minor),
    currency            text NOT NULL,
    exponent            smallint NOT NULL,
    status              text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'canceled')),
    origin              text NOT NULL CHECK (origin IN ('merchant', 'outside', 'provider', 'dispute')),
    provider            text NOT NULL,
    provider_refund_id  text,
    reason              text NOT NULL DEFAULT '',
    idempotency_key     text,
    request_fingerprint text,
    credit_note_id      text,
    credit_note_number  text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (credited_minor = 0 OR status = 'succeeded')
);
-- One refund per provider refund id: a refund reported twice, or by the merchant and the provider, is one.
CREATE UNIQUE INDEX refunds_provider_refund ON refunds (session_id, provider_refund_id)
    WHERE provider_refund_id IS NOT NULL;
CREATE UNIQUE INDEX refunds_idempotency ON refunds (merchant_id, mode, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX refunds_session ON refunds (session_id, created_at);
-- Refunds whose credit note is still to be issued.
CREATE INDEX refunds_credit_due ON refunds (created_at)
    WHERE status = 'succeeded' AND credited_minor > 0 AND credit_note_id IS NULL;
