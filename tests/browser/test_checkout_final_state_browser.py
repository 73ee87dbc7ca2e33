"""The hosted checkout page stops asking for the session's status once the session is in a final state
(contract §6: `paid`, `failed`, `expired`, `refunded`; no payment event moves it again) and says which.

Real stack and Debian's headless Chromium (support.chromium); the page's polls are counted from the browser.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from paygate_dev.devtools.signing import standard_delivery
from paygate_dev.devtools.stripe_fixtures import build_onecom_event
from support import polling
from support.chromium import launch_chromium
from support.stack import Merchant, ServiceStack

pytestmark = pytest.mark.browser

POLL_INTERVAL_S = 2.0  # the page's own interval; three of them are watched


@pytest.fixture
async def browser_page() -> AsyncIterator[Any]:
    async with launch_chromium() as browser:
        context = await browser.new_context()
        page = await context.new_page()
        yield page


async def _onecom(stack: ServiceStack, stack_env: dict[str, str], body: dict[str, Any]) -> None:
    raw, headers = standard_delivery(body, stack_env["PAYGATE_ONECOM_WEBHOOK_SECRETS"], int(time.time()))
    status, receipt = await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers)
    assert status == 200 and receipt["received"] is True, receipt


async def _status_becomes(stack: ServiceStack, merchant: Merchant, session_id: str, want: str) -> None:
    async def check() -> bool | None:
        status, body = await stack.request("GET", f"/v1/sessions/{session_id}", headers=merchant.headers)
        return True if status == 200 and body["status"] == want else None

    await polling.eventually(check, timeout=30, interval=0.1, what=f"session {session_id} {want}")


def _count_polls(page: Any, session_id: str) -> list[str]:
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if f"/session/{session_id}/status" in r.url else None)
    return polls


async def test_a_refunded_sessions_page_does_not_poll_and_says_refunded(
    stack: ServiceStack, stack_env: dict[str, str], browser_page: Any
) -> None:
    from playwright.async_api import expect

    page = browser_page
    merchant = await stack.create_merchant(name="Refund & Co", prefix="refund")
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "10.00", "currency": "EUR", "provider": "onecom"},
        headers=merchant.headers,
    )
    assert status == 201, created
    sid = created["id"]
    paid = build_onecom_event("payment.succeeded", sid, created["amount_minor"], "EUR", "txn_final_1")
    await _onecom(stack, stack_env, paid)
    await _status_becomes(stack, merchant, sid, "paid")
    refunded = {
        "type": "payment.refunded",
        "data": {
            "session_id": sid,
            "transaction_id": "txn_final_1",
            "refund_id": "rf_final_1",
            "amount_minor": created["amount_minor"],
            "currency": "EUR",
        },
    }
    await _onecom(stack, stack_env, refunded)
    await _status_becomes(stack, merchant, sid, "refunded")

    polls = _count_polls(page, sid)
    response = await page.goto(stack.base_url + created["url"])
    assert response is not None and response.status == 200
    await asyncio.sleep(POLL_INTERVAL_S * 3)
    assert polls == [], f"a refunded session's page polled {len(polls)} times"
    await expect(page.locator("#status")).to_have_text("Refunded")
    await expect(page.locator("#refunded-message")).to_be_visible()
    await expect(page.locator("#how-to-pay")).to_be_hidden()


async def test_the_page_stops_polling_once_the_session_reaches_a_final_state(
    stack: ServiceStack, browser_page: Any
) -> None:
    from playwright.async_api import expect

    page = browser_page
    merchant = await stack.create_merchant()
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "3.00", "currency": "EUR", "provider": "onecom"},
        headers=merchant.headers,
    )
    assert status == 201, created
    sid = created["id"]
    polls = _count_polls(page, sid)
    await page.goto(stack.base_url + created["url"])
    await expect(page.locator("#status")).to_have_text("Awaiting payment")
    # Open: the page asks.
    await polling.eventually(lambda: _some(polls), timeout=10, interval=0.1, what="the page polls")

    status, expired = await stack.request("POST", f"/v1/sessions/{sid}/expire", headers=merchant.headers)
    assert status == 200 and expired["status"] == "expired", expired
    await expect(page.locator("#status")).to_have_text("Expired", timeout=10_000)
    await expect(page.locator('[data-show-in="expired"]')).to_be_visible()
    seen = len(polls)
    await asyncio.sleep(POLL_INTERVAL_S * 3)
    assert len(polls) == seen, f"the page kept polling after the session expired: {len(polls) - seen} more"


async def _some(polls: list[str]) -> bool | None:
    return True if polls else None
