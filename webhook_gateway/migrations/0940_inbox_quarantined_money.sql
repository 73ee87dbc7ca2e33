-- paygate: outside a transaction
-- Reconciliation leaves alone a payment whose money a webhook already reported and the session service
-- quarantined (short, another currency, or late: money received is final at the provider), instead of reading it
-- at the provider's API again and applying it a second time. It asks the inbox by the payment's provider
-- reference; the outcomes that say so are rare, so this index holds only those rows.
-- Built concurrently: inbox_events holds every webhook ever received, and a plain build would hold back every
-- webhook reply's INSERT while it reads the table. A failed concurrent build leaves an invalid index, so a
-- rerun drops it first.
DROP INDEX CONCURRENTLY IF EXISTS inbox_events_quarantined_money;
CREATE INDEX CONCURRENTLY inbox_events_quarantined_money ON inbox_events (provider, provider_reference)
    WHERE outcome IN ('amount_mismatch', 'payment_on_closed_session');
