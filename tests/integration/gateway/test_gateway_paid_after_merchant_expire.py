"""A merchant's walk: the merchant expires a Stripe session, then Stripe reports it paid. The money is
quarantined as `payment_on_closed_session`, and its note says whether it was paid before the session closed
(`paid_before_expiry`: accepting it is an easy call) or after the merchant closed it (`paid_after_expiry`),
however far the session's own `expires_at` still was."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from gateway_webhook_support import FAST_RELAY_ENV, send_stripe, stripe_event, wait_for_status

from support.stack import Merchant, ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_RELAY_ENV}


async def _expired_stripe_session(stack: ServiceStack, merchant: Merchant) -> dict[str, Any]:
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "9.99", "currency": "EUR", "provider": "stripe"},
        headers=merchant.headers,
    )
    assert status == 201, created
    status, expired = await stack.request(
        "POST", f"/v1/sessions/{created['id']}/expire", headers=merchant.headers
    )
    assert status == 200 and expired["status"] == "expired", expired
    return expired


async def _quarantined_note(stack: ServiceStack, merchant: Merchant, event: dict[str, Any]) -> str:
    await wait_for_status(stack, "stripe", event["id"], {"quarantined"})
    status, listed = await stack.request("GET", "/v1/quarantine?status=open", headers=merchant.headers)
    assert status == 200, listed
    [entry] = [e for e in listed["data"] if e["provider_event_id"] == event["id"]]
    assert entry["reason"] == "payment_on_closed_session"
    return str(entry["note"])


async def test_money_paid_after_the_merchant_expired_the_session_is_paid_after_expiry(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    session = await _expired_stripe_session(stack, merchant)
    await asyncio.sleep(1.1)  # Stripe's `created` is whole seconds: this one is after the expire
    event = stripe_event("checkout.session.completed", session, created=int(time.time()))
    status, body = await send_stripe(stack, event)
    assert status == 200 and body["duplicate"] is False
    assert await _quarantined_note(stack, merchant, event) == "paid_after_expiry"


async def test_money_paid_before_the_merchant_expired_the_session_is_paid_before_expiry(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    paid_at = int(time.time()) - 1
    session = await _expired_stripe_session(stack, merchant)
    event = stripe_event("checkout.session.completed", session, created=paid_at)
    status, body = await send_stripe(stack, event)
    assert status == 200 and body["duplicate"] is False
    assert await _quarantined_note(stack, merchant, event) == "paid_before_expiry"
