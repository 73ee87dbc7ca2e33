"""Contract §9: for a live session the checkout page asks for the buyer's name and country when they are
missing, before the pay buttons. Over real HTTP against the real stack: the labelled form, its CSRF and
same-origin protections, field-named 400s (never a 500), the fill-only-what-is-missing rule, the open-state
rule, and the saved buyer in the session JSON."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from support.stack import Merchant, ServiceStack

COOKIE = "paygate_checkout_csrf"
HTML = {"Accept": "text/html"}


@pytest.fixture
async def browser(stack: ServiceStack) -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps no cookies by itself: each test sends exactly the cookie it means to."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def _live_session(stack: ServiceStack, merchant: Merchant, **body: Any) -> dict[str, Any]:
    status, created = await stack.request(
        "POST", "/v1/sessions", json={"amount": "25.00", "currency": "EUR", **body}, headers=merchant.headers
    )
    assert status == 201, created
    return created


async def _page(
    stack: ServiceStack, browser: aiohttp.ClientSession, session_id: str
) -> tuple[int, str, str | None, aiohttp.ClientResponse]:
    """The page's status and HTML, and the CSRF token of its form (None without a form)."""
    async with browser.get(f"{stack.base_url}/checkout?session={session_id}", headers=HTML) as response:
        html = await response.text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    return response.status, html, match.group(1) if match else None, response


