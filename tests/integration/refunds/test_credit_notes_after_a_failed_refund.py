"""After a refund fails, the credit notes still add up to the money that went back (issue 19, records #20).

A Stripe refund can succeed, get its credit note, and fail later (the customer's bank returned it): the money
is the merchant's again, but the credit note is a legal document and stands. README's advice for the
`refund_failed` entry is to refund the customer again. Before, that second refund got a credit note of its own,
so the notes credited twice what went back (revenue's `net` too low); and a full refund after the failure had
its note refused by billing (`credit_exceeds_invoice`) and skipped, so the notes credited less than went back.
Now a refund's credit note first uses the credit already on paper that no standing refund accounts for.
Driven as users meet it: signed Stripe webhooks into the real stack, credit notes read from billing, the
refunds from the merchant API.
"""

from __future__ import annotations

from typing import Any

from support.refund_flows import (
    applied,
    charge_refunded,
    credit_notes,
    credited_sum,
    paid_session,
    refund_object,
    send_stripe,
    session_json,
    stripe_envelope,
    wait_credit_notes,
)
from support.stack import Merchant, ServiceStack

PRICE = 5000


async def _refund(stack: ServiceStack, paid: Any, refunds: list[dict[str, Any]], total: int) -> None:
    event = charge_refunded(paid.payment_intent, paid.charge, PRICE, refunds, total)
    assert await applied(stack, "stripe", (await send_stripe(stack, event))["event_id"]) == "applied"


async def _first_refund_fails(stack: ServiceStack, merchant: Merchant) -> Any:
    """A paid session of 50.00 whose refund of 20.00 succeeded, got its credit note, then failed."""
    paid = await paid_session(stack, merchant, "50.00")
    await _refund(
        stack, paid, [refund_object("re_first", 2000, paid.payment_intent, paid.charge, "succeeded")], 2000
    )
    await wait_credit_notes(stack, merchant, paid.id, 2000, 1)
    failed = refund_object("re_first", 2000, paid.payment_intent, paid.charge, "failed")
    sent = await send_stripe(stack, stripe_envelope("refund.updated", failed))
    assert await applied(stack, "stripe", sent["event_id"]) == "applied"
    return paid


async def _settled(stack: ServiceStack, merchant: Merchant, sid: str, refund_id: str) -> dict[str, Any]:
    """The refund as the API lists it, once the worker settled its credit note (issued or not needed)."""
    from support import polling

    async def check() -> dict[str, Any] | None:
        session = await session_json(stack, merchant, sid)
        [refund] = [r for r in session["refunds"] if r["provider_refund_id"] == refund_id]
        return refund if (refund["credit_note_number"] or refund["credit_note_skipped"]) else None

    return await polling.eventually(check, timeout=15, what=f"the credit note of {refund_id} settled")


async def test_a_second_refund_of_the_same_money_is_covered_by_the_standing_credit_note(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    paid = await _first_refund_fails(stack, merchant)
    # The merchant refunds the customer again, as the `refund_failed` entry advises.
    again = refund_object("re_again", 2000, paid.payment_intent, paid.charge, "succeeded")
    await _refund(stack, paid, [again], 2000)
    refund = await _settled(stack, merchant, paid.id, "re_again")
    assert refund["status"] == "succeeded" and refund["credited_minor"] == 2000, refund
    # 20.00 went back once: the one credit note of 20.00 already says so.
    assert refund["credit_note_skipped"] == "credited_by_earlier_note", refund
    assert await credited_sum(stack, merchant, paid.id) == 2000
    assert len(await credit_notes(stack, merchant, paid.id)) == 1


async def test_a_full_refund_after_a_failed_one_is_credited_in_full(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await _first_refund_fails(stack, merchant)
    full = refund_object("re_full", PRICE, paid.payment_intent, paid.charge, "succeeded")
    await _refund(stack, paid, [full], PRICE)
    refund = await _settled(stack, merchant, paid.id, "re_full")
    assert refund["status"] == "succeeded" and refund["credited_minor"] == PRICE, refund
    # 50.00 went back: the standing 20.00 and a new note for the other 30.00 (billing refused 50.00 before).
    assert refund["credit_note_skipped"] is None and refund["credit_note_number"], refund
    await wait_credit_notes(stack, merchant, paid.id, PRICE, 2)
    session = await session_json(stack, merchant, paid.id)
    assert session["status"] == "refunded", session["status"]
