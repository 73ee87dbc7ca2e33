"""Header bytes that are not UTF-8 (a Latin-1 "é", as a misconfigured proxy or a forger may send) are refused with
the usual 4xx, never a 5xx. aiohttp hands such bytes over as lone surrogates ("\\udce9"), which gRPC, PostgreSQL
and the signature libraries cannot encode: an `Authorization` or `Idempotency-Key` with one was a 500
`internal_error`, a Stripe-Signature one a 500, and a Standard Webhooks `webhook-id` or `webhook-signature` one a
503 `webhook_not_configured`, as if the deployment had no secret."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from yarl import URL

from paygate_dev.devtools.signing import encode_body, sign_standard, sign_stripe
from paygate_dev.devtools.stripe_fixtures import build_onecom_event, build_stripe_event
from support.stack import Merchant, ServiceStack

LATIN1 = b"\xe9"


@pytest.fixture(scope="module")
async def merchant(shared_stack: ServiceStack) -> Merchant:
    return await shared_stack.create_merchant("Header Bytes Ltd", "hdrbytes")


async def raw_request(
    base_url: str, method: str, path: str, headers: list[tuple[str, bytes]], body: bytes = b""
) -> tuple[int, Any]:
    """A request over a bare socket: HTTP clients refuse to send header bytes that are not UTF-8."""
    url = URL(base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    head = [
        f"{method} {path} HTTP/1.1".encode(),
        f"Host: {url.host}:{url.port}".encode(),
        b"Connection: close",
    ]
    head += [name.encode() + b": " + value for name, value in headers]
    head.append(f"Content-Length: {len(body)}".encode())
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    await writer.drain()
    reply = await reader.read()
    writer.close()
    status_head, _, reply_body = reply.partition(b"\r\n\r\n")
    status = int(status_head.split(b"\r\n", 1)[0].split()[1])
    try:
        return status, json.loads(reply_body)
    except ValueError:
        return status, reply_body[:300]


def _code(reply: Any) -> str | None:
    return reply.get("error", {}).get("code") if isinstance(reply, dict) else None


async def test_a_merchant_key_that_is_not_utf8_is_401(shared_stack: ServiceStack) -> None:
    for name, value in (("Authorization", b"Bearer sk_test_" + LATIN1), ("X-API-Key", b"sk_test_" + LATIN1)):
        status, reply = await raw_request(shared_stack.base_url, "GET", "/v1/sessions", [(name, value)])
        assert (status, _code(reply)) == (401, "unauthenticated"), (name, status, reply)


async def test_an_idempotency_key_that_is_not_utf8_is_400(
    shared_stack: ServiceStack, merchant: Merchant
) -> None:
    auth = [(name, value.encode()) for name, value in merchant.headers.items()]
    auth.append(("Content-Type", b"application/json"))
    key = [("Idempotency-Key", b"order-" + LATIN1)]
    for path, body in (
        ("/v1/sessions", {"amount": "10.00", "currency": "EUR"}),
        ("/v1/webhook_endpoints", {"url": "https://example.com/hook"}),
        ("/v1/merchant_keys", {}),
        # Refused before the session or key is looked up, so made-up ids do.
        ("/v1/sessions/5f0c3a52-8d9e-4a53-9a55-3c9a9b8f4e11/refund", {}),
        ("/v1/api_keys/5f0c3a52-8d9e-4a53-9a55-3c9a9b8f4e11/roll", {}),
    ):
        status, reply = await raw_request(
            shared_stack.base_url, "POST", path, auth + key, json.dumps(body).encode()
        )
        assert (status, _code(reply)) == (400, "invalid_idempotency_key"), (path, status, reply)


async def test_webhook_headers_that_are_not_utf8_are_400(shared_stack: ServiceStack) -> None:
    now = int(time.time())
    session_id = "5f0c3a52-8d9e-4a53-9a55-3c9a9b8f4e11"
    onecom = encode_body(
        build_onecom_event("payment.succeeded", session_id, 1000, "EUR", transaction_id="t1")
    )
    signed = sign_standard(onecom, "msg_1", shared_stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"], now)
    standard = [(name, value.encode()) for name, value in signed.items()]
    for replaced, value in (("webhook-id", b"msg_" + LATIN1), ("webhook-signature", b"v1," + LATIN1 * 4)):
        headers = [(name, value if name == replaced else original) for name, original in standard]
        for provider in ("onecom", "web3"):
            status, reply = await raw_request(
                shared_stack.base_url, "POST", f"/webhooks/{provider}", headers, onecom
            )
            assert status == 400, (provider, replaced, status, reply)
    stripe = encode_body(build_stripe_event("payment_intent.succeeded", session_id, 1000, "EUR", created=now))
    header = sign_stripe(stripe, shared_stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"], now).encode()
    status, reply = await raw_request(
        shared_stack.base_url,
        "POST",
        "/webhooks/stripe",
        [("Stripe-Signature", header + b",v1=" + LATIN1)],
        stripe,
    )
    assert (status, _code(reply)) == (400, "invalid_signature"), (status, reply)
