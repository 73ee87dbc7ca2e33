-- Blocks the RPC node could not trace (issue: one untraceable block held back the whole chain watcher).
-- With internal transfers read from traces, a block whose trace_block the node refuses is recorded here and
-- the watcher moves on; the block is traced again with backoff until the node answers (resolved_at set).
-- `fallback_sessions` are the open native-coin sessions whose deposit address the block touched (its balance
-- changed in it, or it sent a tx in it): they are settled by balance difference while the block is open.
CREATE TABLE chain_untraced_blocks (
    chain_id          bigint NOT NULL CHECK (chain_id > 0),
    block_number      bigint NOT NULL CHECK (block_number >= 0),
    block_hash        text NOT NULL,
    failures          integer NOT NULL DEFAULT 1 CHECK (failures >= 1),
    last_error        text NOT NULL,
    fallback_sessions uuid[] NOT NULL DEFAULT '{}',
    first_failed_at   timestamptz NOT NULL DEFAULT now(),
    last_error_at     timestamptz NOT NULL DEFAULT now(),
    next_attempt_at   timestamptz NOT NULL,
    resolved_at       timestamptz,
    PRIMARY KEY (chain_id, block_number)
);
CREATE INDEX chain_untraced_blocks_open ON chain_untraced_blocks (chain_id, next_attempt_at)
    WHERE resolved_at IS NULL;
