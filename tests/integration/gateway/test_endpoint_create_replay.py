"""`POST /v1/webhook_endpoints` replayed (same Idempotency-Key and body) after the endpoint was deleted.

The replay answers as every idempotent create in paygate does (README "Idempotent endpoint creation", refunds):
201 with `Idempotent-Replayed: true` and the endpoint as it stands now, here `"status": "deleted"` with
`"deleted": true` as the DELETE reply said, and never its signing secret again (secrets are shown once). The
key stays used: it does not make a new endpoint. The OpenAPI operation says so.
"""

from __future__ import annotations

import uuid
from typing import Any

from support.stack import Merchant, ServiceStack

ENDPOINTS = "/v1/webhook_endpoints"
BODY = {"url": "https://hooks.example.com/replayed", "events": ["session.paid"], "description": "replay"}


async def call(stack: ServiceStack, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    assert stack.http is not None
    async with stack.http.request(method, stack.base_url + path, **kwargs) as response:
        return response.status, dict(response.headers), await response.json(content_type=None)


def assert_no_secret(body: Any, secret: str) -> None:
    assert "secret" not in body, body
    assert secret not in repr(body)


async def merchant_with_endpoint(stack: ServiceStack) -> tuple[Merchant, dict[str, str], dict[str, Any]]:
    merchant = await stack.create_merchant("Replay", f"rp{uuid.uuid4().hex[:6]}")
    headers = {**merchant.headers, "Idempotency-Key": f"create-{uuid.uuid4()}"}
    status, first_headers, created = await call(stack, "POST", ENDPOINTS, headers=headers, json=BODY)
    assert status == 201, created
    assert created["secret"].startswith("whsec_"), created
    assert "Idempotent-Replayed" not in first_headers
    return merchant, headers, created


async def test_replay_of_a_live_endpoint_shows_no_secret(stack: ServiceStack) -> None:
    _, headers, created = await merchant_with_endpoint(stack)
    status, replay_headers, replay = await call(stack, "POST", ENDPOINTS, headers=headers, json=BODY)
    assert status == 201, replay
    assert replay_headers.get("Idempotent-Replayed") == "true"
    assert replay["id"] == created["id"] and replay["status"] == "enabled"
    assert "deleted" not in replay, replay
    assert_no_secret(replay, created["secret"])


async def test_replay_after_delete_answers_the_deleted_endpoint_without_its_secret(
    stack: ServiceStack,
) -> None:
    merchant, headers, created = await merchant_with_endpoint(stack)
    status, deleted = await stack.request("DELETE", f"{ENDPOINTS}/{created['id']}", headers=merchant.headers)
    assert status == 200 and deleted["deleted"] is True, deleted
    assert_no_secret(deleted, created["secret"])

    for _ in range(2):
        status, replay_headers, replay = await call(stack, "POST", ENDPOINTS, headers=headers, json=BODY)
        assert status == 201, replay
        assert replay_headers.get("Idempotent-Replayed") == "true"
        assert replay["id"] == created["id"], replay
        assert replay["status"] == "deleted" and replay["deleted"] is True, replay
        assert_no_secret(replay, created["secret"])

    # The key stays used: no second endpoint was made, and the deleted one stays gone.
    status, listed = await stack.request("GET", ENDPOINTS, headers=merchant.headers)
    assert status == 200 and listed["data"] == [], listed
    status, _ = await stack.request("GET", f"{ENDPOINTS}/{created['id']}", headers=merchant.headers)
    assert status == 404

    # The same key with another body is still a conflict, deleted or not.
    status, conflict = await stack.request(
        "POST", ENDPOINTS, headers=headers, json={**BODY, "description": "other"}
    )
    assert status == 409 and conflict["error"]["code"] == "idempotency_conflict", conflict


async def test_the_openapi_operation_documents_the_deleted_replay(stack: ServiceStack) -> None:
    status, document = await stack.request("GET", "/openapi.json")
    assert status == 200
    operation = document["paths"][ENDPOINTS]["post"]
    description = operation.get("description", "")
    assert "deleted" in description and "secret" in description, operation
    key = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
    assert "current state" in key["description"], key
