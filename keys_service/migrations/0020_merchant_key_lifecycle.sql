-- Merchant secret keys get a lifecycle (list, roll with a grace period, revoke), and a session's access
-- links can be revoked and reissued.

-- What a listing shows instead of the secret: the visible prefix and the last four characters. Existing keys
-- take them from their hint ("sk_test_3xQa…9aZk"), whose tail is the secret's tail.
ALTER TABLE merchant_secret_keys
    ADD COLUMN prefix          text,
    ADD COLUMN last4           text,
    ADD COLUMN expires_at      timestamptz,
    ADD COLUMN last_used_at    timestamptz,
    ADD COLUMN rolled_from_id  uuid REFERENCES merchant_secret_keys(id);
UPDATE merchant_secret_keys SET prefix = 'sk_' || mode || '_', last4 = right(hint, 4);
ALTER TABLE merchant_secret_keys
    ALTER COLUMN prefix SET NOT NULL,
    ALTER COLUMN last4 SET NOT NULL,
    ADD CONSTRAINT merchant_secret_keys_prefix CHECK (prefix IN ('sk_test_', 'sk_live_')),
    ADD CONSTRAINT merchant_secret_keys_last4 CHECK (length(last4) = 4),
    ADD CONSTRAINT merchant_secret_keys_idempotency_key CHECK (length(idempotency_key) BETWEEN 1 AND 255);
CREATE INDEX merchant_secret_keys_listing ON merchant_secret_keys (merchant_id, created_at DESC, id DESC);

-- A session may now have several access tokens over time: the one fulfilment issued (generation 1) and one
-- per reissue. Fulfilment stays idempotent on the session through the generation-1 index; at most one token
-- of a session is unrevoked at any time.
ALTER TABLE access_tokens DROP CONSTRAINT access_tokens_session_id_key;
ALTER TABLE access_tokens ADD COLUMN generation integer NOT NULL DEFAULT 1 CHECK (generation >= 1);
CREATE UNIQUE INDEX access_tokens_session_generation ON access_tokens (session_id, generation);
CREATE UNIQUE INDEX access_tokens_one_current ON access_tokens (session_id) WHERE revoked_at IS NULL;
