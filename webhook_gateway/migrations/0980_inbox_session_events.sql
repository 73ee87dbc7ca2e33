-- paygate: outside a transaction
-- A session's provider events, read directly: the dashboard's session page asked for the merchant's newest 100
-- events and kept that session's, so a session lost its events (and its history their types) once the
-- merchant had 100 newer ones. It now reads them by (merchant, session), merchant- and mode-scoped.
--
-- The relay records the session the apply matched an event to (a Stripe dispute or refund names only its
-- charge): the runtime role may now set session_id. It never replaces one the event named on arrival
-- (inbox_repository.finish_many keeps it).
GRANT UPDATE (session_id) ON inbox_events TO paygate_gateway;

-- Why the predicate: the webhook reply's INSERT is the hot path (a performance goal), and every index it has
-- to write slows each reply. merchant_id is NULL when an event is inserted and set by the apply's UPDATE,
-- which already writes new index entries for the row (merchant_id is in inbox_events_merchant_idx). With
-- `WHERE merchant_id IS NOT NULL` the INSERT never touches this index: only that UPDATE does. Events whose
-- merchant is not known are on no merchant's page anyway.
-- Built concurrently: a plain build would hold back every webhook reply's INSERT while it reads the table. A
-- failed concurrent build leaves an invalid index, so a rerun drops it first.
DROP INDEX CONCURRENTLY IF EXISTS inbox_events_merchant_session;
CREATE INDEX CONCURRENTLY inbox_events_merchant_session ON inbox_events (merchant_id, session_id)
    WHERE merchant_id IS NOT NULL;
