"""The seed's whole flow, clicked through in a real browser against `paygate up` (contract §11).

`paygate up` runs as a person runs it (a subprocess with its own PAYGATE_HOME and embedded PostgreSQL), with
its One.com test double. The merchant creates a session over the API; the customer opens the checkout page,
follows the One.com link, clicks "Pay" on the double's hosted page (which sends the signed webhook), comes
back to a paid checkout page, and opens the access link from the mail: the portal shows the invoice and
reveals the key. A second customer ticks "Don't send the webhook": reconciliation pays that session.

Debian's /usr/bin/chromium through Playwright (never `playwright install`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from support.chromium import launch_chromium, require_chromium
from support.paygate_up import access_link, running_paygate_up

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def paygate_up(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`paygate up` in a fresh home; reconciliation after 3 s so that a dropped webhook is caught quickly."""
    require_chromium()
    env = {"PAYGATE_RECONCILE_AFTER_S": "3", "PAYGATE_RECONCILE_INTERVAL_MS": "500"}
    with running_paygate_up(tmp_path / "home", env) as stack:
        yield stack


def _create_session(stack: dict[str, Any], email_address: str) -> dict[str, Any]:
    created = requests.post(
        f"{stack['gateway_url']}/v1/sessions",
        json={
            "amount": "42.00",
            "currency": "EUR",
            "provider": "onecom",
            "customer_email": email_address,
            "description": "Team plan",
        },
        headers={"X-API-Key": stack["merchant"]["api_key"]},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["provider_checkout_url"].startswith(stack["onecom"]["api_base"] + "/pay/"), body
    return body


def _settled_events(stack: dict[str, Any], session_id: str, timeout: float = 15) -> list[tuple[str, str]]:
    """(source, status) of the session's inbox events once each has its verdict."""
    deadline = time.monotonic() + timeout
    found: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        events = requests.get(
            f"{stack['gateway_url']}/v1/events",
            headers={"X-API-Key": stack["merchant"]["api_key"]},
            timeout=10,
        ).json()["data"]
        found = [(e["source"], e["status"]) for e in events if e["session_id"] == session_id]
        if found and all(status != "received" for _, status in found):
            return found
        time.sleep(0.3)
    return found


async def test_clickable_onecom_checkout_from_session_to_portal(paygate_up: dict[str, Any]) -> None:
    from playwright.async_api import expect

    stack = paygate_up
    gateway = stack["gateway_url"]
    assert stack["onecom"]["api_base"].startswith("http://127.0.0.1:")
    session = _create_session(stack, "ann@example.com")

    async with launch_chromium() as browser:
        page = await (await browser.new_context()).new_page()
        # A loaded 2-core machine runs the database and four services beside the browser.
        page.set_default_timeout(60_000)
        expect.set_options(timeout=30_000)
        response = await page.goto(gateway + session["url"])
        assert response is not None and response.status == 200
        await expect(page.locator("#status")).to_have_text("Awaiting payment")
        link = page.locator("#onecom-link")
        await expect(link).to_have_attribute("href", session["provider_checkout_url"])

        # One.com's hosted page (the test double): Pay sends the signed webhook and returns here.
        await link.click()
        await page.wait_for_url(session["provider_checkout_url"])
        await expect(page.locator("#amount")).to_have_text("42.00 EUR")
        await page.click("#pay")
        await page.wait_for_url(re.compile(re.escape(gateway) + r"/checkout\?session=.*result=success"))
        await expect(page.locator("#status")).to_have_text("Paid", timeout=45_000)
        await expect(page.locator("#paid-message")).to_be_visible()

        # The mail carries the access link; the portal shows the invoice and reveals the key once.
        url = access_link(Path(stack["mail_dir"]), "ann@example.com")
        response = await page.goto(url)
        assert response is not None and response.status == 200
        await expect(page.locator("#invoice-amount")).to_contain_text("42.00")
        await page.click("#reveal-button")
        await page.wait_for_selector("#api-key-secret")
        secret = (await page.text_content("#api-key-secret") or "").strip()
        verdict = requests.post(
            f"{gateway}/v1/api_keys/verify",
            json={"key": secret},
            headers={"X-API-Key": stack["merchant"]["api_key"]},
            timeout=10,
        ).json()
        assert verdict["valid"] is True and verdict["session_id"] == session["id"]

        # The webhook is dropped this time: the checkout waits, and reconciliation pays it.
        second = _create_session(stack, "bob@example.com")
        await page.goto(gateway + second["url"])
        await page.click("#onecom-link")
        await page.wait_for_url(second["provider_checkout_url"])
        await page.check("#drop-webhook")
        await page.click("#pay")
        await page.wait_for_url(re.compile(re.escape(gateway) + r"/checkout\?session=.*"))
        await expect(page.locator("#status")).to_have_text("Paid", timeout=45_000)
        assert _settled_events(stack, second["id"]) == [("reconcile", "applied")]
        assert access_link(Path(stack["mail_dir"]), "bob@example.com")
