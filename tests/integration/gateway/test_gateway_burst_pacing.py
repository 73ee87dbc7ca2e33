"""During a burst of webhook replies, applying steps aside for the relay, which still applies every event."""

from __future__ import annotations

import asyncio

import pytest
from gateway_webhook_support import (
    FAST_RELAY_ENV,
    create_session,
    inbox,
    send_stripe,
    stripe_event,
    wait_for_session_status,
)

from support.stack import ServiceStack
from webhook_gateway.entrypoints.routes_webhooks import GAUGE, INLINE
from webhook_gateway.service_layer.relay import IngressGauge


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    # Busy above 0 replies in flight: every webhook counts as a burst, so nothing is applied inline.
    return {**stack_env, **FAST_RELAY_ENV, "PAYGATE_WEBHOOK_BUSY_IN_FLIGHT": "0"}


def test_gauge_is_busy_above_its_bound_and_for_a_moment_after() -> None:
    now = [100.0]
    gauge = IngressGauge(busy_above=1, hold_s=0.5, clock=lambda: now[0])
    assert not gauge.busy
    with gauge.answering():
        assert not gauge.busy
        with gauge.answering():
            assert gauge.busy
    assert gauge.in_flight == 0
    assert gauge.busy  # the burst holds briefly: the count flickers between requests
    now[0] += 0.6
    assert not gauge.busy


async def test_events_of_a_burst_are_answered_then_applied_by_the_relay(stack: ServiceStack) -> None:
    app = stack.gateway.app
    started: list[object] = []
    original_start = app[INLINE].start
    app[INLINE].start = lambda event: started.append(event) or original_start(event)  # type: ignore[method-assign]
    merchant = await stack.create_merchant()
    sessions = [await create_session(stack, merchant) for _ in range(6)]
    replies = await asyncio.gather(
        *(send_stripe(stack, stripe_event("payment_intent.succeeded", session)) for session in sessions)
    )
    assert all(status == 200 and body["duplicate"] is False for status, body in replies)
    assert started == []  # nothing was applied on the reply path
    assert app[GAUGE].in_flight == 0
    for session in sessions:
        await wait_for_session_status(stack, merchant, session["id"], "paid", timeout=20)
    rows = await inbox(stack)
    assert len(rows) == len(sessions) and {row["status"] for row in rows} == {"applied"}
