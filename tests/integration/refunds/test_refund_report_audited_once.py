"""One refund, one `refund_reported` audit entry: Stripe reports a refund twice (`refund.created`, then
`charge.refunded` listing the same refund). The second report changes no money, so it must not read as a
second refund in `GET /v1/audit` (which shows no detail: a reader counts entries)."""

from __future__ import annotations

from support.refund_flows import (
    applied,
    charge_refunded,
    paid_session,
    refund_object,
    send_stripe,
    session_json,
    stripe_envelope,
    wait_credit_notes,
)
from support.stack import ServiceStack


async def test_a_refund_reported_twice_is_audited_once(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "100.00")
    made = refund_object("re_test1", 500, paid.payment_intent, paid.charge, "succeeded")
    created = stripe_envelope("refund.created", made)
    assert await applied(stack, "stripe", (await send_stripe(stack, created))["event_id"]) == "applied"
    listed = charge_refunded(paid.payment_intent, paid.charge, 10000, [made], 500)
    assert await applied(stack, "stripe", (await send_stripe(stack, listed))["event_id"]) == "applied"
    await wait_credit_notes(stack, merchant, paid.id, 500, 1)
    session = await session_json(stack, merchant, paid.id)
    assert session["amount_refunded"] == "5.00" and len(session["refunds"]) == 1, session

    status, audit = await stack.request("GET", "/v1/audit?limit=100", headers=merchant.headers)
    assert status == 200 and audit["has_more"] is False, audit
    reported = [e for e in audit["data"] if e["object_id"] == paid.id and e["action"] == "refund_reported"]
    assert len(reported) == 1, audit["data"]
    assert reported[0]["actor"] == "provider:stripe"
