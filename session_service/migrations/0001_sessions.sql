-- Checkout sessions. Amounts are integers in minor units; NUMERIC(78,0) holds any uint256 token amount.
CREATE TABLE sessions (
    id              uuid PRIMARY KEY,
    merchant_id     uuid NOT NULL,
    mode            text NOT NULL CHECK (mode IN ('test', 'live')),
    status          text NOT NULL CHECK (status IN ('created', 'pending', 'paid', 'failed', 'expired')),
    amount_minor    numeric(78, 0) NOT NULL CHECK (amount_minor > 0),
    currency        text NOT NULL,
    exponent        smallint NOT NULL CHECK (exponent BETWEEN 0 AND 36),
    provider        text NOT NULL,
    customer_email  text,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    description     text NOT NULL DEFAULT 'API access',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    paid_at         timestamptz
);
CREATE INDEX sessions_merchant_created ON sessions (merchant_id, created_at DESC, id DESC);
