"""The OpenAPI document's `webhooks` (contract §7) hold what paygate really POSTs to a merchant's endpoint.

A developer generates types from `GET /openapi.json` and validates what arrives against it, so the document's
`webhooks[<type>]` must describe the body and the Standard Webhooks headers of every event type the code can
emit. Checked here the way a merchant receives them: a real stack, an endpoint subscribed to everything that
points at an aiohttp receiver in this test, real changes (payments, a refund, a refund that failed, one that
Stripe canceled, an expiry, a failure, a quarantined payment, a Stripe dispute won and an inquiry that escalates
and is lost, a revoked customer key), and every body validated with jsonschema against the served document, `$ref`s resolved inside it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from merchant_events_support import FAST_ENV, Delivery, Receiver, create_endpoint, eventually, paid_session
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from standardwebhooks.webhooks import Webhook

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from session_service.domain.merchant_events import EVENT_TYPES

# The refund tests' Stripe helpers: disputes arrive as signed Stripe webhooks.
from support import refund_flows
from support.openapi_meta import openapi_31_problems
from support.stack import Merchant, ServiceStack

# The served document is registered under this URI so that its own `#/components/...` references resolve.
DOCUMENT_URI = "urn:paygate:openapi"
STANDARD_WEBHOOK_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# jsonschema's own formats, `uuid` among them; its `date-time` needs a package this repo does not install, so
# that one is checked here (a date and a time with an offset, as every renderer writes it).
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return "T" in value and datetime.fromisoformat(value).tzinfo is not None


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_ENV}


def _pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def document_validator(document: dict[str, Any], *where: str) -> Draft202012Validator:
    """The validator of the schema at `where` in the document, with the whole document as its registry."""
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, DRAFT202012.create_resource(document))
    return Draft202012Validator(
        {"$ref": DOCUMENT_URI + "#" + _pointer(*where)},
        registry=registry,
        format_checker=FORMATS,
    )


def request_validator(document: dict[str, Any], event_type: str) -> Draft202012Validator:
    """The validator of `webhooks[event_type]`'s JSON request body."""
    return document_validator(
        document, "webhooks", event_type, "post", "requestBody", "content", "application/json", "schema"
    )


def _messages(validator: Draft202012Validator, body: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in validator.iter_errors(body)
    ]


def _errors(document: dict[str, Any], event_type: str, body: Any) -> list[str]:
    return _messages(request_validator(document, event_type), body)


def _header_errors(document: dict[str, Any], event_type: str, delivery: Delivery) -> list[str]:
    """The operation's header parameters: each listed, required, present and valid in the delivery."""
    operation = document["webhooks"][event_type]["post"]
    params = {p["name"].lower(): p for p in operation["parameters"] if p["in"] == "header"}
    problems = [f"{name}: not documented" for name in STANDARD_WEBHOOK_HEADERS if name not in params]
    received = {k.lower(): v for k, v in delivery.headers.items()}
    for name, param in params.items():
        if not param.get("required"):
            problems.append(f"{name}: not required")
        if name not in received:
            problems.append(f"{name}: documented but not sent")
            continue
        validator = Draft202012Validator(param["schema"], format_checker=FORMATS)
        problems.extend(f"{name}: {e.message}" for e in validator.iter_errors(received[name]))
    return problems


async def _served_document(stack: ServiceStack) -> dict[str, Any]:
    status, document = await stack.request("GET", "/openapi.json")
    assert status == 200, document
    assert isinstance(document, dict)
    return document


async def test_every_event_type_the_code_emits_has_a_webhooks_entry(stack: ServiceStack) -> None:
    document = await _served_document(stack)
    webhooks = document.get("webhooks", {})
    # EVENT_TYPES is the session service's own list (an endpoint subscribes to these, record_event refuses
    # any other): the document must neither miss one nor invent one.
    assert set(webhooks) == set(EVENT_TYPES), sorted(set(webhooks) ^ set(EVENT_TYPES))
    for event_type, item in webhooks.items():
        operation = item["post"]
        assert operation["requestBody"]["required"] is True, event_type
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema, event_type
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header" and p["required"]}
        assert headers == set(STANDARD_WEBHOOK_HEADERS), (event_type, headers)
        # 2xx is delivered, anything else is retried: both documented.
        assert {"2XX", "default"} <= set(operation["responses"]), (event_type, operation["responses"])
    # And the whole document, webhooks included, is valid OpenAPI 3.1 (the OpenAPI Initiative's meta-schema).
    problems = [problem[:300] for problem in openapi_31_problems(document)]
    assert not problems, "\n".join(problems[:10])


async def _fulfilled(stack: ServiceStack, merchant: Merchant, session_id: str) -> None:
    async def done() -> bool:
        reply = await stack.session.GetSession(
            session_pb2.GetSessionRequest(session_id=session_id, merchant_id=merchant.id), timeout=5
        )
        return reply.fulfilment_status == "done"

    await eventually(done, timeout=30)


async def _open_session(stack: ServiceStack, merchant: Merchant) -> str:
    status, body = await stack.request(
        "POST", "/v1/sessions", json={"amount": "10.00", "currency": "EUR"}, headers=merchant.headers
    )
    assert status == 201, body
    return str(body["id"])


async def _apply(stack: ServiceStack, session_id: str, kind: int, minor: int) -> Any:
    return await stack.session.ApplyPaymentEvent(
        session_pb2.ApplyPaymentEventRequest(
            session_id=session_id,
            provider="onecom",
            provider_event_id=f"evt_{uuid.uuid4().hex}",
            kind=kind,
            amount=common_pb2.Money(amount_minor=str(minor), currency="EUR", exponent=2),
            provider_reference=f"tx_{uuid.uuid4().hex[:8]}",
        ),
        timeout=10,
    )


