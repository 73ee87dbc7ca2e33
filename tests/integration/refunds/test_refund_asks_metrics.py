"""Refunds the gateway could not ask the provider for (`provider_refund_asks`, migration 0960) are visible on
the gateway's metrics port: how many wait, by provider, and how long the oldest has waited. Before, nothing
showed them: a provider outage that outlasted the retries left refunds pending (the customer not refunded, the
amount reserved) with no figure or alert. Against the One.com test double, scraped as Prometheus scrapes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from refund_support import fulfilled, refund

from paygate_dev.devtools.onecom_double import OneComDouble
from paygate_runtime.metrics import MetricsServer
from support import polling
from support.database import TestDatabase
from support.onecom import new_onecom_key, running_onecom_double
from support.stack import ServiceStack, free_port, running_stack

WAITING = "paygate_provider_refund_asks_waiting"
OLDEST = "paygate_provider_refund_asks_oldest_age_seconds"


@pytest.fixture
def gateway_port() -> int:
    return free_port()


@pytest.fixture
def onecom_key() -> str:
    return new_onecom_key()


@pytest.fixture
async def double(stack_env: dict[str, str], onecom_key: str) -> AsyncIterator[OneComDouble]:
    async with running_onecom_double(onecom_key, stack_env["PAYGATE_ONECOM_WEBHOOK_SECRETS"]) as fake:
        yield fake


@pytest.fixture
async def stack(
    clean_db: TestDatabase,
    stack_env: dict[str, str],
    double: OneComDouble,
    onecom_key: str,
    gateway_port: int,
) -> AsyncIterator[ServiceStack]:
    env = {
        **stack_env,
        "PAYGATE_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}",
        "PAYGATE_ONECOM_API_BASE": double.base_url,
        "PAYGATE_ONECOM_API_KEY": onecom_key,
        "PAYGATE_ONECOM_TIMEOUT_MS": "3000",
        # The outage opens One.com's circuit: a short cooldown lets the ask again through soon after it ends.
        "PAYGATE_ONECOM_BREAKER_COOLDOWN_MS": "1500",
        "PAYGATE_WEBHOOK_RELAY_INTERVAL_MS": "200",
        # The reconciliation's cadence, which refunds the provider could not be asked for share.
        "PAYGATE_RECONCILE_INTERVAL_MS": "200",
    }
    async with running_stack(clean_db, env, gateway_port=gateway_port) as services:
        yield services


@pytest.fixture
async def scrape(stack: ServiceStack) -> AsyncIterator[Any]:
    """The gateway's metrics on their own port, as `paygate serve` serves them."""
    server = MetricsServer(stack.gateway.metrics, "127.0.0.1", 0)
    await server.start()

    async def fetch() -> str:
        url = f"http://127.0.0.1:{server.port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 200
            return await response.text()

    try:
        yield fetch
    finally:
        await server.stop()


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_a_refund_waiting_for_the_provider_shows_on_the_metrics_port(
    stack: ServiceStack, double: OneComDouble, scrape: Any
) -> None:
    # Both providers a refund can be asked of have a series from the start (0: nothing waits).
    page = await scrape()
    for provider in ("stripe", "onecom"):
        assert sample(page, WAITING, provider=provider) == 0, page
        assert sample(page, OLDEST, provider=provider) == 0, page

    merchant = await stack.create_merchant()
    status, body = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "20.00", "currency": "EUR", "provider": "onecom"},
        headers=merchant.headers,
    )
    assert status == 201, body
    sid = body["id"]
    [payment] = [p for p in double.payments.values() if p.reference == sid]
    assert await double.act(payment, "pay")
    await fulfilled(stack, merchant, sid)

    double.outage = 503  # One.com stays down: the refund waits, asked again with backoff
    status, body = await refund(stack, merchant, sid, {"amount": "5.00"})
    assert status == 503 and body["error"]["code"] == "provider_unavailable", body

    async def waiting_a_while() -> tuple[float, float] | None:
        page = await scrape()
        waiting, oldest = sample(page, WAITING, provider="onecom"), sample(page, OLDEST, provider="onecom")
        return (waiting, oldest) if waiting == 1 and oldest is not None and oldest >= 1 else None

    waiting, oldest = await polling.eventually(waiting_a_while, timeout=15, what="the waiting-refund gauges")
    assert waiting == 1 and 1 <= oldest < 60
    assert sample(await scrape(), WAITING, provider="stripe") == 0

    # One.com answers again: the refund is asked for, leaves the table, and the gauges go back to 0.
    double.outage = None

    async def drained() -> bool:
        page = await scrape()
        return sample(page, WAITING, provider="onecom") == 0 and sample(page, OLDEST, provider="onecom") == 0

    await polling.eventually(drained, timeout=30, what="the waiting-refund gauges back to 0")
    assert payment.refunded_minor == 500
