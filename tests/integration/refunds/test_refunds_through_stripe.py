"""Refunds through Stripe's API (contract §8): the real `stripe` library against a local server in Stripe's API
format, settled by Stripe's webhook, with the webhook twice and before the API's answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from support import polling
from support.refund_flows import (
    FakeStripeRefunds,
    applied,
    charge_refunded,
    credited_sum,
    dispute_event,
    inbox_status,
    paid_session,
    refund,
    refund_object,
    send_stripe,
    session_json,
    stripe_envelope,
    verify_code,
    wait_credit_notes,
)
from support.stack import ServiceStack


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripeRefunds]:
    async with FakeStripeRefunds() as fake:
        yield fake


@pytest.fixture
def stack_env(stack_env: dict[str, str], fake_stripe: FakeStripeRefunds) -> dict[str, str]:
    return {**stack_env, **fake_stripe.env()}


async def test_merchant_refunds_through_stripe_and_the_webhook_settles_once(
    stack: ServiceStack, fake_stripe: FakeStripeRefunds
) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "100.00")
    fake_stripe.payments[paid.payment_intent] = 10000

    # With the API configured, a refund "made outside paygate" is refused.
    status, body = await refund(stack, merchant, paid.id, {"amount": "1.00", "provider_refund_id": "re_x"})
    assert status == 409 and body["error"]["code"] == "use_provider", body

    status, asked = await refund(stack, merchant, paid.id, {"amount": "40.00"}, key="stripe-1")
    assert status == 202, asked
    assert asked["status"] == "pending" and asked["origin"] == "merchant"
    [call] = fake_stripe.refund_calls()
    assert call.form == {
        "payment_intent": paid.payment_intent,
        "amount": "4000",
        # Stripe echoes these in its refund webhooks: they name paygate's refund and session.
        "metadata[paygate_refund_id]": asked["id"],
        "metadata[session_id]": paid.id,
    }
    assert call.headers["Idempotency-Key"] == f"paygate-refund-{asked['id']}"
    re_id = asked["provider_refund_id"]
    assert re_id in fake_stripe.refunds
    # Pending: nothing credited yet, and the reserved 40.00 counts against what may still be refunded.
    assert (await session_json(stack, merchant, paid.id))["amount_refunded"] == "0.00"
    status, body = await refund(stack, merchant, paid.id, {"amount": "60.01"})
    assert status == 400 and body["error"]["code"] == "amount_too_large"
    # The merchant's retry does not ask Stripe again.
    status, again = await refund(stack, merchant, paid.id, {"amount": "40.00"}, key="stripe-1")
    assert status == 202 and again["id"] == asked["id"] and len(fake_stripe.refund_calls()) == 1

    # Stripe confirms: refund.updated twice (one event delivered twice), then charge.refunded listing it.
    done = refund_object(re_id, 4000, paid.payment_intent, paid.charge, "succeeded")
    updated = stripe_envelope("refund.updated", done)
    for _ in range(2):
        reply = await send_stripe(stack, updated)
    assert reply["duplicate"] is True
    assert await applied(stack, "stripe", updated["id"]) == "applied"
    listed = charge_refunded(paid.payment_intent, paid.charge, 10000, [done], 4000)
    assert await applied(stack, "stripe", (await send_stripe(stack, listed))["event_id"]) == "applied"
    await wait_credit_notes(stack, merchant, paid.id, 4000, 1)
    session = await session_json(stack, merchant, paid.id)
    assert session["amount_refunded"] == "40.00" and session["status"] == "paid"
    [only] = session["refunds"]
    assert only["id"] == asked["id"] and only["status"] == "succeeded" and only["provider_refund_id"] == re_id
    assert await verify_code(stack, merchant, paid.key) == "VALID"

    # A refund made in Stripe's dashboard for the rest: reported by Stripe, the session is refunded.
    dash = refund_object("re_dashboard", 6000, paid.payment_intent, paid.charge, "succeeded")
    full = charge_refunded(paid.payment_intent, paid.charge, 10000, [done, dash], 10000)
    assert await applied(stack, "stripe", (await send_stripe(stack, full))["event_id"]) == "applied"
    await wait_credit_notes(stack, merchant, paid.id, 10000, 2)

    async def revoked() -> bool:
        return await verify_code(stack, merchant, paid.key) == "REVOKED"

    await polling.eventually(revoked, timeout=1.0, interval=0.02, what="key revoked")
    assert (await session_json(stack, merchant, paid.id))["status"] == "refunded"


@pytest.mark.parametrize("echoed", [True, False], ids=["metadata", "no-metadata-fallback"])
async def test_webhook_before_the_api_answer_is_one_refund(
    stack: ServiceStack, fake_stripe: FakeStripeRefunds, echoed: bool
) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "25.00")
    fake_stripe.payments[paid.payment_intent] = 2500
    fake_stripe.refund_status = "succeeded"
    fake_stripe.echo_metadata = echoed
    seen: list[str] = []

    async def webhook_first(obj: dict[str, Any]) -> None:
        # Stripe's webhook reaches paygate (and is applied) before Stripe's answer to the API call does.
        event = stripe_envelope("refund.created", dict(obj))
        seen.append(event["id"])
        await send_stripe(stack, event)
        assert await applied(stack, "stripe", event["id"]) == "applied"

    fake_stripe.on_refund = webhook_first
    status, answer = await refund(stack, merchant, paid.id, {}, key="race-1")
    assert status == 202, answer
    assert seen and answer["status"] == "succeeded" and answer["amount"] == "25.00"
    assert answer["session"]["status"] == "refunded" and answer["session"]["amount_refunded"] == "25.00"
    await wait_credit_notes(stack, merchant, paid.id, 2500, 1)
    assert await credited_sum(stack, merchant, paid.id) == 2500
    refunds = (await session_json(stack, merchant, paid.id))["refunds"]
    if echoed:
        # The webhook named paygate's refund (metadata): it settled that very refund, nothing to merge.
        [only] = refunds
        assert only["id"] == answer["id"] and only["status"] == "succeeded" and only["origin"] == "merchant"
        assert only["provider_refund_id"] == answer["provider_refund_id"]
    else:
        # Without metadata the webhook's refund stands and the request's own record gives way to it.
        assert sorted(r["status"] for r in refunds) == ["canceled", "succeeded"]


async def test_an_event_naming_only_the_charge_is_matched_through_stripes_api(
    stack: ServiceStack, fake_stripe: FakeStripeRefunds
) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "30.00")
    fake_stripe.payments[paid.payment_intent] = 3000
    fake_stripe.charges[paid.charge] = paid.payment_intent

    # A refund made in Stripe's dashboard, reported with its charge and no PaymentIntent, and no earlier
    # charge.refunded linked that charge: Stripe's API says which PaymentIntent it belongs to.
    made = stripe_envelope("refund.created", refund_object("re_charge_only", 1000, None, paid.charge))
    assert await applied(stack, "stripe", (await send_stripe(stack, made))["event_id"]) == "applied"
    await wait_credit_notes(stack, merchant, paid.id, 1000, 1)
    [charge_call] = fake_stripe.charge_calls()
    assert charge_call.path == f"/v1/charges/{paid.charge}"
    [only] = (await session_json(stack, merchant, paid.id))["refunds"]
    assert only["provider_refund_id"] == "re_charge_only" and only["origin"] == "provider"

    # A dispute naming only the charge is matched the same way (the answer is remembered: no second call).
    dispute = dispute_event(
        "charge.dispute.created", "dp_charge_only", None, paid.charge, 3000, "needs_response"
    )
    assert await applied(stack, "stripe", (await send_stripe(stack, dispute))["event_id"]) == "applied"
    assert (await session_json(stack, merchant, paid.id))["dispute_status"] == "open"
    assert len(fake_stripe.charge_calls()) == 1

    # Stripe's API down: the event waits in the inbox (retried with backoff) and is applied once it answers.
    fake_stripe.charges["ch_second_look"] = paid.payment_intent
    fake_stripe.down = True
    later = stripe_envelope("refund.created", refund_object("re_later", 700, None, "ch_second_look"))
    later_id = (await send_stripe(stack, later))["event_id"]

    async def tried() -> bool:
        return await inbox_error(stack, later_id) is not None

    await polling.eventually(tried, timeout=10, what="a failed charge lookup")
    assert "stripe_unavailable" in (await inbox_error(stack, later_id) or "")
    assert await inbox_status(stack, "stripe", later_id) == "received"
    fake_stripe.down = False
    assert await applied(stack, "stripe", later_id) == "applied"
    await wait_credit_notes(stack, merchant, paid.id, 1700, 2)

    # A charge Stripe does not know (404): the event is kept and retried, never applied to a session.
    stranger = stripe_envelope("refund.created", refund_object("re_stranger", 500, None, "ch_unknown"))
    event_id = (await send_stripe(stack, stranger))["event_id"]

    async def asked() -> bool:
        return any(c.path == "/v1/charges/ch_unknown" for c in fake_stripe.charge_calls())

    await polling.eventually(asked, timeout=10, what="Stripe asked for the unknown charge")
    assert await inbox_status(stack, "stripe", event_id) == "received"
    assert len((await session_json(stack, merchant, paid.id))["refunds"]) == 2


async def inbox_error(stack: ServiceStack, event_id: str) -> str | None:
    conn = await stack.db.admin()
    try:
        return await conn.fetchval(
            "SELECT last_error FROM gateway.inbox_events WHERE provider = 'stripe' AND event_id = $1",
            event_id,
        )
    finally:
        await conn.close()
