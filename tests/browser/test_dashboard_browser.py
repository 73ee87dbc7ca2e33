"""The merchant dashboard (contract §10) in a real headless Chromium, against a real stack.

Uses Debian's /usr/bin/chromium through Playwright (never `playwright install`): skipped locally without it,
failed in CI (env CI set). Set PAYGATE_DASHBOARD_SCREENSHOTS=<dir> to save a screenshot of every page at
1280 and 390 px wide (docs/dashboard/ keeps the published ones).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate_dev.devtools.signing import standard_delivery
from paygate_dev.devtools.stripe_fixtures import build_onecom_event
from support.chromium import launch_chromium
from support.polling import eventually
from support.stack import Merchant, ServiceStack, make_test_secrets, running_stack

pytestmark = pytest.mark.browser

SCREENSHOTS = os.environ.get("PAYGATE_DASHBOARD_SCREENSHOTS")
NAV_LINKS = ("Overview", "Sessions", "Revenue", "Invoices", "Keys", "Quarantine", "Events", "Webhooks")


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    # The webhook endpoint of the main test is on loopback (contract §7 allows it only with this flag).
    return {**stack_env, "PAYGATE_ALLOW_LOOPBACK_WEBHOOKS": "true"}


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with launch_chromium() as instance:
        yield instance


async def _shoot(page: Any, name: str) -> None:
    """Screenshots at desktop and phone width, when asked for (PAYGATE_DASHBOARD_SCREENSHOTS)."""
    if not SCREENSHOTS:
        return
    Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        await page.set_viewport_size({"width": width, "height": 900})
        await page.screenshot(path=f"{SCREENSHOTS}/{name}-{width}.png", full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 900})


async def _sign_in(page: Any, stack: ServiceStack, key: str) -> None:
    await page.goto(f"{stack.base_url}/dashboard/sign-in")
    await page.get_by_label("Secret key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{stack.base_url}/dashboard")


async def _send_onecom(stack: ServiceStack, env: dict[str, str], event: dict[str, Any]) -> None:
    raw, headers = standard_delivery(event, env["PAYGATE_ONECOM_WEBHOOK_SECRETS"], int(time.time()))
    status, receipt = await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers)
    assert status == 200, receipt


async def _paid_session(
    stack: ServiceStack, env: dict[str, str], merchant: Merchant, amount: str, email: str
) -> dict[str, Any]:
    """A One.com session paid by a signed webhook and fulfilled (invoice, key, link), as in production."""
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": amount, "currency": "EUR", "provider": "onecom", "customer_email": email},
        headers=merchant.headers,
    )
    assert status == 201, created
    await _send_onecom(
        stack, env, build_onecom_event("payment.succeeded", created["id"], created["amount_minor"], "EUR")
    )

    async def fulfilled() -> dict[str, Any] | None:
        status, body = await stack.request("GET", f"/v1/sessions/{created['id']}", headers=merchant.headers)
        if status == 200 and body["status"] == "paid" and body["invoice_id"] and body["api_key_id"]:
            return body
        return None

    return await eventually(fulfilled, timeout=30)


async def test_dashboard_in_headless_chromium(
    stack: ServiceStack, stack_env: dict[str, str], browser: Any
) -> None:
    from playwright.async_api import expect

    merchant = await stack.create_merchant(name="Northwind Labs", prefix="northwind")
    paid = await _paid_session(stack, stack_env, merchant, "49.00", "ann@example.com")
    second = await _paid_session(stack, stack_env, merchant, "120.00", "bob@example.com")
    status, _ = await stack.request(
        "POST", "/v1/sessions", json={"amount": "15.00", "currency": "EUR"}, headers=merchant.headers
    )
    assert status == 201
    # The same session paid twice: the second payment is money paygate cannot apply, so it is quarantined.
    await _send_onecom(stack, stack_env, build_onecom_event("payment.succeeded", paid["id"], 4900, "EUR"))

    async def quarantined() -> list[dict[str, Any]] | None:
        status, body = await stack.request("GET", "/v1/quarantine?status=open", headers=merchant.headers)
        return body["data"] if status == 200 and body["data"] else None

    (entry,) = await eventually(quarantined, timeout=30)

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))

    # Sign-in: a wrong key gets a clear message and no cookie.
    response = await page.goto(f"{stack.base_url}/dashboard")
    assert page.url == f"{stack.base_url}/dashboard/sign-in"
    await _shoot(page, "sign-in")
    await page.get_by_label("Secret key").fill("sk_test_notarealkey")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sign-in-error")).to_contain_text("was not accepted")
    assert not await context.cookies()

    await _sign_in(page, stack, merchant.api_key)
    (cookie,) = await context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert merchant.api_key not in cookie["value"]
    assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it
    assert await page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)") == "{}{}"
    response = await page.goto(f"{stack.base_url}/dashboard")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    for name in NAV_LINKS:
        await expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    await expect(page.locator("#mode-badge")).to_have_text("Test mode")
    await expect(page.locator("#open-quarantine")).to_have_text("1")
    await expect(page.locator("#count-paid")).to_have_text("2")
    await _shoot(page, "overview")

    # Sessions: the paid session in the list, then its timeline.
    await page.get_by_role("link", name="Sessions", exact=True).click()
    row = page.locator("#sessions-table tr", has=page.locator(f"a[href='/dashboard/sessions/{paid['id']}']"))
    await expect(row).to_contain_text("paid")
    await expect(row).to_contain_text("49.00 EUR")
    await _shoot(page, "sessions")
    # Filters run in the session service: the whole address in any case, an amount in a named currency.
    await page.get_by_label("Customer email").fill("BOB@example.com")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.locator("#sessions-table tbody tr")).to_have_count(1)
    await expect(page.locator("#sessions-table")).to_contain_text("bob@example.com")
    await page.goto(f"{stack.base_url}/dashboard/sessions")
    await page.get_by_label("Currency").fill("eur")
    await page.get_by_label("Amount from").fill("40")
    await page.get_by_label("Amount to").fill("49.00")
    await page.get_by_label("Status").select_option("paid")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.locator("#sessions-table tbody tr")).to_have_count(1)
    await expect(page.locator("#sessions-table")).to_contain_text("ann@example.com")
    await page.goto(f"{stack.base_url}/dashboard/sessions?min=40")
    await expect(page.locator(".flash-error")).to_contain_text("Choose a currency")
    await page.goto(f"{stack.base_url}/dashboard/sessions")
    await page.get_by_role("link", name=f"Session {paid['id']}").click()
    await expect(page.locator("#session-status")).to_have_text("paid")
    await expect(page.locator("#timeline")).to_contain_text("created → paid")
    await expect(page.locator("#timeline")).to_contain_text("payment.succeeded")
    await expect(page.locator("#invoice-number")).to_have_text(paid["invoice_number"])
    await _shoot(page, "session")

    # Revenue: chart and table say what GET /v1/revenue says.
    today = datetime.now(UTC).date()
    start = today - timedelta(days=6)
    await page.goto(
        f"{stack.base_url}/dashboard/revenue?interval=day&from={start.isoformat()}&to={today.isoformat()}"
    )
    status, revenue = await stack.request(
        "GET",
        f"/v1/revenue?interval=day&from={start.isoformat()}&to={(today + timedelta(days=1)).isoformat()}",
        headers=merchant.headers,
    )
    assert status == 200 and revenue["buckets"], revenue
    chart = page.get_by_role("img", name="Revenue in EUR", exact=False)
    await expect(chart).to_be_visible()
    assert await chart.evaluate("el => el.tagName.toLowerCase()") == "svg"
    bars = await page.locator("#revenue-chart-EUR rect").evaluate_all(
        "rects => rects.map(r => Number(r.dataset.netMinor))"
    )
    assert len(bars) == 7
    assert sum(bars) == sum(b["net_minor"] for b in revenue["buckets"]) == 16900
    rows = page.locator("#revenue-table tbody tr")
    await expect(rows).to_have_count(len(revenue["buckets"]))
    for bucket in revenue["buckets"]:
        day = bucket["period_start"][:10]
        row = page.locator(
            f"#revenue-table tr[data-period-start='{day}'][data-currency='{bucket['currency']}']"
        )
        await expect(row.locator("td.net")).to_have_text(f"{bucket['net']} {bucket['currency']}")
        await expect(row.locator("td").nth(2)).to_have_text(str(bucket["invoice_count"]))
    await _shoot(page, "revenue")
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Export CSV").click()
    download = await download_info.value
    csv_text = Path(await download.path()).read_text()
    assert csv_text.splitlines()[0] == (
        "period_start,currency,invoice_count,invoice_total,credit_note_count,credit_note_total,net"
    )
    assert f",EUR,2,{revenue['buckets'][0]['invoice_total']}," in csv_text

    await page.get_by_role("link", name="Invoices", exact=True).click()
    await expect(page.locator("#invoices-table")).to_contain_text(paid["invoice_number"])
    await _shoot(page, "invoices")

    # Void the other invoice (with confirmation): the JSON API shows it void, with its credit note.
    await page.get_by_role("link", name=f"Void {second['invoice_number']}").click()
    await page.get_by_label("Reason (printed on the credit note)").fill("Customer cancelled")
    await _shoot(page, "invoices-confirm-void")
    await page.get_by_role("button", name="Void invoice").click()
    await expect(page.locator("#notice")).to_contain_text("voided")
    status, voided = await stack.request(
        "GET", f"/v1/invoices/{second['invoice_id']}", headers=merchant.headers
    )
    assert status == 200 and voided["status"] == "void", voided
    status, notes = await stack.request("GET", "/v1/invoices?kind=credit_note", headers=merchant.headers)
    assert [n["credits_invoice_id"] for n in notes["data"]] == [second["invoice_id"]]

    # Keys: roll the paid session's customer key, then revoke the new one; the JSON API agrees.
    await page.get_by_role("link", name="Keys", exact=True).click()
    await _shoot(page, "keys")
    key_row = page.locator(f"#customer-keys tr[data-key-id='{paid['api_key_id']}']")
    await key_row.get_by_label("Grace period").select_option("0")
    await key_row.get_by_role("button", name="Roll").click()
    secret = await page.locator("#new-secret-value").input_value()
    assert secret.startswith("northwind_test_")
    await _shoot(page, "keys-new-secret")
    status, verdict = await stack.request(
        "POST", "/v1/api_keys/verify", json={"key": secret}, headers=merchant.headers
    )
    assert status == 200 and verdict["code"] == "VALID", verdict
    await page.goto(f"{stack.base_url}/dashboard/keys")
    new_row = page.locator(f"#customer-keys tr[data-key-id='{verdict['key_id']}']")
    await new_row.get_by_role("button", name="Revoke").click()
    await expect(page.get_by_role("heading", name="Revoke this customer key?")).to_be_visible()
    await _shoot(page, "keys-confirm-revoke")
    await page.get_by_role("button", name="Yes, revoke customer key").click()
    await expect(page.locator("#notice")).to_contain_text("revoked")
    status, verdict = await stack.request(
        "POST", "/v1/api_keys/verify", json={"key": secret}, headers=merchant.headers
    )
    assert status == 200 and verdict["code"] == "REVOKED", verdict

    # Quarantine: resolve the double payment with a note.
    await page.get_by_role("link", name="Quarantine", exact=True).click()
    item = page.locator(f"li[data-entry-id='{entry['id']}']")
    await item.get_by_text("Resolve", exact=True).click()
    await item.get_by_label("Dismiss").check()
    await item.get_by_label("Note for the audit trail").fill("Customer paid twice; refunded by bank transfer")
    await _shoot(page, "quarantine")
    await item.get_by_role("button", name="Resolve entry").click()
    await expect(page.locator("#notice")).to_contain_text("resolved")
    await expect(page.locator("#quarantine-empty")).to_be_visible()
    status, resolved = await stack.request("GET", "/v1/quarantine?status=dismissed", headers=merchant.headers)
    assert [e["id"] for e in resolved["data"]] == [entry["id"]]
    assert resolved["data"][0]["resolution_note"] == "Customer paid twice; refunded by bank transfer"

    await page.get_by_role("link", name="Events", exact=True).click()
    await expect(page.locator("#events-table")).to_contain_text("payment.succeeded")
    await _shoot(page, "events")
    # Every action above is audited with the dashboard session's key as its actor.
    status, own_keys = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
    actor = f"dashboard:merchant_key:{own_keys['data'][0]['id']}"
    conn = await stack.db.admin()
    try:
        audited = {
            *await conn.fetch(
                """SELECT event_type, details->>'actor' FROM keys.audit_events
                    WHERE event_type IN ('API_KEY_ROLLED', 'API_KEY_REVOKED') AND details->>'actor' = $1""",
                actor,
            ),
            *await conn.fetch(
                "SELECT action, actor FROM session.audit_log WHERE action = 'quarantine_resolved' AND actor = $1",
                actor,
            ),
            *await conn.fetch(
                "SELECT event, actor FROM billing.billing_audit WHERE event = 'invoice_voided' AND actor = $1",
                actor,
            ),
        }
    finally:
        await conn.close()
    assert {row[0] for row in audited} == {
        "API_KEY_ROLLED",
        "API_KEY_REVOKED",
        "quarantine_resolved",
        "invoice_voided",
    }

    await _webhooks_page(page, stack, merchant)

    assert not [line for line in console if "Content Security Policy" in line], console

    # Sign out: the old cookie opens nothing any more.
    old_cookie = (await context.cookies())[0]
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#notice")).to_contain_text("signed out")
    await page.goto(f"{stack.base_url}/dashboard/keys")
    assert page.url.startswith(f"{stack.base_url}/dashboard/sign-in")
    await context.add_cookies([old_cookie])
    await page.goto(f"{stack.base_url}/dashboard/sessions")
    assert page.url.startswith(f"{stack.base_url}/dashboard/sign-in")
    await context.close()


async def _webhooks_page(page: Any, stack: ServiceStack, merchant: Merchant) -> None:
    """Webhooks: add an endpoint (its secret shown once, with a copy button), roll its secret, redeliver an
    event to it, disable it and delete it; the JSON API sees each change (they are the same RPCs)."""
    from playwright.async_api import expect

    await page.get_by_role("link", name="Webhooks", exact=True).click()
    await expect(page.locator("#no-endpoints")).to_be_visible()
    await page.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/paygate-hooks")
    await page.get_by_label("Description").fill("Order system")
    await page.get_by_label("session.paid").check()
    await page.get_by_label("invoice.issued").check()
    await page.get_by_role("button", name="Add endpoint").click()
    first_secret = await page.locator("#new-webhook-secret-value").input_value()
    assert first_secret.startswith("whsec_")
    await expect(page.get_by_role("button", name="Copy")).to_be_visible()
    await _shoot(page, "webhooks-new-secret")
    status, listed = await stack.request("GET", "/v1/webhook_endpoints", headers=merchant.headers)
    assert status == 200 and len(listed["data"]) == 1, listed
    endpoint = listed["data"][0]
    assert endpoint["events"] == ["session.paid", "invoice.issued"] and "secret" not in endpoint
    await page.goto(f"{stack.base_url}/dashboard/webhooks")
    assert first_secret not in await page.content()
    row = page.locator(f"#webhook-endpoints li[data-endpoint-id='{endpoint['id']}']")
    await expect(row).to_contain_text("127.0.0.1:9/paygate-hooks")
    await expect(row).to_contain_text("session.paid, invoice.issued")

    # A URL paygate may not call is refused with what was typed kept in the form.
    await page.get_by_label("Endpoint URL").fill("ftp://example.com/hooks")
    await page.get_by_role("button", name="Add endpoint").click()
    await expect(page.locator("#create-error")).to_contain_text("cannot receive events")
    await expect(page.get_by_label("Endpoint URL")).to_have_value("ftp://example.com/hooks")

    # Roll: a new secret, shown once; the old one keeps signing for the hour chosen.
    await page.goto(f"{stack.base_url}/dashboard/webhooks")
    await row.get_by_label("Old secret").select_option("3600")
    await row.get_by_role("button", name="Roll secret").click()
    second_secret = await page.locator("#new-webhook-secret-value").input_value()
    assert second_secret.startswith("whsec_") and second_secret != first_secret
    status, rolled = await stack.request(
        "GET", f"/v1/webhook_endpoints/{endpoint['id']}", headers=merchant.headers
    )
    assert status == 200 and rolled["previous_secret_expires_at"], rolled

    # Redeliver an event the merchant's sessions emitted: a new delivery attempt to the chosen endpoint.
    await page.goto(f"{stack.base_url}/dashboard/webhooks")
    event_row = page.locator("#merchant-events tbody tr").first
    event_id = await event_row.get_attribute("data-event-id")
    await event_row.get_by_role("button", name="Redeliver").click()
    await expect(page.locator("#notice")).to_contain_text("queued for delivery again")

    async def attempted() -> list[Any] | None:
        status, body = await stack.request(
            "GET",
            f"/v1/webhook_deliveries?event={event_id}&endpoint={endpoint['id']}",
            headers=merchant.headers,
        )
        return body["data"] if status == 200 and body["data"] else None

    await eventually(attempted, timeout=30)
    await page.reload()
    await _shoot(page, "webhooks")

    row = page.locator(f"#webhook-endpoints li[data-endpoint-id='{endpoint['id']}']")
    await row.get_by_role("button", name="Disable").click()
    await expect(page.locator("#notice")).to_contain_text("disabled")
    status, disabled = await stack.request(
        "GET", f"/v1/webhook_endpoints/{endpoint['id']}", headers=merchant.headers
    )
    assert status == 200 and disabled["status"] == "disabled", disabled

    # Delete, after a confirmation.
    await row.get_by_role("button", name="Delete").click()
    await expect(page.get_by_role("heading", name="Delete this endpoint?")).to_be_visible()
    await _shoot(page, "webhooks-confirm-delete")
    await page.get_by_role("button", name="Yes, delete endpoint").click()
    await expect(page.locator("#notice")).to_contain_text("deleted")
    status, listed = await stack.request("GET", "/v1/webhook_endpoints", headers=merchant.headers)
    assert status == 200 and listed["data"] == [], listed


async def _other_origin_page(html: str) -> tuple[web.AppRunner, str]:
    """An attacker's site: another origin (another port) serving one page."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://localhost:{port}/"


