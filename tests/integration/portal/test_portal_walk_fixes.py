"""What the customer portal tells a customer, found by a customer's walk of `paygate up` (README "Customer
portal"): who the seller is and whether the purchase is a test (C4), what was refunded and which invoice a
credit note credits (C5), an old key that still works during a roll's grace period (C6), and a key granted
every scope described in words rather than `*` (C8b). Over real HTTP against a test-started stack of the real
services (Postgres, gRPC, the gateway), with the SMTP sink standing in for the customer's mailbox.
"""

from __future__ import annotations

import html as html_lib
import re

from portal_helpers import (
    csrf,
    mail_link,
    open_portal,
    open_portal_with,
    page,
    paid_session,
    post_form,
    reveal,
    verify,
)

from paygate_dev.smtp_sink import SmtpSink
from support import polling
from support.stack import ServiceStack

SELLER = "Kumo Tools"


def _text(html: str) -> str:
    """The page's visible text, tags dropped and entities decoded, whitespace squeezed."""
    without_tags = re.sub(r"<[^>]+>", " ", html)
    return " ".join(html_lib.unescape(without_tags).split())


def _element(html: str, element_id: str) -> str:
    """The visible text of the element with this id (the portal's ids are unique)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no element #{element_id} in the page"
    return _text(match.group(2))


def _title(html: str) -> str:
    match = re.search(r"<title>(.*?)</title>", html, re.S)
    assert match, html
    return _text(match.group(1))


async def _page_once(stack: ServiceStack, cookie: str, wanted: str) -> str:
    """The portal page once `wanted` shows in its text (billing issues credit notes in the background)."""

    async def shown() -> str | None:
        status, html = await page(stack, cookie)
        assert status == 200, html
        return html if wanted in _text(html) else None

    return await polling.eventually(shown, timeout=20, interval=0.2, what=f"{wanted!r} on the portal")


async def test_the_portal_names_the_seller_and_marks_a_test_purchase(
    stack: ServiceStack, smtp_sink: SmtpSink
) -> None:
    merchant = await stack.create_merchant(name=SELLER, prefix="kumo")
    paid = await paid_session(stack, merchant, customer_email="ann@example.com")
    # The customer's own mail link proves the address, so the page lists every receipt with this seller.
    token, proof = await mail_link(smtp_sink.folder, paid.token)
    cookie = await open_portal_with(stack, {"token": token, "proof": proof})
    status, html = await page(stack, cookie)
    assert status == 200, html

    assert SELLER in _title(html), _title(html)
    assert SELLER in _element(html, "portal-heading"), _element(html, "portal-heading")
    assert _element(html, "receipts-heading") == f"Your receipts with this seller, {SELLER}"
    # The list holds the newest purchases only (MAX_RECEIPTS); the page says so rather than "all".
    assert (
        _element(html, "receipts-scope") == "The invoices and credit notes of your 50 most recent purchases."
    )
    # A test purchase says so, with the checkout page's badge.
    assert _element(html, "test-mode") == "Test mode"


async def test_a_partial_then_full_refund_shows_in_your_purchase(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant(name=SELLER, prefix="kumo")
    paid = await paid_session(
        stack, merchant, amount="1000", currency="JPY", customer_email="ken@example.com"
    )
    cookie = await open_portal(stack, paid.token)
    _status, html = await page(stack, cookie)
    invoice_number = _element(html, "invoice-number")
    assert _element(html, "invoice-amount") == "1000 JPY"

    # A refund recorded by the merchant (no Stripe API key in this stack: made outside paygate).
    status, body = await stack.request(
        "POST", f"/v1/sessions/{paid.id}/refund", json={"amount": "300"}, headers=merchant.headers
    )
    assert status == 202, body
    html = await _page_once(stack, cookie, "Credit note")
    assert _element(html, "refund-amount") == "300 JPY", _element(html, "refund-amount")
    assert _element(html, "refund-status") == "partially refunded"
    [row] = [r for r in re.findall(r'<tr class="document">(.*?)</tr>', html, re.S) if "Credit note" in r]
    assert f"for invoice {invoice_number}" in _text(row), _text(row)

    # The rest of it: the purchase is refunded in full, which ends the access link (README). Until the keys
    # service has revoked it, the page may show "refunded"; which comes first depends on the machine's load.
    status, body = await stack.request(
        "POST", f"/v1/sessions/{paid.id}/refund", json={"amount": "700"}, headers=merchant.headers
    )
    assert status == 202, body

    async def link_ended() -> str | None:
        status, html = await page(stack, cookie)
        if status == 200:
            if "Refunded 1000 JPY" in _text(html):
                assert _element(html, "refund-amount") == "1000 JPY"
                assert _element(html, "refund-status") == "refunded"
            return None
        assert status == 401, html
        return html

    html = await polling.eventually(
        link_ended, timeout=20, interval=0.2, what="the refunded purchase's link ended"
    )
    assert 'data-code="token_revoked"' in html, html
    # The customer learns why it may have ended: a refund ends it too, not only the seller's own withdrawal.
    assert "refunded" in _element(html, "error-message"), _element(html, "error-message")


async def test_an_old_key_in_its_grace_period_is_listed_until_it_ends(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant(name=SELLER, prefix="kumo")
    paid = await paid_session(stack, merchant, scopes=["read"])
    cookie = await open_portal(stack, paid.token)
    secret = await reveal(stack, cookie)
    _status, html = await page(stack, cookie)
    token = csrf(html)

    status, body = await post_form(
        stack,
        cookie,
        "/access/key/roll",
        [("csrf_token", token), ("current_key", secret), ("grace_period", "900")],
    )
    assert status == 200, body
    old_hint, ends = body["previous"]["hint"], body["previous"]["expires_at"]
    assert (await verify(stack, merchant, secret))["code"] == "VALID"

    _status, html = await page(stack, cookie)
    listed = _element(html, "previous-keys")
    assert old_hint in listed and f"still works until {ends}" in listed, listed
    assert secret not in html and body["secret"] not in html

    # Revoking from the portal ends both; the old key is then no longer listed as working.
    status, revoked = await post_form(
        stack, cookie, "/access/key/revoke", [("csrf_token", token), ("confirm", "yes")]
    )
    assert status == 200 and revoked["status"] == "revoked", revoked
    assert (await verify(stack, merchant, secret))["code"] == "REVOKED"
    _status, html = await page(stack, cookie)
    assert 'id="previous-keys"' not in html


async def test_a_key_granted_every_scope_is_described_in_words(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant(name=SELLER, prefix="kumo")
    paid = await paid_session(stack, merchant)  # no scopes given: every scope
    cookie = await open_portal(stack, paid.token)
    await reveal(stack, cookie)
    _status, html = await page(stack, cookie)
    assert _element(html, "key-scopes") == f"all of {SELLER}'s API"
    assert _element(html, "granted-scopes") == f"all of {SELLER}'s API"
