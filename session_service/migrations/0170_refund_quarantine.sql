-- Refund events that cannot be applied, and refunds that fail after they succeeded, go to the merchant's
-- quarantine (contract §4, §8): never dropped, never only an operator's failed inbox row.
--
-- `refund_currency_mismatch`: a provider refund in another currency than the session's (a USD refund of a
-- EUR payment) cannot be credited; the entry shows the refund's own money.
-- `refund_failed`: a refund the provider reported succeeded has failed (Stripe: succeeded -> failed); the money
-- did not go back to the customer, and the note names the credit note issued for it, which stands.
-- (Superset of the list set by 0030_web3_settlement.sql.)
ALTER TABLE quarantine DROP CONSTRAINT quarantine_reason_check;
ALTER TABLE quarantine ADD CONSTRAINT quarantine_reason_check
    CHECK (reason IN ('amount_mismatch', 'overpaid', 'payment_on_closed_session', 'mode_mismatch',
                      'provider_mismatch', 'refunded', 'disputed', 'reorged_after_paid',
                      'refund_currency_mismatch', 'refund_failed'));

-- One entry per provider refund: a refund reported by several events (Stripe's refund.created, charge.refunded,
-- refund.updated) that cannot be applied is quarantined once; a later report of it is the recorded no-op
-- `already_quarantined`. The key is the provider's refund id (or `total:<minor>:<currency>` for an event that
-- reports only the provider's total); the primary key settles two reports that race.
CREATE TABLE quarantined_refunds (
    session_id          uuid NOT NULL REFERENCES sessions (id),
    provider            text NOT NULL,
    provider_refund_id  text NOT NULL,
    quarantine_id       uuid NOT NULL REFERENCES quarantine (id),
    PRIMARY KEY (session_id, provider, provider_refund_id)
);
