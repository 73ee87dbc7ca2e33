-- Tracing (issue 21): the W3C `traceparent` of the webhook request that stored the event, so the relay's
-- apply continues that request's trace (paygate_runtime.tracing). NULL when tracing was off, and for events
-- no request stored (chain watcher, reconciliation). Written once by the INSERT, never updated.
ALTER TABLE inbox_events ADD COLUMN traceparent text CHECK (length(traceparent) <= 128);
