-- Refunds and disputes (issue 19, contract §8): an open dispute on a session suspends its customer keys;
-- VerifyKey then answers SUSPENDED (after REVOKED and EXPIRED), and a suspended key cannot be rolled. Cleared
-- when the dispute is won. A full refund or a lost dispute revokes the keys instead (revoked_at).
ALTER TABLE api_keys ADD COLUMN suspended_at timestamptz;
