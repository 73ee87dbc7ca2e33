-- On-chain settlement an auditor would sign (issue 13).

-- A reorg deeper than the confirmation depth can take money back from a paid session. The session stays
-- paid (nothing moves backwards) and the case is opened for the merchant in quarantine.
-- (Superset of the list set by 0010_modes_and_provider_binding.sql.)
ALTER TABLE quarantine DROP CONSTRAINT quarantine_reason_check;
ALTER TABLE quarantine ADD CONSTRAINT quarantine_reason_check
    CHECK (reason IN ('amount_mismatch', 'overpaid', 'payment_on_closed_session', 'mode_mismatch',
                      'provider_mismatch', 'refunded', 'disputed', 'reorged_after_paid'));

-- The web3 sweep of pending sessions (pending -> expired after PAYGATE_CHAIN_PENDING_GRACE_S).
CREATE INDEX sessions_due_pending_web3 ON sessions (expires_at) WHERE status = 'pending' AND provider = 'web3';

-- An xpub belongs to one merchant: the owner check looks it up.
CREATE INDEX payment_settings_xpub ON payment_settings (onchain_xpub) WHERE onchain_xpub IS NOT NULL;
