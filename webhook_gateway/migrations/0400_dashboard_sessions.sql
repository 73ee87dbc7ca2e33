-- Merchant dashboard sessions (contract §10): a merchant secret key is exchanged once for a random session id
-- carried in an HttpOnly, SameSite=Strict cookie. Only the SHA-256 of the cookie value is stored, with the id
-- of the merchant key that opened it (never the key): every request re-checks that key with the keys service,
-- so a revoked or expired key ends the session on its next request.
CREATE TABLE dashboard_sessions (
    id_hash          bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    merchant_id      uuid NOT NULL,
    merchant_name    text NOT NULL,
    mode             text NOT NULL CHECK (mode IN ('test', 'live')),
    merchant_key_id  uuid NOT NULL,
    csrf_token       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

-- Failed sign-ins per client, for the rate limit (a key has 192 random bits, so this is about noise and
-- cost, not guessing). Old rows are deleted by the gateway's clean-up task.
CREATE TABLE dashboard_sign_in_failures (
    client     text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dashboard_sign_in_failures_client ON dashboard_sign_in_failures (client, failed_at);
