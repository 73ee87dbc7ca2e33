"""Idempotency-Key records in the gateway schema.

The key is claimed before the work starts (INSERT ... ON CONFLICT DO NOTHING), so of two concurrent requests
with one key exactly one does the work; the other waits for the stored response or gets a conflict.
A key belongs to (merchant, mode): the same key sent with a live key is another request than with a test key.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    status_code: int | None
    body: bytes | None


class IdempotencyStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(self, merchant_id: str, mode: str, key: str, fingerprint: str) -> StoredResponse | None:
        """None when this request owns the key now; else what an earlier request with it recorded."""
        row = await self.pool.fetchrow(
            """INSERT INTO idempotency_keys (merchant_id, mode, key, fingerprint) VALUES ($1, $2, $3, $4)
               ON CONFLICT (merchant_id, mode, key) DO NOTHING RETURNING 1""",
            uuid.UUID(merchant_id),
            mode,
            key,
            fingerprint,
        )
        if row is not None:
            return None
        return await self.get(merchant_id, mode, key)

    async def get(self, merchant_id: str, mode: str, key: str) -> StoredResponse | None:
        row = await self.pool.fetchrow(
            """SELECT fingerprint, status_code, response_body FROM idempotency_keys
                WHERE merchant_id = $1 AND mode = $2 AND key = $3""",
            uuid.UUID(merchant_id),
            mode,
            key,
        )
        if row is None:
            return None
        return StoredResponse(row["fingerprint"], row["status_code"], row["response_body"])

    async def wait_for_response(
        self, merchant_id: str, mode: str, key: str, timeout: float = 5.0
    ) -> StoredResponse | None:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            stored = await self.get(merchant_id, mode, key)
            if stored is None or stored.status_code is not None:
                return stored
            await asyncio.sleep(0.05)
        return await self.get(merchant_id, mode, key)

    async def complete(self, merchant_id: str, mode: str, key: str, status_code: int, body: bytes) -> None:
        await self.pool.execute(
            """UPDATE idempotency_keys SET status_code = $4, response_body = $5
                WHERE merchant_id = $1 AND mode = $2 AND key = $3""",
            uuid.UUID(merchant_id),
            mode,
            key,
            status_code,
            body,
        )

    async def release(self, merchant_id: str, mode: str, key: str) -> None:
        """Forget a claim whose work failed for a passing reason, so that a retry can run it."""
        await self.pool.execute(
            "DELETE FROM idempotency_keys WHERE merchant_id = $1 AND mode = $2 AND key = $3 AND status_code IS NULL",
            uuid.UUID(merchant_id),
            mode,
            key,
        )

    async def purge_older_than(self, hours: int) -> int:
        result = await self.pool.execute(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)", hours
        )
        return int(result.split()[-1])