async def test_csrf_from_another_origin_fails(stack: ServiceStack, browser: Any) -> None:
    merchant = await stack.create_merchant()
    issued = await stack.keys.IssueCustomerKey(
        keys_pb2.IssueCustomerKeyRequest(
            merchant_id=merchant.id,
            mode=common_pb2.MODE_TEST,
            session_id="6f0b4b0c-5f5e-4b7a-9a57-2f8d8b9f0a11",
        ),
        timeout=5,
    )
    context = await browser.new_context()
    page = await context.new_page()
    await _sign_in(page, stack, merchant.api_key)
    (cookie,) = await context.cookies()
    await page.goto(f"{stack.base_url}/dashboard/keys")
    token = await page.locator("input[name=csrf_token]").first.input_value()

    # A page on another origin auto-submits a revoke form (even with a stolen CSRF token).
    target = f"{stack.base_url}/dashboard/keys/{issued.id}/revoke"
    runner, evil_url = await _other_origin_page(
        f"""<form id="f" method="post" action="{target}"><input name="csrf_token" value="{token}"></form>
        <script>document.getElementById("f").submit()</script>"""
    )
    try:
        await page.goto(evil_url)
        await page.wait_for_load_state("load")
        await page.wait_for_url(f"{stack.base_url}/**")
    finally:
        await runner.cleanup()
    assert "/dashboard/keys" not in page.url or "notice" not in page.url

    # Outside a browser: the session cookie with a foreign Origin, or without the token, is refused too.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        cookies = {cookie["name"]: cookie["value"]}
        async with http.post(
            target,
            data={"csrf_token": token},
            cookies=cookies,
            headers={"Origin": "https://evil.example"},
            allow_redirects=False,
        ) as response:
            assert response.status == 403
        async with http.post(target, data={}, cookies=cookies, allow_redirects=False) as response:
            assert response.status == 403
        async with http.post(
            target, data={"csrf_token": "x" * 43}, cookies=cookies, allow_redirects=False
        ) as response:
            assert response.status == 403

    status, keys = await stack.request("GET", "/v1/api_keys", headers=merchant.headers)
    assert status == 200 and [k["status"] for k in keys["data"]] == ["VALID"]
    await context.close()


