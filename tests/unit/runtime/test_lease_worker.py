"""The shared leased-queue worker (paygate_runtime.lease_worker) on a real PostgreSQL: LISTEN/NOTIFY wakes it,
polling covers a lost notification, leases share rows between workers, a failure is retried with backoff, a
stop hands the leases back, periodic jobs run, and the metrics hooks see every row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest

from paygate_runtime.lease_worker import Backoff, LeaseSettings, LeaseWorker, Periodic, WorkerHooks
from paygate_runtime.tasks import cancel_and_wait
from support.database import TestDatabase

CHANNEL = "lease_worker_test"

_SETUP = """
CREATE TABLE IF NOT EXISTS public.lease_test_jobs (
    id              bigserial PRIMARY KEY,
    payload         text NOT NULL,
    status          text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    last_error      text
);
TRUNCATE public.lease_test_jobs RESTART IDENTITY;
"""

_CLAIM = """
WITH due AS (
    SELECT id FROM public.lease_test_jobs
     WHERE status = 'pending' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
     ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
)
UPDATE public.lease_test_jobs j SET locked_until = now() + interval '30 seconds', attempts = j.attempts + 1
  FROM due WHERE j.id = due.id RETURNING j.*
"""


class JobQueue:
    """A minimal queue over one table, as a service's repository would write it."""

    def __init__(self, pool: asyncpg.Pool, *, fail: set[str] = frozenset(), hold: float = 0.0) -> None:
        self.pool = pool
        self.fail = set(fail)
        self.hold = hold
        self.processed: list[str] = []
        self.failures: list[tuple[str, str]] = []
        self.released: list[int] = []
        self.running = 0
        self.max_running = 0
        self.backoff = Backoff(base_s=5.0, cap_s=60.0)

    async def claim(self, limit: int) -> Sequence[Any]:
        return await self.pool.fetch(_CLAIM, limit)

    def row_id(self, row: Any) -> int:
        return int(row["id"])

    async def process(self, row: Any) -> None:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
            if row["payload"] in self.fail:
                raise RuntimeError(f"cannot do {row['payload']}")
            await self.pool.execute(
                "UPDATE public.lease_test_jobs SET status = 'done', locked_until = NULL WHERE id = $1",
                row["id"],
            )
            self.processed.append(row["payload"])
        finally:
            self.running -= 1

    async def failed(self, row: Any, error: Exception) -> None:
        self.failures.append((row["payload"], str(error)))
        # The middle of the jitter window, not random: a small draw would make the row due again within the
        # tests' half-second waits (the tests said "at least 2.5 s" and failed now and then on a small draw).
        delay = self.backoff.delay(row["attempts"], lambda: 0.5)
        await self.pool.execute(
            """UPDATE public.lease_test_jobs SET locked_until = NULL, last_error = $2,
                      next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1""",
            row["id"],
            str(error),
            delay,
        )

    async def release(self, row_ids: Sequence[int]) -> None:
        self.released.extend(row_ids)
        await self.pool.execute(
            "UPDATE public.lease_test_jobs SET locked_until = NULL WHERE id = ANY($1::bigint[])",
            list(row_ids),
        )

    async def next_due_in(self) -> float | None:
        value = await self.pool.fetchval(
            """SELECT EXTRACT(EPOCH FROM MIN(GREATEST(next_attempt_at, COALESCE(locked_until, next_attempt_at)))
                      - now())::float8 FROM public.lease_test_jobs WHERE status = 'pending'"""
        )
        return None if value is None else max(0.0, float(value))


