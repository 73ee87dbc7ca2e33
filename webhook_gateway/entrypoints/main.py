"""Gateway process: the aiohttp server and its background workers (`paygate serve` loads this module: it
exposes load_config and assemble)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from paygate_runtime.settings import CommonSettings
from paygate_runtime.tasks import cancel_and_wait
from webhook_gateway.adapters.service_clients import ServiceClients
from webhook_gateway.entrypoints.app import background_workers, build_app
from webhook_gateway.entrypoints.gateway_config import GatewayConfig, load_config
from webhook_gateway.entrypoints.observability import METRICS, GatewayMetrics

__all__ = ["GatewayConfig", "GatewayRuntime", "assemble", "load_config"]

log = logging.getLogger(__name__)


class GatewayRuntime:
    """The HTTP server plus the workers that run beside it (relay, chain watcher, clean-up)."""

    def __init__(
        self,
        app: web.Application,
        clients: ServiceClients,
        host: str,
        port: int,
        workers: list[Callable[[], Awaitable[None]]] | None = None,
    ) -> None:
        self.app = app
        self.clients = clients
        self.host = host
        self.port = port
        self.workers = workers or []
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> int:
        # access_log=None: aiohttp's access log prints query strings, and access tokens travel in them.
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]  # aiohttp types _server as AbstractServer; it is an asyncio Server, which has sockets
        self._tasks = [asyncio.create_task(_run(worker)) for worker in self.workers]
        return self.port

    @property
    def metrics(self) -> GatewayMetrics:
        """What `paygate serve` exports on the metrics port (never on the public port)."""
        return self.app[METRICS]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks, timeout=10)
        if self._runner is not None:
            await self._runner.cleanup()
        with contextlib.suppress(Exception):
            await self.clients.close()


async def _run(worker: Callable[[], Awaitable[None]]) -> None:
    await worker()


async def assemble(config: GatewayConfig, common: CommonSettings, pool: asyncpg.Pool) -> GatewayRuntime:
    clients = ServiceClients.connect(common)
    app = build_app(config, pool, clients)
    app[METRICS].watch(pool)
    return GatewayRuntime(app, clients, common.host, common.port, background_workers(app))
