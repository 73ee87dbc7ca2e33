"""A card session (created without `provider`, contract §6a) is payable from its own checkout page.

The seed's body `{"amount": 99.99, "mode": "test"}` makes a card session: either card rail may pay it. Its
checkout page offers one button per card rail this gateway can take for the session's mode (One.com with an
API key of that mode, Stripe with a Stripe key of that mode); a click is a same-origin form POST to
`/checkout/pay` (CSRF-checked like the buyer's-details form) that creates that provider's payment for the
session, once per session and provider, and 303-redirects to the provider's hosted page. Sessions that cannot
be paid that way get a clear refusal page (or the JSON error), and nothing is created at any provider.

Against the real stack, the One.com test double and the Stripe fake; the first test clicks through it all in
Debian's Chromium (Playwright).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from paygate.session.v1 import session_pb2
from paygate_dev.devtools.onecom_double import OneComDouble
from paygate_dev.devtools.signing import standard_delivery
from session_service.domain.deposit_addresses import dev_xpub_from_mnemonic
from support.chromium import launch_chromium
from support.database import TestDatabase
from support.onecom import new_onecom_key, running_onecom_double
from support.polling import eventually
from support.stack import Merchant, ServiceStack, free_port, running_stack
from support.stripe_fake import FakeStripe

COOKIE = "paygate_checkout_csrf"
HTML = {"Accept": "text/html"}
SEED_BODY = {"amount": 99.99, "mode": "test"}  # contract §2: the seed's body, no provider


# ---- a stack with both card rails (test mode) ----------------------------------------------------------


@pytest.fixture
def gateway_port() -> int:
    return free_port()


@pytest.fixture
def onecom_key() -> str:
    return new_onecom_key()


@pytest.fixture
async def double(stack_env: dict[str, str], onecom_key: str) -> AsyncIterator[OneComDouble]:
    async with running_onecom_double(onecom_key, stack_env["PAYGATE_ONECOM_WEBHOOK_SECRETS"]) as fake:
        yield fake


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    async with FakeStripe() as fake:
        yield fake


@pytest.fixture
async def rails(
    clean_db: TestDatabase,
    stack_env: dict[str, str],
    gateway_port: int,
    double: OneComDouble,
    onecom_key: str,
    fake_stripe: FakeStripe,
) -> AsyncIterator[ServiceStack]:
    """One.com (test key) and Stripe (test key) configured; the gateway's public URL names its own port, so
    the double's webhook and return URL reach it."""
    env = {
        **stack_env,
        **fake_stripe.env(),
        "PAYGATE_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}",
        "PAYGATE_ONECOM_API_BASE": double.base_url,
        "PAYGATE_ONECOM_API_KEY_TEST": onecom_key,
        "PAYGATE_ONECOM_TIMEOUT_MS": "3000",
    }
    async with running_stack(clean_db, env, gateway_port=gateway_port) as services:
        yield services


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps no cookies by itself: each request sends exactly the cookie it means to."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def _create(stack: ServiceStack, merchant: Merchant, **body: Any) -> dict[str, Any]:
    status, created = await stack.request(
        "POST", "/v1/sessions", json=body or SEED_BODY, headers=merchant.headers
    )
    assert status == 201, created
    return created


async def _page(
    stack: ServiceStack, browser: aiohttp.ClientSession, session_id: str
) -> tuple[int, str, str | None, aiohttp.ClientResponse]:
    """The page's status and HTML, and its CSRF token (None without a form)."""
    async with browser.get(f"{stack.base_url}/checkout?session={session_id}", headers=HTML) as response:
        html = await response.text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    return response.status, html, match.group(1) if match else None, response


