-- Hash-chained audit (issue 20, contract §9). Every billing_audit row (written by the invoices trigger as the
-- owner) joins one chain: its merchant's, or the
-- service's "system" chain for a row without a merchant. A BEFORE INSERT trigger links the row: it takes the
-- chain's head row in audit_chain_heads (creating it on first use) with a row lock, so that concurrent writers
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
--     Fields: service ("billing"), chain, seq, id, at, merchant_id, event, invoice_id, mode, number, session_id,
--     currency, total (numeric(78,0) in decimal), related_id, actor, db_user. (actor is read through to_jsonb:
--     the column comes with 0090_void_actor, after this file; NULL before it, as for every older row.)
-- The genesis prev_hash is 64 zeros. The head row lock is held to the end of the writer's transaction.

ALTER TABLE billing_audit
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
-- The runtime role reads the heads (anchoring); only the owner (the audit trigger) writes them.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_chain_heads FROM paygate_billing;

CREATE FUNCTION audit_field(name text, value text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT name || '=' || CASE WHEN value IS NULL THEN '~' ELSE octet_length(value)::text || ':' || value END
           || E'\n'
$$;

CREATE FUNCTION audit_micros(at timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT (extract(epoch FROM at) * 1000000)::bigint::text
$$;

CREATE FUNCTION billing_audit_canonical(r billing_audit, seq bigint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT 'paygate-audit-v1' || E'\n'
        || audit_field('service', 'billing')
        || audit_field('chain', (r).chain)
        || audit_field('seq', seq::text)
        || audit_field('id', (r).id::text)
        || audit_field('at', audit_micros((r).at))
        || audit_field('merchant_id', (r).merchant_id)
        || audit_field('event', (r).event)
        || audit_field('invoice_id', (r).invoice_id::text)
        || audit_field('mode', (r).mode)
        || audit_field('number', (r).number)
        || audit_field('session_id', (r).session_id)
        || audit_field('currency', (r).currency)
        || audit_field('total', (r).total::text)
        || audit_field('related_id', (r).related_id::text)
        || audit_field('actor', to_jsonb(r) ->> 'actor')
        || audit_field('db_user', (r).db_user)
$$;

-- Links one row into its chain with one statement: the UPDATE locks the head (waiting for a concurrent writer
-- of the chain, then seeing its new head), and its SET computes from the old head (every right-hand side reads
-- the row before the update): the next number, the new hash, and the old hash kept as prev_hash to return it.
-- The lock is held to the end of the writer's transaction. A chain's first row creates its head.
CREATE FUNCTION billing_audit_link(r billing_audit) RETURNS billing_audit LANGUAGE plpgsql
SET search_path = billing, pg_temp AS $$
BEGIN
    r.chain := COALESCE(r.merchant_id, 'system');
    LOOP
        UPDATE audit_chain_heads
           SET seq = seq + 1,
               prev_hash = hash,
               hash = encode(sha256(convert_to(billing_audit_canonical(r, seq + 1), 'UTF8')
                                    || decode(hash, 'hex')), 'hex')
         WHERE chain = r.chain
        RETURNING seq, prev_hash, hash INTO r.chain_seq, r.prev_hash, r.hash;
        EXIT WHEN FOUND;
        INSERT INTO audit_chain_heads (chain, seq, hash, prev_hash) VALUES (r.chain, 0, repeat('0', 64), '')
            ON CONFLICT (chain) DO NOTHING;
    END LOOP;
    RETURN r;
END $$;

-- Existing rows, in id order (their insertion order), before the trigger exists.
ALTER TABLE billing_audit DISABLE TRIGGER billing_audit_append_only;
DO $$
DECLARE
    r billing_audit;
BEGIN
    FOR r IN SELECT * FROM billing_audit ORDER BY id LOOP
        r := billing_audit_link(r);
        UPDATE billing_audit SET chain = r.chain, chain_seq = r.chain_seq, prev_hash = r.prev_hash, hash = r.hash
         WHERE id = r.id;
    END LOOP;
END $$;
ALTER TABLE billing_audit ENABLE TRIGGER billing_audit_append_only;

ALTER TABLE billing_audit
    ALTER COLUMN chain SET NOT NULL,
    ALTER COLUMN chain_seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL;
-- No fork: one row per position of a chain. Also the verifier's walk order.
CREATE UNIQUE INDEX billing_audit_chain_seq ON billing_audit (chain, chain_seq);
-- GET /v1/audit: a merchant's entries newest first.
CREATE INDEX billing_audit_chain_at ON billing_audit (chain, at DESC, id DESC);

CREATE FUNCTION billing_audit_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = billing, pg_temp AS $$
BEGIN
    RETURN billing_audit_link(NEW);
END $$;
REVOKE EXECUTE ON FUNCTION billing_audit_chain() FROM PUBLIC, paygate_billing;
REVOKE EXECUTE ON FUNCTION billing_audit_link(billing_audit) FROM PUBLIC, paygate_billing;
-- Named to fire after any other BEFORE INSERT trigger (they run in name order), so the hash covers the final row.
CREATE TRIGGER zz_billing_audit_chain BEFORE INSERT ON billing_audit
    FOR EACH ROW EXECUTE FUNCTION billing_audit_chain();
-- ALWAYS: also under session_replication_role = replica, which a superuser may set to skip ordinary triggers
-- (and foreign keys); an entry written that way is still chained rather than left out of its chain.
ALTER TABLE billing_audit ENABLE ALWAYS TRIGGER zz_billing_audit_chain;
