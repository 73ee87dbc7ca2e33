"""A provider payment's money is quarantined once, end to end (contract §4, §11).

The outside walk: a `onecom` session for 5.00, "Pay 1 cent short" at the One.com test double. Its webhook
(`msg_...`) quarantines 4.99; minutes later reconciliation read the same payment at One.com's API and its event
(`reconcile_pay_..._succeeded`) opened a second entry for the same payment, with a second `quarantine.created`
merchant event: a merchant could refund the customer twice. Here each order of webhook and reconciliation, a
late report on an expired session, and Stripe's own two events per payment give one entry, and the later
report is a recorded no-op (`already_quarantined`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from paygate.session.v1 import session_pb2
from paygate_dev.devtools.onecom_double import OneComDouble, Payment
from paygate_dev.devtools.signing import standard_delivery, stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from support.polling import eventually
from support.stack import Merchant, ServiceStack
from support.stripe_fake import FakeStripe


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    async with FakeStripe() as fake:
        yield fake


@pytest.fixture
def onecom_env(onecom_env: dict[str, str], fake_stripe: FakeStripe) -> dict[str, str]:
    return {**onecom_env, **fake_stripe.env()}


# ---------------------------------------------------------------------------------------------- helpers
async def _create(stack: ServiceStack, merchant: Merchant, provider: str, amount: str) -> str:
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": amount, "currency": "EUR", "provider": provider, "expires_in": 3600},
        headers=merchant.headers,
    )
    assert status == 201 and "provider_checkout_url" in created, created
    return str(created["id"])


async def _quarantine(stack: ServiceStack, merchant: Merchant, sid: str) -> list[dict[str, Any]]:
    status, listed = await stack.request("GET", "/v1/quarantine?limit=100", headers=merchant.headers)
    assert status == 200, listed
    return [q for q in listed["data"] if q["session_id"] == sid]


async def _quarantine_created(stack: ServiceStack, merchant: Merchant, sid: str) -> list[dict[str, Any]]:
    status, page = await stack.request(
        "GET", "/v1/merchant_events?limit=100&type=quarantine.created", headers=merchant.headers
    )
    assert status == 200, page
    return [e for e in page["data"] if e["data"]["object"]["session_id"] == sid]


async def _events(stack: ServiceStack, merchant: Merchant, sid: str) -> list[dict[str, Any]]:
    status, listed = await stack.request("GET", "/v1/events?limit=100", headers=merchant.headers)
    assert status == 200, listed
    return [e for e in listed["data"] if e["session_id"] == sid]


async def _settled(stack: ServiceStack, merchant: Merchant, sid: str, count: int) -> list[dict[str, Any]]:
    """The session's inbox events once there are `count` of them and each has its verdict."""

    async def settled() -> list[dict[str, Any]] | None:
        events = await _events(stack, merchant, sid)
        done = len(events) >= count and all(e["status"] != "received" for e in events)
        return events if done else None

    return await eventually(settled, timeout=30, interval=0.2, what=f"{count} settled events")


