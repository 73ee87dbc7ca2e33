"""Refund and dispute flows for integration tests: Stripe events built from Stripe's published object shapes,
a fake of Stripe's API that also refunds, paid and fulfilled sessions, and reads of what billing and keys hold.

Used by the refund tests and by the checkout, merchant-events and audit tests that need a paid session."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2
from paygate_dev.devtools.signing import standard_delivery, stripe_delivery
from paygate_dev.devtools.stripe_fixtures import (
    build_onecom_event,
    build_stripe_event,
    stripe_id,
    stripe_shape,
)
from support import polling
from support.stack import Merchant, ServiceStack
from support.stripe_fake import FakeStripe


def shape(name: Literal["charge", "refund", "dispute"]) -> dict[str, Any]:
    """A fresh copy of one of Stripe's published object shapes (the ones paygate_dev ships)."""
    return stripe_shape(name)


# ------------------------------------------------------------------------------------------------ Stripe events
def stripe_envelope(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or stripe_id("evt"),
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def refund_object(
    refund_id: str, amount: int, payment_intent: str | None, charge: str, status: str = "succeeded"
) -> dict[str, Any]:
    obj = shape("refund")
    obj.update(
        id=refund_id,
        amount=amount,
        currency="eur",
        payment_intent=payment_intent,
        charge=charge,
        status=status,
    )
    return obj


def charge_refunded(
    payment_intent: str | None, charge: str, paid: int, refunds: list[dict[str, Any]], total: int
) -> dict[str, Any]:
    obj = shape("charge")
    obj.update(
        id=charge,
        amount=paid,
        amount_captured=paid,
        amount_refunded=total,
        captured=True,
        currency="eur",
        payment_intent=payment_intent,
        refunded=total >= paid,
        refunds={
            "object": "list",
            "data": refunds,
            "has_more": False,
            "url": f"/v1/charges/{charge}/refunds",
        },
    )
    return stripe_envelope("charge.refunded", obj)


def dispute_event(
    event_type: str, dispute_id: str, payment_intent: str, charge: str, amount: int, status: str
) -> dict[str, Any]:
    obj = shape("dispute")
    obj.update(
        id=dispute_id,
        amount=amount,
        currency="eur",
        payment_intent=payment_intent,
        charge=charge,
        status=status,
    )
    return stripe_envelope(event_type, obj)


# ------------------------------------------------------------------------------------------------ deliveries
def stripe_secret(stack: ServiceStack) -> str:
    return stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0]


async def send_stripe(stack: ServiceStack, event: dict[str, Any]) -> dict[str, Any]:
    raw, headers = stripe_delivery(event, stripe_secret(stack), int(time.time()))
    status, body = await stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    assert status == 200, body
    return body


async def send_onecom(stack: ServiceStack, body: dict[str, Any], msg_id: str | None = None) -> dict[str, Any]:
    secret = stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"].split(",")[0]
    raw, headers = standard_delivery(body, secret, int(time.time()), msg_id)
    status, reply = await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers)
    assert status == 200, reply
    return reply


async def inbox_status(stack: ServiceStack, provider: str, event_id: str) -> str | None:
    conn = await stack.db.admin()
    try:
        return await conn.fetchval(
            "SELECT status FROM gateway.inbox_events WHERE provider = $1 AND event_id = $2",
            provider,
            event_id,
        )
    finally:
        await conn.close()


async def applied(stack: ServiceStack, provider: str, event_id: str) -> str:
    """Wait until the gateway has applied (or finally recorded) an event; its inbox status."""

    async def done() -> str | None:
        status = await inbox_status(stack, provider, event_id)
        return status if status not in (None, "received") else None

    return await polling.eventually(done, timeout=15, what=f"{provider}:{event_id} applied")


# ------------------------------------------------------------------------------------------------ sessions
@dataclass
class PaidSession:
    id: str
    payment_intent: str
    charge: str
    amount_minor: int
    key: str  # the customer's API key (revealed)


async def paid_session(
    stack: ServiceStack, merchant: Merchant, amount: str = "100.00", provider: str = "stripe"
) -> PaidSession:
    """A session paid by a signed webhook and fulfilled (invoice, customer key, access link)."""
    status, body = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": amount, "currency": "EUR", "provider": provider},
        headers=merchant.headers,
    )
    assert status == 201, body
    sid, minor = body["id"], body["amount_minor"]
    payment_intent = stripe_id("pi")
    if provider == "stripe":
        event = build_stripe_event("checkout.session.completed", sid, minor, "EUR", payment_intent)
        await applied(stack, "stripe", (await send_stripe(stack, event))["event_id"])
    else:
        event = build_onecom_event("payment.succeeded", sid, minor, "EUR", payment_intent)
        await applied(stack, "onecom", (await send_onecom(stack, event))["event_id"])
    session = await fulfilled(stack, merchant, sid)
    revealed = await stack.keys.RevealCustomerKey(
        keys_pb2.RevealCustomerKeyRequest(session_id=sid, access_token_id=session["access_token_id"] or "t"),
        timeout=5,
    )
    return PaidSession(sid, payment_intent, stripe_id("ch"), minor, revealed.secret)


