-- Issue 16: the dispatcher's claim reads the oldest ready rows from `outbox_ready` in order, stops at its
-- limit, and leases them by primary key, whatever the tables' statistics say. Planned inline, the claim's
-- estimates came from statistics taken while the outbox was nearly empty (a fresh deployment, or any moment
-- between bursts), so PostgreSQL chose a bitmap scan of every ready row and a sort: a burst's fulfilment
-- leaves thousands pending, and each claim, about twenty a second, read and sorted them all (1.3-12 ms with
-- 2,000-5,500 pending). A function's own settings hold while its body is planned and run, and nowhere else:
-- with no sequential or bitmap scan, no sort and no hash or merge join to choose from, the plan is the one
-- meant here. FOR UPDATE SKIP LOCKED: rows another dispatcher is claiming are skipped, never waited on.
-- Each claimed row comes back with its session, read in the same statement.
CREATE FUNCTION claim_outbox_rows(p_limit integer, p_lease_s double precision)
RETURNS TABLE (outbox_id bigint, outbox_kind text, outbox_attempts integer, outbox_traceparent text,
               session sessions)
LANGUAGE sql VOLATILE
-- What the calling statement's planner expects back (its default for a set-returning function is 1,000).
ROWS 16
SET search_path FROM CURRENT
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_sort = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
    WITH ready AS (
        SELECT id FROM outbox
         WHERE status = 'pending' AND next_attempt_at <= now()
           AND (locked_until IS NULL OR locked_until < now())
         ORDER BY next_attempt_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE outbox o SET locked_until = now() + make_interval(secs => p_lease_s), attempts = o.attempts + 1
          FROM ready
         WHERE o.id = ready.id
        RETURNING o.id, o.kind, o.attempts, o.traceparent, o.session_id
    )
    SELECT l.id, l.kind, l.attempts, l.traceparent, s FROM leased l JOIN sessions s ON s.id = l.session_id
$$;
REVOKE EXECUTE ON FUNCTION claim_outbox_rows(integer, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_outbox_rows(integer, double precision) TO paygate_session;
