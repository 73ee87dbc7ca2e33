-- The refund-effects worker's question "whose keys are not yet as they should be" (asked once a second on every
-- session service) reads the partial index `sessions_key_access_due` in id order, whatever the statistics say.
-- Planned inline under statistics older than the table (a fresh deployment's first burst, and every burst
-- until autovacuum's next analyze), PostgreSQL read `sessions` whole and sorted it, every second, for a
-- question whose answer is almost always "nobody" (tests/integration/session/test_refund_effects_due_scale.py).
-- As with claim_outbox_rows (0140): a function's own settings hold while its body is planned and run, and
-- nowhere else.
CREATE OR REPLACE FUNCTION key_access_due(p_limit integer) RETURNS SETOF sessions
LANGUAGE sql STABLE
ROWS 8
SET search_path FROM CURRENT
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_sort = off
AS $$
    SELECT * FROM sessions
     WHERE key_access <> key_access_applied AND fulfilment_status = 'done'
     ORDER BY id LIMIT p_limit
$$;
REVOKE EXECUTE ON FUNCTION key_access_due(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION key_access_due(integer) TO paygate_session;
