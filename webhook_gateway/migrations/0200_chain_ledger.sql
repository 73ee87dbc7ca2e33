-- The on-chain deposit ledger (issue 7). The chain is the truth; these rows are what the gateway has read
-- from it, so that a transfer is counted once, for one session, however many paths report it.
--
-- The key is (chain_id, tx_hash, log_index) with log_index = -1 for the native coin: a NULL log index would
-- not deduplicate under a unique constraint. session_id is NOT part of the key, so the same transfer can
-- never count for a second session.
CREATE TABLE chain_deposits (
    chain_id          bigint NOT NULL CHECK (chain_id > 0),
    tx_hash           text NOT NULL CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    log_index         integer NOT NULL CHECK (log_index >= -1),
    session_id        uuid NOT NULL,
    deposit_address   text NOT NULL,
    -- ERC-20 contract, or NULL for the native coin.
    token             text,
    from_address      text NOT NULL,
    amount_minor      numeric(78, 0) NOT NULL CHECK (amount_minor > 0),
    block_number      bigint NOT NULL CHECK (block_number >= 0),
    block_hash        text NOT NULL,
    block_timestamp   bigint NOT NULL,
    -- False once a re-check found block_hash no longer on the canonical chain (a reorg); may turn true
    -- again if the tx is mined anew.
    canonical         boolean NOT NULL DEFAULT true,
    -- Which path saw it first: the notifier's webhook or the chain watcher.
    source            text NOT NULL CHECK (source IN ('webhook', 'watcher')),
    -- Set when the deposit went into the session's confirmed total (claimed) or was sent on its own as
    -- late or extra money (quarantined by the session service).
    claimed           boolean NOT NULL DEFAULT false,
    reported_as       text CHECK (reported_as IN ('late', 'extra')),
    first_seen_at     timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chain_deposits_transfer PRIMARY KEY (chain_id, tx_hash, log_index)
);
CREATE INDEX chain_deposits_session_idx ON chain_deposits (session_id);
CREATE INDEX chain_deposits_recent_idx ON chain_deposits (chain_id, block_number);

-- The moment a session's confirmed total first reached its price: what was counted, decided once.
-- The row is written before the `succeeded` event is sent, so every retry (and every replica) sends the same
-- amount under the same event id, and money that arrives later is told apart as extra.
CREATE TABLE chain_confirmations (
    session_id          uuid PRIMARY KEY,
    chain_id            bigint NOT NULL,
    amount_minor        numeric(78, 0) NOT NULL CHECK (amount_minor > 0),
    -- The confirmed height the total was read at; for native-coin sessions deposits mined at or below it
    -- are inside the balance that was counted.
    confirmed_height    bigint NOT NULL,
    provider_reference  text NOT NULL,
    occurred_at         bigint NOT NULL,
    -- Set once the session service acknowledged the event.
    applied_outcome     text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Where the chain watcher resumes: the last block it scanned (and that block's hash, for the log).
CREATE TABLE chain_cursors (
    chain_id          bigint PRIMARY KEY,
    last_block        bigint NOT NULL CHECK (last_block >= -1),
    last_block_hash   text,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The ledger is evidence: the runtime may re-point a deposit at its new block after a reorg and mark it
-- reported, never delete it.
REVOKE DELETE ON chain_deposits FROM paygate_gateway;
REVOKE DELETE ON chain_confirmations FROM paygate_gateway;
