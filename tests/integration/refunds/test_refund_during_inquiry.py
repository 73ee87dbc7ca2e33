"""A merchant's refund while an inquiry of the payment is open (contract §8). Stripe's inquiries (pre-dispute
retrievals: dispute status `warning_needs_response`, `warning_under_review`) withdraw no money and the charge stays
refundable, and a refund is the usual way to settle one: `POST /v1/sessions/{id}/refund` accepts it, through the
provider or recorded as made elsewhere. A formal dispute (chargeback) is refused 409 `dispute_open`, from the start
or once the inquiry escalates (a later event of the same dispute with a non-warning status, here its funds
withdrawn). A lost escalated dispute credits only what the refunds left: `amount_refunded` never passes the price.
Both kinds suspend the customer key. `GET /v1/sessions/{id}` shows `dispute_kind` beside `dispute_status`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from support import polling
from support.dashboard import dashboard_page
from support.merchant_webhooks import FAST_ENV, Receiver, create_endpoint
from support.refund_flows import (
    FakeStripeRefunds,
    PaidSession,
    applied,
    dispute_event,
    paid_session,
    refund,
    refund_object,
    send_stripe,
    session_json,
    stripe_envelope,
    verify_code,
)
from support.stack import Merchant, ServiceStack


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripeRefunds]:
    async with FakeStripeRefunds() as fake:
        yield fake


@pytest.fixture
def stack_env(stack_env: dict[str, str], request: pytest.FixtureRequest) -> dict[str, str]:
    # Refunds through Stripe's API only for the tests that ask for the fake; the others record refunds made
    # elsewhere (refused with `use_provider` while the API is configured).
    if "fake_stripe" in request.fixturenames:
        return {**stack_env, **request.getfixturevalue("fake_stripe").env()}
    if "receiver" in request.fixturenames:
        return {**stack_env, **FAST_ENV}
    return stack_env


async def _dispute(
    stack: ServiceStack, paid: PaidSession, dispute_id: str, event_type: str, status: str
) -> None:
    event = dispute_event(event_type, dispute_id, paid.payment_intent, paid.charge, paid.amount_minor, status)
    assert await applied(stack, "stripe", (await send_stripe(stack, event))["event_id"]) == "applied"


async def _key_is(stack: ServiceStack, merchant: Merchant, key: str, code: str) -> None:
    async def check() -> bool:
        return await verify_code(stack, merchant, key) == code

    await polling.eventually(check, timeout=5, interval=0.05, what=f"verify -> {code}")


async def _refused(stack: ServiceStack, merchant: Merchant, sid: str, body: dict[str, str]) -> None:
    status, reply = await refund(stack, merchant, sid, body, key=f"k-{uuid.uuid4().hex}")
    assert (status, reply.get("error", {}).get("code")) == (409, "dispute_open"), reply


async def test_an_outside_refund_during_an_inquiry_counts_and_a_lost_escalation_refunds_only_the_rest(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "30.00")
    dispute_id = f"dp_{uuid.uuid4().hex[:10]}"
    await _dispute(stack, paid, dispute_id, "charge.dispute.created", "warning_needs_response")
    session = await session_json(stack, merchant, paid.id)
    assert (session["dispute_status"], session["dispute_kind"]) == ("open", "inquiry"), session
    await _key_is(stack, merchant, paid.key, "SUSPENDED")  # contract §8: both kinds suspend the keys

    status, made = await refund(
        stack,
        merchant,
        paid.id,
        {"amount": "10.00", "provider_refund_id": "re_inquiry_1", "reason": "settles the inquiry"},
        key="during-inquiry",
    )
    assert status == 202 and made["status"] == "succeeded", made
    assert (await session_json(stack, merchant, paid.id))["amount_refunded_minor"] == 1000

    # The inquiry escalates: Stripe withdraws the money, the same dispute now needs a response.
    await _dispute(stack, paid, dispute_id, "charge.dispute.funds_withdrawn", "needs_response")
    session = await session_json(stack, merchant, paid.id)
    assert (session["dispute_status"], session["dispute_kind"]) == ("open", "chargeback"), session
    await _refused(stack, merchant, paid.id, {"amount": "5.00", "provider_refund_id": "re_inquiry_2"})

    # Lost: the network took back what the refund left (20.00), not the whole price again.
    await _dispute(stack, paid, dispute_id, "charge.dispute.closed", "lost")
    session = await session_json(stack, merchant, paid.id)
    assert session["status"] == "refunded" and session["amount_refunded_minor"] == 3000, session
    assert session["amount_refunded_minor"] <= paid.amount_minor
    assert sorted((r["origin"], r["credited_minor"]) for r in session["refunds"]) == [
        ("dispute", 2000),
        ("outside", 1000),
    ], session["refunds"]
    assert (session["dispute_status"], session["dispute_kind"]) == ("lost", "chargeback"), session
    await _key_is(stack, merchant, paid.key, "REVOKED")


async def test_a_formal_dispute_from_the_start_is_refused_and_shown_as_a_chargeback(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "30.00")
    session = await session_json(stack, merchant, paid.id)
    assert (session["dispute_status"], session["dispute_kind"]) == (None, None), session
    await _dispute(stack, paid, f"dp_{uuid.uuid4().hex[:10]}", "charge.dispute.created", "needs_response")
    session = await session_json(stack, merchant, paid.id)
    assert (session["dispute_status"], session["dispute_kind"]) == ("open", "chargeback"), session
    await _refused(stack, merchant, paid.id, {"amount": "10.00", "provider_refund_id": "re_formal_1"})
    assert (await session_json(stack, merchant, paid.id))["refunds"] == []


async def test_a_refund_through_stripe_during_an_inquiry_then_escalation_refuses_more(
    stack: ServiceStack, fake_stripe: FakeStripeRefunds
) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "30.00")
    fake_stripe.payments[paid.payment_intent] = paid.amount_minor
    dispute_id = f"dp_{uuid.uuid4().hex[:10]}"
    await _dispute(stack, paid, dispute_id, "charge.dispute.created", "warning_under_review")

    status, asked = await refund(stack, merchant, paid.id, {"amount": "12.00"}, key="stripe-inquiry")
    assert status == 202 and asked["status"] == "pending" and asked["origin"] == "merchant", asked
    assert len(fake_stripe.refund_calls()) == 1

    await _dispute(stack, paid, dispute_id, "charge.dispute.funds_withdrawn", "needs_response")
    assert (await session_json(stack, merchant, paid.id))["dispute_kind"] == "chargeback"
    await _refused(stack, merchant, paid.id, {"amount": "1.00"})
    assert len(fake_stripe.refund_calls()) == 1  # Stripe was not asked again

    # Stripe settles the refund asked during the inquiry (a provider's report always applies), then the
    # escalated dispute is lost: the credits add up to the price, never more.
    done = refund_object(asked["provider_refund_id"], 1200, paid.payment_intent, paid.charge, "succeeded")
    assert (
        await applied(
            stack, "stripe", (await send_stripe(stack, stripe_envelope("refund.updated", done)))["event_id"]
        )
        == "applied"
    )
    await _dispute(stack, paid, dispute_id, "charge.dispute.closed", "lost")
    session = await session_json(stack, merchant, paid.id)
    assert session["status"] == "refunded" and session["amount_refunded_minor"] == paid.amount_minor, session
    credits = {r["origin"]: r["credited_minor"] for r in session["refunds"]}
    assert credits == {"merchant": 1200, "dispute": 1800}, session["refunds"]
    await _key_is(stack, merchant, paid.key, "REVOKED")


async def test_the_dashboard_offers_refund_during_an_inquiry_and_not_once_it_escalates(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "30.00")
    dispute_id = f"dp_{uuid.uuid4().hex[:10]}"
    await _dispute(stack, paid, dispute_id, "charge.dispute.created", "warning_needs_response")
    path = f"/dashboard/sessions/{paid.id}"

    page = await dashboard_page(stack, merchant.api_key, path)
    assert f"{path}/refund/confirm" in page and 'id="refund-inquiry"' in page, page
    assert "A refund usually settles an inquiry" in page
    assert "open (inquiry)" in page

    await _dispute(stack, paid, dispute_id, "charge.dispute.funds_withdrawn", "needs_response")
    page = await dashboard_page(stack, merchant.api_key, path)
    assert f"{path}/refund/confirm" not in page and 'id="refund-inquiry"' not in page, page
    assert "Refund is not available here: a dispute of this payment is open (a chargeback" in page, page
    assert "open (chargeback)" in page


async def test_an_inquiry_escalated_by_charge_dispute_updated_alone_refuses_refunds(
    stack: ServiceStack,
) -> None:
    """Stripe tells a status change with `charge.dispute.updated`; escalation must not wait for the funds
    withdrawn event, which may come later. An update that keeps the inquiry's status changes nothing."""
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "30.00")
    dispute_id = f"dp_{uuid.uuid4().hex[:10]}"
    await _dispute(stack, paid, dispute_id, "charge.dispute.created", "warning_needs_response")
    await _dispute(stack, paid, dispute_id, "charge.dispute.updated", "warning_under_review")
    session = await session_json(stack, merchant, paid.id)
    assert (session["dispute_status"], session["dispute_kind"]) == ("open", "inquiry"), session

    await _dispute(stack, paid, dispute_id, "charge.dispute.updated", "needs_response")
    session = await session_json(stack, merchant, paid.id)
    assert (session["dispute_status"], session["dispute_kind"]) == ("open", "chargeback"), session
    await _refused(stack, merchant, paid.id, {"amount": "5.00", "provider_refund_id": "re_updated_1"})


