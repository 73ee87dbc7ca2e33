-- Merchant events (contract §7): an Idempotency-Key for creating a webhook endpoint, and retention of the
-- events and the delivery log (until now both grew forever).

-- ------------------------------------------------------------------------------------------ idempotency
-- POST /v1/webhook_endpoints with an Idempotency-Key: the same key and body give the same endpoint, the same
-- key with another body gets 409 `idempotency_conflict`. Kept with the endpoint itself (scoped to merchant and
-- mode, like a session's), so the key lives as long as the endpoint's row, which is never deleted.
ALTER TABLE webhook_endpoints ADD COLUMN idempotency_key text CHECK (length(idempotency_key) <= 255),
                              ADD COLUMN request_fingerprint text;
CREATE UNIQUE INDEX webhook_endpoints_idempotency ON webhook_endpoints (merchant_id, mode, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- ------------------------------------------------------------------------------------------ retention
-- What the pruning reads: a delivery's attempts (also what deleting a delivery checks its foreign key with),
-- and old rows by time. BRIN: rows arrive in time order, and the index costs the hot inserts next to nothing.
CREATE INDEX webhook_delivery_attempts_delivery ON webhook_delivery_attempts (delivery_id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries USING brin (created_at);
CREATE INDEX merchant_events_created ON merchant_events USING brin (created_at);

-- The delivery log stays append-only for every change but one: prune_merchant_events (below, the only code
-- that sets the marker) deleting attempts older than the retention cutoff. The runtime role still has no
-- DELETE privilege on the table; only the function, which runs as the owner, deletes.
CREATE FUNCTION webhook_delivery_attempts_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND OLD.at < nullif(current_setting('paygate.prune_attempts_before', true), '')::timestamptz THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'the owner must drop or disable the trigger explicitly to change history';
END $$;
DROP TRIGGER webhook_delivery_attempts_append_only ON webhook_delivery_attempts;
CREATE TRIGGER webhook_delivery_attempts_append_only BEFORE UPDATE OR DELETE ON webhook_delivery_attempts
    FOR EACH ROW EXECUTE FUNCTION webhook_delivery_attempts_guard();

-- One batch of pruning, older than p_days (at least 1): finished deliveries (delivered, failed for good,
-- cancelled) with no attempt since the cutoff go with their attempts; then events older than the cutoff that
-- no delivery names any more (a pending delivery, or a finished one with a recent attempt, keeps its event).
-- SKIP LOCKED: a delivery or event some other statement holds (a redelivery re-arming it) is left for later.
CREATE FUNCTION prune_merchant_events(p_days integer, p_batch integer)
RETURNS TABLE (deliveries bigint, attempts bigint, events bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    cutoff timestamptz;
    ids bigint[];
    n_attempts bigint;
    n_deliveries bigint;
    n_events bigint;
BEGIN
    IF p_days IS NULL OR p_days < 1 OR p_batch IS NULL OR p_batch < 1 THEN
        RAISE EXCEPTION 'prune_merchant_events: retention must be at least 1 day and the batch at least 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    cutoff := now() - make_interval(days => p_days);
    PERFORM set_config('paygate.prune_attempts_before', cutoff::text, true);
    SELECT COALESCE(array_agg(s.id), '{}') INTO ids FROM (
        SELECT d.id FROM webhook_deliveries d
         WHERE d.status <> 'pending' AND d.created_at < cutoff AND d.window_start < cutoff
           AND d.next_attempt_at < cutoff
           AND NOT EXISTS (SELECT 1 FROM webhook_delivery_attempts a WHERE a.delivery_id = d.id AND a.at >= cutoff)
         LIMIT p_batch FOR UPDATE SKIP LOCKED
    ) s;
    DELETE FROM webhook_delivery_attempts WHERE delivery_id = ANY (ids);
    GET DIAGNOSTICS n_attempts = ROW_COUNT;
    DELETE FROM webhook_deliveries WHERE id = ANY (ids);
    GET DIAGNOSTICS n_deliveries = ROW_COUNT;
    DELETE FROM merchant_events WHERE id IN (
        SELECT e.id FROM merchant_events e
         WHERE e.created_at < cutoff AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)
         LIMIT p_batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS n_events = ROW_COUNT;
    PERFORM set_config('paygate.prune_attempts_before', '', true);
    RETURN QUERY SELECT n_deliveries, n_attempts, n_events;
END $$;
REVOKE EXECUTE ON FUNCTION prune_merchant_events(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prune_merchant_events(integer, integer) TO paygate_session;
