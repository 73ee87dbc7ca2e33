-- Session service schema. Amounts are integers in minor units; NUMERIC(78,0) holds any uint256 token amount.

-- A merchant's payment settings; absent row = defaults (EUR, no crypto). The row is also the deposit-address
-- counter: CreateSession for web3 takes next_derivation_index under the row lock in its own transaction, so
-- two sessions can never get one address.
CREATE TABLE payment_settings (
    merchant_id             uuid PRIMARY KEY,
    default_currency        text NOT NULL DEFAULT 'EUR',
    onchain_chain_id        bigint CHECK (onchain_chain_id > 0),
    onchain_xpub            text,
    onchain_min_confirmations integer CHECK (onchain_min_confirmations >= 1),
    -- [{"address": "0x..", "symbol": "USDC", "decimals": 6}]
    onchain_tokens          jsonb NOT NULL DEFAULT '[]'::jsonb,
    next_derivation_index   bigint NOT NULL DEFAULT 0 CHECK (next_derivation_index >= 0),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK ((onchain_chain_id IS NULL) = (onchain_xpub IS NULL))
);

CREATE TABLE sessions (
    id                      uuid PRIMARY KEY,
    merchant_id             uuid NOT NULL,
    mode                    text NOT NULL CHECK (mode IN ('test', 'live')),
    status                  text NOT NULL CHECK (status IN ('created', 'pending', 'paid', 'failed', 'expired')),
    amount_minor            numeric(78, 0) NOT NULL CHECK (amount_minor > 0),
    currency                text NOT NULL,
    exponent                smallint NOT NULL CHECK (exponent BETWEEN 0 AND 18),
    provider                text NOT NULL CHECK (provider IN ('stripe', 'onecom', 'web3')),
    customer_email          text,
    metadata                jsonb NOT NULL DEFAULT '{}'::jsonb,
    description             text NOT NULL DEFAULT 'API access',
    created_at              timestamptz NOT NULL DEFAULT now(),
    expires_at              timestamptz NOT NULL,
    paid_at                 timestamptz,
    -- When the session reached paid, failed or expired (ListActiveDeposits looks back from here).
    closed_at               timestamptz,
    -- The provider reference (PaymentIntent, transaction, tx hash) of THE payment: a second event naming
    -- it is `already_paid`, any other money is a double charge.
    paid_reference          text,
    received_minor          numeric(78, 0),
    received_exponent       smallint,
    idempotency_key         text,
    request_fingerprint     text,
    provider_session_id     text,
    provider_checkout_url   text,
    chain_id                bigint,
    deposit_address         text,
    token_address           text,
    min_confirmations       integer,
    derivation_index        bigint,
    fulfilment_status       text NOT NULL DEFAULT 'none' CHECK (fulfilment_status IN ('none', 'pending', 'done')),
    invoice_id              text,
    invoice_number          text,
    api_key_id              text,
    access_token_id         text,
    CHECK ((status = 'paid') = (paid_reference IS NOT NULL)),
    CHECK (provider <> 'web3' OR deposit_address IS NOT NULL)
);
CREATE UNIQUE INDEX sessions_idempotency ON sessions (merchant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX sessions_merchant_newest ON sessions (merchant_id, created_at DESC, id DESC);
CREATE INDEX sessions_due ON sessions (expires_at) WHERE status = 'created';
CREATE INDEX sessions_paid_reference ON sessions (provider, paid_reference) WHERE paid_reference IS NOT NULL;
CREATE UNIQUE INDEX sessions_deposit_address ON sessions (chain_id, lower(deposit_address))
    WHERE deposit_address IS NOT NULL;
CREATE INDEX sessions_active_deposits ON sessions (chain_id, status, closed_at) WHERE provider = 'web3';

-- Every move (and every recorded no-move such as attempt_failed), oldest first.
CREATE TABLE session_history (
    id              bigserial PRIMARY KEY,
    session_id      uuid NOT NULL REFERENCES sessions (id),
    from_status     text NOT NULL,
    to_status       text NOT NULL,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    source_event_id text NOT NULL,
    note            text NOT NULL DEFAULT ''
);
CREATE INDEX session_history_session ON session_history (session_id, id);

-- The first final outcome of each provider event: a redelivery returns it and changes nothing.
CREATE TABLE processed_events (
    provider            text NOT NULL,
    provider_event_id   text NOT NULL,
    session_id          uuid NOT NULL REFERENCES sessions (id),
    outcome             text NOT NULL,
    provider_reference  text,
    quarantine_id       uuid,
    processed_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, provider_event_id)
);
CREATE INDEX processed_events_reference ON processed_events (provider, provider_reference)
    WHERE provider_reference IS NOT NULL;

-- Money events a person must look at. Never deleted.
CREATE TABLE quarantine (
    id                  uuid PRIMARY KEY,
    merchant_id         uuid NOT NULL,
    session_id          uuid NOT NULL REFERENCES sessions (id),
    reason              text NOT NULL CHECK (reason IN ('amount_mismatch', 'overpaid', 'payment_on_closed_session',
                                                        'mode_mismatch', 'refunded', 'disputed')),
    note                text NOT NULL DEFAULT '',
    provider            text NOT NULL,
    provider_event_id   text NOT NULL,
    provider_reference  text,
    amount_minor        numeric(78, 0),
    amount_currency     text,
    amount_exponent     smallint,
    surplus_minor       numeric(78, 0),
    surplus_exponent    smallint,
    status              text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'refunded', 'dismissed', 'accepted')),
    resolution_note     text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    resolved_at         timestamptz
);
CREATE INDEX quarantine_merchant_newest ON quarantine (merchant_id, created_at DESC, id DESC);

CREATE TABLE session_alerts (
    session_id  uuid NOT NULL REFERENCES sessions (id),
    code        text NOT NULL,
    reference   text NOT NULL DEFAULT '',
    detail      text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, code, reference)
);

-- Transactional outbox: 'fulfil' rows are written in the transaction that makes a session paid, 'email'
-- rows in the one that records the fulfilment. A worker leases a row (locked_until), commits, does the
-- calls with no transaction open, then completes it.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    session_id      uuid NOT NULL REFERENCES sessions (id),
    kind            text NOT NULL CHECK (kind IN ('fulfil', 'email')),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz,
    UNIQUE (session_id, kind)
);
CREATE INDEX outbox_ready ON outbox (next_attempt_at) WHERE status = 'pending';

-- Wakes the dispatchers on commit (NOTIFY is delivered only when the inserting transaction commits).
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('session_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Append-only audit trail of every move and every fulfilment step.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    session_id  uuid,
    merchant_id uuid,
    actor       text NOT NULL,
    action      text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_session ON audit_log (session_id, id);
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM paygate_session;
REVOKE UPDATE, DELETE, TRUNCATE ON session_history FROM paygate_session;