async def test_test_key_never_sees_live_data(stack: ServiceStack, browser: Any) -> None:
    from playwright.async_api import expect

    merchant = await stack.create_merchant(prefix="worlds")
    live = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=merchant.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    live_session = "1c2a7c1e-7c64-4d8e-9a0b-5a1f2f6e9d33"
    live_key = await stack.keys.IssueCustomerKey(
        keys_pb2.IssueCustomerKeyRequest(
            merchant_id=merchant.id, mode=common_pb2.MODE_LIVE, session_id=live_session
        ),
        timeout=5,
    )
    test_key = await stack.keys.IssueCustomerKey(
        keys_pb2.IssueCustomerKeyRequest(
            merchant_id=merchant.id,
            mode=common_pb2.MODE_TEST,
            session_id="0d9c3d8e-3a5b-4f7a-8b1e-9e2d7c6b5a40",
        ),
        timeout=5,
    )
    context = await browser.new_context()
    page = await context.new_page()
    await _sign_in(page, stack, merchant.api_key)
    await page.goto(f"{stack.base_url}/dashboard/keys")
    await expect(page.locator(f"tr[data-key-id='{test_key.id}']")).to_be_visible()
    assert await page.locator(f"tr[data-key-id='{live_key.id}']").count() == 0
    assert live.key.id not in await page.content()
    # A live object named directly is not found, and a live action is refused, from a test session.
    response = await page.goto(f"{stack.base_url}/dashboard/sessions/{live_session}")
    assert response is not None and response.status == 404

    # Switching to live needs a live key: the test key is refused for it; the live key works.
    await page.get_by_role("link", name="Switch to live").click()
    await _shoot(page, "sign-in-switch-to-live")
    await page.get_by_label("Secret key").fill(merchant.api_key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sign-in-error")).to_contain_text("needs a live secret key")
    await page.get_by_label("Secret key").fill(live.secret_key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{stack.base_url}/dashboard")
    await expect(page.locator("#mode-badge")).to_have_text("Live mode")
    await page.goto(f"{stack.base_url}/dashboard/keys")
    await expect(page.locator(f"tr[data-key-id='{live_key.id}']")).to_be_visible()
    await _shoot(page, "keys-live-mode")
    assert await page.locator(f"tr[data-key-id='{test_key.id}']").count() == 0
    await context.close()


async def test_session_ends_within_a_second_of_its_key_being_revoked(
    stack: ServiceStack, browser: Any
) -> None:
    merchant = await stack.create_merchant()
    second = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=merchant.id, mode=common_pb2.MODE_TEST), timeout=5
    )
    context = await browser.new_context()
    page = await context.new_page()
    await _sign_in(page, stack, second.secret_key)
    status, _ = await stack.request("DELETE", f"/v1/merchant_keys/{second.key.id}", headers=merchant.headers)
    assert status == 200
    # The very next request, with no wait at all, is refused: nothing caches the key's status.
    await page.goto(f"{stack.base_url}/dashboard/sessions")
    assert page.url == f"{stack.base_url}/dashboard/sign-in?notice=ended_key"
    assert "no longer works" in await page.content()
    await context.close()


