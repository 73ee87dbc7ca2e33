"""The checkout page of a session that was paid after it closed, and of a paid session whose buyer gets mail.

A payment on an expired session is quarantined (`payment_on_closed_session`) for the merchant to accept or
refund; the card was charged. The page used to say "This checkout has expired. Ask the seller for a new link.",
which invites a second payment. It now says the payment arrived and that the seller will settle it, offers no
way to pay, and follows the merchant's decision: accepted (the session is paid) shows the paid page, refunded
says so. A paid session with a customer email says the access link was mailed (to a masked address). Over real
HTTP against a test-started stack of the real services.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from support import polling
from support.stack import Merchant, ServiceStack

BUYER = "carol@example.com"


async def _page(stack: ServiceStack, session_id: str) -> str:
    assert stack.http is not None
    async with stack.http.get(f"{stack.base_url}/checkout?session={session_id}") as response:
        assert response.status == 200
        return await response.text()


async def _expired_session(stack: ServiceStack, merchant: Merchant) -> dict[str, Any]:
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "3.00", "customer_email": BUYER},
        headers=merchant.headers,
    )
    assert status == 201, created
    status, expired = await stack.request(
        "POST", f"/v1/sessions/{created['id']}/expire", headers=merchant.headers
    )
    assert status == 200 and expired["status"] == "expired", expired
    return expired


async def _pay_late(stack: ServiceStack, merchant: Merchant, session: dict[str, Any]) -> dict[str, Any]:
    """A signed Stripe `checkout.session.completed` for the closed session; its open quarantine entry."""
    event = build_stripe_event(
        "checkout.session.completed", session["id"], session["amount_minor"], session["currency"]
    )
    secret = stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0]
    raw, headers = stripe_delivery(event, secret, int(time.time()))
    status, reply = await stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    assert status == 200, reply

    async def quarantined() -> dict[str, Any] | None:
        status, listed = await stack.request("GET", "/v1/quarantine?status=open", headers=merchant.headers)
        assert status == 200, listed
        found = [e for e in listed["data"] if e["session_id"] == session["id"]]
        return found[0] if found else None

    entry = await polling.eventually(quarantined, timeout=20, interval=0.1, what="late payment quarantined")
    assert entry["reason"] == "payment_on_closed_session", entry
    return entry


async def _resolve(stack: ServiceStack, merchant: Merchant, entry: dict[str, Any], decision: str) -> None:
    status, body = await stack.request(
        "POST",
        f"/v1/quarantine/{entry['id']}/resolve",
        json={"decision": decision},
        headers=merchant.headers,
    )
    assert status == 200, body


def _shown(html: str, element_id: str) -> bool:
    """The element is on the page and its section is not hidden."""
    start = html.find(f'id="{element_id}"')
    if start < 0:
        return False
    section = html.rfind("<section", 0, start)
    return " hidden>" not in html[section : html.find(">", section) + 1]


async def test_a_late_payment_is_announced_and_never_invites_a_second_one(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant(name="Carol's Shop")
    session = await _expired_session(stack, merchant)
    entry = await _pay_late(stack, merchant, session)

    html = await _page(stack, session["id"])
    assert _shown(html, "late-payment-message"), html
    assert "arrived after this checkout closed" in html
    assert "accept it or refund it" in html
    assert "Ask the seller for a new link" not in html
    assert 'id="card-rails"' not in html and 'action="/checkout/pay"' not in html

    # The merchant accepts it: the session is paid and the page is the paid page, with the mail said.
    await _resolve(stack, merchant, entry, "accepted")
    html = await _page(stack, session["id"])
    assert 'data-status="paid">Paid<' in html
    assert _shown(html, "paid-message") and not _shown(html, "late-payment-message")
    assert "c•••@example.com" in html and BUYER not in html
    assert "The seller will send your access details" not in html


async def test_a_refunded_late_payment_says_it_was_refunded(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await _expired_session(stack, merchant)
    entry = await _pay_late(stack, merchant, session)
    await _resolve(stack, merchant, entry, "refunded")

    html = await _page(stack, session["id"])
    assert _shown(html, "late-payment-refunded"), html
    assert "refunded" in html and "Ask the seller for a new link" not in html
    assert not _shown(html, "late-payment-message")


async def test_an_expired_session_without_money_still_says_expired(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await _expired_session(stack, merchant)
    html = await _page(stack, session["id"])
    assert _shown(html, "expired-message") and not _shown(html, "late-payment-message")


async def test_a_paid_session_with_a_customer_email_says_the_link_was_mailed(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    status, created = await stack.request(
        "POST", "/v1/sessions", json={"amount": "3.00", "customer_email": BUYER}, headers=merchant.headers
    )
    assert status == 201, created
    event = build_stripe_event(
        "checkout.session.completed", created["id"], created["amount_minor"], created["currency"]
    )
    secret = stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0]
    raw, headers = stripe_delivery(event, secret, int(time.time()))
    status, reply = await stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    assert status == 200, reply

    async def paid() -> str | None:
        html = await _page(stack, created["id"])
        return html if 'data-status="paid">Paid<' in html else None

    html = await polling.eventually(paid, timeout=20, interval=0.1, what="session paid")
    assert _shown(html, "paid-message") and "c•••@example.com" in html and BUYER not in html
    assert "The seller will send your access details" not in html

    # Without a customer email paygate mails nothing: the seller sends the access details.
    status, bare = await stack.request(
        "POST", "/v1/sessions", json={"amount": "3.00"}, headers=merchant.headers
    )
    assert status == 201, bare
    html = await _page(stack, bare["id"])
    assert "The seller will send your access details" in html


async def test_the_merchant_can_list_one_sessions_quarantine_entries(stack: ServiceStack) -> None:
    """What the checkout page reads is the merchant's too: `GET /v1/quarantine?session_id=` lists that session's
    entries only (none of a session without any; a malformed id is 400 `invalid_session_id`)."""
    merchant = await stack.create_merchant()
    late = await _expired_session(stack, merchant)
    entry = await _pay_late(stack, merchant, late)
    other = await _expired_session(stack, merchant)
    await _pay_late(stack, merchant, other)

    status, listed = await stack.request(
        "GET", f"/v1/quarantine?session_id={late['id']}", headers=merchant.headers
    )
    assert status == 200 and [e["id"] for e in listed["data"]] == [entry["id"]], listed
    status, listed = await stack.request(
        "GET", f"/v1/quarantine?session_id={uuid.uuid4()}", headers=merchant.headers
    )
    assert status == 200 and listed["data"] == [] and listed["has_more"] is False, listed
    status, refused = await stack.request("GET", "/v1/quarantine?session_id=abc", headers=merchant.headers)
    assert status == 400 and refused["error"]["code"] == "invalid_session_id", refused
