"""In a real Chromium, the Webhooks page shows each endpoint's whole URL in the Redeliver choice and in the
delivery log, wrapped (never cut) at desktop and phone width, so two endpoints that differ only at the end
are told apart; redelivering to the second one reaches the second one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from paygate_dev.devtools.signing import standard_delivery
from paygate_dev.devtools.stripe_fixtures import build_onecom_event
from support.chromium import launch_chromium
from support.polling import eventually
from support.stack import ServiceStack

pytestmark = pytest.mark.browser

PREFIX = "http://127.0.0.1:9/paygate/webhooks/orders/region/europe-west/service/fulfilment"
URLS = (f"{PREFIX}?tenant=alpha&shard=1", f"{PREFIX}?tenant=bravo&shard=2")


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, "PAYGATE_ALLOW_LOOPBACK_WEBHOOKS": "true"}


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with launch_chromium() as instance:
        yield instance


async def _deliveries(stack: ServiceStack, headers: dict[str, str], query: str) -> list[Any] | None:
    status, body = await stack.request("GET", f"/v1/webhook_deliveries?{query}", headers=headers)
    return body["data"] if status == 200 and body["data"] else None


# The text a person sees of an element, and whether any of it is cut off (clipped by its box or a parent's).
_SEEN = """el => {
  const style = getComputedStyle(el);
  let clipped = el.scrollWidth > el.clientWidth + 1;
  for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
    const box = p.getBoundingClientRect(), own = el.getBoundingClientRect();
    const cuts = getComputedStyle(p).overflowX !== "visible";
    if (cuts && (own.right > box.right + 1 || own.left < box.left - 1)) clipped = true;
  }
  return {text: el.innerText.trim(), wrap: style.overflowWrap, clipped: clipped};
}"""


async def test_endpoint_urls_are_whole_and_wrapped(stack: ServiceStack, browser: Any) -> None:
    from playwright.async_api import expect

    merchant = await stack.create_merchant()
    ids = {}
    for url in URLS:
        status, endpoint = await stack.request(
            "POST", "/v1/webhook_endpoints", json={"url": url}, headers=merchant.headers
        )
        assert status == 201, endpoint
        ids[url] = endpoint["id"]
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "9.00", "currency": "EUR", "provider": "onecom"},
        headers=merchant.headers,
    )
    assert status == 201, created
    event = build_onecom_event("payment.succeeded", created["id"], created["amount_minor"], "EUR")
    raw, headers = standard_delivery(event, stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"], int(time.time()))
    assert (await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers))[0] == 200
    for endpoint_id in ids.values():
        await eventually(
            lambda e=endpoint_id: _deliveries(stack, merchant.headers, f"endpoint={e}"), timeout=30
        )

    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{stack.base_url}/dashboard/sign-in")
    await page.get_by_label("Secret key").fill(merchant.api_key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{stack.base_url}/dashboard")
    await page.goto(f"{stack.base_url}/dashboard/webhooks")

    for width in (1280, 390):
        await page.set_viewport_size({"width": width, "height": 900})
        row = page.locator("#merchant-events tbody tr").first
        for url in URLS:
            choice = row.get_by_text(url, exact=True)
            await expect(choice).to_be_visible()
            seen = await choice.evaluate(_SEEN)
            assert seen == {"text": url, "wrap": "anywhere", "clipped": False}, (width, seen)
        logged = page.locator("#webhook-deliveries tbody td.endpoint-url-cell")
        assert await logged.count() >= 2
        texts = set()
        for index in range(await logged.count()):
            seen = await logged.nth(index).evaluate(_SEEN)
            assert seen["wrap"] == "anywhere" and not seen["clipped"], (width, seen)
            texts.add(seen["text"])
        assert set(URLS) <= texts, (width, texts)

    # The choice is the endpoint that is sent to: redeliver the newest event to the second endpoint.
    await page.set_viewport_size({"width": 1280, "height": 900})
    row = page.locator("#merchant-events tbody tr").first
    event_id = await row.get_attribute("data-event-id")
    before = await _deliveries(stack, merchant.headers, f"event={event_id}&endpoint={ids[URLS[1]]}") or []
    await row.get_by_label(URLS[1], exact=True).check()
    await row.get_by_role("button", name="Redeliver").click()
    await expect(page.locator("#notice")).to_contain_text("queued for delivery again")

    async def redelivered() -> list[Any] | None:
        found = await _deliveries(stack, merchant.headers, f"event={event_id}&endpoint={ids[URLS[1]]}")
        return found if found and len(found) > len(before) else None

    await eventually(redelivered, timeout=30)
    await context.close()
