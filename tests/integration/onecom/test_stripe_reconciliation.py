"""Reconciliation reads Stripe too: a Checkout Session completed on Stripe's page whose webhook never came is
applied as Stripe's `checkout.session.completed` would be (Stripe's API faked by a local HTTP server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from support.polling import eventually
from support.stack import ServiceStack
from support.stripe_fake import FakeStripe


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    async with FakeStripe() as fake:
        yield fake


@pytest.fixture
def onecom_env(onecom_env: dict[str, str], fake_stripe: FakeStripe) -> dict[str, str]:
    return {**onecom_env, **fake_stripe.env()}


async def _session(stack: ServiceStack, headers: dict[str, str], sid: str) -> dict[str, Any]:
    status, body = await stack.request("GET", f"/v1/sessions/{sid}", headers=headers)
    assert status == 200, body
    return body


async def test_completed_stripe_checkout_without_webhook_is_paid_by_reconciliation(
    stack: ServiceStack, fake_stripe: FakeStripe
) -> None:
    merchant = await stack.create_merchant()
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "12.34", "currency": "EUR", "provider": "stripe", "expires_in": 3600},
        headers=merchant.headers,
    )
    assert status == 201 and "provider_checkout_url" in created, created
    sid = created["id"]
    [cs_id] = fake_stripe.sessions
    # The customer pays on Stripe's page; Stripe's webhook is lost.
    fake_stripe.complete(cs_id)
    fake_stripe.sessions[cs_id]["payment_intent"] = "pi_reconciled_1"

    async def paid() -> dict[str, Any] | None:
        session = await _session(stack, merchant.headers, sid)
        return session if session["status"] == "paid" else None

    await eventually(paid, timeout=30, interval=0.2, what="reconciliation to pay the Stripe session")
    assert fake_stripe.calls("GET", f"/v1/checkout/sessions/{cs_id}")  # it asked Stripe's API

    async def settled() -> list[dict[str, Any]] | None:
        _, listed = await stack.request("GET", "/v1/events", headers=merchant.headers)
        events = [e for e in listed["data"] if e["session_id"] == sid]
        return events if events and all(e["status"] != "received" for e in events) else None

    [event] = await eventually(settled, timeout=15, what="the reconciled event's verdict")
    assert (event["provider"], event["type"], event["source"]) == (
        "stripe",
        "checkout.session.completed",
        "reconcile",
    )
    assert (event["status"], event["provider_reference"]) == ("applied", "pi_reconciled_1")


async def test_open_stripe_checkout_is_only_read(stack: ServiceStack, fake_stripe: FakeStripe) -> None:
    merchant = await stack.create_merchant()
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "12.34", "currency": "EUR", "provider": "stripe", "expires_in": 3600},
        headers=merchant.headers,
    )
    assert status == 201, created
    [cs_id] = fake_stripe.sessions

    async def read() -> bool:
        return bool(fake_stripe.calls("GET", f"/v1/checkout/sessions/{cs_id}"))

    await eventually(read, timeout=30, interval=0.2, what="a read of the open Checkout Session")
    session = await _session(stack, merchant.headers, created["id"])
    assert session["status"] == "created"
    status, listed = await stack.request("GET", "/v1/events", headers=merchant.headers)
    assert [e for e in listed["data"] if e["session_id"] == created["id"]] == []
