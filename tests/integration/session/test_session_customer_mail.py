"""The customer's mail after fulfilment, sent through a real aiosmtpd server: access link, never the key."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from session_itest_support import apply, create_session, eur, eventually

from paygate.billing.v1 import billing_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2
from support.mail import MailInbox, running_mail_inbox
from support.stack import ServiceStack


@pytest.fixture
def inbox() -> Iterator[tuple[MailInbox, int]]:
    with running_mail_inbox() as running:
        yield running


@pytest.fixture
def stack_env(stack_env: dict[str, str], inbox: tuple[MailInbox, int]) -> dict[str, str]:
    return {
        **stack_env,
        "PAYGATE_SMTP_HOST": "127.0.0.1",
        "PAYGATE_SMTP_PORT": str(inbox[1]),
        "PAYGATE_MAIL_FROM": "billing@shop.example",
        "PAYGATE_OUTBOX_POLL_MS": "100",
    }


async def _paid_and_mailed(
    stack: ServiceStack, handler: MailInbox, *, support_email: str = "", seller_email: str = ""
) -> tuple[session_pb2.Session, EmailMessage, str]:
    merchant = await stack.create_merchant("Acme Widgets", "acme")
    if support_email or seller_email:
        await stack.billing.UpdateBillingProfile(
            billing_pb2.UpdateBillingProfileRequest(
                profile=billing_pb2.BillingProfile(
                    merchant_id=merchant.id,
                    seller=billing_pb2.Party(name="Acme Widgets", email=seller_email),
                    support_email=support_email,
                )
            ),
            timeout=5,
        )
    session = await create_session(stack, merchant.id, "49.90", customer_email="buyer@example.com")
    await apply(stack, session.id, "succeeded", amount=eur(4990))

    async def mailed() -> bool:
        return bool(handler.messages)

    await eventually(mailed, timeout=20)
    done = await stack.session.GetSession(session_pb2.GetSessionRequest(session_id=session.id), timeout=5)
    [message] = handler.messages
    text = message.get_body(preferencelist=("plain",)).get_content()
    return done, message, text


async def test_customer_gets_the_access_link_not_the_key(
    stack: ServiceStack, inbox: tuple[MailInbox, int]
) -> None:
    handler, _ = inbox
    session, message, text = await _paid_and_mailed(stack, handler)
    assert handler.envelopes == [("billing@shop.example", ["buyer@example.com"])]
    assert message["To"] == "buyer@example.com"
    assert "Acme Widgets" in message["Subject"] and "Acme Widgets" in text
    assert session.invoice_number and session.invoice_number in text
    assert "49.90 EUR" in text
    [url] = re.findall(r"https?://\S+/access\?token=\S+", text)
    link = await stack.keys.GetAccessLink(keys_pb2.GetAccessLinkRequest(session_id=session.id), timeout=5)
    # The mail's link is the session's link plus the proof that its reader got this mail; the merchant's copy
    # (`url`) has none.
    assert url == link.mail_url and url.startswith(link.url + "&proof=")
    query = parse_qs(urlsplit(url).query)
    claims = await stack.keys.VerifyAccessToken(
        keys_pb2.VerifyAccessTokenRequest(token=query["token"][0], mail_proof=query["proof"][0]), timeout=5
    )
    assert claims.session_id == session.id and claims.jti == session.access_token_id and claims.mail_proven
    plain = await stack.keys.VerifyAccessToken(
        keys_pb2.VerifyAccessTokenRequest(token=query["token"][0]), timeout=5
    )
    assert not plain.mail_proven
    # The key itself never travels by mail: no `<prefix>_test_...` secret anywhere in the message.
    assert not re.search(r"acme_(test|live)_\w{10,}", message.as_string())
    # Exactly one mail, recorded as sent.
    await eventually(lambda: _mail_status(stack, "done"))
    assert len(handler.messages) == 1


async def _mail_status(stack: ServiceStack, wanted: str) -> bool:
    conn = await stack.db.admin()
    try:
        return await conn.fetchval("SELECT status FROM session.outbox WHERE kind = 'email'") == wanted
    finally:
        await conn.close()


async def test_link_in_the_mail_opens_the_portal(stack: ServiceStack, inbox: tuple[MailInbox, int]) -> None:
    handler, _ = inbox
    _, _, text = await _paid_and_mailed(stack, handler)
    [url] = re.findall(r"https?://\S+/access\?token=\S+", text)
    # The stack's public URL is a placeholder; the path and token are what the customer opens. The portal swaps
    # the token for a Secure cookie and redirects; aiohttp's jar keeps Secure cookies off plain http, so carry
    # the cookie by hand as a browser on localhost would.
    parts = urlsplit(url)
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{stack.base_url}{parts.path}?{parts.query}",
            allow_redirects=False,
            headers={"Accept": "text/html"},
        ) as response:
            assert response.status == 303, await response.text()
            assert response.headers["Location"] == "/access"
            jar: SimpleCookie = SimpleCookie()
            for header in response.headers.getall("Set-Cookie"):
                jar.load(header)
        [(name, morsel)] = jar.items()
        async with http.get(
            f"{stack.base_url}/access", headers={"Accept": "text/html", "Cookie": f"{name}={morsel.value}"}
        ) as response:
            assert response.status == 200, await response.text()
            page = await response.text()
    assert session_invoice_number_in(page, text)


def session_invoice_number_in(page: str, mail_text: str) -> bool:
    """The portal shows the same invoice number the mail announced."""
    numbers = re.findall(r"[A-Z0-9]{1,12}-\d{4}-\d{6,}", mail_text)
    return bool(numbers) and numbers[0] in page


async def test_a_reply_to_the_mail_reaches_the_merchants_support_address(
    stack: ServiceStack, inbox: tuple[MailInbox, int]
) -> None:
    """The mail comes from the deployment's sender (PAYGATE_MAIL_FROM), which no merchant reads: a customer who
    answers it must reach the merchant's support address of the session's mode, as the portal and the
    invoice show it."""
    handler, _ = inbox
    _, message, _ = await _paid_and_mailed(
        stack, handler, support_email="help@acme.example", seller_email="accounts@acme.example"
    )
    assert message["From"].endswith("<billing@shop.example>")
    assert message["Reply-To"] == "help@acme.example"


async def test_without_a_support_address_a_reply_reaches_the_sellers_email(
    stack: ServiceStack, inbox: tuple[MailInbox, int]
) -> None:
    handler, _ = inbox
    _, message, _ = await _paid_and_mailed(stack, handler, seller_email="accounts@acme.example")
    assert message["Reply-To"] == "accounts@acme.example"


async def test_without_a_support_address_the_mail_names_no_reply_to(
    stack: ServiceStack, inbox: tuple[MailInbox, int]
) -> None:
    handler, _ = inbox
    _, message, _ = await _paid_and_mailed(stack, handler)
    assert message["Reply-To"] is None
