-- Whether a session's dispute is an inquiry or a chargeback (contract §8). Stripe's inquiries (dispute status
-- warning_*) withdraw no money and the charge stays refundable, so a merchant's refund is allowed during one;
-- a chargeback holds the money and refunds are refused (`dispute_open`). An inquiry that escalates becomes a
-- chargeback, never the reverse (session_service.domain.refunds). NULL: the payment was never disputed.
ALTER TABLE sessions
    ADD COLUMN IF NOT EXISTS dispute_kind text CHECK (dispute_kind IN ('inquiry', 'chargeback'));
-- Disputes recorded before the kind was kept were all refused as formal disputes: they stay chargebacks.
UPDATE sessions SET dispute_kind = 'chargeback' WHERE dispute_status IS NOT NULL AND dispute_kind IS NULL;