class BatchJobQueue(JobQueue):
    """The same table, processed one claim at a time (`process_batch`), as the session outbox does."""

    def __init__(self, pool: asyncpg.Pool, *, fail_batch: bool = False, hold: float = 0.0) -> None:
        super().__init__(pool, hold=hold)
        self.fail_batch = fail_batch
        self.batches: list[list[str]] = []

    async def process(self, row: Any) -> None:
        raise AssertionError("a batch queue is never given one row")

    async def process_batch(self, rows: Sequence[Any]) -> None:
        self.batches.append([row["payload"] for row in rows])
        self.running += len(rows)
        self.max_running = max(self.max_running, self.running)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
            if self.fail_batch:
                raise RuntimeError("the batch broke")
            await self.pool.execute(
                """UPDATE public.lease_test_jobs SET status = 'done', locked_until = NULL
                    WHERE id = ANY($1::bigint[])""",
                [row["id"] for row in rows],
            )
            self.processed.extend(row["payload"] for row in rows)
        finally:
            self.running -= len(rows)


@pytest.fixture
async def pool(database: TestDatabase) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database.admin_dsn, min_size=1, max_size=8)
    await pool.execute(_SETUP)
    try:
        yield pool
    finally:
        await pool.close()


async def _add(pool: asyncpg.Pool, *payloads: str, notify: bool = True) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for payload in payloads:
            await conn.execute("INSERT INTO public.lease_test_jobs (payload) VALUES ($1)", payload)
        if notify:
            await conn.execute(f"NOTIFY {CHANNEL}")


async def _until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def _start(worker: LeaseWorker[Any]) -> asyncio.Task[None]:
    return asyncio.create_task(worker.run())


async def test_a_notify_wakes_the_worker_long_before_its_poll(
    database: TestDatabase, pool: asyncpg.Pool
) -> None:
    queue = JobQueue(pool)
    worker = LeaseWorker(
        queue, LeaseSettings(name="test", channel=CHANNEL, poll_s=30.0), listen_dsn=database.admin_dsn
    )
    task = _start(worker)
    try:
        await _until(lambda: worker.listening, timeout=10)
        started = time.monotonic()
        await _add(pool, "a")
        await _until(lambda: queue.processed == ["a"], timeout=5)
        assert time.monotonic() - started < 2
    finally:
        await cancel_and_wait([task])


async def test_without_a_notification_the_poll_still_finds_the_row(
    database: TestDatabase, pool: asyncpg.Pool
) -> None:
    queue = JobQueue(pool)
    # No channel at all: polling alone must do (a lost NOTIFY or a dropped listener looks the same).
    worker = LeaseWorker(queue, LeaseSettings(name="test", channel=None, poll_s=0.2), listen_dsn=None)
    task = _start(worker)
    try:
        await asyncio.sleep(0.1)
        await _add(pool, "a", "b", notify=False)
        await _until(lambda: sorted(queue.processed) == ["a", "b"], timeout=5)
    finally:
        await cancel_and_wait([task])


async def test_two_workers_share_the_rows_each_once_and_never_past_their_slots(
    database: TestDatabase, pool: asyncpg.Pool
) -> None:
    queues = [JobQueue(pool, hold=0.05), JobQueue(pool, hold=0.05)]
    workers = [
        LeaseWorker(
            q,
            LeaseSettings(name="test", channel=CHANNEL, poll_s=0.1, concurrency=3),
            listen_dsn=database.admin_dsn,
        )
        for q in queues
    ]
    tasks = [_start(w) for w in workers]
    try:
        payloads = [f"job-{n}" for n in range(40)]
        await _add(pool, *payloads)
        await _until(lambda: len(queues[0].processed) + len(queues[1].processed) == 40, timeout=20)
        done = queues[0].processed + queues[1].processed
        assert sorted(done) == sorted(payloads)  # each row exactly once
        assert all(q.max_running <= 3 for q in queues)
        assert await pool.fetchval("SELECT count(*) FROM public.lease_test_jobs WHERE status = 'done'") == 40
    finally:
        await cancel_and_wait(tasks)


