-- Merchants and their secret keys. Secrets are stored only as SHA-256 hashes.
CREATE TABLE merchants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    key_prefix  text NOT NULL CHECK (key_prefix ~ '^[a-z0-9]{2,16}$'),
    idempotency_key text UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE merchant_secret_keys (
    id          uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants(id),
    mode        text NOT NULL CHECK (mode IN ('test', 'live')),
    key_hash    bytea NOT NULL UNIQUE,
    hint        text NOT NULL,
    idempotency_key text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    UNIQUE (merchant_id, idempotency_key)
);
