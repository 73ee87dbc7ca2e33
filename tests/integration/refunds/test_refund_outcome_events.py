"""`refund.succeeded` and `refund.failed` (contract §7): a refund's outcome reaches the merchant's endpoint, once.

Driven the way a merchant sees it, over the real stack: refunds asked through Stripe's API (a local server in
Stripe's format) and settled by Stripe's signed webhooks, a refund recorded as made outside paygate, and a
loopback receiver collecting the signed deliveries. Each outcome is one event whose `data.object` is the refund
as the merchant API shows it; a replayed or late provider event sends nothing new."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from support import refund_flows
from support.dashboard import dashboard_page
from support.merchant_webhooks import FAST_ENV, Receiver, create_endpoint
from support.refund_flows import FakeStripeRefunds
from support.stack import Merchant, ServiceStack

OUTCOME_TYPES = ["refund.succeeded", "refund.failed"]
# What GET /v1/sessions/{id} shows of a refund and does not change once it settled (its credit note is issued
# after the event, by the refund worker).
SETTLED_FIELDS = (
    "id",
    "object",
    "session_id",
    "amount",
    "amount_minor",
    "currency",
    "status",
    "origin",
    "provider_refund_id",
    "reason",
    "credited",
    "credited_minor",
    "created_at",
    "replaced_by",
)


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripeRefunds]:
    async with FakeStripeRefunds() as fake:
        yield fake


@pytest.fixture
def stack_env(stack_env: dict[str, str], fake_stripe: FakeStripeRefunds) -> dict[str, str]:
    return {**stack_env, **FAST_ENV, **fake_stripe.env()}


async def _stored(stack: ServiceStack, merchant: Merchant) -> list[tuple[str, str]]:
    """(type, object id) of the merchant's refund outcome events, in emission order."""
    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            """SELECT type, object_id FROM session.merchant_events
                WHERE merchant_id = $1 AND type LIKE 'refund.%' ORDER BY seq""",
            uuid.UUID(merchant.id),
        )
    finally:
        await conn.close()
    return [(r["type"], r["object_id"]) for r in rows]


async def _api_refund(stack: ServiceStack, merchant: Merchant, sid: str, refund_id: str) -> dict[str, Any]:
    session = await refund_flows.session_json(stack, merchant, sid)
    [found] = [r for r in session["refunds"] if r["id"] == refund_id]
    return found


def _settled(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: obj[key] for key in SETTLED_FIELDS}


async def _quiet(receiver: Receiver) -> list[str]:
    """The types delivered so far, after giving a wrong extra delivery the time to arrive."""
    await asyncio.sleep(1.0)
    return sorted(d.json["type"] for d in receiver.deliveries)


async def test_refund_outcomes_through_stripe_reach_the_endpoint_once_each(
    stack: ServiceStack, fake_stripe: FakeStripeRefunds, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, receiver.url, OUTCOME_TYPES)
    assert endpoint["events"] == OUTCOME_TYPES
    paid = await refund_flows.paid_session(stack, merchant, "100.00")
    fake_stripe.payments[paid.payment_intent] = 10000

    # A partial refund asked through Stripe: pending (no outcome, no event), then Stripe's webhook settles it.
    status, asked = await refund_flows.refund(stack, merchant, paid.id, {"amount": "40.00"}, key="ok-1")
    assert status == 202 and asked["status"] == "pending", asked
    re_ok = asked["provider_refund_id"]
    done = refund_flows.refund_object(re_ok, 4000, paid.payment_intent, paid.charge, "succeeded")
    updated = refund_flows.stripe_envelope("refund.updated", done)
    sent = await refund_flows.send_stripe(stack, updated)
    assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    [succeeded] = await receiver.wait_for("refund.succeeded")
    Webhook(endpoint["secret"]).verify(succeeded.body, succeeded.headers)
    body = succeeded.json
    assert body["mode"] == "test" and body["id"].startswith("evt_"), body
    obj = body["data"]["object"]
    assert (obj["object"], obj["id"], obj["session_id"]) == ("refund", asked["id"], paid.id), obj
    assert (obj["status"], obj["amount"], obj["amount_minor"], obj["currency"]) == (
        "succeeded",
        "40.00",
        4000,
        "EUR",
    ), obj
    assert (obj["origin"], obj["provider_refund_id"], obj["credited_minor"]) == ("merchant", re_ok, 4000)
    # The refund as the merchant API shows it (its credit note comes after, from the refund worker).
    assert set(obj) == set(await _api_refund(stack, merchant, paid.id, asked["id"]))
    assert _settled(obj) == _settled(await _api_refund(stack, merchant, paid.id, asked["id"]))

    # Stripe delivers the same event again, then a late charge.refunded listing the same refund as succeeded,
    # then an out-of-order `pending` of it: the outcome is recorded once, so nothing new is sent.
    again = await refund_flows.send_stripe(stack, updated)
    assert again["duplicate"] is True, again
    listed = refund_flows.charge_refunded(paid.payment_intent, paid.charge, 10000, [done], 4000)
    sent = await refund_flows.send_stripe(stack, listed)
    assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    late = refund_flows.stripe_envelope(
        "refund.updated",
        refund_flows.refund_object(re_ok, 4000, paid.payment_intent, paid.charge, "pending"),
    )
    sent = await refund_flows.send_stripe(stack, late)
    assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    assert await _quiet(receiver) == ["refund.succeeded"]

    # A second refund that the customer's bank refuses: Stripe reports it failed.
    status, asked_2 = await refund_flows.refund(stack, merchant, paid.id, {"amount": "10.00"}, key="ko-1")
    assert status == 202 and asked_2["status"] == "pending", asked_2
    re_ko = asked_2["provider_refund_id"]
    failed_obj = refund_flows.refund_object(re_ko, 1000, paid.payment_intent, paid.charge, "failed")
    failed_obj["failure_reason"] = "expired_or_canceled_card"
    failed_event = refund_flows.stripe_envelope("charge.refund.updated", failed_obj)
    sent = await refund_flows.send_stripe(stack, failed_event)
    assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    [failed] = await receiver.wait_for("refund.failed")
    obj = failed.json["data"]["object"]
    assert (obj["id"], obj["session_id"], obj["status"]) == (asked_2["id"], paid.id, "failed"), obj
    assert (obj["amount"], obj["amount_minor"], obj["credited_minor"], obj["provider_refund_id"]) == (
        "10.00",
        1000,
        0,
        re_ko,
    ), obj
    assert _settled(obj) == _settled(await _api_refund(stack, merchant, paid.id, asked_2["id"]))

    # The failure replayed (its own id again, and the same refund under a new event id): nothing new.
    again = await refund_flows.send_stripe(stack, failed_event)
    assert again["duplicate"] is True, again
    sent = await refund_flows.send_stripe(stack, refund_flows.stripe_envelope("refund.updated", failed_obj))
    assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    assert await _quiet(receiver) == ["refund.failed", "refund.succeeded"]
    assert await _stored(stack, merchant) == [
        ("refund.succeeded", asked["id"]),
        ("refund.failed", asked_2["id"]),
    ]