async def _post(
    stack: ServiceStack,
    browser: aiohttp.ClientSession,
    form: dict[str, str] | bytes,
    *,
    cookie: str | None,
    html: bool = False,
    **headers: str,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    sent = {"Sec-Fetch-Site": "same-origin", **(HTML if html else {"Accept": "application/json"}), **headers}
    sent = {name: value for name, value in sent.items() if value}  # "" leaves a header out
    if cookie is not None:
        sent["Cookie"] = f"{COOKIE}={cookie}"
    if isinstance(form, bytes):
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    async with browser.post(
        f"{stack.base_url}/checkout/customer", data=form, headers=sent, allow_redirects=False
    ) as response:
        text = await response.text()
        body: Any = text
        if response.content_type == "application/json":
            body = await response.json()
        return response.status, body, response


async def test_a_live_session_without_a_buyer_asks_for_name_and_country_first(
    stack: ServiceStack, browser: aiohttp.ClientSession
) -> None:
    merchant = await stack.create_merchant("Shop", "shop", mode="live")
    created = await _live_session(stack, merchant)
    assert created["customer"] is None

    status, html, token, response = await _page(stack, browser, created["id"])
    assert status == 200
    assert token is not None
    assert '<label for="customer-name">Name</label>' in html
    assert '<label for="customer-country">Country</label>' in html
    assert 'action="/checkout/customer"' in html
    # No way to pay yet: neither the One.com instructions nor a provider link.
    assert "onecom-instructions" not in html and "stripe-link" not in html and "onecom-link" not in html
    cookie = response.cookies[COOKIE]
    assert cookie.value == token
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/checkout"
    assert "form-action 'self'" in response.headers["Content-Security-Policy"]

    form = {"session": created["id"], "csrf_token": token, "name": "Ada Lovelace", "country": "gb"}
    status, body, response = await _post(stack, browser, form, cookie=token, html=True)
    assert status == 303, body
    assert response.headers["Location"] == f"/checkout?session={created['id']}"

    status, session = await stack.request("GET", f"/v1/sessions/{created['id']}", headers=merchant.headers)
    assert status == 200
    assert session["customer"] == {"name": "Ada Lovelace", "country": "GB", "address": [], "vat_id": None}
    # Now the page shows the way to pay, and no form.
    status, html, token, _ = await _page(stack, browser, created["id"])
    assert status == 200 and token is None
    # (This stack has no card rail: the page says so; test_card_checkout_rails.py has the rails.)
    assert 'id="customer-form"' not in html and 'id="card-unavailable"' in html


async def test_the_form_is_refused_without_its_token_or_from_another_site(
    stack: ServiceStack, browser: aiohttp.ClientSession
) -> None:
    merchant = await stack.create_merchant("Shop", "shop", mode="live")
    created = await _live_session(stack, merchant)
    _, _, token, _ = await _page(stack, browser, created["id"])
    assert token is not None
    form = {"session": created["id"], "csrf_token": token, "name": "Mallory", "country": "DE"}
    other = "x" * 43

    for cookie, extra in (
        (None, {}),  # no cookie: another site's form post (SameSite=Lax keeps it out of a cross-site POST)
        (other, {}),  # a cookie that is not the form's token
        (token, {"Sec-Fetch-Site": "cross-site"}),
        (token, {"Sec-Fetch-Site": "same-site"}),  # a sibling origin
    ):
        status, body, _ = await _post(stack, browser, form, cookie=cookie, **extra)
        assert (status, body["error"]["code"]) == (403, "csrf_failed"), (cookie, extra, body)
    # Without Sec-Fetch-Site, a foreign Origin is refused too.
    status, body, _ = await _post(
        stack, browser, form, cookie=token, **{"Sec-Fetch-Site": "", "Origin": "https://evil.example"}
    )
    assert status == 403, body
    status, session = await stack.request("GET", f"/v1/sessions/{created['id']}", headers=merchant.headers)
    assert session["customer"] is None, "a refused form changed nothing"


async def test_bad_input_is_a_400_naming_the_field_never_a_500(
    stack: ServiceStack, browser: aiohttp.ClientSession
) -> None:
    merchant = await stack.create_merchant("Shop", "shop", mode="live")
    created = await _live_session(stack, merchant)
    _, _, token, _ = await _page(stack, browser, created["id"])
    assert token is not None

    def form(**fields: str) -> dict[str, str]:
        return {"session": created["id"], "csrf_token": token, "name": "Ada", "country": "GB", **fields}

    cases = [
        (form(name=""), 400, "missing_customer_name", "name"),
        (form(name="   "), 400, "missing_customer_name", "name"),
        (form(country=""), 400, "missing_customer_country", "country"),
        (form(country="Germany"), 400, "invalid_customer_country", "country"),
        (form(country="1A"), 400, "invalid_customer_country", "country"),
        (form(name="x" * 201), 400, "invalid_customer_name", "name"),
        (form(name="Ada\x07Bell"), 400, "invalid_customer_name", "name"),
        (form(session="not-a-uuid"), 404, "not_found", None),
        (form(session=str(uuid.uuid4())), 404, "not_found", None),
    ]
    for sent, status, code, field in cases:
        got, body, _ = await _post(stack, browser, sent, cookie=token)
        assert (got, body["error"]["code"]) == (status, code), (sent, body)
        assert body["error"].get("field") == field, body
    # A body that is not a form at all: refused, never a 500.
    for raw in (b"\xff\xfe\x00", b"session=%zz&csrf_token=%", b"a" * 2_000_000):
        got, body, _ = await _post(stack, browser, raw, cookie=token)
        assert 400 <= got < 500, (raw[:20], got, body)

    # A browser gets the page back, the error beside the form and what it typed kept.
    got, html, _ = await _post(
        stack, browser, form(name="Ada Byron", country="Germany"), cookie=token, html=True
    )
    assert got == 400
    assert 'data-code="invalid_customer_country"' in html and 'data-field="country"' in html
    assert 'value="Ada Byron"' in html and 'id="customer-form"' in html
    status, session = await stack.request("GET", f"/v1/sessions/{created['id']}", headers=merchant.headers)
    assert session["customer"] is None


async def test_given_values_are_never_overwritten_and_only_open_sessions_change(
    stack: ServiceStack, browser: aiohttp.ClientSession
) -> None:
    merchant = await stack.create_merchant("Shop", "shop", mode="live")
    created = await _live_session(stack, merchant, customer={"name": "Given By Merchant", "vat_id": "DE1"})
    status, html, token, _ = await _page(stack, browser, created["id"])
    assert status == 200 and token is not None
    assert 'value="Given By Merchant"' in html  # only the country is missing; the name is shown as given

    sent = {"session": created["id"], "csrf_token": token, "name": "Someone Else", "country": "de"}
    # A browser that sends no Sec-Fetch-Site but our own Origin is let through.
    status, body, _ = await _post(
        stack, browser, sent, cookie=token, **{"Sec-Fetch-Site": "", "Origin": stack.base_url}
    )
    assert status == 200, body
    assert body["customer"] == {"name": "Given By Merchant", "country": "DE", "address": [], "vat_id": "DE1"}

    # Once the session is closed, its buyer no longer changes.
    closed = await _live_session(stack, merchant)
    status, expired = await stack.request(
        "POST", f"/v1/sessions/{closed['id']}/expire", headers=merchant.headers
    )
    assert status == 200, expired
    sent = {"session": closed["id"], "csrf_token": token, "name": "Late", "country": "DE"}
    status, body, _ = await _post(stack, browser, sent, cookie=token)
    assert (status, body["error"]["code"]) == (409, "session_not_open"), body
    status, session = await stack.request("GET", f"/v1/sessions/{closed['id']}", headers=merchant.headers)
    assert session["customer"] is None


async def test_a_test_session_or_one_with_a_buyer_goes_straight_to_payment(
    stack: ServiceStack, browser: aiohttp.ClientSession
) -> None:
    test = await stack.create_merchant("Dev", "dev")
    created = await _live_session(stack, test)
    status, html, token, _ = await _page(stack, browser, created["id"])
    assert status == 200 and token is None and 'id="card-unavailable"' in html

    live = await stack.create_merchant("Shop", "shop", mode="live")
    created = await _live_session(stack, live, customer={"name": "Grace Hopper", "country": "US"})
    assert created["customer"] == {"name": "Grace Hopper", "country": "US", "address": [], "vat_id": None}
    status, html, token, _ = await _page(stack, browser, created["id"])
    assert status == 200 and token is None and 'id="customer-form"' not in html
