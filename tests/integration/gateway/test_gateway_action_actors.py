"""Who did it: every merchant action's audit row names its actor. The JSON API acts as the secret key that made
the request (`merchant_key:<id>`), the dashboard as `dashboard:merchant_key:<id>` (issue 17). Covered: customer
key roll and revoke (keys.audit_events), quarantine resolve (session.audit_log), invoice void
(billing.billing_audit, written by the invoices trigger from the void's `voided_by`)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import aiohttp
import pytest

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate_dev.devtools.signing import standard_delivery
from paygate_dev.devtools.stripe_fixtures import build_onecom_event
from support.polling import eventually
from support.stack import Merchant, ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    # The dashboard endpoint test registers a loopback receiver (refused by default as SSRF).
    return {**stack_env, "PAYGATE_ALLOW_LOOPBACK_WEBHOOKS": "true"}


async def _send_onecom(stack: ServiceStack, event: dict[str, Any]) -> None:
    raw, headers = standard_delivery(event, stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"], int(time.time()))
    status, receipt = await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers)
    assert status == 200, receipt


async def _paid_and_quarantined(stack: ServiceStack, merchant: Merchant) -> tuple[dict[str, Any], str]:
    """A One.com session paid and fulfilled, then paid a second time: that money is quarantined."""
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "20.00", "currency": "EUR", "provider": "onecom", "customer_email": "c@example.com"},
        headers=merchant.headers,
    )
    assert status == 201, created
    paid = build_onecom_event("payment.succeeded", created["id"], 2000, "EUR")
    await _send_onecom(stack, paid)

    async def fulfilled() -> dict[str, Any] | None:
        status, body = await stack.request("GET", f"/v1/sessions/{created['id']}", headers=merchant.headers)
        ok = status == 200 and body["status"] == "paid" and body["invoice_id"] and body["api_key_id"]
        return body if ok else None

    session = await eventually(fulfilled, timeout=30)
    await _send_onecom(stack, build_onecom_event("payment.succeeded", created["id"], 2000, "EUR"))

    async def quarantined() -> str | None:
        status, body = await stack.request("GET", "/v1/quarantine?status=open", headers=merchant.headers)
        return body["data"][0]["id"] if status == 200 and body["data"] else None

    return session, await eventually(quarantined, timeout=30)


async def _own_key_id(stack: ServiceStack, merchant: Merchant) -> str:
    status, listed = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 200 and len(listed["data"]) == 1, listed
    return str(listed["data"][0]["id"])


async def _actors(stack: ServiceStack, merchant_id: str) -> dict[str, set[str]]:
    """Each audited action of the merchant -> the actors its rows name."""
    conn = await stack.db.admin()
    try:
        rows = [
            *await conn.fetch(
                """SELECT event_type AS action, details->>'actor' AS actor FROM keys.audit_events
                    WHERE merchant_id = $1 AND event_type IN ('API_KEY_ROLLED', 'API_KEY_REVOKED')""",
                uuid.UUID(merchant_id),
            ),
            *await conn.fetch(
                """SELECT action, actor FROM session.audit_log
                    WHERE merchant_id = $1 AND action = 'quarantine_resolved'""",
                uuid.UUID(merchant_id),
            ),
            *await conn.fetch(
                """SELECT event AS action, actor FROM billing.billing_audit
                    WHERE merchant_id = $1 AND event = 'invoice_voided'""",
                merchant_id,
            ),
        ]
    finally:
        await conn.close()
    actors: dict[str, set[str]] = {}
    for row in rows:
        actors.setdefault(row["action"], set()).add(row["actor"])
    return actors


async def _issue_customer_key(stack: ServiceStack, merchant: Merchant) -> str:
    issued = await stack.keys.IssueCustomerKey(
        keys_pb2.IssueCustomerKeyRequest(
            merchant_id=merchant.id, mode=common_pb2.MODE_TEST, session_id=str(uuid.uuid4())
        ),
        timeout=5,
    )
    return str(issued.id)


EXPECTED_ACTIONS = {"API_KEY_ROLLED", "API_KEY_REVOKED", "quarantine_resolved", "invoice_voided"}


async def test_json_api_actions_are_audited_as_the_requests_key(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    key_id = await _own_key_id(stack, merchant)
    session, entry = await _paid_and_quarantined(stack, merchant)
    customer_key = await _issue_customer_key(stack, merchant)

    status, rolled = await stack.request(
        "POST",
        f"/v1/api_keys/{customer_key}/roll",
        json={"grace_period": 0},
        headers=merchant.headers,
    )
    assert status == 200, rolled
    status, body = await stack.request("DELETE", f"/v1/api_keys/{rolled['id']}", headers=merchant.headers)
    assert status == 200, body
    status, body = await stack.request(
        "POST", f"/v1/quarantine/{entry}/resolve", json={"decision": "dismissed"}, headers=merchant.headers
    )
    assert status == 200, body
    status, body = await stack.request(
        "POST",
        f"/v1/invoices/{session['invoice_id']}/void",
        json={"reason": "test"},
        headers=merchant.headers,
    )
    assert status == 200, body

    actors = await _actors(stack, merchant.id)
    assert set(actors) == EXPECTED_ACTIONS, actors
    assert all(found == {f"merchant_key:{key_id}"} for found in actors.values()), actors


async def test_dashboard_actions_are_audited_as_the_dashboard(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    key_id = await _own_key_id(stack, merchant)
    session, entry = await _paid_and_quarantined(stack, merchant)
    customer_key = await _issue_customer_key(stack, merchant)
    base = stack.base_url
    # unsafe: the jar keeps cookies of an IP-address host (the test gateway is 127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            f"{base}/dashboard/sign-in", data={"secret_key": merchant.api_key}, allow_redirects=False
        ) as response:
            assert response.status == 303
        async with http.get(f"{base}/dashboard/keys") as response:
            page = await response.text()
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]

        async def post(path: str, **form: str) -> str:
            async with http.post(base + path, data={"csrf_token": token, **form}) as response:
                text = await response.text()
                assert response.status == 200, (path, response.status, text)
                return text

        rolled_page = await post(
            f"/dashboard/keys/{customer_key}/roll", grace_period="0", idempotency_key=str(uuid.uuid4())
        )
        assert 'id="new-secret-value"' in rolled_page
        status, keys = await stack.request("GET", "/v1/api_keys", headers=merchant.headers)
        assert status == 200, keys
        successor = next(
            k["id"] for k in keys["data"] if k["id"] not in (customer_key, session["api_key_id"])
        )
        assert "revoked" in await post(f"/dashboard/keys/{successor}/revoke")
        assert "resolved" in await post(
            f"/dashboard/quarantine/{entry}/resolve", decision="dismissed", note="n"
        )
        assert "voided" in await post(f"/dashboard/invoices/{session['invoice_id']}/void", reason="test")

    actors = await _actors(stack, merchant.id)
    assert set(actors) == EXPECTED_ACTIONS, actors
    assert all(found == {f"dashboard:merchant_key:{key_id}"} for found in actors.values()), actors


async def test_dashboard_webhook_endpoint_changes_are_audited_as_the_dashboard(stack: ServiceStack) -> None:
    """Create, disable, roll and delete an endpoint from the dashboard: each session.audit_log row names the
    dashboard, not the bare `merchant` the service writes when no actor is sent."""
    merchant = await stack.create_merchant()
    key_id = await _own_key_id(stack, merchant)
    base = stack.base_url
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            f"{base}/dashboard/sign-in", data={"secret_key": merchant.api_key}, allow_redirects=False
        ) as response:
            assert response.status == 303
        async with http.get(f"{base}/dashboard/webhooks") as response:
            page = await response.text()
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]

        async def post(path: str, **form: str) -> str:
            async with http.post(base + path, data={"csrf_token": token, **form}) as response:
                text = await response.text()
                assert response.status == 200, (path, response.status, text)
                return text

        await post("/dashboard/webhooks", url="http://127.0.0.1:9/hook", description="d")
        status, listed = await stack.request("GET", "/v1/webhook_endpoints", headers=merchant.headers)
        assert status == 200 and len(listed["data"]) == 1, listed
        endpoint_id = listed["data"][0]["id"]
        await post(f"/dashboard/webhooks/{endpoint_id}/status", status="disabled")
        await post(f"/dashboard/webhooks/{endpoint_id}/roll", overlap="0")
        await post(f"/dashboard/webhooks/{endpoint_id}/delete")

    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            """SELECT action, actor FROM session.audit_log
                WHERE merchant_id = $1 AND action LIKE 'webhook_endpoint%' ORDER BY chain_seq""",
            merchant.id,
        )
    finally:
        await conn.close()
    assert [r["action"] for r in rows] == [
        "webhook_endpoint_created",
        "webhook_endpoint_updated",
        "webhook_endpoint_secret_rolled",
        "webhook_endpoint_deleted",
    ], rows
    assert {r["actor"] for r in rows} == {f"dashboard:merchant_key:{key_id}"}, rows
