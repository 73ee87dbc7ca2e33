-- Customer portal (contract §12): what a key may do (scopes, narrowed by the customer within the merchant's
-- grant), where it may be used from (an IP allow-list), and how much it is used (per-day counts).

-- granted_scopes is what the merchant allowed for the session; scopes what the key has now (a subset, or the
-- same). '*' means every scope. ip_allowlist empty means any address.
ALTER TABLE api_keys
    ADD COLUMN granted_scopes text[] NOT NULL DEFAULT '{*}',
    ADD COLUMN scopes         text[] NOT NULL DEFAULT '{*}',
    ADD COLUMN ip_allowlist   cidr[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT api_keys_scopes_bounded CHECK (cardinality(scopes) BETWEEN 1 AND 32
                                                  AND cardinality(granted_scopes) BETWEEN 1 AND 32),
    ADD CONSTRAINT api_keys_allowlist_bounded CHECK (cardinality(ip_allowlist) <= 32);

-- Successful verifications per key and UTC day, written by the batched usage recorder (one upsert a second).
CREATE TABLE api_key_usage_daily (
    key_id  uuid NOT NULL REFERENCES api_keys(id),
    day     date NOT NULL,
    count   bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (key_id, day)
);

-- Contact-form messages a customer sent to the merchant from the portal: the rate limit counts these rows.
-- Only the size is kept, not the text (the mail carries it).
CREATE TABLE support_messages (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id  uuid NOT NULL REFERENCES merchants(id),
    session_id   uuid NOT NULL,
    chars        integer NOT NULL CHECK (chars >= 0),
    sent_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX support_messages_session ON support_messages (session_id, sent_at);
CREATE INDEX support_messages_merchant ON support_messages (merchant_id, sent_at);
