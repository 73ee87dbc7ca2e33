"""Verified events are stored once, applied once, and land in the right inbox status."""

from __future__ import annotations

import asyncio
import time

import pytest
from gateway_webhook_support import (
    FAST_RELAY_ENV,
    create_session,
    inbox,
    onecom_event,
    send_onecom,
    send_raw,
    send_stripe,
    session_of,
    stripe_event,
    stripe_secret,
    wait_for_session_status,
    wait_for_status,
)

from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import stripe_id
from support.stack import ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_RELAY_ENV}


async def test_payment_intent_succeeded_pays_the_session(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant, amount="25.00", currency="EUR")
    event = stripe_event("payment_intent.succeeded", session)
    status, body = await send_stripe(stack, event)
    assert status == 200
    assert body == {"received": True, "event_id": event["id"], "duplicate": False}

    row = await wait_for_status(stack, "stripe", event["id"], {"applied"})
    assert row["outcome"] == "applied"
    assert str(row["merchant_id"]) == merchant.id
    assert str(row["session_id"]) == session["id"]
    assert row["provider_reference"] == event["data"]["object"]["id"]
    paid = await session_of(stack, merchant, session["id"])
    assert paid["status"] == "paid"
    assert any(move["source_event_id"] == f"stripe:{event['id']}" for move in paid["history"])


async def test_same_event_delivered_twenty_times_concurrently_is_applied_once(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant)
    event = stripe_event("checkout.session.completed", session)
    raw, headers = stripe_delivery(event, stripe_secret(stack), int(time.time()))
    replies = await asyncio.gather(*(send_raw(stack, "stripe", raw, headers) for _ in range(20)))
    assert all(status == 200 for status, _ in replies)
    assert sum(1 for _, body in replies if body["duplicate"] is False) == 1
    assert all(body["event_id"] == event["id"] for _, body in replies)

    await wait_for_status(stack, "stripe", event["id"], {"applied"})
    rows = await inbox(stack)
    assert len(rows) == 1
    await asyncio.sleep(0.3)  # any second apply would have landed by now
    paid = await session_of(stack, merchant, session["id"])
    assert paid["status"] == "paid"
    paid_moves = [m for m in paid["history"] if m["to"] == "paid"]
    assert len(paid_moves) == 1

    # A later redelivery is still a duplicate and changes nothing.
    status, body = await send_raw(stack, "stripe", raw, headers)
    assert status == 200 and body["duplicate"] is True
    assert (await session_of(stack, merchant, session["id"]))["history"] == paid["history"]


async def test_failed_after_paid_is_ignored(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant)
    paid = stripe_event("payment_intent.succeeded", session)
    await send_stripe(stack, paid)
    await wait_for_status(stack, "stripe", paid["id"], {"applied"})

    failed = stripe_event("checkout.session.async_payment_failed", session)
    status, body = await send_stripe(stack, failed)
    assert status == 200 and body["duplicate"] is False
    row = await wait_for_status(stack, "stripe", failed["id"], {"ignored"})
    assert row["outcome"] == "ignored_terminal"
    assert (await session_of(stack, merchant, session["id"]))["status"] == "paid"


@pytest.mark.parametrize(
    ("amount_minor", "currency"), [(2400, "EUR"), (2500, "USD")], ids=["amount", "currency"]
)
async def test_amount_or_currency_mismatch_is_quarantined(
    stack: ServiceStack, amount_minor: int, currency: str
) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant, amount="25.00", currency="EUR")
    event = stripe_event("payment_intent.succeeded", session, amount_minor=amount_minor, currency=currency)
    status, _ = await send_stripe(stack, event)
    assert status == 200
    row = await wait_for_status(stack, "stripe", event["id"], {"quarantined"})
    assert row["outcome"] == "amount_mismatch"
    assert row["quarantine_id"]
    after = await session_of(stack, merchant, session["id"])
    assert after["status"] == "created"


