"""A revoked or expired merchant key is refused within one second on every replica (contract §6a).

Two gateways on one database: the in-process one (with the in-process keys service) and a second gateway
process that talks to a second keys-service process. A key is revoked (or its grace period ends) through the
first; the second must answer 401 within a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from support.processes import Replicas, ServiceProcess
from support.stack import Merchant, ServiceStack, running_stack

pytestmark = pytest.mark.slow


@pytest.fixture
async def two_gateways(
    clean_db, stack_env, tmp_path: Path
) -> AsyncIterator[tuple[ServiceStack, ServiceProcess]]:
    async with running_stack(clean_db, stack_env) as stack:
        replicas = Replicas(stack, tmp_path)
        try:
            keys_b = await replicas.spawn("keys")
            gateway_b = await replicas.spawn("gateway", {"PAYGATE_KEYS_ADDR": keys_b.addr})
            yield stack, gateway_b
        finally:
            replicas.stop_all()


async def _status(http: aiohttp.ClientSession, base_url: str, key: str) -> int:
    async with http.get(f"{base_url}/v1/merchant_keys", headers={"X-API-Key": key}) as response:
        return response.status


async def _until_refused(http: aiohttp.ClientSession, base_url: str, key: str, limit: float) -> float:
    """Poll until the key gets 401; the seconds that took. Fails once `limit` has passed."""
    started = time.monotonic()
    while (status := await _status(http, base_url, key)) != 401:
        assert status == 200, status
        assert time.monotonic() - started < limit, f"still accepted after {limit} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_revocation_and_expiry_reach_the_second_replica_within_a_second(two_gateways) -> None:
    stack, gateway_b = two_gateways
    base_b = f"http://127.0.0.1:{gateway_b.port}"
    merchant = await stack.create_merchant()
    status, second = await stack.request("POST", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 201
    other = Merchant(merchant.id, second["secret"], merchant.name)
    async with aiohttp.ClientSession() as http:
        # Both replicas accept both keys (and would have anything they cache warm).
        for _ in range(3):
            for base in (stack.base_url, base_b):
                assert await _status(http, base, merchant.api_key) == 200
                assert await _status(http, base, other.api_key) == 200

        listing = (await stack.request("GET", "/v1/merchant_keys", headers=other.headers))[1]["data"]
        (first_id,) = [k["id"] for k in listing if k["id"] != second["id"]]
        status, _ = await stack.request("DELETE", f"/v1/merchant_keys/{first_id}", headers=other.headers)
        assert status == 200
        assert await _status(http, stack.base_url, merchant.api_key) == 401  # at once on this replica
        assert await _until_refused(http, base_b, merchant.api_key, limit=1.0) < 1.0
        assert await _status(http, base_b, other.api_key) == 200

        # A rolled key's grace period ends: the second replica refuses it within a second of its end.
        status, rolled = await stack.request(
            "POST", f"/v1/merchant_keys/{second['id']}/roll", json={"grace_period": 2}, headers=other.headers
        )
        assert status == 200
        ends = datetime.fromisoformat(rolled["previous"]["expires_at"])
        assert await _status(http, base_b, other.api_key) == 200  # still in its grace period
        await asyncio.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()))
        assert await _until_refused(http, base_b, other.api_key, limit=1.0) < 1.0
        assert await _status(http, base_b, rolled["secret"]) == 200
