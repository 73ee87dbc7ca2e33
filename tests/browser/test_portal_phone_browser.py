"""The customer portal on a phone: every page the portal's browser tests reach fits a 390x844 viewport (an
iPhone 12-14) without horizontal scrolling, with long keys, addresses and links wrapped, not hidden.

A test-started stack of the real services with a local SMTP sink (so the contact form and the email proof
are on the page) and Debian's headless Chromium (support.chromium).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from paygate_dev.smtp_sink import SmtpSink
from support import polling
from support.chromium import launch_chromium, require_chromium
from support.mail import portal_stack_env, running_smtp_sink
from support.stack import Merchant, ServiceStack

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
# A realistic worst case: a long support link and a long buyer address, which must wrap.
SUPPORT_URL = "https://support.example-merchant-with-a-long-name.test/help/customers/api-keys/" + "x" * 60
BUYER = "ann.marie.very-long-mailbox-name.for-testing@customers.example-merchant-with-a-long-name.test"


@pytest.fixture
async def smtp_sink(tmp_path: Path) -> AsyncIterator[SmtpSink]:
    async with running_smtp_sink(tmp_path / "mail") as sink:
        yield sink


@pytest.fixture
def stack_env(smtp_sink: SmtpSink) -> dict[str, str]:
    return portal_stack_env(smtp_sink.port)


async def _paid_access_url(stack: ServiceStack, merchant: Merchant, scopes: list[str] | None) -> str:
    """A Stripe session paid by a signed webhook and fulfilled; the access link the merchant hands on."""
    body: dict[str, Any] = {
        "amount": "1234.56",
        "currency": "EUR",
        "provider": "stripe",
        "customer_email": BUYER,
    }
    if scopes is not None:
        body["scopes"] = scopes
    status, session = await stack.request("POST", "/v1/sessions", json=body, headers=merchant.headers)
    assert status == 201, session
    event = build_stripe_event("payment_intent.succeeded", session["id"], session["amount_minor"], "EUR")
    raw, headers = stripe_delivery(
        event, stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0], int(time.time())
    )
    status, reply = await stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    assert status == 200, reply

    async def fulfilled() -> str | None:
        status, got = await stack.request("GET", f"/v1/sessions/{session['id']}", headers=merchant.headers)
        return (
            got["access_url"] if status == 200 and got.get("access_url") and got.get("invoice_id") else None
        )

    url: str = await polling.eventually(fulfilled, timeout=30, interval=0.1, what="session fulfilled")
    # The link names the configured public URL; the test gateway listens on an ephemeral port.
    return f"{stack.base_url}/access?token={url.split('token=', 1)[1]}"


_OVERFLOW = """() => {
    const width = window.innerWidth;
    const wide = [];
    for (const el of document.querySelectorAll('body *')) {
        const box = el.getBoundingClientRect();
        if (box.width > 0 && box.right > width + 0.5) {
            wide.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}: right ${Math.round(box.right)}`);
        }
    }
    return {scroll: document.documentElement.scrollWidth, inner: width, wide: wide.slice(0, 8)};
}"""


async def _fits(page: Any, what: str) -> None:
    got = await page.evaluate(_OVERFLOW)
    assert got["scroll"] <= got["inner"], (
        f"{what}: {got['scroll']} px wide on a {got['inner']} px screen: {got['wide']}"
    )
    assert got["inner"] == PHONE["width"], got


async def test_every_portal_page_fits_a_phone(stack: ServiceStack) -> None:
    require_chromium()
    merchant = await stack.create_merchant(name="A Merchant With Quite A Long Trading Name GmbH & Co. KG")
    status, profile = await stack.request(
        "PUT",
        "/v1/billing_profile",
        json={
            "support_email": "customer-support-team@example-merchant-with-a-long-name.test",
            "support_url": SUPPORT_URL,
        },
        headers=merchant.headers,
    )
    assert status == 200, profile
    narrow_url = await _paid_access_url(stack, merchant, ["read", "write", "billing:read"])
    wide_url = await _paid_access_url(stack, merchant, None)  # every scope: the free-text scopes field

    async with launch_chromium() as browser:
        context = await browser.new_context(
            # Not is_mobile: Chromium's mobile emulation zooms out to show a page that is too wide, so the window
            # would grow with the page; a fixed 390 px window shows the overflow as scroll width.
            viewport=PHONE,
            device_scale_factor=3,
            java_script_enabled=False,
        )
        page = await context.new_page()
        page.set_default_timeout(30_000)

        response = await page.goto(narrow_url)
        assert response is not None and response.status == 200
        assert (
            await page.locator("#support-url").count() == 1
            and await page.locator("#email-proof").count() == 1
        )
        await _fits(page, "the portal before the reveal")

        await page.click("#reveal-button")
        await page.wait_for_selector("#api-key-secret")
        secret = (await page.text_content("#api-key-secret") or "").strip()
        await _fits(page, "the page showing the key once")

        await page.goto(f"{stack.base_url}/access")
        assert (
            await page.locator("#roll-form").count() == 1 and await page.locator("#contact-form").count() == 1
        )
        await _fits(page, "the portal with permissions, roll, revoke, usage and contact")

        await page.click("#email-code-button")
        await page.wait_for_selector("#code")
        await _fits(page, "the portal asking for the mailed code")

        await page.fill("#ip_allowlist", "203.0.113.1/24")
        await page.click("#settings-button")
        await page.wait_for_selector("#form-error")
        await _fits(page, "a refused form (bad CIDR)")

        await page.get_by_label("Current key").fill(secret)
        await page.click("#roll-button")
        await page.wait_for_selector("#api-key-secret")
        await _fits(page, "the page showing the rolled key")

        # Another purchase of every scope: the scopes are a free-text field.
        await page.goto(wide_url)
        await page.click("#reveal-button")
        await page.goto(f"{stack.base_url}/access")
        assert await page.locator("#scopes").count() == 1
        await _fits(page, "the portal of a key with every scope")

        head, _, signature = wide_url.split("token=", 1)[1].rpartition(".")
        forged = f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
        response = await page.goto(f"{stack.base_url}/access?token={forged}")
        assert response is not None and response.status == 401
        await _fits(page, "the invalid-link page")
        await context.close()
