"""Merchant events end to end (contract §7): real services, real HTTP receivers on loopback, signatures checked
with the reference `standardwebhooks` library."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from merchant_events_support import (
    FAST_ENV,
    Receiver,
    create_endpoint,
    eventually,
    hang,
    paid_session,
)
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from support.stack import ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_ENV}


@pytest.fixture
async def receivers() -> AsyncIterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        await receiver.stop()


async def _receiver(receivers: list[Receiver], behaviour=None) -> Receiver:
    receiver = Receiver() if behaviour is None else Receiver(behaviour)
    receivers.append(await receiver.start())
    return receiver


async def test_paid_session_is_delivered_signed_with_the_session_as_the_api_returns_it(
    stack: ServiceStack, receivers: list[Receiver]
) -> None:
    merchant = await stack.create_merchant()
    receiver = await _receiver(receivers)
    endpoint = await create_endpoint(stack, merchant, receiver.url)
    assert endpoint["secret"].startswith("whsec_") and endpoint["status"] == "enabled"

    session_id = await paid_session(stack, merchant)
    await eventually(lambda: _async(receiver.of_type("session.paid")))
    delivery = receiver.of_type("session.paid")[0]

    # The reference library verifies the signature, and the headers are Standard Webhooks'.
    payload = Webhook(endpoint["secret"]).verify(delivery.body, delivery.headers)
    assert delivery.headers["webhook-id"] == payload["id"] and payload["id"].startswith("evt_")
    assert payload["type"] == "session.paid" and payload["mode"] == "test"
    assert isinstance(payload["created"], int)
    obj = payload["data"]["object"]
    status, api = await stack.request("GET", f"/v1/sessions/{session_id}", headers=merchant.headers)
    assert status == 200
    assert obj["id"] == session_id and obj["status"] == "paid" and obj["amount_minor"] == 9999
    # The object as the API returned it at that moment: the same fields, the same history up to the move.
    for key in ("amount", "currency", "provider", "mode", "created_at", "expires_at", "paid_at", "metadata"):
        assert obj[key] == api[key], key
    assert [h["to"] for h in obj["history"]] == ["paid"]
    assert obj["access_url"] is None  # a bearer link is never sent to a URL

    # The event is listed, with the same body, and the attempt is in the log.
    status, events = await stack.request("GET", "/v1/merchant_events", headers=merchant.headers)
    assert status == 200
    listed = [e for e in events["data"] if e["id"] == payload["id"]]
    assert listed == [payload]

    async def logged() -> list:
        _, page = await stack.request(
            "GET", f"/v1/webhook_deliveries?event={payload['id']}", headers=merchant.headers
        )
        return page["data"]

    attempts = await eventually(logged)
    assert attempts[0]["delivered"] is True and attempts[0]["status_code"] == 200
    assert attempts[0]["endpoint_id"] == endpoint["id"] and attempts[0]["attempt"] == 1
    assert attempts[0]["event_type"] == "session.paid" and attempts[0]["next_attempt_at"] is None


async def test_invoice_issued_is_delivered_once_fulfilment_records_it(
    stack: ServiceStack, receivers: list[Receiver]
) -> None:
    merchant = await stack.create_merchant()
    receiver = await _receiver(receivers)
    await create_endpoint(stack, merchant, receiver.url, ["invoice.issued"])
    session_id = await paid_session(stack, merchant)
    await eventually(lambda: _async(receiver.of_type("invoice.issued")))
    invoice = receiver.of_type("invoice.issued")[0].json["data"]["object"]
    status, api = await stack.request("GET", f"/v1/invoices/{invoice['id']}", headers=merchant.headers)
    assert status == 200
    assert invoice == api and invoice["session_id"] == session_id
    # Subscribed to invoices only: no session event reached it.
    assert not receiver.of_type("session.paid")


async def test_receiver_failing_three_times_gets_the_event_on_the_fourth(
    stack: ServiceStack, receivers: list[Receiver]
) -> None:
    async def flaky(n: int) -> web.StreamResponse:
        return web.Response(status=500, text="down for now") if n <= 3 else web.Response(status=204)

    merchant = await stack.create_merchant()
    receiver = await _receiver(receivers, flaky)
    endpoint = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
    await paid_session(stack, merchant)
    await eventually(lambda: _async(receiver.calls >= 4))
    ids = {d.headers["webhook-id"] for d in receiver.deliveries}
    assert len(ids) == 1  # the same event each time

    async def log() -> list:
        _, page = await stack.request(
            "GET", f"/v1/webhook_deliveries?endpoint={endpoint['id']}", headers=merchant.headers
        )
        return page["data"] if len(page["data"]) >= 4 else []

    attempts = list(reversed(await eventually(log)))
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert [a["delivered"] for a in attempts] == [False, False, False, True]
    assert attempts[0]["status_code"] == 500 and attempts[0]["error"] == "http_500"
    assert attempts[0]["response_body"] == "down for now" and attempts[0]["next_attempt_at"] is not None
    _, fresh = await stack.request("GET", f"/v1/webhook_endpoints/{endpoint['id']}", headers=merchant.headers)
    assert fresh["failing_since"] is None and fresh["status"] == "enabled"


async def test_a_hanging_endpoint_does_not_slow_another_endpoints_deliveries(
    stack: ServiceStack, receivers: list[Receiver]
) -> None:
    slow_merchant = await stack.create_merchant("Slow", "slow")
    fast_merchant = await stack.create_merchant("Fast", "fast")
    hanging = await _receiver(receivers, hang)
    fast = await _receiver(receivers)
    await create_endpoint(stack, slow_merchant, hanging.url, ["session.paid"])
    await create_endpoint(stack, fast_merchant, fast.url, ["session.paid"])

    # Fill the hanging endpoint's queue first, then pay the other merchant's sessions.
    await asyncio.gather(*(paid_session(stack, slow_merchant) for _ in range(12)))
    await eventually(lambda: _async(hanging.calls >= 1))
    started = time.monotonic()
    await asyncio.gather(*(paid_session(stack, fast_merchant) for _ in range(10)))
    await eventually(lambda: _async(len(fast.deliveries) >= 10), timeout=30)
    latency = [d.at - started for d in fast.deliveries]
    # The hanging endpoint holds at most its own 4 slots for the 10 s timeout; the other endpoint's events
    # arrive within a couple of seconds even on a loaded machine (measured: well under 1 s).
    assert max(latency) < 5.0, latency
    assert hanging.max_in_flight <= 4  # its per-endpoint cap: never more in flight at once
    print(f"fast endpoint: 10 deliveries, slowest {max(latency) * 1000:.0f} ms after the payments began")


async def test_a_rolled_secret_verifies_with_both_secrets_during_the_overlap(
    stack: ServiceStack, receivers: list[Receiver]
) -> None:
    merchant = await stack.create_merchant()
    receiver = await _receiver(receivers)
    endpoint = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
    status, rolled = await stack.request(
        "POST", f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret", headers=merchant.headers
    )
    assert status == 200 and rolled["secret"] != endpoint["secret"]
    assert rolled["previous_secret_expires_at"] is not None
    await paid_session(stack, merchant)
    await eventually(lambda: _async(receiver.deliveries))
    delivery = receiver.deliveries[0]
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2
    Webhook(endpoint["secret"]).verify(delivery.body, delivery.headers)
    Webhook(rolled["secret"]).verify(delivery.body, delivery.headers)

    # The secret retired with a 1 s overlap stops once that is over; the first one keeps its promised 24 h.
    status, again = await stack.request(
        "POST",
        f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret",
        headers=merchant.headers,
        json={"expires_in": 1},
    )
    assert status == 200
    await asyncio.sleep(1.2)
    await paid_session(stack, merchant)
    await eventually(lambda: _async(len(receiver.deliveries) >= 2))
    last = receiver.deliveries[-1]
    assert len(last.headers["webhook-signature"].split(" ")) == 2
    Webhook(again["secret"]).verify(last.body, last.headers)
    Webhook(endpoint["secret"]).verify(last.body, last.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(rolled["secret"]).verify(last.body, last.headers)


async def test_redeliver_sends_an_event_again(stack: ServiceStack, receivers: list[Receiver]) -> None:
    merchant = await stack.create_merchant()
    receiver = await _receiver(receivers)
    endpoint = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
    await paid_session(stack, merchant)
    await eventually(lambda: _async(receiver.deliveries))
    event_id = receiver.deliveries[0].headers["webhook-id"]
    status, body = await stack.request(
        "POST",
        f"/v1/merchant_events/{event_id}/redeliver",
        headers=merchant.headers,
        json={"endpoint": endpoint["id"]},
    )
    assert status == 202, body
    await eventually(lambda: _async(len(receiver.deliveries) >= 2))
    assert receiver.deliveries[1].body == receiver.deliveries[0].body

    # Another endpoint, created after the event, may be sent it too.
    second = await _receiver(receivers)
    other = await create_endpoint(stack, merchant, second.url, ["invoice.issued"])
    status, _ = await stack.request(
        "POST",
        f"/v1/merchant_events/{event_id}/redeliver",
        headers=merchant.headers,
        json={"endpoint": other["id"]},
    )
    assert status == 202
    await eventually(lambda: _async(second.deliveries))
    assert second.deliveries[0].headers["webhook-id"] == event_id


async def _async(value):
    return value


async def test_customer_key_revoked_reaches_the_endpoint_from_the_keys_service(
    stack: ServiceStack, receivers: list[Receiver]
) -> None:
    # The test stack starts keys before session; restart keys so that it knows the session service's address.
    await stack.stop_service("keys")
    await stack.start_service("keys")
    merchant = await stack.create_merchant()
    receiver = await _receiver(receivers)
    await create_endpoint(stack, merchant, receiver.url, ["customer_key.revoked"])
    session_id = await paid_session(stack, merchant)

    async def key_id() -> str | None:
        _, session = await stack.request("GET", f"/v1/sessions/{session_id}", headers=merchant.headers)
        return session.get("api_key_id")

    api_key_id = await eventually(key_id)
    status, revoked = await stack.request("DELETE", f"/v1/api_keys/{api_key_id}", headers=merchant.headers)
    assert status == 200, revoked
    await eventually(lambda: _async(receiver.of_type("customer_key.revoked")))
    deliveries = receiver.of_type("customer_key.revoked")
    assert len(deliveries) == 1
    obj = deliveries[0].json["data"]["object"]
    assert obj["id"] == api_key_id and obj["status"] == "REVOKED" and obj["session_id"] == session_id
    assert obj == {k: revoked[k] for k in obj}
