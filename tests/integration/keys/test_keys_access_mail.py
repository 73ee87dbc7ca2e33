"""The access-link email (issue 5 §7): after a real paid and fulfilled session, a real SMTP server (aiosmtpd)
receives a mail whose link opens the portal, and the mail never carries the API key."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from email.message import Message

import pytest
from keys_helpers import cookie_from

from paygate_dev.devtools.signing import standard_delivery
from paygate_dev.devtools.stripe_fixtures import build_onecom_event
from support.mail import MailInbox, running_mail_inbox
from support.stack import ServiceStack


@pytest.fixture
def smtp_inbox() -> Iterator[tuple[MailInbox, int]]:
    with running_mail_inbox() as running:
        yield running


@pytest.fixture
def stack_env(stack_env: dict[str, str], smtp_inbox: tuple[MailInbox, int]) -> dict[str, str]:
    return {
        **stack_env,
        "PAYGATE_SMTP_HOST": "127.0.0.1",
        "PAYGATE_SMTP_PORT": str(smtp_inbox[1]),
        "PAYGATE_OUTBOX_POLL_MS": "100",
    }


def _text(message: Message) -> str:
    parts = [message] if not message.is_multipart() else list(message.walk())
    return "\n".join(
        part.get_content() for part in parts if part.get_content_type() in ("text/plain", "text/html")
    )


async def test_paid_session_mails_a_link_that_opens_the_portal(
    stack: ServiceStack, smtp_inbox: tuple[MailInbox, int]
) -> None:
    inbox, _ = smtp_inbox
    merchant = await stack.create_merchant()
    status, session = await stack.request(
        "POST",
        "/v1/sessions",
        json={
            "amount": "99.99",
            "currency": "EUR",
            "provider": "onecom",
            "customer_email": "ann@example.com",
        },
        headers=merchant.headers,
    )
    assert status == 201, session
    raw, headers = standard_delivery(
        build_onecom_event("payment.succeeded", session["id"], 9999, "EUR"),
        stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"],
        int(time.time()),
    )
    status, body = await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers)
    assert status == 200, body

    deadline = time.monotonic() + 30
    while not inbox.messages:
        assert time.monotonic() < deadline, "no access mail arrived"
        await asyncio.sleep(0.1)
    (message,) = inbox.messages
    assert message["To"] == "ann@example.com"
    text = _text(message)
    links = set(re.findall(r"https?://[^\s\"<>]+/access\?token=([A-Za-z0-9_\-.]+)", text))
    assert len(links) == 1, text
    token = links.pop()
    assert "acme_test_" not in text  # the key itself is never mailed

    # The link (public URL + token) opens the portal of this gateway.
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.base_url}/access",
        params={"token": token},
        headers={"Accept": "text/html"},
        allow_redirects=False,
    ) as response:
        assert response.status == 303
        name, value, _ = cookie_from(response.headers.getall("Set-Cookie"))
    async with stack.http.get(
        f"{stack.base_url}/access", headers={"Accept": "text/html", "Cookie": f"{name}={value}"}
    ) as response:
        assert response.status == 200
        page = await response.text()
    assert "Reveal my API key" in page and "acme_test_" in page  # the hint of this session's key
    status, detail = await stack.request("GET", f"/v1/sessions/{session['id']}", headers=merchant.headers)
    assert status == 200 and detail.get("access_url", "").endswith(token)
