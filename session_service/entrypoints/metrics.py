"""The session service's metrics beyond the RPC figures: outbox depth and age, open quarantine entries,
merchant webhook deliveries (attempts by result, attempt latency, pending deliveries and their oldest age).

The gauges come from queries run when /metrics is scraped (see paygate_runtime.metrics.SampledGauges), never
per request. The outbox query reads the `outbox_ready` partial index (pending rows only); the quarantine query
counts open entries, which a person works down, so it stays small; the merchant webhook query reads the
`webhook_deliveries_due` partial index (pending deliveries only: in flight or waiting for a retry).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

from paygate_runtime.metrics import ServiceMetrics, set_labelled

OUTBOX_SQL = """
SELECT kind, count(*) AS depth, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest
FROM outbox WHERE status = 'pending' GROUP BY kind
"""
QUARANTINE_SQL = "SELECT reason, count(*) AS entries FROM quarantine WHERE status = 'open' GROUP BY reason"
# Deliveries of disabled endpoints stay pending until the merchant enables the endpoint again; they wait on
# the merchant, not on paygate, so they are left out (they would hold the oldest age up for days). The age
# runs from `window_start`: the fan-out, or the merchant's redelivery.
MERCHANT_WEBHOOK_SQL = """
SELECT e.mode, count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(d.window_start)), 0)::float8 AS oldest
FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
WHERE d.status = 'pending' AND e.status = 'enabled' GROUP BY e.mode
"""
MODES = ("test", "live")


def register_session_metrics(metrics: ServiceMetrics, pool: Any) -> None:
    depth = metrics.gauge(
        "paygate_outbox_pending", "Outbox rows not yet done (fulfilment steps and mail), by kind", ["kind"]
    )
    oldest = metrics.gauge(
        "paygate_outbox_oldest_pending_age_seconds",
        "Age of the oldest pending outbox row, by kind (0 when none is pending)",
        ["kind"],
    )
    quarantined = metrics.gauge(
        "paygate_quarantine_open_entries",
        "Open quarantine entries (money a person must look at), by reason",
        ["reason"],
    )
    webhook_pending = metrics.gauge(
        "paygate_merchant_webhook_pending",
        "Merchant webhook deliveries not yet delivered or given up (in flight or waiting for a retry) to "
        "enabled endpoints, by endpoint mode",
        ["mode"],
    )
    webhook_oldest = metrics.gauge(
        "paygate_merchant_webhook_oldest_pending_age_seconds",
        "Age of the oldest pending merchant webhook delivery to an enabled endpoint, by endpoint mode (0 when "
        "none is pending)",
        ["mode"],
    )
    seen_depth: set[tuple[str, ...]] = set()
    seen_oldest: set[tuple[str, ...]] = set()
    seen_reasons: set[tuple[str, ...]] = set()
    # Known label values start at 0, so that an alert on them has a series before the first row exists.
    for kind in ("fulfil", "email"):
        depth.labels(kind).set(0)
        oldest.labels(kind).set(0)
        seen_depth.add((kind,))
        seen_oldest.add((kind,))
    seen_webhook_pending: set[tuple[str, ...]] = set()
    seen_webhook_oldest: set[tuple[str, ...]] = set()
    for mode in MODES:
        webhook_pending.labels(mode).set(0)
        webhook_oldest.labels(mode).set(0)
        seen_webhook_pending.add((mode,))
        seen_webhook_oldest.add((mode,))

    async def outbox(connection: Any) -> None:
        rows = await connection.fetch(OUTBOX_SQL)
        set_labelled(depth, {(row["kind"],): row["depth"] for row in rows}, seen_depth)
        set_labelled(oldest, {(row["kind"],): row["oldest"] for row in rows}, seen_oldest)

    async def quarantine(connection: Any) -> None:
        rows = await connection.fetch(QUARANTINE_SQL)
        set_labelled(quarantined, {(row["reason"],): row["entries"] for row in rows}, seen_reasons)

    async def merchant_webhooks(connection: Any) -> None:
        rows = await connection.fetch(MERCHANT_WEBHOOK_SQL)
        set_labelled(webhook_pending, {(row["mode"],): row["pending"] for row in rows}, seen_webhook_pending)
        set_labelled(webhook_oldest, {(row["mode"],): row["oldest"] for row in rows}, seen_webhook_oldest)

    metrics.watch_pool(pool)
    metrics.sample_with(pool, [outbox, quarantine, merchant_webhooks])


# From a session becoming paid to its fulfilment (invoice, key, access token) completing: the webhook's apply
# is milliseconds before `paid_at` unless the gateway's relay is behind (paygate_inbox_oldest_pending_age_seconds).
FULFILMENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


def fulfilment_histogram(metrics: ServiceMetrics) -> Histogram:
    """`paygate_fulfilment_seconds{provider,mode}`: its rate is fulfilled payments per second by provider."""
    return Histogram(
        "paygate_fulfilment_seconds",
        "Seconds from a session becoming paid to its fulfilment completing, by provider and mode",
        ["provider", "mode"],
        buckets=FULFILMENT_BUCKETS,
        registry=metrics.registry,
    )


# One attempt: the POST with its 10 s default timeout (60 s at most, PAYGATE_MERCHANT_WEBHOOK_TIMEOUT_MS).
DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
ATTEMPT_RESULTS = ("delivered", "failed", "refused")


def merchant_webhook_metrics(metrics: ServiceMetrics) -> tuple[Counter, Histogram]:
    """`paygate_merchant_webhook_deliveries_total{result,mode}` (one per recorded attempt; result is
    `delivered`, `failed` or `refused`, see service_layer.webhook_delivery.attempt_result) and
    `paygate_merchant_webhook_delivery_seconds` (the POST of each attempt that was sent or refused)."""
    attempts = Counter(
        "paygate_merchant_webhook_deliveries",
        "Merchant webhook delivery attempts recorded, by result (delivered, failed, refused) and endpoint mode",
        ["result", "mode"],
        registry=metrics.registry,
    )
    # Every series exists from the start, so a rate() or an alert on failures has data before the first one.
    for result in ATTEMPT_RESULTS:
        for mode in MODES:
            attempts.labels(result, mode)
    latency = Histogram(
        "paygate_merchant_webhook_delivery_seconds",
        "Seconds one merchant webhook delivery attempt's POST took (to the answer, the timeout or the refusal)",
        buckets=DELIVERY_BUCKETS,
        registry=metrics.registry,
    )
    return attempts, latency
