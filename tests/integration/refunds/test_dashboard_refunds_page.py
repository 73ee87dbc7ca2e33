"""The dashboard's session page shows the session's refunds (and their credit notes), as the merchant API has
them, in the signed-in merchant's mode only. Real PostgreSQL and the real four services; the refunds are
recorded through `POST /v1/sessions/{id}/refund` (no provider API configured: refunds made outside paygate).
"""

from __future__ import annotations

import html
import re
from typing import Any

import aiohttp

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate_dev.devtools.stripe_fixtures import build_onecom_event
from support import polling
from support.refund_flows import applied, fulfilled, refund, send_onecom, session_json
from support.stack import Merchant, ServiceStack


async def _paid(stack: ServiceStack, merchant: Merchant, amount: str, currency: str) -> str:
    """A One.com session in `currency`, paid by a signed webhook and fulfilled; its id."""
    status, body = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": amount, "currency": currency, "provider": "onecom"},
        headers=merchant.headers,
    )
    assert status == 201, body
    event = build_onecom_event("payment.succeeded", body["id"], body["amount_minor"], currency)
    await applied(stack, "onecom", (await send_onecom(stack, event))["event_id"])
    await fulfilled(stack, merchant, body["id"])
    return str(body["id"])


async def _page(stack: ServiceStack, secret_key: str, path: str) -> tuple[int, str]:
    """GET a dashboard page signed in with `secret_key`: its status and HTML."""
    # unsafe: the jar keeps cookies of an IP-address host (the test gateway is 127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            f"{stack.base_url}/dashboard/sign-in", data={"secret_key": secret_key}, allow_redirects=False
        ) as response:
            assert response.status == 303, await response.text()
        async with http.get(stack.base_url + path, allow_redirects=False) as response:
            return response.status, await response.text()


def _rows(page: str) -> dict[str, str]:
    """The Refunds table's rows: refund id -> the row's text (tags dropped, entities decoded)."""
    rows = {}
    for refund_id, cells in re.findall(r'<tr data-refund-id="([^"]+)">(.*?)</tr>', page, re.S):
        rows[refund_id] = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cells)).split())
    return rows


def _when(iso: str) -> str:
    """An API timestamp as the dashboard writes times ("2026-03-01 12:34 UTC")."""
    return iso[:16].replace("T", " ") + " UTC"


async def test_session_page_lists_refunds_with_their_credit_notes(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    # KWD has three decimals: the amounts must be written with them, never as a float or with two.
    sid = await _paid(stack, merchant, "12.500", "KWD")
    status, first = await refund(
        stack, merchant, sid, {"amount": "1.250", "reason": "Goodwill <b>late</b> & sorry"}, key="r-1"
    )
    assert status == 202 and first["status"] == "succeeded", first
    status, second = await refund(stack, merchant, sid, {"amount": "0.005", "provider_refund_id": "re_x"})
    assert status == 202, second

    async def credited() -> dict[str, Any] | None:
        body = await session_json(stack, merchant, sid)
        return body if all(r["credit_note_number"] for r in body["refunds"]) else None

    api = await polling.eventually(credited, timeout=20, what="credit notes of both refunds")
    assert len(api["refunds"]) == 2

    status, page = await _page(stack, merchant.api_key, f"/dashboard/sessions/{sid}")
    assert status == 200, page
    assert 'id="refunds-h"' in page and ">Refunds<" in page
    rows = _rows(page)
    assert set(rows) == {first["id"], second["id"]}, rows
    for shown in api["refunds"]:
        row = rows[shown["id"]]
        assert shown["id"] in row
        assert f"{shown['amount']} KWD" in row
        assert shown["status"] in row
        assert _when(shown["created_at"]) in row
        assert shown["credit_note_number"] in row
    assert "1.250 KWD" in rows[first["id"]] and "0.005 KWD" in rows[second["id"]]
    assert "Goodwill <b>late</b> & sorry" in rows[first["id"]]
    # The reason is the merchant's text: escaped like everything else on the page.
    assert "<b>late</b>" not in page and "Goodwill &lt;b&gt;late&lt;/b&gt; &amp; sorry" in page
    assert "1.255 KWD" in page  # the total refunded, in the session's details


async def test_a_session_without_refunds_says_so(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    sid = await _paid(stack, merchant, "20.00", "EUR")
    status, page = await _page(stack, merchant.api_key, f"/dashboard/sessions/{sid}")
    assert status == 200, page
    assert 'id="refunds-h"' in page and 'id="no-refunds"' in page and not _rows(page)


async def test_refunds_are_shown_only_to_their_merchant_in_their_mode(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    sid = await _paid(stack, merchant, "40.00", "EUR")
    status, made = await refund(stack, merchant, sid, {"amount": "15.00", "reason": "damaged"})
    assert status == 202, made
    status, page = await _page(stack, merchant.api_key, f"/dashboard/sessions/{sid}")
    assert status == 200 and made["id"] in _rows(page), page

    # Another merchant signed in: the session (and so its refunds) does not exist for it.
    other = await stack.create_merchant(name="Other", prefix="other")
    status, page = await _page(stack, other.api_key, f"/dashboard/sessions/{sid}")
    assert status == 404 and made["id"] not in page and "15.00 EUR" not in page

    # The same merchant in live mode: a test session is not there either.
    live = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=merchant.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    status, page = await _page(stack, live.secret_key, f"/dashboard/sessions/{sid}")
    assert status == 404 and made["id"] not in page and "damaged" not in page
