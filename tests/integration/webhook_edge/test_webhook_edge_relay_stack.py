"""On a running stack: the webhook handler stores what it read, and the relay pays the session from that
reading without parsing the provider's body again (issue 15 item 4)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from support import polling
from support.stack import ServiceStack
from webhook_gateway.entrypoints.routes_webhooks import INLINE
from webhook_gateway.providers.normalized_json import load_normalized
from webhook_gateway.providers.stripe_webhooks import normalize_stripe, verify_stripe
from webhook_gateway.service_layer import relay as relay_module


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    # Every webhook counts as a burst: nothing is applied on the reply path, the relay applies it all.
    return {
        **stack_env,
        "PAYGATE_WEBHOOK_BUSY_IN_FLIGHT": "0",
        "PAYGATE_WEBHOOK_RELAY_INTERVAL_MS": "50",
        "PAYGATE_WEBHOOK_LEASE_MS": "3000",
    }


async def _inbox_row(stack: ServiceStack, event_id: str) -> dict[str, Any] | None:
    conn = await stack.db.admin()
    try:
        row = await conn.fetchrow(
            "SELECT status, outcome, normalized::text AS normalized FROM gateway.inbox_events "
            "WHERE provider = 'stripe' AND event_id = $1",
            event_id,
        )
    finally:
        await conn.close()
    return dict(row) if row is not None else None


async def test_the_relay_pays_from_the_stored_reading_without_parsing_the_body(
    stack: ServiceStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[object] = []

    def refuse(*args: object, **kwargs: object) -> Any:
        reads.append(args)
        raise AssertionError("the relay parsed the provider's body again")

    monkeypatch.setattr(relay_module, "parse_json_object", refuse)
    started: list[object] = []
    monkeypatch.setattr(stack.gateway.app[INLINE], "start", started.append)

    merchant = await stack.create_merchant()
    status, session = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "25.00", "currency": "EUR", "provider": "stripe"},
        headers=merchant.headers,
    )
    assert status == 201, session
    secret = stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0]
    now = int(time.time())
    raw, headers = stripe_delivery(
        build_stripe_event("checkout.session.completed", session["id"], 2500, "EUR"), secret, now
    )
    status, reply = await stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    assert status == 200 and reply["duplicate"] is False, reply
    assert started == []  # left to the relay

    async def applied() -> dict[str, Any] | None:
        row = await _inbox_row(stack, reply["event_id"])
        return row if row is not None and row["status"] != "received" else None

    row = await polling.eventually(applied, timeout=20, interval=0.05, what="the relay's apply")
    assert (row["status"], row["outcome"]) == ("applied", "applied")
    assert reads == []
    envelope = verify_stripe(raw, headers["Stripe-Signature"], [secret], now)
    assert load_normalized(row["normalized"]) == normalize_stripe(envelope)
    status, paid = await stack.request("GET", f"/v1/sessions/{session['id']}", headers=merchant.headers)
    assert status == 200 and paid["status"] == "paid", paid
