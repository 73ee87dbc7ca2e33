"""`data.object` of merchant events is the object as the API returns it: a `session.refunded` event carries the
refunds (amount_refunded, refunds, dispute_status) as GET /v1/sessions/{id} shows them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from merchant_events_support import FAST_ENV, Receiver, create_endpoint, eventually, paid_session

from paygate.session.v1 import session_pb2
from support.stack import ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_ENV}


async def _fulfilled(stack: ServiceStack, merchant_id: str, session_id: str) -> None:
    async def done() -> bool:
        reply = await stack.session.GetSession(
            session_pb2.GetSessionRequest(session_id=session_id, merchant_id=merchant_id), timeout=5
        )
        return reply.fulfilment_status == "done"

    await eventually(done, timeout=30)


async def test_session_refunded_event_shows_the_refunds_as_get_session_does(
    stack: ServiceStack, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["session.refunded"])
    session_id = await paid_session(stack, merchant)
    # Fulfilment writes the invoice and key ids onto the session: let it finish before the refund's snapshot.
    await _fulfilled(stack, merchant.id, session_id)

    status, refund = await stack.request(
        "POST",
        f"/v1/sessions/{session_id}/refund",
        json={"provider_refund_id": "re_outside_1", "reason": "customer asked"},
        headers=merchant.headers,
    )
    assert status == 202 and refund["session"]["status"] == "refunded", refund

    async def refunded() -> list:
        return receiver.of_type("session.refunded")

    [delivery] = await eventually(refunded, timeout=30)
    obj = delivery.json["data"]["object"]
    status, api = await stack.request("GET", f"/v1/sessions/{session_id}", headers=merchant.headers)
    assert status == 200, api

    assert obj["status"] == "refunded" and obj["amount_refunded_minor"] == 9999
    assert obj["amount_refunded"] == "99.99" and obj["dispute_status"] is None
    assert [r["id"] for r in obj["refunds"]] == [refund["id"]]
    assert obj["refunds"][0]["provider_refund_id"] == "re_outside_1"
    # The event is the session at the refund's commit; the refund's credit note is issued after it, so the
    # credit note fields are the only ones GET may have moved on since.
    later = ("credit_note_id", "credit_note_number", "credit_note_skipped")
    assert all(obj["refunds"][0][k] is None for k in later)
    expected = {**api, "access_url": None}
    expected["refunds"] = [{**r, **dict.fromkeys(later)} for r in api["refunds"]]
    assert obj == expected, _diff(obj, expected)


def _diff(got: dict[str, Any], want: dict[str, Any]) -> str:
    keys = sorted(set(got) | set(want))
    return "; ".join(f"{k}: {got.get(k)!r} != {want.get(k)!r}" for k in keys if got.get(k) != want.get(k))


async def test_invoice_issued_is_complete_at_commit_without_billing(
    stack: ServiceStack, receiver: Receiver
) -> None:
    """The fulfilment step stores the invoice object with the invoice id: listing and delivering the event
    later need no GetInvoice, so they work with billing down, and the object is GET /v1/invoices/{id}."""
    merchant = await stack.create_merchant()
    session_id = await paid_session(stack, merchant)
    await _fulfilled(stack, merchant.id, session_id)
    reply = await stack.session.GetSession(
        session_pb2.GetSessionRequest(session_id=session_id, merchant_id=merchant.id), timeout=5
    )
    status, api = await stack.request("GET", f"/v1/invoices/{reply.invoice_id}", headers=merchant.headers)
    assert status == 200, api
    conn = await stack.db.admin()
    try:
        # Complete at commit: the event holds the object before anything listed or delivered it.
        snapshot = await conn.fetchval(
            "SELECT snapshot FROM session.merchant_events WHERE type = 'invoice.issued' AND object IS NULL"
        )
    finally:
        await conn.close()
    assert snapshot is not None and json.loads(snapshot).get("object") == api

    # With billing down, the event is listed and delivered, whole.
    await stack.stop_service("billing")
    status, events = await stack.request(
        "GET", "/v1/merchant_events?type=invoice.issued", headers=merchant.headers
    )
    assert status == 200, events
    [event] = events["data"]
    assert event["data"]["object"] == api and api["session_id"] == session_id
    endpoint = await create_endpoint(stack, merchant, receiver.url, ["invoice.issued"])
    status, body = await stack.request(
        "POST",
        f"/v1/merchant_events/{event['id']}/redeliver",
        headers=merchant.headers,
        json={"endpoint": endpoint["id"]},
    )
    assert status == 202, body

    async def delivered() -> list:
        return receiver.of_type("invoice.issued")

    [delivery] = await eventually(delivered, timeout=30)
    assert delivery.json["data"]["object"] == api
