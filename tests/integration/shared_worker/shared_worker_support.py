"""Helpers of the shared-worker tests: a stack's merchant with endpoints and paid sessions, and the audit rows."""

from __future__ import annotations

import uuid
from typing import Any

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from support.stack import Merchant, ServiceStack

FAST_ENV = {
    "PAYGATE_ALLOW_LOOPBACK_WEBHOOKS": "true",
    "PAYGATE_MERCHANT_WEBHOOK_POLL_MS": "100",
    "PAYGATE_MERCHANT_WEBHOOK_BACKOFF_BASE_MS": "100",
    "PAYGATE_MERCHANT_WEBHOOK_BACKOFF_CAP_MS": "200",
    "PAYGATE_OUTBOX_POLL_MS": "100",
}


async def create_endpoint(
    stack: ServiceStack, merchant: Merchant, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    status, body = await stack.request(
        "POST",
        "/v1/webhook_endpoints",
        headers=merchant.headers,
        json={"url": url, "events": events or ["*"]},
    )
    assert status == 201, body
    return body


async def paid_session(stack: ServiceStack, merchant: Merchant, amount_minor: int = 9999) -> str:
    """A test session paid through ApplyPaymentEvent (the path every provider's webhook ends in)."""
    created = await stack.session.CreateSession(
        session_pb2.CreateSessionRequest(
            merchant_id=merchant.id, amount=f"{amount_minor / 100:.2f}", mode=common_pb2.MODE_TEST
        ),
        timeout=10,
    )
    await stack.session.ApplyPaymentEvent(
        session_pb2.ApplyPaymentEventRequest(
            session_id=created.session.id,
            provider="onecom",
            provider_event_id=f"evt_{uuid.uuid4().hex}",
            kind=session_pb2.EVENT_KIND_SUCCEEDED,
            amount=common_pb2.Money(amount_minor=str(amount_minor), currency="EUR", exponent=2),
            provider_reference=f"tx_{uuid.uuid4().hex[:8]}",
        ),
        timeout=10,
    )
    return created.session.id
