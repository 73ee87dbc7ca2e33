-- Refunds paygate could not ask a provider for (a timeout, a 5xx, the circuit open): each stays `pending` in
-- the session service with its amount reserved, and the gateway asks again until the provider answers
-- (webhook_gateway/service_layer/refund_asks.py). Every ask carries the same provider idempotency key
-- (`paygate-refund-<refund id>`), so a first ask that did reach the provider and an ask again make one refund.
-- Before, such a refund stayed pending for good unless the merchant resent the request with the same
-- Idempotency-Key: its amount could never be refunded, and a merchant who sent the refund again without a key
-- refunded the customer twice. The shared lease worker (paygate_runtime/lease_worker.py) works the table:
-- claims are leases (`next_attempt_at`), so gateway replicas share the work; `id` is the worker's row key.
CREATE TABLE provider_refund_asks (
    id               bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    refund_id        uuid PRIMARY KEY,
    merchant_id      uuid NOT NULL,
    mode             text NOT NULL CHECK (mode IN ('test', 'live')),
    session_id       uuid NOT NULL,
    provider         text NOT NULL,
    paid_reference   text NOT NULL,
    amount_minor     numeric(78, 0) NOT NULL CHECK (amount_minor > 0),
    currency         text NOT NULL,
    exponent         integer NOT NULL CHECK (exponent >= 0),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX provider_refund_asks_due ON provider_refund_asks (next_attempt_at);
