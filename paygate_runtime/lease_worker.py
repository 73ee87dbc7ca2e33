"""One worker for every leased queue in a table: claim, process, release or retry, stop cleanly.

A service's queue (outbox rows, webhook deliveries, forwarded events) gives the worker a `LeaseQueue`: how to
claim up to n due rows (one autocommit statement, `FOR UPDATE SKIP LOCKED` then `locked_until`, so replicas
share the rows and no transaction stays open while a row is worked on), how to process one, what to do when
processing raised (usually: record the error and a backoff), how to hand leases back, and when the next row
falls due. A queue whose rows are cheaper together (one downstream call and one recording statement for many
rows) also defines `process_batch(rows)` (`BatchLeaseQueue`): it is then given each claim's rows at once, in
one task, instead of `process` per row; with `batch_key(row)` as well, a claim is split into one batch (and
task) per key, so rows of different kinds do not wait for each other. The worker owns what every such loop needs and what each one used to
copy:

- wake-up: a dedicated LISTEN connection on the queue's channel (the inserting trigger NOTIFYs; delivered at
  commit), and a poll every `poll_s` besides, so a lost notification or a dropped listener only delays work.
  On every (re)connect the worker wakes once, for what it may have missed;
- slots: at most `concurrency` rows in flight. While rows are in flight it claims again only when
  `refill_at` slots are free (claiming one replacement per finished row costs a statement per row);
- failures: `process` raising (not a cancellation) goes to `queue.failed(row, error)`, and `process_batch`
  raising to `failed` for every row of the batch (a batch judges its rows' own failures itself); a failure
  there is logged, and the row's lease runs out, so it is claimed again later (at least once);
- stop: cancelling `run()` cancels the rows in flight and hands their leases back (`queue.release`), so
  another replica takes them at once instead of after the lease; bounded by `stop_timeout_s`;
- housekeeping: `Periodic` jobs (retention, notices) run on their own interval beside the loop, each failure
  logged and retried at the next interval, never stopping the worker;
- metrics: `WorkerHooks` callbacks per claim and per finished row (outcome and seconds); the worker itself
  imports no metrics library, so each service names its own series.

`Backoff` is the full-jitter exponential delay the queues use for `failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import asyncpg

from paygate_runtime.tasks import cancel_and_wait, wait_event

log = logging.getLogger(__name__)

RowT = TypeVar("RowT")


class LeaseQueue(Protocol[RowT]):
    """One kind of leased work. Every method may raise; the worker logs and carries on."""

    async def claim(self, limit: int) -> Sequence[RowT]:
        """Lease up to `limit` due rows (their attempt counted) and return them."""
        ...

    def row_id(self, row: RowT) -> int:
        """The row's key: what `release` is given back."""
        ...

    async def process(self, row: RowT) -> None:
        """Do the work and record its outcome (done, or a retry the queue decided on itself)."""
        ...

    async def failed(self, row: RowT, error: Exception) -> None:
        """`process` raised: record the error and when to try again (usually a `Backoff` delay)."""
        ...

    async def release(self, row_ids: Sequence[int]) -> None:
        """On a stop: end the leases of these rows (attempts stay: the work may have happened)."""
        ...

    async def next_due_in(self) -> float | None:
        """Seconds until the next row falls due (0 if one is due now), None if nothing is pending."""
        ...