async def test_merchant_secret_keys_create_roll_revoke_audited_as_dashboard(
    stack: ServiceStack, browser: Any
) -> None:
    from playwright.async_api import expect

    merchant = await stack.create_merchant()
    context = await browser.new_context()
    page = await context.new_page()
    await _sign_in(page, stack, merchant.api_key)
    await page.get_by_role("link", name="Keys", exact=True).click()

    # Create: the new secret is shown once, with a copy button, and it works against the JSON API.
    await page.get_by_role("button", name="Create secret key").click()
    created = await page.locator("#new-secret-value").input_value()
    assert created.startswith("sk_test_")
    await expect(page.get_by_role("button", name="Copy")).to_be_visible()
    status, listed = await stack.request("GET", "/v1/merchant_keys", headers={"X-API-Key": created})
    assert status == 200 and len(listed["data"]) == 2
    own_id = next(k["id"] for k in listed["data"] if merchant.api_key.endswith(k["last4"]))
    new_id = next(k["id"] for k in listed["data"] if created.endswith(k["last4"]))
    assert own_id != new_id
    # Reloading the page shows the key, never the secret again.
    await page.goto(f"{stack.base_url}/dashboard/keys")
    assert created not in await page.content()

    # Roll the new key with no grace: the old secret stops, the new one works.
    row = page.locator(f"#merchant-keys tr[data-key-id='{new_id}']")
    await row.get_by_label("Grace period").select_option("0")
    await row.get_by_role("button", name="Roll").click()
    rolled = await page.locator("#new-secret-value").input_value()
    assert rolled.startswith("sk_test_") and rolled != created
    assert (await stack.request("GET", "/v1/merchant_keys", headers={"X-API-Key": created}))[0] == 401
    status, listed = await stack.request("GET", "/v1/merchant_keys", headers={"X-API-Key": rolled})
    assert status == 200
    rolled_id = next(k["id"] for k in listed["data"] if k["status"] == "active" and k["id"] != own_id)

    # Revoke it (with confirmation): refused at once by the JSON API.
    await page.goto(f"{stack.base_url}/dashboard/keys")
    row = page.locator(f"#merchant-keys tr[data-key-id='{rolled_id}']")
    await row.get_by_role("button", name="Revoke").click()
    await page.get_by_role("button", name="Yes, revoke secret key").click()
    await expect(page.locator("#notice")).to_contain_text("revoked")
    assert (await stack.request("GET", "/v1/merchant_keys", headers={"X-API-Key": rolled}))[0] == 401

    # The mode's last key cannot be revoked: a clear refusal, and the session goes on.
    row = page.locator(f"#merchant-keys tr[data-key-id='{own_id}']")
    await row.get_by_role("button", name="Revoke").click()
    await page.get_by_role("button", name="Yes, revoke secret key").click()
    await expect(page.locator("#error")).to_contain_text("last active secret key")

    conn = await stack.db.admin()
    try:
        actors = await conn.fetch(
            """SELECT event_type, details->>'actor' AS actor FROM keys.audit_events
                WHERE object_type = 'merchant_secret_key' AND details->>'actor' LIKE 'dashboard:%'"""
        )
    finally:
        await conn.close()
    assert {r["event_type"] for r in actors} >= {
        "MERCHANT_SECRET_KEY_CREATED",
        "MERCHANT_SECRET_KEY_ROLLED",
        "MERCHANT_SECRET_KEY_REVOKED",
    }
    assert {r["actor"] for r in actors} == {f"dashboard:merchant_key:{own_id}"}
    await context.close()


