"""Faults a merchant's walk found in the merchant-events API (contract §7, §6a), each pinned by a test:

1. every rolled secret keeps signing until the expiry promised for it, however many rolls follow (at most
   five previous secrets at once; a roll with `expires_in: 0` ends every previous one);
2. `previous_secret_expires_at` is null once it has passed;
3. a deleted endpoint's delivery log stays readable by `?endpoint=`;
4. a redelivery without `endpoint` is 400 `missing_endpoint`;
5. an empty PATCH changes nothing (no `updated_at` bump, no audit entry).
Real services, a real loopback receiver, signatures checked with the reference `standardwebhooks` library."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from merchant_events_support import FAST_ENV, Receiver, create_endpoint, eventually, paid_session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from support.stack import Merchant, ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_ENV}


async def _async(value: Any) -> Any:
    return value


def _seconds_ahead(stamp: str) -> float:
    return (datetime.fromisoformat(stamp) - datetime.now(UTC)).total_seconds()


async def _roll(stack: ServiceStack, merchant: Any, endpoint_id: str, **body: Any) -> dict[str, Any]:
    status, rolled = await stack.request(
        "POST", f"/v1/webhook_endpoints/{endpoint_id}/roll_secret", headers=merchant.headers, json=body
    )
    assert status == 200, rolled
    return rolled


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


async def _next_delivery(stack: ServiceStack, merchant: Any, receiver: Receiver) -> Any:
    before = len(receiver.deliveries)
    await paid_session(stack, merchant)
    await eventually(lambda: _async(len(receiver.deliveries) > before), timeout=30)
    return receiver.deliveries[-1]


async def test_every_rolled_secret_signs_until_its_own_promised_expiry(
    stack: ServiceStack, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
    s0 = endpoint["secret"]
    first = await _roll(stack, merchant, endpoint["id"])
    s1 = first["secret"]
    promised = first["previous_secret_expires_at"]
    assert 86_390 < _seconds_ahead(promised) <= 86_400, first
    second = await _roll(stack, merchant, endpoint["id"], expires_in=3600)
    s2 = second["secret"]
    # The endpoint still shows the latest end of any previous secret: S0's 24 h, not S1's hour.
    assert second["previous_secret_expires_at"] == promised, second

    delivery = await _next_delivery(stack, merchant, receiver)
    signatures = delivery.headers["webhook-signature"].split(" ")
    assert len(signatures) == 3, delivery.headers
    for secret in (s0, s1, s2):
        assert _verifies(secret, delivery.body, delivery.headers), secret

    # A roll with 0: stop trusting every old secret now.
    now = await _roll(stack, merchant, endpoint["id"], expires_in=0)
    assert now["previous_secret_expires_at"] is None, now
    delivery = await _next_delivery(stack, merchant, receiver)
    assert len(delivery.headers["webhook-signature"].split(" ")) == 1, delivery.headers
    assert _verifies(now["secret"], delivery.body, delivery.headers)
    for secret in (s0, s1, s2):
        assert not _verifies(secret, delivery.body, delivery.headers)


async def test_at_most_five_previous_secrets_sign_and_the_oldest_goes_first(
    stack: ServiceStack, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
    secrets = [endpoint["secret"]]
    for _ in range(6):
        secrets.append((await _roll(stack, merchant, endpoint["id"], expires_in=3600))["secret"])
    delivery = await _next_delivery(stack, merchant, receiver)
    # The current secret and the five newest previous ones; the first (oldest) one was ended by the sixth roll.
    assert len(delivery.headers["webhook-signature"].split(" ")) == 6, delivery.headers
    assert not _verifies(secrets[0], delivery.body, delivery.headers)
    for secret in secrets[1:]:
        assert _verifies(secret, delivery.body, delivery.headers)


async def test_a_passed_previous_secret_expiry_shows_null(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, "http://127.0.0.1:9/hook", ["session.paid"])
    rolled = await _roll(stack, merchant, endpoint["id"], expires_in=1)
    assert rolled["previous_secret_expires_at"] is not None
    await asyncio.sleep(1.3)
    status, shown = await stack.request(
        "GET", f"/v1/webhook_endpoints/{endpoint['id']}", headers=merchant.headers
    )
    assert status == 200 and shown["previous_secret_expires_at"] is None, shown
    status, listed = await stack.request("GET", "/v1/webhook_endpoints", headers=merchant.headers)
    assert status == 200 and listed["data"][0]["previous_secret_expires_at"] is None, listed


async def test_the_endpoint_lists_each_previous_secret_still_signing_with_its_own_end(
    stack: ServiceStack, receiver: Receiver
) -> None:
    """`previous_secret_expires_at` is the latest end only; a receiver that moved to the newest secret still needs
    to know when each older one stops. `previous_secrets` lists every previous secret still signing, latest end
    first, with no secret in it; an ended one leaves the list, and `expires_in: 0` empties it."""
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
    assert endpoint["previous_secrets"] == [], endpoint
    await _roll(stack, merchant, endpoint["id"], expires_in=1)
    await _roll(stack, merchant, endpoint["id"], expires_in=600)
    third = await _roll(stack, merchant, endpoint["id"], expires_in=3600)
    ends = [entry["expires_at"] for entry in third["previous_secrets"]]
    assert len(ends) == 3 and ends == sorted(ends, reverse=True), third
    assert ends[0] == third["previous_secret_expires_at"], third
    assert [round(_seconds_ahead(end), -1) for end in ends[:2]] == [3600, 600], ends
    assert all(set(entry) == {"expires_at"} for entry in third["previous_secrets"]), third

    await asyncio.sleep(1.2)  # the first roll's 1 s has passed
    status, shown = await stack.request(
        "GET", f"/v1/webhook_endpoints/{endpoint['id']}", headers=merchant.headers
    )
    assert status == 200 and [e["expires_at"] for e in shown["previous_secrets"]] == ends[:2], shown
    status, listed = await stack.request("GET", "/v1/webhook_endpoints", headers=merchant.headers)
    assert status == 200 and listed["data"][0]["previous_secrets"] == shown["previous_secrets"], listed

    ended = await _roll(stack, merchant, endpoint["id"], expires_in=0)
    assert ended["previous_secrets"] == [] and ended["previous_secret_expires_at"] is None, ended


async def test_a_deleted_endpoints_log_stays_readable_by_endpoint(
    stack: ServiceStack, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
    await _next_delivery(stack, merchant, receiver)

    async def logged() -> Any:
        _, page = await stack.request(
            "GET", f"/v1/webhook_deliveries?endpoint={endpoint['id']}", headers=merchant.headers
        )
        return page.get("data")

    await eventually(logged, timeout=20)
    status, _ = await stack.request(
        "DELETE", f"/v1/webhook_endpoints/{endpoint['id']}", headers=merchant.headers
    )
    assert status == 200
    status, page = await stack.request(
        "GET", f"/v1/webhook_deliveries?endpoint={endpoint['id']}", headers=merchant.headers
    )
    assert status == 200, page
    assert page["data"] and all(a["endpoint_id"] == endpoint["id"] for a in page["data"]), page

    # Still 404 for another merchant, the other mode, and an id that names nothing.
    other = await stack.create_merchant()
    status, reply = await stack.request(
        "GET", f"/v1/webhook_deliveries?endpoint={endpoint['id']}", headers=other.headers
    )
    assert status == 404 and reply["error"]["code"] == "not_found", reply
    status, reply = await stack.request(
        "GET", f"/v1/webhook_deliveries?endpoint={uuid.uuid4()}", headers=merchant.headers
    )
    assert status == 404 and reply["error"]["code"] == "not_found", reply


async def test_a_deleted_endpoint_of_the_other_mode_is_not_found(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, "http://127.0.0.1:9/hook", ["session.paid"])
    status, _ = await stack.request(
        "DELETE", f"/v1/webhook_endpoints/{endpoint['id']}", headers=merchant.headers
    )
    assert status == 200
    reply = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=merchant.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    live = Merchant(merchant.id, reply.secret_key, merchant.name)
    status, reply = await stack.request(
        "GET", f"/v1/webhook_deliveries?endpoint={endpoint['id']}", headers=live.headers
    )
    assert status == 404 and reply["error"]["code"] == "not_found", reply


async def test_a_redelivery_without_endpoint_is_missing_endpoint(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, "http://127.0.0.1:9/hook", ["session.paid"])
    await paid_session(stack, merchant)

    async def event_id() -> str | None:
        _, page = await stack.request("GET", "/v1/merchant_events", headers=merchant.headers)
        return page["data"][0]["id"] if page["data"] else None

    event = await eventually(event_id, timeout=20)
    path = f"/v1/merchant_events/{event}/redeliver"
    status, reply = await stack.request("POST", path, headers=merchant.headers, json={})
    assert status == 400 and reply["error"]["code"] == "missing_endpoint", reply
    for body in ({"endpoint": 3}, {"endpoint": ""}):
        status, reply = await stack.request("POST", path, headers=merchant.headers, json=body)
        assert status == 400 and reply["error"]["code"] == "invalid_endpoint", (body, reply)

    status, document = await stack.request("GET", "/openapi.json")
    assert status == 200
    text = str(document["paths"]["/v1/merchant_events/{id}/redeliver"])
    assert "missing_endpoint" in text and "invalid_endpoint" in text


async def test_an_empty_or_no_op_patch_changes_nothing(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, "http://127.0.0.1:9/hook", ["session.paid"])
    path = f"/v1/webhook_endpoints/{endpoint['id']}"
    await asyncio.sleep(0.05)
    for body in ({}, {"status": "enabled", "events": ["session.paid"], "url": endpoint["url"]}):
        status, patched = await stack.request("PATCH", path, headers=merchant.headers, json=body)
        assert status == 200, patched
        assert patched["updated_at"] == endpoint["updated_at"], (body, patched)
        assert patched["id"] == endpoint["id"] and "secret" not in patched
    conn = await stack.db.admin()
    try:
        actions = await conn.fetch(
            """SELECT action FROM session.audit_log
                WHERE merchant_id = $1 AND action LIKE 'webhook_endpoint%' ORDER BY chain_seq""",
            merchant.id,
        )
    finally:
        await conn.close()
    assert [r["action"] for r in actions] == ["webhook_endpoint_created"], actions


async def test_a_previous_secret_in_the_old_columns_still_signs_and_the_next_roll_keeps_it(
    stack: ServiceStack, receiver: Receiver
) -> None:
    """What a previous release leaves during a rolling update: the retired secret in `previous_secret_sealed`
    with its end, nothing in the table of migration 0220."""
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
    rolled = await _roll(stack, merchant, endpoint["id"])
    conn = await stack.db.admin()
    try:
        moved = await conn.execute(
            """WITH gone AS (DELETE FROM session.webhook_endpoint_previous_secrets WHERE endpoint_id = $1
                             RETURNING secret_sealed, expires_at)
               UPDATE session.webhook_endpoints
                  SET previous_secret_sealed = (SELECT secret_sealed FROM gone),
                      previous_secret_expires_at = (SELECT expires_at FROM gone)
                WHERE id = $1""",
            uuid.UUID(endpoint["id"]),
        )
    finally:
        await conn.close()
    assert moved == "UPDATE 1"
    status, shown = await stack.request(
        "GET", f"/v1/webhook_endpoints/{endpoint['id']}", headers=merchant.headers
    )
    assert status == 200 and shown["previous_secret_expires_at"] == rolled["previous_secret_expires_at"]
    delivery = await _next_delivery(stack, merchant, receiver)
    assert _verifies(endpoint["secret"], delivery.body, delivery.headers)
    assert _verifies(rolled["secret"], delivery.body, delivery.headers)

    again = await _roll(stack, merchant, endpoint["id"], expires_in=60)
    assert again["previous_secret_expires_at"] == rolled["previous_secret_expires_at"], again
    delivery = await _next_delivery(stack, merchant, receiver)
    assert len(delivery.headers["webhook-signature"].split(" ")) == 3, delivery.headers
    for secret in (endpoint["secret"], rolled["secret"], again["secret"]):
        assert _verifies(secret, delivery.body, delivery.headers)
