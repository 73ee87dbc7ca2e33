-- Contract §6a: test and live are worlds apart, and the billing profile (the seller printed on invoices,
-- the prefix, the tax rate, the support contact) belongs to one of them. A test key is often handed to
-- developers; with one profile per merchant it could rewrite the seller on LIVE invoices.
-- Every existing profile is copied to both modes, so nothing an existing merchant sees or prints changes.
ALTER TABLE billing_profiles ADD COLUMN mode text NOT NULL DEFAULT 'test' CHECK (mode IN ('test', 'live'));
ALTER TABLE billing_profiles DROP CONSTRAINT billing_profiles_pkey;
ALTER TABLE billing_profiles ADD PRIMARY KEY (merchant_id, mode);
-- The copy goes through jsonb so that it takes every column, including any a later migration adds.
INSERT INTO billing_profiles
SELECT (jsonb_populate_record(NULL::billing_profiles, to_jsonb(p) || '{"mode": "live"}'::jsonb)).*
  FROM billing_profiles p
 WHERE p.mode = 'test';
-- No default from now on: every write names its mode, and a write that forgets it fails.
ALTER TABLE billing_profiles ALTER COLUMN mode DROP DEFAULT;
