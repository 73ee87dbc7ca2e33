"""Bad webhook deliveries are refused before anything is stored, and never touch a session."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg
import pytest
from gateway_webhook_support import (
    FAST_RELAY_ENV,
    create_session,
    inbox,
    onecom_event,
    send_raw,
    session_of,
    stripe_event,
    stripe_secret,
    wait_for_status,
)

from paygate_dev.devtools.signing import (
    encode_body,
    new_standard_webhook_secret,
    new_stripe_webhook_secret,
    sign_standard,
    sign_stripe,
    standard_delivery,
    stripe_delivery,
)
from support.stack import Merchant, ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_RELAY_ENV}


async def _paid_event_setup(stack: ServiceStack) -> tuple[Merchant, dict[str, Any], dict[str, Any]]:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant)
    return merchant, session, stripe_event("payment_intent.succeeded", session)


async def _assert_nothing_happened(stack: ServiceStack, merchant: Merchant, session_id: str) -> None:
    # Give a wrongly started background apply time to land, so that the check below means something.
    await asyncio.sleep(0.3)
    assert await inbox(stack) == []
    session = await session_of(stack, merchant, session_id)
    assert session["status"] == "created"
    assert session["history"] == []


async def test_missing_stripe_signature_header(stack: ServiceStack) -> None:
    merchant, session, event = await _paid_event_setup(stack)
    raw, headers = stripe_delivery(event, stripe_secret(stack), int(time.time()))
    del headers["Stripe-Signature"]
    status, body = await send_raw(stack, "stripe", raw, headers)
    assert (status, body["error"]["code"]) == (400, "missing_signature")
    await _assert_nothing_happened(stack, merchant, session["id"])


async def test_wrong_stripe_secret(stack: ServiceStack) -> None:
    merchant, session, event = await _paid_event_setup(stack)
    raw, headers = stripe_delivery(event, new_stripe_webhook_secret(), int(time.time()))
    status, body = await send_raw(stack, "stripe", raw, headers)
    assert (status, body["error"]["code"]) == (400, "invalid_signature")
    await _assert_nothing_happened(stack, merchant, session["id"])


async def test_body_changed_after_signing(stack: ServiceStack) -> None:
    merchant, session, event = await _paid_event_setup(stack)
    raw, headers = stripe_delivery(event, stripe_secret(stack), int(time.time()))
    tampered = raw.replace(b'"livemode":false', b'"livemode":true ', 1)
    assert tampered != raw
    status, body = await send_raw(stack, "stripe", tampered, headers)
    assert (status, body["error"]["code"]) == (400, "invalid_signature")
    await _assert_nothing_happened(stack, merchant, session["id"])


@pytest.mark.parametrize("offset", [-600, 600], ids=["10-min-old", "10-min-future"])
async def test_timestamp_out_of_tolerance(stack: ServiceStack, offset: int) -> None:
    merchant, session, event = await _paid_event_setup(stack)
    raw, headers = stripe_delivery(event, stripe_secret(stack), int(time.time()) + offset)
    status, body = await send_raw(stack, "stripe", raw, headers)
    assert (status, body["error"]["code"]) == (400, "timestamp_out_of_tolerance")
    await _assert_nothing_happened(stack, merchant, session["id"])


@pytest.mark.parametrize(
    ("raw", "code"),
    [(b'{"id": "evt_1", "type": ', "invalid_json"), (b'[{"id": "evt_1"}]', "not_an_object")],
    ids=["malformed", "array"],
)
async def test_signed_body_that_is_not_a_json_object(stack: ServiceStack, raw: bytes, code: str) -> None:
    merchant, session, _ = await _paid_event_setup(stack)
    headers = {"Stripe-Signature": sign_stripe(raw, stripe_secret(stack), int(time.time()))}
    status, body = await send_raw(stack, "stripe", raw, headers)
    assert (status, body["error"]["code"]) == (400, code)
    await _assert_nothing_happened(stack, merchant, session["id"])


async def test_two_mib_body_is_refused_with_413(stack: ServiceStack) -> None:
    merchant, session, event = await _paid_event_setup(stack)
    event["data"]["object"]["description"] = "x" * (2 * 1024 * 1024)
    raw, headers = stripe_delivery(event, stripe_secret(stack), int(time.time()))
    status, body = await send_raw(stack, "stripe", raw, headers)
    assert (status, body["error"]["code"]) == (413, "payload_too_large")

    # Without a Content-Length (chunked), the limit holds while reading.
    async def chunks() -> Any:
        for start in range(0, len(raw), 65536):
            yield raw[start : start + 65536]

    assert stack.http is not None
    async with stack.http.post(
        f"{stack.base_url}/webhooks/stripe", data=chunks(), headers=headers
    ) as response:
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "payload_too_large"
    await _assert_nothing_happened(stack, merchant, session["id"])


async def test_onecom_bad_deliveries(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant, provider="onecom")
    body = onecom_event("payment.succeeded", session)
    now = int(time.time())
    secret = stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"]

    raw, headers = standard_delivery(body, secret, now)
    no_signature = {k: v for k, v in headers.items() if k != "webhook-signature"}
    wrong = standard_delivery(body, new_standard_webhook_secret(), now)
    old = standard_delivery(body, secret, now - 600)
    future = standard_delivery(body, secret, now + 600)
    array_raw = encode_body([body])  # type: ignore[arg-type]
    array_headers = sign_standard(array_raw, "msg_array", secret, now)
    cases = [
        (raw, no_signature, "missing_signature"),
        (*wrong, "invalid_signature"),
        (raw.replace(b"payment.succeeded", b"payment.failed"), headers, "invalid_signature"),
        (*old, "timestamp_out_of_tolerance"),
        (*future, "timestamp_out_of_tolerance"),
        (array_raw, array_headers, "not_an_object"),
    ]
    for raw_body, hdrs, code in cases:
        status, reply = await send_raw(stack, "onecom", raw_body, hdrs)
        assert (status, reply["error"]["code"]) == (400, code), (code, reply)
    await _assert_nothing_happened(stack, merchant, session["id"])


async def test_content_type_is_not_checked(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant)
    event = stripe_event("payment_intent.processing", session)
    raw, headers = stripe_delivery(event, stripe_secret(stack), int(time.time()))
    headers["Content-Type"] = "text/plain"
    status, body = await send_raw(stack, "stripe", raw, headers)
    assert status == 200 and body == {"received": True, "event_id": event["id"], "duplicate": False}
    assert len(await inbox(stack)) == 1


async def test_missing_session_reference_is_stored_as_ignored(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant)
    event = stripe_event("checkout.session.completed", session)
    event["data"]["object"]["metadata"] = {}
    event["data"]["object"]["client_reference_id"] = None
    raw, headers = stripe_delivery(event, stripe_secret(stack), int(time.time()))
    status, body = await send_raw(stack, "stripe", raw, headers)
    assert status == 200 and body["duplicate"] is False

    unknown = {
        "id": "evt_unknown_type_1",
        "object": "event",
        "type": "customer.created",
        "data": {"object": {}},
    }
    raw, headers = stripe_delivery(unknown, stripe_secret(stack), int(time.time()))
    status, body = await send_raw(stack, "stripe", raw, headers)
    assert status == 200 and body["event_id"] == "evt_unknown_type_1"

    await asyncio.sleep(0.3)
    rows = {row["event_id"]: row for row in await inbox(stack)}
    assert rows[event["id"]]["status"] == "ignored"
    assert rows[event["id"]]["outcome"] == "no_session_reference"
    assert rows["evt_unknown_type_1"]["status"] == "ignored"
    assert rows["evt_unknown_type_1"]["outcome"] == "unknown_type"
    assert json.loads(bytes(rows[event["id"]]["raw_body"]))["id"] == event["id"]
    session_after = await session_of(stack, merchant, session["id"])
    assert session_after["status"] == "created"


async def test_unconfigured_provider_secret_answers_503(stack: ServiceStack) -> None:
    # A gateway without a Stripe secret must make Stripe retry later, not accept unverifiable events.
    await stack.stop_service("gateway")
    stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"] = ""
    await stack.start_service("gateway")
    status, body = await send_raw(stack, "stripe", b"{}", {"Stripe-Signature": "t=1,v1=00"})
    assert (status, body["error"]["code"]) == (503, "webhook_not_configured")
    assert await inbox(stack) == []


async def test_stored_raw_body_is_immutable_for_the_runtime_role(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant)
    event = stripe_event("payment_intent.processing", session)
    status, _ = await send_raw(
        stack, "stripe", *stripe_delivery(event, stripe_secret(stack), int(time.time()))
    )
    assert status == 200
    await wait_for_status(stack, "stripe", event["id"], {"applied", "failed", "received"})
    conn = await asyncpg.connect(stack.db.runtime_dsn("gateway"), server_settings={"search_path": "gateway"})
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE inbox_events SET raw_body = 'x'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM inbox_events")
    finally:
        await conn.close()
