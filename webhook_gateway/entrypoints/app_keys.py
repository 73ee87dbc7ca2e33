"""Typed keys for what the gateway's aiohttp application carries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
from aiohttp import web

if TYPE_CHECKING:
    from webhook_gateway.adapters.service_clients import ServiceClients
    from webhook_gateway.entrypoints.main import GatewayConfig

CLIENTS: web.AppKey[ServiceClients] = web.AppKey("clients")
POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool")
CONFIG: web.AppKey[GatewayConfig] = web.AppKey("config")
EXTRAS: web.AppKey[dict[str, Any]] = web.AppKey("extras")