async def _pay(
    stack: ServiceStack,
    browser: aiohttp.ClientSession,
    session_id: str,
    provider: str,
    token: str | None,
    *,
    cookie: str | None = None,
    html: bool = True,
    **headers: str,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """The pay form's POST as a browser sends it (same-origin, the cookie beside the token)."""
    sent = {"Sec-Fetch-Site": "same-origin", **(HTML if html else {"Accept": "application/json"}), **headers}
    sent = {name: value for name, value in sent.items() if value}  # "" leaves a header out
    cookie = token if cookie is None else cookie
    if cookie:
        sent["Cookie"] = f"{COOKIE}={cookie}"
    form = {"session": session_id, "provider": provider}
    if token is not None:
        form["csrf_token"] = token
    async with browser.post(
        f"{stack.base_url}/checkout/pay", data=form, headers=sent, allow_redirects=False
    ) as response:
        text = await response.text()
        body: Any = text
        if response.content_type == "application/json":
            body = await response.json()
        return response.status, body, response


async def _open(stack: ServiceStack, browser: aiohttp.ClientSession, session_id: str) -> str:
    status, html, token, _ = await _page(stack, browser, session_id)
    assert status == 200 and token is not None, html
    return token


async def _onecom_webhook(
    stack: ServiceStack, session_id: str, event_type: str, expect: str, **data: Any
) -> None:
    """A signed One.com event for the session, then wait until the session shows status `expect`."""
    body = {"type": event_type, "data": {"session_id": session_id, "currency": "EUR", **data}}
    raw, headers = standard_delivery(body, stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"], int(time.time()))
    status, reply = await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers)
    assert status == 200, reply

    async def moved() -> bool:
        status, public = await stack.request("GET", f"/session/{session_id}/status")
        return status == 200 and public["status"] == expect

    await eventually(moved, what=f"session {expect}")


# ---- the seed flow in a browser ------------------------------------------------------------------------


@pytest.mark.browser
async def test_the_seed_card_session_is_paid_in_a_browser_through_the_onecom_button(
    rails: ServiceStack, double: OneComDouble
) -> None:
    from playwright.async_api import expect

    stack = rails
    merchant = await stack.create_merchant("Seed Shop", "seed")
    created = await _create(stack, merchant)
    sid = created["id"]
    assert not double.payments, "a card session makes no provider payment before the customer chooses"

    async with launch_chromium() as chromium:
        page = await (await chromium.new_context()).new_page()
        page.set_default_timeout(30_000)
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        response = await page.goto(stack.base_url + created["url"])
        assert response is not None and response.status == 200
        await expect(page.locator("#status")).to_have_text("Awaiting payment")
        # One button per card rail of this mode, each named by what it does.
        await expect(page.get_by_role("button", name="Pay 99.99 EUR with Stripe")).to_be_visible()
        onecom = page.get_by_role("button", name="Pay 99.99 EUR with One.com")
        await expect(onecom).to_be_visible()

        await onecom.click()
        [payment] = double.payments.values()
        await page.wait_for_url(f"{double.base_url}/pay/{payment.id}")
        await expect(page.locator("#amount")).to_have_text("99.99 EUR")
        await expect(page.locator("#reference")).to_have_text(sid)

        await page.get_by_role("button", name="Pay", exact=True).click()
        await page.wait_for_url(
            re.compile(re.escape(stack.base_url) + r"/checkout\?session=.*result=success")
        )
        await expect(page.locator("#status")).to_have_text("Paid", timeout=30_000)
        await expect(page.locator("#paid-message")).to_be_visible()
        assert not [line for line in console if line.startswith("error")], console

    async def fulfilled() -> dict[str, Any] | None:
        status, session = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
        assert status == 200, session
        return session if session["fulfilment_status"] == "done" else None

    session = await eventually(fulfilled, timeout=30, what="the paid session fulfilled")
    assert session["status"] == "paid" and session["payment_status"] == "paid"
    assert session["provider"] == "onecom", "the One.com payment bound the card session to its rail"
    assert session["invoice_id"] and session["api_key_id"] and session["access_url"]
    assert len(double.payments) == 1


# ---- what the page offers ------------------------------------------------------------------------------


async def test_the_card_page_offers_a_button_per_rail_of_the_sessions_mode(
    rails: ServiceStack, browser: aiohttp.ClientSession, double: OneComDouble
) -> None:
    merchant = await rails.create_merchant()
    created = await _create(rails, merchant)
    status, html, token, response = await _page(rails, browser, created["id"])
    assert status == 200 and token is not None
    assert 'method="post" action="/checkout/pay"' in html
    assert f'name="session" value="{created["id"]}"' in html
    assert re.search(
        r'<button[^>]*name="provider" value="onecom"[^>]*>Pay 99.99 EUR with One.com</button>', html
    )
    assert re.search(
        r'<button[^>]*name="provider" value="stripe"[^>]*>Pay 99.99 EUR with Stripe</button>', html
    )
    assert "onecom-instructions" not in html and "card-unavailable" not in html
    cookie = response.cookies[COOKIE]
    assert cookie.value == token and cookie["httponly"] and cookie["samesite"] == "Lax"
    # The form may send the customer on to the providers' pages (a 303 after a form post is held to
    # form-action), and nowhere else.
    csp = response.headers["Content-Security-Policy"]
    form_action = re.search(r"form-action ([^;]+)", csp)
    assert form_action is not None
    assert set(form_action.group(1).split()) == {"'self'", double.base_url, "https://checkout.stripe.com"}
    assert not double.payments, "opening the page creates nothing"

    # A live card session: this gateway has neither rail's live key, so the page says so plainly.
    live = await rails.create_merchant("Live Shop", "live", mode="live")
    created = await _create(
        rails, live, amount="10.00", currency="EUR", customer={"name": "Ada Lovelace", "country": "GB"}
    )
    status, html, token, _ = await _page(rails, browser, created["id"])
    assert status == 200 and token is None
    assert 'id="card-unavailable"' in html and "has not set up card payments" in html
    assert "/checkout/pay" not in html


async def test_without_a_card_rail_the_page_says_the_seller_has_not_set_up_card_payments(
    stack: ServiceStack, browser: aiohttp.ClientSession
) -> None:
    merchant = await stack.create_merchant()
    created = await _create(stack, merchant)
    status, html, token, _ = await _page(stack, browser, created["id"])
    assert status == 200 and token is None
    assert 'id="card-unavailable"' in html and "has not set up card payments" in html
    assert "onecom-instructions" not in html and "/checkout/pay" not in html
    # The form's route agrees: nothing to pay with.
    status, body, _ = await _pay(stack, browser, created["id"], "onecom", "t" * 43, html=False)
    assert (status, body["error"]["code"]) == (409, "provider_not_configured"), body


# ---- idempotency -----------------------------------------------------------------------------------------


async def test_a_second_click_a_reload_and_two_tabs_reuse_the_one_provider_payment(
    rails: ServiceStack, browser: aiohttp.ClientSession, double: OneComDouble, fake_stripe: FakeStripe
) -> None:
    merchant = await rails.create_merchant()
    created = await _create(rails, merchant)
    sid = created["id"]
    token = await _open(rails, browser, sid)

    status, body, response = await _pay(rails, browser, sid, "onecom", token)
    assert status == 303, body
    [payment] = double.payments.values()
    assert response.headers["Location"] == f"{double.base_url}/pay/{payment.id}"
    assert response.headers["Cache-Control"] == "no-store"
    # A second click, the same after a reload, and two tabs at once: the same payment every time.
    again = await _pay(rails, browser, sid, "onecom", token)
    reloaded = await _pay(rails, browser, sid, "onecom", await _open(rails, browser, sid))
    tabs = await asyncio.gather(*(_pay(rails, browser, sid, "onecom", token) for _ in range(3)))
    for status, body, response in (again, reloaded, *tabs):
        assert status == 303, body
        assert response.headers["Location"] == f"{double.base_url}/pay/{payment.id}"
    assert len(double.payments) == 1
    creates = [h for m, p, h in double.requests if (m, p) == ("POST", "/v1/payments")]
    assert len(creates) == 1 and creates[0]["Idempotency-Key"] == sid
    # Recorded for reconciliation like any payment the gateway makes.
    rows = await rails.pools["gateway"].fetch(
        "SELECT provider, payment_id, state FROM provider_payments WHERE session_id = $1::uuid", sid
    )
    assert [dict(r) for r in rows] == [{"provider": "onecom", "payment_id": payment.id, "state": "open"}]

    # Stripe the same way: one Checkout Session, however often it is chosen.
    first = await _pay(rails, browser, sid, "stripe", token)
    second = await _pay(rails, browser, sid, "stripe", token)
    [cs_id] = fake_stripe.sessions
    for status, body, response in (first, second):
        assert status == 303, body
        assert response.headers["Location"] == f"https://checkout.stripe.com/c/pay/{cs_id}"
    assert len(fake_stripe.creates()) == 1
    assert fake_stripe.creates()[0].headers["Idempotency-Key"] == f"paygate-create-{sid}"

    # The merchant still sees a card session, not yet bound to either rail.
    status, session = await rails.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
    assert status == 200 and session["status"] == "created" and session["provider"] == "card", session


async def test_a_session_created_with_a_provider_keeps_its_own_page_and_payment(
    rails: ServiceStack, browser: aiohttp.ClientSession, double: OneComDouble
) -> None:
    merchant = await rails.create_merchant()
    created = await _create(rails, merchant, amount="42.00", currency="EUR", provider="onecom")
    [payment] = double.payments.values()
    assert created["provider_checkout_url"] == f"{double.base_url}/pay/{payment.id}"
    status, html, _, _ = await _page(rails, browser, created["id"])
    assert status == 200
    assert 'id="onecom-link"' in html and created["provider_checkout_url"] in html
    assert "/checkout/pay" not in html
    # The pay route takes it to the same payment; the other rail is refused.
    status, body, response = await _pay(rails, browser, created["id"], "onecom", "t" * 43)
    assert status == 303 and response.headers["Location"] == created["provider_checkout_url"], body
    status, body, _ = await _pay(rails, browser, created["id"], "stripe", "t" * 43, html=False)
    assert (status, body["error"]["code"]) == (409, "provider_bound"), body
    assert len(double.payments) == 1


async def test_merchant_expiry_of_a_card_session_cancels_its_onecom_payment_first(
    rails: ServiceStack, browser: aiohttp.ClientSession, double: OneComDouble
) -> None:
    merchant = await rails.create_merchant()
    created = await _create(rails, merchant)
    token = await _open(rails, browser, created["id"])
    status, body, _ = await _pay(rails, browser, created["id"], "onecom", token)
    assert status == 303, body
    [payment] = double.payments.values()
    status, expired = await rails.request(
        "POST", f"/v1/sessions/{created['id']}/expire", headers=merchant.headers
    )
    assert status == 200 and expired["status"] == "expired", expired
    assert payment.status == "canceled", "the payment stopped taking money before our session expired"

    # The customer paid at One.com and its webhook is still on the way: the expiry is refused, so the money
    # is applied when it arrives instead of being quarantined as late.
    paying = await _create(rails, merchant)
    token = await _open(rails, browser, paying["id"])
    status, body, _ = await _pay(rails, browser, paying["id"], "onecom", token)
    assert status == 303, body
    paid_there = next(p for p in double.payments.values() if p.reference == paying["id"])
    assert await double.act(paid_there, "pay", drop_webhook=True)
    status, refused = await rails.request(
        "POST", f"/v1/sessions/{paying['id']}/expire", headers=merchant.headers
    )
    assert (status, refused["error"]["code"]) == (409, "provider_session_complete"), refused


# ---- refusals --------------------------------------------------------------------------------------------


async def test_the_form_is_refused_without_its_token_or_from_another_site(
    rails: ServiceStack, browser: aiohttp.ClientSession, double: OneComDouble, fake_stripe: FakeStripe
) -> None:
    merchant = await rails.create_merchant()
    created = await _create(rails, merchant)
    sid = created["id"]
    token = await _open(rails, browser, sid)
    other = "x" * 43
    for presented, cookie, extra in (
        (token, "", {}),  # no cookie: another site's post (SameSite=Lax keeps it out of a cross-site POST)
        (token, other, {}),  # a cookie that is not the form's token
        (None, token, {}),  # no token in the form
        (token, token, {"Sec-Fetch-Site": "cross-site"}),
        (token, token, {"Sec-Fetch-Site": "same-site"}),  # a sibling origin
        (token, token, {"Sec-Fetch-Site": "", "Origin": "https://evil.example"}),
    ):
        status, body, _ = await _pay(
            rails, browser, sid, "onecom", presented, cookie=cookie, html=False, **extra
        )
        assert (status, body["error"]["code"]) == (403, "csrf_failed"), (cookie, extra, body)
    # A browser gets a page that says what to do.
    status, html, response = await _pay(rails, browser, sid, "onecom", token, cookie=other)
    assert status == 403 and response.content_type == "text/html"
    assert "reload the checkout page" in html
    assert not double.payments and not fake_stripe.creates(), "a refused form created nothing"


async def test_unknown_malformed_and_unpayable_requests_are_refused_and_create_nothing(
    rails: ServiceStack, browser: aiohttp.ClientSession, double: OneComDouble, fake_stripe: FakeStripe
) -> None:
    merchant = await rails.create_merchant()
    token = await _open(rails, browser, (await _create(rails, merchant))["id"])

    async def refused(session_id: str, provider: str = "onecom") -> tuple[int, str]:
        status, body, _ = await _pay(rails, browser, session_id, provider, token, html=False)
        assert isinstance(body, dict), (status, body)
        return status, body["error"]["code"]

    assert await refused(str(uuid.uuid4())) == (404, "not_found")
    assert await refused("not-a-session") == (404, "not_found")
    open_card = (await _create(rails, merchant))["id"]
    assert await refused(open_card, "paypal") == (400, "invalid_provider")
    assert await refused(open_card, "web3") == (400, "invalid_provider")

    # Sessions in every state a card rail cannot take: named by their state, as contract §6a asks.
    paid = (await _create(rails, merchant))["id"]
    await _onecom_webhook(
        rails, paid, "payment.succeeded", "paid", transaction_id="pay_elsewhere", amount_minor=9999
    )
    assert await refused(paid) == (409, "session_paid")
    pending = (await _create(rails, merchant))["id"]
    await _onecom_webhook(rails, pending, "payment.pending", "pending", transaction_id="pay_pending")
    assert await refused(pending, "stripe") == (409, "session_pending")
    expired = (await _create(rails, merchant))["id"]
    status, body = await rails.request("POST", f"/v1/sessions/{expired}/expire", headers=merchant.headers)
    assert status == 200, body
    assert await refused(expired) == (409, "session_expired")
    stripe_only = (await _create(rails, merchant, amount="5.00", provider="stripe"))["id"]
    stripe_creates = len(fake_stripe.creates())
    assert await refused(stripe_only, "onecom") == (409, "provider_bound")

    # A live session still waiting for the buyer's details, and a mode without keys.
    live = await rails.create_merchant("Live Shop", "live", mode="live")
    no_buyer = (await _create(rails, live, amount="10.00", currency="EUR"))["id"]
    assert await refused(no_buyer) == (409, "customer_details_required")
    buyer = {"name": "Ada Lovelace", "country": "GB"}
    live_card = (await _create(rails, live, amount="10.00", currency="EUR", customer=buyer))["id"]
    assert await refused(live_card) == (409, "provider_not_configured")
    assert await refused(live_card, "stripe") == (409, "provider_not_configured")

    assert not double.payments, "no refused request created a One.com payment"
    assert len(fake_stripe.creates()) == stripe_creates

    # A browser gets a clear page for a closed session, with the way back and nothing about other sessions.
    status, html, response = await _pay(rails, browser, paid, "onecom", token)
    assert status == 409 and response.content_type == "text/html"
    assert "already been paid" in html and f"/checkout?session={paid}" in html
    assert open_card not in html and expired not in html
    status, html, response = await _pay(rails, browser, str(uuid.uuid4()), "onecom", token)
    assert status == 404 and "This checkout link is not valid" in html


async def test_a_web3_session_is_refused(stack: ServiceStack, browser: aiohttp.ClientSession) -> None:
    merchant = await stack.create_merchant(name="Chain Shop", prefix="chain")
    await stack.session.UpdatePaymentSettings(
        session_pb2.UpdatePaymentSettingsRequest(
            settings=session_pb2.PaymentSettings(
                merchant_id=merchant.id,
                default_currency="EUR",
                onchain=session_pb2.OnchainSettings(
                    chain_id=31337, xpub=dev_xpub_from_mnemonic(), min_confirmations=1
                ),
            )
        ),
        timeout=5,
    )
    created = await _create(stack, merchant, amount="0.05", currency="ETH", provider="web3")
    status, body, _ = await _pay(stack, browser, created["id"], "onecom", "t" * 43, html=False)
    assert (status, body["error"]["code"]) == (409, "not_a_card_session"), body


async def test_a_card_session_stripe_cannot_charge_offers_only_the_rails_that_can(
    rails: ServiceStack, browser: aiohttp.ClientSession, double: OneComDouble
) -> None:
    """KWD 1.234: Stripe takes three-decimal currencies only in multiples of 10 of their minor unit. A card
    session keeps that amount (One.com can take it); its page offers One.com only, and a hand-made Stripe
    choice is refused with amount_not_chargeable, creating nothing."""
    merchant = await rails.create_merchant()
    created = await _create(rails, merchant, amount="1.234", currency="KWD")
    status, html, token, _ = await _page(rails, browser, created["id"])
    assert status == 200 and token is not None
    assert 'name="provider" value="onecom"' in html
    assert 'name="provider" value="stripe"' not in html
    status, body, _ = await _pay(rails, browser, created["id"], "stripe", token, html=False)
    assert (status, body["error"]["code"]) == (409, "amount_not_chargeable"), body
    assert not double.payments
