-- The provider's refunded total is a snapshot, and the newest one stands (session_service/domain/refunds.py):
-- a `charge.refunded` sent before a refund failed can be delivered after the failure, still counting the failed
-- money, and must not raise the total again. This is the provider's time of the event that reported the stored
-- total (Stripe's event `created`); NULL for totals stored before it was kept, which are then compared by size
-- as before. Nullable and without a default: adding it rewrites nothing.
ALTER TABLE sessions ADD COLUMN provider_refunded_as_of timestamptz;
