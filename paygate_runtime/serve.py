"""`paygate serve <service>`: run one service in the foreground until SIGTERM or SIGINT.

Each service package exposes `<package>.entrypoints.main` with:
- `load_config(env: Env) -> Config` (raises ConfigError), and
- `async def assemble(config, common: CommonSettings, pool) -> GrpcServiceSpec` for gRPC services, or
  `-> GatewayRuntime` for the gateway (an object with `async start() -> int` and `async stop()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import os
import signal
from typing import Any

import asyncpg
from grpc_health.v1 import health_pb2

from paygate_runtime import tracing
from paygate_runtime.audit_anchor import DEFAULT_INTERVAL_S, AuditAnchor, interval_from_env
from paygate_runtime.audit_chain import AUDIT_TABLES
from paygate_runtime.config import ConfigError, Env, exit_on_config_error
from paygate_runtime.database_errors import CONNECT_ERRORS, describe
from paygate_runtime.db import create_pool, database_answers
from paygate_runtime.grpc_server import start_grpc_server
from paygate_runtime.logs import configure_logging
from paygate_runtime.metrics import MetricsServer, ServiceMetrics
from paygate_runtime.migrations import load_migrations, migrate
from paygate_runtime.schemas import SERVICES
from paygate_runtime.settings import CommonSettings

log = logging.getLogger(__name__)

PACKAGES = {
    "session": "session_service",
    "billing": "billing_service",
    "keys": "keys_service",
    "gateway": "webhook_gateway",
}
SHUTDOWN_GRACE_S = 5.0


def entrypoint_module(service: str) -> Any:
    return importlib.import_module(f"{PACKAGES[service]}.entrypoints.main")


def serve(service: str) -> None:
    env = Env()
    module = entrypoint_module(service)
    try:
        common = CommonSettings.from_env(service, env)
        config = module.load_config(env)
        audit_anchor_s = interval_from_env()
        tracing.check_endpoint(os.environ)
    except ConfigError as error:
        exit_on_config_error(error)
    configure_logging(service, common.log_level)
    # Before anything is assembled: servers, channels and the aiohttp app pick up tracing as they are built.
    tracing.setup(service)
    try:
        asyncio.run(_serve(service, module, common, config, audit_anchor_s))
    finally:
        tracing.shutdown()  # flushes the last spans


async def _serve(
    service: str, module: Any, common: CommonSettings, config: Any, audit_anchor_s: float = DEFAULT_INTERVAL_S
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if common.migrate_database_url:
            await migrate(common.migrate_database_url, service)
        if not await _schema_ready_or_stop(common.database_url, service, stop):
            log.info("stopped before the schema was ready", extra={"service": service})
            return
        pool = await create_pool(
            common.database_url, SERVICES[service].schema, min_size=common.pool_min, max_size=common.pool_max
        )
    except CONNECT_ERRORS as error:
        # Still an exit (kubelet restarts the container with its backoff), but as one log line that says why,
        # like every other line on stderr, not asyncpg's traceback. The error never holds the DSN's password.
        log.error(
            "start-up stopped: the database did not answer or refused", extra={"error": describe(error)}
        )
        raise SystemExit(1) from None
    metrics_server: MetricsServer | None = None
    try:
        assembled = await module.assemble(config, common, pool)
        tune_cycle_collector()
        if service == "gateway":
            port = await assembled.start()
            log.info("gateway listening", extra={"port": port})
            metrics_server = await _start_metrics(assembled.metrics, common)
            await stop.wait()
            log.info("stopping", extra={"service": service})
            await asyncio.wait_for(assembled.stop(), timeout=SHUTDOWN_GRACE_S + 2)
        else:
            running = await start_grpc_server(
                assembled, host=common.host, port=common.port, tls=common.tls, health_port=common.health_port
            )
            assert assembled.metrics is not None  # start_grpc_server gives every spec its metrics
            metrics_server = await _start_metrics(assembled.metrics, common)
            database_health = asyncio.create_task(_report_database_health(running, pool))
            # Issue 20: the audit chain heads are logged and exported every minute (paygate_runtime/audit_anchor.py).
            anchor = (
                asyncio.create_task(AuditAnchor(service, pool, assembled.metrics, audit_anchor_s).run())
                if service in AUDIT_TABLES
                else None
            )
            await stop.wait()
            log.info("stopping", extra={"service": service})
            database_health.cancel()
            if anchor is not None:
                anchor.cancel()
            await running.stop(SHUTDOWN_GRACE_S)
    finally:
        if metrics_server is not None:
            with contextlib.suppress(Exception):
                await metrics_server.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pool.close(), timeout=2)
    log.info("stopped", extra={"service": service})


# Container objects allocated and not yet freed before the cycle collector runs on the young generation (Python's
# default is 700). A service holds every request in flight at once: at c=64 the gateway keeps about 64 parsed
# webhook bodies, normalised events and responses alive across its awaits, so with 700 it collected the young
# generation several times for every 100 replies and the middle one every few hundred (in one bench_stack-sized
# run, 12,000 requests: 346 young and 31 middle collections, 132 ms). With 20,000 the same run made none. The
# objects of a request are freed by reference counting when it ends, so the young generation stays far below
# the threshold in steady state: this only stops the collector from re-walking live requests.
YOUNG_COLLECTION_THRESHOLD = 20_000


def tune_cycle_collector() -> None:
    """Move everything built at start-up (imported modules, protobuf descriptors, web3's ABI tables, the app)
    out of the cyclic collector's reach. Those objects live as long as the process, yet every full collection
    walked them all again: in the gateway about 137,000 objects, 20 ms during which nothing is answered (under
    0.1 ms once frozen). Frozen objects are still freed by reference counting; only the cycle search skips
    them. Measured end to end the freeze is within bench_stack's noise (gateway CPU per reply 0.19-0.26 ms
    with it, 0.21-0.23 ms without); what it removes is a 20 ms stall at unpredictable moments.

    Then the young generation's threshold is raised (YOUNG_COLLECTION_THRESHOLD). That removes about 11 us of
    collector work per request (counted with gc.callbacks); in seven interleaved pairs of 6,000-webhook runs the
    gateway's CPU per reply fell from 0.313 to 0.289 ms (medians), while bench_stack's 3,000-webhook bursts
    stayed within their noise (0.31-0.35 ms with it, 0.29-0.37 ms without)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


