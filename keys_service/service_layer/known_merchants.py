"""Merchants' key prefixes and display names, remembered once read.

A merchant is never deleted and neither its key prefix nor its name ever changes (no statement updates a
merchant row), so a remembered answer cannot go stale, and the hot issuing paths (a customer key and an
access token for every paid session, the name for the customer's mail) skip a read. An id that
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
        self._known: dict[uuid.UUID, tuple[str, str]] = {}

    async def key_prefix(self, merchant_id: uuid.UUID) -> str:
        """The merchant's key prefix; NOT_FOUND `not_found` for an unknown merchant."""
        return (await self._facts(merchant_id))[0]

    async def name(self, merchant_id: uuid.UUID) -> str:
        """The merchant's display name; NOT_FOUND `not_found` for an unknown merchant."""
        return (await self._facts(merchant_id))[1]

    async def _facts(self, merchant_id: uuid.UUID) -> tuple[str, str]:
        facts = self._known.get(merchant_id)
        if facts is None:
            merchant = await merchant_repository.get(self.pool, merchant_id)
            if merchant is None:
                raise NotFound("not_found", "merchant not found")
            if len(self._known) >= self.max_entries:
                self._known.clear()
            facts = self._known[merchant_id] = (merchant.key_prefix, merchant.name)
        return facts
