-- Issue 16's scale rule for queues: a claim reads what it takes, never the whole backlog. The merchant webhook
-- delivery claim gives each endpoint at most `per_endpoint` deliveries in flight across replicas, so it counts
-- the endpoint's leased deliveries first. That count read every pending delivery of the endpoint through
-- webhook_deliveries_due and kept the leased ones: an endpoint with 3,000 queued (a burst of payments queues
-- two per session for an endpoint subscribed to them) cost 3,000 index entries on every claim, and a claim
-- runs for about every delivery. This index holds the pending deliveries whose lease was ever taken and not yet
-- cleared (recording an attempt sets locked_until back to NULL), so the count reads only the endpoint's
-- leases that have not run out. The price: a claim's update now touches an indexed column.
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (endpoint_id, locked_until)
    WHERE status = 'pending' AND locked_until IS NOT NULL;
