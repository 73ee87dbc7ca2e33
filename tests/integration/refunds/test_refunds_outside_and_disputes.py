"""Refunds recorded by the merchant and reported by providers, and disputes (contract §8), against real
PostgreSQL and the real four services, with no Stripe API key configured (refunds are made outside paygate)."""

from __future__ import annotations

import time

from paygate.keys.v1 import keys_pb2
from support import polling
from support.refund_flows import (
    applied,
    charge_refunded,
    credited_sum,
    dispute_event,
    merchant_event_types,
    paid_session,
    refund,
    refund_object,
    send_onecom,
    send_stripe,
    session_json,
    verify_code,
    wait_credit_notes,
)
from support.stack import ServiceStack


async def _code_within(stack: ServiceStack, merchant: object, key: str, code: str, seconds: float) -> float:
    """Poll VerifyKey until it answers `code`; how long that took (fails after `seconds`)."""
    started = time.monotonic()

    async def check() -> bool:
        return await verify_code(stack, merchant, key) == code  # type: ignore[arg-type]

    await polling.eventually(check, timeout=seconds, interval=0.02, what=f"verify -> {code}")
    return time.monotonic() - started


async def test_partial_then_full_refund_outside_paygate(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "100.00")
    assert await verify_code(stack, merchant, paid.key) == "VALID"

    # A session that was never paid cannot be refunded (409, the state named), nothing changes.
    status, created = await stack.request(
        "POST", "/v1/sessions", json={"amount": "5.00", "currency": "EUR"}, headers=merchant.headers
    )
    assert status == 201
    status, body = await refund(stack, merchant, created["id"], {"amount": "1.00"})
    assert status == 409 and body["error"]["code"] == "session_not_paid", body

    # More than paid: 400 amount_too_large.
    status, body = await refund(stack, merchant, paid.id, {"amount": "100.01"})
    assert status == 400 and body["error"]["code"] == "amount_too_large", body

    # A partial refund, idempotent on its key.
    status, first = await refund(
        stack, merchant, paid.id, {"amount": "30.00", "reason": "goodwill"}, key="r-1"
    )
    assert status == 202, first
    assert first["status"] == "succeeded" and first["amount"] == "30.00" and first["currency"] == "EUR"
    assert first["session"]["status"] == "paid" and first["session"]["amount_refunded"] == "30.00"
    status, again = await refund(
        stack, merchant, paid.id, {"amount": "30.00", "reason": "goodwill"}, key="r-1"
    )
    assert status == 202 and again["id"] == first["id"]
    status, body = await refund(stack, merchant, paid.id, {"amount": "31.00"}, key="r-1")
    assert status == 409 and body["error"]["code"] == "idempotency_conflict"
    await wait_credit_notes(stack, merchant, paid.id, 3000, 1)
    assert await verify_code(stack, merchant, paid.key) == "VALID"  # a partial refund keeps the key

    link = await stack.keys.GetAccessLink(
        keys_pb2.GetAccessLinkRequest(session_id=paid.id, merchant_id=merchant.id), timeout=5
    )
    status, _ = await stack.request("GET", f"/access?token={link.token}", allow_redirects=False)
    assert status in (200, 302, 303), status
    # The rest: the session is refunded, its key fails verification within a second, its link is revoked.
    status, rest = await refund(stack, merchant, paid.id, {"provider_refund_id": "re_outside_1"})
    assert status == 202 and rest["amount"] == "70.00" and rest["session"]["status"] == "refunded", rest
    took = await _code_within(stack, merchant, paid.key, "REVOKED", 1.0)
    assert took < 1.0
    await wait_credit_notes(stack, merchant, paid.id, 10000, 2)
    session = await session_json(stack, merchant, paid.id)
    assert session["status"] == "refunded" and session["payment_status"] == "refunded"
    assert session["amount_refunded"] == "100.00" and len(session["refunds"]) == 2
    assert [h["to"] for h in session["history"]][-1] == "refunded"
    assert all(r["credit_note_number"] for r in session["refunds"])
    status, _ = await stack.request("GET", f"/access?token={link.token}", allow_redirects=False)
    assert status == 401
    # The public pages know the new state (never a 500).
    status, public = await stack.request("GET", f"/session/{paid.id}/status")
    assert status == 200 and public["status"] == "refunded" and public["payment_status"] == "refunded"
    status, _ = await stack.request("GET", f"/checkout?session={paid.id}")
    assert status == 200

    # Nothing more to refund; a provider event naming the recorded refund id is the same refund.
    status, body = await refund(stack, merchant, paid.id, {})
    assert status == 409 and body["error"]["code"] == "session_refunded"
    late = charge_refunded(
        paid.payment_intent,
        paid.charge,
        10000,
        [refund_object("re_outside_1", 7000, paid.payment_intent, paid.charge)],
        10000,
    )
    assert await applied(stack, "stripe", (await send_stripe(stack, late))["event_id"]) == "applied"
    assert await credited_sum(stack, merchant, paid.id) == 10000

    # Revenue counts the credit notes: the net of this session is zero.
    status, revenue = await stack.request("GET", "/v1/revenue", headers=merchant.headers)
    assert status == 200
    [bucket] = revenue["buckets"]
    assert bucket["net"] == "0.00", bucket
    events = await merchant_event_types(stack, merchant)
    assert events.count("session.refunded") == 1 and events.count("credit_note.issued") == 2


