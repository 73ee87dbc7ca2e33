"""The outbox dispatcher runs on the shared lease worker (paygate_runtime.lease_worker) as a batch queue: each
claim's fulfil rows are one pass (one call per downstream service), and a pass that raised (a bug, not a refused
item) does not leave its rows leased until the lease runs out: the worker sends each row to the dispatcher's
`failed`, which records the error and a domain backoff, so the row is retried soon. Real PostgreSQL, the real
session service writing the outbox; the dispatcher under test runs in this process with a stand-in downstream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.tasks import cancel_and_wait
from session_service.adapters.downstream import IssuedAccess, IssuedInvoice
from session_service.domain.fulfilment import BackoffPolicy
from session_service.service_layer.outbox_dispatcher import DispatcherSettings, OutboxDispatcher
from support import polling
from support.stack import Merchant, ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    # The service's own dispatcher is off: the one under test is the only worker on the outbox.
    return {**stack_env, "PAYGATE_SESSION_WORKERS": "false"}


class _Downstream:
    """Counts the batched calls; `broken` answers one item short, which the pass cannot pair with its rows."""

    def __init__(self, *, broken: bool = False) -> None:
        self.broken = broken
        self.invoice_calls: list[int] = []
        self.access_calls: list[int] = []

    async def issue_invoices(self, sessions: Sequence[Any]) -> list[object]:
        self.invoice_calls.append(len(sessions))
        issued: list[object] = [IssuedInvoice(str(uuid.uuid4()), f"INV-{n}") for n in range(len(sessions))]
        return issued[:-1] if self.broken else issued

    async def issue_customer_access(self, sessions: Sequence[Any]) -> list[object]:
        self.access_calls.append(len(sessions))
        return [IssuedAccess(str(uuid.uuid4()), str(uuid.uuid4())) for _ in sessions]


async def _paid_sessions(stack: ServiceStack, merchant: Merchant, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        created = await stack.session.CreateSession(
            session_pb2.CreateSessionRequest(
                merchant_id=merchant.id, amount="49.90", mode=common_pb2.MODE_TEST
            ),
            timeout=10,
        )
        await stack.session.ApplyPaymentEvent(
            session_pb2.ApplyPaymentEventRequest(
                session_id=created.session.id,
                provider="onecom",
                provider_event_id=f"evt_{uuid.uuid4().hex}",
                kind=session_pb2.EVENT_KIND_SUCCEEDED,
                amount=common_pb2.Money(amount_minor="4990", currency="EUR", exponent=2),
                provider_reference=f"tx_{uuid.uuid4().hex[:8]}",
            ),
            timeout=10,
        )
        ids.append(created.session.id)
    return ids


def _dispatcher(stack: ServiceStack, downstream: _Downstream) -> OutboxDispatcher:
    settings = DispatcherSettings(
        lease_s=60.0, poll_s=0.1, policy=BackoffPolicy(base_seconds=30.0, cap_seconds=60.0)
    )
    listen_dsn = stack.db.runtime_dsn("session")
    return OutboxDispatcher(stack.pools["session"], listen_dsn, downstream, None, settings)  # type: ignore[arg-type]


async def _fulfil_rows(stack: ServiceStack, session_ids: list[str]) -> list[Any]:
    async with stack.pools["session"].acquire() as conn:
        rows: list[Any] = await conn.fetch(
            """SELECT status, attempts, locked_until, next_attempt_at > now() AS waits, last_error FROM outbox
                WHERE kind = 'fulfil' AND session_id = ANY($1::uuid[]) ORDER BY id""",
            [uuid.UUID(s) for s in session_ids],
        )
    return rows


async def test_one_claim_is_one_pass_with_one_call_per_downstream_service(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session_ids = await _paid_sessions(stack, merchant, 5)
    downstream = _Downstream()
    dispatcher = _dispatcher(stack, downstream)
    task = asyncio.create_task(dispatcher.run())
    try:

        async def all_done() -> bool:
            return all(row["status"] == "done" for row in await _fulfil_rows(stack, session_ids))

        await polling.eventually(all_done, timeout=20)
        assert downstream.invoice_calls == [5] and downstream.access_calls == [5]
        assert dispatcher.worker.in_flight == 0
    finally:
        await cancel_and_wait([task])


async def test_a_pass_that_raises_sends_its_rows_to_a_backoff_not_to_a_lapsing_lease(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    session_ids = await _paid_sessions(stack, merchant, 3)
    dispatcher = _dispatcher(stack, _Downstream(broken=True))
    task = asyncio.create_task(dispatcher.run())
    try:

        async def all_backed_off() -> bool:
            rows = await _fulfil_rows(stack, session_ids)
            return all(row["locked_until"] is None and row["last_error"] for row in rows)

        # Well before the 60 s lease: the rows were handed to `failed`, not left leased.
        await polling.eventually(all_backed_off, timeout=10)
        # The backoff has full jitter: a small draw may already have retried a row (and failed it again), so
        # only "pending, failed at least once, never left leased" is certain here.
        rows = await _fulfil_rows(stack, session_ids)
        assert all(row["status"] == "pending" and row["attempts"] >= 1 for row in rows)
        assert all(row["last_error"].startswith("ValueError") for row in rows)
        async with stack.pools["session"].acquire() as conn:
            audited = await conn.fetchval(
                """SELECT count(*) FROM audit_log WHERE action = 'fulfil_attempt_failed'
                    AND session_id = ANY($1::uuid[])""",
                [uuid.UUID(s) for s in session_ids],
            )
        assert audited >= 3
    finally:
        await cancel_and_wait([task])
