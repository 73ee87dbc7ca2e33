"""Customer API keys over real gRPC and Postgres: issue, reveal once, verify, roll, revoke, list, audit."""

from __future__ import annotations

import asyncio
import re
import uuid

import asyncpg
import grpc
import pytest
from keys_helpers import LIVE, TEST, issue_access

from paygate.keys.v1 import keys_pb2
from paygate_runtime.grpc_errors import error_code
from support.stack import ServiceStack

KEY_SHAPE = re.compile(r"acme_test_[1-9A-HJ-NP-Za-km-z]{33}")


async def _reveal(stack: ServiceStack, session_id: str) -> str:
    reply = await stack.keys.RevealCustomerKey(
        keys_pb2.RevealCustomerKeyRequest(session_id=session_id, access_token_id="jti-1"), timeout=5
    )
    return reply.secret


async def _verify(stack: ServiceStack, key: str, **scope: object) -> keys_pb2.VerifyKeyResponse:
    return await stack.keys.VerifyKey(keys_pb2.VerifyKeyRequest(key=key, **scope), timeout=5)


async def _rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_issue_is_idempotent_on_session_even_when_concurrent(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session_id = str(uuid.uuid4())
    request = keys_pb2.IssueCustomerKeyRequest(merchant_id=merchant.id, mode=TEST, session_id=session_id)
    replies = await asyncio.gather(*(stack.keys.IssueCustomerKey(request, timeout=5) for _ in range(6)))
    assert len({r.id for r in replies}) == 1
    conn = await stack.db.admin()
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM keys.api_keys WHERE session_id = $1", uuid.UUID(session_id)
        )
        audits = await conn.fetchval(
            "SELECT count(*) FROM keys.audit_events WHERE event_type = 'API_KEY_CREATED' AND object_id = $1",
            replies[0].id,
        )
    finally:
        await conn.close()
    assert count == 1 and audits == 1
    key = replies[0]
    assert key.prefix == "acme_test_" and key.hint.startswith("acme_test_") and "…" in key.hint
    assert key.status == keys_pb2.KEY_STATUS_VALID and not key.revealed


