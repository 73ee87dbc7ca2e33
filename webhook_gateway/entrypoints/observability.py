"""Liveness, readiness, the gateway's Prometheus metrics and a request-id/latency middleware.

`/metrics` is not served on the public port (contract §6a: operations traffic is not public): the gateway's
registry is served on its own metrics port by `paygate serve` (paygate_runtime.metrics.MetricsServer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from paygate_runtime.db import database_answers
from paygate_runtime.logs import request_id_var
from paygate_runtime.metrics import ServiceMetrics, set_labelled
from webhook_gateway.adapters.inbox_repository import INBOX_PROVIDERS
from webhook_gateway.adapters.refund_asks_repository import REFUND_ASK_PROVIDERS, waiting_by_provider
from webhook_gateway.entrypoints.app_keys import CLIENTS, POOL

log = logging.getLogger(__name__)

METRICS: web.AppKey[GatewayMetrics] = web.AppKey("metrics")

# The relay's backlog: events committed to the inbox and not yet applied (status `received`). The query
# reads the `inbox_events_due_idx` partial index, which holds those rows only.
INBOX_BACKLOG_SQL = """
SELECT provider, count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(received_at)), 0)::float8 AS oldest
FROM inbox_events WHERE status = 'received' GROUP BY provider
"""
# Events quarantined because no session matched them (outcome unknown_session), received in the last 24 hours:
# a provider account pointed at the wrong environment, or sessions made elsewhere. The relay quarantines them
# after PAYGATE_WEBHOOK_UNKNOWN_SESSION_WINDOW_S and they leave the backlog, so nothing else counts them. Such
# events have no merchant yet, so the query reads `inbox_events_unmatched_idx` (merchant_id IS NULL) by time.
UNKNOWN_SESSION_SQL = """
SELECT provider, count(*) AS events FROM inbox_events
WHERE merchant_id IS NULL AND received_at > now() - interval '24 hours'
  AND status = 'quarantined' AND outcome = 'unknown_session'
GROUP BY provider
"""
# The chain watcher's progress per chain (one row per configured chain: a bounded label set). `head` is the
# chain's latest block as the watcher last saw it, `last_block` the last one it scanned; `updated_at` moves on
# every pass, so its age says whether the watcher runs at all.
CHAIN_SQL = """
SELECT chain_id::text AS chain_id, greatest(coalesce(head, last_block) - last_block, 0)::float8 AS lag_blocks,
       extract(epoch FROM now() - updated_at)::float8 AS since_pass,
       (SELECT count(*) FROM chain_untraced_blocks b
         WHERE b.chain_id = c.chain_id AND b.resolved_at IS NULL)::float8 AS untraced
