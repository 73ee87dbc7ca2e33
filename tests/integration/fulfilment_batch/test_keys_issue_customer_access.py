"""KeysService.IssueCustomerAccess over real gRPC and Postgres: a session's key and link together, idempotent per
session and the same as the single calls give, per-item failure isolation, and the group's fallback."""

from __future__ import annotations

import uuid

import grpc
import pytest
from batch_support import TEST, admin_val, status_name

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate_runtime.grpc_errors import error_code
from support.stack import ServiceStack


def _item(merchant_id: str, session_id: str, **extra: object) -> keys_pb2.CustomerAccessItem:
    return keys_pb2.CustomerAccessItem(
        merchant_id=merchant_id,
        mode=extra.pop("mode", TEST),  # type: ignore[arg-type]
        session_id=session_id,
        metadata={"session_id": session_id},
        customer_email="buyer@example.com",
        **extra,  # type: ignore[arg-type]
    )


async def _batch(
    stack: ServiceStack, *items: keys_pb2.CustomerAccessItem
) -> list[keys_pb2.CustomerAccessResult]:
    reply = await stack.keys.IssueCustomerAccess(
        keys_pb2.IssueCustomerAccessRequest(items=list(items)), timeout=10
    )
    assert [r.session_id for r in reply.results] == [i.session_id for i in items]
    return list(reply.results)


async def _counts(stack: ServiceStack, session_id: str) -> tuple[int, int]:
    keys = await admin_val(
        stack, "SELECT count(*) FROM keys.api_keys WHERE session_id = $1::uuid", session_id
    )
    tokens = await admin_val(
        stack, "SELECT count(*) FROM keys.access_tokens WHERE session_id = $1::uuid", session_id
    )
    return keys, tokens


async def test_same_session_twice_in_a_batch_and_across_batches_gets_one_key_and_one_link(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant("Acme Widgets", "acme")
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    first = await _batch(stack, _item(merchant.id, a), _item(merchant.id, b), _item(merchant.id, a))
    assert all(r.HasField("access") for r in first)
    assert first[0].access == first[2].access, "the same session twice in one batch: one key, one link"
    assert first[0].access.key.id != first[1].access.key.id
    access = first[0].access
    assert access.merchant_name == "Acme Widgets"
    assert access.link.url.endswith(f"/access?token={access.link.token}")
    assert access.link.access_token.session_id == a and access.key.session_id == a

    again = await _batch(stack, _item(merchant.id, b), _item(merchant.id, a))
    assert again[0].access == first[1].access and again[1].access == first[0].access
    # One writer: the single calls return the batch's key, token and link.
    key = await stack.keys.IssueCustomerKey(
        keys_pb2.IssueCustomerKeyRequest(merchant_id=merchant.id, mode=TEST, session_id=a), timeout=5
    )
    token = await stack.keys.IssueAccessToken(
        keys_pb2.IssueAccessTokenRequest(merchant_id=merchant.id, mode=TEST, session_id=a), timeout=5
    )
    link = await stack.keys.GetAccessLink(keys_pb2.GetAccessLinkRequest(session_id=a), timeout=5)
    assert key == access.key and token == access.link.access_token and link == access.link
    # ... and a session started with the single calls is completed, not doubled, by the batch.
    c = str(uuid.uuid4())
    single_key = await stack.keys.IssueCustomerKey(
        keys_pb2.IssueCustomerKeyRequest(merchant_id=merchant.id, mode=TEST, session_id=c), timeout=5
    )
    [completed] = await _batch(stack, _item(merchant.id, c))
    assert completed.access.key == single_key
    for session in (a, b, c):
        assert await _counts(stack, session) == (1, 1)
    audited = await admin_val(
        stack,
        """SELECT count(*) FROM keys.audit_events
            WHERE event_type IN ('API_KEY_CREATED', 'ACCESS_TOKEN_ISSUED')""",
    )
    assert audited == 6, "one audit row per key and per token; a retry writes none"


async def test_a_refused_item_gets_its_error_and_the_others_are_issued(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant("Acme", "acme")
    other = await stack.create_merchant("Other", "othr")
    taken = str(uuid.uuid4())
    await _batch(stack, _item(other.id, taken))
    good = [str(uuid.uuid4()) for _ in range(3)]
    results = await _batch(
        stack,
        _item(merchant.id, good[0]),
        _item(str(uuid.uuid4()), str(uuid.uuid4())),  # no such merchant
        _item(merchant.id, good[1]),
        _item(merchant.id, str(uuid.uuid4()), mode=common_pb2.MODE_UNSPECIFIED),
        _item(merchant.id, taken),  # another merchant's session
        _item(merchant.id, "not-a-uuid"),
        _item(merchant.id, good[2]),
    )
    errors = {
        i: (status_name(r.error.status), r.error.code) for i, r in enumerate(results) if r.HasField("error")
    }
    assert errors == {
        1: ("NOT_FOUND", "not_found"),
        3: ("INVALID_ARGUMENT", "missing_mode"),
        4: ("FAILED_PRECONDITION", "session_key_conflict"),
        5: ("INVALID_ARGUMENT", "invalid_session_id"),
    }
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.keys.IssueCustomerKey(
            keys_pb2.IssueCustomerKeyRequest(merchant_id=merchant.id, mode=TEST, session_id=taken), timeout=5
        )
    assert error_code(refused.value) == "session_key_conflict"
    for index, session in zip((0, 2, 6), good, strict=True):
        assert results[index].access.key.session_id == session
        assert await _counts(stack, session) == (1, 1)


async def test_a_statement_that_fails_takes_only_its_own_item_down(stack: ServiceStack) -> None:
    """A NUL in the key's metadata passes the service's checks but not jsonb: the group's transaction fails,
    rolls back whole, and each item is then written alone; the bad one fails, the others are issued once."""
    merchant = await stack.create_merchant("Acme", "acme")
    good = [str(uuid.uuid4()) for _ in range(2)]
    bad = str(uuid.uuid4())
    bad_item = _item(merchant.id, bad)
    bad_item.metadata["note"] = "nul\x00here"
    results = await _batch(stack, _item(merchant.id, good[0]), bad_item, _item(merchant.id, good[1]))
    assert [r.WhichOneof("outcome") for r in results] == ["access", "error", "access"]
    assert status_name(results[1].error.status) == "INTERNAL"
    assert await _counts(stack, bad) == (0, 0)
    for session in good:
        assert await _counts(stack, session) == (1, 1)
    # Retrying the good ones returns what they got.
    again = await _batch(stack, _item(merchant.id, good[0]), _item(merchant.id, good[1]))
    assert [r.access for r in again] == [results[0].access, results[2].access]
