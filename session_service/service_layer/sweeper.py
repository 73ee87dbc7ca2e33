"""The expiry sweeper: ends `created` sessions whose time is up. `pending` ones are never touched.

With several replicas only one sweeps at a time: each pass takes a transaction-scoped Postgres advisory
lock with pg_try_advisory_xact_lock, and a replica that does not get it simply skips the pass.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from session_service.adapters import session_repository as repo

log = logging.getLogger(__name__)


async def sweep_once(pool: asyncpg.Pool, batch: int = 500) -> int | None:
    """Expire up to `batch` due sessions; None when another replica holds the sweep lock."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", repo.SWEEPER_LOCK_KEY):
            return None
        expired = await repo.expire_due(conn, batch)
    if expired:
        log.info("sweeper expired sessions", extra={"count": len(expired)})
    return len(expired)


async def run_sweeper(pool: asyncpg.Pool, interval_s: float, batch: int = 500) -> None:
    while True:
        try:
            count = await sweep_once(pool, batch)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("sweep failed; retrying next interval", extra={"error": str(exc)})
            count = 0
        if count != batch:
            await asyncio.sleep(interval_s)
