"""POST /v1/webhook_endpoints takes an Idempotency-Key as POST /v1/sessions does: the same key and body give the
same endpoint (its secret is not shown again), the same key with another body gets 409 idempotency_conflict."""

from __future__ import annotations

from typing import Any

import pytest

from support.merchant_webhooks import FAST_ENV
from support.stack import Merchant, ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_ENV}


async def _create(
    stack: ServiceStack, merchant: Merchant, body: Any, key: str | None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    assert stack.http is not None
    headers = {**merchant.headers, **({"Idempotency-Key": key} if key is not None else {})}
    async with stack.http.post(
        stack.base_url + "/v1/webhook_endpoints", json=body, headers=headers
    ) as response:
        return response.status, await response.json(), dict(response.headers)


async def test_same_key_and_body_give_the_same_endpoint_and_another_body_conflicts(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    body = {"url": "http://127.0.0.1:9/hook", "events": ["session.paid"], "description": "main"}
    status, first, headers = await _create(stack, merchant, body, "ep-1")
    assert status == 201 and first["secret"].startswith("whsec_")
    assert "Idempotent-Replayed" not in headers

    # The same body, keys reordered: the same request.
    reordered = {"description": "main", "events": ["session.paid"], "url": "http://127.0.0.1:9/hook"}
    status, again, headers = await _create(stack, merchant, reordered, "ep-1")
    assert status == 201 and headers.get("Idempotent-Replayed") == "true"
    assert again["id"] == first["id"] and "secret" not in again  # shown once
    assert {k: v for k, v in again.items() if k != "updated_at"} == {
        k: v for k, v in first.items() if k not in ("secret", "updated_at")
    }

    status, conflict, _ = await _create(stack, merchant, {**body, "description": "other"}, "ep-1")
    assert status == 409 and conflict["error"]["code"] == "idempotency_conflict"

    status, _, _ = await _create(stack, merchant, body, "ep-2")
    assert status == 201
    status, _, _ = await _create(stack, merchant, body, None)
    assert status == 201
    status, page = await stack.request("GET", "/v1/webhook_endpoints", headers=merchant.headers)
    assert status == 200 and len(page["data"]) == 3


async def test_a_key_belongs_to_one_merchant_and_a_bad_key_is_refused(stack: ServiceStack) -> None:
    first = await stack.create_merchant()
    second = await stack.create_merchant(name="Second", prefix="second")
    body = {"url": "http://127.0.0.1:9/hook"}
    status, a, _ = await _create(stack, first, body, "shared-key")
    assert status == 201
    status, b, headers = await _create(stack, second, body, "shared-key")
    assert status == 201 and b["id"] != a["id"] and b["secret"] and "Idempotent-Replayed" not in headers

    status, error, _ = await _create(stack, first, body, "k" * 256)
    assert status == 400 and error["error"]["code"] == "invalid_idempotency_key"
    status, error, _ = await _create(stack, first, body, "")
    assert status == 400 and error["error"]["code"] == "invalid_idempotency_key"


async def test_a_refused_body_does_not_use_the_key(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    status, error, _ = await _create(stack, merchant, {"url": "ftp://example.com/"}, "ep-x")
    assert status == 400 and error["error"]["code"] == "invalid_url"
    status, created, _ = await _create(stack, merchant, {"url": "http://127.0.0.1:9/hook"}, "ep-x")
    assert status == 201 and created["secret"]