async def test_two_stripe_events_of_one_payment_count_as_one(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant, amount="19.99", currency="EUR")
    payment_intent = stripe_id("pi")
    completed = stripe_event("checkout.session.completed", session, payment_intent_id=payment_intent)
    succeeded = stripe_event("payment_intent.succeeded", session, payment_intent_id=payment_intent)
    await send_stripe(stack, completed)
    first = await wait_for_status(stack, "stripe", completed["id"], {"applied"})
    await send_stripe(stack, succeeded)
    second = await wait_for_status(stack, "stripe", succeeded["id"], {"duplicate"})
    assert first["outcome"] == "applied"
    assert second["outcome"] == "already_paid"
    assert first["provider_reference"] == second["provider_reference"] == payment_intent
    after = await session_of(stack, merchant, session["id"])
    assert after["status"] == "paid"
    assert after["amount_received_minor"] == 1999
    assert [m["to"] for m in after["history"]].count("paid") == 1


async def test_stripe_livemode_must_match_the_session_mode(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant(mode="test")
    session = await create_session(stack, merchant)
    event = stripe_event("payment_intent.succeeded", session, livemode=True)
    await send_stripe(stack, event)
    row = await wait_for_status(stack, "stripe", event["id"], {"quarantined"})
    assert row["outcome"] == "mode_mismatch"
    assert (await session_of(stack, merchant, session["id"]))["status"] == "created"


async def test_processing_then_succeeded_moves_through_pending(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant)
    payment_intent = stripe_id("pi")
    processing = stripe_event("payment_intent.processing", session, payment_intent_id=payment_intent)
    await send_stripe(stack, processing)
    await wait_for_status(stack, "stripe", processing["id"], {"applied"})
    assert (await session_of(stack, merchant, session["id"]))["status"] == "pending"
    succeeded = stripe_event("payment_intent.succeeded", session, payment_intent_id=payment_intent)
    await send_stripe(stack, succeeded)
    await wait_for_session_status(stack, merchant, session["id"], "paid")


async def test_refund_and_dispute_apply_to_the_paid_session(stack: ServiceStack) -> None:
    # Contract §8 (issue 19): refund and dispute events are matched to the session their payment paid and
    # applied (they used to be only recorded for review).
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant)
    payment_intent = stripe_id("pi")
    await send_stripe(
        stack, stripe_event("payment_intent.succeeded", session, payment_intent_id=payment_intent)
    )
    await wait_for_session_status(stack, merchant, session["id"], "paid")
    refund = stripe_event("charge.refunded", session, payment_intent_id=payment_intent)
    dispute = stripe_event("charge.dispute.created", session, payment_intent_id=payment_intent)
    for event in (refund, dispute):
        status, _ = await send_stripe(stack, event)
        assert status == 200
    for event in (refund, dispute):
        row = await wait_for_status(stack, "stripe", event["id"], {"applied"})
        assert row["outcome"] == "applied"
    after = await session_of(stack, merchant, session["id"])
    # The charge says the whole amount was refunded: the session is refunded, the dispute recorded.
    assert after["status"] == "refunded" and after["amount_refunded_minor"] == session["amount_minor"]
    assert after["dispute_status"] == "open"


async def test_onecom_payment_succeeded_pays_the_session(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant, amount="12.50", currency="EUR", provider="onecom")
    body = onecom_event("payment.succeeded", session)
    status, reply = await send_onecom(stack, body, msg_id="msg_onecom_paid_1")
    assert status == 200 and reply == {"received": True, "event_id": "msg_onecom_paid_1", "duplicate": False}
    row = await wait_for_status(stack, "onecom", "msg_onecom_paid_1", {"applied"})
    assert row["provider_reference"] == body["data"]["transaction_id"]
    await wait_for_session_status(stack, merchant, session["id"], "paid")
    status, reply = await send_onecom(stack, body, msg_id="msg_onecom_paid_1")
    assert status == 200 and reply["duplicate"] is True
