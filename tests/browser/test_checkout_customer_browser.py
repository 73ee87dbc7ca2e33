"""Contract §9 in a real headless Chromium: a live session without the buyer's name and country shows a form
with fields labelled "Name" and "Country" before the way to pay; submitting it (a real same-origin form post,
with the browser's own Sec-Fetch-Site and SameSite=Lax cookie) saves the buyer and shows how to pay.

Uses Debian's /usr/bin/chromium through Playwright (never `playwright install`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from support.chromium import launch_chromium
from support.stack import ServiceStack

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser_page() -> AsyncIterator[Any]:
    async with launch_chromium() as browser:
        page = await (await browser.new_context()).new_page()
        yield page


async def test_a_live_checkout_asks_for_name_and_country_before_payment(
    stack: ServiceStack, browser_page: Any
) -> None:
    from playwright.async_api import expect

    page = browser_page
    merchant = await stack.create_merchant("Live Shop", "liveshop", mode="live")
    status, created = await stack.request(
        "POST", "/v1/sessions", json={"amount": "42.00", "currency": "EUR"}, headers=merchant.headers
    )
    assert status == 201, created
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))

    response = await page.goto(stack.base_url + created["url"])
    assert response is not None and response.status == 200
    await expect(page.get_by_label("Name")).to_be_visible()
    await expect(page.get_by_label("Country")).to_be_visible()
    await expect(page.locator("#card-unavailable")).to_have_count(0)

    # The browser's own validation and then the server's: a country that is no code is refused by name.
    await page.get_by_label("Name").fill("Ada Lovelace")
    await page.get_by_label("Country").fill("G1")
    await page.evaluate("document.getElementById('customer-country').removeAttribute('pattern')")
    await page.get_by_role("button", name="Continue to payment").click()
    await expect(page.locator("#customer-error")).to_have_attribute("data-code", "invalid_customer_country")
    await expect(page.get_by_label("Name")).to_have_value("Ada Lovelace")

    await page.get_by_label("Country").fill("GB")
    await page.get_by_role("button", name="Continue to payment").click()
    # This stack has no card rail, and the page says so plainly.
    await expect(page.locator("#card-unavailable")).to_be_visible()
    await expect(page.locator("#customer-form")).to_have_count(0)
    assert page.url.endswith(f"/checkout?session={created['id']}")

    status, session = await stack.request("GET", f"/v1/sessions/{created['id']}", headers=merchant.headers)
    assert session["customer"] == {"name": "Ada Lovelace", "country": "GB", "address": [], "vat_id": None}
    # No CSP violation or script error on the way (the form posts to 'self', which the policy allows); the one
    # expected console error is the refused form's 400 itself.
    unexpected = [line for line in console if line.startswith("error") and "status of 400" not in line]
    assert not unexpected, console