async def test_a_failing_row_goes_to_failed_and_waits_out_its_backoff(
    database: TestDatabase, pool: asyncpg.Pool
) -> None:
    queue = JobQueue(pool, fail={"bad"})
    outcomes: list[str] = []
    claimed: list[int] = []
    hooks = WorkerHooks(claimed=claimed.append, finished=lambda outcome, seconds: outcomes.append(outcome))
    worker = LeaseWorker(
        queue,
        LeaseSettings(name="test", channel=CHANNEL, poll_s=0.1),
        listen_dsn=database.admin_dsn,
        hooks=hooks,
    )
    task = _start(worker)
    try:
        await _add(pool, "good", "bad")
        await _until(lambda: queue.processed == ["good"] and len(queue.failures) == 1)
        await asyncio.sleep(0.5)  # several polls: the failed row is not due yet (5 s backoff at least 2.5 s)
        assert queue.failures == [("bad", "cannot do bad")]
        row = await pool.fetchrow("SELECT * FROM public.lease_test_jobs WHERE payload = 'bad'")
        assert row["status"] == "pending" and row["attempts"] == 1 and row["locked_until"] is None
        assert row["last_error"] == "cannot do bad"
        assert sorted(outcomes) == ["done", "failed"] and sum(claimed) == 2
    finally:
        await cancel_and_wait([task])


async def test_a_stop_hands_the_leases_of_rows_in_flight_back(
    database: TestDatabase, pool: asyncpg.Pool
) -> None:
    queue = JobQueue(pool, hold=3600)
    worker = LeaseWorker(
        queue, LeaseSettings(name="test", channel=CHANNEL, poll_s=0.1), listen_dsn=database.admin_dsn
    )
    task = _start(worker)
    await _add(pool, "slow-1", "slow-2")
    await _until(lambda: worker.in_flight == 2)
    started = time.monotonic()
    assert await cancel_and_wait([task], timeout=10)
    assert time.monotonic() - started < 5
    assert sorted(queue.released) == [1, 2]
    leased = await pool.fetchval("SELECT count(*) FROM public.lease_test_jobs WHERE locked_until IS NOT NULL")
    assert leased == 0  # another replica takes them at once


async def test_periodic_jobs_run_and_a_failing_one_does_not_stop_the_worker(
    database: TestDatabase, pool: asyncpg.Pool
) -> None:
    runs: list[str] = []

    async def tidy() -> None:
        runs.append("tidy")

    async def broken() -> None:
        runs.append("broken")
        raise RuntimeError("boom")

    queue = JobQueue(pool)
    worker = LeaseWorker(
        queue,
        LeaseSettings(name="test", channel=None, poll_s=0.1),
        listen_dsn=None,
        periodic=[Periodic("tidy", 0.1, tidy), Periodic("broken", 0.1, broken)],
    )
    task = _start(worker)
    try:
        await _until(lambda: runs.count("tidy") >= 3 and runs.count("broken") >= 3)
        await _add(pool, "still-works", notify=False)
        await _until(lambda: queue.processed == ["still-works"])
    finally:
        await cancel_and_wait([task])


async def test_a_batch_queue_gets_each_claim_in_one_call_within_its_slots(
    database: TestDatabase, pool: asyncpg.Pool
) -> None:
    queue = BatchJobQueue(pool, hold=0.05)
    claimed: list[int] = []
    outcomes: list[str] = []
    worker = LeaseWorker(
        queue,
        LeaseSettings(name="test", channel=CHANNEL, poll_s=0.1, concurrency=8),
        listen_dsn=database.admin_dsn,
        hooks=WorkerHooks(claimed=claimed.append, finished=lambda outcome, seconds: outcomes.append(outcome)),
    )
    task = _start(worker)
    try:
        await _until(lambda: worker.listening)
        payloads = [f"job-{n}" for n in range(20)]
        await _add(pool, *payloads)
        await _until(lambda: len(queue.processed) == 20)
        assert sorted(queue.processed) == sorted(payloads)  # each row once
        # One call per claim: the batches are exactly the claims, and a claim never exceeds the free slots.
        assert [len(batch) for batch in queue.batches] == claimed
        assert max(claimed) > 1 and queue.max_running <= 8
        assert outcomes == ["done"] * 20  # the hooks still see every row
        await _until(lambda: worker.in_flight == 0)
    finally:
        await cancel_and_wait([task])