async def _payment_done(stack: ServiceStack, sid: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        row = await stack.pools["gateway"].fetchrow(
            "SELECT state, outcome FROM provider_payments WHERE session_id = $1::uuid", sid
        )
        return dict(row) if row is not None and row["state"] == "done" else None

    return await eventually(done, timeout=30, interval=0.2, what="reconciliation to finish the payment")


async def _entry(stack: ServiceStack, merchant: Merchant, sid: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        entries = await _quarantine(stack, merchant, sid)
        return entries[0] if entries else None

    return await eventually(found, timeout=30, interval=0.2, what="the quarantine entry")


async def _send_onecom(stack: ServiceStack, body: dict[str, Any]) -> str:
    raw, headers = standard_delivery(body, stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"], int(time.time()))
    status, receipt = await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers)
    assert status == 200 and receipt["duplicate"] is False, receipt
    return str(receipt["event_id"])


async def _send_stripe(stack: ServiceStack, event: dict[str, Any]) -> None:
    secret = stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0]
    raw, headers = stripe_delivery(event, secret, int(time.time()))
    status, receipt = await stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    assert status == 200 and receipt["duplicate"] is False, receipt


def _onecom_webhook(payment: Payment) -> dict[str, Any]:
    """The webhook One.com sends for the payment as it stands (what the double's button sent)."""
    return {
        "type": "payment.succeeded",
        "data": {
            "session_id": payment.reference,
            "transaction_id": payment.id,
            "amount_minor": payment.amount_received_minor,
            "currency": payment.currency,
        },
    }


async def _one_entry(
    stack: ServiceStack, merchant: Merchant, sid: str, reason: str, reference: str
) -> dict[str, Any]:
    [entry] = await _quarantine(stack, merchant, sid)
    assert (entry["reason"], entry["provider_reference"], entry["status"]) == (reason, reference, "open"), (
        entry
    )
    assert len(await _quarantine_created(stack, merchant, sid)) == 1
    return entry


# ---------------------------------------------------------------------------------------------- One.com
async def test_short_webhook_then_reconciliation_is_one_entry_and_one_is_not_asked_again(
    stack: ServiceStack, double: OneComDouble
) -> None:
    """The outside walk itself: the webhook quarantines the short payment, and reconciliation, which finds
    the session still `created`, leaves the payment alone: its money is final at One.com and in quarantine."""
    merchant = await stack.create_merchant()
    sid = await _create(stack, merchant, "onecom", "5.00")
    [payment] = double.payments.values()
    assert await double.act(payment, "short")  # "Pay 1 cent short": the webhook is sent
    assert [d.status for d in double.deliveries] == [200]
    entry = await _entry(stack, merchant, sid)
    row = await _payment_done(stack, sid)  # reconciliation has looked at it (after 2 s here)

    assert (await _one_entry(stack, merchant, sid, "amount_mismatch", payment.id))["id"] == entry["id"]
    events = await _settled(stack, merchant, sid, 1)
    webhook = next(e for e in events if e["source"] == "webhook")
    assert (webhook["status"], webhook["outcome"]) == ("quarantined", "amount_mismatch")
    # Nothing was left to learn at One.com: the payment is done without a read, and nothing was re-applied.
    assert row["outcome"] == "money_quarantined"
    assert [p for m, p, _ in double.requests if m == "GET"] == []
    assert [e["source"] for e in events] == ["webhook"]
    session = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
    assert session[1]["status"] == "created"


async def test_short_payment_reconciled_then_its_webhook_is_a_recorded_no_op(
    stack: ServiceStack, double: OneComDouble
) -> None:
    merchant = await stack.create_merchant()
    sid = await _create(stack, merchant, "onecom", "5.00")
    [payment] = double.payments.values()
    assert await double.act(payment, "short", drop_webhook=True)
    await _entry(stack, merchant, sid)
    assert (await _payment_done(stack, sid))["outcome"] == "reconciled_amount_mismatch"

    # One.com's webhook arrives after all (a new message id): a new inbox event whose apply is a no-op.
    late_id = await _send_onecom(stack, _onecom_webhook(payment))
    events = await _settled(stack, merchant, sid, 2)
    late = next(e for e in events if e["event_id"] == late_id)
    assert (late["source"], late["status"], late["outcome"]) == (
        "webhook",
        "duplicate",
        "already_quarantined",
    )
    reconciled = next(e for e in events if e["source"] == "reconcile")
    assert (reconciled["status"], reconciled["outcome"]) == ("quarantined", "amount_mismatch")
    entry = await _one_entry(stack, merchant, sid, "amount_mismatch", payment.id)
    assert late["quarantine_id"] == reconciled["quarantine_id"] == entry["id"]

    # A second reconciliation of the same payment (another replica, a re-check) changes nothing either.
    await stack.pools["gateway"].execute(
        "UPDATE provider_payments SET state = 'open', next_check_at = now() WHERE session_id = $1::uuid", sid
    )
    await _payment_done(stack, sid)
    await _one_entry(stack, merchant, sid, "amount_mismatch", payment.id)


async def test_late_money_on_an_expired_session_is_one_entry_whichever_report_comes_first(
    stack: ServiceStack, double: OneComDouble
) -> None:
    merchant = await stack.create_merchant()
    # Reconciliation first: the session expired with the webhook lost; the money found at One.com is late.
    first = await _create(stack, merchant, "onecom", "5.00")
    # Webhook first: the short payment is quarantined while the session is open, then the session expires.
    second = await _create(stack, merchant, "onecom", "5.00")
    late_payment, short_payment = double.payments.values()
    assert (late_payment.reference, short_payment.reference) == (first, second)
    assert await double.act(late_payment, "pay", drop_webhook=True)
    assert await double.act(short_payment, "short")
    await _entry(stack, merchant, second)
    for sid in (first, second):
        await stack.session.ExpireSession(
            session_pb2.ExpireSessionRequest(session_id=sid, merchant_id=merchant.id), timeout=5
        )
    await _entry(stack, merchant, first)
    await _payment_done(stack, first)
    await _payment_done(stack, second)

    # Each webhook comes again under a new message id, after the session expired.
    for payment in (late_payment, short_payment):
        await _send_onecom(stack, _onecom_webhook(payment))
    for sid, count in ((first, 2), (second, 2)):
        events = await _settled(stack, merchant, sid, count)
        assert [e["outcome"] for e in events if e["status"] == "duplicate"] == ["already_quarantined"]
    await _one_entry(stack, merchant, first, "payment_on_closed_session", late_payment.id)
    # The same short money, reported again on the expired session: not a second entry as a late payment.
    await _one_entry(stack, merchant, second, "amount_mismatch", short_payment.id)


# ---------------------------------------------------------------------------------------------- Stripe
async def test_underpaid_stripe_payment_reconciled_then_both_its_webhooks_are_no_ops(
    stack: ServiceStack, fake_stripe: FakeStripe
) -> None:
    merchant = await stack.create_merchant()
    sid = await _create(stack, merchant, "stripe", "12.34")
    [cs_id] = fake_stripe.sessions
    fake_stripe.complete(cs_id)
    fake_stripe.sessions[cs_id].update(payment_intent="pi_short_1", amount_total=1233)
    await _entry(stack, merchant, sid)
    assert (await _payment_done(stack, sid))["outcome"] == "reconciled_amount_mismatch"

    # Stripe's two webhooks for that one payment arrive late.
    for event_type in ("checkout.session.completed", "payment_intent.succeeded"):
        await _send_stripe(stack, build_stripe_event(event_type, sid, 1233, "EUR", "pi_short_1"))
    events = await _settled(stack, merchant, sid, 3)
    assert sorted((e["source"], e["status"], e["outcome"]) for e in events) == [
        ("reconcile", "quarantined", "amount_mismatch"),
        ("webhook", "duplicate", "already_quarantined"),
        ("webhook", "duplicate", "already_quarantined"),
    ]
    await _one_entry(stack, merchant, sid, "amount_mismatch", "pi_short_1")


async def test_mismatched_stripe_webhook_then_reconciliation_is_one_entry(
    stack: ServiceStack, fake_stripe: FakeStripe
) -> None:
    """Stripe's webhook names the PaymentIntent, which only a read of the Checkout Session ties to the payment
    reconciliation watches: the read happens, and what it finds is the recorded no-op."""
    merchant = await stack.create_merchant()
    sid = await _create(stack, merchant, "stripe", "12.34")
    [cs_id] = fake_stripe.sessions
    # Paid in another currency: Stripe's webhook comes at once, and its Checkout Session says the same.
    fake_stripe.complete(cs_id)
    fake_stripe.sessions[cs_id].update(payment_intent="pi_usd_1", currency="usd")
    await _send_stripe(stack, build_stripe_event("checkout.session.completed", sid, 1234, "USD", "pi_usd_1"))
    await _entry(stack, merchant, sid)
    row = await _payment_done(stack, sid)
    entry = await _one_entry(stack, merchant, sid, "amount_mismatch", "pi_usd_1")
    assert entry["note"] == "currency_mismatch"
    assert fake_stripe.calls("GET", f"/v1/checkout/sessions/{cs_id}")
    assert row["outcome"] == "reconciled_already_quarantined"
    events = await _settled(stack, merchant, sid, 2)
    assert sorted((e["source"], e["status"], e["outcome"]) for e in events) == [
        ("reconcile", "duplicate", "already_quarantined"),
        ("webhook", "quarantined", "amount_mismatch"),
    ]
    assert {e["quarantine_id"] for e in events} == {entry["id"]}
