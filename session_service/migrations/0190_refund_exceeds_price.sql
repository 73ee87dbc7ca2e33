-- A provider refund larger than the session's price (contract §8): the price is credited (the ceiling) and the
-- money returned beyond it goes to the merchant's quarantine as `refund_exceeds_price`, in the transaction that
-- applies the refund (session_service/domain/refunds.py `refund_surplus_minor`). A session's entries of this
-- reason add up to the highest surplus ever reported: a replayed event opens nothing, a larger total opens one
-- entry for what it adds.
-- (Superset of the list set by 0170_refund_quarantine.sql.)
ALTER TABLE quarantine DROP CONSTRAINT quarantine_reason_check;
ALTER TABLE quarantine ADD CONSTRAINT quarantine_reason_check
    CHECK (reason IN ('amount_mismatch', 'overpaid', 'payment_on_closed_session', 'mode_mismatch',
                      'provider_mismatch', 'refunded', 'disputed', 'reorged_after_paid',
                      'refund_currency_mismatch', 'refund_failed', 'refund_exceeds_price'));

-- What a refund event reads under the session's lock: the surplus its entries already show. No row has this
-- reason yet, so the index starts empty.
CREATE INDEX quarantine_refund_surplus ON quarantine (session_id) WHERE reason = 'refund_exceeds_price';
