-- Merchant request idempotency: the key is recorded before the work, so two concurrent requests with one key
-- create one object, and a replay returns the first response.
CREATE TABLE idempotency_keys (
    merchant_id     uuid NOT NULL,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint     text NOT NULL,
    status_code     integer,
    response_body   bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
