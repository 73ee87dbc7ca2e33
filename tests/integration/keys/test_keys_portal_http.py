"""The customer portal over plain HTTP: token exchange, cookie, headers, CSRF-protected one-time reveal."""

from __future__ import annotations

import logging
import re

import pytest
from keys_helpers import cookie_from, issue_access

from paygate.keys.v1 import keys_pb2
from support.stack import ServiceStack

HTML = {"Accept": "text/html"}


async def _exchange(stack: ServiceStack, token: str) -> str:
    """Open the link; returns the Cookie header value of the portal session."""
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.base_url}/access", params={"token": token}, headers=HTML, allow_redirects=False
    ) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/access"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "no-store" in response.headers["Cache-Control"]
        name, value, attrs = cookie_from(response.headers.getall("Set-Cookie"))
    assert name == "__Host-paygate_access" and len(value) >= 32
    assert attrs["httponly"] and attrs["secure"] and attrs["samesite"] == "Strict" and attrs["path"] == "/"
    assert 0 < int(attrs["max-age"]) <= 1800
    assert token not in value
    return f"{name}={value}"


async def _page(stack: ServiceStack, cookie: str) -> tuple[int, str, dict[str, str]]:
    assert stack.http is not None
    async with stack.http.get(f"{stack.base_url}/access", headers={**HTML, "Cookie": cookie}) as response:
        return response.status, await response.text(), dict(response.headers)


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


async def test_link_opens_portal_and_key_is_revealed_once(
    stack: ServiceStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    cookie = await _exchange(stack, issued.link.token)

    status, page, headers = await _page(stack, cookie)
    assert status == 200 and issued.key.hint in page and "Reveal my API key" in page
    assert headers["Referrer-Policy"] == "no-referrer" and "no-store" in headers["Cache-Control"]
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
    assert "<script" not in page
    # Billing may not have an invoice yet; the page says so instead of failing.
    assert "invoice-number" in page or "invoice is being prepared" in page

    assert stack.http is not None
    url = f"{stack.base_url}/access/reveal"
    async with stack.http.post(
        url, data={"csrf_token": "forged"}, headers={**HTML, "Cookie": cookie}
    ) as response:
        assert response.status == 403
    async with stack.http.post(url, data={"csrf_token": _csrf(page)}) as response:
        assert response.status == 401  # no portal session cookie
    async with stack.http.post(
        url, data={"csrf_token": _csrf(page)}, headers={**HTML, "Cookie": cookie}
    ) as response:
        assert response.status == 200
        revealed = await response.text()
        assert response.headers["Cache-Control"].startswith("no-store")
    secret = re.search(r'id="api-key-secret">([^<]+)<', revealed)
    assert secret is not None and secret.group(1).startswith("acme_test_")
    verify = await stack.keys.VerifyKey(keys_pb2.VerifyKeyRequest(key=secret.group(1)), timeout=5)
    assert verify.status == keys_pb2.KEY_STATUS_VALID and verify.key_id == issued.key.id

    async with stack.http.post(url, data={"csrf_token": _csrf(page)}, headers={"Cookie": cookie}) as response:
        assert response.status == 409
        assert (await response.json())["error"]["code"] == "already_revealed"
    status, page, _ = await _page(stack, cookie)
    assert status == 200 and "already revealed" in page and issued.key.hint in page
    assert secret.group(1) not in page

    # Neither the token nor the key reached any log line.
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert issued.link.token not in logged and secret.group(1) not in logged


async def test_revoked_token_ends_an_open_portal_session(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    cookie = await _exchange(stack, issued.link.token)
    assert (await _page(stack, cookie))[0] == 200
    await stack.keys.RevokeAccessToken(
        keys_pb2.RevokeAccessTokenRequest(jti=issued.link.access_token.id), timeout=5
    )
    status, page, headers = await _page(stack, cookie)
    assert status == 401 and "This link is not valid" in page and headers["Referrer-Policy"] == "no-referrer"


async def test_without_a_session_the_portal_is_401_and_cross_site_arrivals_continue(
    stack: ServiceStack,
) -> None:
    status, body = await stack.request("GET", "/access")
    assert (status, body["error"]["code"]) == (401, "no_portal_session")
    status, page = await stack.request("GET", "/access", headers={**HTML, "Sec-Fetch-Site": "cross-site"})
    assert status == 200 and 'http-equiv="refresh"' in page
    status, body = await stack.request("GET", "/access/receipt.pdf")
    assert status == 401


async def test_injected_markup_is_escaped(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    status, page = await stack.request(
        "GET", "/access", params={"token": "<script>alert(1)</script>"}, headers=HTML, allow_redirects=False
    )
    assert status == 401 and "<script>" not in page
    cookie = await _exchange(stack, issued.link.token)
    assert (await _page(stack, cookie))[0] == 200
