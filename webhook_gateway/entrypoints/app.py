"""The gateway's aiohttp application: middlewares and every route module."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from webhook_gateway.adapters.service_clients import ServiceClients
from webhook_gateway.entrypoints import (
    observability,
    routes_access_links,
    routes_audit,
    routes_checkout,
    routes_dashboard,
    routes_events,
    routes_invoices,
    routes_keys,
    routes_merchant_events,
    routes_merchant_keys,
    routes_openapi,
    routes_portal,
    routes_public,
    routes_quarantine,
    routes_refunds,
    routes_sessions,
    routes_web3,
    routes_webhooks,
)
from webhook_gateway.entrypoints.app_keys import CLIENTS, CONFIG, EXTRAS, POOL
from webhook_gateway.entrypoints.http_errors import error_middleware

MAX_BODY_BYTES = 1024 * 1024

# Each area registers its routes here; keep one module per area so that features stay apart.
ROUTE_MODULES = [
    observability,
    routes_public,
    routes_sessions,
    routes_quarantine,
    routes_invoices,
    routes_keys,
    routes_merchant_keys,
    routes_merchant_events,
    routes_access_links,
    routes_portal,
    routes_webhooks,
    routes_web3,  # after routes_webhooks: it registers the web3 handler on that module's EventProcessor
    routes_events,
    routes_checkout,
    routes_refunds,  # POST /v1/sessions/{id}/refund (contract §8); uses routes_checkout's provider APIs
    routes_audit,  # GET /v1/audit (contract §9)
    routes_dashboard,  # after routes_events and routes_access_links: it calls their shared functions
    routes_openapi,
]


def background_workers(app: web.Application) -> list[Callable[[], Awaitable[None]]]:
    """Long-running workers that route modules ask for (relay, chain watcher, clean-up)."""
    workers: list[Callable[[], Awaitable[None]]] = []
    for module in ROUTE_MODULES:
        factory = getattr(module, "background", None)
        if factory is not None:
            workers.extend(factory(app))
    return workers


def build_app(config: Any, pool: asyncpg.Pool, clients: ServiceClients) -> web.Application:
    # client_max_size makes aiohttp stop reading at 1 MiB and answer 413, instead of buffering any size.
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=[observability.observe_middleware, error_middleware]
    )
    app[CONFIG] = config
    app[POOL] = pool
    app[CLIENTS] = clients
    app[EXTRAS] = {}
    for module in ROUTE_MODULES:
        module.setup(app)
    return app
