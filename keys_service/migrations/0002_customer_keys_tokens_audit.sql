-- Customer API keys, customer access tokens and the append-only audit trail.

-- A customer key is stored as its SHA-256 hash and a display hint. Until the customer reveals it once in the
-- access portal, its plaintext is kept AES-GCM encrypted (secret_ciphertext); the reveal erases it.
CREATE TABLE api_keys (
    id                   uuid PRIMARY KEY,
    merchant_id          uuid NOT NULL REFERENCES merchants(id),
    session_id           uuid NOT NULL,
    mode                 text NOT NULL CHECK (mode IN ('test', 'live')),
    prefix               text NOT NULL,
    hint                 text NOT NULL,
    key_hash             bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    secret_ciphertext    bytea,
    revealed_at          timestamptz,
    metadata             jsonb NOT NULL DEFAULT '{}'::jsonb,
    rolled_from_id       uuid REFERENCES api_keys(id),
    roll_idempotency_key text CHECK (length(roll_idempotency_key) BETWEEN 1 AND 255),
    created_at           timestamptz NOT NULL DEFAULT now(),
    expires_at           timestamptz,
    revoked_at           timestamptz,
    last_used_at         timestamptz,
    -- Once revealed, no ciphertext may remain.
    CHECK (revealed_at IS NULL OR secret_ciphertext IS NULL)
);
-- IssueCustomerKey is idempotent on the session: one issued key per session (rolled successors share it).
CREATE UNIQUE INDEX api_keys_one_issued_per_session ON api_keys (session_id) WHERE rolled_from_id IS NULL;
-- A key is rolled at most once; a retried roll with the same idempotency key finds its successor.
CREATE UNIQUE INDEX api_keys_one_successor ON api_keys (rolled_from_id) WHERE rolled_from_id IS NOT NULL;
CREATE INDEX api_keys_merchant_listing ON api_keys (merchant_id, created_at DESC, id DESC);
CREATE INDEX api_keys_by_session ON api_keys (session_id, created_at DESC);

-- Access tokens: the claims and signing kid, never the token. GetAccessLink re-signs them (Ed25519 is
-- deterministic), so the same link comes back without the token ever being stored.
CREATE TABLE access_tokens (
    jti          uuid PRIMARY KEY,
    merchant_id  uuid NOT NULL REFERENCES merchants(id),
    session_id   uuid NOT NULL UNIQUE,
    mode         text NOT NULL CHECK (mode IN ('test', 'live')),
    subject      text NOT NULL,
    issuer       text NOT NULL,
    audience     text NOT NULL,
    kid          text NOT NULL,
    iat          bigint NOT NULL,
    exp          bigint NOT NULL CHECK (exp > iat),
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Append-only: the runtime role may insert and read, never change or remove a row.
CREATE TABLE audit_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_type   text NOT NULL CHECK (event_type ~ '^[A-Z_]{3,64}$'),
    merchant_id  uuid,
    object_type  text NOT NULL,
    object_id    text NOT NULL,
    session_id   uuid,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_object ON audit_events (object_id, id);
CREATE INDEX audit_events_merchant ON audit_events (merchant_id, id);
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM paygate_keys;
