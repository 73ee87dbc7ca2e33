-- Cross-purchase receipts in the customer portal are shown only once the portal's visitor has proven they read
-- the purchase's email address. The receipts are matched by the opaque subject of that address, and the
-- address is whatever the buyer typed at the merchant's checkout: without the proof, anybody could buy with
-- another person's address and read that person's receipts through the access link the merchant hands back.
--
-- A proof holds for one portal session (one browser's cookie). It comes from the link in the customer's own
-- mail (its `proof` parameter, checked by the keys service) or from a code mailed to the address; the link the
-- merchant hands back proves nothing. The code mailed to the address is stored only as an HMAC keyed by the portal cookie's value, which
-- the database never sees, so a reader of this table cannot recover a code from it.
ALTER TABLE portal_sessions ADD COLUMN email_proven_at timestamptz;

CREATE TABLE portal_email_codes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    portal_hash  bytea NOT NULL CHECK (length(portal_hash) = 32),
    session_id   uuid NOT NULL,
    code_mac     bytea NOT NULL CHECK (length(code_mac) = 32),
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
-- The newest code of a portal session, and the codes a purchase was sent in the last hour (the mail limit).
CREATE INDEX portal_email_codes_portal ON portal_email_codes (portal_hash, created_at DESC);
CREATE INDEX portal_email_codes_session ON portal_email_codes (session_id, created_at);
