"""Prometheus metrics of one service process, served on its own operations port (never the public one).

Every service has one `ServiceMetrics`: its own registry (so several services assembled in one test process
never mix their figures), the gRPC server figures that `guarded_rpc` records, the database pool gauges, and
gauges filled from periodic queries (outbox depth, quarantine entries, inbox backlog, chain watcher).

Hot path: each RPC method gets its histogram child and its OK counter child once, when the servicer is
wrapped; a call then does one `perf_counter`, one `observe` and one `inc` (about 2 us together, measured in
tests/unit/runtime/test_rpc_metrics.py). Other status codes look their child up in a small dict.

Database gauges are not updated per request: `SampledGauges` runs its queries when /metrics is scraped (at most
once per `min_interval_s`, with a timeout; on failure the last values stay and an error counter grows), so the
cost follows the scrape interval, never the request rate, and an idle service costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Per-service default metrics ports when PAYGATE_METRICS_PORT is unset or 0. Distinct, so that the four
# services can run on one host (as `paygate serve` for each) without colliding.
DEFAULT_METRICS_PORTS = {"gateway": 9101, "session": 9102, "billing": 9103, "keys": 9104}

# RPC latency buckets, in seconds: from an in-memory answer (well under a millisecond) to a deadline.
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_OK = grpc.StatusCode.OK.name


class RpcMetrics:
    """`paygate_grpc_server_handled_total{service,method,code}` and `paygate_grpc_server_handling_seconds`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.handled = Counter(
            "paygate_grpc_server_handled_total",
            "gRPC calls this server completed, by method and status code",
            ["service", "method", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "paygate_grpc_server_handling_seconds",
            "Time this server spent on a gRPC call, by method",
            ["service", "method"],
            buckets=RPC_BUCKETS,
            registry=registry,
        )

    def method(self, full_method: str) -> MethodMetrics:
        """The pre-bound children of one method, named as gRPC names it: `/pkg.Service/Method`."""
        service, _, method = full_method.lstrip("/").partition("/")
        return MethodMetrics(self, service, method)


class MethodMetrics:
    """One RPC method's metric children, bound once so that a call does no label lookup."""

    __slots__ = ("_codes", "_method", "_parent", "_service", "latency", "ok")

    def __init__(self, parent: RpcMetrics, service: str, method: str) -> None:
        self._parent = parent
        self._service = service
        self._method = method
        self.ok = parent.handled.labels(service, method, _OK)
        self.latency = parent.latency.labels(service, method)
        self._codes: dict[str, Any] = {_OK: self.ok}

    def code(self, name: str) -> Any:
        child = self._codes.get(name)
        if child is None:
            # At most the 17 gRPC codes per method: a bounded label set.
            child = self._codes[name] = self._parent.handled.labels(self._service, self._method, name)
        return child

    def done(self, started: float, code: str) -> None:
        self.latency.observe(time.perf_counter() - started)
        (self.ok if code == _OK else self.code(code)).inc()


class PoolCollector(Collector):
    """Database pool use, read from the pool at scrape time (asyncpg keeps these counts; reading is free)."""

    def __init__(self, service: str, pool: Any) -> None:
        self._service = service
        self._pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._pool
        try:
            size, idle, maximum = pool.get_size(), pool.get_idle_size(), pool.get_max_size()
        except Exception:  # a closed pool during shutdown: report nothing rather than fail the scrape
            return
        connections = GaugeMetricFamily(
            "paygate_db_pool_connections",
            "Database connections of this process's pool, by state (open, in_use, max)",
            labels=["service", "state"],
        )
        connections.add_metric([self._service, "open"], size)
        connections.add_metric([self._service, "in_use"], max(size - idle, 0))
        connections.add_metric([self._service, "max"], maximum)
        yield connections


Sampler = Callable[[Any], Awaitable[None]]


@dataclass
class SampledGauges:
    """Gauges filled by database queries run when /metrics is scraped, at most once per `min_interval_s`."""

    pool: Any
    samplers: list[Sampler] = field(default_factory=list)
    min_interval_s: float = 1.0
    timeout_s: float = 2.0
    errors: Counter | None = None
    _last: float = float("-inf")
    _lock: asyncio.Lock | None = None

    async def refresh(self) -> None:
        if not self.samplers:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if time.monotonic() - self._last < self.min_interval_s:
                return
            self._last = time.monotonic()
            try:
                async with asyncio.timeout(self.timeout_s), self.pool.acquire() as connection:
                    for sample in self.samplers:
                        # Each on its own: one failing query (say a table another change renamed) must not
                        # freeze the others.
                        try:
                            await sample(connection)
                        except (asyncio.CancelledError, TimeoutError):
                            raise
                        except Exception:
                            self._failed(sample)
            except Exception:
                # Keep serving the last values: a scrape must not fail because the database is slow or down
                # (the pool gauges and RPC errors tell that story); the counter makes the gap visible.
                self._failed(None)

    def _failed(self, sample: Sampler | None) -> None:
        log.warning(
            "metrics sampling query failed", extra={"sampler": getattr(sample, "__name__", "")}, exc_info=True
        )
        if self.errors is not None:
            self.errors.inc()


class ServiceMetrics:
    """Everything one service process exports on its metrics port."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None, *, rpc: bool = True) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        # The gateway serves no gRPC: without RPC families its page has no empty ones.
        self.rpc = RpcMetrics(self.registry) if rpc else None
        self._sample_errors = Counter(
            "paygate_metrics_sample_errors_total",
            "Metrics sampling queries that failed or timed out (the gauges then keep their last values)",
            ["service"],
            registry=self.registry,
        ).labels(service)
        self._sampled: SampledGauges | None = None

    def watch_pool(self, pool: Any) -> None:
        self.registry.register(PoolCollector(self.service, pool))

    def sample_with(self, pool: Any, samplers: Iterable[Sampler], *, min_interval_s: float = 1.0) -> None:
        """Run `samplers` (each `async (connection) -> None`, setting gauges) when /metrics is scraped."""
        if self._sampled is None:
            self._sampled = SampledGauges(pool, [], min_interval_s, errors=self._sample_errors)
        self._sampled.samplers.extend(samplers)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, documentation, list(labels), registry=self.registry)

    async def render(self) -> bytes:
        if self._sampled is not None:
            await self._sampled.refresh()
        return generate_latest(self.registry)


def set_labelled(gauge: Gauge, values: dict[tuple[str, ...], float], seen: set[tuple[str, ...]]) -> None:
    """Set a labelled gauge from one query's rows: labels seen before but absent now go back to 0, so that a
    drained backlog reads 0 instead of its last non-zero value."""
    for labels in seen - set(values):
        gauge.labels(*labels).set(0)
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
    seen.update(values)


class MetricsServer:
    """A small aiohttp server on its own port that answers `GET /metrics` and nothing else."""

    def __init__(self, metrics: ServiceMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/metrics", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]  # aiohttp types _server as AbstractServer; it is an asyncio Server, which has sockets
        return self.port

    async def _handle(self, request: web.Request) -> web.Response:
        body = await self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
