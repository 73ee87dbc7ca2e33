"""Access links can be revoked and reissued (contract §6a): DELETE and POST /v1/sessions/{id}/access on a
real paid and fulfilled session. Real Postgres, real gRPC, real HTTP, the real portal."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from keys_helpers import cookie_from

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate_dev.devtools.signing import standard_delivery
from paygate_dev.devtools.stripe_fixtures import build_onecom_event
from support.polling import eventually
from support.stack import Merchant, ServiceStack

HTML = {"Accept": "text/html"}


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, "PAYGATE_OUTBOX_POLL_MS": "100"}


async def _create_session(stack: ServiceStack, merchant: Merchant) -> str:
    status, session = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "12.00", "currency": "EUR", "provider": "onecom"},
        headers=merchant.headers,
    )
    assert status == 201, session
    return session["id"]


async def _paid_session(stack: ServiceStack, merchant: Merchant) -> tuple[str, str]:
    """A session paid through a signed One.com webhook and fulfilled; its id and access link."""
    session_id = await _create_session(stack, merchant)
    raw, headers = standard_delivery(
        build_onecom_event("payment.succeeded", session_id, 1200, "EUR"),
        stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"],
        int(time.time()),
    )
    status, body = await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers)
    assert status == 200, body

    async def access_url() -> str | None:
        status, detail = await stack.request("GET", f"/v1/sessions/{session_id}", headers=merchant.headers)
        assert status == 200, detail
        return detail["access_url"]

    url = await eventually(access_url, timeout=30, what="fulfilment")
    return session_id, url


def _token(url: str) -> str:
    (token,) = parse_qs(urlparse(url).query)["token"]
    return token


async def _open(stack: ServiceStack, token: str) -> tuple[int, str | None]:
    """Open a link: (status, portal cookie when it was accepted)."""
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.base_url}/access", params={"token": token}, headers=HTML, allow_redirects=False
    ) as response:
        if response.status != 303:
            return response.status, None
        name, value, _ = cookie_from(response.headers.getall("Set-Cookie"))
        return 303, f"{name}={value}"


async def _portal(stack: ServiceStack, cookie: str, path: str = "/access") -> int:
    assert stack.http is not None
    async with stack.http.get(f"{stack.base_url}{path}", headers={**HTML, "Cookie": cookie}) as response:
        return response.status


async def _detail(stack: ServiceStack, merchant: Merchant, session_id: str) -> dict[str, Any]:
    status, detail = await stack.request("GET", f"/v1/sessions/{session_id}", headers=merchant.headers)
    assert status == 200
    return detail


async def test_revoke_then_reissue(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session_id, url = await _paid_session(stack, merchant)
    token = _token(url)
    status, cookie = await _open(stack, token)
    assert status == 303 and cookie is not None
    assert await _portal(stack, cookie) == 200

    status, body = await stack.request(
        "DELETE", f"/v1/sessions/{session_id}/access", headers=merchant.headers
    )
    assert status == 200, body
    assert body["id"] == session_id and body["access_url"] is None and body["access_links_revoked"] == 1
    # The link and the cookie already exchanged for it are refused from now on.
    assert (await _open(stack, token))[0] == 401
    assert await _portal(stack, cookie) == 401
    assert await _portal(stack, cookie, "/access/receipt.pdf") == 401
    assert (await _detail(stack, merchant, session_id))["access_url"] is None
    # Revoking again changes nothing and says so.
    status, body = await stack.request(
        "DELETE", f"/v1/sessions/{session_id}/access", headers=merchant.headers
    )
    assert status == 200 and body["access_links_revoked"] == 0

    status, body = await stack.request("POST", f"/v1/sessions/{session_id}/access", headers=merchant.headers)
    assert status == 201, body
    fresh = body["access_url"]
    assert fresh and fresh != url and body["id"] == session_id
    assert (await _detail(stack, merchant, session_id))["access_url"] == fresh
    status, new_cookie = await _open(stack, _token(fresh))
    assert status == 303 and new_cookie is not None and await _portal(stack, new_cookie) == 200
    assert (await _open(stack, token))[0] == 401  # the old link stays dead

    # A reissue while a link stands replaces it: the standing link and its cookie stop.
    status, body = await stack.request("POST", f"/v1/sessions/{session_id}/access", headers=merchant.headers)
    assert status == 201 and body["access_url"] not in (fresh, url)
    assert (await _open(stack, _token(fresh)))[0] == 401
    assert await _portal(stack, new_cookie) == 401
    assert (await _open(stack, _token(body["access_url"])))[0] == 303

    conn = await stack.db.admin()
    try:
        events = [
            r["event_type"]
            for r in await conn.fetch(
                "SELECT event_type FROM keys.audit_events WHERE object_type = 'access_token' ORDER BY id"
            )
        ]
    finally:
        await conn.close()
    assert events == [
        "ACCESS_TOKEN_ISSUED",
        "ACCESS_TOKEN_REVOKED",
        "ACCESS_TOKEN_REISSUED",
        "ACCESS_TOKEN_REVOKED",
        "ACCESS_TOKEN_REISSUED",
    ]


async def test_other_merchant_other_mode_and_unpaid_sessions(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session_id, url = await _paid_session(stack, merchant)
    stranger = await stack.create_merchant("Other", "other")
    live_reply = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=merchant.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    live = Merchant(merchant.id, live_reply.secret_key, merchant.name)
    for caller in (stranger, live):
        for method in ("DELETE", "POST"):
            status, body = await stack.request(
                method, f"/v1/sessions/{session_id}/access", headers=caller.headers
            )
            assert (status, body["error"]["code"]) == (404, "not_found"), (method, caller)
    for junk in ("junk", "00000000-0000-0000-0000-000000000000"):
        status, body = await stack.request("DELETE", f"/v1/sessions/{junk}/access", headers=merchant.headers)
        assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await stack.request("DELETE", f"/v1/sessions/{session_id}/access")
    assert (status, body["error"]["code"]) == (401, "unauthenticated")
    # None of that touched the link.
    assert (await _open(stack, _token(url)))[0] == 303
    assert (await _detail(stack, merchant, session_id))["access_url"] == url

    unpaid = await _create_session(stack, merchant)
    status, body = await stack.request("POST", f"/v1/sessions/{unpaid}/access", headers=merchant.headers)
    assert (status, body["error"]["code"]) == (409, "session_not_paid")
    status, body = await stack.request("DELETE", f"/v1/sessions/{unpaid}/access", headers=merchant.headers)
    assert (status, body["error"]["code"]) == (409, "session_not_fulfilled")


async def test_keys_service_scopes_links_by_merchant_and_mode(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session_id, _ = await _paid_session(stack, merchant)
    stranger = await stack.create_merchant("Other", "other")
    for merchant_id, mode in ((stranger.id, common_pb2.MODE_TEST), (merchant.id, common_pb2.MODE_LIVE)):
        for call, request in (
            (
                stack.keys.RevokeAccessLinks,
                keys_pb2.RevokeAccessLinksRequest(session_id=session_id, merchant_id=merchant_id, mode=mode),
            ),
            (
                stack.keys.ReissueAccessLink,
                keys_pb2.ReissueAccessLinkRequest(session_id=session_id, merchant_id=merchant_id, mode=mode),
            ),
        ):
            with pytest.raises(Exception) as caught:
                await call(request, timeout=5)
            assert caught.value.code().name == "NOT_FOUND"  # type: ignore[attr-defined]
    # Fulfilment's IssueAccessToken stays idempotent after a reissue: it answers with the newest token.
    link = await stack.keys.ReissueAccessLink(
        keys_pb2.ReissueAccessLinkRequest(
            session_id=session_id, merchant_id=merchant.id, mode=common_pb2.MODE_TEST
        ),
        timeout=5,
    )
    again = await stack.keys.IssueAccessToken(
        keys_pb2.IssueAccessTokenRequest(
            merchant_id=merchant.id, session_id=session_id, mode=common_pb2.MODE_TEST
        ),
        timeout=5,
    )
    assert again.id == link.access_token.id and not again.HasField("revoked_at")


async def test_concurrent_reissues_leave_exactly_one_standing_link(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session_id, _ = await _paid_session(stack, merchant)
    request = keys_pb2.ReissueAccessLinkRequest(
        session_id=session_id, merchant_id=merchant.id, mode=common_pb2.MODE_TEST
    )
    links = await asyncio.gather(*(stack.keys.ReissueAccessLink(request, timeout=10) for _ in range(6)))
    assert len({link.access_token.id for link in links}) == 6
    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            "SELECT generation, revoked_at FROM keys.access_tokens WHERE session_id = $1 ORDER BY generation",
            uuid.UUID(session_id),
        )
    finally:
        await conn.close()
    assert [r["generation"] for r in rows] == list(range(1, 8))
    assert [r["revoked_at"] is None for r in rows] == [False] * 6 + [True]
    status, detail = await stack.request("GET", f"/v1/sessions/{session_id}", headers=merchant.headers)
    assert status == 200 and (await _open(stack, _token(detail["access_url"])))[0] == 303
