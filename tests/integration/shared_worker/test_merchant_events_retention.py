"""Retention of merchant events and the delivery log: finished deliveries older than the retention go with their
attempts, then events that no delivery names any more; anything pending or recent stays. The webhook worker
runs it periodically; the keys service drops its forwarded outbox rows the same way."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import grpc
import pytest
from aiohttp import web

from keys_service.service_layer.merchant_event_forwarder import merchant_event_forwarder
from session_service.service_layer.merchant_events import Retention, prune
from support import polling
from support.merchant_webhooks import FAST_ENV, Receiver, create_endpoint, paid_session
from support.stack import Merchant, ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    # The worker prunes once a second here (an hour by default); with workers off, the test prunes itself.
    return {**stack_env, **FAST_ENV, "PAYGATE_MERCHANT_EVENTS_PRUNE_INTERVAL_MS": "1000"}


async def _events_with_deliveries(
    stack: ServiceStack, merchant: Merchant, count: int
) -> list[asyncpg.Record]:
    for _ in range(count):
        await paid_session(stack, merchant)
    conn = await stack.db.admin()
    try:
        return await conn.fetch(
            """SELECT d.id AS delivery_id, d.event_id, d.endpoint_id FROM session.webhook_deliveries d
                JOIN session.merchant_events e ON e.id = d.event_id
               WHERE e.merchant_id = $1 AND e.type = 'session.paid' ORDER BY d.id""",
            uuid.UUID(merchant.id),
        )
    finally:
        await conn.close()


async def _age(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    merchant: Merchant,
    status: str,
    days: float,
    attempt_days: float,
) -> None:
    """Make a delivery look `days` old, in `status`, with one attempt `attempt_days` ago, and its event as old."""
    await conn.execute(
        """UPDATE session.webhook_deliveries SET status = $2, locked_until = NULL,
                  created_at = now() - make_interval(days => $3), window_start = now() - make_interval(days => $3),
                  next_attempt_at = now() - make_interval(days => $3)
            WHERE id = $1""",
        row["delivery_id"],
        status,
        days,
    )
    await conn.execute(
        "UPDATE session.merchant_events SET created_at = now() - make_interval(days => $2) WHERE id = $1",
        row["event_id"],
        days,
    )
    await conn.execute(
        """INSERT INTO session.webhook_delivery_attempts (delivery_id, endpoint_id, event_id, event_type,
               merchant_id, mode, attempt, status_code, latency_ms, delivered, at)
           VALUES ($1, $2, $3, 'session.paid', $4, 'test', 1, 200, 5, $5, now() - make_interval(secs => $6))""",
        row["delivery_id"],
        row["endpoint_id"],
        row["event_id"],
        uuid.UUID(merchant.id),
        status == "delivered",
        attempt_days * 86_400,
    )


class TestPruning:
    @pytest.fixture
    def stack_env(self, stack_env: dict[str, str]) -> dict[str, str]:
        return {**stack_env, "PAYGATE_SESSION_WORKERS": "false"}

    async def test_only_old_finished_deliveries_and_their_orphaned_events_go(
        self, stack: ServiceStack
    ) -> None:
        merchant = await stack.create_merchant()
        await create_endpoint(stack, merchant, "http://127.0.0.1:9/hook")
        rows = await _events_with_deliveries(stack, merchant, 6)
        old_delivered, old_failed_recent_try, old_pending, recent_delivered, old_cancelled, old_failed = rows
        conn = await stack.db.admin()
        try:
            await _age(conn, old_delivered, merchant, "delivered", 40, 40)
            await _age(conn, old_failed_recent_try, merchant, "failed", 40, 1)
            await _age(conn, old_pending, merchant, "pending", 40, 40)
            await _age(conn, recent_delivered, merchant, "delivered", 2, 2)
            await _age(conn, old_cancelled, merchant, "cancelled", 31, 31)
            await _age(conn, old_failed, merchant, "failed", 35, 34)
            # An event no endpoint was subscribed to (no delivery at all), old, and one recent.
            for event_id, days in (("evt_" + "a" * 32, 45), ("evt_" + "b" * 32, 3)):
                await conn.execute(
                    """INSERT INTO session.merchant_events (id, merchant_id, mode, type, object_kind, object_id,
                                                            snapshot, created_at)
                       VALUES ($1, $2, 'test', 'session.paid', 'json', 'x', '{}'::jsonb,
                               now() - make_interval(days => $3))""",
                    event_id,
                    uuid.UUID(merchant.id),
                    days,
                )

            # Small batches: the loop goes round until a batch comes back short.
            pruned = await prune(stack.pools["session"], Retention(days=30, batch=2))
            assert (pruned.deliveries, pruned.attempts, pruned.events) == (3, 3, 4)

            deliveries = {r["id"] for r in await conn.fetch("SELECT id FROM session.webhook_deliveries")}
            assert deliveries == {
                old_failed_recent_try["delivery_id"],
                old_pending["delivery_id"],
                recent_delivered["delivery_id"],
            }
            attempts = {
                r["delivery_id"]
                for r in await conn.fetch("SELECT delivery_id FROM session.webhook_delivery_attempts")
            }
            assert attempts == deliveries
            events = {r["id"] for r in await conn.fetch("SELECT id FROM session.merchant_events")}
            assert events == {
                old_failed_recent_try["event_id"],
                old_pending["event_id"],
                recent_delivered["event_id"],
                "evt_" + "b" * 32,
            }
            assert (await prune(stack.pools["session"], Retention(days=30))).events == 0
        finally:
            await conn.close()

    async def test_the_log_stays_append_only_outside_the_pruning(self, stack: ServiceStack) -> None:
        merchant = await stack.create_merchant()
        await create_endpoint(stack, merchant, "http://127.0.0.1:9/hook")
        (row,) = await _events_with_deliveries(stack, merchant, 1)
        conn = await stack.db.admin()
        try:
            await _age(conn, row, merchant, "delivered", 40, 40)
        finally:
            await conn.close()
        async with stack.pools["session"].acquire() as runtime:
            # The runtime role deletes nothing itself, marker or not: only the owner's function does.
            await runtime.execute("SELECT set_config('paygate.prune_attempts_before', now()::text, false)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await runtime.execute("DELETE FROM webhook_delivery_attempts")
            with pytest.raises(asyncpg.InvalidParameterValueError):
                await runtime.fetch("SELECT * FROM prune_merchant_events(0, 10)")
            await runtime.execute("RESET paygate.prune_attempts_before")
        owner = await asyncpg.connect(stack.db.owner_dsn("session"))
        try:
            # Even the owner changes no attempt through a plain statement: the trigger refuses it.
            with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="append-only"):
                await owner.execute("DELETE FROM session.webhook_delivery_attempts")
            with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="append-only"):
                await owner.execute("UPDATE session.webhook_delivery_attempts SET delivered = false")
        finally:
            await owner.close()


async def _fail_slowly(_: int) -> web.StreamResponse:
    """A 500 after 300 ms: each attempt stays in flight long enough to race the test."""
    await asyncio.sleep(0.3)
    return web.Response(status=500)


async def test_the_webhook_worker_prunes_periodically(stack: ServiceStack) -> None:
    receiver = await Receiver(behaviour=_fail_slowly).start()
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
    (row,) = await _events_with_deliveries(stack, merchant, 1)
    conn = await stack.db.admin()
    try:
        # The worker's own attempts fail; stop them first, then make the delivery old. It is failed only
        # between two attempts, while no lease is held: an attempt in flight at that moment would still log
        # itself afterwards, a recent attempt that rightly keeps the delivery from the pruning.
        async def failed_between_attempts() -> bool:
            return bool(
                await conn.fetchval(
                    """UPDATE session.webhook_deliveries SET status = 'failed'
                        WHERE id = $1 AND status = 'pending' AND attempts > 0
                          AND (locked_until IS NULL OR locked_until < now())
                       RETURNING true""",
                    row["delivery_id"],
                )
            )

        await polling.eventually(failed_between_attempts, timeout=20, interval=0.01)
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(
                "UPDATE session.webhook_delivery_attempts SET at = now() - interval '40 days' WHERE delivery_id = $1",
                row["delivery_id"],
            )
        await _age(conn, row, merchant, "failed", 40, 40)

        async def gone() -> bool:
            return not await conn.fetchval(
                "SELECT count(*) FROM session.merchant_events WHERE id = $1", row["event_id"]
            )

        await polling.eventually(gone, timeout=20)
        assert not await conn.fetchval(
            "SELECT count(*) FROM session.webhook_delivery_attempts WHERE delivery_id = $1",
            row["delivery_id"],
        )
    finally:
        await conn.close()
        await receiver.stop()


async def test_the_keys_forwarder_drops_forwarded_rows_past_the_retention(stack: ServiceStack) -> None:
    merchant_id = uuid.uuid4()
    conn = await stack.db.admin()
    try:
        for forwarded_days, label in ((40, "old"), (2, "recent"), (None, "waiting")):
            await conn.execute(
                """INSERT INTO keys.merchant_event_outbox (event_type, key_id, merchant_id, mode, forwarded_at,
                                                          next_attempt_at)
                   VALUES ($1, $2, $3, 'test',
                           CASE WHEN $4::int IS NULL THEN NULL ELSE now() - make_interval(days => $4::int) END,
                           now() + interval '1 hour')""",
                f"customer_key.revoked.{label}",
                uuid.uuid4(),
                merchant_id,
                forwarded_days,
            )
        channel = grpc.aio.insecure_channel("127.0.0.1:9")
        try:
            forwarder = merchant_event_forwarder(stack.pools["keys"], "", channel, retention_days=30)
            assert await forwarder.prune() == 1
        finally:
            await channel.close()
        left = sorted(
            r["event_type"] for r in await conn.fetch("SELECT event_type FROM keys.merchant_event_outbox")
        )
        assert left == ["customer_key.revoked.recent", "customer_key.revoked.waiting"]
    finally:
        await conn.close()
