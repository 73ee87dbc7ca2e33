"""A merchant refunds a paid session from the dashboard (the Refund action of a session's page), against the real
stack over real HTTP: part, then the rest, through the same session-service path as POST /v1/sessions/{id}/refund
(here "recorded as made elsewhere": the test gateway has no provider API key). A re-POST of the same confirmed
form refunds nothing twice; another merchant's session is a 404 page; the audit trail names the dashboard."""

from __future__ import annotations

import argparse
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from gateway_webhook_support import FAST_RELAY_ENV, send_stripe, stripe_event, wait_for_status

from paygate_dev.devtools import trigger_cmd
from support.dashboard import form_of, get, post, signed_in
from support.stack import Merchant, ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_RELAY_ENV}


async def paid_session(stack: ServiceStack, merchant: Merchant, amount: str = "25.00") -> str:
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": amount, "currency": "EUR", "provider": "stripe"},
        headers=merchant.headers,
    )
    assert status == 201, created
    event = stripe_event("checkout.session.completed", created)
    status, reply = await send_stripe(stack, event)
    assert status == 200, reply
    await wait_for_status(stack, "stripe", event["id"], {"applied"})
    return str(created["id"])


async def refunds_of(stack: ServiceStack, merchant: Merchant, sid: str) -> dict[str, Any]:
    status, body = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
    assert status == 200, body
    return body


async def test_refund_part_then_the_rest_from_the_dashboard(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    other = await stack.create_merchant()
    sid = await paid_session(stack, merchant)
    others = await paid_session(stack, other)
    status, keys = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 200, keys
    key_id = keys["data"][0]["id"]
    started = datetime.now(UTC)
    base = f"/dashboard/sessions/{sid}"

    async with signed_in(stack, merchant.api_key) as http:
        page = await get(http, stack, base)
        start = form_of(page, f"{base}/refund/confirm")
        # The default is the whole refundable rest, in the session's currency with its exponent.
        assert start["amount"] == "25.00", start

        # 1. Part: 10.00 EUR. The confirm page says what happens, how much, and what stays.
        status, _, confirm = await post(http, stack, f"{base}/refund/confirm", {**start, "amount": "10.00"})
        assert status == 200, confirm[:2000]
        assert "10.00 EUR" in confirm and "15.00 EUR" in confirm, confirm
        assert "made elsewhere" in confirm, confirm
        fields = form_of(confirm, f"{base}/refund")
        assert fields.get("idempotency_key"), fields
        status, location, text = await post(http, stack, f"{base}/refund", fields)
        assert status == 303 and location.startswith(base), (status, location, text[:2000])
        assert "10.00 EUR" in await get(http, stack, location)

        # The same confirmed form again (a reload, a double click): nothing is refunded twice.
        status, location, text = await post(http, stack, f"{base}/refund", fields)
        assert status == 303 and "already_submitted" in location, (status, location, text[:2000])
        after_part = await refunds_of(stack, merchant, sid)
        assert len(after_part["refunds"]) == 1, after_part
        assert after_part["status"] == "paid", after_part

        # A partial amount is parsed exactly: more digits than the currency has is refused as a page, not a 500.
        status, _, refused = await post(http, stack, f"{base}/refund/confirm", {**start, "amount": "1.005"})
        assert status == 400, (status, refused[:2000])
        assert "amount_too_precise" in refused, refused

        # 2. The rest: the default amount is now 15.00 EUR.
        page = await get(http, stack, base)
        rest = form_of(page, f"{base}/refund/confirm")
        assert rest["amount"] == "15.00", rest
        status, _, confirm = await post(http, stack, f"{base}/refund/confirm", rest)
        assert status == 200, confirm[:2000]
        fields = form_of(confirm, f"{base}/refund")
        status, location, text = await post(http, stack, f"{base}/refund", fields)
        assert status == 303 and location.startswith(base), (status, location, text[:2000])
        status, location, _ = await post(http, stack, f"{base}/refund", fields)
        assert status == 303 and "already_submitted" in location, (status, location)

        # Refunded in full: no Refund action any more, and asking for one anyway is a readable refusal.
        page = await get(http, stack, base)
        assert f"{base}/refund/confirm" not in page, page
        status, _, refused = await post(http, stack, f"{base}/refund/confirm", rest)
        assert status == 409 and "already fully refunded" in refused, (status, refused[:2000])

        # Another merchant's session is not found, for the page and both forms.
        await get(http, stack, f"/dashboard/sessions/{others}", expect=404)
        status, _, text = await post(http, stack, f"/dashboard/sessions/{others}/refund/confirm", rest)
        assert status == 404 and "Not found" in text, (status, text[:1000])
        status, _, text = await post(
            http, stack, f"/dashboard/sessions/{others}/refund", {**fields, "idempotency_key": "x" * 24}
        )
        assert status == 404 and "Not found" in text, (status, text[:1000])

    body = await refunds_of(stack, merchant, sid)
    assert body["status"] == "refunded", body
    assert sorted(r["amount"] for r in body["refunds"]) == ["10.00", "15.00"], body["refunds"]
    assert body["amount_refunded"] == "25.00", body
    assert all(r["status"] == "succeeded" for r in body["refunds"]), body["refunds"]
    assert (await refunds_of(stack, other, others))["refunds"] == []

    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            "SELECT action, actor FROM session.audit_log WHERE session_id = $1 AND at >= $2 ORDER BY id",
            uuid.UUID(sid),
            started,
        )
    finally:
        await conn.close()
    # The two refunds (the second moves the session to refunded) name the dashboard session that asked; the
    # credit notes' follow-up rows are written by the session service's refund worker ("refunds").
    asked = [row for row in rows if row["actor"] != "refunds"]
    assert len(asked) == 2, rows
    assert {row["actor"] for row in asked} == {f"dashboard:merchant_key:{key_id}"}, rows