SCHEMA_WAIT_MAX_DELAY_S = 10.0


async def _schema_ready_or_stop(dsn: str, service: str, stop: asyncio.Event) -> bool:
    """Serve only with the schema this build was made for: until every migration it ships is recorded in
    `<schema>.schema_migrations` (the migration Job runs them), wait and say so, rather than serve and fail on
    missing tables or columns. Nothing listens meanwhile, so kubelet's startupProbe holds the pod back.
    A schema ahead of this build is fine (migrations only expand while old pods still run). False when
    SIGTERM came first."""
    wanted = {m.version for m in load_migrations(service)}
    schema = SERVICES[service].schema
    delay = 0.5
    while True:
        # An unreachable database or bad credentials fail here as they would at create_pool: exit, and kubelet
        # restarts the container with its backoff. Only a reachable database without the schema is waited for.
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            rows = await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
            missing = sorted(wanted - {row["version"] for row in rows})
        except asyncpg.UndefinedTableError:
            missing = sorted(wanted)  # not migrated at all yet
        finally:
            await conn.close()
        if not missing:
            return True
        log.warning("waiting for migrations", extra={"service": service, "missing": missing})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        if stop.is_set():
            return False
        delay = min(delay * 2, SCHEMA_WAIT_MAX_DELAY_S)


# grpc.health.v1 name that answers SERVING while the process runs, whatever its database does: kubelet's
# livenessProbe asks for it, so a database outage takes pods out of the Service (readiness, the overall
# "" status) without restarting them all.
LIVENESS_SERVICE = "liveness"
DATABASE_CHECK_INTERVAL_S = 5.0
DATABASE_CHECK_TIMEOUT_S = 2.0


async def _report_database_health(running: Any, pool: Any) -> None:
    """NOT_SERVING (overall and per service) while the service's database does not answer, SERVING again
    once it does. The graceful stop's NOT_SERVING wins: the health servicer ignores later changes."""
    names = ["", *(full_name for _, _, full_name in running.spec.servicers)]
    await running.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    serving = True
    while True:
        await asyncio.sleep(DATABASE_CHECK_INTERVAL_S)
        ok = await database_answers(pool, DATABASE_CHECK_TIMEOUT_S)
        if ok != serving:
            serving = ok
            status = (
                health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            log.warning("database health changed", extra={"serving": ok})
            for name in names:
                await running.health.set(name, status)


async def _start_metrics(metrics: ServiceMetrics, common: CommonSettings) -> MetricsServer | None:
    """Prometheus /metrics on the service's own operations port (PAYGATE_METRICS_PORT), never the public one."""
    server = MetricsServer(metrics, common.host, common.metrics_port)
    try:
        port = await server.start()
    except OSError as error:
        if not common.metrics_port_configured:
            # The per-service default is taken (another process of this service on the host): serve without
            # metrics and say so, rather than refuse to run. A configured port is a promise: see below.
            log.warning(
                "metrics not served: the default metrics port is taken; set PAYGATE_METRICS_PORT",
                extra={"port": common.metrics_port, "error": str(error)},
            )
            return None
        log.error(
            "cannot listen on PAYGATE_METRICS_PORT", extra={"port": common.metrics_port, "error": str(error)}
        )
        raise SystemExit(1) from None
    log.info("metrics listening", extra={"port": port, "path": "/metrics"})
    return server
