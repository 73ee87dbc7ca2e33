-- Customer portal sessions: the access token from the link is exchanged once for a random session id carried
-- in an HttpOnly cookie, so the token leaves the address bar. Only the SHA-256 of the cookie value is stored.
CREATE TABLE portal_sessions (
    id_hash      bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    jti          uuid NOT NULL,
    session_id   uuid NOT NULL,
    merchant_id  uuid NOT NULL,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX portal_sessions_expiry ON portal_sessions (expires_at);
