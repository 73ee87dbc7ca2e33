-- Merchant events (contract §7): outbound, signed webhooks to the merchant's own endpoints.
--
-- The session service owns every merchant event, every endpoint and every delivery: it already owns the
-- outbox machinery (LISTEN/NOTIFY, leases, SKIP LOCKED), and the changes most events report are its own.
--
-- Events are written by TRIGGERS, in the transaction (in fact the statement) that makes the change: whatever
-- code path moves a session (one event, a group commit, the sweeper, the web3 grace expiry, a merchant's
-- expire, the late-payment override, refunds later), records a quarantine entry or stores an invoice, the
-- event exists exactly when the change commits, and never without it. The trigger also fans the event out to
-- the endpoints subscribed at that moment (one `webhook_deliveries` row each) and NOTIFYs the delivery
-- workers only when it did.

-- A merchant's endpoint, per mode. The signing secret must be usable (HMAC), so it is stored, not hashed;
-- only the runtime role of this schema reads it, no RPC ever returns it but the create and roll replies, and
-- it is never logged. `previous_secret` keeps signing beside the new one until it expires (a roll's overlap).
CREATE TABLE webhook_endpoints (
    id                          uuid PRIMARY KEY,
    merchant_id                 uuid NOT NULL,
    mode                        text NOT NULL CHECK (mode IN ('test', 'live')),
    url                         text NOT NULL CHECK (length(url) <= 2048),
    events                      text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 32),
    description                 text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    status                      text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled', 'deleted')),
    secret                      text NOT NULL,
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    -- Set by the first failed attempt after a success (or ever), cleared by any success: five days of
    -- failures since then disable the endpoint.
    failing_since               timestamptz,
    disabled_reason             text,
    disabled_at                 timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id, mode, created_at DESC, id DESC)
    WHERE status <> 'deleted';
CREATE INDEX webhook_endpoints_fanout ON webhook_endpoints (merchant_id, mode) WHERE status = 'enabled';

