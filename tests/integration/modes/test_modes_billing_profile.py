"""The billing profile is one per merchant AND mode (contract §6a, issue 12): a test key, often handed to
developers, neither reads nor changes the seller printed on LIVE invoices, and the live key leaves the test
profile alone. Proven end to end: each key PUTs its own profile over HTTP, a session of each mode is paid
through the real webhook path, and each invoice's JSON, HTML and PDF (page text and its Factur-X XML) states
its own mode's seller, prefix and support contact, and none of the other mode's."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pypdf import PdfReader

from support.database import TestDatabase
from support.stack import Merchant, ServiceStack
from support.two_modes import (
    TwoModeMerchant,
    create_session,
    final_inbox_row,
    fulfilled,
    send_onecom,
    two_mode_merchant,
    two_mode_stack,
)

LIVE_PROFILE = {
    "seller": {
        "name": "Livewire Seller AG",
        "email": "billing@livewire.example",
        "address": {"lines": ["Bahnhofstrasse 1", "8001 Zurich"], "country": "CH"},
        "tax_id": "CHE123456789",
    },
    "invoice_prefix": "LIVE",
    "tax_rate_bps": 810,
    "support_email": "live-help@livewire.example",
}
TEST_PROFILE = {
    "seller": {
        "name": "Sandbox Tinker Ltd",
        "email": "dev@sandbox.example",
        "address": {"lines": ["1 Test Lane", "London"], "country": "GB"},
        "tax_id": "GB000000000",
    },
    "invoice_prefix": "SANDBOX",
    "tax_rate_bps": 2000,
    "support_email": "sandbox-help@sandbox.example",
}
HTML = {"Accept": "text/html"}
# What only one world's documents may state.
LIVE_MARKS = ("Livewire Seller", "CHE123456789", "live-help@livewire.example")
TEST_MARKS = ("Sandbox Tinker", "GB000000000", "sandbox-help@sandbox.example")


@pytest.fixture(scope="module")
async def stack(database: TestDatabase) -> AsyncIterator[ServiceStack]:
    async with two_mode_stack(database) as services:
        yield services


async def _put(stack: ServiceStack, key: Merchant, body: dict[str, Any]) -> dict[str, Any]:
    status, saved = await stack.request("PUT", "/v1/billing_profile", json=body, headers=key.headers)
    assert status == 200, saved
    return saved


async def _get(stack: ServiceStack, key: Merchant) -> dict[str, Any]:
    status, profile = await stack.request("GET", "/v1/billing_profile", headers=key.headers)
    assert status == 200, profile
    return profile


async def _paid(stack: ServiceStack, merchant: TwoModeMerchant, mode: str) -> dict[str, Any]:
    key = merchant.key(mode)
    session = await create_session(
        stack, key, amount="100.00", customer={"name": "Buyer GmbH", "country": "DE"}
    )
    await final_inbox_row(stack, "onecom", await send_onecom(stack, mode, session))
    paid = await fulfilled(stack, key, session["id"])
    assert paid["invoice_id"], paid
    return paid


async def _paid_invoice(stack: ServiceStack, merchant: TwoModeMerchant, mode: str) -> str:
    return (await _paid(stack, merchant, mode))["invoice_id"]


async def _portal_html(stack: ServiceStack, access_url: str) -> str:
    """The customer portal of a session, as its access link opens it (token for cookie, then the page)."""
    token = parse_qs(urlsplit(access_url).query)["token"][0]
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.base_url}/access", params={"token": token}, headers=HTML, allow_redirects=False
    ) as response:
        assert response.status == 303
        jar: SimpleCookie = SimpleCookie()
        for header in response.headers.getall("Set-Cookie"):
            jar.load(header)
    cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in jar.items())
    async with stack.http.get(f"{stack.base_url}/access", headers={**HTML, "Cookie": cookie}) as response:
        assert response.status == 200
        return await response.text()


async def _documents(stack: ServiceStack, key: Merchant, invoice_id: str) -> tuple[dict, str, str, str]:
    """The invoice as JSON, its HTML, its PDF's page text, and its embedded Factur-X XML ('' if none)."""
    status, body = await stack.request("GET", f"/v1/invoices/{invoice_id}", headers=key.headers)
    assert status == 200, body
    status, html = await stack.request("GET", f"/v1/invoices/{invoice_id}/html", headers=key.headers)
    assert status == 200, html
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.base_url}/v1/invoices/{invoice_id}/pdf", headers=key.headers
    ) as response:
        assert response.status == 200
        pdf = await response.read()
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    xml = reader.attachments.get("factur-x.xml", [b""])[0]
    return body, html, text, xml.decode()


def _states(marks: tuple[str, ...], *documents: str) -> None:
    for document in documents:
        for mark in marks:
            assert mark in document, (mark, document[:2000])


def _never_states(marks: tuple[str, ...], *documents: str) -> None:
    for document in documents:
        leaked = [mark for mark in marks if mark in document]
        assert not leaked, (leaked, document[:2000])


