"""The merchant API for customer keys (contract §2), over HTTP through the gateway."""

from __future__ import annotations

import pytest
from keys_helpers import LIVE, issue_access

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from support.stack import Merchant, ServiceStack


async def _secret(stack: ServiceStack, session_id: str) -> str:
    reply = await stack.keys.RevealCustomerKey(
        keys_pb2.RevealCustomerKeyRequest(session_id=session_id), timeout=5
    )
    return reply.secret


async def _live_merchant_key(stack: ServiceStack, merchant: Merchant) -> Merchant:
    reply = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=merchant.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    return Merchant(merchant.id, reply.secret_key, merchant.name)


async def test_list_roll_revoke_verify(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    secret = await _secret(stack, issued.session_id)

    status, listing = await stack.request("GET", "/v1/api_keys", headers=merchant.headers)
    assert status == 200 and [k["id"] for k in listing["data"]] == [issued.key.id]
    shown = listing["data"][0]
    assert shown["hint"] == issued.key.hint and shown["status"] == "VALID" and shown["revealed"] is True
    assert secret not in str(listing)

    status, body = await stack.request(
        "POST", "/v1/api_keys/verify", json={"key": secret}, headers=merchant.headers
    )
    assert status == 200
    assert body == {
        "valid": True,
        "code": "VALID",
        "key_id": issued.key.id,
        "merchant_id": merchant.id,
        "session_id": issued.session_id,
        "mode": "test",
        "scopes": ["*"],
    }

    status, rolled = await stack.request(
        "POST", f"/v1/api_keys/{issued.key.id}/roll", json={"grace_period": 600}, headers=merchant.headers
    )
    assert status == 200 and rolled["secret"].startswith("acme_test_")
    assert rolled["previous"]["id"] == issued.key.id and rolled["previous"]["expires_at"] is not None
    status, body = await stack.request(
        "POST", "/v1/api_keys/verify", json={"key": secret}, headers=merchant.headers
    )
    assert body["code"] == "VALID"  # still within its grace period
    status, listing = await stack.request("GET", "/v1/api_keys", headers=merchant.headers)
    assert all("secret" not in k for k in listing["data"]) and len(listing["data"]) == 2

    status, revoked = await stack.request("DELETE", f"/v1/api_keys/{rolled['id']}", headers=merchant.headers)
    assert status == 200 and revoked["status"] == "REVOKED"
    status, body = await stack.request(
        "POST", "/v1/api_keys/verify", json={"key": rolled["secret"]}, headers=merchant.headers
    )
    assert (body["valid"], body["code"], body["key_id"]) == (False, "REVOKED", rolled["id"])


async def test_bad_keys_are_not_found_and_bad_bodies_are_400(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    for junk in ["", "acme_test_", "x" * 5000, "acme_test_" + "1" * 33]:
        status, body = await stack.request(
            "POST", "/v1/api_keys/verify", json={"key": junk}, headers=merchant.headers
        )
        assert status == 200 and body["code"] == "NOT_FOUND" and body["key_id"] is None
    for payload, code in (({}, "missing_key"), ({"key": 5}, "invalid_key")):
        status, body = await stack.request(
            "POST", "/v1/api_keys/verify", json=payload, headers=merchant.headers
        )
        assert (status, body["error"]["code"]) == (400, code)
    issued = await issue_access(stack, merchant)
    for grace in (-1, 604801, 1.5, "10", True):
        status, body = await stack.request(
            "POST",
            f"/v1/api_keys/{issued.key.id}/roll",
            json={"grace_period": grace},
            headers=merchant.headers,
        )
        assert (status, body["error"]["code"]) == (400, "invalid_grace_period"), grace
    status, body = await stack.request("POST", "/v1/api_keys/verify", json={"key": "x"})
    assert (status, body["error"]["code"]) == (401, "unauthenticated")


async def test_other_merchants_and_other_modes_see_nothing(stack: ServiceStack) -> None:
    alice = await stack.create_merchant("Alice", "alice")
    bob = await stack.create_merchant("Bob", "bob")
    issued = await issue_access(stack, alice)
    secret = await _secret(stack, issued.session_id)
    for method, path in (
        ("POST", f"/v1/api_keys/{issued.key.id}/roll"),
        ("DELETE", f"/v1/api_keys/{issued.key.id}"),
    ):
        status, body = await stack.request(method, path, headers=bob.headers)
        assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await stack.request(
        "POST", "/v1/api_keys/verify", json={"key": secret}, headers=bob.headers
    )
    assert body["code"] == "NOT_FOUND" and body["merchant_id"] is None
    status, listing = await stack.request("GET", "/v1/api_keys", headers=bob.headers)
    assert listing["data"] == []

    # Alice's live secret key sees none of her test keys.
    alice_live = await _live_merchant_key(stack, alice)
    status, listing = await stack.request("GET", "/v1/api_keys", headers=alice_live.headers)
    assert listing["data"] == []
    status, body = await stack.request("DELETE", f"/v1/api_keys/{issued.key.id}", headers=alice_live.headers)
    assert status == 404
    status, body = await stack.request(
        "POST", "/v1/api_keys/verify", json={"key": secret}, headers=alice_live.headers
    )
    assert body["code"] == "NOT_FOUND"
    live = await issue_access(stack, alice, mode=LIVE)
    status, listing = await stack.request("GET", "/v1/api_keys", headers=alice_live.headers)
    assert [k["id"] for k in listing["data"]] == [live.key.id] and listing["data"][0]["mode"] == "live"


@pytest.mark.parametrize("path", ["/v1/api_keys", "/v1/api_keys?limit=0", "/v1/api_keys?limit=abc"])
async def test_listing_validates_limit(stack: ServiceStack, path: str) -> None:
    merchant = await stack.create_merchant()
    status, body = await stack.request("GET", path, headers=merchant.headers)
    if path == "/v1/api_keys":
        assert status == 200
    else:
        assert (status, body["error"]["code"]) == (400, "invalid_limit")
