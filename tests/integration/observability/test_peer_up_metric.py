"""The gateway exports each peer's health as `paygate_peer_up{peer}` on its metrics port (contract §3: readiness
is the gateway's own database; peer health is a metric, not a reason to leave the load balancer). A peer that
stops reads 0 within a few check intervals while /readyz stays 200, and 1 again once it is back."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from paygate_runtime.metrics import MetricsServer
from support import polling
from support.stack import ServiceStack

PEERS = ("session", "billing", "keys")
# The gateway checks every 5 s (2 s timeout) and its channels back off up to 5 s between reconnects; a loaded
# machine adds to that.
WITHIN_S = 45.0


@pytest.fixture
async def peer_up(stack: ServiceStack) -> AsyncIterator[Callable[[], Awaitable[dict[str, float]]]]:
    server = MetricsServer(stack.gateway.metrics, "127.0.0.1", 0)
    await server.start()

    async def read() -> dict[str, float]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{server.port}/metrics") as response,
        ):
            assert response.status == 200
            text = await response.text()
        return {
            peer: float(value)
            for peer, value in re.findall(r'^paygate_peer_up\{peer="(\w+)"\} (\S+)$', text, re.M)
        }

    try:
        yield read
    finally:
        await server.stop()


async def _readyz(stack: ServiceStack) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{stack.base_url}/readyz") as response:
        return response.status


async def test_peer_up_follows_each_peer_and_readiness_does_not(
    stack: ServiceStack, peer_up: Callable[[], Awaitable[dict[str, float]]]
) -> None:
    async def all_up() -> bool:
        return await peer_up() == {peer: 1.0 for peer in PEERS}

    await polling.eventually(all_up, timeout=WITHIN_S, interval=0.2, what="every peer up")

    await stack.stop_service("billing")

    async def billing_down() -> bool:
        return await peer_up() == {"session": 1.0, "billing": 0.0, "keys": 1.0}

    await polling.eventually(billing_down, timeout=WITHIN_S, interval=0.2, what="billing down")
    assert await _readyz(stack) == 200  # still ready: webhooks wait in the inbox for billing

    await stack.start_service("billing")
    await polling.eventually(all_up, timeout=WITHIN_S, interval=0.2, what="billing back")
