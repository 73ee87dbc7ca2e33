"""Helpers of the portal tests (imported as a plain module: this folder has no __init__.py)."""

from __future__ import annotations

import email
import email.policy
import re
import time
from dataclasses import dataclass
from email.message import EmailMessage
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from support import polling
from support.stack import Merchant, ServiceStack

HTML = {"Accept": "text/html"}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


@dataclass
class PaidSession:
    id: str
    access_url: str
    token: str


async def paid_session(
    stack: ServiceStack,
    merchant: Merchant,
    *,
    scopes: list[str] | None = None,
    customer_email: str = "ann@example.com",
    amount: str = "25.00",
    currency: str = "EUR",
) -> PaidSession:
    """The real flow: POST /v1/sessions (with scopes), a signed Stripe payment, fulfilment by the session
    service (invoice, key with the granted scopes, access link)."""
    body: dict[str, Any] = {"amount": amount, "currency": currency, "provider": "stripe"}
    if scopes is not None:
        body["scopes"] = scopes
    if customer_email:
        body["customer_email"] = customer_email
    status, session = await stack.request("POST", "/v1/sessions", json=body, headers=merchant.headers)
    assert status == 201, session
    event = build_stripe_event(
        "payment_intent.succeeded", session["id"], session["amount_minor"], session["currency"]
    )
    secret = stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0]
    raw, headers = stripe_delivery(event, secret, int(time.time()))
    status, reply = await stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    assert status == 200, reply

    async def fulfilled() -> dict[str, Any] | None:
        status, got = await stack.request("GET", f"/v1/sessions/{session['id']}", headers=merchant.headers)
        return got if status == 200 and got.get("access_url") and got.get("invoice_id") else None

    got = await polling.eventually(fulfilled, timeout=30, interval=0.1, what="session fulfilled")
    token = got["access_url"].split("token=", 1)[1]
    return PaidSession(session["id"], got["access_url"], token)


async def open_portal(stack: ServiceStack, token: str) -> str:
    """Trade the link's token for the portal cookie; returns the Cookie header value."""
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.base_url}/access", params={"token": token}, headers=HTML, allow_redirects=False
    ) as response:
        assert response.status == 303
        jar: SimpleCookie = SimpleCookie()
        for header in response.headers.getall("Set-Cookie"):
            jar.load(header)
    ((name, morsel),) = jar.items()
    return f"{name}={morsel.value}"


async def page(stack: ServiceStack, cookie: str) -> tuple[int, str]:
    assert stack.http is not None
    async with stack.http.get(f"{stack.base_url}/access", headers={**HTML, "Cookie": cookie}) as response:
        return response.status, await response.text()


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def post_form(
    stack: ServiceStack,
    cookie: str,
    path: str,
    fields: list[tuple[str, str]],
    *,
    html: bool = False,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    assert stack.http is not None
    accept = HTML if html else {"Accept": "application/json"}
    async with stack.http.post(
        f"{stack.base_url}{path}",
        data=fields,
        headers={**accept, **SAME_ORIGIN, "Cookie": cookie, **(headers or {})},
    ) as response:
        text = await response.text()
        if response.content_type == "application/json":
            import json

            return response.status, json.loads(text)
        return response.status, text


async def reveal(stack: ServiceStack, cookie: str) -> str:
    _status, html = await page(stack, cookie)
    status, body = await post_form(stack, cookie, "/access/reveal", [("csrf_token", csrf(html))])
    assert status == 200, body
    return body["secret"]


async def verify(stack: ServiceStack, merchant: Merchant, key: str, ip: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"key": key}
    if ip is not None:
        body["ip"] = ip
    status, reply = await stack.request("POST", "/v1/api_keys/verify", json=body, headers=merchant.headers)
    assert status == 200, reply
    return reply


def mails(folder: Path) -> list[EmailMessage]:
    if not folder.exists():
        return []
    found = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


async def keys_rows(stack: ServiceStack, sql: str, *args: Any) -> list[Any]:
    """Rows from the keys service's own schema (audit trail checks)."""
    import asyncpg

    conn = await asyncpg.connect(stack.db.runtime_dsn("keys"))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def code_mails(folder: Path, to: str) -> list[str]:
    """The portal's email codes mailed to `to`, oldest first."""
    found = []
    for message in mails(folder):
        if message["To"] == to and message["Subject"] == "Your code to see your receipts":
            match = re.search(r"Your code: ([0-9]{8})", message.get_content())
            assert match, message.get_content()
            found.append(match.group(1))
    return found


async def mailed_code(folder: Path, to: str, count: int) -> str:
    """The newest code once `count` codes have reached `to`."""

    async def arrived() -> list[str] | None:
        codes = code_mails(folder, to)
        return codes if len(codes) >= count else None

    codes = await polling.eventually(arrived, timeout=10, interval=0.1, what=f"code mail {count} to {to}")
    return codes[-1]


async def prove_email(stack: ServiceStack, cookie: str, sink: Any, to: str) -> str:
    """Ask for a code in this portal session, read it from the sink, enter it; returns the page after."""
    _status, html = await page(stack, cookie)
    before = len(code_mails(sink.folder, to))
    status, body = await post_form(stack, cookie, "/access/receipts/code", [("csrf_token", csrf(html))])
    assert status == 200 and body["sent"] is True, body
    code = await mailed_code(sink.folder, to, before + 1)
    status, body = await post_form(
        stack, cookie, "/access/receipts/verify", [("csrf_token", csrf(html)), ("code", code)]
    )
    assert status == 200 and body == {"proven": True}, body
    _status, html = await page(stack, cookie)
    return html


MAIL_LINK = re.compile(r"https?://[^\s\"'<>]+/access\?token=([A-Za-z0-9_.\-]+)&proof=([A-Za-z0-9]+)")


async def mail_link(folder: Path, token: str) -> tuple[str, str]:
    """(token, proof) of the customer mail that carries the link of `token` (as the session service sent it)."""

    async def arrived() -> tuple[str, str] | None:
        for message in mails(folder):
            if message.get_content_maintype() == "multipart":
                parts = [p.get_content() for p in message.walk() if p.get_content_type() == "text/plain"]
            else:
                parts = [message.get_content()]
            for text in parts:
                for found in MAIL_LINK.finditer(text):
                    if found.group(1) == token:
                        return found.group(1), found.group(2)
        return None

    return await polling.eventually(arrived, timeout=15, interval=0.1, what="the customer mail's link")


async def open_portal_with(stack: ServiceStack, params: dict[str, str]) -> str:
    """open_portal with the link's own query parameters (the mail's link adds `proof`)."""
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.base_url}/access", params=params, headers=HTML, allow_redirects=False
    ) as response:
        assert response.status == 303, await response.text()
        jar: SimpleCookie = SimpleCookie()
        for header in response.headers.getall("Set-Cookie"):
            jar.load(header)
    ((name, morsel),) = jar.items()
    return f"{name}={morsel.value}"