async def _cause_every_event(stack: ServiceStack, merchant: Merchant) -> None:
    # session.paid, then invoice.issued (fulfilment), then a full refund made outside paygate:
    # session.refunded, credit_note.issued, and the session's customer key revoked (customer_key.revoked).
    refunded = await paid_session(stack, merchant)
    await _fulfilled(stack, merchant, refunded)
    status, body = await stack.request(
        "POST",
        f"/v1/sessions/{refunded}/refund",
        json={"provider_refund_id": "re_outside_openapi", "reason": "customer asked"},
        headers=merchant.headers,
    )
    assert status == 202, body
    # session.expired (the merchant's expire) and session.failed (the provider's failure).
    expired = await _open_session(stack, merchant)
    status, body = await stack.request("POST", f"/v1/sessions/{expired}/expire", headers=merchant.headers)
    assert status == 200, body
    failed = await _open_session(stack, merchant)
    await _apply(stack, failed, session_pb2.EVENT_KIND_FAILED, 1000)
    # quarantine.created: a payment of the wrong amount.
    mismatched = await _open_session(stack, merchant)
    assert (await _apply(stack, mismatched, session_pb2.EVENT_KIND_SUCCEEDED, 500)).quarantine_id
    # dispute.created and dispute.closed (won, and lost: that one also refunds and credits), through Stripe;
    # the lost one opens as an inquiry that escalates to a chargeback first (dispute.updated).
    for outcome, steps in (
        ("won", [("charge.dispute.created", "needs_response")]),
        (
            "lost",
            [
                ("charge.dispute.created", "warning_needs_response"),
                ("charge.dispute.updated", "needs_response"),
            ],
        ),
    ):
        paid = await refund_flows.paid_session(stack, merchant, "20.00")
        dispute_id = f"dp_{outcome}_{uuid.uuid4().hex[:8]}"
        for event_type, status_ in (*steps, ("charge.dispute.closed", outcome)):
            event = refund_flows.dispute_event(
                event_type, dispute_id, paid.payment_intent, paid.charge, paid.amount_minor, status_
            )
            sent = await refund_flows.send_stripe(stack, event)
            assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    # refund.succeeded came with the refunds above; refund.failed: a refund Stripe reports pending, then failed.
    refunding = await refund_flows.paid_session(stack, merchant, "20.00")
    refund_id = f"re_failing_{uuid.uuid4().hex[:8]}"
    for status_ in ("pending", "failed"):
        obj = refund_flows.refund_object(refund_id, 500, refunding.payment_intent, refunding.charge, status_)
        sent = await refund_flows.send_stripe(stack, refund_flows.stripe_envelope("refund.updated", obj))
        assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    # refund.canceled: a refund Stripe reports pending, then canceled.
    canceling_id = f"re_canceling_{uuid.uuid4().hex[:8]}"
    for status_ in ("pending", "canceled"):
        obj = refund_flows.refund_object(
            canceling_id, 300, refunding.payment_intent, refunding.charge, status_
        )
        sent = await refund_flows.send_stripe(stack, refund_flows.stripe_envelope("refund.updated", obj))
        assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"


async def test_real_deliveries_of_every_event_type_match_the_documented_webhooks(
    stack: ServiceStack, receiver: Receiver
) -> None:
    # The test stack starts keys before session; restart keys so that it knows the session service's address
    # (its forwarder sends customer_key.revoked there).
    await stack.stop_service("keys")
    await stack.start_service("keys")
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, receiver.url, ["*"])
    await _cause_every_event(stack, merchant)

    async def every_type_arrived() -> bool:
        return {d.json.get("type") for d in receiver.deliveries} >= set(EVENT_TYPES)

    await eventually(every_type_arrived, timeout=60)
    document = await _served_document(stack)
    assert "webhooks" in document, sorted(document)
    signer = Webhook(endpoint["secret"])
    problems: list[str] = []
    for delivery in receiver.deliveries:
        body = delivery.json
        event_type = body["type"]
        # What a receiver does first: the documented headers verify the exact bytes.
        signer.verify(delivery.body, delivery.headers)
        problems += [f"{event_type} {body['id']}: {p}" for p in _errors(document, event_type, body)]
        problems += [
            f"{event_type} {body['id']}: {p}" for p in _header_errors(document, event_type, delivery)
        ]
    assert not problems, "\n".join(problems)

    # GET /v1/merchant_events lists the same bodies: each is held to the list's item schema, which must be as
    # exact as the webhooks' (a client's types are generated from it), so a body of one type dressed as
    # another's is refused by it.
    listed = await _listed_events(stack, merchant)
    assert {event["type"] for event in listed} >= set(EVENT_TYPES)
    item = document_validator(document, "components", "schemas", "MerchantEvent")
    problems = [f"{e['type']} {e['id']}: {p}" for e in listed for p in _messages(item, e)]
    assert not problems, "\n".join(problems)
    by_type = {event["type"]: event for event in listed}
    forged = {**by_type["session.paid"], "data": by_type["invoice.issued"]["data"]}
    assert _messages(item, forged), "MerchantEvent accepted a session.paid whose object is an invoice"
    assert _messages(item, {**by_type["session.paid"], "data": {"object": {}}}), "an empty object passed"


async def _listed_events(stack: ServiceStack, merchant: Merchant) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    after = ""
    while True:
        query = "limit=100" + (f"&starting_after={after}" if after else "")
        status, page = await stack.request("GET", f"/v1/merchant_events?{query}", headers=merchant.headers)
        assert status == 200, page
        listed += page["data"]
        if not page["has_more"]:
            return listed
        after = page["data"][-1]["id"]
