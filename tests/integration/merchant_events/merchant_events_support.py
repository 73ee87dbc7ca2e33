"""Helpers of the merchant events tests: the shared loopback receiver and setup (support.merchant_webhooks),
a hanging answer, and a longer default wait."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from support import polling
from support.merchant_webhooks import (
    FAST_ENV,
    Behaviour,
    Delivery,
    Receiver,
    create_endpoint,
    ok,
    paid_session,
)

__all__ = [
    "FAST_ENV",
    "Behaviour",
    "Delivery",
    "Receiver",
    "create_endpoint",
    "eventually",
    "hang",
    "ok",
    "paid_session",
]


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, interval: float = 0.05
) -> Any:
    return await polling.eventually(check, timeout=timeout, interval=interval)


async def hang(_: int) -> web.StreamResponse:
    await asyncio.sleep(3600)
    return web.Response(status=200)
