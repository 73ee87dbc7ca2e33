"""Customer portal, contract §12, over real HTTP against a test-started stack of the real services: scopes
from POST /v1/sessions to the key, narrowing (never widening), IP allow-lists with verify, an earlier expiry,
self-service roll and revoke, usage, receipts by subject, the contact form, and the form protections."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

from portal_helpers import (
    HTML,
    csrf,
    keys_rows,
    mails,
    open_portal,
    page,
    paid_session,
    post_form,
    prove_email,
    reveal,
    verify,
)

from paygate_dev.smtp_sink import SmtpSink
from support import polling
from support.stack import ServiceStack


async def _listed_key(stack: ServiceStack, merchant: object, session_id: str) -> dict:
    status, listing = await stack.request("GET", "/v1/api_keys", headers=merchant.headers)  # type: ignore[attr-defined]
    assert status == 200
    (key,) = [k for k in listing["data"] if k["session_id"] == session_id and k["status"] == "VALID"]
    return key


async def _verify_until(
    stack: ServiceStack, merchant: object, key: str, want: dict, ip: str | None = None
) -> dict:
    """Poll verify: a change counts within one second on every replica (cache bound + NOTIFY)."""

    async def check() -> dict | None:
        got = await verify(stack, merchant, key, ip)  # type: ignore[arg-type]
        return got if all(got.get(k) == v for k, v in want.items()) else None

    return await polling.eventually(check, timeout=5, interval=0.05, what=f"verify -> {want}")


async def test_scopes_are_granted_by_the_merchant_and_only_narrowed_by_the_customer(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    # A bad scope list is refused at session creation, naming the field.
    status, body = await stack.request(
        "POST", "/v1/sessions", json={"amount": "5.00", "scopes": ["Bad Scope"]}, headers=merchant.headers
    )
    assert status == 400 and body["error"]["code"] == "invalid_scopes"
    assert "scopes" in body["error"]["message"]
    status, body = await stack.request(
        "POST", "/v1/sessions", json={"amount": "5.00", "scopes": "read"}, headers=merchant.headers
    )
    assert status == 400 and body["error"]["code"] == "invalid_scopes"

    paid = await paid_session(stack, merchant, scopes=["read", "write", "billing:read"])
    status, session = await stack.request("GET", f"/v1/sessions/{paid.id}", headers=merchant.headers)
    assert session["scopes"] == ["read", "write", "billing:read"]
    cookie = await open_portal(stack, paid.token)
    secret = await reveal(stack, cookie)

    verdict = await verify(stack, merchant, secret)
    assert verdict["code"] == "VALID" and verdict["scopes"] == ["read", "write", "billing:read"]
    listed = await _listed_key(stack, merchant, paid.id)
    assert listed["scopes"] == listed["granted_scopes"] == ["read", "write", "billing:read"]
    assert listed["ip_allowlist"] == []

    _status, html = await page(stack, cookie)
    token = csrf(html)
    assert 'name="scope" value="billing:read"' in html

    # Narrow to "read": verify returns it within a second.
    status, body = await post_form(
        stack,
        cookie,
        "/access/key/settings",
        [("csrf_token", token), ("scopes_form", "1"), ("scope", "read")],
    )
    assert status == 200 and body["scopes"] == ["read"], body
    await _verify_until(stack, merchant, secret, {"code": "VALID", "scopes": ["read"]})

    # A crafted post that widens beyond the grant is refused and changes nothing; so is "*".
    for crafted in (["read", "admin"], ["*"]):
        fields = [("csrf_token", token), ("scopes_form", "1"), *(("scope", s) for s in crafted)]
        status, body = await post_form(stack, cookie, "/access/key/settings", fields)
        assert status == 400 and body["error"]["code"] == "scope_not_granted", body
        assert body["error"]["field"] == "scopes"
    # Widening back to a granted scope is allowed (within the merchant's grant).
    status, body = await post_form(
        stack,
        cookie,
        "/access/key/settings",
        [("csrf_token", token), ("scopes_form", "1"), ("scope", "read"), ("scope", "write")],
    )
    assert status == 200 and body["scopes"] == ["read", "write"]
    # No scope chosen at all is a 400 naming the field, in the HTML page too.
    status, text = await post_form(
        stack, cookie, "/access/key/settings", [("csrf_token", token), ("scopes_form", "1")], html=True
    )
    assert status == 400 and 'data-field="scopes"' in text
    listed = await _listed_key(stack, merchant, paid.id)
    assert listed["scopes"] == ["read", "write"] and listed["granted_scopes"] == [
        "read",
        "write",
        "billing:read",
    ]

    # The audit trail names the customer as actor.
    rows = await keys_rows(
        stack,
        "SELECT details FROM keys.audit_events WHERE event_type = 'API_KEY_SETTINGS_CHANGED' ORDER BY id",
    )
    assert rows and all('"actor": "customer"' in str(r["details"]) for r in rows)


async def test_ip_allowlist_and_an_earlier_expiry(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant)
    cookie = await open_portal(stack, paid.token)
    secret = await reveal(stack, cookie)
    _status, html = await page(stack, cookie)
    token = csrf(html)

    # A bad CIDR is a 400 naming the field, and nothing changes.
    status, body = await post_form(
        stack, cookie, "/access/key/settings", [("csrf_token", token), ("ip_allowlist", "10.0.0.1/8")]
    )
    assert status == 400 and body["error"]["code"] == "invalid_ip_allowlist"
    assert body["error"]["field"] == "ip_allowlist"
    assert (await verify(stack, merchant, secret))["code"] == "VALID"

    status, body = await post_form(
        stack,
        cookie,
        "/access/key/settings",
        [("csrf_token", token), ("ip_allowlist", "203.0.113.0/24\n2001:db8::/32")],
    )
    assert status == 200 and body["ip_allowlist"] == ["203.0.113.0/24", "2001:db8::/32"]
    await _verify_until(
        stack, merchant, secret, {"code": "IP_NOT_ALLOWED", "valid": False}, ip="198.51.100.7"
    )
    assert (await verify(stack, merchant, secret, "203.0.113.9"))["code"] == "VALID"
    assert (await verify(stack, merchant, secret, "2001:db8::5"))["code"] == "VALID"
    # Fail closed: a key with an allow-list verified without an IP is refused.
    assert (await verify(stack, merchant, secret))["code"] == "IP_NOT_ALLOWED"
    status, body = await stack.request(
        "POST", "/v1/api_keys/verify", json={"key": secret, "ip": "not-an-ip"}, headers=merchant.headers
    )
    assert status == 400 and body["error"]["code"] == "invalid_ip"
    assert (await _listed_key(stack, merchant, paid.id))["ip_allowlist"] == [
        "203.0.113.0/24",
        "2001:db8::/32",
    ]

    # Clearing the list: anywhere again.
    status, body = await post_form(
        stack, cookie, "/access/key/settings", [("csrf_token", token), ("ip_allowlist", "")]
    )
    assert status == 200 and body["ip_allowlist"] == []
    await _verify_until(stack, merchant, secret, {"code": "VALID"})

    # An earlier expiry: the past is refused; a near future is applied and then the key is EXPIRED.
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    status, body = await post_form(
        stack, cookie, "/access/key/settings", [("csrf_token", token), ("expires_at", past)]
    )
    assert status == 400 and body["error"]["field"] == "expires_at"
    soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    status, body = await post_form(
        stack, cookie, "/access/key/settings", [("csrf_token", token), ("expires_at", soon)]
    )
    assert status == 200 and body["expires_at"], body
    # Later than the key's end now: refused (a customer never extends a key).
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    status, body = await post_form(
        stack, cookie, "/access/key/settings", [("csrf_token", token), ("expires_at", later)]
    )
    assert status == 400 and body["error"]["code"] == "invalid_expires_at"
    await _verify_until(stack, merchant, secret, {"code": "EXPIRED"})


async def test_roll_needs_the_current_key_and_revoke_ends_it(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, scopes=["read", "write"])
    cookie = await open_portal(stack, paid.token)
    secret = await reveal(stack, cookie)
    _status, html = await page(stack, cookie)
    token = csrf(html)
    assert 'for="current_key">Current key</label>' in html
    await post_form(
        stack,
        cookie,
        "/access/key/settings",
        [("csrf_token", token), ("scopes_form", "1"), ("scope", "read")],
    )

    # The link alone (a forwarded mail) mints nothing: no or a wrong current key is refused.
    status, body = await post_form(stack, cookie, "/access/key/roll", [("csrf_token", token)])
    assert status == 400 and body["error"]["field"] == "current_key"
    wrong = secret[:-4] + ("zzzz" if not secret.endswith("zzzz") else "yyyy")
    status, body = await post_form(
        stack, cookie, "/access/key/roll", [("csrf_token", token), ("current_key", wrong)]
    )
    assert status == 400 and body["error"]["code"] == "current_key_mismatch"
    status, body = await post_form(
        stack,
        cookie,
        "/access/key/roll",
        [("csrf_token", token), ("current_key", secret), ("grace_period", "90000")],
    )
    assert status == 400 and body["error"]["code"] == "invalid_grace_period"

    # The right one: a new secret, once; the old one REVOKED at once, the new one VALID with the same scopes.
    status, text = await post_form(
        stack,
        cookie,
        "/access/key/roll",
        [("csrf_token", token), ("current_key", secret), ("grace_period", "0")],
        html=True,
    )
    assert status == 200
    new_secret = text.split('id="api-key-secret">', 1)[1].split("<", 1)[0].strip()
    assert new_secret.startswith("acme_test_") and new_secret != secret
    await _verify_until(stack, merchant, secret, {"code": "REVOKED"})
    fresh = await verify(stack, merchant, new_secret)
    assert fresh["code"] == "VALID" and fresh["scopes"] == ["read"]
    _status, again = await page(stack, cookie)
    assert new_secret not in again and secret not in again  # never rendered twice

    # With a grace period the old secret keeps working until it ends.
    status, body = await post_form(
        stack,
        cookie,
        "/access/key/roll",
        [("csrf_token", token), ("current_key", new_secret), ("grace_period", "3600")],
    )
    assert status == 200 and body["secret"] and body["previous"]["expires_at"]
    third = body["secret"]
    assert (await verify(stack, merchant, new_secret))["code"] == "VALID"
    # The previous key (in its grace period) cannot be rolled: only the current key counts.
    status, body = await post_form(
        stack, cookie, "/access/key/roll", [("csrf_token", token), ("current_key", new_secret)]
    )
    assert status == 400 and body["error"]["code"] == "current_key_mismatch"

    # Revoke: every still-working key of the purchase stops at once.
    status, body = await post_form(stack, cookie, "/access/key/revoke", [("csrf_token", token)])
    assert status == 400 and body["error"]["field"] == "confirm"
    status, body = await post_form(
        stack, cookie, "/access/key/revoke", [("csrf_token", token), ("confirm", "yes")]
    )
    assert status == 200 and body["status"] == "revoked"
    await _verify_until(stack, merchant, third, {"code": "REVOKED"})
    await _verify_until(stack, merchant, new_secret, {"code": "REVOKED"})
    # A dead key cannot be rolled.
    status, body = await post_form(
        stack, cookie, "/access/key/roll", [("csrf_token", token), ("current_key", third)]
    )
    assert status == 409 and body["error"]["code"] == "key_revoked"

    actors = await keys_rows(
        stack,
        """SELECT event_type FROM keys.audit_events
            WHERE session_id = $1 AND details->>'actor' = 'customer' ORDER BY id""",
        uuid.UUID(paid.id),
    )
    kinds = [r["event_type"] for r in actors]
    assert kinds.count("API_KEY_ROLLED") == 2 and kinds.count("API_KEY_REVOKED") == 2


async def test_usage_is_counted_per_day_and_charted(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant)
    cookie = await open_portal(stack, paid.token)
    secret = await reveal(stack, cookie)
    for _ in range(7):
        assert (await verify(stack, merchant, secret))["code"] == "VALID"

    async def counted() -> str | None:
        _status, html = await page(stack, cookie)
        return html if 'id="usage-total">7<' in html else None

    html = await polling.eventually(counted, timeout=10, interval=0.1, what="usage counted")
    assert '<svg id="usage-chart"' in html and html.count("<rect ") == 30
    today = datetime.now(UTC).date().isoformat()
    assert f"<title>{today}: 7</title>" in html
    assert 'id="usage-last-used">never<' not in html


async def test_receipts_of_the_same_customer_by_subject_as_pdfs(
    stack: ServiceStack, smtp_sink: SmtpSink
) -> None:
    merchant = await stack.create_merchant()
    first = await paid_session(stack, merchant, customer_email="ann@example.com", amount="10.00")
    second = await paid_session(stack, merchant, customer_email="Ann@Example.com", amount="20.00")
    stranger = await paid_session(stack, merchant, customer_email="bob@example.com", amount="30.00")
    cookie = await open_portal(stack, second.token)
    # Every receipt by the subject once the address is proven (test_portal_email_proof.py covers the proof).
    html = await prove_email(stack, cookie, smtp_sink, "Ann@Example.com")
    assert html.count('class="document"') == 2, html
    assert "10.00 EUR" in html and "20.00 EUR" in html and "30.00 EUR" not in html

    ids = re.findall(r'href="/access/documents/([0-9a-f-]+)\.pdf"', html)
    assert len(ids) == 2
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.base_url}/access/documents/{ids[0]}.pdf", headers={"Cookie": cookie}
    ) as response:
        assert response.status == 200 and response.content_type == "application/pdf"
        assert (await response.read()).startswith(b"%PDF")
    # Another customer's invoice is not served, even by id.
    _status, other = await stack.request("GET", f"/v1/sessions/{stranger.id}", headers=merchant.headers)
    async with stack.http.get(
        f"{stack.base_url}/access/documents/{other['invoice_id']}.pdf", headers={"Cookie": cookie}
    ) as response:
        assert response.status == 404
    assert first.id != second.id


async def test_contact_form_mails_the_merchant_with_the_session_reference(
    stack: ServiceStack, smtp_sink: SmtpSink
) -> None:
    merchant = await stack.create_merchant()
    # The support URL is a new billing-profile field; only http(s) URLs are accepted (it becomes a link).
    status, body = await stack.request(
        "PUT", "/v1/billing_profile", json={"support_url": "javascript:alert(1)"}, headers=merchant.headers
    )
    assert status == 400 and body["error"]["code"] == "invalid_support_url"
    status, body = await stack.request(
        "PUT",
        "/v1/billing_profile",
        json={"support_email": "help@acme.test", "support_url": "https://acme.test/help"},
        headers=merchant.headers,
    )
    assert status == 200 and body["support_url"] == "https://acme.test/help", body
    paid = await paid_session(stack, merchant, customer_email="")
    cookie = await open_portal(stack, paid.token)
    _status, html = await page(stack, cookie)
    assert 'id="support-email" href="mailto:help@acme.test"' in html
    assert 'id="support-url" href="https://acme.test/help"' in html
    token = csrf(html)

    # Header injection through the reply-to field is refused; an oversize message too.
    status, body = await post_form(
        stack,
        cookie,
        "/access/support",
        [("csrf_token", token), ("message", "hi"), ("reply_to", "ann@example.com\r\nBcc: evil@example.com")],
    )
    assert status == 400 and body["error"]["field"] == "reply_to"
    status, body = await post_form(
        stack, cookie, "/access/support", [("csrf_token", token), ("message", "x" * 4001)]
    )
    assert status == 400 and body["error"]["code"] == "message_too_long"

    text = "My key stopped working.\nSubject: injected\r\nBcc: evil@example.com"
    status, body = await post_form(
        stack,
        cookie,
        "/access/support",
        [("csrf_token", token), ("message", text), ("reply_to", "ann@example.com")],
    )
    assert status == 200 and body == {"sent": True, "session_reference": paid.id}

    async def delivered() -> list | None:
        found = [m for m in mails(smtp_sink.folder) if m["To"] == "help@acme.test"]
        return found or None

    (mail,) = await polling.eventually(delivered, timeout=10, interval=0.1, what="support mail")
    assert paid.id in mail["Subject"] and mail["Reply-To"] == "ann@example.com"
    assert mail["Bcc"] is None
    content = mail.get_content()
    assert f"Session reference: {paid.id}" in content and "My key stopped working." in content

    # Rate limited: three messages an hour per purchase.
    for _ in range(2):
        status, _body = await post_form(
            stack, cookie, "/access/support", [("csrf_token", token), ("message", "again")]
        )
        assert status == 200
    status, body = await post_form(
        stack, cookie, "/access/support", [("csrf_token", token), ("message", "again")]
    )
    assert status == 429 and body["error"]["code"] == "rate_limited"
    await asyncio.sleep(0)


async def test_without_a_support_address_the_customer_reaches_the_sellers_email(
    stack: ServiceStack, smtp_sink: SmtpSink
) -> None:
    """A merchant that set only the seller's email its invoices print (no support_email) is still reachable
    from the portal: the contact form mails that address. With neither, there is no form and no address."""
    merchant = await stack.create_merchant()
    status, _ = await stack.request(
        "PUT",
        "/v1/billing_profile",
        json={"seller": {"email": "accounts@acme.test"}},
        headers=merchant.headers,
    )
    assert status == 200
    paid = await paid_session(stack, merchant, customer_email="")
    cookie = await open_portal(stack, paid.token)
    _status, html = await page(stack, cookie)
    assert 'id="support-email" href="mailto:accounts@acme.test"' in html and 'id="contact-form"' in html
    status, body = await post_form(
        stack, cookie, "/access/support", [("csrf_token", csrf(html)), ("message", "Where is my receipt?")]
    )
    assert status == 200 and body["sent"] is True

    async def delivered() -> list | None:
        return [m for m in mails(smtp_sink.folder) if m["To"] == "accounts@acme.test"] or None

    (mail,) = await polling.eventually(delivered, timeout=10, interval=0.1, what="support mail")
    assert paid.id in mail["Subject"]

    bare = await stack.create_merchant()
    unreachable = await paid_session(stack, bare, customer_email="")
    _status, html = await page(stack, await open_portal(stack, unreachable.token))
    assert 'id="support-email"' not in html and 'id="contact-form"' not in html
    # Nor does the page send the customer to answer the mail: without a contact address it has no Reply-To,
    # and an answer would reach the deployment's sender, which nobody reads.
    assert "Reply to the email" not in html and "where you bought" in html


async def test_forms_refuse_other_origins_missing_csrf_and_no_session(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant)
    cookie = await open_portal(stack, paid.token)
    secret = await reveal(stack, cookie)
    _status, html = await page(stack, cookie)
    token = csrf(html)
    fields = [("csrf_token", token), ("current_key", secret)]
    for site in ("cross-site", "same-site"):
        status, body = await post_form(
            stack, cookie, "/access/key/roll", fields, headers={"Sec-Fetch-Site": site}
        )
        assert status == 403 and body["error"]["code"] == "csrf_failed"
    status, body = await post_form(stack, cookie, "/access/key/roll", [("current_key", secret)])
    assert status == 403 and body["error"]["code"] == "csrf_failed"
    status, body = await post_form(
        stack, cookie, "/access/key/roll", [("csrf_token", "x" * 43), ("current_key", secret)]
    )
    assert status == 403
    status, body = await post_form(
        stack, "other=1", "/access/key/revoke", [("csrf_token", token), ("confirm", "yes")]
    )
    assert status == 401
    # Nothing changed.
    assert (await verify(stack, merchant, secret))["code"] == "VALID"
    # Page protections hold on the new pages too.
    assert stack.http is not None
    async with stack.http.get(f"{stack.base_url}/access", headers={**HTML, "Cookie": cookie}) as response:
        text = await response.text()
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "<script" not in text and secret not in text
