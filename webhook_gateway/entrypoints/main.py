"""Gateway process: configuration, the aiohttp server and its background workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from paygate_runtime.config import Env
from paygate_runtime.settings import CommonSettings
from webhook_gateway.adapters.service_clients import ServiceClients
from webhook_gateway.entrypoints.app import background_workers, build_app

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatewayConfig:
    public_url: str
    stripe_webhook_secrets: list[str] = field(default_factory=list)
    onecom_webhook_secrets: list[str] = field(default_factory=list)
    web3_webhook_secrets: list[str] = field(default_factory=list)


def load_config(env: Env) -> GatewayConfig:
    return GatewayConfig(
        public_url=env.str("PAYGATE_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/"),
        stripe_webhook_secrets=env.list("PAYGATE_STRIPE_WEBHOOK_SECRETS"),
        onecom_webhook_secrets=env.list("PAYGATE_ONECOM_WEBHOOK_SECRETS"),
        web3_webhook_secrets=env.list("PAYGATE_WEB3_WEBHOOK_SECRETS"),
    )


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
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._tasks = [asyncio.create_task(worker()) for worker in self.workers]
        return self.port

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        with contextlib.suppress(Exception):
            await self.clients.close()


async def assemble(config: GatewayConfig, common: CommonSettings, pool: asyncpg.Pool) -> GatewayRuntime:
    clients = ServiceClients.connect(common)
    app = build_app(config, pool, clients)
    return GatewayRuntime(app, clients, common.host, common.port, background_workers(app))