FROM chain_cursors c
"""
# Peer health (contract §3: readiness is the gateway's own database; a peer's health is a metric). Each peer's
# grpc.health.v1 overall status is checked this often, each check bounded, all peers at once.
PEER_CHECK_INTERVAL_S = 5.0
PEER_CHECK_TIMEOUT_S = 2.0
# What became of a portal visitor's attempt to prove the purchase's email address (routes_portal.py): the
# bounded label set of paygate_portal_email_proofs_total.
PORTAL_PROOF_RESULTS = (
    "proven_by_mail_link",
    "code_sent",
    "proven_by_code",
    "wrong_code",
    "too_many_attempts",
    "code_expired",
    "rate_limited",
    "mail_failed",
)


class GatewayMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__("gateway", rpc=False)
        self.requests = Counter(
            "paygate_http_requests_total",
            "HTTP requests",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "paygate_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.webhooks = Counter(
            "paygate_webhook_events_total",
            "Webhook deliveries by provider and result (received, duplicate, ignored, rejected_<code>, ...)",
            ["provider", "result"],
            registry=self.registry,
        )
        self.registry.register(_VerificationFailures(self.webhooks))
        self.inbox_pending = self.gauge(
            "paygate_inbox_pending",
            "Webhook events stored and not yet applied (the relay's backlog)",
            ["provider"],
        )
        self.inbox_oldest = self.gauge(
            "paygate_inbox_oldest_pending_age_seconds",
            "Age of the oldest webhook event not yet applied, by provider (0 when none is pending)",
            ["provider"],
        )
        self.inbox_unknown_session = self.gauge(
            "paygate_inbox_unknown_session_events",
            "Webhook events quarantined because they match no session (unknown_session), received in the last "
            "24 hours, by provider: a provider account sending another environment's events",
            ["provider"],
        )
        for provider in sorted(INBOX_PROVIDERS):
            self.inbox_pending.labels(provider).set(0)
            self.inbox_oldest.labels(provider).set(0)
            self.inbox_unknown_session.labels(provider).set(0)
        # Refunds the provider could not be asked for (provider_refund_asks), asked again with backoff: from the
        # table by every replica, like the inbox backlog.
        self.refund_asks_waiting = self.gauge(
            "paygate_provider_refund_asks_waiting",
            "Refunds the provider could not be asked for (down or unreachable) that wait to be asked again, by "
            "provider: each stays pending, its amount reserved",
            ["provider"],
        )
        self.refund_asks_oldest = self.gauge(
            "paygate_provider_refund_asks_oldest_age_seconds",
            "Seconds since the first failed ask of the oldest refund still waiting for its provider, by provider "
            "(0 when none waits)",
            ["provider"],
        )
        for provider in sorted(REFUND_ASK_PROVIDERS):
            self.refund_asks_waiting.labels(provider).set(0)
            self.refund_asks_oldest.labels(provider).set(0)
        self.chain_lag = self.gauge(
            "paygate_chain_watcher_lag_blocks",
            "Blocks between the chain's head and the last block the watcher scanned, by chain",
            ["chain_id"],
        )
        self.chain_since_pass = self.gauge(
            "paygate_chain_watcher_last_pass_age_seconds",
            "Seconds since the chain watcher last finished a pass, by chain",
            ["chain_id"],
        )
        # From the table, by every replica, like the lag: the watcher runs on one replica at a time (its lock),
        # and a gauge only that replica set would keep its last value on one that lost the lock.
        self.chain_untraced = self.gauge(
            "paygate_chain_untraced_blocks",
            "Blocks the RPC node could not trace that the chain watcher moved past (retried with backoff; "
            "alert when above 0), by chain",
            ["chain_id"],
        )
        self.portal_proofs = Counter(
            "paygate_portal_email_proofs_total",
            "Customer portal email proofs by result (a burst of wrong_code or too_many_attempts is someone "
            "guessing codes)",
            ["result"],
            registry=self.registry,
        )
        for result in PORTAL_PROOF_RESULTS:
            self.portal_proofs.labels(result)
        self.peer_up = self.gauge(
            "paygate_peer_up",
            "1 when the peer service answered its last grpc.health.v1 check SERVING, else 0 (by peer)",
            ["peer"],
        )
        # Labelled children, each looked up once: prometheus_client's labels() checks the values and takes a
        # lock on every call, and these are counted for every request (issue 16). The keys are the metrics'
        # own label sets, so the caches hold no more entries than the metrics already do.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._webhook_children: dict[tuple[str, str], Any] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        children = self._request_children.get((route, method, status))
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            self._request_children[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_portal_proof(self, result: str) -> None:
        self.portal_proofs.labels(result).inc()

    def count_webhook(self, provider: str, result: str) -> None:
        child = self._webhook_children.get((provider, result))
        if child is None:
            child = self._webhook_children[(provider, result)] = self.webhooks.labels(provider, result)
        child.inc()

    def watch(self, pool: Any) -> None:
        """Pool gauges, the inbox backlog and the refunds waiting for a provider, sampled when /metrics is
        scraped."""
        seen_pending: set[tuple[str, ...]] = {(provider,) for provider in INBOX_PROVIDERS}
        seen_oldest = set(seen_pending)
        seen_unknown = set(seen_pending)
        seen_refunds: set[tuple[str, ...]] = {(provider,) for provider in REFUND_ASK_PROVIDERS}
        seen_refunds_oldest = set(seen_refunds)

        async def inbox(connection: Any) -> None:
            rows = await connection.fetch(INBOX_BACKLOG_SQL)
            set_labelled(
                self.inbox_pending, {(row["provider"],): row["pending"] for row in rows}, seen_pending
            )
            set_labelled(self.inbox_oldest, {(row["provider"],): row["oldest"] for row in rows}, seen_oldest)
            rows = await connection.fetch(UNKNOWN_SESSION_SQL)
            set_labelled(
                self.inbox_unknown_session, {(row["provider"],): row["events"] for row in rows}, seen_unknown
            )

        async def refund_asks(connection: Any) -> None:
            waiting = await waiting_by_provider(connection)
            set_labelled(
                self.refund_asks_waiting, {(p,): count for p, (count, _) in waiting.items()}, seen_refunds
            )
            set_labelled(
                self.refund_asks_oldest, {(p,): age for p, (_, age) in waiting.items()}, seen_refunds_oldest
            )

        async def chain(connection: Any) -> None:
            for row in await connection.fetch(CHAIN_SQL):
                self.chain_lag.labels(row["chain_id"]).set(row["lag_blocks"])
                self.chain_since_pass.labels(row["chain_id"]).set(row["since_pass"])
                self.chain_untraced.labels(row["chain_id"]).set(row["untraced"])

        self.watch_pool(pool)
        self.sample_with(pool, [inbox, refund_asks, chain])


class _VerificationFailures(Collector):
    """`paygate_webhook_verification_failures_total{provider,reason}`: the `rejected_<reason>` results of
    `paygate_webhook_events_total` under their own name, for alerts on forged or misconfigured deliveries.
    Derived at scrape time, so the webhook handler counts each delivery once."""

    PREFIX = "rejected_"

    def __init__(self, events: Counter) -> None:
        self._events = events

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "paygate_webhook_verification_failures",
            "Webhook deliveries refused by signature or timestamp verification, by provider and reason",
            labels=["provider", "reason"],
        )
        for metric in self._events.collect():
            for sample in metric.samples:
                result = sample.labels.get("result", "")
                if sample.name.endswith("_total") and result.startswith(self.PREFIX):
                    family.add_metric([sample.labels["provider"], result[len(self.PREFIX) :]], sample.value)
        yield family


def _request_id(given: str) -> str:
    """The caller's id (its first 64 characters) when it is printable ASCII, else 32 random hex digits (as
    uuid4().hex gave, without building a UUID on every request). The id travels on as gRPC metadata, which
    refuses a tab or a non-ASCII character: such an id made every route that calls a service a 500."""
    given = given[:64]
    if given and all(" " <= char <= "~" for char in given):
        return given
    return os.urandom(16).hex()


@web.middleware
async def observe_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    request_id = _request_id(request.headers.get("X-Request-Id", ""))
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as exc:
        # A refusal (ApiError and aiohttp's own) carries the id too: it is what a developer quotes to support.
        status = exc.status
        exc.headers["X-Request-Id"] = request_id
        raise
    finally:
        request_id_var.reset(token)
        route = (
            request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        )
        request.app[METRICS].observe_request(route, request.method, status, time.perf_counter() - started)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    # Ready means able to accept webhooks: the gateway's own database only, answered well inside kubelet's
    # probe timeout. A peer being down must not take every gateway out of the load balancer: verified events
    # wait in the inbox and the relay applies them once the peer is back.
    problems = []
    if not await database_answers(request.app[POOL], 1.0):
        problems.append("database")
    if problems:
        return web.json_response(
            {"status": "unavailable", "error": {"code": "not_ready", "message": ", ".join(problems)}},
            status=503,
        )
    return web.json_response({"status": "ready"})


async def _peer_serving(channel: Any, timeout_s: float) -> bool:
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
        )
    except (TimeoutError, grpc.aio.AioRpcError):
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


async def check_peers(channels: dict[str, Any], timeout_s: float) -> dict[str, bool]:
    """Each peer's overall health, checked concurrently: one slow peer does not delay the others' figures."""
    names = list(channels)
    results = await asyncio.gather(*(_peer_serving(channels[name], timeout_s) for name in names))
    return dict(zip(names, results, strict=True))


async def watch_peers(
    app: web.Application,
    *,
    interval_s: float = PEER_CHECK_INTERVAL_S,
    timeout_s: float = PEER_CHECK_TIMEOUT_S,
) -> None:
    """Keep `paygate_peer_up{peer}` current. Runs beside the gateway; never affects /readyz."""
    gauge = app[METRICS].peer_up
    was: dict[str, bool] = {}
    while True:
        started = time.monotonic()
        with contextlib.suppress(Exception):  # a check that cannot run leaves the last figures in place
            health = await check_peers(app[CLIENTS].channels, timeout_s)
            for peer, up in health.items():
                gauge.labels(peer).set(1 if up else 0)
                if was.get(peer, True) != up:
                    log.warning("peer %s is %s", peer, "serving again" if up else "not serving")
            was = health
        await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))


def background(app: web.Application) -> list[Callable[[], Awaitable[None]]]:
    async def peers() -> None:
        await watch_peers(app)

    return [peers]


def setup(app: web.Application) -> None:
    app[METRICS] = GatewayMetrics()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
