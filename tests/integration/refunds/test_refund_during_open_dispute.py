"""A merchant's refund while a dispute of the payment is open (contract §8): the card network holds the disputed
money, so a refund now could pay the customer twice (once by the refund, once more if the dispute is lost, which
paygate counts as a full refund). `POST /v1/sessions/{id}/refund` refuses it with 409 `dispute_open`, whether
paygate would ask the provider or record a refund made elsewhere, and nothing is recorded; once the dispute is
won the same request refunds. A refund the provider itself reports during a dispute is a fact and still applies
(test_refund_dispute_faults.py and the dispute tests cover those)."""

from __future__ import annotations

import uuid

from support.refund_flows import (
    PaidSession,
    applied,
    dispute_event,
    paid_session,
    refund,
    send_stripe,
    session_json,
)
from support.stack import ServiceStack


async def _dispute(
    stack: ServiceStack, paid: PaidSession, dispute_id: str, event_type: str, status: str
) -> None:
    event = dispute_event(event_type, dispute_id, paid.payment_intent, paid.charge, paid.amount_minor, status)
    assert await applied(stack, "stripe", (await send_stripe(stack, event))["event_id"]) == "applied"


async def test_a_refund_waits_for_an_open_dispute_to_be_won(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "30.00")
    dispute_id = f"dp_{uuid.uuid4().hex[:10]}"
    await _dispute(stack, paid, dispute_id, "charge.dispute.created", "needs_response")
    assert (await session_json(stack, merchant, paid.id))["dispute_status"] == "open"

    for body in (
        {"amount": "10.00"},
        {"amount": "10.00", "provider_refund_id": "re_elsewhere_1", "reason": "refunded by bank transfer"},
    ):
        status, reply = await refund(stack, merchant, paid.id, body, key=f"k-{uuid.uuid4().hex}")
        assert (status, reply.get("error", {}).get("code")) == (409, "dispute_open"), reply
    session = await session_json(stack, merchant, paid.id)
    assert session["refunds"] == [] and session["amount_refunded_minor"] == 0, session

    await _dispute(stack, paid, dispute_id, "charge.dispute.closed", "won")
    status, reply = await refund(
        stack, merchant, paid.id, {"amount": "10.00", "provider_refund_id": "re_elsewhere_2"}, key="after-won"
    )
    assert status == 202, reply
    assert (await session_json(stack, merchant, paid.id))["amount_refunded_minor"] == 1000
