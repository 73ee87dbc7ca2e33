-- Modes are separate worlds (issue 12, contract §6a).

-- An Idempotency-Key belongs to (merchant, mode): a key first used with a test key must never hand a test
-- session back to a live request. Rows kept from before carry no mode; they are test ones at worst and
-- expire within a day.
ALTER TABLE idempotency_keys ADD COLUMN mode text NOT NULL DEFAULT 'test' CHECK (mode IN ('test', 'live'));
ALTER TABLE idempotency_keys ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (merchant_id, mode, key);
