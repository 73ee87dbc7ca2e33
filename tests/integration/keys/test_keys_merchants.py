"""Merchants and their secret keys: creation, idempotency, authentication; customer keys never authenticate."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import grpc
import pytest
from keys_helpers import LIVE, TEST, issue_access

from paygate.keys.v1 import keys_pb2
from paygate_runtime.grpc_errors import error_code
from support.stack import ServiceStack


async def test_create_is_idempotent_and_keys_are_hashed(stack: ServiceStack) -> None:
    request = keys_pb2.CreateMerchantRequest(name="Acme", key_prefix="acme", mode=TEST, idempotency_key="m-1")
    first, second = await asyncio.gather(
        stack.keys.CreateMerchant(request, timeout=5), stack.keys.CreateMerchant(request, timeout=5)
    )
    assert first.merchant.id == second.merchant.id
    secrets = [r.secret_key for r in (first, second) if r.secret_key]
    assert len(secrets) == 1 and secrets[0].startswith("sk_test_")
    assert first.secret_key_id == second.secret_key_id
    conn = await stack.db.admin()
    try:
        rows = await conn.fetch("SELECT key_hash, hint FROM keys.merchant_secret_keys")
        audit = await conn.fetchval("SELECT string_agg(t::text, '|') FROM keys.audit_events t")
    finally:
        await conn.close()
    assert len(rows) == 1 and secrets[0] not in rows[0]["hint"] and secrets[0] not in audit
    assert "MERCHANT_CREATED" in audit
    got = await stack.keys.GetMerchant(keys_pb2.GetMerchantRequest(merchant_id=first.merchant.id), timeout=5)
    assert (got.name, got.key_prefix) == ("Acme", "acme")


async def test_authenticate_gives_merchant_and_mode(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    live = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=merchant.id, mode=LIVE, idempotency_key="live-1"),
        timeout=5,
    )
    replay = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=merchant.id, mode=LIVE, idempotency_key="live-1"),
        timeout=5,
    )
    assert live.secret_key.startswith("sk_live_") and replay.secret_key == ""
    assert replay.secret_key_id == live.secret_key_id
    for secret, mode in ((merchant.api_key, TEST), (live.secret_key, LIVE)):
        reply = await stack.keys.AuthenticateMerchant(
            keys_pb2.AuthenticateMerchantRequest(secret_key=secret), timeout=5
        )
        assert reply.merchant.id == merchant.id and reply.mode == mode


async def test_customer_key_never_authenticates_as_merchant(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    secret = (
        await stack.keys.RevealCustomerKey(
            keys_pb2.RevealCustomerKeyRequest(session_id=issued.session_id), timeout=5
        )
    ).secret
    for presented in (secret, "", "sk_test_", merchant.api_key + "x", "sk_live_" + merchant.api_key[8:]):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stack.keys.AuthenticateMerchant(
                keys_pb2.AuthenticateMerchantRequest(secret_key=presented), timeout=5
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    status, body = await stack.request("GET", "/v1/api_keys", headers={"X-API-Key": secret})
    assert (status, body["error"]["code"]) == (401, "unauthenticated")
    # A merchant key is not a customer key either.
    verify = await stack.keys.VerifyKey(keys_pb2.VerifyKeyRequest(key=merchant.api_key), timeout=5)
    assert verify.status == keys_pb2.KEY_STATUS_NOT_FOUND


@pytest.mark.parametrize(
    "prefix,code",
    [
        ("sk", "invalid_key_prefix"),
        ("Acme", "invalid_key_prefix"),
        ("a_b", "invalid_key_prefix"),
        ("", "missing_key_prefix"),
    ],
)
async def test_create_refuses_bad_prefix(stack: ServiceStack, prefix: str, code: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.keys.CreateMerchant(
            keys_pb2.CreateMerchantRequest(name="X", key_prefix=prefix), timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error_code(caught.value) == code


async def test_get_unknown_merchant_is_not_found(stack: ServiceStack) -> None:
    for merchant_id in (str(uuid.uuid4()), "junk"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stack.keys.GetMerchant(keys_pb2.GetMerchantRequest(merchant_id=merchant_id), timeout=5)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "missing", ["PAYGATE_KEYS_ENCRYPTION_KEYS", "PAYGATE_JWT_SIGNING_KEYS", "PAYGATE_CUSTOMER_SUBJECT_SECRET"]
)
async def test_missing_secret_stops_startup_with_exit_2(stack_env: dict[str, str], missing: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
    env.update(stack_env)
    env["PAYGATE_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    del env[missing]
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "paygate_runtime.cli.main", "serve", "keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert missing in proc.stderr


async def test_malformed_secret_stops_startup_with_exit_2(stack_env: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
    env.update(stack_env)
    env["PAYGATE_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    env["PAYGATE_KEYS_ENCRYPTION_KEYS"] = "dG9vIHNob3J0"
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "paygate_runtime.cli.main", "serve", "keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "PAYGATE_KEYS_ENCRYPTION_KEYS" in proc.stderr
    assert "dG9vIHNob3J0" not in proc.stderr  # the material itself never reaches the log