async def test_pages_read_without_javascript(
    stack: ServiceStack, stack_env: dict[str, str], browser: Any
) -> None:
    merchant = await stack.create_merchant()
    await _paid_session(stack, stack_env, merchant, "10.00", "c@example.com")
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await _sign_in(page, stack, merchant.api_key)
    for name in NAV_LINKS:
        await page.get_by_role("link", name=name, exact=True).click()
        assert await page.locator("main h1").count() == 1, name
    await page.goto(f"{stack.base_url}/dashboard/revenue")
    assert await page.get_by_role("img", name="Revenue in EUR", exact=False).count() == 1
    assert "10.00 EUR" in await page.locator("#revenue-table").inner_text()
    await context.close()


async def test_wrong_keys_are_rate_limited(stack: ServiceStack) -> None:
    async with aiohttp.ClientSession() as http:
        for attempt in range(12):
            async with http.post(
                f"{stack.base_url}/dashboard/sign-in",
                data={"secret_key": f"sk_test_wrong{attempt}"},
                # No trusted proxy is configured: a client's own X-Forwarded-For changes nothing.
                headers={"X-Forwarded-For": f"198.51.100.{attempt}"},
                allow_redirects=False,
            ) as response:
                body = await response.text()
                if attempt < 10:
                    assert response.status == 401, body
                    assert "was not accepted" in body
                else:
                    assert response.status == 429, body
                    assert "Too many failed sign-ins" in body
                    assert response.headers["Retry-After"] == "900"
    await asyncio.sleep(0)


