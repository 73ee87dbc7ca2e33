"""The dashboard's Refund action in a real headless Chromium, against a real stack: Refund on a paid session's
page -> a confirm page saying what will happen -> the session's page lists the refund.

Uses Debian's /usr/bin/chromium through Playwright (never `playwright install`), as test_dashboard_browser.py:
skipped locally without it, failed in CI (env CI set).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from paygate_dev.devtools.signing import standard_delivery
from paygate_dev.devtools.stripe_fixtures import build_onecom_event
from support.chromium import launch_chromium
from support.polling import eventually
from support.stack import Merchant, ServiceStack

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with launch_chromium() as instance:
        yield instance


async def _sign_in(page: Any, stack: ServiceStack, key: str) -> None:
    await page.goto(f"{stack.base_url}/dashboard/sign-in")
    await page.get_by_label("Secret key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{stack.base_url}/dashboard")


async def _paid_session(stack: ServiceStack, env: dict[str, str], merchant: Merchant, amount: str) -> str:
    """A One.com session paid by a signed webhook (this stack has no One.com API key: refunds are recorded
    as made elsewhere)."""
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": amount, "currency": "EUR", "provider": "onecom"},
        headers=merchant.headers,
    )
    assert status == 201, created
    event = build_onecom_event("payment.succeeded", created["id"], created["amount_minor"], "EUR")
    raw, headers = standard_delivery(event, env["PAYGATE_ONECOM_WEBHOOK_SECRETS"], int(time.time()))
    status, receipt = await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers)
    assert status == 200, receipt

    async def paid() -> bool:
        status, body = await stack.request("GET", f"/v1/sessions/{created['id']}", headers=merchant.headers)
        return status == 200 and body["status"] == "paid"

    await eventually(paid, timeout=30)
    return str(created["id"])


async def test_refund_part_of_a_session_by_clicking_through_the_dashboard(
    stack: ServiceStack, stack_env: dict[str, str], browser: Any
) -> None:
    from playwright.async_api import expect

    merchant = await stack.create_merchant()
    sid = await _paid_session(stack, stack_env, merchant, "40.00")
    context = await browser.new_context()
    page = await context.new_page()
    await _sign_in(page, stack, merchant.api_key)
    await page.goto(f"{stack.base_url}/dashboard/sessions/{sid}")

    amount = page.get_by_label("Amount to refund (EUR)")
    await expect(amount).to_have_value("40.00")
    await amount.fill("12.50")
    await page.get_by_label("Reason").fill("Damaged in transit")
    await page.get_by_role("button", name="Refund…").click()

    await expect(page.get_by_role("heading", name="Refund 12.50 EUR?")).to_be_visible()
    main = page.locator("main")
    await expect(main).to_contain_text("made elsewhere")
    await expect(main).to_contain_text("27.50 EUR")
    await page.get_by_role("button", name="Yes, refund 12.50 EUR").click()

    await expect(page.locator("#notice")).to_contain_text("refund")
    row = page.locator("#refunds tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("12.50 EUR")
    await expect(row).to_contain_text("Damaged in transit")
    await expect(page.get_by_label("Amount to refund (EUR)")).to_have_value("27.50")

    status, body = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
    assert status == 200, body
    assert [r["amount"] for r in body["refunds"]] == ["12.50"], body["refunds"]
    await context.close()
