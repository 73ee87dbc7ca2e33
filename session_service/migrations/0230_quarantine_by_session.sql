-- One session's quarantine entries, newest first: what the customer's checkout page reads to say that a payment
-- arrived after the session closed (ListQuarantine's session_id). The quarantine holds few rows per merchant,
-- so building the index takes a moment's lock on it.
CREATE INDEX IF NOT EXISTS quarantine_by_session ON quarantine (session_id, created_at DESC, id DESC);