async def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
    clean_db: Any, stack_env: dict[str, str]
) -> None:
    """PAYGATE_TRUSTED_PROXIES: the proxy (here the test's own loopback peer) appends each client's address to
    X-Forwarded-For; the right-most untrusted entry is the client, whatever the client wrote left of it."""
    async with (
        running_stack(clean_db, {**stack_env, "PAYGATE_TRUSTED_PROXIES": "127.0.0.0/8, ::1/128"}) as stack,
        aiohttp.ClientSession() as http,
    ):

        async def sign_in(forwarded_for: str) -> int:
            async with http.post(
                f"{stack.base_url}/dashboard/sign-in",
                data={"secret_key": "sk_test_wrong"},
                headers={"X-Forwarded-For": forwarded_for},
                allow_redirects=False,
            ) as response:
                return response.status

        # Client A spoofs a fresh address left of its real one on every try: all count as A.
        for attempt in range(10):
            assert await sign_in(f"192.0.2.{attempt}, 203.0.113.10") == 401
        assert await sign_in("192.0.2.99, 203.0.113.10") == 429
        assert await sign_in("203.0.113.10, 127.0.0.1") == 429  # through a second trusted hop
        # Client B behind the same proxy is not locked out by A.
        assert await sign_in("203.0.113.11") == 401


async def test_bad_input_gets_a_page_never_a_server_error(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    # unsafe: the jar keeps cookies of an IP-address host (the test gateway is 127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            f"{stack.base_url}/dashboard/sign-in",
            data={"secret_key": merchant.api_key},
            allow_redirects=False,
        ) as response:
            assert response.status == 303
        async with http.get(f"{stack.base_url}/dashboard/keys") as response:
            page = await response.text()
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        junk = ["x", "0" * 300, "00000000-0000-0000-0000-000000000000", "%00", "..%2f..%2fetc"]
        for value in junk:
            for path in (
                f"/dashboard/sessions/{value}",
                f"/dashboard/invoices/{value}/pdf",
                f"/dashboard/invoices/{value}/void",
                f"/dashboard/static/{value}",
                f"/dashboard/sessions?status={value}&from={value}&min={value}&after={value}",
                f"/dashboard/revenue?interval={value}&from={value}&to={value}",
                f"/dashboard/revenue.csv?interval={value}&from={value}",
                f"/dashboard/events?status={value}&after={value}",
                f"/dashboard/quarantine?status={value}&after={value}",
                f"/dashboard/invoices?status={value}&kind={value}&after={value}",
                f"/dashboard/keys?after={value}",
            ):
                async with http.get(stack.base_url + path, allow_redirects=False) as response:
                    assert response.status < 500, (path, response.status, await response.text())
            for path in (
                f"/dashboard/keys/{value}/roll",
                f"/dashboard/keys/{value}/revoke",
                f"/dashboard/merchant-keys/{value}/roll",
                f"/dashboard/merchant-keys/{value}/revoke",
                f"/dashboard/quarantine/{value}/resolve",
                f"/dashboard/events/{value}/replay",
                f"/dashboard/sessions/{value}/access/revoke/confirm",
                f"/dashboard/sessions/{value}/access/revoke",
                f"/dashboard/sessions/{value}/access/reissue",
                f"/dashboard/invoices/{value}/void",
                f"/dashboard/webhooks/{value}/status",
                f"/dashboard/webhooks/{value}/roll",
                f"/dashboard/webhooks/{value}/delete/confirm",
                f"/dashboard/webhooks/{value}/delete",
                f"/dashboard/merchant-events/{value}/redeliver",
                "/dashboard/webhooks",
            ):
                form = {
                    "csrf_token": token,
                    "grace_period": value,
                    "decision": value,
                    "note": value * 400,
                    "status": "disabled",
                    "overlap": value,
                    "endpoint": value,
                    "url": value,
                    "events": value,
                    "description": value * 400,
                }
                async with http.post(stack.base_url + path, data=form, allow_redirects=False) as response:
                    assert response.status < 500, (path, response.status, await response.text())
        # The session survived all of it.
        async with http.get(f"{stack.base_url}/dashboard", allow_redirects=False) as response:
            assert response.status == 200


