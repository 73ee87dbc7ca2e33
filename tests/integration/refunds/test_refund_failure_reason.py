"""A failed refund says why (Stripe's refund `failure_reason`, or the error code a provider's API refused the
refund with), end to end over the real stack: the merchant API's refund object, the `refund.failed` merchant
event and the dashboard's session page all carry it.

An odd reason (too long, other characters) is stored as `unknown` rather than refusing the event as malformed:
the failure itself (the money did not go back) must reach the session whatever the provider says about why."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from support import refund_flows
from support.dashboard import dashboard_page
from support.merchant_webhooks import FAST_ENV, Receiver, create_endpoint
from support.refund_flows import FakeStripeRefunds
from support.stack import Merchant, ServiceStack


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripeRefunds]:
    async with FakeStripeRefunds() as fake:
        yield fake


@pytest.fixture
def stack_env(stack_env: dict[str, str], fake_stripe: FakeStripeRefunds) -> dict[str, str]:
    return {**stack_env, **FAST_ENV, **fake_stripe.env()}


async def _api_refund(stack: ServiceStack, merchant: Merchant, sid: str, refund_id: str) -> dict[str, Any]:
    session = await refund_flows.session_json(stack, merchant, sid)
    [found] = [r for r in session["refunds"] if r["id"] == refund_id]
    return found


async def _stored_reason(stack: ServiceStack, refund_id: str) -> str | None:
    conn = await stack.db.admin()
    try:
        reason: str | None = await conn.fetchval(
            "SELECT failure_reason FROM session.refunds WHERE id = $1", uuid.UUID(refund_id)
        )
    finally:
        await conn.close()
    return reason


async def _asked(
    stack: ServiceStack, merchant: Merchant, paid: refund_flows.PaidSession, amount: str, key: str
) -> dict[str, Any]:
    status, asked = await refund_flows.refund(stack, merchant, paid.id, {"amount": amount}, key=key)
    assert status == 202 and asked["status"] == "pending", asked
    assert asked["failure_reason"] is None, asked
    return asked


async def test_stripes_failure_reason_reaches_the_refund_and_its_event(
    stack: ServiceStack, fake_stripe: FakeStripeRefunds, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["refund.succeeded", "refund.failed"])
    paid = await refund_flows.paid_session(stack, merchant, "100.00")
    fake_stripe.payments[paid.payment_intent] = 10000

    asked = await _asked(stack, merchant, paid, "10.00", "fail-1")
    failed = refund_flows.refund_object(
        asked["provider_refund_id"], 1000, paid.payment_intent, paid.charge, "failed"
    )
    failed["failure_reason"] = "expired_or_canceled_card"
    sent = await refund_flows.send_stripe(
        stack, refund_flows.stripe_envelope("charge.refund.updated", failed)
    )
    assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"

    shown = await _api_refund(stack, merchant, paid.id, asked["id"])
    assert (shown["status"], shown["failure_reason"]) == ("failed", "expired_or_canceled_card"), shown
    [event] = await receiver.wait_for("refund.failed")
    obj = event.json["data"]["object"]
    assert (obj["id"], obj["status"], obj["failure_reason"]) == (
        asked["id"],
        "failed",
        "expired_or_canceled_card",
    ), obj

    # A later report of the same failure without its reason (a charge's refund list) never erases it.
    listed = refund_flows.charge_refunded(
        paid.payment_intent, paid.charge, 10000, [failed | {"failure_reason": None}], 0
    )
    sent = await refund_flows.send_stripe(stack, listed)
    assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    assert await _stored_reason(stack, asked["id"]) == "expired_or_canceled_card"

    # A succeeded refund has no failure reason, in the API and in its event.
    ok = await _asked(stack, merchant, paid, "20.00", "ok-1")
    done = refund_flows.refund_object(ok["provider_refund_id"], 2000, paid.payment_intent, paid.charge)
    done["failure_reason"] = "declined"  # ignored: only a failed refund has a reason
    sent = await refund_flows.send_stripe(stack, refund_flows.stripe_envelope("refund.updated", done))
    assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    assert (await _api_refund(stack, merchant, paid.id, ok["id"]))["failure_reason"] is None
    [succeeded] = await receiver.wait_for("refund.succeeded")
    assert succeeded.json["data"]["object"]["failure_reason"] is None

    # The dashboard's session page words the reason next to the failed refund, and nothing by the other.
    rows = await _dashboard_rows(stack, merchant, paid.id)
    assert "The customer's card expired or was canceled." in rows[asked["id"]], rows
    assert "expired" not in rows[ok["id"]], rows


async def _dashboard_rows(stack: ServiceStack, merchant: Merchant, sid: str) -> dict[str, str]:
    """The session page's Refunds rows (refund id -> the row's text), signed in with the merchant's key."""
    page = await dashboard_page(stack, merchant.api_key, f"/dashboard/sessions/{sid}")
    return {
        refund_id: " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cells)).split())
        for refund_id, cells in re.findall(r'<tr data-refund-id="([^"]+)">(.*?)</tr>', page, re.S)
    }


@pytest.mark.parametrize(
    "odd",
    ["x" * 300, "Expired Card", "card<script>", "\u00e9chec"],
    ids=["long", "spaces", "markup", "accent"],
)
async def test_an_odd_reason_is_stored_as_unknown_never_a_500(
    stack: ServiceStack, fake_stripe: FakeStripeRefunds, odd: str
) -> None:
    merchant = await stack.create_merchant()
    paid = await refund_flows.paid_session(stack, merchant, "50.00")
    fake_stripe.payments[paid.payment_intent] = 5000
    asked = await _asked(stack, merchant, paid, "5.00", "odd-1")
    failed = refund_flows.refund_object(
        asked["provider_refund_id"], 500, paid.payment_intent, paid.charge, "failed"
    )
    failed["failure_reason"] = odd
    sent = await refund_flows.send_stripe(stack, refund_flows.stripe_envelope("refund.updated", failed))
    assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    shown = await _api_refund(stack, merchant, paid.id, asked["id"])
    assert (shown["status"], shown["failure_reason"]) == ("failed", "unknown"), shown


async def test_a_refusal_by_stripes_api_records_its_code(
    stack: ServiceStack, fake_stripe: FakeStripeRefunds, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["refund.failed"])
    paid = await refund_flows.paid_session(stack, merchant, "30.00")
    # Stripe counts the payment as refunded already: it refuses with 400 `amount_too_large`.
    fake_stripe.payments[paid.payment_intent] = 3000
    fake_stripe.refunded[paid.payment_intent] = 3000
    status, body = await refund_flows.refund(stack, merchant, paid.id, {"amount": "3.00"}, key="refused-1")
    assert status < 500, body
    assert body["status"] == "failed" and body["provider_error"]["code"] == "provider_rejected", body
    assert body["failure_reason"] == "amount_too_large", body
