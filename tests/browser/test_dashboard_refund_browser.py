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
from support.web3_chain import (
    Chain,
    chain_env,
    create_web3_session,
    running_chain,
    send_hint,
    wait_status,
    web3_merchant,
)

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


# --- a web3 session: "Record a refund you sent" ------------------------------------------------------------


@pytest.fixture(scope="module")
async def chain() -> AsyncIterator[Chain]:
    async with running_chain() as chain:
        yield chain


@pytest.fixture
def stack_env(stack_env: dict[str, str], request: pytest.FixtureRequest) -> dict[str, str]:
    # Only a test that asks for the chain gets a stack that reads it; the card test's stack stays as it was.
    if "chain" not in request.fixturenames:
        return stack_env
    return {**stack_env, **chain_env(request.getfixturevalue("chain"), watcher=False)}


async def _paid_web3_session(
    stack: ServiceStack, chain: Chain, merchant: Merchant, payer: str
) -> dict[str, Any]:
    """A 0.05 ETH web3 session paid by `payer`, proved by a hint and confirmed."""
    session = await create_web3_session(stack, merchant, "0.05", "ETH")
    tx = await chain.pay_eth(session["payment"]["deposit_address"], 50 * 10**15, sender=payer)
    await chain.mine(1)
    status, _ = await send_hint(stack, tx, session["id"])
    assert status == 200
    await wait_status(stack, merchant, session["id"], "paid")
    return session


@pytest.mark.chain
async def test_record_a_sent_web3_refund_by_clicking_through_the_dashboard(
    stack: ServiceStack, chain: Chain, browser: Any
) -> None:
    from playwright.async_api import expect

    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    payer = chain.anvil.accounts[1]
    session = await _paid_web3_session(stack, chain, merchant, payer)
    sid, deposit = session["id"], session["payment"]["deposit_address"]
    # The merchant holds the deposit address's key: anvil sends from it here, with ETH for gas.
    await chain.anvil.rpc("anvil_impersonateAccount", [deposit])
    await chain.anvil.rpc("anvil_setBalance", [deposit, hex(10**18)])
    back = await chain.pay_eth(payer, 10 * 10**15, sender=deposit)
    await chain.mine(1)

    context = await browser.new_context()
    page = await context.new_page()
    await _sign_in(page, stack, merchant.api_key)
    await page.goto(f"{stack.base_url}/dashboard/sessions/{sid}")
    await expect(page.get_by_role("heading", name="Record a refund you sent")).to_be_visible()

    # A hash mistyped: a sentence, nothing recorded, the form still there.
    await page.get_by_label("Transaction hash").fill(back[:-2])
    await page.get_by_role("button", name="Record refund").click()
    main = page.locator("main")
    await expect(main).to_contain_text("That is not a transaction hash")

    await page.get_by_label("Transaction hash").fill(back)
    await page.get_by_label("Reason").fill("Returned the goods")
    await page.get_by_role("button", name="Record refund").click()
    await expect(page.locator("#notice")).to_contain_text("Recorded: your refund of 0.010000000000000000 ETH")
    row = page.locator("#refunds tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(back.lower())
    await expect(row).to_contain_text("Returned the goods")

    status, body = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
    assert status == 200, body
    assert body["amount_refunded"] == "0.010000000000000000", body
    assert [r["provider_refund_id"] for r in body["refunds"]] == [back.lower()], body["refunds"]
    await context.close()
