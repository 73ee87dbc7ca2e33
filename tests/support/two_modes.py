"""Test and live mode side by side for integration tests (issue 12): a stack taking signed deliveries of both
modes, a merchant with a key of each mode, signed deliveries in either mode, and waits on the real stack.

Used by the modes tests and by the gateway and audit tests that need both modes."""

from __future__ import annotations

import base64
import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate_dev.devtools.signing import standard_delivery, stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_onecom_event, build_stripe_event
from support import polling
from support.database import TestDatabase
from support.stack import Merchant, ServiceStack, default_stack_env, running_stack


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# Live Standard Webhooks secrets beside the test ones that make_test_secrets() sets (unsuffixed = test).
LIVE_SECRETS_ENV = {
    "PAYGATE_ONECOM_WEBHOOK_SECRETS_LIVE": whsec(),
    "PAYGATE_WEB3_WEBHOOK_SECRETS_LIVE": whsec(),
    "PAYGATE_WEBHOOK_RELAY_INTERVAL_MS": "50",
    "PAYGATE_WEBHOOK_RETRY_BASE_MS": "50",
    "PAYGATE_WEBHOOK_RETRY_MAX_MS": "300",
}


@contextlib.asynccontextmanager
async def two_mode_stack(
    database: TestDatabase, extra_env: dict[str, str] | None = None
) -> AsyncIterator[ServiceStack]:
    """A module's stack on a fresh database, taking signed deliveries of both modes."""
    await database.reset()
    env = {**default_stack_env(), **LIVE_SECRETS_ENV, **(extra_env or {})}
    async with running_stack(database, env) as services:
        yield services


@dataclass
class TwoModeMerchant:
    """One merchant, one secret key per mode."""

    id: str
    test: Merchant
    live: Merchant

    def key(self, mode: str) -> Merchant:
        return self.test if mode == "test" else self.live


async def two_mode_merchant(stack: ServiceStack, name: str, prefix: str) -> TwoModeMerchant:
    test = await stack.create_merchant(name, prefix, mode="test")
    reply = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=test.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    await stack.complete_billing_profile(test.id, name)  # live sessions need it (contract §9)
    return TwoModeMerchant(test.id, test, Merchant(test.id, reply.secret_key, name))


async def create_session(stack: ServiceStack, key: Merchant, **body: Any) -> dict[str, Any]:
    body.setdefault("amount", "25.00")
    body.setdefault("currency", "EUR")
    status, reply = await stack.request("POST", "/v1/sessions", json=body, headers=key.headers)
    assert status == 201, reply
    return reply


def onecom_secret(stack: ServiceStack, mode: str) -> str:
    name = "PAYGATE_ONECOM_WEBHOOK_SECRETS" + ("_LIVE" if mode == "live" else "")
    return stack.env[name].split(",")[0]


async def send_onecom(
    stack: ServiceStack, mode: str, session: dict[str, Any], event_type: str = "payment.succeeded"
) -> str:
    """A One.com event signed with `mode`'s secret; returns its event id (the webhook-id)."""
    body = build_onecom_event(event_type, session["id"], session["amount_minor"], session["currency"])
    event_id = f"msg_{uuid.uuid4().hex}"
    raw, headers = standard_delivery(body, onecom_secret(stack, mode), int(time.time()), event_id)
    status, reply = await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers)
    assert status == 200, reply
    return event_id


async def send_stripe(stack: ServiceStack, mode: str, session: dict[str, Any]) -> str:
    """A Stripe `payment_intent.succeeded` whose livemode says `mode`; returns its event id."""
    event = build_stripe_event(
        "payment_intent.succeeded",
        session["id"],
        session["amount_minor"],
        session["currency"],
        livemode=mode == "live",
    )
    secret = stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0]
    raw, headers = stripe_delivery(event, secret, int(time.time()))
    status, reply = await stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    assert status == 200, reply
    return event["id"]


async def admin_fetchrow(stack: ServiceStack, sql: str, *args: Any) -> Any:
    conn = await stack.db.admin()
    try:
        return await conn.fetchrow(sql, *args)
    finally:
        await conn.close()


async def final_inbox_row(stack: ServiceStack, provider: str, event_id: str) -> dict[str, Any]:
    """The inbox row once the event has a final status (the apply runs after the 200)."""

    async def check() -> dict[str, Any] | None:
        row = await admin_fetchrow(
            stack,
            "SELECT * FROM gateway.inbox_events WHERE provider = $1 AND event_id = $2",
            provider,
            event_id,
        )
        return dict(row) if row is not None and row["status"] != "received" else None

    return await polling.eventually(check, timeout=20, interval=0.05, what=f"{provider}:{event_id} final")


async def fulfilled(stack: ServiceStack, key: Merchant, session_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        status, body = await stack.request("GET", f"/v1/sessions/{session_id}", headers=key.headers)
        assert status == 200, body
        return body if body["fulfilment_status"] == "done" and body["access_url"] else None

    return await polling.eventually(check, timeout=30, interval=0.1, what=f"session {session_id} fulfilled")
