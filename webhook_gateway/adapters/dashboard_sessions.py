"""Dashboard sessions and sign-in failures in the gateway schema (migration 0400).

The cookie carries a random 256-bit value; the table keeps only its SHA-256, so a database reader cannot sign
in as anybody. A session ends at whichever comes first: the idle timeout (`last_seen_at`), its absolute
lifetime (`expires_at`), sign-out, or its merchant key no longer working (checked by the caller).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

MAX_COOKIE_CHARS = 128


@dataclass(frozen=True, slots=True)
class DashboardSession:
    merchant_id: str
    merchant_name: str
    mode: str  # "test" | "live"
    merchant_key_id: str
    csrf_token: str


def _hash(cookie_value: str) -> bytes:
    return hashlib.sha256(cookie_value.encode("ascii", errors="replace")).digest()


class DashboardSessionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def open(
        self,
        *,
        merchant_id: str,
        merchant_name: str,
        mode: str,
        merchant_key_id: str,
        lifetime: timedelta,
    ) -> str:
        """A new session; returns the cookie value (shown to the browser only, never stored)."""
        cookie_value = secrets.token_urlsafe(32)
        await self.pool.execute(
            """INSERT INTO dashboard_sessions
                   (id_hash, merchant_id, merchant_name, mode, merchant_key_id, csrf_token, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval)""",
            _hash(cookie_value),
            uuid.UUID(merchant_id),
            merchant_name,
            mode,
            uuid.UUID(merchant_key_id),
            secrets.token_urlsafe(32),
            lifetime,
        )
        return cookie_value

    async def touch(self, cookie_value: str | None, idle: timedelta) -> DashboardSession | None:
        """The live session behind a cookie, its idle clock restarted; None when there is none (unknown,
        idle too long or past its lifetime)."""
        if not cookie_value or len(cookie_value) > MAX_COOKIE_CHARS:
            return None
        row = await self.pool.fetchrow(
            """UPDATE dashboard_sessions SET last_seen_at = now()
                WHERE id_hash = $1 AND expires_at > now() AND last_seen_at > now() - $2::interval
            RETURNING merchant_id, merchant_name, mode, merchant_key_id, csrf_token""",
            _hash(cookie_value),
            idle,
        )
        if row is None:
            return None
        return DashboardSession(
            merchant_id=str(row["merchant_id"]),
            merchant_name=row["merchant_name"],
            mode=row["mode"],
            merchant_key_id=str(row["merchant_key_id"]),
            csrf_token=row["csrf_token"],
        )

    async def close(self, cookie_value: str | None) -> None:
        if cookie_value and len(cookie_value) <= MAX_COOKIE_CHARS:
            await self.pool.execute("DELETE FROM dashboard_sessions WHERE id_hash = $1", _hash(cookie_value))

    async def reserve_attempt(self, client: str, window: timedelta, limit: int) -> datetime | None:
        """Count a sign-in attempt as a failure before its key is checked, unless the client already has
        `limit` failures in the window (None: refuse it). Counting first, under a per-client lock, is what
        holds the limit when guesses arrive in parallel: a count read before the check let each of them
        through. A sign-in that turns out not to be a wrong key gives its attempt back (release_attempt)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"dashboard_sign_in:{client}"
            )
            failures = await conn.fetchval(
                """SELECT count(*) FROM dashboard_sign_in_failures
                    WHERE client = $1 AND failed_at > now() - $2::interval""",
                client,
                window,
            )
            if failures >= limit:
                return None
            # clock_timestamp(), read under the lock: distinct per client, so it names this attempt alone.
            return await conn.fetchval(
                """INSERT INTO dashboard_sign_in_failures (client, failed_at) VALUES ($1, clock_timestamp())
                RETURNING failed_at""",
                client,
            )

    async def release_attempt(self, client: str, attempt: datetime) -> None:
        await self.pool.execute(
            "DELETE FROM dashboard_sign_in_failures WHERE client = $1 AND failed_at = $2", client, attempt
        )

    async def clear_failures(self, client: str) -> None:
        await self.pool.execute("DELETE FROM dashboard_sign_in_failures WHERE client = $1", client)

    async def remove_stale(self, keep_failures: timedelta, idle: timedelta) -> None:
        await self.pool.execute(
            "DELETE FROM dashboard_sessions WHERE expires_at < now() OR last_seen_at < now() - $1::interval",
            idle,
        )
        await self.pool.execute(
            "DELETE FROM dashboard_sign_in_failures WHERE failed_at < now() - $1::interval", keep_failures
        )
