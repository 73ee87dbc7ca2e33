"""Every mail paygate sends carries a `Date:` header (RFC 5322 §3.6: the one field besides From that every
message must have). Relays often add none, so a mail without it risks spam scoring and odd sorting.

The three mails, from a test-started stack of the real services into a real aiosmtpd inbox: the customer's
access mail (session service), the portal's "Send me a code" mail and its contact-form mail to the merchant
(gateway).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie

import pytest

from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from support import polling
from support.mail import MailInbox, portal_stack_env, running_mail_inbox
from support.stack import Merchant, ServiceStack

BUYER = "dora@example.com"
SUPPORT = "help@dates.test"
ACCESS_SUBJECT = "Your access from"
CODE_SUBJECT = "Your code to see your receipts"


@pytest.fixture
def inbox() -> Iterator[tuple[MailInbox, int]]:
    with running_mail_inbox() as running:
        yield running


@pytest.fixture
def stack_env(stack_env: dict[str, str], inbox: tuple[MailInbox, int]) -> dict[str, str]:
    return {**stack_env, **portal_stack_env(inbox[1]), "PAYGATE_OUTBOX_POLL_MS": "100"}


async def _mail(handler: MailInbox, subject: str) -> EmailMessage:
    async def arrived() -> EmailMessage | None:
        found = [m for m in handler.messages if str(m["Subject"]).startswith(subject)]
        return found[0] if found else None

    return await polling.eventually(arrived, timeout=30, interval=0.1, what=f"mail {subject!r}")


async def _paid_with_mail(stack: ServiceStack, merchant: Merchant) -> str:
    """A Stripe session with the buyer's email, paid by a signed webhook; the token of its access link."""
    status, session = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "12.00", "currency": "EUR", "provider": "stripe", "customer_email": BUYER},
        headers=merchant.headers,
    )
    assert status == 201, session
    event = build_stripe_event(
        "payment_intent.succeeded", session["id"], session["amount_minor"], session["currency"]
    )
    raw, headers = stripe_delivery(
        event, stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0], int(time.time())
    )
    status, reply = await stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    assert status == 200, reply

    async def fulfilled() -> str | None:
        status, got = await stack.request("GET", f"/v1/sessions/{session['id']}", headers=merchant.headers)
        url = got.get("access_url") if status == 200 else None
        return str(url).split("token=", 1)[1] if url else None

    token: str = await polling.eventually(fulfilled, timeout=30, interval=0.1, what="session fulfilled")
    return token


async def _portal(stack: ServiceStack, token: str) -> tuple[str, str]:
    """The portal's cookie and its form's CSRF token, for the link's token."""
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.base_url}/access", params={"token": token}, allow_redirects=False
    ) as response:
        assert response.status == 303
        jar: SimpleCookie = SimpleCookie()
        for header in response.headers.getall("Set-Cookie"):
            jar.load(header)
    ((name, morsel),) = jar.items()
    cookie = f"{name}={morsel.value}"
    async with stack.http.get(
        f"{stack.base_url}/access", headers={"Accept": "text/html", "Cookie": cookie}
    ) as response:
        html = await response.text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return cookie, match.group(1)


async def _post(stack: ServiceStack, cookie: str, path: str, fields: list[tuple[str, str]]) -> None:
    assert stack.http is not None
    async with stack.http.post(
        f"{stack.base_url}{path}",
        data=fields,
        headers={"Accept": "application/json", "Sec-Fetch-Site": "same-origin", "Cookie": cookie},
    ) as response:
        assert response.status == 200, await response.text()


def _assert_dated(message: EmailMessage, started: datetime) -> None:
    raw = message["Date"]
    assert raw is not None, f"no Date: header in {message['Subject']!r}: {list(message.keys())}"
    sent = parsedate_to_datetime(str(raw))
    assert sent.tzinfo is not None, raw  # a zone is required (RFC 5322 §3.3)
    assert started - timedelta(seconds=5) <= sent <= datetime.now(UTC) + timedelta(seconds=5), raw


async def test_every_mail_paygate_sends_carries_a_date(
    stack: ServiceStack, inbox: tuple[MailInbox, int]
) -> None:
    handler, _port = inbox
    started = datetime.now(UTC)
    merchant = await stack.create_merchant(name="Dated Goods")
    status, body = await stack.request(
        "PUT", "/v1/billing_profile", json={"support_email": SUPPORT}, headers=merchant.headers
    )
    assert status == 200, body
    token = await _paid_with_mail(stack, merchant)
    _assert_dated(await _mail(handler, ACCESS_SUBJECT), started)

    cookie, csrf = await _portal(stack, token)
    await _post(stack, cookie, "/access/receipts/code", [("csrf_token", csrf)])
    _assert_dated(await _mail(handler, CODE_SUBJECT), started)

    await _post(stack, cookie, "/access/support", [("csrf_token", csrf), ("message", "Hello")])
    _assert_dated(await _mail(handler, "Customer message about purchase"), started)
