"""Idempotency-Key records in the gateway schema.

The key is claimed before the work starts (INSERT ... ON CONFLICT DO NOTHING), so of two concurrent requests
with one key exactly one does the work; the other waits for the stored response or gets a conflict.
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

    async def claim(self, merchant_id: str, key: str, fingerprint: str) -> StoredResponse | None:
        """None when this request owns the key now; else what an earlier request with it recorded."""
        row = await self.pool.fetchrow(
            """INSERT INTO idempotency_keys (merchant_id, key, fingerprint) VALUES ($1, $2, $3)
               ON CONFLICT (merchant_id, key) DO NOTHING RETURNING 1""",
            uuid.UUID(merchant_id),
            key,
            fingerprint,
        )
        if row is not None:
            return None
        return await self.get(merchant_id, key)

    async def get(self, merchant_id: str, key: str) -> StoredResponse | None:
        row = await self.pool.fetchrow(
            "SELECT fingerprint, status_code, response_body FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
            uuid.UUID(merchant_id),
            key,
        )
        if row is None:
            return None
        return StoredResponse(row["fingerprint"], row["status_code"], row["response_body"])

    async def wait_for_response(
        self, merchant_id: str, key: str, timeout: float = 5.0
    ) -> StoredResponse | None:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            stored = await self.get(merchant_id, key)
            if stored is None or stored.status_code is not None:
                return stored
            await asyncio.sleep(0.05)
        return await self.get(merchant_id, key)

    async def complete(self, merchant_id: str, key: str, status_code: int, body: bytes) -> None:
        await self.pool.execute(
            "UPDATE idempotency_keys SET status_code = $3, response_body = $4 WHERE merchant_id = $1 AND key = $2",
            uuid.UUID(merchant_id),
            key,
            status_code,
            body,
        )

    async def release(self, merchant_id: str, key: str) -> None:
        """Forget a claim whose work failed for a passing reason, so that a retry can run it."""
        await self.pool.execute(
            "DELETE FROM idempotency_keys WHERE merchant_id = $1 AND key = $2 AND status_code IS NULL",
            uuid.UUID(merchant_id),
            key,
        )

    async def purge_older_than(self, hours: int) -> int:
        result = await self.pool.execute(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)", hours
        )
        return int(result.split()[-1])
