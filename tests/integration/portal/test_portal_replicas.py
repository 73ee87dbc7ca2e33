"""A customer's change counts within one second on every replica: two keys-service processes on one database;
the settings change and the roll go through one, VerifyKey is asked on the other (warm cache)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2, keys_pb2_grpc
from support.database import TestDatabase
from support.processes import keys_process

pytestmark = pytest.mark.slow


async def _within_a_second(
    stub: keys_pb2_grpc.KeysServiceStub, request: keys_pb2.VerifyKeyRequest, want: int, since: float
) -> keys_pb2.VerifyKeyResponse:
    while True:
        reply = await stub.VerifyKey(request, timeout=5)
        if reply.status == want:
            return reply
        assert time.monotonic() - since < 1.0, f"the other replica still says {reply.status} after 1 s"
        await asyncio.sleep(0.01)


async def test_settings_and_roll_reach_the_other_replica_within_a_second(
    clean_db: TestDatabase, stack_env: dict[str, str]
) -> None:
    async with keys_process(clean_db, stack_env) as a, keys_process(clean_db, stack_env) as b:
        created = await a.CreateMerchant(
            keys_pb2.CreateMerchantRequest(name="Acme", key_prefix="acme"), timeout=5
        )
        session_id = str(uuid.uuid4())
        await a.IssueCustomerKey(
            keys_pb2.IssueCustomerKeyRequest(
                merchant_id=created.merchant.id,
                mode=common_pb2.MODE_TEST,
                session_id=session_id,
                scopes=["r", "w"],
            ),
            timeout=5,
        )
        secret = (
            await b.RevealCustomerKey(keys_pb2.RevealCustomerKeyRequest(session_id=session_id), timeout=5)
        ).secret
        outside = keys_pb2.VerifyKeyRequest(key=secret, ip="198.51.100.1")
        for stub in (a, b, a, b):  # warm both caches
            reply = await stub.VerifyKey(outside, timeout=5)
            assert reply.status == keys_pb2.KEY_STATUS_VALID and list(reply.scopes) == ["r", "w"]

        await a.UpdateCustomerKeySettings(
            keys_pb2.UpdateCustomerKeySettingsRequest(
                session_id=session_id,
                set_scopes=True,
                scopes=["r"],
                set_ip_allowlist=True,
                ip_allowlist=["203.0.113.0/24"],
            ),
            timeout=5,
        )
        changed = time.monotonic()
        assert (await a.VerifyKey(outside, timeout=5)).status == keys_pb2.KEY_STATUS_IP_NOT_ALLOWED
        await _within_a_second(b, outside, keys_pb2.KEY_STATUS_IP_NOT_ALLOWED, changed)
        inside = await b.VerifyKey(keys_pb2.VerifyKeyRequest(key=secret, ip="203.0.113.7"), timeout=5)
        assert inside.status == keys_pb2.KEY_STATUS_VALID and list(inside.scopes) == ["r"]

        rolled = await a.CustomerRollKey(
            keys_pb2.CustomerRollKeyRequest(session_id=session_id, current_secret=secret), timeout=5
        )
        rolled_at = time.monotonic()
        await _within_a_second(
            b, keys_pb2.VerifyKeyRequest(key=secret, ip="203.0.113.7"), keys_pb2.KEY_STATUS_REVOKED, rolled_at
        )
        fresh = await b.VerifyKey(keys_pb2.VerifyKeyRequest(key=rolled.secret, ip="203.0.113.7"), timeout=5)
        assert fresh.status == keys_pb2.KEY_STATUS_VALID and list(fresh.scopes) == ["r"]
        # The successor keeps the allow-list.
        outside_new = await b.VerifyKey(keys_pb2.VerifyKeyRequest(key=rolled.secret), timeout=5)
        assert outside_new.status == keys_pb2.KEY_STATUS_IP_NOT_ALLOWED
