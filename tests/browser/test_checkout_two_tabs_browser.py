"""A customer who opens the checkout link from their mail a second time, in a second tab, can still pay in the
first: the second page load must not replace the CSRF token the first tab's form carries.

The link in a mail is a cross-site navigation (from the mail client's site to paygate's), and a browser sends
no SameSite=Strict cookie on it: the second page then saw no token, made a new one and overwrote the first
tab's. The checkout's CSRF cookie is Lax, so a top-level link carries it while a cross-site POST still does not.
A real Chromium models exactly that; a plain HTTP client would not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from support.chromium import launch_chromium
from support.stack import ServiceStack

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser_context() -> AsyncIterator[Any]:
    async with launch_chromium() as browser:
        yield await browser.new_context()


async def _mail_page(link: str) -> tuple[web.AppRunner, str]:
    """A page on another site (localhost, where paygate is 127.0.0.1) holding the link, as a webmail would."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text=f'<a id="link" href="{link}">Open your checkout</a>', content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "localhost", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://localhost:{port}/"


async def test_a_second_tab_opened_from_the_mail_leaves_the_first_tabs_form_working(
    stack: ServiceStack, browser_context: Any
) -> None:
    from playwright.async_api import expect

    merchant = await stack.create_merchant("Live Shop", "liveshop", mode="live")
    status, created = await stack.request(
        "POST", "/v1/sessions", json={"amount": "42.00", "currency": "EUR"}, headers=merchant.headers
    )
    assert status == 201, created
    link = stack.base_url + created["url"]
    runner, mail_url = await _mail_page(link)
    try:
        first = await browser_context.new_page()
        mail = await browser_context.new_page()
        await mail.goto(mail_url)
        await mail.click("#link")  # the first tab, from the mail
        await expect(mail.get_by_label("Name")).to_be_visible()
        first, second = mail, first
        await second.goto(mail_url)
        await second.click("#link")  # the same link again, in a second tab
        await expect(second.get_by_label("Name")).to_be_visible()

        await first.get_by_label("Name").fill("Ada Lovelace")
        await first.get_by_label("Country").fill("GB")
        await first.get_by_role("button", name="Continue to payment").click()
        await expect(first.locator("#customer-form")).to_have_count(0)
        await expect(first.locator("body")).not_to_contain_text("the form has expired")
    finally:
        await runner.cleanup()

    status, session = await stack.request("GET", f"/v1/sessions/{created['id']}", headers=merchant.headers)
    assert session["customer"]["name"] == "Ada Lovelace" and session["customer"]["country"] == "GB"
