"""The merchant events routes (contract §7, §6a bad-input rules): endpoint URLs per mode, isolation between
merchants and modes, updates, deletion and redelivery refusals."""

from __future__ import annotations

from typing import Any

import pytest
from merchant_events_support import FAST_ENV, Receiver, create_endpoint, eventually, paid_session

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from support.stack import Merchant, ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_ENV}


async def _live_key(stack: ServiceStack, merchant: Merchant) -> Merchant:
    reply = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=merchant.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    return Merchant(merchant.id, reply.secret_key, merchant.name)


async def _post(stack: ServiceStack, merchant: Merchant, body: Any) -> tuple[int, Any]:
    return await stack.request("POST", "/v1/webhook_endpoints", headers=merchant.headers, json=body)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://localhost/hook",
        "http://127.0.0.1:9/hook",
        "http://hooks.example.com/hook",
    ],
)
async def test_live_endpoint_urls_that_are_not_public_https_are_refused(
    stack: ServiceStack, url: str
) -> None:
    merchant = await _live_key(stack, await stack.create_merchant())
    status, body = await _post(stack, merchant, {"url": url, "events": ["session.paid"]})
    assert status == 400 and body["error"]["code"] == "invalid_url", body
    _, listed = await stack.request("GET", "/v1/webhook_endpoints", headers=merchant.headers)
    assert listed["data"] == []  # nothing changed by a refused request


async def test_live_public_https_endpoint_is_created_with_its_secret_once(stack: ServiceStack) -> None:
    merchant = await _live_key(stack, await stack.create_merchant())
    status, created = await _post(stack, merchant, {"url": "https://hooks.example.com/paygate"})
    assert status == 201, created
    assert created["mode"] == "live" and created["events"] == ["*"] and created["secret"].startswith("whsec_")
    status, fetched = await stack.request(
        "GET", f"/v1/webhook_endpoints/{created['id']}", headers=merchant.headers
    )
    assert status == 200 and "secret" not in fetched
    _, listed = await stack.request("GET", "/v1/webhook_endpoints", headers=merchant.headers)
    assert [e["id"] for e in listed["data"]] == [created["id"]] and "secret" not in listed["data"][0]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": 5}, "invalid_url"),
        ({}, "invalid_url"),
        ({"url": "http://127.0.0.1:1/", "events": ["nope"]}, "invalid_events"),
        ({"url": "http://127.0.0.1:1/", "events": "session.paid"}, "invalid_events"),
        ({"url": "http://127.0.0.1:1/", "events": ["*", "session.paid"]}, "invalid_events"),
        ({"url": "http://127.0.0.1:1/", "description": "x" * 501}, "invalid_description"),
        ({"url": "http://127.0.0.1:1/", "colour": "red"}, "unknown_field"),
        ({"url": "http://10.0.0.1/"}, "invalid_url"),
    ],
)
async def test_malformed_endpoint_bodies_name_the_field(
    stack: ServiceStack, body: dict[str, Any], code: str
) -> None:
    merchant = await stack.create_merchant()
    status, reply = await _post(stack, merchant, body)
    assert status == 400 and reply["error"]["code"] == code, reply


async def test_other_merchants_and_the_other_mode_get_404(stack: ServiceStack) -> None:
    receiver = await Receiver().start()
    try:
        owner = await stack.create_merchant("Owner", "own")
        stranger = await stack.create_merchant("Other", "oth")
        owner_live = await _live_key(stack, owner)
        endpoint = await create_endpoint(stack, owner, receiver.url, ["session.paid"])
        await paid_session(stack, owner)
        await eventually(lambda: _value(receiver.deliveries))
        event_id = receiver.deliveries[0].headers["webhook-id"]

        for who in (stranger, owner_live):
            path = f"/v1/webhook_endpoints/{endpoint['id']}"
            for method, route, body in (
                ("GET", path, None),
                ("PATCH", path, {"description": "mine now"}),
                ("DELETE", path, None),
                ("POST", path + "/roll_secret", {}),
                ("GET", f"/v1/webhook_deliveries?endpoint={endpoint['id']}", None),
                ("GET", f"/v1/webhook_deliveries?event={event_id}", None),
                ("POST", f"/v1/merchant_events/{event_id}/redeliver", {"endpoint": endpoint["id"]}),
            ):
                status, reply = await stack.request(method, route, headers=who.headers, json=body)
                assert status == 404 and reply["error"]["code"] == "not_found", (method, route, reply)
            for listing in ("/v1/webhook_endpoints", "/v1/merchant_events", "/v1/webhook_deliveries"):
                status, page = await stack.request("GET", listing, headers=who.headers)
                assert status == 200 and page["data"] == [], (listing, page)
        # Nothing the others tried changed it.
        status, fetched = await stack.request(
            "GET", f"/v1/webhook_endpoints/{endpoint['id']}", headers=owner.headers
        )
        assert status == 200 and fetched["description"] == "" and fetched["status"] == "enabled"
        # Unknown and malformed ids are 404 too.
        for bad in ("00000000-0000-0000-0000-000000000000", "nope", "%00"):
            status, _ = await stack.request("GET", f"/v1/webhook_endpoints/{bad}", headers=owner.headers)
            assert status == 404
    finally:
        await receiver.stop()


