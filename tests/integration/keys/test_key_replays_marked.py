"""Key routes mark an idempotent replay as every other idempotent create does (sessions, refunds, webhook
endpoints): `Idempotent-Replayed: true` on the replay, no such header on the first reply.

Covered over HTTP with real replays (same Idempotency-Key sent twice):
- POST /v1/api_keys/{id}/roll          (customer key roll)
- POST /v1/merchant_keys               (merchant secret key create)
- POST /v1/merchant_keys/{id}/roll     (merchant secret key roll)
"""

from __future__ import annotations

import uuid
from typing import Any

from keys_helpers import issue_access

from support.stack import Merchant, ServiceStack

REPLAYED = "Idempotent-Replayed"


async def call(
    stack: ServiceStack,
    method: str,
    path: str,
    merchant: Merchant,
    idempotency_key: str | None,
    **kwargs: Any,
) -> tuple[int, dict[str, str], Any]:
    """One gateway call; returns (status, headers, JSON body)."""
    assert stack.http is not None
    headers = dict(merchant.headers)
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    async with stack.http.request(method, stack.base_url + path, headers=headers, **kwargs) as response:
        return response.status, dict(response.headers), await response.json(content_type=None)


async def first_and_replay(
    stack: ServiceStack, path: str, merchant: Merchant, expected_status: int, **kwargs: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sends one request twice with one Idempotency-Key and checks the marker on each reply."""
    key = f"replay-{uuid.uuid4()}"
    status, headers, first = await call(stack, "POST", path, merchant, key, **kwargs)
    assert status == expected_status, first
    assert first["secret"], first
    assert REPLAYED not in headers, headers
    status, headers, replay = await call(stack, "POST", path, merchant, key, **kwargs)
    assert status == expected_status, replay
    assert headers.get(REPLAYED) == "true", headers
    assert replay["id"] == first["id"] and replay["secret"] is None, replay
    return first, replay


async def _merchant_key_id(stack: ServiceStack, merchant: Merchant) -> str:
    status, listing = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 200, listing
    (key,) = listing["data"]
    return str(key["id"])


async def test_customer_key_roll_replay_is_marked(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    await first_and_replay(
        stack, f"/v1/api_keys/{issued.key.id}/roll", merchant, 200, json={"grace_period": 600}
    )


async def test_merchant_key_create_replay_is_marked(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    await first_and_replay(stack, "/v1/merchant_keys", merchant, 201, json={})


async def test_merchant_key_roll_replay_is_marked(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    key_id = await _merchant_key_id(stack, merchant)
    await first_and_replay(
        stack, f"/v1/merchant_keys/{key_id}/roll", merchant, 200, json={"grace_period": 60}
    )


async def test_replies_without_an_idempotency_key_are_not_marked(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    key_id = await _merchant_key_id(stack, merchant)
    for path, expected in (
        (f"/v1/api_keys/{issued.key.id}/roll", 200),
        ("/v1/merchant_keys", 201),
        (f"/v1/merchant_keys/{key_id}/roll", 200),
    ):
        status, headers, body = await call(stack, "POST", path, merchant, None, json={})
        assert status == expected, body
        assert body["secret"], body
        assert REPLAYED not in headers, (path, headers)
