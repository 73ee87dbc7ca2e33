"""Customer portal sessions in the gateway schema (migration 0100: gateway.portal_sessions).

The portal's cookie carries a random value; the table keeps only its SHA-256, so a database reader cannot
open anybody's portal. A row ties the cookie to the access token (jti) it was traded for, its session and
merchant, and the CSRF token of the portal's forms.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

MAX_COOKIE_CHARS = 128


@dataclass(frozen=True, slots=True)
class PortalSession:
    jti: str
    session_id: str
    merchant_id: str
    csrf_token: str


def _hash(session_key: str) -> bytes:
    return hashlib.sha256(session_key.encode("ascii", errors="replace")).digest()


def _usable(session_key: str | None) -> bool:
    return bool(session_key) and len(session_key or "") <= MAX_COOKIE_CHARS


class PortalSessionsRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def open(
        self,
        session_key: str,
        *,
        jti: str,
        session_id: str,
        merchant_id: str,
        csrf_token: str,
        lifetime_s: int,
    ) -> None:
        await self.pool.execute(
            """INSERT INTO portal_sessions (id_hash, jti, session_id, merchant_id, csrf_token, expires_at)
               VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))""",
            _hash(session_key),
            uuid.UUID(jti),
            uuid.UUID(session_id),
            uuid.UUID(merchant_id),
            csrf_token,
            float(lifetime_s),
        )

    async def current(self, session_key: str | None) -> PortalSession | None:
        """The live portal session of a cookie value; None for none, an expired one, or a malformed value."""
        if session_key is None or not _usable(session_key):
            return None
        row = await self.pool.fetchrow(
            """SELECT jti, session_id, merchant_id, csrf_token FROM portal_sessions
                WHERE id_hash = $1 AND expires_at > now()""",
            _hash(session_key),
        )
        if row is None:
            return None
        return PortalSession(
            jti=str(row["jti"]),
            session_id=str(row["session_id"]),
            merchant_id=str(row["merchant_id"]),
            csrf_token=str(row["csrf_token"]),
        )

    async def end(self, session_key: str | None) -> None:
        if session_key is not None and _usable(session_key):
            await self.pool.execute("DELETE FROM portal_sessions WHERE id_hash = $1", _hash(session_key))

    async def remove_expired(self, grace: timedelta = timedelta(hours=1)) -> None:
        """Rows past their expiry by more than `grace` (an expired row already refuses the cookie)."""
        await self.pool.execute("DELETE FROM portal_sessions WHERE expires_at < now() - $1::interval", grace)
