"""`paygate serve <service>`: run one service in the foreground until SIGTERM or SIGINT.

Each service package exposes `<package>.entrypoints.main` with:
- `load_config(env: Env) -> Config` (raises ConfigError), and
- `async def assemble(config, common: CommonSettings, pool) -> GrpcServiceSpec` for gRPC services, or
  `-> GatewayRuntime` for the gateway (an object with `async start() -> int` and `async stop()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from typing import Any

from paygate_runtime.config import ConfigError, Env, exit_on_config_error
from paygate_runtime.db import create_pool
from paygate_runtime.grpc_server import start_grpc_server
from paygate_runtime.logs import configure_logging
from paygate_runtime.migrations import migrate
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
    except ConfigError as error:
        exit_on_config_error(error)
    configure_logging(service, common.log_level)
    asyncio.run(_serve(service, module, common, config))


async def _serve(service: str, module: Any, common: CommonSettings, config: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if common.migrate_database_url:
        await migrate(common.migrate_database_url, service)
    pool = await create_pool(common.database_url, SERVICES[service].schema, max_size=common.pool_max)
    try:
        assembled = await module.assemble(config, common, pool)
        if service == "gateway":
            port = await assembled.start()
            log.info("gateway listening", extra={"port": port})
            await stop.wait()
            log.info("stopping", extra={"service": service})
            await asyncio.wait_for(assembled.stop(), timeout=SHUTDOWN_GRACE_S + 2)
        else:
            running = await start_grpc_server(
                assembled, host=common.host, port=common.port, tls=common.tls, health_port=common.health_port
            )
            await stop.wait()
            log.info("stopping", extra={"service": service})
            await running.stop(SHUTDOWN_GRACE_S)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pool.close(), timeout=2)
    log.info("stopped", extra={"service": service})
