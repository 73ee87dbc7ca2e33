-- Why a failed refund failed: the provider's reason (Stripe's refund failure_reason) or the error code its API
-- refused the refund with. A short lowercase token (paygate_runtime.refund_failures, which maps anything else
-- to `unknown`), and only on a failed refund. Nullable with no default: adding it rewrites no row, refunds
-- recorded before it have none, and the check's scan finds only NULLs.
ALTER TABLE refunds ADD COLUMN IF NOT EXISTS failure_reason text;

ALTER TABLE refunds DROP CONSTRAINT IF EXISTS refunds_failure_reason_token;
ALTER TABLE refunds ADD CONSTRAINT refunds_failure_reason_token CHECK (
    failure_reason IS NULL
    OR (status = 'failed' AND char_length(failure_reason) <= 64 AND failure_reason ~ '^[a-z][a-z0-9_]*$')
);
