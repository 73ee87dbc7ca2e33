"""Group commit for ApplyPaymentEvent: events that arrive together are read in one statement and written
in one statement, so a burst costs one round trip pair and one WAL flush per group instead of per event.

Why: on a small machine the fixed cost of a statement and of a durable commit (parse, bind, executor
start-up, the commit record, the asyncpg round trip and its event-loop wake-ups) is most of what an event
costs; the decision itself is microseconds. Events queue while a group is in the database and the next
group takes all of them, so a lone event is never delayed and a burst batches itself.

What does not change: each event is decided by the same pure `decide()` on the state its write commits
against (the write is conditional per row, as in `write_move`), is idempotent on (provider, event id), and
answers only after its group has committed. A group holds at most one event per session and per event id;
later ones wait for the next group and see the first one's result. Whatever a group cannot settle (a
session that changed between read and write or that another transaction holds locked, an event recorded
meanwhile by another replica) is applied again one event at a time by `apply_payment_event`, which waits
for the lock and retries on its own, off the group's path so that one busy session never stalls the rest.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from dataclasses import dataclass

import asyncpg

from paygate_runtime.errors import NotFound, Unavailable
from session_service.adapters import move_groups
from session_service.domain.payment_events import PaymentEvent
from session_service.service_layer.payment_events import (
    Applied,
    EventCommand,
    PlannedMove,
    apply_payment_event,
    payment_event_of,
    plan,
    validate_command,
)

# Large enough to absorb a burst from every gateway replica, small enough that one statement stays short.
DEFAULT_MAX_GROUP = 64


def _stopping() -> Unavailable:
    return Unavailable("shutting_down", "the session service is stopping")


@dataclass(slots=True)
class _Waiting:
    command: EventCommand
    event: PaymentEvent
    key: move_groups.EventKey
    future: asyncio.Future[Applied]

    def resolve(self, applied: Applied) -> None:
        if not self.future.done():
            self.future.set_result(applied)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class GroupedEventApplier:
    def __init__(self, pool: asyncpg.Pool, *, max_group: int = DEFAULT_MAX_GROUP) -> None:
        self.pool = pool
        self.max_group = max_group
        self._queue: collections.deque[_Waiting] = collections.deque()
        self._drain_task: asyncio.Task[None] | None = None
        self._alone: set[asyncio.Task[None]] = set()
        # For tests and the benchmark: how many groups ran and how many events they held.
        self.groups = 0
        self.grouped_events = 0

    async def apply(self, command: EventCommand) -> Applied:
        validate_command(command)
        if not command.session_id:
            # Found by provider reference (refunds, disputes): rare, and needs a lookup first.
            return await apply_payment_event(self.pool, command)
        try:
            session_id = uuid.UUID(command.session_id)
        except ValueError:
            raise NotFound("session_not_found", "no such session") from None
        waiting = _Waiting(
            command,
            payment_event_of(command),
            move_groups.EventKey(session_id, command.provider, command.provider_event_id),
            asyncio.get_running_loop().create_future(),
        )
        self._queue.append(waiting)
        if self._drain_task is None:
            self._drain_task = asyncio.create_task(self._drain(), name="apply-event-groups")
        # A caller that gives up (deadline, cancelled RPC) cancels only its wait: an event already in a group
        # is still committed, and its redelivery answers `duplicate` with the first outcome.
        return await waiting.future

    async def _drain(self) -> None:
        try:
            while self._queue:
                group = self._take_group()
                if not group:
                    continue
                try:
                    await self._apply_group(group)
                except BaseException as error:
                    # A cancelled drain (shutdown) must not leave its group's callers waiting forever.
                    failure = _stopping() if isinstance(error, asyncio.CancelledError) else error
                    for waiting in group:
                        waiting.fail(failure)
                    if not isinstance(error, Exception):
                        raise
        finally:
            self._drain_task = None
            # Only on shutdown: nobody is left to apply these, and the gateway keeps them to retry.
            while self._queue:
                self._queue.popleft().fail(_stopping())

    def _take_group(self) -> list[_Waiting]:
        group: list[_Waiting] = []
        later: list[_Waiting] = []
        sessions: set[uuid.UUID] = set()
        events: set[tuple[str, str]] = set()
        while self._queue and len(group) < self.max_group:
            waiting = self._queue.popleft()
            if waiting.future.done():
                continue  # its caller gave up before it was applied: nothing was written
            event_id = (waiting.key.provider, waiting.key.provider_event_id)
            if waiting.key.session_id in sessions or event_id in events:
                later.append(waiting)
                continue
            sessions.add(waiting.key.session_id)
            events.add(event_id)
            group.append(waiting)
        self._queue.extendleft(reversed(later))
        return group

    async def _apply_group(self, group: list[_Waiting]) -> None:
        self.groups += 1
        self.grouped_events += len(group)
        again: list[_Waiting] = []
        async with self.pool.acquire() as conn:
            rows = await move_groups.read_for_events(conn, [w.key for w in group])
            decided: list[tuple[_Waiting, PlannedMove]] = []
            for waiting, row in zip(group, rows, strict=True):
                if row is None:
                    waiting.fail(NotFound("session_not_found", "no such session"))
                    continue
                planned = plan(row, waiting.command, waiting.event)
                if isinstance(planned, Applied):
                    waiting.resolve(planned)
                else:
                    decided.append((waiting, planned))
            if decided:
                try:
                    written = await move_groups.write_moves(conn, [planned.move() for _, planned in decided])
                except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
                    # Nothing of the group was written. A deadlock cannot come from groups (they skip
                    # locked rows) but could from a wait on another replica's uncommitted event key.
                    again = [waiting for waiting, _ in decided]
                else:
                    for waiting, planned in decided:
                        if planned.row["id"] in written.applied:
                            waiting.resolve(planned.applied_at(written.at))
                        else:
                            again.append(waiting)
        for waiting in again:
            task = asyncio.create_task(self._apply_alone(waiting), name="apply-event-alone")
            self._alone.add(task)
            task.add_done_callback(self._alone.discard)

    async def _apply_alone(self, waiting: _Waiting) -> None:
        try:
            waiting.resolve(await apply_payment_event(self.pool, waiting.command))
        except asyncio.CancelledError:
            waiting.fail(_stopping())
            raise
        except Exception as error:
            waiting.fail(error)