async def test_a_refund_that_failed_after_it_succeeded_sends_refund_failed(
    stack: ServiceStack, fake_stripe: FakeStripeRefunds, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, OUTCOME_TYPES)
    paid = await refund_flows.paid_session(stack, merchant, "30.00")
    fake_stripe.payments[paid.payment_intent] = 3000

    status, asked = await refund_flows.refund(stack, merchant, paid.id, {"amount": "5.00"}, key="later-1")
    assert status == 202, asked
    re_id = asked["provider_refund_id"]
    for refund_status in ("succeeded", "failed"):
        obj = refund_flows.refund_object(re_id, 500, paid.payment_intent, paid.charge, refund_status)
        sent = await refund_flows.send_stripe(stack, refund_flows.stripe_envelope("refund.updated", obj))
        assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    [failed] = await receiver.wait_for("refund.failed")
    obj = failed.json["data"]["object"]
    assert (obj["id"], obj["status"], obj["credited_minor"]) == (asked["id"], "failed", 0), obj
    assert await _quiet(receiver) == ["refund.failed", "refund.succeeded"]
    assert await _stored(stack, merchant) == [
        ("refund.succeeded", asked["id"]),
        ("refund.failed", asked["id"]),
    ]


async def test_a_refund_recorded_as_made_elsewhere_sends_refund_succeeded(
    stack: ServiceStack, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["refund.succeeded"])
    # Paid through One.com, whose API is not configured here: the merchant records a refund made elsewhere.
    paid = await refund_flows.paid_session(stack, merchant, "20.00", provider="onecom")
    status, made = await refund_flows.refund(
        stack,
        merchant,
        paid.id,
        {"amount": "2.50", "provider_refund_id": "re_elsewhere_1", "reason": "goodwill"},
        key="elsewhere-1",
    )
    assert status == 202 and made["status"] == "succeeded", made
    [delivery] = await receiver.wait_for("refund.succeeded")
    obj = delivery.json["data"]["object"]
    assert (obj["id"], obj["session_id"], obj["origin"], obj["reason"]) == (
        made["id"],
        paid.id,
        "outside",
        "goodwill",
    ), obj
    assert (obj["amount"], obj["amount_minor"], obj["provider_refund_id"]) == ("2.50", 250, "re_elsewhere_1")
    assert _settled(obj) == _settled(await _api_refund(stack, merchant, paid.id, made["id"]))

    # The merchant's retry with the same key is the same refund: no second event.
    status, again = await refund_flows.refund(
        stack,
        merchant,
        paid.id,
        {"amount": "2.50", "provider_refund_id": "re_elsewhere_1", "reason": "goodwill"},
        key="elsewhere-1",
    )
    assert status == 202 and again["id"] == made["id"], again
    assert await _quiet(receiver) == ["refund.succeeded"]
    assert await _stored(stack, merchant) == [("refund.succeeded", made["id"])]


