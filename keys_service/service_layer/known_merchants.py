"""Merchants' key prefixes, remembered once read.

A merchant is never deleted and its key prefix never changes, so a remembered answer cannot go stale, and
the hot issuing paths (a customer key and an access token for every paid session) skip a read. An id that
is not known is asked about again every time: a merchant created a moment ago is found at once.
"""

from __future__ import annotations

import uuid

import asyncpg

from keys_service.adapters import merchant_repository
from paygate_runtime.errors import NotFound

DEFAULT_MAX_ENTRIES = 10_000


class KnownMerchants:
    def __init__(self, pool: asyncpg.Pool, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.pool = pool
        self.max_entries = max_entries
        self._prefixes: dict[uuid.UUID, str] = {}

    async def key_prefix(self, merchant_id: uuid.UUID) -> str:
        """The merchant's key prefix; NOT_FOUND `not_found` for an unknown merchant."""
        prefix = self._prefixes.get(merchant_id)
        if prefix is None:
            merchant = await merchant_repository.get(self.pool, merchant_id)
            if merchant is None:
                raise NotFound("not_found", "merchant not found")
            if len(self._prefixes) >= self.max_entries:
                self._prefixes.clear()
            prefix = self._prefixes[merchant_id] = merchant.key_prefix
        return prefix
