-- The refund that stands for a canceled one. When the provider's webhook recorded a refund before its API
-- answered the request paygate made for it (no paygate id echoed back), the provider's record stands and paygate
-- cancels its own pending record (domain/refunds.py `attach_provider_refund`): this column names the standing
-- record, so the canceled one's `refund.canceled` tells the merchant the refund happened under another id.
-- Nullable and without a default: adding it rewrites no row. Refunds merged before this migration stay NULL
-- (the link was never recorded), as does every refund canceled at the provider.
ALTER TABLE refunds ADD COLUMN IF NOT EXISTS replaced_by uuid REFERENCES refunds (id);

ALTER TABLE refunds DROP CONSTRAINT IF EXISTS refunds_replaced_by_canceled;
ALTER TABLE refunds ADD CONSTRAINT refunds_replaced_by_canceled CHECK (replaced_by IS NULL OR status = 'canceled');