async def test_provider_refunds_twice_and_capped_by_stripes_total(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "50.00")
    re_1 = refund_object("re_dash_1", 2000, paid.payment_intent, paid.charge)
    event = charge_refunded(paid.payment_intent, paid.charge, 5000, [re_1], 2000)
    # The same delivery twice, then Stripe's refund.updated of the same refund under another event id.
    first = await send_stripe(stack, event)
    second = await send_stripe(stack, event)
    assert second["duplicate"] is True
    assert await applied(stack, "stripe", first["event_id"]) == "applied"
    updated = await send_stripe(
        stack, {**event, "id": "evt_updated_1", "type": "refund.updated", "data": {"object": re_1}}
    )
    assert await applied(stack, "stripe", updated["event_id"]) == "applied"
    await wait_credit_notes(stack, merchant, paid.id, 2000, 1)
    session = await session_json(stack, merchant, paid.id)
    assert session["amount_refunded"] == "20.00" and session["status"] == "paid"
    assert [r["provider_refund_id"] for r in session["refunds"]] == ["re_dash_1"]

    # A refund whose amount Stripe's own total does not cover credits only what the total allows.
    re_2 = refund_object("re_dash_2", 4000, paid.payment_intent, paid.charge)
    capped = charge_refunded(paid.payment_intent, paid.charge, 5000, [re_1, re_2], 4500)
    assert await applied(stack, "stripe", (await send_stripe(stack, capped))["event_id"]) == "applied"
    await wait_credit_notes(stack, merchant, paid.id, 4500, 2)
    assert (await session_json(stack, merchant, paid.id))["amount_refunded"] == "45.00"

    # One.com's payment.refunded, idempotent on its refund_id.
    onecom = await paid_session(stack, merchant, "10.00", provider="onecom")
    body = {
        "type": "payment.refunded",
        "data": {
            "session_id": onecom.id,
            "transaction_id": onecom.payment_intent,
            "refund_id": "rf_1",
            "amount_minor": 1000,
            "currency": "EUR",
        },
    }
    assert await applied(stack, "onecom", (await send_onecom(stack, body))["event_id"]) == "applied"
    assert await applied(stack, "onecom", (await send_onecom(stack, body))["event_id"]) == "applied"
    await wait_credit_notes(stack, merchant, onecom.id, 1000, 1)
    assert (await session_json(stack, merchant, onecom.id))["status"] == "refunded"
    await _code_within(stack, merchant, onecom.key, "REVOKED", 1.0)


