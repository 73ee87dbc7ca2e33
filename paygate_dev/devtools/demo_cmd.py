"""`paygate demo`: the seed flow against the running stack, one printed step at a time.

Create a Stripe session, deliver a correctly signed `checkout.session.completed` webhook (as Stripe would
after the customer paid), wait until the session is paid and fulfilled, then show the invoice number, the
customer key's display hint and the access link. It needs no Stripe account: without a Stripe API key the
session simply has no Stripe page, and the signed webhook drives the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from typing import Any

import aiohttp

from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from paygate_runtime.stack import load_stack, stale_key_message

TERMINAL_FAILURES = {"failed", "expired"}


class DemoFailed(Exception):
    """A step did not do what the flow needs; the message says which and why."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--amount", default="99.99", help="amount in major units (default 99.99)")
    parser.add_argument("--currency", default="EUR", help="currency (default EUR)")
    parser.add_argument("--email", default="demo.customer@example.com", help="customer email")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for fulfilment")


def _step(number: int, text: str) -> None:
    print(f"[{number}/4] {text}", flush=True)


def _detail(label: str, value: object) -> None:
    print(f"      {label:<16} {value}", flush=True)


class Gateway:
    """The gateway, called with stack.json's merchant key; a 401 to it fails with `unauthorized` (a line that
    says the key no longer works and how to get one)."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, api_key: str, unauthorized: str | None = None
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.unauthorized = unauthorized

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> tuple[int, Any]:
        sent = dict(headers or {})
        if auth:
            sent["X-API-Key"] = self.api_key
        try:
            async with self.http.request(
                method, self.base_url + path, json=json_body, data=data, headers=sent
            ) as response:
                if auth and response.status == 401 and self.unauthorized:
                    raise DemoFailed(self.unauthorized)
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = await response.text()
                return response.status, body
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DemoFailed(
                f"cannot reach the gateway at {self.base_url} ({type(error).__name__}); is `paygate up` running?"
            ) from None


def _explain(status: int, body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return f"HTTP {status} {body['error'].get('code')}: {body['error'].get('message')}"
    return f"HTTP {status}: {str(body)[:200]}"


async def create_session(gateway: Gateway, args: argparse.Namespace) -> dict[str, Any]:
    status, body = await gateway.call(
        "POST",
        "/v1/sessions",
        json_body={
            "amount": args.amount,
            "currency": args.currency,
            "provider": "stripe",
            "customer_email": args.email,
            "metadata": {"source": "paygate demo"},
        },
        headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"},
    )
    if status != 201:
        raise DemoFailed(f"creating the session failed: {_explain(status, body)}")
    return body


async def deliver_webhook(gateway: Gateway, session: dict[str, Any], secret: str) -> dict[str, Any]:
    event = build_stripe_event(
        "checkout.session.completed",
        session["id"],
        int(session["amount_minor"]),
        session["currency"],
        livemode=session.get("mode") == "live",
    )
    raw, headers = stripe_delivery(event, secret, int(time.time()))
    status, body = await gateway.call("POST", "/webhooks/stripe", data=raw, headers=headers, auth=False)
    if status != 200 or not isinstance(body, dict) or body.get("received") is not True:
        raise DemoFailed(f"the gateway did not accept the signed webhook: {_explain(status, body)}")
    return body


async def wait_until_fulfilled(gateway: Gateway, session_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: tuple[str, str] | None = None
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = await gateway.call("GET", f"/v1/sessions/{session_id}")
        if status != 200:
            raise DemoFailed(f"reading the session failed: {_explain(status, body)}")
        last = body
        now = (body["status"], body.get("fulfilment_status", "none"))
        if now != seen:
            _detail("status", f"{now[0]} (fulfilment: {now[1]})")
            seen = now
        if body["status"] in TERMINAL_FAILURES:
            raise DemoFailed(f"the session became {body['status']} instead of paid")
        if body["status"] == "paid" and body.get("fulfilment_status") == "done" and body.get("access_url"):
            return body
        await asyncio.sleep(0.25)
    raise DemoFailed(
        f"the session was not paid and fulfilled within {timeout:g}s (last: status {last.get('status')}, "
        f"fulfilment {last.get('fulfilment_status')}); check `paygate events` and the service logs"
    )


async def invoice_number(gateway: Gateway, session: dict[str, Any]) -> str:
    if session.get("invoice_number"):
        return str(session["invoice_number"])
    status, body = await gateway.call("GET", f"/v1/invoices/{session['invoice_id']}")
    if status != 200:
        raise DemoFailed(f"reading the invoice failed: {_explain(status, body)}")
    return str(body["number"])


async def key_hint(gateway: Gateway, session: dict[str, Any]) -> str:
    cursor = ""
    for _ in range(50):  # pages of 100; the demo's key is normally on the first
        query = f"?limit=100&starting_after={cursor}" if cursor else "?limit=100"
        status, body = await gateway.call("GET", f"/v1/api_keys{query}")
        if status != 200:
            raise DemoFailed(f"listing the API keys failed: {_explain(status, body)}")
        for key in body["data"]:
            if key["id"] == session.get("api_key_id") or key.get("session_id") == session["id"]:
                return str(key["hint"])
        if not body.get("has_more") or not body["data"]:
            break
        cursor = body["data"][-1]["id"]
    raise DemoFailed("the session's customer key is not in GET /v1/api_keys")


async def run_demo(args: argparse.Namespace, stack: dict[str, Any]) -> None:
    secret = (stack.get("webhook_secrets") or {}).get("stripe")
    if not secret:
        raise DemoFailed("stack.json has no webhook_secrets.stripe; restart the stack with `paygate up`")
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        gateway = Gateway(
            http, stack["gateway_url"], stack["merchant"]["api_key"], unauthorized=stale_key_message(stack)
        )

        _step(1, f"create a checkout session ({args.amount} {args.currency}, provider stripe)")
        session = await create_session(gateway, args)
        _detail("session", session["id"])
        _detail("checkout page", gateway.base_url + session["url"])
        if session.get("provider_checkout_url"):
            _detail("stripe page", session["provider_checkout_url"])
        elif session.get("provider_checkout_error"):
            _detail("stripe page", f"not created ({session['provider_checkout_error']['code']})")
        else:
            _detail("stripe page", "none (no Stripe API key configured; the signed webhook stands in)")

        _step(2, "deliver a signed Stripe checkout.session.completed webhook")
        receipt = await deliver_webhook(gateway, session, secret)
        _detail("event", f"{receipt.get('event_id')} accepted (duplicate: {receipt.get('duplicate')})")

        _step(3, "wait until the session is paid and fulfilled")
        done = await wait_until_fulfilled(gateway, session["id"], args.timeout)

        _step(4, "show what the customer got")
        _detail("invoice", await invoice_number(gateway, done))
        _detail("api key", await key_hint(gateway, done))
        _detail("access link", done["access_url"])


def run(args: argparse.Namespace) -> int:
    stack = load_stack()
    try:
        asyncio.run(run_demo(args, stack))
    except DemoFailed as failure:
        print(f"paygate demo: {failure}", file=sys.stderr)
        return 1
    print("demo complete", flush=True)
    return 0
