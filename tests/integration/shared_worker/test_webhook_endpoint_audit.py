"""Every change a merchant makes to its webhook endpoints, and every redelivery of a merchant event, is in the
session service's hash-chained audit trail: who (the secret key), what (action, object, changed fields), when;
never a secret and never the URL's path or query."""

from __future__ import annotations

import json

import pytest

from support import polling
from support.merchant_webhooks import FAST_ENV, create_endpoint, paid_session
from support.stack import ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_ENV}


async def _entries(stack: ServiceStack, merchant_id: str) -> list[dict]:
    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            """SELECT actor, action, session_id, detail::text AS detail, at FROM session.audit_log
                WHERE merchant_id = $1 AND (action LIKE 'webhook_endpoint%' OR action = 'merchant_event_redelivered')
                ORDER BY chain_seq""",
            merchant_id,
        )
    finally:
        await conn.close()
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]


async def test_endpoint_changes_and_redelivery_are_audited_without_secrets(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    created = await create_endpoint(stack, merchant, "http://127.0.0.1:9/hook?token=receiver-secret", ["*"])
    endpoint_id = created["id"]
    status, _ = await stack.request(
        "PATCH",
        f"/v1/webhook_endpoints/{endpoint_id}",
        headers=merchant.headers,
        json={"events": ["session.paid"], "status": "disabled", "description": "ops"},
    )
    assert status == 200
    status, rolled = await stack.request(
        "POST", f"/v1/webhook_endpoints/{endpoint_id}/roll_secret", headers=merchant.headers, json={}
    )
    assert status == 200
    status, _ = await stack.request(
        "PATCH", f"/v1/webhook_endpoints/{endpoint_id}", headers=merchant.headers, json={"status": "enabled"}
    )
    assert status == 200
    await paid_session(stack, merchant)

    async def event_id() -> str | None:
        _, page = await stack.request("GET", "/v1/merchant_events", headers=merchant.headers)
        return page["data"][0]["id"] if page["data"] else None

    event = await polling.eventually(event_id, timeout=20)
    status, _ = await stack.request(
        "POST",
        f"/v1/merchant_events/{event}/redeliver",
        headers=merchant.headers,
        json={"endpoint": endpoint_id},
    )
    assert status == 202
    status, _ = await stack.request(
        "DELETE", f"/v1/webhook_endpoints/{endpoint_id}", headers=merchant.headers
    )
    assert status == 200

    entries = await _entries(stack, merchant.id)
    assert [e["action"] for e in entries] == [
        "webhook_endpoint_created",
        "webhook_endpoint_updated",
        "webhook_endpoint_secret_rolled",
        "webhook_endpoint_updated",
        "merchant_event_redelivered",
        "webhook_endpoint_deleted",
    ]
    # Who: the secret key that asked.
    assert all(e["actor"].startswith("merchant_key:") for e in entries), entries
    assert all(e["session_id"] is None and e["at"] is not None for e in entries)
    assert entries[0]["detail"] == {
        "object_type": "webhook_endpoint",
        "object_id": endpoint_id,
        "mode": "test",
        "url_host": "127.0.0.1",
        "events": ["*"],
    }
    assert sorted(entries[1]["detail"]["changed"]) == ["description", "events", "status"]
    assert entries[1]["detail"]["status"] == {"from": "enabled", "to": "disabled"}
    assert entries[3]["detail"]["changed"] == ["status"]
    assert entries[4]["detail"] == {
        "object_type": "merchant_event",
        "object_id": event,
        "mode": "test",
        "endpoint_id": endpoint_id,
    }
    # Never a secret (the endpoint's, old or new) nor the URL's query.
    text = json.dumps(entries, default=str)
    assert created["secret"] not in text and rolled["secret"] not in text
    assert "whsec_" not in text and "receiver-secret" not in text

    # GET /v1/audit names the endpoint as the object.
    status, audit = await stack.request("GET", "/v1/audit?limit=100", headers=merchant.headers)
    assert status == 200, audit
    listed = [a for a in audit["data"] if a["action"].startswith("webhook_endpoint")]
    assert len(listed) == 5
    assert all(a["object_type"] == "webhook_endpoint" and a["object_id"] == endpoint_id for a in listed)
    redelivered = [a for a in audit["data"] if a["action"] == "merchant_event_redelivered"]
    assert redelivered and redelivered[0]["object_type"] == "merchant_event"


async def test_a_refused_change_writes_no_audit_entry(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    created = await create_endpoint(stack, merchant, "http://127.0.0.1:9/hook")
    status, body = await stack.request(
        "PATCH",
        f"/v1/webhook_endpoints/{created['id']}",
        headers=merchant.headers,
        json={"url": "ftp://example.com/x"},
    )
    assert status == 400, body
    other = await stack.create_merchant(name="Other", prefix="other")
    status, _ = await stack.request("DELETE", f"/v1/webhook_endpoints/{created['id']}", headers=other.headers)
    assert status == 404
    assert [e["action"] for e in await _entries(stack, merchant.id)] == ["webhook_endpoint_created"]
    assert await _entries(stack, other.id) == []
