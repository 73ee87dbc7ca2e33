-- Hash-chained audit (issue 20, contract §9). Every audit_log row joins one chain: its merchant's (named by
-- the row, or by the row's session), or the service's "system" chain for a row without either. A BEFORE
-- INSERT trigger links the row: it takes the chain's head row in audit_chain_heads (creating it on first use)
-- with a row lock, so that concurrent writers
-- of one chain are serialised at insert (no forks, no gaps), gives the row the next sequence number, sets
-- prev_hash to the head's hash and computes
--     hash = hex(sha256(utf8(canonical form) || raw bytes of prev_hash))
-- The writers' SQL is unchanged: whatever they put in the chain columns is overwritten here.
--
-- Canonical form, version 1 (paygate_runtime/audit_chain.py recomputes it in Python, `paygate audit verify`):
--     "paygate-audit-v1\n" then, for each field in the order below, "<name>=<value>\n" where <value> is
--     "~" for NULL, else "<octet length>:<text>" (UTF-8); texts: uuid in lowercase hyphenated form, integers
--     in decimal, timestamps as integer microseconds since 1970-01-01 UTC, jsonb as PostgreSQL's jsonb text
--     output (deterministic for a value: keys ordered by length then bytes, ", " and ": " separators).
--     Fields: service ("session"), chain, seq, id, at, merchant_id, session_id, actor, action, detail.
-- The genesis prev_hash is 64 zeros. The head row lock is held to the end of the writer's transaction; the
-- session writers are single statements, so that is the end of the statement that wrote the row.

ALTER TABLE audit_log
    ADD COLUMN chain text,
    ADD COLUMN chain_seq bigint,
    ADD COLUMN prev_hash text,
    ADD COLUMN hash text;

CREATE TABLE audit_chain_heads (
    chain text PRIMARY KEY,
    seq   bigint NOT NULL,
    hash  text NOT NULL,
    prev_hash text NOT NULL  -- the hash before the last move: lets one UPDATE return both
);
-- The runtime role reads the heads (anchoring); only the SECURITY DEFINER trigger below writes them.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_chain_heads FROM paygate_session;

CREATE FUNCTION audit_field(name text, value text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT name || '=' || CASE WHEN value IS NULL THEN '~' ELSE octet_length(value)::text || ':' || value END
           || E'\n'
$$;

CREATE FUNCTION audit_micros(at timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT (extract(epoch FROM at) * 1000000)::bigint::text
$$;

CREATE FUNCTION audit_log_canonical(r audit_log, seq bigint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT 'paygate-audit-v1' || E'\n'
        || audit_field('service', 'session')
        || audit_field('chain', (r).chain)
        || audit_field('seq', seq::text)
        || audit_field('id', (r).id::text)
        || audit_field('at', audit_micros((r).at))
        || audit_field('merchant_id', (r).merchant_id::text)
        || audit_field('session_id', (r).session_id::text)
        || audit_field('actor', (r).actor)
        || audit_field('action', (r).action)
        || audit_field('detail', (r).detail::text)
$$;

-- Links one row into its chain with one statement: the UPDATE locks the head (waiting for a concurrent writer
-- of the chain, then seeing its new head), and its SET computes from the old head (every right-hand side reads
-- the row before the update): the next number, the new hash, and the old hash kept as prev_hash to return it.
-- The lock is held to the end of the writer's transaction. A chain's first row creates its head.
CREATE FUNCTION audit_log_link(r audit_log) RETURNS audit_log LANGUAGE plpgsql
SET search_path = session, pg_temp AS $$
BEGIN
    -- A row that names its session but not its merchant (the dispatcher's failed attempts) belongs to the
    -- session's merchant all the same.
    r.chain := COALESCE(r.merchant_id, (SELECT s.merchant_id FROM sessions s WHERE s.id = r.session_id))::text;
    r.chain := COALESCE(r.chain, 'system');
    LOOP
        UPDATE audit_chain_heads
           SET seq = seq + 1,
               prev_hash = hash,
               hash = encode(sha256(convert_to(audit_log_canonical(r, seq + 1), 'UTF8') || decode(hash, 'hex')), 'hex')
         WHERE chain = r.chain
        RETURNING seq, prev_hash, hash INTO r.chain_seq, r.prev_hash, r.hash;
        EXIT WHEN FOUND;
        INSERT INTO audit_chain_heads (chain, seq, hash, prev_hash) VALUES (r.chain, 0, repeat('0', 64), '')
            ON CONFLICT (chain) DO NOTHING;
    END LOOP;
    RETURN r;
END $$;

-- Existing rows, in id order (their insertion order), before the trigger exists.
ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
DO $$
DECLARE
    r audit_log;
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        r := audit_log_link(r);
        UPDATE audit_log SET chain = r.chain, chain_seq = r.chain_seq, prev_hash = r.prev_hash, hash = r.hash
         WHERE id = r.id;
    END LOOP;
END $$;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;

ALTER TABLE audit_log
    ALTER COLUMN chain SET NOT NULL,
    ALTER COLUMN chain_seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL;
-- No fork: one row per position of a chain. Also the verifier's walk order.
CREATE UNIQUE INDEX audit_log_chain_seq ON audit_log (chain, chain_seq);
-- GET /v1/audit: a merchant's entries newest first.
CREATE INDEX audit_log_chain_at ON audit_log (chain, at DESC, id DESC);

CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = session, pg_temp AS $$
BEGIN
    RETURN audit_log_link(NEW);
END $$;
REVOKE EXECUTE ON FUNCTION audit_log_chain() FROM PUBLIC, paygate_session;
REVOKE EXECUTE ON FUNCTION audit_log_link(audit_log) FROM PUBLIC, paygate_session;
-- Named to fire after any other BEFORE INSERT trigger (they run in name order), so the hash covers the final row.
CREATE TRIGGER zz_audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();
-- ALWAYS: also under session_replication_role = replica, which a superuser may set to skip ordinary triggers
-- (and foreign keys); an entry written that way is still chained rather than left out of its chain.
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER zz_audit_log_chain;
