"""A roll's grace period of 0 means "the old key stops now", never "the default" (contract §6a and §2): the
merchant secret key roll and the customer key roll, `grace_period` 0 given, null and left out, against the
0..604800 bounds the refusal and the OpenAPI document state. Real services over real HTTP and gRPC."""

from __future__ import annotations

from typing import Any

from keys_helpers import issue_access

from paygate.keys.v1 import keys_pb2
from support.stack import Merchant, ServiceStack


def _as(merchant: Merchant, secret: str) -> Merchant:
    return Merchant(merchant.id, secret, merchant.name)


async def _merchant_key_id(stack: ServiceStack, merchant: Merchant) -> str:
    status, listing = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 200, listing
    [active] = [k["id"] for k in listing["data"] if k["status"] == "active"]
    return active


async def test_a_merchant_key_rolled_with_grace_0_stops_at_once(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    for body in ({"grace_period": 0}, {"grace_period": None}, {}):
        key_id = await _merchant_key_id(stack, merchant)
        status, rolled = await stack.request(
            "POST", f"/v1/merchant_keys/{key_id}/roll", json=body, headers=merchant.headers
        )
        assert status == 200, (body, rolled)
        assert rolled["previous"]["status"] == "expired", (body, rolled)
        status, _ = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
        assert status == 401, body  # the old key, at once
        merchant = _as(merchant, rolled["secret"])
    status, body = await stack.request(
        "POST",
        f"/v1/merchant_keys/{await _merchant_key_id(stack, merchant)}/roll",
        json={"grace_period": -1},
        headers=merchant.headers,
    )
    assert status == 400 and body["error"]["code"] == "invalid_grace_period"
    assert "0 and 604800" in body["error"]["message"], body


async def test_a_customer_key_rolled_with_grace_0_stops_at_once(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    for body in ({"grace_period": 0}, {}):
        issued = await issue_access(stack, merchant)
        secret = (
            await stack.keys.RevealCustomerKey(
                keys_pb2.RevealCustomerKeyRequest(session_id=issued.session_id), timeout=5
            )
        ).secret
        status, rolled = await stack.request(
            "POST", f"/v1/api_keys/{issued.key.id}/roll", json=body, headers=merchant.headers
        )
        assert status == 200, (body, rolled)
        status, verdict = await stack.request(
            "POST", "/v1/api_keys/verify", json={"key": secret}, headers=merchant.headers
        )
        assert status == 200 and verdict["valid"] is False, (body, verdict)
        assert verdict["code"] in ("EXPIRED", "REVOKED"), (body, verdict)
        status, verdict = await stack.request(
            "POST", "/v1/api_keys/verify", json={"key": rolled["secret"]}, headers=merchant.headers
        )
        assert verdict["code"] == "VALID", (body, verdict)


async def test_the_openapi_document_states_the_roll_bounds_and_defaults(stack: ServiceStack) -> None:
    status, document = await stack.request("GET", "/openapi.json")
    assert status == 200
    schemas: dict[str, Any] = document["components"]["schemas"]
    for name in ("RollApiKey", "RollMerchantKey"):
        grace = schemas[name]["properties"]["grace_period"]
        assert (grace["minimum"], grace["maximum"], grace.get("default")) == (0, 604_800, 0), (name, grace)
