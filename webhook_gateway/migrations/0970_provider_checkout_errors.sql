-- Why a stripe or onecom session has no provider page: the last failed attempt to create it (at the create, on
-- the checkout page, or on the merchant's `POST /v1/sessions/{id}/provider_checkout`). The create's reply says
-- `provider_checkout_error: {code, message}`; kept here, `GET /v1/sessions/{id}` and the list say it too,
-- across restarts and replicas. One row per session: a later failure replaces it, a later success deletes it,
-- and a session whose page is recorded never shows it (webhook_gateway/service_layer/provider_checkouts.py).
-- The gateway's own record: it never reads the session service's tables.
CREATE TABLE provider_checkout_errors (
    session_id   uuid PRIMARY KEY,
    merchant_id  uuid NOT NULL,
    provider     text NOT NULL CHECK (provider IN ('stripe', 'onecom')),
    code         text NOT NULL CHECK (length(code) BETWEEN 1 AND 100),
    message      text NOT NULL CHECK (length(message) <= 1000),
    failed_at    timestamptz NOT NULL DEFAULT now()
);
