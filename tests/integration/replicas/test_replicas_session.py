"""Two session-service processes on one database: fulfilment and expiry happen exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2, session_pb2_grpc
from support.polling import eventually
from support.processes import Replicas
from support.stack import ServiceStack

pytestmark = pytest.mark.slow


@pytest.fixture
async def two_session_replicas(
    clean_db, stack_env, tmp_path: Path
) -> AsyncIterator[tuple[ServiceStack, Replicas]]:
    # billing and keys in process; the session service only as two separate processes.
    stack = ServiceStack(
        clean_db, {**stack_env, "PAYGATE_OUTBOX_POLL_MS": "50", "PAYGATE_SWEEP_INTERVAL_MS": "100"}
    )
    await stack.start(("keys", "billing"))
    replicas = Replicas(stack, tmp_path)
    try:
        await asyncio.gather(replicas.spawn("session"), replicas.spawn("session"))
        yield stack, replicas
    finally:
        replicas.stop_all()
        await stack.stop()


async def test_two_replicas_fulfil_each_paid_session_once(two_session_replicas) -> None:
    stack, replicas = two_session_replicas
    merchant = await stack.create_merchant()
    channels = [grpc.aio.insecure_channel(replica.addr) for replica in replicas.running]
    stubs = [session_pb2_grpc.SessionServiceStub(channel) for channel in channels]
    sessions = []
    for i in range(30):
        reply = await stubs[i % 2].CreateSession(
            session_pb2.CreateSessionRequest(
                merchant_id=merchant.id,
                mode=common_pb2.MODE_TEST,
                amount="10.00",
                customer_email="c@example.com",
            ),
            timeout=10,
        )
        sessions.append(reply.session.id)

    async def pay(i: int, session_id: str, stub_index: int) -> None:
        request = session_pb2.ApplyPaymentEventRequest(
            session_id=session_id,
            provider="onecom",
            provider_event_id=f"evt_{i}_{stub_index}",
            kind=session_pb2.EVENT_KIND_SUCCEEDED,
            provider_reference=f"tx_{i}",
            amount=common_pb2.Money(amount_minor="1000", currency="EUR", exponent=2),
        )
        await stubs[stub_index].ApplyPaymentEvent(request, timeout=10)

    # Every session is paid twice, once through each replica, concurrently.
    await asyncio.gather(*(pay(i, sid, k) for i, sid in enumerate(sessions) for k in (0, 1)))

    conn = await stack.db.admin()
    try:

        async def all_fulfilled() -> bool:
            done = await conn.fetchval(
                "SELECT count(*) FROM session.sessions WHERE id = ANY($1::uuid[]) AND fulfilment_status = 'done'",
                sessions,
            )
            return done == len(sessions)

        await eventually(all_fulfilled, timeout=30.0, interval=0.1, what="every session fulfilled")
        invoices = await conn.fetch(
            "SELECT session_id, count(*) AS n FROM billing.invoices WHERE kind = 'invoice' GROUP BY session_id"
        )
        assert len(invoices) == len(sessions) and all(r["n"] == 1 for r in invoices)
        keys = await conn.fetchval("SELECT count(*) FROM keys.api_keys")
        assert keys == len(sessions)
        paid_moves = await conn.fetchval(
            "SELECT count(*) FROM session.session_history WHERE to_status = 'paid'"
        )
        assert paid_moves == len(sessions)
    finally:
        await conn.close()
        for channel in channels:
            await channel.close()


async def test_two_replicas_sweep_each_due_session_once(two_session_replicas) -> None:
    stack, replicas = two_session_replicas
    merchant = await stack.create_merchant()
    channel = grpc.aio.insecure_channel(replicas.running[0].addr)
    stub = session_pb2_grpc.SessionServiceStub(channel)
    ids = []
    for _ in range(20):
        reply = await stub.CreateSession(
            session_pb2.CreateSessionRequest(
                merchant_id=merchant.id, mode=common_pb2.MODE_TEST, amount="1.00"
            ),
            timeout=10,
        )
        ids.append(reply.session.id)
    conn = await stack.db.admin()
    try:
        await conn.execute(
            "UPDATE session.sessions SET expires_at = now() - interval '1 second' WHERE id = ANY($1::uuid[])",
            ids,
        )

        async def all_expired() -> bool:
            n = await conn.fetchval(
                "SELECT count(*) FROM session.sessions WHERE id = ANY($1::uuid[]) AND status = 'expired'", ids
            )
            return n == len(ids)

        await eventually(all_expired, timeout=30.0, interval=0.1, what="all_expired")
        moves = await conn.fetch(
            """SELECT session_id, count(*) AS n FROM session.session_history
                WHERE to_status = 'expired' AND session_id = ANY($1::uuid[]) GROUP BY session_id""",
            ids,
        )
        assert len(moves) == len(ids) and all(r["n"] == 1 for r in moves)
    finally:
        await conn.close()
        await channel.close()
