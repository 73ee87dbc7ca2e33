"""Group commit for the gateway's hot writes: items submitted together go to the database as one batch.

Up to `max_inflight` batches are written at once; whatever arrives meanwhile waits for the next batch. An
idle gateway therefore writes each item alone (no added latency), and a busy one pays one round trip and one
fsync per batch instead of per item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupWriter(Generic[Item, Result]):
    def __init__(
        self,
        write_many: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int = 256,
        max_inflight: int = 4,
    ) -> None:
        """`write_many` writes a batch in one statement and returns one result per item, in order."""
        self.write_many = write_many
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._inflight < self.max_inflight:
            self._inflight += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                try:
                    results = await self.write_many([item for item, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(
                                exc if isinstance(exc, Exception) else RuntimeError("cancelled")
                            )
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._inflight -= 1