async def test_key_is_stored_as_hash_and_ciphertext_and_revealed_exactly_once(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    secret = await _reveal(stack, issued.session_id)
    assert KEY_SHAPE.fullmatch(secret), secret
    conn = await stack.db.admin()
    try:
        row = await conn.fetchrow("SELECT * FROM keys.api_keys WHERE id = $1", uuid.UUID(issued.key.id))
        # Nothing in the database holds the plaintext: not the row, not the audit trail.
        dump = await conn.fetchval("SELECT string_agg(t::text, '|') FROM keys.audit_events t")
    finally:
        await conn.close()
    import hashlib

    assert bytes(row["key_hash"]) == hashlib.sha256(secret.encode()).digest()
    assert row["secret_ciphertext"] is None and row["revealed_at"] is not None
    assert secret not in " ".join(str(v) for v in row.values()) and secret not in (dump or "")
    assert secret[-20:] not in (dump or "")

    error = await _rpc_error(
        stack.keys.RevealCustomerKey(
            keys_pb2.RevealCustomerKeyRequest(session_id=issued.session_id), timeout=5
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and error_code(error) == "already_revealed"
    got = await stack.keys.GetCustomerKey(
        keys_pb2.GetCustomerKeyRequest(session_id=issued.session_id), timeout=5
    )
    assert got.revealed and got.hint == issued.key.hint


async def test_ciphertext_before_reveal_is_aes_gcm_not_plaintext(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    conn = await stack.db.admin()
    try:
        blob = await conn.fetchval(
            "SELECT secret_ciphertext FROM keys.api_keys WHERE id = $1", uuid.UUID(issued.key.id)
        )
    finally:
        await conn.close()
    secret = await _reveal(stack, issued.session_id)
    assert blob is not None and secret.encode() not in blob and b"acme_test_" not in blob
    from keys_service.domain.secret_contexts import CUSTOMER_KEY_SECRET_CONTEXT
    from paygate_runtime.crypto.secret_box import SecretBox

    box = SecretBox.from_config(
        stack.env["PAYGATE_KEYS_ENCRYPTION_KEYS"], context=CUSTOMER_KEY_SECRET_CONTEXT
    )
    assert box.decrypt(blob, issued.key.id) == secret


async def test_verify_answers_valid_not_found_expired_revoked(stack: ServiceStack) -> None:
    alice = await stack.create_merchant("Alice", "alice")
    bob = await stack.create_merchant("Bob", "bob")
    issued = await issue_access(stack, alice)
    secret = await _reveal(stack, issued.session_id)

    valid = await _verify(stack, secret)
    assert (valid.status, valid.key_id, valid.merchant_id, valid.session_id, valid.mode) == (
        keys_pb2.KEY_STATUS_VALID,
        issued.key.id,
        alice.id,
        issued.session_id,
        TEST,
    )
    # Scoped to another merchant or the other mode, the key does not exist.
    assert (await _verify(stack, secret, merchant_id=bob.id)).status == keys_pb2.KEY_STATUS_NOT_FOUND
    assert (
        await _verify(stack, secret, merchant_id=alice.id, mode=LIVE)
    ).status == keys_pb2.KEY_STATUS_NOT_FOUND
    assert (await _verify(stack, secret, merchant_id=alice.id, mode=TEST)).status == keys_pb2.KEY_STATUS_VALID

    almost = secret[:-1] + ("2" if secret[-1] != "2" else "3")
    for junk in ["", " ", "x" * 129, "x" * 100_000, almost, "alice_test_" + "!" * 33, "ключ", alice.api_key]:
        reply = await _verify(stack, junk)
        assert reply.status == keys_pb2.KEY_STATUS_NOT_FOUND and reply.key_id == "", junk[:20]

    # Roll with no grace: the old secret is EXPIRED at once (also from the warm cache), the new one VALID.
    rolled = await stack.keys.RollKey(
        keys_pb2.RollKeyRequest(merchant_id=alice.id, key_id=issued.key.id, grace_period_seconds=0), timeout=5
    )
    assert (await _verify(stack, secret)).status == keys_pb2.KEY_STATUS_EXPIRED
    assert (await _verify(stack, rolled.secret)).status == keys_pb2.KEY_STATUS_VALID
    await stack.keys.RevokeKey(
        keys_pb2.RevokeKeyRequest(merchant_id=alice.id, key_id=rolled.key.id), timeout=5
    )
    assert (await _verify(stack, rolled.secret)).status == keys_pb2.KEY_STATUS_REVOKED


async def test_revocation_is_immediate_on_this_replica_despite_warm_cache(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    secret = await _reveal(stack, issued.session_id)
    for _ in range(5):
        assert (await _verify(stack, secret)).status == keys_pb2.KEY_STATUS_VALID
    runtime = stack.servers["keys"].spec.runtime
    assert runtime.cache.hits >= 1  # the hot path is really served from the cache
    await stack.keys.RevokeKey(
        keys_pb2.RevokeKeyRequest(merchant_id=merchant.id, key_id=issued.key.id), timeout=5
    )
    assert (await _verify(stack, secret)).status == keys_pb2.KEY_STATUS_REVOKED


async def test_roll_keeps_old_key_for_the_grace_period_and_shows_new_secret_once(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    old_secret = await _reveal(stack, issued.session_id)
    request = keys_pb2.RollKeyRequest(
        merchant_id=merchant.id, key_id=issued.key.id, grace_period_seconds=3600, idempotency_key="roll-1"
    )
    rolled = await stack.keys.RollKey(request, timeout=5)
    assert rolled.secret.startswith("acme_test_") and rolled.secret != old_secret
    assert rolled.key.rolled_from_id == issued.key.id and rolled.key.session_id == issued.session_id
    grace = rolled.previous.expires_at.ToSeconds() - rolled.previous.created_at.ToSeconds()
    assert 3590 <= grace <= 3600 + 60
    assert (await _verify(stack, old_secret)).status == keys_pb2.KEY_STATUS_VALID
    assert (await _verify(stack, rolled.secret)).status == keys_pb2.KEY_STATUS_VALID

    replay = await stack.keys.RollKey(request, timeout=5)
    assert replay.key.id == rolled.key.id and replay.secret == ""
    again = await _rpc_error(
        stack.keys.RollKey(keys_pb2.RollKeyRequest(merchant_id=merchant.id, key_id=issued.key.id), timeout=5)
    )
    assert error_code(again) == "already_rolled"
    current = await stack.keys.GetCustomerKey(
        keys_pb2.GetCustomerKeyRequest(session_id=issued.session_id), timeout=5
    )
    assert current.id == rolled.key.id

    # The grace period ends: the old key stops without anybody touching it.
    conn = await stack.db.admin()
    try:
        await conn.execute(
            "UPDATE keys.api_keys SET expires_at = now() WHERE id = $1", uuid.UUID(issued.key.id)
        )
    finally:
        await conn.close()
    await asyncio.sleep(1.05)  # the cache bound
    assert (await _verify(stack, old_secret)).status == keys_pb2.KEY_STATUS_EXPIRED


@pytest.mark.parametrize("grace", [-1, 7 * 24 * 3600 + 1])
async def test_roll_refuses_grace_outside_zero_to_seven_days(stack: ServiceStack, grace: int) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    error = await _rpc_error(
        stack.keys.RollKey(
            keys_pb2.RollKeyRequest(
                merchant_id=merchant.id, key_id=issued.key.id, grace_period_seconds=grace
            ),
            timeout=5,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error_code(error) == "invalid_grace_period"


async def test_another_merchants_key_cannot_be_rolled_revoked_or_read(stack: ServiceStack) -> None:
    alice = await stack.create_merchant("Alice", "alice")
    bob = await stack.create_merchant("Bob", "bob")
    issued = await issue_access(stack, alice)
    for call in (
        stack.keys.RollKey(keys_pb2.RollKeyRequest(merchant_id=bob.id, key_id=issued.key.id), timeout=5),
        stack.keys.RevokeKey(keys_pb2.RevokeKeyRequest(merchant_id=bob.id, key_id=issued.key.id), timeout=5),
        stack.keys.RevokeKey(
            keys_pb2.RevokeKeyRequest(merchant_id=alice.id, key_id=issued.key.id, mode=LIVE), timeout=5
        ),
        stack.keys.RevokeKey(keys_pb2.RevokeKeyRequest(merchant_id=alice.id, key_id="not-a-uuid"), timeout=5),
        stack.keys.GetCustomerKey(
            keys_pb2.GetCustomerKeyRequest(session_id=issued.session_id, merchant_id=bob.id), timeout=5
        ),
    ):
        error = await _rpc_error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
    key = await stack.keys.GetCustomerKey(
        keys_pb2.GetCustomerKeyRequest(session_id=issued.session_id), timeout=5
    )
    assert key.status == keys_pb2.KEY_STATUS_VALID and not key.HasField("revoked_at")


async def test_revoke_is_idempotent_and_audited_once(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    request = keys_pb2.RevokeKeyRequest(merchant_id=merchant.id, key_id=issued.key.id)
    first = await stack.keys.RevokeKey(request, timeout=5)
    second = await stack.keys.RevokeKey(request, timeout=5)
    assert first.status == second.status == keys_pb2.KEY_STATUS_REVOKED
    assert first.revoked_at == second.revoked_at
    error = await _rpc_error(
        stack.keys.RevealCustomerKey(
            keys_pb2.RevealCustomerKeyRequest(session_id=issued.session_id), timeout=5
        )
    )
    assert error_code(error) == "key_revoked"
    conn = await stack.db.admin()
    try:
        events = await conn.fetch(
            "SELECT event_type FROM keys.audit_events WHERE object_id = $1 ORDER BY id", issued.key.id
        )
    finally:
        await conn.close()
    assert [e["event_type"] for e in events] == ["API_KEY_CREATED", "API_KEY_REVOKED"]


async def test_list_keys_is_merchant_and_mode_scoped_with_cursor(stack: ServiceStack) -> None:
    alice = await stack.create_merchant("Alice", "alice")
    bob = await stack.create_merchant("Bob", "bob")
    ids = [(await issue_access(stack, alice)).key.id for _ in range(5)]
    live = await issue_access(stack, alice, mode=LIVE)
    await issue_access(stack, bob)
    page1 = await stack.keys.ListKeys(
        keys_pb2.ListKeysRequest(merchant_id=alice.id, mode=TEST, limit=3), timeout=5
    )
    assert page1.has_more and len(page1.keys) == 3
    page2 = await stack.keys.ListKeys(
        keys_pb2.ListKeysRequest(merchant_id=alice.id, mode=TEST, limit=3, starting_after=page1.keys[-1].id),
        timeout=5,
    )
    assert not page2.has_more
    listed = [k.id for k in page1.keys] + [k.id for k in page2.keys]
    assert listed == list(reversed(ids))  # newest first, every test key once
    everything = await stack.keys.ListKeys(keys_pb2.ListKeysRequest(merchant_id=alice.id), timeout=5)
    assert live.key.id in {k.id for k in everything.keys} and len(everything.keys) == 6
    error = await _rpc_error(
        stack.keys.ListKeys(keys_pb2.ListKeysRequest(merchant_id=alice.id, limit=101), timeout=5)
    )
    assert error_code(error) == "invalid_limit"


async def test_key_modes_never_mix(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    live = await issue_access(stack, merchant, mode=LIVE)
    assert live.key.prefix == "acme_live_" and live.key.mode == LIVE
    secret = await _reveal(stack, live.session_id)
    assert secret.startswith("acme_live_")
    assert (await _verify(stack, secret, mode=TEST)).status == keys_pb2.KEY_STATUS_NOT_FOUND
    # The same session cannot get a key of the other mode.
    error = await _rpc_error(
        stack.keys.IssueCustomerKey(
            keys_pb2.IssueCustomerKeyRequest(merchant_id=merchant.id, mode=TEST, session_id=live.session_id),
            timeout=5,
        )
    )
    assert error_code(error) == "session_key_conflict"


async def test_last_used_at_is_written_in_batches(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    secret = await _reveal(stack, issued.session_id)
    runtime = stack.servers["keys"].spec.runtime
    await runtime.usage.flush()
    flushes_before = runtime.usage.flushes
    for _ in range(40):
        await _verify(stack, secret)
    # Forty checks are one pending entry, not forty writes.
    assert runtime.usage.pending <= 1
    deadline = asyncio.get_running_loop().time() + 3
    last_used = None
    while asyncio.get_running_loop().time() < deadline:
        key = await stack.keys.GetCustomerKey(
            keys_pb2.GetCustomerKeyRequest(session_id=issued.session_id), timeout=5
        )
        if key.HasField("last_used_at"):
            last_used = key.last_used_at
            break
        await asyncio.sleep(0.1)
    assert last_used is not None
    assert runtime.usage.flushes - flushes_before <= 4  # about one a second


async def test_audit_trail_is_append_only_for_the_runtime_role(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    await issue_access(stack, merchant)
    conn = await asyncpg.connect(stack.db.runtime_dsn("keys"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM keys.audit_events") >= 3
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE keys.audit_events SET event_type = 'X'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM keys.audit_events")
        types = {r["event_type"] for r in await conn.fetch("SELECT event_type FROM keys.audit_events")}
    finally:
        await conn.close()
    assert {"MERCHANT_CREATED", "API_KEY_CREATED", "ACCESS_TOKEN_ISSUED"} <= types


async def test_issue_refuses_bad_input(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    cases = [
        (keys_pb2.IssueCustomerKeyRequest(merchant_id=merchant.id, mode=TEST), "missing_session_id"),
        (
            keys_pb2.IssueCustomerKeyRequest(merchant_id=merchant.id, session_id="nope", mode=TEST),
            "invalid_session_id",
        ),
        (
            keys_pb2.IssueCustomerKeyRequest(merchant_id=merchant.id, session_id=str(uuid.uuid4())),
            "missing_mode",
        ),
    ]
    for request, code in cases:
        error = await _rpc_error(stack.keys.IssueCustomerKey(request, timeout=5))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error_code(error) == code
    error = await _rpc_error(
        stack.keys.IssueCustomerKey(
            keys_pb2.IssueCustomerKeyRequest(
                merchant_id=str(uuid.uuid4()), session_id=str(uuid.uuid4()), mode=TEST
            ),
            timeout=5,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
