-- Merchant webhook endpoints' signing secrets encrypted at rest (issue 18).
--
-- HMAC signing needs the secret itself, so it cannot be hashed; it is sealed instead with AES-256-GCM under
-- PAYGATE_SESSION_ENCRYPTION_KEYS (paygate_runtime/crypto/secret_box.py; the blob names its key version and
-- is bound to the endpoint id). The key lives in the service's environment, never in the database, so this
-- migration cannot encrypt: it adds the sealed columns and lets the plain ones go NULL; the session service
-- seals every remaining plain secret when it starts (before it serves or delivers) and clears the plain
-- column in the same statement. A process of the previous release still running during a rolling update may
-- write a plain secret; the next start seals it, and delivery reads either form meanwhile.
ALTER TABLE webhook_endpoints
    ADD COLUMN secret_sealed bytea,
    ADD COLUMN previous_secret_sealed bytea,
    ALTER COLUMN secret DROP NOT NULL;

-- Deleted endpoints kept '' as their secret; NULL says "none" the same way the sealed columns do.
UPDATE webhook_endpoints SET secret = NULL WHERE secret = '';
