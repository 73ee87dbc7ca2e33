"""Group commit of finished delivery attempts: attempts that finish together are written together, each
caller gets its answer, and one bad attempt never keeps the others from being recorded."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from merchant_events_support import FAST_ENV, create_endpoint, paid_session

from session_service.adapters import merchant_events_repository as repo
from session_service.service_layer.webhook_delivery import GroupRecorder
from support.stack import ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    # No worker: this test records the attempts itself.
    return {**stack_env, **FAST_ENV, "PAYGATE_SESSION_WORKERS": "false"}


def _record(delivery_id: int, merchant_id: str, latency_ms: int = 5) -> repo.AttemptRecord:
    return repo.AttemptRecord(
        delivery_id=delivery_id,
        event_type="session.paid",
        merchant_id=uuid.UUID(merchant_id),
        mode="test",
        status_code=200,
        error=None,
        latency_ms=latency_ms,
        response_body="ok",
        delivered=True,
        retry_in_s=None,
    )


async def test_concurrent_attempts_are_recorded_in_groups_and_a_bad_one_alone_fails(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, "http://127.0.0.1:9/hook", ["session.paid"])
    for _ in range(12):
        await paid_session(stack, merchant)
    conn = await stack.db.admin()
    try:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM session.webhook_deliveries ORDER BY id")]
        assert len(ids) == 12
        # As a claim would: the attempt counter goes up first.
        await conn.execute("UPDATE session.webhook_deliveries SET attempts = 1")
        pool = stack.pools["session"]
        recorder = GroupRecorder(pool, disable_after_s=3600)
        grouped, rest = ids[:8], ids[8:]
        # Eight attempts finishing together: the first is written at once, the others queue behind it and
        # go out together (rows of one statement share their inserting transaction, xmin).
        results = await asyncio.gather(*(recorder.record(_record(i, merchant.id)) for i in grouped))
        assert results == [[]] * 8
        transactions = await conn.fetchval(
            "SELECT count(DISTINCT xmin::text) FROM session.webhook_delivery_attempts WHERE delivery_id = ANY($1)",
            grouped,
        )
        assert transactions <= 3, transactions
        # One attempt's latency does not fit the column: its group fails, and is written again one by one.
        records = [_record(i, merchant.id, latency_ms=2**40 if n == 1 else 5) for n, i in enumerate(rest)]
        results = await asyncio.gather(*(recorder.record(r) for r in records), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert len(failures) == 1 and all(r == [] for r in results if not isinstance(r, BaseException))
        rows = await conn.fetch(
            "SELECT delivery_id, attempt, delivered FROM session.webhook_delivery_attempts"
        )
        assert sorted(r["delivery_id"] for r in rows) == sorted(i for i in ids if i != rest[1])
        assert all(r["attempt"] == 1 and r["delivered"] for r in rows)
        statuses = await conn.fetch("SELECT id, status FROM session.webhook_deliveries")
        assert {r["id"]: r["status"] for r in statuses} == {
            i: ("pending" if i == rest[1] else "delivered") for i in ids
        }
        # The log is append-only: the runtime role cannot change an attempt.
        async with pool.acquire() as runtime:
            with pytest.raises(Exception, match=r"append-only|permission denied"):
                await runtime.execute("UPDATE webhook_delivery_attempts SET delivered = false")
    finally:
        await conn.close()
