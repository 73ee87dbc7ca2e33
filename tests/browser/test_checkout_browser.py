"""The checkout page in a real headless Chromium: it shows the session and turns to paid without a reload.

Uses Debian's /usr/bin/chromium through Playwright (never `playwright install`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from paygate_dev.devtools.signing import standard_delivery
from paygate_dev.devtools.stripe_fixtures import build_onecom_event
from support.chromium import launch_chromium
from support.stack import ServiceStack

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser_page() -> AsyncIterator[Any]:
    async with launch_chromium() as browser:
        context = await browser.new_context()
        page = await context.new_page()
        yield page


async def test_checkout_page_updates_to_paid_without_reload(
    stack: ServiceStack, stack_env: dict[str, str], browser_page: Any
) -> None:
    from playwright.async_api import expect

    page = browser_page
    merchant = await stack.create_merchant(name="Browser & Co", prefix="browser")
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "42.00", "currency": "EUR", "provider": "onecom", "description": "Team plan"},
        headers=merchant.headers,
    )
    assert status == 201, created

    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    navigations: list[str] = []
    page.on(
        "framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None
    )

    response = await page.goto(stack.base_url + created["url"])
    assert response is not None and response.status == 200
    await expect(page.locator("#merchant-name")).to_have_text("Browser & Co")
    await expect(page.locator("#amount")).to_have_text("42.00")
    await expect(page.locator("#currency")).to_have_text("EUR")
    await expect(page.locator("#status")).to_have_text("Awaiting payment")
    await expect(page.locator("#how-to-pay")).to_be_visible()
    await expect(page.locator("#paid-message")).to_be_hidden()
    await page.evaluate("window.__sameDocument = true")

    # One.com reports the payment through a correctly signed webhook, as in production.
    event = build_onecom_event("payment.succeeded", created["id"], created["amount_minor"], "EUR")
    raw, headers = standard_delivery(event, stack_env["PAYGATE_ONECOM_WEBHOOK_SECRETS"], int(time.time()))
    status, receipt = await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers)
    assert status == 200 and receipt["received"] is True, receipt

    await expect(page.locator("#status")).to_have_text("Paid", timeout=10_000)
    await expect(page.locator("#paid-message")).to_be_visible()
    await expect(page.locator("#how-to-pay")).to_be_hidden()
    assert await page.evaluate("window.__sameDocument === true")  # updated in place, not reloaded
    assert navigations == [stack.base_url + created["url"]]
    # The strict CSP let the nonce'd script run and refused nothing on the page.
    assert not [line for line in console if "Content Security Policy" in line], console


async def test_unknown_session_page_in_browser(stack: ServiceStack, browser_page: Any) -> None:
    response = await browser_page.goto(
        f"{stack.base_url}/checkout?session=00000000-0000-0000-0000-000000000000"
    )
    assert response is not None and response.status == 404
    assert await browser_page.locator("h1").inner_text() == "Checkout not found"
