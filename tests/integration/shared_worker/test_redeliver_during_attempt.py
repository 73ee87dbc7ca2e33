"""A redelivery asked for while an attempt of the same delivery is in flight is not swallowed by that attempt's
outcome: the delivery stays due and is sent again (it was flaky in test_redeliver_sends_an_event_again)."""

from __future__ import annotations

import uuid

import pytest

from session_service.adapters import merchant_events_repository as repo
from session_service.service_layer.webhook_delivery import GroupRecorder
from support.merchant_webhooks import FAST_ENV, create_endpoint, paid_session
from support.stack import ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_ENV, "PAYGATE_SESSION_WORKERS": "false"}


async def test_a_redelivery_during_an_attempt_survives_its_recording(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, "http://127.0.0.1:9/hook", ["session.paid"])
    await paid_session(stack, merchant)
    pool = stack.pools["session"]
    async with pool.acquire() as conn:
        (claimed,) = await repo.claim_deliveries(conn, 10, 4, 60.0)
    # The POST went out; before its outcome is recorded, the merchant asks for the event again.
    status, body = await stack.request(
        "POST",
        f"/v1/merchant_events/{claimed['event_id']}/redeliver",
        headers=merchant.headers,
        json={"endpoint": endpoint["id"]},
    )
    assert status == 202, body
    await GroupRecorder(pool, 3600).record(
        repo.AttemptRecord(
            delivery_id=claimed["delivery_id"],
            event_type="session.paid",
            merchant_id=uuid.UUID(merchant.id),
            mode="test",
            status_code=200,
            error=None,
            latency_ms=5,
            response_body="ok",
            delivered=True,
            retry_in_s=None,
            window_start=claimed["window_start"],
        )
    )
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM webhook_deliveries WHERE id = $1", claimed["delivery_id"])
        attempts = await conn.fetchval(
            "SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id = $1", claimed["delivery_id"]
        )
        # Due now and claimable at once: the lease of the finished attempt is over.
        again = await repo.claim_deliveries(conn, 10, 4, 60.0)
    assert attempts == 1  # the attempt is in the log
    assert row["status"] == "pending" and row["locked_until"] is None
    assert [r["delivery_id"] for r in again] == [claimed["delivery_id"]]