class KeyedBatchJobQueue(BatchJobQueue):
    """Batches by the payload's kind (the part before the dash), as the outbox splits fulfilments and mails."""

    def batch_key(self, row: Any) -> str:
        return str(row["payload"]).split("-")[0]


async def test_a_batch_key_splits_a_claim_into_one_batch_per_key(
    database: TestDatabase, pool: asyncpg.Pool
) -> None:
    queue = KeyedBatchJobQueue(pool)
    await _add(pool, "fulfil-1", "mail-1", "fulfil-2", "mail-2", "fulfil-3", notify=False)
    worker = LeaseWorker(queue, LeaseSettings(name="test", channel=None, poll_s=0.1), listen_dsn=None)
    task = _start(worker)
    try:
        await _until(lambda: len(queue.processed) == 5)
        assert sorted(queue.batches) == [["fulfil-1", "fulfil-2", "fulfil-3"], ["mail-1", "mail-2"]]
    finally:
        await cancel_and_wait([task])


async def test_a_batch_that_raises_sends_each_of_its_rows_to_failed(
    database: TestDatabase, pool: asyncpg.Pool
) -> None:
    queue = BatchJobQueue(pool, fail_batch=True)
    outcomes: list[str] = []
    worker = LeaseWorker(
        queue,
        LeaseSettings(name="test", channel=None, poll_s=0.1),
        listen_dsn=None,
        hooks=WorkerHooks(finished=lambda outcome, seconds: outcomes.append(outcome)),
    )
    await _add(pool, "a", "b", "c", notify=False)
    task = _start(worker)
    try:
        await _until(lambda: len(queue.failures) == 3)
        await asyncio.sleep(0.3)  # several polls: the rows wait out their backoff
        assert queue.batches == [["a", "b", "c"]]
        assert sorted(queue.failures) == [(p, "the batch broke") for p in ("a", "b", "c")]
        assert outcomes == ["failed"] * 3
        pending = await pool.fetch("SELECT * FROM public.lease_test_jobs ORDER BY id")
        assert all(r["status"] == "pending" and r["locked_until"] is None for r in pending)
        assert all(r["last_error"] == "the batch broke" for r in pending)
    finally:
        await cancel_and_wait([task])


async def test_a_stop_hands_back_every_row_of_a_batch_in_flight(
    database: TestDatabase, pool: asyncpg.Pool
) -> None:
    queue = BatchJobQueue(pool, hold=3600)
    outcomes: list[str] = []
    worker = LeaseWorker(
        queue,
        LeaseSettings(name="test", channel=None, poll_s=0.1),
        listen_dsn=None,
        hooks=WorkerHooks(finished=lambda outcome, seconds: outcomes.append(outcome)),
    )
    await _add(pool, "slow-1", "slow-2", "slow-3", notify=False)
    task = _start(worker)
    await _until(lambda: worker.in_flight == 3)
    assert len(queue.batches) == 1
    started = time.monotonic()
    assert await cancel_and_wait([task], timeout=10)
    assert time.monotonic() - started < 5
    assert sorted(queue.released) == [1, 2, 3]
    assert outcomes == ["abandoned"] * 3
    leased = await pool.fetchval("SELECT count(*) FROM public.lease_test_jobs WHERE locked_until IS NOT NULL")
    assert leased == 0


def test_backoff_is_full_jitter_capped_with_a_floor() -> None:
    backoff = Backoff(base_s=0.5, cap_s=300.0, floor_s=0.05)
    assert backoff.ceiling(1) == 0.5 and backoff.ceiling(2) == 1.0 and backoff.ceiling(40) == 300.0
    assert backoff.delay(3, lambda: 0.5) == 1.0
    assert backoff.delay(3, lambda: 0.0) == 0.05
    assert backoff.delay(10_000, lambda: 0.999) <= 300.0
    with pytest.raises(ValueError):
        Backoff(base_s=0, cap_s=1)


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        LeaseSettings(name="x", channel=None, concurrency=0)
    with pytest.raises(ValueError):
        LeaseSettings(name="x", channel=None, poll_s=0)
