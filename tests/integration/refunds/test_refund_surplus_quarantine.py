"""A provider refund larger than the session's price (contract §8), through signed webhooks against the real
stack: the price is credited (the ceiling) and the refund shows its full amount, and the money returned
beyond the price opens a `refund_exceeds_price` quarantine entry for the merchant, exactly once per surplus.
Before, the surplus was seen nowhere: no entry, no `quarantine.created`.

The rule for several reports: a session's `refund_exceeds_price` entries add up to the highest surplus
reported; a duplicate or replayed event opens nothing, a larger total opens one entry for what it adds. The
entry can be dismissed (or marked refunded); `accepted` is refused, as it would move the state machine."""

from __future__ import annotations

from typing import Any

from support.refund_flows import (
    applied,
    charge_refunded,
    merchant_event_types,
    paid_session,
    refund_object,
    send_onecom,
    send_stripe,
    session_json,
    wait_credit_notes,
)
from support.stack import Merchant, ServiceStack


async def _entries(stack: ServiceStack, merchant: Merchant, sid: str) -> list[dict[str, Any]]:
    status, listed = await stack.request("GET", "/v1/quarantine", headers=merchant.headers)
    assert status == 200, listed
    return sorted(
        (e for e in listed["data"] if e["session_id"] == sid), key=lambda e: (e["created_at"], e["id"])
    )


async def _resolve(stack: ServiceStack, merchant: Merchant, entry_id: str, decision: str) -> tuple[int, Any]:
    return await stack.request(
        "POST",
        f"/v1/quarantine/{entry_id}/resolve",
        json={"decision": decision, "note": "checked with the provider"},
        headers=merchant.headers,
    )


async def test_a_onecom_refund_above_the_price_quarantines_its_surplus_once(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "100.00", provider="onecom")
    body = {
        "type": "payment.refunded",
        "data": {
            "session_id": paid.id,
            "transaction_id": paid.payment_intent,
            "refund_id": "rf_too_big",
            "amount_minor": 15000,
            "currency": "EUR",
        },
    }
    sent = await send_onecom(stack, body)
    assert await applied(stack, "onecom", sent["event_id"]) == "applied"
    # The same refund again: the same delivery replayed, then another delivery of it (a new message id).
    assert (await send_onecom(stack, body, sent["event_id"]))["duplicate"] is True
    again = await send_onecom(stack, body)
    assert await applied(stack, "onecom", again["event_id"]) == "applied"

    session = await session_json(stack, merchant, paid.id)
    assert session["status"] == "refunded" and session["amount_refunded"] == "100.00", session
    [shown] = session["refunds"]
    assert shown["amount"] == "150.00" and shown["credited_minor"] == 10000, shown
    await wait_credit_notes(stack, merchant, paid.id, 10000, 1)

    [entry] = await _entries(stack, merchant, paid.id)
    assert entry["reason"] == "refund_exceeds_price" and entry["status"] == "open", entry
    assert entry["amount"] == {"amount": "50.00", "amount_minor": 5000, "currency": "EUR"}, entry
    assert entry["provider"] == "onecom" and entry["provider_event_id"] == sent["event_id"], entry
    assert "rf_too_big" in entry["note"] and entry["surplus"] == entry["amount"], entry
    assert (await merchant_event_types(stack, merchant)).count("quarantine.created") == 1

    # Accepting would move the state machine (expired -> paid): refused; dismissing is the merchant's call.
    status, refused = await _resolve(stack, merchant, entry["id"], "accepted")
    assert status == 409, refused
    assert refused["error"]["code"] in ("session_not_expired", "not_a_late_payment"), refused
    status, dismissed = await _resolve(stack, merchant, entry["id"], "dismissed")
    assert status == 200 and dismissed["status"] == "dismissed", dismissed
    after = await session_json(stack, merchant, paid.id)
    assert after["status"] == "refunded" and after["amount_refunded"] == "100.00"


async def test_a_stripe_total_above_the_price_adds_only_the_new_surplus(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "100.00")
    first_refund = refund_object("re_big_1", 12000, paid.payment_intent, paid.charge)
    first = charge_refunded(paid.payment_intent, paid.charge, 10000, [first_refund], 12000)
    sent = await send_stripe(stack, first)
    assert await applied(stack, "stripe", sent["event_id"]) == "applied"
    assert (await send_stripe(stack, first))["duplicate"] is True
    [entry] = await _entries(stack, merchant, paid.id)
    assert entry["reason"] == "refund_exceeds_price" and entry["amount"]["amount_minor"] == 2000, entry

    # Stripe reports another refund: its total grows by 30.00, and only that is new surplus.
    second_refund = refund_object("re_big_2", 3000, paid.payment_intent, paid.charge)
    second = charge_refunded(paid.payment_intent, paid.charge, 10000, [first_refund, second_refund], 15000)
    sent = await send_stripe(stack, second)
    assert await applied(stack, "stripe", sent["event_id"]) == "applied"
    # The older event again under a new id (Stripe resends): nothing new.
    older = charge_refunded(paid.payment_intent, paid.charge, 10000, [first_refund], 12000)
    older["created"] = first["created"]
    sent_older = await send_stripe(stack, older)
    assert await applied(stack, "stripe", sent_older["event_id"]) == "applied"

    entries = await _entries(stack, merchant, paid.id)
    assert [(e["reason"], e["amount"]["amount_minor"]) for e in entries] == [
        ("refund_exceeds_price", 2000),
        ("refund_exceeds_price", 3000),
    ], entries
    session = await session_json(stack, merchant, paid.id)
    assert session["status"] == "refunded" and session["amount_refunded"] == "100.00", session
    assert sum(r["credited_minor"] for r in session["refunds"]) == 10000
    assert (await merchant_event_types(stack, merchant)).count("quarantine.created") == 2
    for e in entries:
        status, resolved = await _resolve(stack, merchant, e["id"], "dismissed")
        assert status == 200 and resolved["status"] == "dismissed", resolved
