"""A country code is an officially assigned ISO 3166-1 alpha-2 code, not just any two letters: "UK" (a common
typo for GB), "EU" or "ZZ" would otherwise reach the buyer's or seller's address in the Factur-X XML, against
EN 16931's country code list (BR-CL-14). Checked where a country enters, over real HTTP: the session's
`customer.country`, the checkout page's buyer form and the billing profile's seller. Only new input is
refused: a code stored before the check still renders and invoices as it did."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from billing_helpers import LIVE, issue, runtime_connection
from pypdf import PdfReader

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from support.stack import Merchant, ServiceStack

UNASSIGNED = ("UK", "EU", "ZZ")
ASSIGNED = ("GB", "DE")
CSRF_COOKIE = "paygate_checkout_csrf"


def _error_code(body: Any) -> str | None:
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


async def _create_session(stack: ServiceStack, merchant: Merchant, **body: Any) -> tuple[int, Any]:
    return await stack.request(
        "POST", "/v1/sessions", json={"amount": "25.00", "currency": "EUR", **body}, headers=merchant.headers
    )


async def _put_seller_country(stack: ServiceStack, merchant: Merchant, country: str) -> tuple[int, Any]:
    seller = {"name": "Acme Ltd", "address": {"lines": ["1 High St"], "country": country}}
    return await stack.request(
        "PUT", "/v1/billing_profile", json={"seller": seller}, headers=merchant.headers
    )


# --- POST /v1/sessions: customer.country ---------------------------------------------------------------


async def test_a_session_customer_country_must_be_an_assigned_code(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    for country in UNASSIGNED:
        status, body = await _create_session(stack, merchant, customer={"name": "Ada", "country": country})
        assert (status, _error_code(body)) == (400, "invalid_customer_country"), (country, body)
    # Lower case was accepted (and upper-cased) before; it still is.
    for given, stored in (("GB", "GB"), ("DE", "DE"), ("gb", "GB")):
        status, body = await _create_session(stack, merchant, customer={"name": "Ada", "country": given})
        assert status == 201, (given, body)
        assert body["customer"]["country"] == stored


# --- the checkout page's buyer form ----------------------------------------------------------------------


@pytest.fixture
async def browser(stack: ServiceStack) -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps no cookies by itself: each post sends exactly the CSRF cookie it means to."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def _form_token(stack: ServiceStack, browser: aiohttp.ClientSession, session_id: str) -> str:
    url = f"{stack.base_url}/checkout?session={session_id}"
    async with browser.get(url, headers={"Accept": "text/html"}) as response:
        html = await response.text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, "the page shows the buyer form"
    return match.group(1)


async def _post_buyer(
    stack: ServiceStack, browser: aiohttp.ClientSession, session_id: str, token: str, country: str
) -> tuple[int, Any]:
    form = {"session": session_id, "csrf_token": token, "name": "Ada Lovelace", "country": country}
    headers = {
        "Sec-Fetch-Site": "same-origin",
        "Accept": "application/json",
        "Cookie": f"{CSRF_COOKIE}={token}",
    }
    async with browser.post(f"{stack.base_url}/checkout/customer", data=form, headers=headers) as response:
        return response.status, await response.json()


async def test_the_checkout_buyer_form_refuses_an_unassigned_country(
    stack: ServiceStack, browser: aiohttp.ClientSession
) -> None:
    merchant = await stack.create_merchant("Shop", "shop", mode="live")
    status, created = await _create_session(stack, merchant)
    assert status == 201 and created["customer"] is None, created
    token = await _form_token(stack, browser, created["id"])
    for country in (*UNASSIGNED, "uk"):
        status, body = await _post_buyer(stack, browser, created["id"], token, country)
        assert (status, _error_code(body)) == (400, "invalid_customer_country"), (country, body)
    status, body = await _post_buyer(stack, browser, created["id"], token, "gb")
    assert status == 200, body
    assert body["customer"]["country"] == "GB"


# --- PUT /v1/billing_profile: the seller's country --------------------------------------------------------


async def test_the_seller_country_must_be_an_assigned_code(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    for country in (*UNASSIGNED, "gb"):  # lower case was refused before and still is
        status, body = await _put_seller_country(stack, merchant, country)
        assert (status, _error_code(body)) == (400, "invalid_seller_country"), (country, body)
    for country in ASSIGNED:
        status, body = await _put_seller_country(stack, merchant, country)
        assert status == 200, (country, body)
        assert body["seller"]["address"]["country"] == country


# --- stored data from before the check ----------------------------------------------------------------------


async def _store_seller_country(stack: ServiceStack, merchant_id: str, mode: str, country: str) -> None:
    """What a profile saved under the old two-letter rule looks like: written past the service's check."""
    async with runtime_connection(stack) as conn:
        updated = await conn.execute(
            "UPDATE billing_profiles SET seller_country = $3 WHERE merchant_id = $1 AND mode = $2",
            merchant_id,
            mode,
            country,
        )
    assert updated == "UPDATE 1"


async def test_a_stored_unassigned_seller_country_still_saves_renders_and_invoices(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant("Old Shop", "old", mode="live")
    status, body = await _put_seller_country(stack, merchant, "GB")
    assert status == 200, body
    await _store_seller_country(stack, merchant.id, "live", "UK")

    # A PUT that leaves the seller alone is not new input for its country: it is saved as before.
    status, body = await stack.request(
        "PUT", "/v1/billing_profile", json={"tax_rate_bps": 2000}, headers=merchant.headers
    )
    assert status == 200, body
    assert (body["seller"]["address"]["country"], body["tax_rate_bps"]) == ("UK", 2000)
    # The same country sent back unchanged (a client that PUTs the whole profile it read) is not new either.
    status, body = await _put_seller_country(stack, merchant, "UK")
    assert status == 200, body

    # The session service passes the buyer it stored; an old "UK" buyer is invoiced too.
    buyer = billing_pb2.Party(name="Old Buyer Ltd", address=common_pb2.Address(country="UK"))
    invoice = await issue(stack.billing, merchant.id, mode=LIVE, minor=1200, buyer=buyer)
    assert invoice.seller.address.country == "UK" and invoice.buyer.address.country == "UK"
    async with aiohttp.ClientSession() as http:
        url = f"{stack.base_url}/v1/invoices/{invoice.id}/pdf"
        async with http.get(url, headers=merchant.headers) as response:
            assert response.status == 200
            pdf = await response.read()
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert invoice.number in text and "UK" in text


async def test_a_stored_unassigned_customer_country_still_reads_and_shows_the_checkout(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant("Old Shop", "old", mode="live")
    status, created = await _create_session(stack, merchant, customer={"name": "Ada", "country": "GB"})
    assert status == 201, created
    conn = await asyncpg.connect(stack.db.runtime_dsn("session"), server_settings={"search_path": "session"})
    try:
        await conn.execute(
            """UPDATE sessions SET customer = jsonb_set(customer, '{country}', '"UK"') WHERE id = $1""",
            uuid.UUID(created["id"]),
        )
    finally:
        await conn.close()

    status, session = await stack.request("GET", f"/v1/sessions/{created['id']}", headers=merchant.headers)
    assert status == 200 and session["customer"]["country"] == "UK", session
    status, page = await stack.request(
        "GET", f"/checkout?session={created['id']}", headers={"Accept": "text/html"}
    )
    assert status == 200 and 'id="customer-form"' not in page
