"""The checkout page's buyer form, refusing a country that is not an assigned ISO 3166-1 code: a buyer who
typed "UK" (the common one) was told "enter the country as its two-letter code, e.g. DE", which "UK" already
is. The message now says which codes (ISO's) and what the United Kingdom's is."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from support.stack import ServiceStack

CSRF_COOKIE = "paygate_checkout_csrf"
SAYS = "enter the country as its ISO two-letter code, e.g. DE (GB for the United Kingdom)"


@pytest.fixture
async def browser(stack: ServiceStack) -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps no cookies by itself: each post sends exactly the CSRF cookie it means to."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def _open_checkout(stack: ServiceStack, browser: aiohttp.ClientSession) -> tuple[str, str]:
    """(session id, the form's CSRF token) of a new session that asks for the buyer's details."""
    merchant = await stack.create_merchant("Shop", "shop", mode="live")
    status, created = await stack.request(
        "POST", "/v1/sessions", json={"amount": "25.00", "currency": "EUR"}, headers=merchant.headers
    )
    assert status == 201 and created["customer"] is None, created
    url = f"{stack.base_url}/checkout?session={created['id']}"
    async with browser.get(url, headers={"Accept": "text/html"}) as response:
        page = await response.text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, "the page shows the buyer form"
    return created["id"], match.group(1)


async def _post_buyer(
    stack: ServiceStack, browser: aiohttp.ClientSession, session_id: str, token: str, accept: str
) -> tuple[int, str]:
    form = {"session": session_id, "csrf_token": token, "name": "Ada Lovelace", "country": "UK"}
    headers = {"Sec-Fetch-Site": "same-origin", "Accept": accept, "Cookie": f"{CSRF_COOKIE}={token}"}
    async with browser.post(f"{stack.base_url}/checkout/customer", data=form, headers=headers) as response:
        return response.status, await response.text()


async def test_the_buyer_form_says_which_code_to_type_for_uk(
    stack: ServiceStack, browser: aiohttp.ClientSession
) -> None:
    session_id, token = await _open_checkout(stack, browser)

    status, text = await _post_buyer(stack, browser, session_id, token, "application/json")
    body: Any = json.loads(text)
    assert status == 400 and body["error"]["code"] == "invalid_customer_country", body
    assert body["error"]["message"] == SAYS, body

    status, page = await _post_buyer(stack, browser, session_id, token, "text/html")
    assert status == 400
    assert SAYS in html.unescape(page), "the page shows the message beside the form"
