-- Webhook inbox: every verified provider event, stored (and committed) before the gateway answers 2xx.
-- UNIQUE (provider, event_id) is the dedupe: a redelivery finds the row and is never applied twice.
-- Rows in status `received` are due for an apply attempt at next_attempt_at; the relay claims them with
-- FOR UPDATE SKIP LOCKED and pushes next_attempt_at forward (a lease), so several gateways share the work.
CREATE TABLE inbox_events (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    provider            text NOT NULL CHECK (provider IN ('stripe', 'onecom', 'web3')),
    event_id            text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    event_type          text NOT NULL,
    raw_body            bytea NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now(),
    status              text NOT NULL
        CHECK (status IN ('received', 'applied', 'duplicate', 'ignored', 'quarantined', 'failed')),
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at     timestamptz,
    last_error          text,
    -- The session service's outcome (applied, amount_mismatch, ...), the ignore reason (unknown_type,
    -- no_session_reference, ...) or the gateway's own verdict (unknown_session).
    outcome             text,
    session_id          uuid,
    provider_reference  text,
    -- Learned from the session service's reply; NULL while the session is unknown.
    merchant_id         uuid,
    mode                text CHECK (mode IN ('test', 'live')),
    quarantine_id       text,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inbox_events_provider_event UNIQUE (provider, event_id),
    CONSTRAINT inbox_events_due CHECK (status <> 'received' OR next_attempt_at IS NOT NULL)
);

CREATE INDEX inbox_events_due_idx ON inbox_events (next_attempt_at) WHERE status = 'received';
CREATE INDEX inbox_events_merchant_idx ON inbox_events (merchant_id, received_at DESC, id DESC)
    WHERE merchant_id IS NOT NULL;
CREATE INDEX inbox_events_unmatched_idx ON inbox_events (received_at DESC, id DESC) WHERE merchant_id IS NULL;

-- What the provider sent is evidence: the running gateway may move an event's status, never rewrite or
-- delete what was received.
REVOKE UPDATE, DELETE ON inbox_events FROM paygate_gateway;
GRANT UPDATE (status, attempts, next_attempt_at, last_error, outcome, merchant_id, mode, quarantine_id, updated_at)
    ON inbox_events TO paygate_gateway;
