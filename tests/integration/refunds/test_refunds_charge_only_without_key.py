"""Without PAYGATE_STRIPE_API_KEY a refund event that names only a charge no earlier event linked cannot be
matched (paygate has no way to ask Stripe): it is quarantined, never dropped, and never touches a session."""

from __future__ import annotations

import pytest

from support.refund_flows import (
    applied,
    paid_session,
    refund_object,
    send_stripe,
    session_json,
    stripe_envelope,
)
from support.stack import ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    # The unknown-session window is what an unmatched event waits before it is quarantined.
    return {
        **stack_env,
        "PAYGATE_WEBHOOK_UNKNOWN_SESSION_WINDOW_S": "1",
        "PAYGATE_WEBHOOK_RETRY_MAX_MS": "300",
    }


async def test_a_charge_only_refund_without_an_api_key_is_quarantined(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "20.00")
    made = stripe_envelope("refund.created", refund_object("re_unlinked", 500, None, paid.charge))
    event_id = (await send_stripe(stack, made))["event_id"]
    assert await applied(stack, "stripe", event_id) == "quarantined"
    session = await session_json(stack, merchant, paid.id)
    assert session["refunds"] == [] and session["amount_refunded"] == "0.00"