async def test_update_disable_delete_and_redelivery_refusals(stack: ServiceStack) -> None:
    receiver = await Receiver().start()
    try:
        merchant = await stack.create_merchant()
        endpoint = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
        path = f"/v1/webhook_endpoints/{endpoint['id']}"
        status, updated = await stack.request(
            "PATCH",
            path,
            headers=merchant.headers,
            json={
                "events": ["session.paid", "invoice.issued"],
                "description": "orders",
                "status": "disabled",
            },
        )
        assert status == 200, updated
        assert updated["events"] == ["session.paid", "invoice.issued"] and updated["status"] == "disabled"
        for body, code in (
            ({"status": "paused"}, "invalid_status"),
            ({"url": "ftp://x"}, "invalid_url"),
            ({"events": []}, "invalid_events"),
            ({"secret": "mine"}, "unknown_field"),
        ):
            status, reply = await stack.request("PATCH", path, headers=merchant.headers, json=body)
            assert status == 400 and reply["error"]["code"] == code, reply

        # A disabled endpoint gets nothing and cannot be redelivered to.
        await paid_session(stack, merchant)
        _, events = await eventually(
            lambda: _listing(stack, merchant, "/v1/merchant_events?type=session.paid"), timeout=10
        )
        event_id = events[0]["id"]
        status, reply = await stack.request(
            "POST",
            f"/v1/merchant_events/{event_id}/redeliver",
            headers=merchant.headers,
            json={"endpoint": endpoint["id"]},
        )
        assert status == 409 and reply["error"]["code"] == "endpoint_disabled"
        for body, code in (({}, "missing_endpoint"), ({"endpoint": 3}, "invalid_endpoint")):
            status, reply = await stack.request(
                "POST", f"/v1/merchant_events/{event_id}/redeliver", headers=merchant.headers, json=body
            )
            assert status == 400 and reply["error"]["code"] == code

        # Enabled again: a redelivery arrives.
        status, _ = await stack.request("PATCH", path, headers=merchant.headers, json={"status": "enabled"})
        assert status == 200
        status, _ = await stack.request(
            "POST",
            f"/v1/merchant_events/{event_id}/redeliver",
            headers=merchant.headers,
            json={"endpoint": endpoint["id"]},
        )
        assert status == 202
        await eventually(lambda: _value(receiver.deliveries))

        status, deleted = await stack.request("DELETE", path, headers=merchant.headers)
        assert status == 200 and deleted["deleted"] is True
        status, _ = await stack.request("GET", path, headers=merchant.headers)
        assert status == 404
        # Its log stays readable by event.
        status, page = await stack.request(
            "GET", f"/v1/webhook_deliveries?event={event_id}", headers=merchant.headers
        )
        assert status == 200 and page["data"][0]["endpoint_id"] == endpoint["id"]
        for query, code in (("limit=0", "invalid_limit"), ("starting_after=abc", "invalid_starting_after")):
            status, reply = await stack.request(
                "GET", f"/v1/webhook_deliveries?{query}", headers=merchant.headers
            )
            assert status == 400 and reply["error"]["code"] == code
        status, reply = await stack.request("GET", "/v1/merchant_events?type=nope", headers=merchant.headers)
        assert status == 400 and reply["error"]["code"] == "invalid_type"
    finally:
        await receiver.stop()


async def _listing(stack: ServiceStack, merchant: Merchant, path: str) -> tuple[int, list[Any]] | None:
    status, page = await stack.request("GET", path, headers=merchant.headers)
    return (status, page["data"]) if page["data"] else None


async def _value(value: Any) -> Any:
    return value