async def test_cookie_is_secure_and_host_prefixed_behind_https(clean_db: Any) -> None:
    async with running_stack(
        clean_db,
        {
            "PAYGATE_PUBLIC_URL": "https://pay.example.com",
            "PAYGATE_LOG_LEVEL": "WARNING",
            **make_test_secrets(),
        },
    ) as stack:
        merchant = await stack.create_merchant()
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{stack.base_url}/dashboard/sign-in",
                data={"secret_key": merchant.api_key},
                headers={"Origin": "https://pay.example.com"},
                allow_redirects=False,
            ) as response,
        ):
            assert response.status == 303
            cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("__Host-paygate_dashboard=")
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite", "path"} <= attributes and "domain" not in attributes
        assert "SameSite=Strict" in cookie and "Path=/" in cookie


# --- forms that must not run twice, refusals, access links ---------------------------------------------------


async def _form_fields(form: Any) -> tuple[str, dict[str, str]]:
    """A form's action and fields (its idempotency nonce too), read before it is submitted."""
    action, fields = await form.evaluate("f => [f.action, Object.fromEntries(new FormData(f))]")
    return action, fields


async def _submit_again(page: Any, stack: ServiceStack, action: str, fields: dict[str, str]) -> str:
    """The same form sent a second time, as a double click or a stale tab sends it (same fields, same nonce),
    with the page's cookies: the text of the page it ends on."""
    response = await page.request.post(action, form=fields, headers={"Origin": stack.base_url})
    assert response.status < 500, await response.text()
    return await response.text()


async def _audited(stack: ServiceStack, action: str) -> int:
    conn = await stack.db.admin()
    try:
        return int(await conn.fetchval("SELECT count(*) FROM session.audit_log WHERE action = $1", action))
    finally:
        await conn.close()


async def test_reloading_or_resubmitting_a_webhook_form_never_repeats_it(
    stack: ServiceStack, stack_env: dict[str, str], browser: Any
) -> None:
    """A reload re-posts a form whose answer was a page (the new secret): Add endpoint and Roll secret must
    not run again, and the secret is not shown again. A form sent twice (Redeliver, Delete) runs once."""
    from playwright.async_api import expect

    merchant = await stack.create_merchant()
    await _paid_session(stack, stack_env, merchant, "12.00", "dora@example.com")  # emits merchant events
    context = await browser.new_context()
    page = await context.new_page()
    await _sign_in(page, stack, merchant.api_key)
    await page.goto(f"{stack.base_url}/dashboard/webhooks")

    # Add endpoint, then reload: one endpoint, its secret shown on the first answer only.
    await page.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/once")
    await page.get_by_role("button", name="Add endpoint").click()
    secret = await page.locator("#new-webhook-secret-value").input_value()
    assert secret.startswith("whsec_")
    await page.reload()
    await expect(page.locator("#error")).to_contain_text("That form was already submitted")
    await _shoot(page, "webhooks-already-submitted")
    assert secret not in await page.content()
    assert await page.locator("#new-webhook-secret-value").count() == 0
    status, listed = await stack.request("GET", "/v1/webhook_endpoints", headers=merchant.headers)
    assert status == 200 and len(listed["data"]) == 1, listed
    endpoint_id = listed["data"][0]["id"]

    # Roll secret (the old one signs 24 h more), then reload: one roll, so the endpoint's first secret is the
    # one still signing beside the new one.
    await page.goto(f"{stack.base_url}/dashboard/webhooks")
    row = page.locator(f"#webhook-endpoints li[data-endpoint-id='{endpoint_id}']")
    await expect(row.get_by_label("Old secret")).to_have_value("86400")
    await row.get_by_role("button", name="Roll secret").click()
    rolled = await page.locator("#new-webhook-secret-value").input_value()
    assert rolled.startswith("whsec_") and rolled != secret
    await page.reload()
    await expect(page.locator("#error")).to_contain_text("That form was already submitted")
    assert rolled not in await page.content()
    assert await _audited(stack, "webhook_endpoint_secret_rolled") == 1

    # Redeliver, sent twice: one new delivery.
    await page.goto(f"{stack.base_url}/dashboard/webhooks")
    redeliver = page.locator("#merchant-events tbody tr").first.locator("form")
    action, fields = await _form_fields(redeliver)
    assert fields.get("idempotency_key")
    await redeliver.get_by_role("button", name="Redeliver").click()
    await expect(page.locator("#notice")).to_contain_text("queued for delivery again")
    assert "That form was already submitted" in await _submit_again(page, stack, action, fields)
    assert await _audited(stack, "merchant_event_redelivered") == 1

    # Delete (confirmed), sent twice: the second answer says so, not "no longer exists".
    await page.goto(f"{stack.base_url}/dashboard/webhooks")
    await row.get_by_role("button", name="Delete").click()
    confirm = page.locator("form", has=page.get_by_role("button", name="Yes, delete endpoint"))
    action, fields = await _form_fields(confirm)
    await page.get_by_role("button", name="Yes, delete endpoint").click()
    await expect(page.locator("#notice")).to_contain_text("deleted")
    assert "That form was already submitted" in await _submit_again(page, stack, action, fields)
    await context.close()


