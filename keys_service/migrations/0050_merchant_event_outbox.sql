-- Merchant events of the keys service (contract §7: `customer_key.revoked`). The session service owns merchant
-- events and their delivery; a service never writes another's tables, so the keys service keeps its own
-- outbox: a trigger writes a row in the very transaction that revokes a key (whichever path revokes it: the
-- merchant, the customer portal, a roll that ends the old key at once, a refund later), and the forwarder
-- (keys_service/service_layer/merchant_event_forwarder.py) hands each row to the session service's
-- RecordMerchantEvent, which is idempotent on the row's key ('keys:<id>'), then marks it forwarded.
CREATE TABLE merchant_event_outbox (
    id              bigserial PRIMARY KEY,
    event_type      text NOT NULL,
    key_id          uuid NOT NULL,
    merchant_id     uuid NOT NULL,
    mode            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    last_error      text,
    forwarded_at    timestamptz
);
CREATE INDEX merchant_event_outbox_due ON merchant_event_outbox (next_attempt_at) WHERE forwarded_at IS NULL;

CREATE FUNCTION api_key_revoked_event() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO merchant_event_outbox (event_type, key_id, merchant_id, mode)
    VALUES ('customer_key.revoked', NEW.id, NEW.merchant_id, NEW.mode);
    PERFORM pg_notify('keys_merchant_events', '');
    RETURN NULL;
END $$;

-- The WHEN clause is evaluated without calling the function: other updates of a key cost nothing here.
CREATE TRIGGER api_keys_revoked_event AFTER UPDATE OF revoked_at ON api_keys FOR EACH ROW
    WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION api_key_revoked_event();
