"""50 concurrent deliveries for one session, and concurrent creates with one idempotency key."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import grpc
import pytest
from session_itest_support import OUTCOME, admin_val, apply, create_session, eur, eventually

from paygate.session.v1 import session_pb2
from paygate_runtime.grpc_errors import error_code
from support.stack import ServiceStack

N = 50


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, "PAYGATE_OUTBOX_POLL_MS": "100"}


async def _one_fulfilment(stack: ServiceStack, session_id: str) -> None:
    async def done() -> bool:
        got = await stack.session.GetSession(session_pb2.GetSessionRequest(session_id=session_id), timeout=5)
        return got.fulfilment_status == "done"

    await eventually(done, timeout=30)
    sid = uuid.UUID(session_id)
    assert (
        await admin_val(
            stack, "SELECT count(*) FROM session.outbox WHERE session_id = $1 AND kind = 'fulfil'", sid
        )
        == 1
    )
    assert (
        await admin_val(
            stack,
            "SELECT count(*) FROM billing.invoices WHERE session_id::text = $1 AND kind = 'invoice'",
            session_id,
        )
        == 1
    )
    assert (
        await admin_val(stack, "SELECT count(*) FROM keys.api_keys WHERE session_id::text = $1", session_id)
        == 1
    )
    moves = await admin_val(
        stack,
        "SELECT count(*) FROM session.session_history WHERE session_id = $1 AND to_status = 'paid'",
        sid,
    )
    assert moves == 1


async def test_fifty_events_one_reference_pay_once(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    replies = await asyncio.gather(
        *(apply(stack, session.id, "succeeded", amount=eur(9999), reference="pi_same") for _ in range(N))
    )
    outcomes = Counter(OUTCOME[r.outcome] for r in replies)
    assert outcomes == {"applied": 1, "already_paid": N - 1}
    assert await admin_val(stack, "SELECT count(*) FROM session.quarantine") == 0
    await _one_fulfilment(stack, session.id)


async def test_fifty_events_fifty_references_quarantine_49_double_charges(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    replies = await asyncio.gather(
        *(apply(stack, session.id, "succeeded", amount=eur(9999), reference=f"pi_{i}") for i in range(N))
    )
    outcomes = Counter(OUTCOME[r.outcome] for r in replies)
    assert outcomes == {"applied": 1, "payment_on_closed_session": N - 1}
    [winner] = [r for r in replies if OUTCOME[r.outcome] == "applied"]
    paid_reference = await admin_val(stack, "SELECT paid_reference FROM session.sessions")
    quarantined = await admin_val(
        stack,
        "SELECT array_agg(provider_reference) FROM session.quarantine WHERE reason = 'payment_on_closed_session'",
    )
    assert len(quarantined) == N - 1 and paid_reference not in quarantined
    assert {f"pi_{i}" for i in range(N)} == {*quarantined, paid_reference}
    assert winner.session.amount_received.amount_minor == "9999"
    await _one_fulfilment(stack, session.id)


async def test_concurrent_creates_with_one_key_make_one_session(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()

    async def create(fingerprint: str = "fp-1") -> session_pb2.CreateSessionResponse:
        return await stack.session.CreateSession(
            session_pb2.CreateSessionRequest(
                merchant_id=merchant.id,
                mode=1,
                amount="5.00",
                idempotency_key="order-42",
                request_fingerprint=fingerprint,
            ),
            timeout=10,
        )

    replies = await asyncio.gather(*(create() for _ in range(N)))
    assert len({r.session.id for r in replies}) == 1
    assert sum(not r.replayed for r in replies) == 1
    assert await admin_val(stack, "SELECT count(*) FROM session.sessions") == 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create("fp-other")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_code(caught.value) == "idempotency_conflict"
    # The key is the merchant's own: another merchant may use the same key freely.
    other = await stack.create_merchant("Other", "other")
    reply = await stack.session.CreateSession(
        session_pb2.CreateSessionRequest(
            merchant_id=other.id, mode=1, amount="5.00", idempotency_key="order-42", request_fingerprint="x"
        ),
        timeout=10,
    )
    assert not reply.replayed and reply.session.id != replies[0].session.id
