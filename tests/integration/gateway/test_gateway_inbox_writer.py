"""The inbox's group commit: events written together are each stored once, with the right verdict."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from paygate_runtime.db import create_pool
from support.database import TestDatabase
from support.polling import eventually
from webhook_gateway.adapters.group_writer import GroupWriter
from webhook_gateway.adapters.inbox_repository import Finish, InboxRepository, InboxWriter, NewEvent


def _new(event_id: str, status: str = "received", claim: bool = True) -> NewEvent:
    return NewEvent(
        provider="stripe",
        event_id=event_id,
        event_type="payment_intent.succeeded",
        raw_body=b'{"id": "%s"}' % event_id.encode(),
        status=status,
        outcome=None if status == "received" else "unknown_type",
        session_id=None,
        provider_reference=None,
        first_attempt_in_s=30.0,
        claim=claim,
    )


async def test_batch_with_duplicates_stores_each_event_once(clean_db: TestDatabase) -> None:
    pool = await create_pool(clean_db.runtime_dsn("gateway"), "gateway", min_size=1, max_size=2)
    try:
        repo = InboxRepository(pool)
        await repo.store_many([_new("evt_old")])
        results = await repo.store_many(
            [_new("evt_a"), _new("evt_a"), _new("evt_old"), _new("evt_b", "ignored"), _new("evt_a")]
        )
        assert [r.inserted for r in results] == [True, False, False, True, False]
        first = results[0].event
        assert first is not None and first.attempts == 1 and first.next_attempt_at is not None
        ignored = results[3].event
        assert ignored is not None and ignored.attempts == 0 and ignored.next_attempt_at is None

        # Through the writer, concurrent stores of one event give exactly one `inserted`.
        writer = InboxWriter(repo, max_inflight=2)
        stored = await asyncio.gather(*(writer.store(_new(f"evt_{i % 7}")) for i in range(70)))
        assert sum(s.inserted for s in stored) == 7
        rows = await pool.fetch("SELECT event_id, count(*) AS n FROM inbox_events GROUP BY event_id")
        assert all(row["n"] == 1 for row in rows)
        assert {row["event_id"] for row in rows} == {"evt_old", "evt_a", "evt_b"} | {
            f"evt_{i}" for i in range(7)
        }
    finally:
        await pool.close()


async def test_finishes_written_together_each_record_their_own_verdict(clean_db: TestDatabase) -> None:
    pool = await create_pool(clean_db.runtime_dsn("gateway"), "gateway", min_size=1, max_size=2)
    try:
        repo = InboxRepository(pool)
        stored = await repo.store_many([_new(f"evt_f{i}") for i in range(20)])
        events = [s.event for s in stored if s.event is not None]
        finisher: GroupWriter[Finish, None] = GroupWriter(repo.finish_many, max_inflight=1)
        outcomes = ["applied", "duplicate", "amount_mismatch", "already_paid"]
        await asyncio.gather(
            *(
                finisher.submit(
                    Finish(e.id, "applied", outcomes[i % 4], quarantine_id=f"q{i}" if i % 4 == 2 else None)
                )
                for i, e in enumerate(events)
            ),
            # A late second verdict for an event already final changes nothing.
            finisher.submit(Finish(events[0].id, "failed", "late", last_error="too late")),
        )
        rows = {
            row["event_id"]: row
            for row in await pool.fetch("SELECT event_id, status, outcome, quarantine_id FROM inbox_events")
        }
        for i in range(20):
            row = rows[f"evt_f{i}"]
            assert (row["status"], row["outcome"]) == ("applied", outcomes[i % 4])
            assert row["quarantine_id"] == (f"q{i}" if i % 4 == 2 else None)
    finally:
        await pool.close()


async def test_a_stripe_sized_body_is_stored_as_received_without_compression(clean_db: TestDatabase) -> None:
    """Issue 16: pglz compressing every 3 KB body was half of the inbox insert's CPU in PostgreSQL. Bodies
    that fit the page stay inline and uncompressed (0920); a body larger than a page is still compressed."""
    pool = await create_pool(clean_db.runtime_dsn("gateway"), "gateway", min_size=1, max_size=2)
    try:
        repo = InboxRepository(pool)
        stripe_sized = b'{"id": "evt_big", "data": "%s"}' % (b"abcdefgh" * 380)  # about 3 KB, compressible
        huge = b'{"id": "evt_huge", "data": "%s"}' % (b"abcdefgh" * 4000)  # 32 KB
        await repo.store_many(
            [replace(_new("evt_big"), raw_body=stripe_sized), replace(_new("evt_huge"), raw_body=huge)]
        )
        rows = {
            row["event_id"]: row
            for row in await pool.fetch(
                "SELECT event_id, raw_body, pg_column_compression(raw_body) AS method FROM inbox_events"
            )
        }
        assert rows["evt_big"]["raw_body"] == stripe_sized and rows["evt_big"]["method"] is None
        # Compressed as before, with the server's default method (pglz here; lz4 where a server sets it).
        assert rows["evt_huge"]["raw_body"] == huge and rows["evt_huge"]["method"] is not None
    finally:
        await pool.close()


async def test_overlapping_batches_in_opposite_orders_do_not_deadlock(clean_db: TestDatabase) -> None:
    """Redeliveries of the same events can land in two batches written at once, in any order. Each batch must
    take its rows' unique-index locks in one fixed order, or two batches wait on each other and PostgreSQL
    kills one (a 500 for every webhook in it)."""
    pool = await create_pool(clean_db.runtime_dsn("gateway"), "gateway", min_size=2, max_size=3)
    try:
        repo = InboxRepository(pool)
        async with pool.acquire() as other_batch, other_batch.transaction():
            # Another batch, still open, already holds evt_x's new index entry.
            await InboxRepository(other_batch).store_many([_new("evt_x")])
            # This batch lists evt_y before evt_x; it must wait on evt_x while holding nothing.
            ours = asyncio.create_task(repo.store_many([_new("evt_y"), _new("evt_x")]))

            async def waiting() -> bool:
                return bool(
                    await other_batch.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND wait_event = 'transactionid'"
                    )
                )

            await eventually(waiting, timeout=5, what="the second batch to wait on evt_x")
            # The open batch goes on to evt_y; had ours taken evt_y first, this is a deadlock.
            await InboxRepository(other_batch).store_many([_new("evt_y")])
        results = await ours
        assert [r.inserted for r in results] == [False, False]
        rows = await pool.fetch("SELECT event_id FROM inbox_events ORDER BY event_id")
        assert [row["event_id"] for row in rows] == ["evt_x", "evt_y"]
    finally:
        await pool.close()
