"""Batched usage: successful checks are noted in memory and written once a second in one transaction.

Two things are kept per key: the latest use (last_used_at) and, when the recorder has a `counts_writer`
(customer keys, contract §12), how many successful checks fell on each UTC day. Noting costs two dict
operations and no I/O, so the VerifyKey hot path stays fast.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime

import asyncpg

from keys_service.adapters import api_key_repository

log = logging.getLogger(__name__)


Writer = Callable[[asyncpg.Pool, dict[str, datetime]], Awaitable[None]]
CountsWriter = Callable[[asyncpg.Pool, dict[str, datetime], dict[tuple[str, date], int]], Awaitable[None]]


class UsageRecorder:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        interval: float = 1.0,
        writer: Writer = api_key_repository.touch_last_used,
        counts_writer: CountsWriter | None = None,
        what: str = "customer key",
    ) -> None:
        self.pool = pool
        self.interval = interval
        # Customer keys and merchant secret keys each have one recorder, writing to their own table.
        self.writer = writer
        # When set, it writes last-used times and per-day counts together (one transaction) instead of writer.
        self.counts_writer = counts_writer
        self.what = what
        self._pending: dict[str, datetime] = {}
        self._counts: dict[tuple[str, date], int] = {}
        self.flushes = 0

    def note(self, key_id: str, at: datetime) -> None:
        """Remember a use; the latest time per key wins. O(1), no I/O on the hot path."""
        self._pending[key_id] = at
        if self.counts_writer is not None:
            slot = (key_id, at.date())
            self._counts[slot] = self._counts.get(slot, 0) + 1

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        if not self._pending and not self._counts:
            return
        batch, self._pending = self._pending, {}
        counts, self._counts = self._counts, {}
        try:
            if self.counts_writer is not None:
                await self.counts_writer(self.pool, batch, counts)
            else:
                await self.writer(self.pool, batch)
            self.flushes += 1
        except Exception:
            # Put the batch back (newer notes win, counts add up) so a database blip only delays the update.
            # The write is one transaction, so a failed one counted nothing.
            for key_id, at in batch.items():
                if key_id not in self._pending or self._pending[key_id] < at:
                    self._pending[key_id] = at
            for slot, n in counts.items():
                self._counts[slot] = self._counts.get(slot, 0) + n
            raise

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning(
                    "usage flush failed; will retry",
                    extra={"error": type(error).__name__, "keys": self.what},
                )