async def test_no_refund_action_while_a_dispute_is_open_or_before_payment(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    disputed = await paid_session(stack, merchant)
    created = await stack_trigger(stack, "stripe", "charge.dispute.created", "--session", disputed)
    assert created
    status, unpaid = await stack.request(
        "POST", "/v1/sessions", json={"amount": "5.00", "currency": "EUR"}, headers=merchant.headers
    )
    assert status == 201, unpaid
    base = f"/dashboard/sessions/{disputed}"

    async with signed_in(stack, merchant.api_key) as http:
        page = await get(http, stack, base)
        assert f"{base}/refund/confirm" not in page, page
        assert "Refund is not available here: a dispute of this payment is open" in page, page
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        form = {"csrf_token": token.group(1), "amount": "1.00", "reason": "", "idempotency_key": "n" * 24}
        status, _, refused = await post(http, stack, f"{base}/refund/confirm", form)
        assert status == 409 and "dispute_open" in refused, (status, refused[:2000])
        status, _, refused = await post(http, stack, f"{base}/refund", form)
        assert status == 409 and "dispute_open" in refused, (status, refused[:2000])

        page = await get(http, stack, f"/dashboard/sessions/{unpaid['id']}")
        assert "/refund/confirm" not in page
        status, _, refused = await post(http, stack, f"/dashboard/sessions/{unpaid['id']}/refund", form)
        assert status == 409 and "Only a paid session can be refunded" in refused, (status, refused[:2000])
    assert (await refunds_of(stack, merchant, disputed))["refunds"] == []


async def stack_trigger(stack: ServiceStack, *argv: str) -> str:
    """`paygate trigger` one Stripe event; its event id once the gateway applied it."""
    parser = argparse.ArgumentParser(prog="paygate trigger")
    trigger_cmd.configure(parser)
    event_id = "evt_" + secrets.token_hex(12)
    args = parser.parse_args([*argv, "--event-id", event_id])
    facts = {
        "gateway_url": stack.base_url,
        "grpc": {name: stack.addr(name) for name in ("session", "billing", "keys")},
        "webhook_secrets": {
            "stripe": stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"],
            "onecom": stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"],
        },
    }
    assert await trigger_cmd.trigger(args, facts) == 0, argv
    await wait_for_status(stack, "stripe", event_id, {"applied"})
    return event_id
