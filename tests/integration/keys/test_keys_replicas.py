"""Cross-replica revocation: two keys-service processes on one database, and the LISTEN/NOTIFY listener."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime

import pytest

from keys_service.adapters.invalidation_listener import CHANNEL, InvalidationListener
from keys_service.domain.api_keys import KeyMode
from keys_service.domain.key_status import KeyFacts
from keys_service.domain.verify_cache import VerifyCache
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from support.database import TestDatabase
from support.processes import keys_process

pytestmark = pytest.mark.slow


async def test_key_revoked_on_one_replica_is_refused_by_the_other_within_a_second(
    clean_db: TestDatabase, stack_env: dict[str, str]
) -> None:
    async with keys_process(clean_db, stack_env) as a, keys_process(clean_db, stack_env) as b:
        created = await a.CreateMerchant(
            keys_pb2.CreateMerchantRequest(name="Acme", key_prefix="acme"), timeout=5
        )
        session_id = str(uuid.uuid4())
        key = await a.IssueCustomerKey(
            keys_pb2.IssueCustomerKeyRequest(
                merchant_id=created.merchant.id, mode=common_pb2.MODE_TEST, session_id=session_id
            ),
            timeout=5,
        )
        secret = (
            await b.RevealCustomerKey(keys_pb2.RevealCustomerKeyRequest(session_id=session_id), timeout=5)
        ).secret
        request = keys_pb2.VerifyKeyRequest(key=secret)
        # Warm both caches.
        for stub in (a, b, a, b):
            assert (await stub.VerifyKey(request, timeout=5)).status == keys_pb2.KEY_STATUS_VALID

        await a.RevokeKey(
            keys_pb2.RevokeKeyRequest(merchant_id=created.merchant.id, key_id=key.id), timeout=5
        )
        revoked_at = time.monotonic()
        assert (await a.VerifyKey(request, timeout=5)).status == keys_pb2.KEY_STATUS_REVOKED  # at once here
        while (await b.VerifyKey(request, timeout=5)).status != keys_pb2.KEY_STATUS_REVOKED:
            assert time.monotonic() - revoked_at < 1.0, "the other replica still says VALID after 1 s"
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - revoked_at
        assert elapsed < 1.0


def _facts(key_id: str) -> KeyFacts:
    return KeyFacts(key_id, str(uuid.uuid4()), str(uuid.uuid4()), KeyMode.TEST, None, None)


async def _wait_for(predicate: object, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_notify_invalidates_even_a_cache_with_a_long_bound(clean_db: TestDatabase) -> None:
    # A one-hour bound: only the notification can evict the entry here.
    cache = VerifyCache(max_age=3600)
    listener = InvalidationListener(clean_db.runtime_dsn("keys"), cache, ping_interval=0.2)
    task = asyncio.create_task(listener.run())
    sender = await clean_db.admin()
    try:
        await _wait_for(lambda: listener.listening)
        key_hash = b"h" * 32
        cache.put(key_hash, _facts("key-1"), cache.fill_ticket())
        in_flight = cache.fill_ticket()
        assert cache.check(key_hash, datetime.now(UTC)) is not None
        started = time.monotonic()
        async with sender.transaction():
            await sender.execute("SELECT pg_notify($1, $2)", CHANNEL, "key-1")
        await _wait_for(lambda: cache.lookup(key_hash) is None, timeout=1.0)
        assert time.monotonic() - started < 1.0
        # A lookup that started before the invalidation cannot put stale facts back.
        assert cache.put(key_hash, _facts("key-1"), in_flight) is False

        # A notification inside a rolled-back transaction is never delivered.
        cache.put(key_hash, _facts("key-1"), cache.fill_ticket())
        tx = sender.transaction()
        await tx.start()
        await sender.execute("SELECT pg_notify($1, $2)", CHANNEL, "key-1")
        await tx.rollback()
        await asyncio.sleep(0.3)
        assert cache.lookup(key_hash) is not None
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sender.close()


async def test_listener_reconnect_clears_the_whole_cache(clean_db: TestDatabase) -> None:
    cache = VerifyCache(max_age=3600)
    listener = InvalidationListener(clean_db.runtime_dsn("keys"), cache, ping_interval=0.2)
    task = asyncio.create_task(listener.run())
    admin = await clean_db.admin()
    try:
        await _wait_for(lambda: listener.listening)
        first_pid = listener.backend_pid
        cache.put(b"a" * 32, _facts("key-a"), cache.fill_ticket())
        cache.put(b"b" * 32, _facts("key-b"), cache.fill_ticket())
        assert len(cache) == 2
        await admin.execute("SELECT pg_terminate_backend($1)", first_pid)
        await _wait_for(lambda: listener.connects >= 2 and listener.listening, timeout=5)
        assert listener.backend_pid != first_pid
        assert len(cache) == 0
        # The new connection listens again.
        cache.put(b"a" * 32, _facts("key-a"), cache.fill_ticket())
        await admin.execute("SELECT pg_notify($1, $2)", CHANNEL, "key-a")
        await _wait_for(lambda: len(cache) == 0, timeout=1.0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await admin.close()
