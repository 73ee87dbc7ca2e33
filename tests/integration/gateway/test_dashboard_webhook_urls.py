"""The Webhooks page names endpoints by their whole URL wherever it names them: in each event's Redeliver
choice and in the delivery log. Two endpoints whose URLs differ only at the end must be told apart, and the
URLs are escaped like everything else on the page."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import aiohttp
import pytest

from paygate_dev.devtools.signing import standard_delivery
from paygate_dev.devtools.stripe_fixtures import build_onecom_event
from support.polling import eventually
from support.stack import Merchant, ServiceStack

# Loopback receivers that refuse every connection (port 9): each delivery fails and is logged.
PREFIX = "http://127.0.0.1:9/paygate/webhooks/orders/region/europe-west/service/fulfilment"
URLS = (f"{PREFIX}?tenant=alpha&shard=1", f"{PREFIX}?tenant=bravo&shard=2")


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, "PAYGATE_ALLOW_LOOPBACK_WEBHOOKS": "true"}


async def endpoints_with_deliveries(stack: ServiceStack, merchant: Merchant) -> dict[str, str]:
    """Two endpoints (URL -> id) and a paid session whose events were delivered (and failed) to both."""
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
    status, receipt = await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers)
    assert status == 200, receipt
    for endpoint_id in ids.values():

        async def attempted(endpoint_id: str = endpoint_id) -> list[Any] | None:
            status, body = await stack.request(
                "GET", f"/v1/webhook_deliveries?endpoint={endpoint_id}", headers=merchant.headers
            )
            return body["data"] if status == 200 and body["data"] else None

        await eventually(attempted, timeout=30)
    return ids


def _section(page: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}".*?</table>', page, re.S)
    assert match is not None, f"no #{table_id} on the page"
    return match.group(0)


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


async def test_redeliver_and_delivery_log_show_each_endpoints_whole_url(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    ids = await endpoints_with_deliveries(stack, merchant)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            f"{stack.base_url}/dashboard/sign-in",
            data={"secret_key": merchant.api_key},
            allow_redirects=False,
        ) as response:
            assert response.status == 303
        async with http.get(f"{stack.base_url}/dashboard/webhooks") as response:
            assert response.status == 200
            page = await response.text()

    # Redeliver: every event's form offers each endpoint by its whole URL, with the endpoint's id as value.
    events = _section(page, "merchant-events")
    forms = re.findall(r"<form[^>]*redeliver.*?</form>", events, re.S)
    assert forms
    for form in forms:
        text = _text(form)
        for url, endpoint_id in ids.items():
            assert url in text, (url, text)
            assert f'value="{endpoint_id}"' in form
        assert "…" not in text and "..." not in text
    # The delivery log names the endpoint of each attempt, whole.
    log_text = _text(_section(page, "webhook-deliveries"))
    for url in URLS:
        assert url in log_text, (url, log_text)
    # Escaped as everything is: the raw "&" of a query string never reaches the HTML.
    assert "tenant=alpha&shard" not in page and "tenant=alpha&amp;shard=1" in page