async def test_each_key_reads_and_writes_only_its_own_modes_profile(stack: ServiceStack) -> None:
    merchant = await two_mode_merchant(stack, "Worlds", "worlds")
    await _put(stack, merchant.live, LIVE_PROFILE)
    # The test key writes after the live key: with one profile per merchant this would overwrite the live one.
    saved = await _put(stack, merchant.test, TEST_PROFILE)
    assert (saved["mode"], saved["seller"]["name"]) == ("test", "Sandbox Tinker Ltd")

    live = await _get(stack, merchant.live)
    assert live["mode"] == "live"
    assert live["seller"]["name"] == "Livewire Seller AG"
    assert (live["invoice_prefix"], live["tax_rate_bps"]) == ("LIVE", 810)
    assert live["support_email"] == "live-help@livewire.example"
    assert (live["complete"], live["missing_fields"]) == (True, [])
    test = await _get(stack, merchant.test)
    assert test["mode"] == "test"
    assert (test["seller"]["name"], test["invoice_prefix"]) == ("Sandbox Tinker Ltd", "SANDBOX")

    # A partial PUT with the test key changes the test profile only.
    await _put(stack, merchant.test, {"seller": {"tax_id": ""}, "tax_rate_bps": 0})
    test = await _get(stack, merchant.test)
    assert (test["complete"], test["missing_fields"], test["tax_rate_bps"]) == (False, ["seller_tax_id"], 0)
    live = await _get(stack, merchant.live)
    assert (live["complete"], live["seller"]["tax_id"], live["tax_rate_bps"]) == (True, "CHE123456789", 810)
    # An incomplete TEST profile never blocks live sessions: only the live profile decides (contract §9).
    await create_session(stack, merchant.live)


async def test_a_test_key_put_never_changes_what_a_live_invoice_prints(stack: ServiceStack) -> None:
    merchant = await two_mode_merchant(stack, "Printer", "printer")
    await _put(stack, merchant.live, LIVE_PROFILE)
    await _put(stack, merchant.test, TEST_PROFILE)

    live_id = await _paid_invoice(stack, merchant, "live")
    body, html, text, xml = await _documents(stack, merchant.live, live_id)
    assert body["mode"] == "live"
    assert body["number"].startswith("LIVE-"), body["number"]
    assert body["seller"]["name"] == "Livewire Seller AG"
    assert body["seller"]["tax_id"] == "CHE123456789"
    assert body["tax_rate_bps"] == 810
    _states(("Livewire Seller AG", "CHE123456789"), html, text, xml)
    _states(("live-help@livewire.example",), html)
    _never_states(TEST_MARKS, html, text, xml, str(body))

    # And the other way round: the test invoice states the test world's seller only.
    test_id = await _paid_invoice(stack, merchant, "test")
    body, html, text, _ = await _documents(stack, merchant.test, test_id)
    assert body["mode"] == "test"
    assert body["number"].startswith("SANDBOX-"), body["number"]
    assert (body["seller"]["name"], body["tax_rate_bps"]) == ("Sandbox Tinker Ltd", 2000)
    _states(("Sandbox Tinker Ltd", "GB000000000"), html, text)
    _states(("sandbox-help@sandbox.example",), html)
    _never_states(LIVE_MARKS, html, text, str(body))

    # A later test-key PUT changes nothing a live document prints, and a live-key PUT nothing a test document
    # prints. Neither changes a document already downloaded: it is served as first rendered (billing 0130).
    await _put(stack, merchant.test, {"support_email": "changed-by-a-developer@sandbox.example"})
    _, html, _, _ = await _documents(stack, merchant.live, live_id)
    _states(("live-help@livewire.example",), html)
    assert "changed-by-a-developer" not in html
    await _put(stack, merchant.live, {"support_email": "new-live-help@livewire.example"})
    _, html, _, _ = await _documents(stack, merchant.test, test_id)
    _states(("sandbox-help@sandbox.example",), html)
    assert "changed-by-a-developer" not in html and "new-live-help" not in html


async def test_the_portal_of_a_live_session_shows_the_live_support_contact(stack: ServiceStack) -> None:
    merchant = await two_mode_merchant(stack, "Portal", "portal")
    await _put(stack, merchant.live, {**LIVE_PROFILE, "support_url": "https://livewire.example/help"})
    await _put(stack, merchant.test, {**TEST_PROFILE, "support_url": "https://sandbox.example/help"})
    for mode, mine, theirs in (
        ("live", ("live-help@livewire.example", "https://livewire.example/help"), TEST_MARKS),
        ("test", ("sandbox-help@sandbox.example", "https://sandbox.example/help"), LIVE_MARKS),
    ):
        paid = await _paid(stack, merchant, mode)
        html = await _portal_html(stack, paid["access_url"])
        _states(mine, html)
        _never_states((*theirs, "livewire.example/help" if mode == "test" else "sandbox.example/help"), html)
