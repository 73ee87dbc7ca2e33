"""Contract §12 in a real browser against `paygate up`: Debian's headless Chromium driven by Playwright.

`paygate up` runs as a person runs it (a subprocess with its own PAYGATE_HOME, embedded PostgreSQL and SMTP
sink), once for the module. Everything goes through public interfaces: the merchant sets its support email
(PUT /v1/billing_profile) and creates a session with scopes (POST /v1/sessions) with the key from stack.json;
a signed Stripe webhook (secret from stack.json) pays it; the access link comes from the mail in the sink. The
customer then uses the portal with JavaScript off: narrows scopes, sets an IP allow-list (and a bad CIDR is
refused naming the field), tries a widening (a crafted form field), rolls the key by pasting the current one,
and writes to the merchant; a form on another origin is refused. Verify (POST /v1/api_keys/verify) is checked
after each step. A second flow proves the purchase's email address (the code mailed to it, or the link in the
customer's own mail) before the portal lists the customer's other receipts.
"""

from __future__ import annotations

import email.message
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from support.chromium import launch_chromium, require_chromium
from support.paygate_up import access_link, mailed, running_paygate_up

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CUSTOMER = "ann@example.com"
SUPPORT = "help@acme.test"
ATTACKER = "http://attacker.test"


@pytest.fixture(scope="module")
def paygate_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One `paygate up` for every flow here: the machine is small."""
    require_chromium()
    with running_paygate_up(tmp_path_factory.mktemp("paygate") / "home") as stack:
        yield stack


def _api(stack: dict[str, Any], method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"X-API-Key": stack["merchant"]["api_key"], **kwargs.pop("headers", {})}
    return requests.request(method, stack["gateway_url"] + path, headers=headers, timeout=20, **kwargs)


def _paid_session(
    stack: dict[str, Any], scopes: list[str], customer: str = CUSTOMER, amount: str = "25.00"
) -> tuple[str, str]:
    """A session with `scopes`, paid by a signed Stripe webhook; its id and the access link from the mail
    (the first mail to `customer` that carries one)."""
    created = _api(
        stack,
        "POST",
        "/v1/sessions",
        json={
            "amount": amount,
            "currency": "EUR",
            "provider": "stripe",
            "scopes": scopes,
            "customer_email": customer,
        },
    )
    assert created.status_code == 201, created.text
    session = created.json()
    event = build_stripe_event("payment_intent.succeeded", session["id"], session["amount_minor"], "EUR")
    raw, signed = stripe_delivery(event, stack["webhook_secrets"]["stripe"], int(time.time()))
    delivered = requests.post(f"{stack['gateway_url']}/webhooks/stripe", data=raw, headers=signed, timeout=20)
    assert delivered.status_code == 200, delivered.text
    return session["id"], access_link(Path(stack["mail_dir"]), customer)


def _verify(stack: dict[str, Any], key: str, ip: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"key": key}
    if ip is not None:
        body["ip"] = ip
    reply = _api(stack, "POST", "/v1/api_keys/verify", json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _eventually_verify(
    stack: dict[str, Any], key: str, want: dict[str, Any], ip: str | None = None, timeout: float = 10
) -> dict[str, Any]:
    """Verify until it answers `want`: a change must reach every replica's cache within a second; the margin
    is for a loaded machine."""
    deadline = time.monotonic() + timeout
    while True:
        got = _verify(stack, key, ip)
        if all(got.get(k) == v for k, v in want.items()):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"verify never answered {want}: last {got}")
        time.sleep(0.1)


async def test_customer_manages_the_key_in_headless_chromium(paygate_up: dict[str, Any]) -> None:
    from playwright.async_api import expect

    stack = paygate_up
    gateway = stack["gateway_url"]
    profile = _api(stack, "PUT", "/v1/billing_profile", json={"support_email": SUPPORT})
    assert profile.status_code == 200, profile.text
    session_id, url = _paid_session(stack, ["read", "write"])
    assert url.startswith(gateway + "/access?token="), url

    async with launch_chromium() as browser:
        # JavaScript off: every page and form must work without it.
        context = await browser.new_context(java_script_enabled=False)
        page = await context.new_page()
        # A loaded 2-core machine runs the database and four services beside the browser.
        page.set_default_timeout(60_000)
        expect.set_options(timeout=30_000)
        response = await page.goto(url)
        assert response is not None and response.status == 200
        assert page.url == f"{gateway}/access"  # the token was exchanged for a cookie and left the URL
        await page.click("#reveal-button")
        secret = (await page.text_content("#api-key-secret") or "").strip()
        first = _verify(stack, secret)
        assert first["code"] == "VALID" and first["scopes"] == ["read", "write"]
        assert first["session_id"] == session_id

        # Narrow the scopes: untick "write"; verify returns only "read".
        await page.goto(f"{gateway}/access")
        assert secret not in await page.content()  # the reveal was one-time
        await page.uncheck('input[name="scope"][value="write"]')
        await page.click("#settings-button")
        assert "saved" in (await page.text_content("#notice") or "")
        assert (await page.text_content("#key-scopes")) == "read"
        _eventually_verify(stack, secret, {"code": "VALID", "scopes": ["read"]})

        # A crafted form post that widens beyond the merchant's grant is refused.
        widen = await browser.new_context()  # JS on only to craft the form; the server must refuse it
        await widen.add_cookies(await context.cookies())
        crafted = await widen.new_page()
        crafted.set_default_timeout(60_000)
        await crafted.goto(f"{gateway}/access")
        await crafted.evaluate(
            """() => {
                const box = document.createElement('input');
                box.type = 'checkbox'; box.name = 'scope'; box.value = 'admin'; box.checked = true;
                document.querySelector('#settings-form').appendChild(box);
            }"""
        )
        async with crafted.expect_navigation() as navigation:
            await crafted.click("#settings-button")
        refused = await navigation.value
        assert refused is not None and refused.status == 400
        assert await crafted.get_attribute("#form-error", "data-code") == "scope_not_granted"
        await widen.close()
        assert _verify(stack, secret)["scopes"] == ["read"]

        # An IP allow-list: another IP is refused, and so is a verify without any IP (fail closed).
        await page.goto(f"{gateway}/access")
        await page.fill("#ip_allowlist", "203.0.113.0/24")
        await page.click("#settings-button")
        assert (await page.text_content("#key-allowlist")) == "203.0.113.0/24"
        _eventually_verify(stack, secret, {"code": "IP_NOT_ALLOWED"}, ip="198.51.100.7")
        assert _verify(stack, secret, "203.0.113.10")["code"] == "VALID"
        assert _verify(stack, secret)["code"] == "IP_NOT_ALLOWED"
        # A bad CIDR (host bits set) is a 400 naming the field, and the saved list stays.
        await page.fill("#ip_allowlist", "203.0.113.1/24")
        async with page.expect_navigation() as navigation:
            await page.click("#settings-button")
        bad = await navigation.value
        assert bad is not None and bad.status == 400
        assert await page.get_attribute("#form-error", "data-field") == "ip_allowlist"
        assert _verify(stack, secret, "198.51.100.7")["code"] == "IP_NOT_ALLOWED"
        await page.goto(f"{gateway}/access")
        await page.fill("#ip_allowlist", "")
        await page.click("#settings-button")
        _eventually_verify(stack, secret, {"code": "VALID"})

        # Roll: paste the current key (labelled "Current key"); the old key is REVOKED, the new one VALID.
        await page.get_by_label("Current key").fill(secret)
        await page.select_option("#grace_period", "0")
        await page.click("#roll-button")
        new_secret = (await page.text_content("#api-key-secret") or "").strip()
        assert new_secret.startswith("dev_test_") and new_secret != secret
        _eventually_verify(stack, secret, {"code": "REVOKED"})
        rolled = _verify(stack, new_secret)
        assert rolled["code"] == "VALID" and rolled["scopes"] == ["read"]  # the narrowing carries over
        await page.goto(f"{gateway}/access")
        assert new_secret not in await page.content()

        # A CSRF post from another origin (a page served as http://attacker.test in the customer's browser,
        # which holds the portal cookie) fails and changes nothing.
        attacker = await context.new_page()
        forged_form = (
            f'<form method="post" action="{gateway}/access/key/revoke">'
            '<input type="hidden" name="confirm" value="yes"><button id="go">Win a prize</button></form>'
        )
        await attacker.route(
            f"{ATTACKER}/**", lambda route: route.fulfill(body=forged_form, content_type="text/html")
        )
        await attacker.goto(f"{ATTACKER}/prize")
        async with attacker.expect_navigation() as navigation:
            await attacker.click("#go")
        forged = await navigation.value
        assert forged is not None and forged.status in (401, 403)
        # The Strict cookie kept that post anonymous; the CSRF check must hold on its own too: a post that
        # does carry the portal cookie (the context's request client shares its cookies) but no or a wrong
        # token, from another origin, is refused.
        for fields in ({"confirm": "yes"}, {"confirm": "yes", "csrf_token": "forged"}):
            sneaky = await context.request.post(
                f"{gateway}/access/key/revoke",
                form=fields,
                headers={"Origin": ATTACKER, "Accept": "application/json"},
                max_redirects=0,
            )
            assert sneaky.status == 403, (fields, sneaky.status)
            assert (await sneaky.json())["error"]["code"] == "csrf_failed"
        assert _verify(stack, new_secret)["code"] == "VALID"

        # A roll with a grace period: the old key keeps working until then, beside the new one.
        await page.get_by_label("Current key").fill(new_secret)
        await page.select_option("#grace_period", "900")
        await page.click("#roll-button")
        newest = (await page.text_content("#api-key-secret") or "").strip()
        assert newest.startswith("dev_test_") and newest not in (secret, new_secret)
        assert _verify(stack, newest)["code"] == "VALID"
        assert _verify(stack, new_secret)["code"] == "VALID"
        await page.goto(f"{gateway}/access")

        # The contact form mails the merchant's support address through the sink, with the session reference.
        await page.fill("#reply_to", CUSTOMER)
        await page.fill("#message", "Please raise my rate limit.")
        await page.click("#contact-button")
        assert "sent" in (await page.text_content("#notice") or "")

        def to_support(message: email.message.EmailMessage) -> bool:
            return message["To"] == SUPPORT

        (mail,) = mailed(Path(stack["mail_dir"]), to_support, timeout=30)
        assert session_id in mail["Subject"]
        body = mail.get_content()  # type: ignore[attr-defined]
        assert f"Session reference: {session_id}" in body
        assert "Please raise my rate limit." in body
        await context.close()


async def test_other_receipts_are_listed_once_the_address_is_proven(paygate_up: dict[str, Any]) -> None:
    """The merchant's copy of the link (GET /v1/sessions/{id}) lists this purchase's own documents until the
    code mailed to the purchase's address is entered; the link in the customer's own mail lists every one."""
    from playwright.async_api import expect

    stack = paygate_up
    mail_dir = Path(stack["mail_dir"])
    buyer = "cleo@example.com"
    first_id, mail_url = _paid_session(stack, ["*"], customer=buyer, amount="10.00")
    assert "&proof=" in mail_url
    _paid_session(stack, ["*"], customer=buyer, amount="20.00")
    # Both purchases fulfilled: each sends its own customer mail.
    deadline = time.monotonic() + 60
    while len(mailed(mail_dir, lambda m: m["To"] == buyer, timeout=60)) < 2:
        assert time.monotonic() < deadline, "the second purchase was never mailed"
        time.sleep(0.3)
    handed = _api(stack, "GET", f"/v1/sessions/{first_id}").json()["access_url"]
    assert handed and "proof" not in handed

    async with launch_chromium() as browser:
        context = await browser.new_context(java_script_enabled=False)
        page = await context.new_page()
        page.set_default_timeout(60_000)
        expect.set_options(timeout=30_000)
        await page.goto(handed)
        # Only this purchase's own documents until the address is proven.
        assert await page.locator("tr.document").count() == 1
        assert "10.00 EUR" in await page.text_content("#receipts") and "20.00" not in await page.content()
        assert (await page.text_content("#email-proof-to")) == "c•••@example.com"
        await page.click("#email-code-button")
        assert "We sent a code to c•••@example.com" in (await page.text_content("#notice") or "")

        def code_mail(message: email.message.EmailMessage) -> bool:
            return message["To"] == buyer and message["Subject"] == "Your code to see your receipts"

        (mail,) = mailed(mail_dir, code_mail, timeout=30)
        code = mail.get_content().split("Your code: ", 1)[1][:8]  # type: ignore[attr-defined]
        # A wrong code is refused next to the field; the right one lists both purchases.
        await page.fill("#code", "0000 0000" if code != "00000000" else "1111 1111")
        async with page.expect_navigation() as navigation:
            await page.click("#email-verify-button")
        refused = await navigation.value
        assert refused is not None and refused.status == 400
        assert await page.get_attribute("#form-error", "data-field") == "code"
        await page.fill("#code", f"{code[:4]} {code[4:]}")
        await page.click("#email-verify-button")
        await expect(page.locator("tr.document")).to_have_count(2)
        assert "Your receipts with this seller" in (await page.text_content("#receipts") or "")
        assert await page.locator("#email-proof").count() == 0
        await context.close()

        # Another browser, from the customer's own mail: every receipt at once, no code.
        reader = await browser.new_context(java_script_enabled=False)
        inbox_page = await reader.new_page()
        inbox_page.set_default_timeout(60_000)
        await inbox_page.goto(mail_url)
        assert inbox_page.url == f"{stack['gateway_url']}/access"  # token and proof left the address bar
        await expect(inbox_page.locator("tr.document")).to_have_count(2)
        assert await inbox_page.locator("#email-proof").count() == 0
        assert len(mailed(mail_dir, code_mail, timeout=5)) == 1
        await reader.close()
