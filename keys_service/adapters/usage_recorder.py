"""Batched last_used_at: successful checks are noted in memory and written once a second in one UPDATE."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import asyncpg

from keys_service.adapters import api_key_repository

log = logging.getLogger(__name__)


class UsageRecorder:
    def __init__(self, pool: asyncpg.Pool, *, interval: float = 1.0) -> None:
        self.pool = pool
        self.interval = interval
        self._pending: dict[str, datetime] = {}
        self.flushes = 0

    def note(self, key_id: str, at: datetime) -> None:
        """Remember a use; the latest time per key wins. O(1), no I/O on the hot path."""
        self._pending[key_id] = at

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            await api_key_repository.touch_last_used(self.pool, batch)
            self.flushes += 1
        except Exception:
            # Put the batch back (newer notes win) so a database blip only delays the update.
            for key_id, at in batch.items():
                if key_id not in self._pending or self._pending[key_id] < at:
                    self._pending[key_id] = at
            raise

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("last_used_at flush failed; will retry", extra={"error": type(error).__name__})
