-- Payments the gateway created at a provider (a One.com payment, a Stripe Checkout Session), so that the
-- reconciliation worker knows which sessions have money it can ask about (contract §11). The gateway never
-- reads the session service's tables: it records here what it created itself, and asks the session service
-- for the session's state over gRPC.
CREATE TABLE provider_payments (
    provider            text NOT NULL CHECK (provider IN ('stripe', 'onecom')),
    payment_id          text NOT NULL CHECK (length(payment_id) BETWEEN 1 AND 255),
    session_id          uuid NOT NULL,
    merchant_id         uuid NOT NULL,
    mode                text NOT NULL CHECK (mode IN ('test', 'live')),
    session_expires_at  timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- open: still watched; done: settled (by a webhook or by reconciliation), cancelled, or out of the window.
    state               text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done')),
    checks              integer NOT NULL DEFAULT 0 CHECK (checks >= 0),
    -- When the worker looks at it next; also its lease while a worker has it (pushed forward on claim).
    next_check_at       timestamptz,
    last_checked_at     timestamptz,
    -- The provider's own status at the last read (requires_action, succeeded, complete/paid, ...).
    provider_status     text,
    -- Why it is done (paid_by_webhook, reconciled, canceled, window_closed, ...) or the last error.
    outcome             text,
    last_error          text,
    canceled_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, payment_id),
    CONSTRAINT provider_payments_due CHECK (state <> 'open' OR next_check_at IS NOT NULL)
);

CREATE INDEX provider_payments_due_idx ON provider_payments (next_check_at) WHERE state = 'open';
CREATE INDEX provider_payments_session_idx ON provider_payments (session_id);

REVOKE DELETE ON provider_payments FROM paygate_gateway;

-- Where an inbox event came from: a provider's webhook, or the gateway's own read of the provider's API
-- (reconciliation). Both go through the same apply path; the source is what a person reads afterwards.
ALTER TABLE inbox_events
    ADD COLUMN source text NOT NULL DEFAULT 'webhook' CHECK (source IN ('webhook', 'reconcile'));