class BatchLeaseQueue(LeaseQueue[RowT], Protocol):
    """A queue that processes the rows of one claim together; the worker uses `process_batch` instead of
    `process` when the queue has it (and still counts every row as one slot)."""

    async def process_batch(self, rows: Sequence[RowT]) -> None:
        """Do the work of all `rows` and record each one's outcome (done, or a retry of its own). Raising
        (not a cancellation) sends every row of the batch to `failed`."""
        ...

    # Optional as well: `batch_key(row) -> Hashable`; the rows of one claim with equal keys form one batch.


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    name: str  # names the tasks and the log lines
    channel: str | None  # LISTEN channel; None: poll only
    concurrency: int = 64
    poll_s: float = 1.0
    # While rows are in flight, claim again only once this many slots are free (1: at every free slot).
    refill_at: int = 1
    stop_timeout_s: float = 5.0
    reconnect_s: float = 1.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not 1 <= self.refill_at <= self.concurrency:
            raise ValueError("refill_at must be 1..concurrency")
        if self.poll_s <= 0 or self.stop_timeout_s <= 0 or self.reconnect_s <= 0:
            raise ValueError("poll_s, stop_timeout_s and reconnect_s must be positive")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: a delay uniform in [floor, min(cap, base * 2^(attempt-1))]."""

    base_s: float
    cap_s: float
    floor_s: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s or self.floor_s < 0:
            raise ValueError("need 0 < base_s <= cap_s and floor_s >= 0")

    def ceiling(self, attempt: int) -> float:
        """The largest delay after the `attempt`-th failure (1-based)."""
        doubling: int = 2 ** min(max(attempt - 1, 0), 40)
        return min(self.cap_s, self.base_s * doubling)

    def delay(self, attempt: int, rng: Callable[[], float]) -> float:
        # Full jitter spreads a burst of failures over the whole window; the floor keeps a failing peer
        # from being asked again at once.
        return max(self.floor_s, rng() * self.ceiling(attempt))


def _no_claim(count: int) -> None:
    return None


def _no_finish(outcome: str, seconds: float) -> None:
    return None


@dataclass(frozen=True, slots=True)
class WorkerHooks:
    """Metrics callbacks: `claimed(rows)` after each non-empty claim, `finished(outcome, seconds)` per row
    with outcome `done` (process returned), `failed` (process raised) or `abandoned` (stopped mid-row); a
    batch reports each of its rows with the batch's outcome and seconds."""

    claimed: Callable[[int], None] = _no_claim
    finished: Callable[[str, float], None] = _no_finish


@dataclass(frozen=True, slots=True)
class Periodic:
    """A housekeeping job run every `interval_s` while the worker runs (the first run one interval in)."""

    name: str
    interval_s: float
    run: Callable[[], Awaitable[object]]
    first_after_s: float | None = None  # None: one interval


@dataclass
class _InFlight:
    task: asyncio.Task[None]
    started: float = field(default_factory=time.monotonic)


