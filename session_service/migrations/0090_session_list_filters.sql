-- Session list filters (ListSessions, GET /v1/sessions, the dashboard): a customer's sessions are looked up by
-- email, exact and case-insensitive, inside the (merchant, mode) scope, newest first. The other filters
-- (provider, created range, amount, currency) ride on sessions_merchant_newest.
CREATE INDEX sessions_merchant_email
    ON sessions (merchant_id, mode, lower(customer_email), created_at DESC, id DESC);