async def test_refusals_show_the_services_message_and_void_is_not_offered_once_credited(
    stack: ServiceStack, stack_env: dict[str, str], browser: Any
) -> None:
    from playwright.async_api import expect

    merchant = await stack.create_merchant()
    paid = await _paid_session(stack, stack_env, merchant, "25.50", "erin@example.com")
    # The same session paid again: a payment on a closed (paid) session, quarantined.
    await _send_onecom(stack, stack_env, build_onecom_event("payment.succeeded", paid["id"], 2550, "EUR"))

    async def quarantined() -> list[dict[str, Any]] | None:
        status, body = await stack.request("GET", "/v1/quarantine?status=open", headers=merchant.headers)
        return body["data"] if status == 200 and body["data"] else None

    (entry,) = await eventually(quarantined, timeout=30)
    context = await browser.new_context()
    page = await context.new_page()
    await _sign_in(page, stack, merchant.api_key)

    # The Void page is open when a refund credits part of the invoice: billing refuses the void, and the
    # page says why in billing's words, with the code.
    await page.goto(f"{stack.base_url}/dashboard/invoices/{paid['invoice_id']}/void")
    await expect(page.get_by_role("button", name="Void invoice")).to_be_visible()
    await stack.billing.IssueCreditNote(
        billing_pb2.IssueCreditNoteRequest(
            merchant_id=merchant.id,
            mode=common_pb2.MODE_TEST,
            session_id=paid["id"],
            refund_id=str(uuid.uuid4()),
            amount=common_pb2.Money(amount_minor="1000", currency="EUR", exponent=2),
            reason="refund",
        ),
        timeout=5,
    )
    await page.get_by_role("button", name="Void invoice").click()
    error = page.locator("#error")
    await expect(error).to_contain_text("refunds already credited this invoice")
    await expect(error).to_contain_text("(invoice_partially_credited)")
    await _shoot(page, "invoices-void-refused")
    status, invoice = await stack.request(
        "GET", f"/v1/invoices/{paid['invoice_id']}", headers=merchant.headers
    )
    assert status == 200 and invoice["status"] == "issued", invoice

    # Opened now, the page does not offer the void: it says what refunds credited already.
    await page.goto(f"{stack.base_url}/dashboard/invoices/{paid['invoice_id']}/void")
    await expect(page.locator("main")).to_contain_text("refunds already credited 10.00 EUR")
    assert "credit note for the full" not in await page.locator("main").inner_text()
    assert await page.get_by_role("button", name="Void invoice").count() == 0

    # Accepting a second payment on a paid session: the session service's reason, with the code.
    await page.goto(f"{stack.base_url}/dashboard/quarantine")
    item = page.locator(f"li[data-entry-id='{entry['id']}']")
    await item.get_by_text("Resolve", exact=True).click()
    await item.get_by_label("Accept").check()
    await item.get_by_role("button", name="Resolve entry").click()
    await expect(error).to_contain_text("only a late payment on an expired session can be accepted")
    await expect(error).to_contain_text("(session_not_expired)")
    await _shoot(page, "quarantine-refused")
    await expect(page.locator(f"li[data-entry-id='{entry['id']}']")).to_be_visible()
    await context.close()


async def test_access_link_revoke_is_confirmed_and_a_new_link_is_not_said_to_be_mailed(
    stack: ServiceStack, stack_env: dict[str, str], browser: Any
) -> None:
    from playwright.async_api import expect

    merchant = await stack.create_merchant()
    paid = await _paid_session(stack, stack_env, merchant, "30.00", "finn@example.com")
    context = await browser.new_context()
    page = await context.new_page()
    await _sign_in(page, stack, merchant.api_key)
    await page.goto(f"{stack.base_url}/dashboard/sessions/{paid['id']}")
    original = await page.locator("#access-url").input_value()

    # Revoke asks first; Cancel leaves the link working.
    await page.get_by_role("button", name="Revoke link").click()
    await expect(page.get_by_role("heading", name="Revoke the customer's access link?")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("no longer works")
    await _shoot(page, "session-confirm-revoke-link")
    await page.get_by_role("link", name="Cancel").click()
    assert await page.locator("#access-url").input_value() == original
    await page.get_by_role("button", name="Revoke link").click()
    await page.get_by_role("button", name="Yes, revoke the link").click()
    await expect(page.locator("#notice")).to_contain_text("revoked")
    await expect(page.locator("#link-revoked")).to_be_visible()

    # A new link is shown to the merchant to pass on: nothing is mailed, and the page says so.
    reissue = page.locator("form", has=page.get_by_role("button", name="Issue a new link"))
    action, fields = await _form_fields(reissue)
    await page.get_by_role("button", name="Issue a new link").click()
    await expect(page.locator("#notice")).to_contain_text("Nothing was mailed")
    main = page.locator("main")
    await expect(main).to_contain_text("not mailed")
    await expect(main).to_contain_text("no longer works")
    assert "got by mail" not in await main.inner_text()
    await _shoot(page, "session-new-link")
    fresh = await page.locator("#access-url").input_value()
    assert fresh != original

    # The same form sent again does not revoke the link just passed on.
    assert "That form was already submitted" in await _submit_again(page, stack, action, fields)
    await page.reload()
    assert await page.locator("#access-url").input_value() == fresh
    await context.close()