-- Every event, as emitted. `snapshot` is what `data.object` is rendered from: the row as it was committed
-- (a session with its history, a quarantine entry with the session's expected amount), or for an invoice
-- its reference (the invoice itself is read from billing once and kept in `object`). Events are facts; only
-- `object` is ever filled in later, once.
CREATE TABLE merchant_events (
    -- Emission order, for listing (no index of its own: lists go through merchant_events_newest, cursors
    -- through the id).
    seq             bigserial NOT NULL,
    id              text PRIMARY KEY,
    merchant_id     uuid NOT NULL,
    mode            text NOT NULL CHECK (mode IN ('test', 'live')),
    type            text NOT NULL,
    object_kind     text NOT NULL CHECK (object_kind IN ('session', 'quarantine', 'invoice', 'json')),
    object_id       text NOT NULL,
    snapshot        jsonb NOT NULL,
    object          jsonb,
    -- The emitting service's own id, for events recorded over RPC (RecordMerchantEvent is idempotent on it).
    source_key      text UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX merchant_events_newest ON merchant_events (merchant_id, mode, seq DESC);

-- One row per (event, endpoint): the queue state of that delivery (mutable). Each attempt is a row of the
-- append-only `webhook_delivery_attempts` below.
CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    event_id        text NOT NULL REFERENCES merchant_events (id),
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    -- Retries run until window_start + the retry window; a manual redelivery starts a new window.
    window_start    timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';

-- The delivery log: one row per attempt, never changed.
CREATE TABLE webhook_delivery_attempts (
    id              bigserial PRIMARY KEY,
    delivery_id     bigint NOT NULL REFERENCES webhook_deliveries (id),
    endpoint_id     uuid NOT NULL,
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    merchant_id     uuid NOT NULL,
    mode            text NOT NULL,
    attempt         integer NOT NULL,
    status_code     integer,
    error           text,
    latency_ms      integer NOT NULL,
    response_body   text,
    delivered       boolean NOT NULL,
    next_attempt_at timestamptz,
    at              timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhook_delivery_attempts_merchant ON webhook_delivery_attempts (merchant_id, mode, id DESC);
CREATE INDEX webhook_delivery_attempts_endpoint ON webhook_delivery_attempts (endpoint_id, id DESC);
CREATE INDEX webhook_delivery_attempts_event ON webhook_delivery_attempts (event_id, id DESC);
CREATE TRIGGER webhook_delivery_attempts_append_only BEFORE UPDATE OR DELETE ON webhook_delivery_attempts
    FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();
CREATE TRIGGER webhook_delivery_attempts_no_truncate BEFORE TRUNCATE ON webhook_delivery_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_only_change();
REVOKE UPDATE, DELETE, TRUNCATE ON webhook_delivery_attempts FROM paygate_session;

-- Notices for the merchant (the dashboard shows them): an endpoint disabled after days of failures.
CREATE TABLE webhook_notices (
    id          bigserial PRIMARY KEY,
    merchant_id uuid NOT NULL,
    mode        text NOT NULL,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id),
    kind        text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- 'pending' until the mail step ran: 'sent', or 'skipped' (no contact email, no SMTP) with the reason.
    mail_status text NOT NULL DEFAULT 'pending',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_notices_merchant ON webhook_notices (merchant_id, mode, id DESC);

-- ------------------------------------------------------------------------------------------------ emit
CREATE FUNCTION emit_merchant_event(p_merchant uuid, p_mode text, p_type text, p_kind text, p_object_id text,
                                    p_snapshot jsonb) RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    evt text := 'evt_' || replace(gen_random_uuid()::text, '-', '');
BEGIN
    INSERT INTO merchant_events (id, merchant_id, mode, type, object_kind, object_id, snapshot)
    VALUES (evt, p_merchant, p_mode, p_type, p_kind, p_object_id, p_snapshot);
    INSERT INTO webhook_deliveries (event_id, endpoint_id)
    SELECT evt, w.id FROM webhook_endpoints w
     WHERE w.merchant_id = p_merchant AND w.mode = p_mode AND w.status = 'enabled'
       AND ('*' = ANY (w.events) OR p_type = ANY (w.events));
    IF FOUND THEN
        -- Delivered at commit only, and folded into one per transaction.
        PERFORM pg_notify('merchant_webhooks', '');
    END IF;
    RETURN evt;
END $$;

-- A session as committed, with its history and alerts (the statement's own history row included: AFTER
-- triggers run once the whole statement, sibling CTEs too, has been applied).
CREATE FUNCTION session_snapshot(s sessions) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT to_jsonb(s)
           || jsonb_build_object(
                'history', COALESCE((SELECT jsonb_agg(to_jsonb(h) ORDER BY h.id)
                                       FROM session_history h WHERE h.session_id = s.id), '[]'::jsonb),
                'alerts', COALESCE((SELECT jsonb_agg(to_jsonb(a) ORDER BY a.at, a.code)
                                      FROM session_alerts a WHERE a.session_id = s.id), '[]'::jsonb))
$$;

CREATE FUNCTION session_merchant_event() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_ARGV[0] = 'status' THEN
        PERFORM emit_merchant_event(NEW.merchant_id, NEW.mode, 'session.' || NEW.status, 'session',
                                    NEW.id::text, session_snapshot(NEW));
    ELSE
        PERFORM emit_merchant_event(NEW.merchant_id, NEW.mode, 'invoice.issued', 'invoice', NEW.invoice_id,
                                    jsonb_build_object('invoice_id', NEW.invoice_id,
                                                       'invoice_number', NEW.invoice_number,
                                                       'session_id', NEW.id));
    END IF;
    RETURN NULL;
END $$;

-- The WHEN clauses are evaluated without calling the function, so every other update of a session (the
-- fulfilment's ids, a checkout URL) costs nothing here.
CREATE TRIGGER sessions_merchant_event_status AFTER UPDATE OF status ON sessions FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('paid', 'failed', 'expired', 'refunded'))
    EXECUTE FUNCTION session_merchant_event('status');
CREATE TRIGGER sessions_merchant_event_invoice AFTER UPDATE OF invoice_id ON sessions FOR EACH ROW
    WHEN (OLD.invoice_id IS NULL AND NEW.invoice_id IS NOT NULL)
    EXECUTE FUNCTION session_merchant_event('invoice');

CREATE FUNCTION quarantine_merchant_event() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM emit_merchant_event(NEW.merchant_id, NEW.mode, 'quarantine.created', 'quarantine', NEW.id::text,
                                to_jsonb(NEW) || (SELECT jsonb_build_object('expected_minor', s.amount_minor,
                                                                            'expected_currency', s.currency,
                                                                            'expected_exponent', s.exponent)
                                                    FROM sessions s WHERE s.id = NEW.session_id));
    RETURN NULL;
END $$;
CREATE TRIGGER quarantine_merchant_event AFTER INSERT ON quarantine FOR EACH ROW
    EXECUTE FUNCTION quarantine_merchant_event();
