"""No event is lost: session service outages, gateway restarts and sessions that are not known yet."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from gateway_webhook_support import (
    FAST_RELAY_ENV,
    create_session,
    inbox_event,
    onecom_event,
    send_onecom,
    send_stripe,
    session_of,
    stripe_event,
    wait_for_status,
)

from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from support.stack import ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_RELAY_ENV}


async def test_session_service_down_during_delivery(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant)
    event = stripe_event("payment_intent.succeeded", session)
    await stack.stop_service("session")
    try:
        status, body = await send_stripe(stack, event)
        assert status == 200 and body["duplicate"] is False
        # Kept, not applied, with the failure and a retry recorded.
        await asyncio.sleep(0.5)
        row = await inbox_event(stack, "stripe", event["id"])
        assert row is not None
        assert row["status"] == "received"
        assert row["attempts"] >= 1
        assert row["last_error"] and row["last_error"].startswith("unavailable")
    finally:
        await stack.start_service("session")
    row = await wait_for_status(stack, "stripe", event["id"], {"applied"}, timeout=20)
    assert row["attempts"] >= 2
    assert (await session_of(stack, merchant, session["id"]))["status"] == "paid"


async def test_gateway_restart_with_unapplied_events_in_the_inbox(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    sessions = [await create_session(stack, merchant, provider="onecom") for _ in range(3)]
    await stack.stop_service("session")
    events = [onecom_event("payment.succeeded", s) for s in sessions]
    ids = [f"msg_restart_{i}_{uuid.uuid4().hex[:8]}" for i in range(3)]
    for body, msg_id in zip(events, ids, strict=True):
        status, _ = await send_onecom(stack, body, msg_id=msg_id)
        assert status == 200
    await asyncio.sleep(0.3)
    await stack.stop_service("gateway")
    for msg_id in ids:
        row = await inbox_event(stack, "onecom", msg_id)
        assert row is not None and row["status"] == "received"

    await stack.start_service("session")
    await stack.start_service("gateway")
    for msg_id in ids:
        await wait_for_status(stack, "onecom", msg_id, {"applied"}, timeout=20)
    for s in sessions:
        assert (await session_of(stack, merchant, s["id"]))["status"] == "paid"


async def test_unknown_session_is_retried_then_quarantined(stack: ServiceStack) -> None:
    """An event for a session id nobody knows is retried for the window, then quarantined."""
    unknown_session = str(uuid.uuid4())
    event = build_stripe_event("payment_intent.succeeded", unknown_session, 1000, "EUR")
    status, body = await send_stripe(stack, event)
    assert status == 200 and body["duplicate"] is False

    await asyncio.sleep(0.4)
    row = await inbox_event(stack, "stripe", event["id"])
    assert row is not None and row["status"] == "received"
    assert row["last_error"].startswith("unknown_session")

    row = await wait_for_status(stack, "stripe", event["id"], {"quarantined"}, timeout=15)
    assert row["outcome"] == "unknown_session"
    assert row["merchant_id"] is None
    assert row["attempts"] >= 2  # retried during the window, not quarantined on the first miss
