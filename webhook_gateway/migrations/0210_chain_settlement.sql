-- On-chain settlement an auditor would sign (issue 13).

-- Contract-internal ETH transfers found in the node's traces are keyed like the rest of the ledger, with
-- log_index = -2 - (the call's position in the tx's trace): -1 stays the tx's own top-level value.
ALTER TABLE chain_deposits DROP CONSTRAINT chain_deposits_log_index_check;
ALTER TABLE chain_deposits ADD CONSTRAINT chain_deposits_log_index_check CHECK (log_index >= -1000000);

-- One row per watched deposit address (one per web3 session): where its money starts and how reading it
-- goes. `start_block` is the last block stamped before the session was created: the balance baseline on a
-- node without traces, and the line before which no transfer counts. Failures are counted per address, so
-- one address whose reads fail is retried with backoff while the watcher goes on for everyone else.
CREATE TABLE chain_addresses (
    session_id        uuid PRIMARY KEY,
    chain_id          bigint NOT NULL CHECK (chain_id > 0),
    merchant_id       uuid NOT NULL,
    deposit_address   text NOT NULL,
    session_created_at double precision NOT NULL,
    start_block       bigint,
    start_block_hash  text,
    failures          integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    last_error        text,
    last_error_at     timestamptz,
    next_attempt_at   timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chain_addresses_failing ON chain_addresses (chain_id, merchant_id) WHERE failures > 0;

-- What the watcher last saw of its chain, for GET /v1/chain/status.
ALTER TABLE chain_cursors ADD COLUMN head bigint;
ALTER TABLE chain_cursors ADD COLUMN confirmed_height bigint;
ALTER TABLE chain_cursors ADD COLUMN internal_transfers text;
ALTER TABLE chain_cursors ADD COLUMN passes bigint NOT NULL DEFAULT 0;