async def test_dispute_events_say_whether_an_inquiry_or_a_chargeback_opened(
    stack: ServiceStack, receiver: Receiver
) -> None:
    """A merchant's system answers the two differently (refund an inquiry, send evidence for a chargeback): the
    `dispute.created` and `dispute.closed` events carry the dispute's `kind`."""
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["dispute.created", "dispute.closed"])
    inquired = await paid_session(stack, merchant, "30.00")
    await _dispute(stack, inquired, "dp_inquiry_event", "charge.dispute.created", "warning_needs_response")
    await _dispute(stack, inquired, "dp_inquiry_event", "charge.dispute.closed", "warning_closed")
    disputed = await paid_session(stack, merchant, "30.00")
    await _dispute(stack, disputed, "dp_formal_event", "charge.dispute.created", "needs_response")

    created = await receiver.wait_for("dispute.created", 2)
    closed = await receiver.wait_for("dispute.closed", 1)
    seen = [
        (d.json["type"], d.json["data"]["object"]["id"], d.json["data"]["object"]["status"],
         d.json["data"]["object"].get("kind"))
        for d in created + closed
    ]  # fmt: skip
    assert sorted(seen) == [
        ("dispute.closed", "dp_inquiry_event", "won", "inquiry"),
        ("dispute.created", "dp_formal_event", "open", "chargeback"),
        ("dispute.created", "dp_inquiry_event", "open", "inquiry"),
    ], seen


