"""Who did it (contract §9, README "Records an auditor trusts"): a session created, refunded or expired through
the JSON API is audited as the secret key that made the request (`merchant_key:<id>`), as voids, rolls and
quarantine decisions already are, never as the bare merchant: an auditor must be able to tell keys apart."""

from __future__ import annotations

from typing import Any

from support.refund_flows import paid_session, refund
from support.stack import Merchant, ServiceStack


async def _own_key_id(stack: ServiceStack, merchant: Merchant) -> str:
    status, listed = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 200 and len(listed["data"]) == 1, listed
    return str(listed["data"][0]["id"])


async def _session_entries(stack: ServiceStack, merchant: Merchant) -> list[dict[str, Any]]:
    # GET /v1/audit has no session filter: read every entry of this fresh merchant (well under 100).
    status, listed = await stack.request("GET", "/v1/audit?limit=100", headers=merchant.headers)
    assert status == 200 and listed["has_more"] is False, listed
    return [e for e in listed["data"] if e["service"] == "session"]


async def test_create_and_refund_are_audited_as_the_requests_key(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    key_id = await _own_key_id(stack, merchant)
    # Created over HTTP with the merchant's key, paid by a signed webhook and fulfilled, then partly refunded.
    paid = await paid_session(stack, merchant, "100.00")
    status, partial = await refund(stack, merchant, paid.id, {"amount": "10.00"})
    assert status == 202 and partial["status"] == "succeeded", partial

    actors = {(e["object_id"], e["action"]): e["actor"] for e in await _session_entries(stack, merchant)}
    done_by_key = {(paid.id, "session_created"), (paid.id, "refund_succeeded")}
    assert {k: actors.get(k) for k in done_by_key} == dict.fromkeys(done_by_key, f"merchant_key:{key_id}")


async def test_expire_is_audited_as_the_requests_key(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    key_id = await _own_key_id(stack, merchant)
    status, created = await stack.request(
        "POST", "/v1/sessions", json={"amount": "5.00", "currency": "EUR"}, headers=merchant.headers
    )
    assert status == 201, created
    status, expired = await stack.request(
        "POST", f"/v1/sessions/{created['id']}/expire", headers=merchant.headers
    )
    assert status == 200 and expired["status"] == "expired", expired

    actors = {(e["object_id"], e["action"]): e["actor"] for e in await _session_entries(stack, merchant)}
    done_by_key = {(created["id"], "session_created"), (created["id"], "session_expired")}
    assert {k: actors.get(k) for k in done_by_key} == dict.fromkeys(done_by_key, f"merchant_key:{key_id}")
