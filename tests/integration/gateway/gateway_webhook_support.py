"""Helpers for the webhook gateway integration tests: signed deliveries, inbox reads, waiting for the relay."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from paygate_dev.devtools.signing import standard_delivery, stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_onecom_event, build_stripe_event
from support import polling
from support.stack import Merchant, ServiceStack

# Short relay timings so that retries, outages and the unknown-session window fit in a test.
FAST_RELAY_ENV = {
    "PAYGATE_WEBHOOK_RELAY_INTERVAL_MS": "50",
    "PAYGATE_WEBHOOK_RETRY_BASE_MS": "50",
    "PAYGATE_WEBHOOK_RETRY_MAX_MS": "300",
    "PAYGATE_WEBHOOK_LEASE_MS": "3000",
    "PAYGATE_WEBHOOK_UNKNOWN_SESSION_WINDOW_S": "2",
}


def stripe_secret(stack: ServiceStack) -> str:
    return stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0]


def onecom_secret(stack: ServiceStack) -> str:
    return stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"].split(",")[0]


async def create_session(
    stack: ServiceStack,
    merchant: Merchant,
    amount: str = "25.00",
    currency: str = "EUR",
    provider: str = "stripe",
) -> dict[str, Any]:
    status, body = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": amount, "currency": currency, "provider": provider},
        headers=merchant.headers,
    )
    assert status == 201, body
    return body


async def send_raw(
    stack: ServiceStack, provider: str, raw: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    return await stack.request("POST", f"/webhooks/{provider}", data=raw, headers=headers)


async def send_stripe(
    stack: ServiceStack, event: dict[str, Any], *, secret: str | None = None, timestamp: int | None = None
) -> tuple[int, Any]:
    raw, headers = stripe_delivery(event, secret or stripe_secret(stack), timestamp or int(time.time()))
    return await send_raw(stack, "stripe", raw, headers)


def stripe_event(event_type: str, session: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("amount_minor", session["amount_minor"])
    kwargs.setdefault("currency", session["currency"])
    return build_stripe_event(event_type, session["id"], **kwargs)


async def send_onecom(
    stack: ServiceStack, body: dict[str, Any], *, msg_id: str | None = None, timestamp: int | None = None
) -> tuple[int, Any]:
    raw, headers = standard_delivery(body, onecom_secret(stack), timestamp or int(time.time()), msg_id)
    return await send_raw(stack, "onecom", raw, headers)


def onecom_event(event_type: str, session: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("amount_minor", session["amount_minor"])
    kwargs.setdefault("currency", session["currency"])
    return build_onecom_event(event_type, session["id"], **kwargs)


async def inbox(stack: ServiceStack, where: str = "TRUE", *args: Any) -> list[dict[str, Any]]:
    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            f"SELECT * FROM gateway.inbox_events WHERE {where} ORDER BY received_at", *args
        )
    finally:
        await conn.close()
    return [dict(row) for row in rows]


async def inbox_event(stack: ServiceStack, provider: str, event_id: str) -> dict[str, Any] | None:
    rows = await inbox(stack, "provider = $1 AND event_id = $2", provider, event_id)
    return rows[0] if rows else None


async def session_of(stack: ServiceStack, merchant: Merchant, session_id: str) -> dict[str, Any]:
    status, body = await stack.request("GET", f"/v1/sessions/{session_id}", headers=merchant.headers)
    assert status == 200, body
    return body


async def wait_until(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> Any:
    return await polling.eventually(check, timeout=timeout, interval=interval, what=what)


async def wait_for_status(
    stack: ServiceStack, provider: str, event_id: str, statuses: set[str], timeout: float = 10.0
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        row = await inbox_event(stack, provider, event_id)
        return row if row is not None and row["status"] in statuses else None

    return await wait_until(check, timeout=timeout, what=f"{provider}:{event_id} in {statuses}")


async def wait_for_session_status(
    stack: ServiceStack, merchant: Merchant, session_id: str, status: str, timeout: float = 10.0
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body = await session_of(stack, merchant, session_id)
        return body if body["status"] == status else None

    return await wait_until(check, timeout=timeout, what=f"session {session_id} {status}")