async def _emitted(stack: ServiceStack, merchant: Merchant, event_type: str) -> list[dict[str, Any]]:
    """The merchant's events of `event_type` as GET /v1/merchant_events lists them (what was emitted, whatever
    the deliveries' timing)."""
    status, page = await stack.request("GET", "/v1/merchant_events?limit=100", headers=merchant.headers)
    assert status == 200, page
    return [event for event in page["data"] if event["type"] == event_type]


async def test_an_escalation_tells_the_merchant_once_with_dispute_updated(
    stack: ServiceStack, receiver: Receiver
) -> None:
    """An inquiry that escalates to a chargeback must reach the merchant when it happens: the chargeback is
    answered with evidence, and `dispute.closed` comes too late for that. One `dispute.updated` per escalation,
    its object the dispute as `dispute.created` shows it, now a chargeback; a re-sent event, a later update of
    the same status and the funds withdrawn afterwards send nothing more."""
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["*"])
    paid = await paid_session(stack, merchant, "30.00")
    dispute_id = f"dp_{uuid.uuid4().hex[:10]}"
    await _dispute(stack, paid, dispute_id, "charge.dispute.created", "warning_needs_response")
    # An update that keeps it an inquiry is no escalation.
    await _dispute(stack, paid, dispute_id, "charge.dispute.updated", "warning_under_review")

    escalation = dispute_event(
        "charge.dispute.updated",
        dispute_id,
        paid.payment_intent,
        paid.charge,
        paid.amount_minor,
        "needs_response",
    )
    assert await applied(stack, "stripe", (await send_stripe(stack, escalation))["event_id"]) == "applied"
    [delivered] = await receiver.wait_for("dispute.updated", 1)
    obj = delivered.json["data"]["object"]
    assert (obj["object"], obj["id"], obj["session_id"], obj["status"], obj["kind"]) == (
        "dispute",
        dispute_id,
        paid.id,
        "open",
        "chargeback",
    ), obj
    assert (obj["amount_minor"], obj["currency"]) == (paid.amount_minor, "EUR"), obj

    # The same Stripe event again, the same status in a new event, then the funds withdrawn: no escalation.
    await send_stripe(stack, escalation)
    await _dispute(stack, paid, dispute_id, "charge.dispute.updated", "needs_response")
    await _dispute(stack, paid, dispute_id, "charge.dispute.funds_withdrawn", "needs_response")
    await _dispute(stack, paid, dispute_id, "charge.dispute.closed", "lost")
    await receiver.wait_for("dispute.closed", 1)
    assert [e["data"]["object"]["kind"] for e in await _emitted(stack, merchant, "dispute.updated")] == [
        "chargeback"
    ]
    assert len(receiver.of_type("dispute.updated")) == 1


async def test_a_chargeback_from_the_start_sends_no_dispute_updated(
    stack: ServiceStack, receiver: Receiver
) -> None:
    """Only an inquiry escalates: a formal dispute's later events (updated, funds withdrawn) tell nothing new."""
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["*"])
    paid = await paid_session(stack, merchant, "30.00")
    dispute_id = f"dp_{uuid.uuid4().hex[:10]}"
    await _dispute(stack, paid, dispute_id, "charge.dispute.created", "needs_response")
    await _dispute(stack, paid, dispute_id, "charge.dispute.updated", "under_review")
    await _dispute(stack, paid, dispute_id, "charge.dispute.funds_withdrawn", "under_review")
    await _dispute(stack, paid, dispute_id, "charge.dispute.closed", "won")
    await receiver.wait_for("dispute.closed", 1)
    assert await _emitted(stack, merchant, "dispute.updated") == []
    assert receiver.of_type("dispute.updated") == []