async def test_dispute_won_restores_and_lost_refunds(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    won = await paid_session(stack, merchant, "20.00")
    opened = dispute_event(
        "charge.dispute.created", "dp_won", won.payment_intent, won.charge, 2000, "needs_response"
    )
    assert await applied(stack, "stripe", (await send_stripe(stack, opened))["event_id"]) == "applied"
    assert (await session_json(stack, merchant, won.id))["dispute_status"] == "open"
    await _code_within(stack, merchant, won.key, "SUSPENDED", 2.0)
    # A suspended key cannot be rolled.
    key_id = (await session_json(stack, merchant, won.id))["api_key_id"]
    status, body = await stack.request(
        "POST", f"/v1/api_keys/{key_id}/roll", json={}, headers=merchant.headers
    )
    assert status == 409 and body["error"]["code"] == "key_suspended", body
    withdrawn = dispute_event(
        "charge.dispute.funds_withdrawn", "dp_won", won.payment_intent, won.charge, 2000, "needs_response"
    )
    assert await applied(stack, "stripe", (await send_stripe(stack, withdrawn))["event_id"]) == "applied"
    closed = dispute_event("charge.dispute.closed", "dp_won", won.payment_intent, won.charge, 2000, "won")
    assert await applied(stack, "stripe", (await send_stripe(stack, closed))["event_id"]) == "applied"
    await _code_within(stack, merchant, won.key, "VALID", 2.0)
    session = await session_json(stack, merchant, won.id)
    assert session["dispute_status"] == "won" and session["status"] == "paid" and session["refunds"] == []
    notes = [h["note"] for h in session["history"]]
    assert {"dispute_created", "dispute_funds_withdrawn", "dispute_won"} <= set(notes)

    lost = await paid_session(stack, merchant, "30.00")
    await refund(stack, merchant, lost.id, {"amount": "5.00"})
    for event_type, status_ in (
        ("charge.dispute.created", "needs_response"),
        ("charge.dispute.closed", "lost"),
    ):
        event = dispute_event(event_type, "dp_lost", lost.payment_intent, lost.charge, 3000, status_)
        assert await applied(stack, "stripe", (await send_stripe(stack, event))["event_id"]) == "applied"
    await _code_within(stack, merchant, lost.key, "REVOKED", 2.0)
    await wait_credit_notes(stack, merchant, lost.id, 3000, 2)
    session = await session_json(stack, merchant, lost.id)
    assert session["status"] == "refunded" and session["dispute_status"] == "lost"
    assert session["amount_refunded"] == "30.00"
    assert sorted(r["origin"] for r in session["refunds"]) == ["dispute", "outside"]
    events = await merchant_event_types(stack, merchant)
    assert events.count("dispute.created") == 2 and events.count("dispute.closed") == 2


async def test_refunds_and_voids_never_credit_an_invoice_twice(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    partly = await paid_session(stack, merchant, "40.00")
    status, _ = await refund(stack, merchant, partly.id, {"amount": "10.00"})
    assert status == 202
    await wait_credit_notes(stack, merchant, partly.id, 1000, 1)
    invoice_id = (await session_json(stack, merchant, partly.id))["invoice_id"]
    status, body = await stack.request(
        "POST", f"/v1/invoices/{invoice_id}/void", json={"reason": "mistake"}, headers=merchant.headers
    )
    assert status == 409 and body["error"]["code"] == "invoice_partially_credited", body

    voided = await paid_session(stack, merchant, "15.00")
    invoice_id = (await session_json(stack, merchant, voided.id))["invoice_id"]
    status, body = await stack.request(
        "POST", f"/v1/invoices/{invoice_id}/void", json={"reason": "mistake"}, headers=merchant.headers
    )
    assert status == 200, body
    status, body = await refund(stack, merchant, voided.id, {})
    assert status == 202 and body["session"]["status"] == "refunded"

    async def skipped() -> bool:
        [only] = (await session_json(stack, merchant, voided.id))["refunds"]
        return only["credit_note_skipped"] == "invoice_void"

    await polling.eventually(skipped, timeout=15, what="the refund's credit note skipped")
    # Only the void's own credit note credits the invoice.
    await wait_credit_notes(stack, merchant, voided.id, 1500, 1)
