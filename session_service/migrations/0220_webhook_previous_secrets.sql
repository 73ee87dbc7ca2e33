-- Every rolled webhook signing secret keeps signing until the end promised for it (contract §7).
--
-- Before this, an endpoint held one previous secret (`previous_secret[_sealed]`, `previous_secret_expires_at`):
-- a second roll replaced it, so the secret retired by the first roll stopped signing at once although its
-- reply had promised it 24 h (receivers still on it broke, silently). Each retired secret now has its own row
-- here with its own end, sealed like the current one (AES-GCM under PAYGATE_SESSION_ENCRYPTION_KEYS, bound to
-- the endpoint id). A delivery is signed with the current secret and every row still before its end. A roll
-- keeps at most 5 (the service's MAX_PREVIOUS_SECRETS: the oldest retired goes first); a roll with
-- `expires_in: 0` deletes them all; deleting the endpoint deletes them.
--
-- The old columns stay for rows written by a previous release during a rolling update (and a plain
-- `previous_secret` of a row from before 0100 that the next start seals): delivery still signs with them
-- while they last, and the next roll moves them here. Sealed ones move here now.
CREATE TABLE webhook_endpoint_previous_secrets (
    seq             bigserial PRIMARY KEY,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    secret_sealed   bytea NOT NULL,
    -- When it stopped being the current secret; the order in which the oldest is ended first is `seq`.
    rolled_at       timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);
CREATE INDEX webhook_endpoint_previous_secrets_endpoint
    ON webhook_endpoint_previous_secrets (endpoint_id, expires_at);

INSERT INTO webhook_endpoint_previous_secrets (endpoint_id, secret_sealed, rolled_at, expires_at)
SELECT id, previous_secret_sealed, updated_at, previous_secret_expires_at
  FROM webhook_endpoints
 WHERE previous_secret_sealed IS NOT NULL AND previous_secret IS NULL
   AND previous_secret_expires_at > now() AND status <> 'deleted';

UPDATE webhook_endpoints
   SET previous_secret_sealed = NULL, previous_secret_expires_at = NULL
 WHERE previous_secret_sealed IS NOT NULL AND previous_secret IS NULL;
