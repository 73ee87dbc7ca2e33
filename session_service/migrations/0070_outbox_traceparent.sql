-- Tracing (issue 21): the W3C `traceparent` of the operation that queued the row (the ApplyPaymentEvent that
-- made the session paid, or the fulfilment that queued the mail), so the dispatcher continues that trace
-- when it processes the row (paygate_runtime.tracing). NULL when tracing was off.
ALTER TABLE outbox ADD COLUMN traceparent text CHECK (length(traceparent) <= 128);
