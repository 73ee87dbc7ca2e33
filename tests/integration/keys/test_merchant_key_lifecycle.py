"""Merchant secret keys with a lifecycle (contract §6a): list, create, roll with and without a grace period,
revoke, the last-key rule, mode and merchant scoping, bad input, the audit trail, and batched last use.
Real Postgres, real gRPC, real HTTP through the gateway."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate_runtime.grpc_errors import error_code
from support.polling import eventually
from support.stack import Merchant, ServiceStack

KEY_FIELDS = {
    "id",
    "object",
    "prefix",
    "last4",
    "mode",
    "status",
    "created_at",
    "last_used_at",
    "expires_at",
    "revoked_at",
    "rolled_from_id",
}


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, "PAYGATE_KEYS_USAGE_FLUSH_MS": "50"}


def _as(merchant: Merchant, secret: str) -> Merchant:
    return Merchant(merchant.id, secret, merchant.name)


async def _status(stack: ServiceStack, merchant: Merchant) -> int:
    status, _ = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
    return status


async def _keys(stack: ServiceStack, merchant: Merchant) -> dict[str, dict[str, Any]]:
    status, listing = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 200, listing
    assert listing["object"] == "list" and listing["has_more"] is False
    return {k["id"]: k for k in listing["data"]}


async def _live(stack: ServiceStack, merchant: Merchant) -> Merchant:
    reply = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=merchant.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    return _as(merchant, reply.secret_key)


async def test_listing_shows_metadata_never_a_secret(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    status, listing = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 200
    assert listing["data"][0].keys() == KEY_FIELDS
    (key,) = listing["data"]
    assert key["prefix"] == "sk_test_" and key["last4"] == merchant.api_key[-4:]
    assert key["mode"] == "test" and key["status"] == "active" and key["expires_at"] is None
    assert merchant.api_key not in str(listing) and "secret" not in key

    status, created = await stack.request("POST", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 201 and created["secret"].startswith("sk_test_") and created["status"] == "active"
    assert created["last4"] == created["secret"][-4:]
    listed = await _keys(stack, merchant)
    assert set(listed) == {key["id"], created["id"]}
    assert created["secret"] not in str(listed) and all("secret" not in k for k in listed.values())
    # The new key works; the database holds hashes only.
    assert await _status(stack, _as(merchant, created["secret"])) == 200
    conn = await stack.db.admin()
    try:
        dump = str(await conn.fetch("SELECT * FROM keys.merchant_secret_keys"))
    finally:
        await conn.close()
    assert created["secret"] not in dump and merchant.api_key not in dump


async def test_roll_without_grace_stops_the_old_key_at_once(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    (old_id,) = await _keys(stack, merchant)
    status, rolled = await stack.request("POST", f"/v1/merchant_keys/{old_id}/roll", headers=merchant.headers)
    assert status == 200, rolled
    assert rolled["secret"].startswith("sk_test_") and rolled["rolled_from_id"] == old_id
    assert rolled["previous"]["id"] == old_id and rolled["previous"]["status"] == "expired"
    assert await _status(stack, merchant) == 401
    new = _as(merchant, rolled["secret"])
    listed = await _keys(stack, new)
    assert listed[old_id]["status"] == "expired" and listed[rolled["id"]]["status"] == "active"
    # A dead key cannot be rolled again.
    status, body = await stack.request("POST", f"/v1/merchant_keys/{old_id}/roll", headers=new.headers)
    assert (status, body["error"]["code"]) == (409, "key_expired")


async def test_roll_with_grace_keeps_the_old_key_until_the_grace_ends(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    (old_id,) = await _keys(stack, merchant)
    status, rolled = await stack.request(
        "POST", f"/v1/merchant_keys/{old_id}/roll", json={"grace_period": 3600}, headers=merchant.headers
    )
    assert status == 200, rolled
    previous = rolled["previous"]
    assert previous["status"] == "expiring"
    ends = datetime.fromisoformat(previous["expires_at"])
    assert 3590 < (ends - datetime.now(UTC)).total_seconds() <= 3600
    # Both keys work during the grace period.
    new = _as(merchant, rolled["secret"])
    assert await _status(stack, merchant) == 200 and await _status(stack, new) == 200

    # A short grace period ends on its own: the old key is then refused (401), the new one still works.
    status, again = await stack.request(
        "POST", f"/v1/merchant_keys/{rolled['id']}/roll", json={"grace_period": 1}, headers=new.headers
    )
    assert status == 200 and again["previous"]["status"] == "expiring"
    newest = _as(merchant, again["secret"])
    started = time.monotonic()
    await eventually(lambda: _refused(stack, new), timeout=10, interval=0.05, what="grace period end")
    assert time.monotonic() - started < 5
    assert await _status(stack, newest) == 200
    listed = await _keys(stack, newest)
    assert listed[rolled["id"]]["status"] == "expired" and listed[again["id"]]["status"] == "active"
    # A roll never lengthens a key's life: the first key keeps its one-hour end.
    assert listed[old_id]["status"] == "expiring" and listed[old_id]["expires_at"] == previous["expires_at"]


async def _refused(stack: ServiceStack, merchant: Merchant) -> bool:
    return await _status(stack, merchant) == 401


async def test_revoke_and_the_last_active_key(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    (first_id,) = await _keys(stack, merchant)
    status, body = await stack.request("DELETE", f"/v1/merchant_keys/{first_id}", headers=merchant.headers)
    assert (status, body["error"]["code"]) == (409, "last_key")
    assert await _status(stack, merchant) == 200  # nothing changed

    status, second = await stack.request("POST", "/v1/merchant_keys", json={}, headers=merchant.headers)
    assert status == 201
    other = _as(merchant, second["secret"])
    # A key may revoke itself when another active key remains.
    status, revoked = await stack.request("DELETE", f"/v1/merchant_keys/{first_id}", headers=merchant.headers)
    assert status == 200 and revoked["status"] == "revoked" and revoked["revoked_at"] is not None
    assert await _status(stack, merchant) == 401
    status, again = await stack.request("DELETE", f"/v1/merchant_keys/{first_id}", headers=other.headers)
    assert status == 200 and again["revoked_at"] == revoked["revoked_at"]  # idempotent
    status, body = await stack.request("DELETE", f"/v1/merchant_keys/{second['id']}", headers=other.headers)
    assert (status, body["error"]["code"]) == (409, "last_key")
    status, body = await stack.request("POST", f"/v1/merchant_keys/{first_id}/roll", headers=other.headers)
    assert (status, body["error"]["code"]) == (409, "key_revoked")

    # A key in its grace period is no way back in: with it alone beside the new key, the new one is the last.
    status, rolled = await stack.request(
        "POST", f"/v1/merchant_keys/{second['id']}/roll", json={"grace_period": 600}, headers=other.headers
    )
    assert status == 200
    status, body = await stack.request("DELETE", f"/v1/merchant_keys/{rolled['id']}", headers=other.headers)
    assert (status, body["error"]["code"]) == (409, "last_key")
    status, body = await stack.request("DELETE", f"/v1/merchant_keys/{second['id']}", headers=other.headers)
    assert status == 200 and body["status"] == "revoked"
    assert await _status(stack, other) == 401
    assert await _status(stack, _as(merchant, rolled["secret"])) == 200


async def test_other_mode_and_other_merchant_are_not_found(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    (test_id,) = await _keys(stack, merchant)
    live = await _live(stack, merchant)
    live_keys = await _keys(stack, live)
    (live_id,) = live_keys
    assert live_keys[live_id]["mode"] == "live" and live_keys[live_id]["prefix"] == "sk_live_"
    stranger = await stack.create_merchant("Other", "other")
    (stranger_id,) = await _keys(stack, stranger)

    for caller, key_id in (
        (live, test_id),
        (merchant, live_id),
        (stranger, test_id),
        (merchant, stranger_id),
    ):
        for method, path, payload in (
            ("POST", f"/v1/merchant_keys/{key_id}/roll", {"grace_period": 60}),
            ("DELETE", f"/v1/merchant_keys/{key_id}", None),
        ):
            status, body = await stack.request(method, path, json=payload, headers=caller.headers)
            assert (status, body["error"]["code"]) == (404, "not_found"), (method, path)
    for junk in ("junk", "0" * 64, "00000000-0000-0000-0000-000000000000"):
        status, body = await stack.request("DELETE", f"/v1/merchant_keys/{junk}", headers=merchant.headers)
        assert (status, body["error"]["code"]) == (404, "not_found")
    # Nothing was changed by the refusals.
    for caller in (merchant, live, stranger):
        assert await _status(stack, caller) == 200
    assert all(k["status"] == "active" for k in (await _keys(stack, merchant)).values())
    # A live key makes live keys only; a test key cannot ask for one.
    status, body = await stack.request(
        "POST", "/v1/merchant_keys", json={"mode": "live"}, headers=merchant.headers
    )
    assert (status, body["error"]["code"]) == (400, "mode_mismatch")
    status, made = await stack.request("POST", "/v1/merchant_keys", headers=live.headers)
    assert status == 201 and made["secret"].startswith("sk_live_") and made["mode"] == "live"
    assert set(await _keys(stack, merchant)) == {test_id}


@pytest.mark.parametrize(
    "payload,code",
    [
        ({"grace_period": -1}, "invalid_grace_period"),
        ({"grace_period": 604801}, "invalid_grace_period"),
        ({"grace_period": 2**64}, "invalid_grace_period"),
        ({"grace_period": "60"}, "invalid_grace_period"),
        ({"grace_period": 1.5}, "invalid_grace_period"),
        ({"grace_period": True}, "invalid_grace_period"),
        ([], "invalid_json"),
    ],
)
async def test_bad_roll_bodies_are_400_and_change_nothing(
    stack: ServiceStack, payload: Any, code: str
) -> None:
    merchant = await stack.create_merchant()
    (key_id,) = await _keys(stack, merchant)
    status, body = await stack.request(
        "POST", f"/v1/merchant_keys/{key_id}/roll", json=payload, headers=merchant.headers
    )
    assert (status, body["error"]["code"]) == (400, code)
    status, body = await stack.request(
        "POST", f"/v1/merchant_keys/{key_id}/roll", data=b"{not json", headers=merchant.headers
    )
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    assert list(await _keys(stack, merchant)) == [key_id]


async def test_bad_queries_and_bodies(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    for query, code in (
        ("limit=0", "invalid_limit"),
        ("limit=abc", "invalid_limit"),
        ("starting_after=x", "invalid_starting_after"),
    ):
        status, body = await stack.request("GET", f"/v1/merchant_keys?{query}", headers=merchant.headers)
        assert (status, body["error"]["code"]) == (400, code)
    status, body = await stack.request(
        "POST", "/v1/merchant_keys", json={"mode": "sandbox"}, headers=merchant.headers
    )
    assert (status, body["error"]["code"]) == (400, "invalid_mode")
    status, body = await stack.request(
        "POST", "/v1/merchant_keys", json={}, headers={**merchant.headers, "Idempotency-Key": "x" * 256}
    )
    assert (status, body["error"]["code"]) == (400, "invalid_idempotency_key")
    for headers in ({}, {"X-API-Key": "sk_test_" + "1" * 33}):
        status, body = await stack.request("GET", "/v1/merchant_keys", headers=headers)
        assert (status, body["error"]["code"]) == (401, "unauthenticated")


async def test_create_and_roll_are_idempotent_on_the_idempotency_key(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    (key_id,) = await _keys(stack, merchant)
    headers = {**merchant.headers, "Idempotency-Key": "make-1"}
    status, first = await stack.request("POST", "/v1/merchant_keys", headers=headers)
    status2, replay = await stack.request("POST", "/v1/merchant_keys", headers=headers)
    assert (status, status2) == (201, 201) and replay["id"] == first["id"] and replay["secret"] is None
    headers = {**merchant.headers, "Idempotency-Key": "roll-1"}
    status, rolled = await stack.request(
        "POST", f"/v1/merchant_keys/{key_id}/roll", json={"grace_period": 60}, headers=headers
    )
    assert status == 200
    status, replay = await stack.request(
        "POST", f"/v1/merchant_keys/{key_id}/roll", json={"grace_period": 60}, headers=headers
    )
    assert status == 200 and replay["id"] == rolled["id"] and replay["secret"] is None
    status, body = await stack.request("POST", f"/v1/merchant_keys/{first['id']}/roll", headers=headers)
    assert (status, body["error"]["code"]) == (409, "idempotency_conflict")
    assert len(await _keys(stack, merchant)) == 3


async def test_every_change_is_audited_and_last_use_is_recorded(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    (key_id,) = await _keys(stack, merchant)
    status, made = await stack.request("POST", "/v1/merchant_keys", headers=merchant.headers)
    status, rolled = await stack.request(
        "POST", f"/v1/merchant_keys/{made['id']}/roll", json={"grace_period": 60}, headers=merchant.headers
    )
    status, _ = await stack.request("DELETE", f"/v1/merchant_keys/{made['id']}", headers=merchant.headers)
    assert status == 200
    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            """SELECT event_type, object_id, details FROM keys.audit_events
                WHERE object_type = 'merchant_secret_key' ORDER BY id"""
        )
    finally:
        await conn.close()
    events = [(r["event_type"], r["object_id"]) for r in rows]
    assert events == [
        ("MERCHANT_SECRET_KEY_CREATED", key_id),
        ("MERCHANT_SECRET_KEY_CREATED", made["id"]),
        ("MERCHANT_SECRET_KEY_CREATED", rolled["id"]),
        ("MERCHANT_SECRET_KEY_ROLLED", made["id"]),
        ("MERCHANT_SECRET_KEY_REVOKED", made["id"]),
    ]
    assert all(f"merchant_key:{key_id}" in r["details"] for r in rows[1:])
    assert made["secret"] not in str(rows) and rolled["secret"] not in str(rows)

    async def used() -> bool:
        return (await _keys(stack, merchant))[key_id]["last_used_at"] is not None

    await eventually(used, timeout=10, what="last_used_at written")


async def test_grpc_refusals_have_stable_codes(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    reply = await stack.keys.ListMerchantKeys(
        keys_pb2.ListMerchantKeysRequest(merchant_id=merchant.id), timeout=5
    )
    (key,) = reply.keys
    assert key.status == keys_pb2.MERCHANT_KEY_STATUS_ACTIVE and key.last4 == merchant.api_key[-4:]
    cases = [
        (
            keys_pb2.RevokeMerchantKeyRequest(merchant_id=merchant.id, key_id=key.id),
            "RevokeMerchantKey",
            "last_key",
        ),
        (
            keys_pb2.RollMerchantKeyRequest(
                merchant_id=merchant.id, key_id=key.id, grace_period_seconds=604801
            ),
            "RollMerchantKey",
            "invalid_grace_period",
        ),
        (keys_pb2.ListMerchantKeysRequest(merchant_id="junk"), "ListMerchantKeys", "invalid_merchant_id"),
        (
            keys_pb2.ListMerchantKeysRequest(merchant_id=merchant.id, limit=101),
            "ListMerchantKeys",
            "invalid_limit",
        ),
        (
            keys_pb2.CreateMerchantSecretKeyRequest(merchant_id="00000000-0000-0000-0000-000000000000"),
            "CreateMerchantSecretKey",
            "not_found",
        ),
    ]
    for request, method, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await getattr(stack.keys, method)(request, timeout=5)
        assert error_code(caught.value) == code, method


async def test_concurrent_revokes_never_leave_a_mode_without_an_active_key(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    (first_id,) = await _keys(stack, merchant)
    status, second = await stack.request("POST", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 201

    # Over gRPC (the operator's path): over HTTP each request must authenticate with one of the two keys, and a
    # request whose key the other revoke has just revoked is rightly 401, which would race with what is tested.
    async def revoke(key_id: str) -> str:
        try:
            await stack.keys.RevokeMerchantKey(
                keys_pb2.RevokeMerchantKeyRequest(merchant_id=merchant.id, key_id=key_id), timeout=5
            )
        except grpc.aio.AioRpcError as error:
            return error_code(error) or error.code().name
        return "revoked"

    results = await asyncio.gather(revoke(first_id), revoke(second["id"]))
    assert sorted(results) == ["last_key", "revoked"]
    conn = await stack.db.admin()
    try:
        standing = await conn.fetchval(
            "SELECT count(*) FROM keys.merchant_secret_keys WHERE merchant_id = $1 AND revoked_at IS NULL",
            uuid.UUID(merchant.id),
        )
    finally:
        await conn.close()
    assert standing == 1