async def test_a_refund_canceled_at_stripe_sends_refund_canceled_once(
    stack: ServiceStack, fake_stripe: FakeStripeRefunds, receiver: Receiver
) -> None:
    """A refund asked through Stripe that Stripe cancels (refund status `canceled`) moved no money and releases
    what it reserved: the merchant's system, which saw it pending, must learn it will not settle, once."""
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["*"])
    paid = await refund_flows.paid_session(stack, merchant, "30.00")
    fake_stripe.payments[paid.payment_intent] = 3000

    status, asked = await refund_flows.refund(stack, merchant, paid.id, {"amount": "7.00"}, key="cancel-1")
    assert status == 202 and asked["status"] == "pending", asked
    re_id = asked["provider_refund_id"]
    canceled_obj = refund_flows.refund_object(re_id, 700, paid.payment_intent, paid.charge, "canceled")
    canceled_event = refund_flows.stripe_envelope("charge.refund.updated", canceled_obj)
    sent = await refund_flows.send_stripe(stack, canceled_event)
    assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    [delivery] = await receiver.wait_for("refund.canceled")
    obj = delivery.json["data"]["object"]
    assert (obj["object"], obj["id"], obj["session_id"], obj["status"]) == (
        "refund",
        asked["id"],
        paid.id,
        "canceled",
    ), obj
    assert (obj["amount_minor"], obj["credited_minor"], obj["provider_refund_id"]) == (700, 0, re_id), obj
    assert _settled(obj) == _settled(await _api_refund(stack, merchant, paid.id, asked["id"]))

    # Replayed (its own id again, and the same refund under a new event id): nothing new.
    again = await refund_flows.send_stripe(stack, canceled_event)
    assert again["duplicate"] is True, again
    sent = await refund_flows.send_stripe(stack, refund_flows.stripe_envelope("refund.updated", canceled_obj))
    assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    await _quiet(receiver)
    assert len(receiver.of_type("refund.canceled")) == 1
    assert await _stored(stack, merchant) == [("refund.canceled", asked["id"])]


async def test_a_merged_refund_sends_refund_canceled_naming_the_refund_that_stands(
    stack: ServiceStack, fake_stripe: FakeStripeRefunds, receiver: Receiver
) -> None:
    """Stripe's webhook reaches paygate before Stripe's answer to the refund paygate asked for, without paygate's
    id (no metadata): the webhook's refund stands and paygate cancels its own pending record. That record's
    `refund.canceled` names the standing refund (`replaced_by`), so the merchant's system does not refund again."""
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["*"])
    paid = await refund_flows.paid_session(stack, merchant, "25.00")
    fake_stripe.payments[paid.payment_intent] = 2500
    fake_stripe.refund_status = "succeeded"
    fake_stripe.echo_metadata = False

    async def webhook_first(obj: dict[str, Any]) -> None:
        event = refund_flows.stripe_envelope("refund.created", dict(obj))
        await refund_flows.send_stripe(stack, event)
        assert await refund_flows.applied(stack, "stripe", event["id"]) == "applied"

    fake_stripe.on_refund = webhook_first
    status, standing = await refund_flows.refund(stack, merchant, paid.id, {"amount": "6.00"}, key="merge-1")
    assert status == 202 and standing["status"] == "succeeded", standing
    assert standing["replaced_by"] is None, standing
    refunds = (await refund_flows.session_json(stack, merchant, paid.id))["refunds"]
    [mine] = [r for r in refunds if r["id"] != standing["id"]]
    assert (mine["status"], mine["origin"], mine["replaced_by"]) == (
        "canceled",
        "merchant",
        standing["id"],
    ), mine

    # The merchant's retry under the same key gets the first answer again, the refund that stands, and Stripe
    # is not asked again.
    status, again = await refund_flows.refund(stack, merchant, paid.id, {"amount": "6.00"}, key="merge-1")
    assert status == 202 and (again["id"], again["status"]) == (standing["id"], "succeeded"), again
    assert len(fake_stripe.refund_calls()) == 1
    # The dashboard's session page says the same: the canceled record names the refund that stands.
    page = await dashboard_page(stack, merchant.api_key, f"/dashboard/sessions/{paid.id}")
    row = page[page.index(f'data-refund-id="{mine["id"]}"') :].split("</tr>")[0]
    assert f'data-replaced-by="{standing["id"]}"' in row, row

    [canceled] = await receiver.wait_for("refund.canceled")
    obj = canceled.json["data"]["object"]
    assert (obj["id"], obj["status"], obj["replaced_by"], obj["credited_minor"]) == (
        mine["id"],
        "canceled",
        standing["id"],
        0,
    ), obj
    assert _settled(obj) == _settled(mine)
    [succeeded] = await receiver.wait_for("refund.succeeded")
    obj = succeeded.json["data"]["object"]
    assert (obj["id"], obj["status"], obj["replaced_by"]) == (standing["id"], "succeeded", None), obj
    await _quiet(receiver)
    assert len(receiver.of_type("refund.canceled")) == 1 and len(receiver.of_type("refund.succeeded")) == 1
    assert sorted(await _stored(stack, merchant)) == sorted(
        [("refund.succeeded", standing["id"]), ("refund.canceled", mine["id"])]
    )