class LeaseWorker(Generic[RowT]):
    def __init__(
        self,
        queue: LeaseQueue[RowT],
        settings: LeaseSettings,
        *,
        listen_dsn: str | None,
        periodic: Sequence[Periodic] = (),
        hooks: WorkerHooks | None = None,
    ) -> None:
        self.queue = queue
        self.settings = settings
        self.listen_dsn = listen_dsn
        self.periodic = list(periodic)
        self.hooks = hooks or WorkerHooks()
        # The queue's batch hook, if it has one (an optional member, so looked up once rather than typed).
        self._process_batch: Callable[[Sequence[RowT]], Awaitable[None]] | None = getattr(
            queue, "process_batch", None
        )
        self._batch_key: Callable[[RowT], Hashable] | None = getattr(queue, "batch_key", None)
        self._wake = asyncio.Event()
        self._inflight: dict[int, _InFlight] = {}
        self._listening = False

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up (tests wait for it; a gauge may show it)."""
        return self._listening

    def wake(self) -> None:
        """Look for due rows now (an in-process producer's shortcut past NOTIFY)."""
        self._wake.set()

    async def run(self) -> None:
        name = self.settings.name
        helpers: list[asyncio.Task[Any]] = []
        if self.settings.channel is not None and self.listen_dsn is not None:
            helpers.append(asyncio.create_task(self._listen(self.listen_dsn), name=f"{name}-listener"))
        helpers.extend(
            asyncio.create_task(self._every(job), name=f"{name}-{job.name}") for job in self.periodic
        )
        try:
            while True:
                self._wake.clear()
                try:
                    await self._fill()
                except Exception as exc:  # the database away, or a bug in the claim: poll again later
                    log.warning(
                        "lease claim failed; retrying", extra={"worker": name, "error": _describe(exc)}
                    )
                await wait_event(self._wake, await self._sleep_for())
        finally:
            await cancel_and_wait(helpers, timeout=2)
            await self._abandon_inflight()

    async def _sleep_for(self) -> float:
        poll_s = self.settings.poll_s
        if self._inflight:
            # A finishing row wakes the loop anyway; only an idle loop needs to know when a retry is due.
            return poll_s
        try:
            due = await self.queue.next_due_in()
        except Exception:
            return poll_s
        if due is None:
            return poll_s
        return min(poll_s, max(due, 0.01))

    async def _fill(self) -> None:
        settings = self.settings
        while (free := settings.concurrency - len(self._inflight)) > 0:
            if self._inflight and free < settings.refill_at:
                return
            rows = await self.queue.claim(free)
            if rows:
                self.hooks.claimed(len(rows))
                if self._process_batch is not None:
                    for batch in self._batches(rows):
                        self._start(self._batch(self._process_batch, batch), batch)
                else:
                    for row in rows:
                        self._start(self._one(row), [row])
            if len(rows) < free:
                return

    def _batches(self, rows: Sequence[RowT]) -> list[Sequence[RowT]]:
        if self._batch_key is None:
            return [rows]
        groups: dict[Hashable, list[RowT]] = {}
        for row in rows:
            groups.setdefault(self._batch_key(row), []).append(row)
        return list(groups.values())

    def _start(self, work: Coroutine[Any, Any, None], rows: Sequence[RowT]) -> None:
        """One task for `rows`; each row holds a slot (and is handed back on a stop) until the task ends."""
        row_ids = [self.queue.row_id(row) for row in rows]
        suffix = f"+{len(row_ids)}" if len(row_ids) > 1 else ""
        task = asyncio.create_task(work, name=f"{self.settings.name}-{row_ids[0]}{suffix}")
        entry = _InFlight(task)
        for row_id in row_ids:
            self._inflight[row_id] = entry
        task.add_done_callback(self._finished(row_ids))

    def _finished(self, row_ids: list[int]) -> Callable[[asyncio.Task[None]], None]:
        def finished(task: asyncio.Task[None]) -> None:
            for row_id in row_ids:
                self._inflight.pop(row_id, None)
            self._wake.set()

        return finished

    async def _batch(
        self, process_batch: Callable[[Sequence[RowT]], Awaitable[None]], rows: Sequence[RowT]
    ) -> None:
        started = time.monotonic()
        try:
            await process_batch(rows)
        except asyncio.CancelledError:
            self._report("abandoned", started, len(rows))
            raise
        except Exception as exc:
            self._report("failed", started, len(rows))
            for row in rows:
                await self._record_failure(row, exc)
            return
        self._report("done", started, len(rows))

    def _report(self, outcome: str, started: float, count: int) -> None:
        seconds = time.monotonic() - started
        for _ in range(count):
            self.hooks.finished(outcome, seconds)

    async def _one(self, row: RowT) -> None:
        started = time.monotonic()
        try:
            await self.queue.process(row)
        except asyncio.CancelledError:
            self.hooks.finished("abandoned", time.monotonic() - started)
            raise
        except Exception as exc:
            self.hooks.finished("failed", time.monotonic() - started)
            await self._record_failure(row, exc)
            return
        self.hooks.finished("done", time.monotonic() - started)

    async def _record_failure(self, row: RowT, exc: Exception) -> None:
        try:
            await self.queue.failed(row, exc)
        except asyncio.CancelledError:
            raise
        except Exception as record_error:  # the lease runs out and the row is claimed again
            log.error(
                "lease worker could not record a failure",
                extra={
                    "worker": self.settings.name,
                    "row_id": self.queue.row_id(row),
                    "error": _describe(exc),
                    "record_error": _describe(record_error),
                },
            )

    async def _abandon_inflight(self) -> None:
        """Cancel the rows in flight and hand their leases back, so another replica takes them at once."""
        tasks = {row_id: entry.task for row_id, entry in self._inflight.items()}
        # A batch's task holds several rows: cancel it once.
        await cancel_and_wait(set(tasks.values()), timeout=self.settings.stop_timeout_s)
        if tasks:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self.queue.release(list(tasks))

    async def _every(self, job: Periodic) -> None:
        delay = job.interval_s if job.first_after_s is None else job.first_after_s
        while True:
            await asyncio.sleep(delay)
            delay = job.interval_s
            try:
                await job.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "periodic job failed; next run at its interval",
                    extra={"worker": self.settings.name, "job": job.name, "error": _describe(exc)},
                )

    async def _listen(self, dsn: str) -> None:
        """Keep a dedicated LISTEN connection; on every (re)connect, wake once in case we missed a NOTIFY."""
        channel = self.settings.channel
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(dsn)
                await conn.add_listener(channel, self._notified)
                self._listening = True
                self._wake.set()
                while not conn.is_closed():
                    await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "lease worker lost its listener connection; polling meanwhile",
                    extra={"worker": self.settings.name, "error": _describe(exc)},
                )
            finally:
                self._listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=1)
            await asyncio.sleep(self.settings.reconnect_s)

    def _notified(self, *_: object) -> None:
        self._wake.set()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]