async def fulfilled(stack: ServiceStack, merchant: Merchant, sid: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        reply = await stack.session.GetSession(
            session_pb2.GetSessionRequest(session_id=sid, merchant_id=merchant.id), timeout=5
        )
        if reply.fulfilment_status != "done":
            return None
        return {"access_token_id": reply.access_token_id, "invoice_id": reply.invoice_id}

    return await polling.eventually(check, timeout=20, what=f"session {sid} fulfilled")


async def session_json(stack: ServiceStack, merchant: Merchant, sid: str) -> dict[str, Any]:
    status, body = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
    assert status == 200, body
    return body


async def refund(
    stack: ServiceStack,
    merchant: Merchant,
    sid: str,
    body: dict[str, Any] | None = None,
    key: str | None = None,
) -> tuple[int, Any]:
    headers = dict(merchant.headers)
    if key:
        headers["Idempotency-Key"] = key
    return await stack.request("POST", f"/v1/sessions/{sid}/refund", json=body or {}, headers=headers)


async def verify_code(stack: ServiceStack, merchant: Merchant, key: str) -> str:
    status, body = await stack.request(
        "POST", "/v1/api_keys/verify", json={"key": key}, headers=merchant.headers
    )
    assert status == 200, body
    return body["code"]


async def credit_notes(stack: ServiceStack, merchant: Merchant, sid: str) -> list[billing_pb2.Invoice]:
    reply = await stack.billing.ListInvoices(
        billing_pb2.ListInvoicesRequest(
            merchant_id=merchant.id,
            mode=common_pb2.MODE_TEST,
            kind=billing_pb2.DOCUMENT_KIND_CREDIT_NOTE,
            limit=100,
        ),
        timeout=5,
    )
    return [i for i in reply.invoices if i.session_id == sid]


async def credited_sum(stack: ServiceStack, merchant: Merchant, sid: str) -> int:
    return sum(-int(i.total.amount_minor) for i in await credit_notes(stack, merchant, sid))


async def wait_credit_notes(
    stack: ServiceStack, merchant: Merchant, sid: str, total: int, count: int
) -> None:
    async def check() -> bool:
        notes = await credit_notes(stack, merchant, sid)
        return len(notes) == count and sum(-int(i.total.amount_minor) for i in notes) == total

    await polling.eventually(check, timeout=15, what=f"{count} credit notes for {total}")


async def merchant_event_types(stack: ServiceStack, merchant: Merchant) -> list[str]:
    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            "SELECT type FROM session.merchant_events WHERE merchant_id = $1 ORDER BY seq",
            uuid.UUID(merchant.id),
        )
    finally:
        await conn.close()
    return [r["type"] for r in rows]


# ------------------------------------------------------------------------------------------------ Stripe's API
@dataclass
class FakeStripeRefunds(FakeStripe):
    """FakeStripe (Checkout Sessions) plus `POST /v1/refunds` as Stripe's API reference describes it: a refund
    of a PaymentIntent for `amount` (default: what is left), refused with 400 `amount_too_large` beyond the
    charge, idempotent on the Idempotency-Key."""

    payments: dict[str, int] = field(default_factory=dict)  # payment intent -> amount charged
    refunded: dict[str, int] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    refund_status: str = "pending"
    # Called with the new refund before Stripe's answer leaves (a webhook racing the answer).
    on_refund: Any = None
    # False: the refund objects (the API's answer and what on_refund sends) carry no metadata, as a refund
    # asked for without it (by an older paygate) does: the fallback path.
    echo_metadata: bool = True
    # charge id -> its PaymentIntent, for `GET /v1/charges/{id}`.
    charges: dict[str, str] = field(default_factory=dict)

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_post("/v1/refunds", self._refund)
        app.router.add_get("/v1/charges/{id}", self._charge)

    def refund_calls(self) -> list[Any]:
        return self.calls("POST", "/v1/refunds")

    def charge_calls(self) -> list[Any]:
        return self.calls("GET", "/v1/charges/")

    async def _charge(self, request: web.Request) -> web.Response:
        """`GET /v1/charges/{id}`: the Charge object (Stripe's shape) with its `payment_intent`, or 404
        `resource_missing` as Stripe answers for an unknown id."""
        recorded = await self._record(request)
        if isinstance(recorded, web.Response):
            return recorded
        charge_id = request.match_info["id"]
        intent = self.charges.get(charge_id)
        if intent is None:
            return self._error(
                404, "invalid_request_error", f"No such charge: '{charge_id}'", "resource_missing"
            )
        paid = self.payments.get(intent, 0)
        obj = shape("charge")
        obj.update(
            id=charge_id,
            amount=paid,
            amount_captured=paid,
            amount_refunded=self.refunded.get(intent, 0),
            currency="eur",
            payment_intent=intent,
        )
        return web.json_response(obj)

    async def _refund(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if isinstance(recorded, web.Response):
            return recorded
        form = recorded.form

        async def work() -> tuple[int, dict[str, Any]] | web.Response:
            intent = form.get("payment_intent", "")
            if intent not in self.payments:
                return self._error(
                    404, "invalid_request_error", f"No such payment_intent: '{intent}'", "resource_missing"
                )
            left = self.payments[intent] - self.refunded.get(intent, 0)
            amount = int(form.get("amount", left))
            if amount > left:
                return self._error(
                    400,
                    "invalid_request_error",
                    f"Refund amount ({amount}) is greater than unrefunded amount",
                    "amount_too_large",
                )
            self.refunded[intent] = self.refunded.get(intent, 0) + amount
            obj = refund_object(
                "re_" + secrets.token_hex(12),
                amount,
                intent,
                "ch_" + secrets.token_hex(12),
                self.refund_status,
            )
            obj["metadata"] = {
                k[len("metadata[") : -1]: v
                for k, v in form.items()
                if k.startswith("metadata[") and self.echo_metadata
            }
            self.refunds[obj["id"]] = obj
            if self.on_refund is not None:
                await self.on_refund(obj)
            return 200, obj

        return await self._idempotent(recorded, work)
