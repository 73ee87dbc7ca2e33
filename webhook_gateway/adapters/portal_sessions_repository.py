"""Customer portal sessions in the gateway schema (migration 0100: gateway.portal_sessions).

The portal's cookie carries a random value; the table keeps only its SHA-256, so a database reader cannot
open anybody's portal. A row ties the cookie to the access token (jti) it was traded for, its session and
merchant, and the CSRF token of the portal's forms.

It also records whether the visitor proved they read the purchase's email address (migration 0930): the
portal shows the customer's other purchases with the merchant only then. The code mailed for that proof is
kept as an HMAC keyed by the cookie's value, which only the visitor's browser holds.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import asyncpg

MAX_COOKIE_CHARS = 128
# A mailed code: valid 15 minutes, five wrong tries, and at most three codes a purchase an hour (across every
# browser that holds its link), so that a link's holder can neither guess a code nor flood the address.
EMAIL_CODE_LIFETIME_S = 15 * 60
MAX_EMAIL_CODE_ATTEMPTS = 5
MAX_EMAIL_CODES_PER_HOUR = 3
CodeCheck = Literal["proven", "wrong", "no_code", "too_many_attempts"]


@dataclass(frozen=True, slots=True)
class PortalSession:
    jti: str
    session_id: str
    merchant_id: str
    csrf_token: str
    # The visitor proved they read the purchase's email address (a mailed code, in this browser).
    email_proven: bool = False


def _hash(session_key: str) -> bytes:
    return hashlib.sha256(session_key.encode("ascii", errors="replace")).digest()


def _code_mac(session_key: str, code: str) -> bytes:
    return hmac.new(
        session_key.encode("ascii", errors="replace"), b"portal-email-code:" + code.encode(), hashlib.sha256
    ).digest()


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
        email_proven: bool = False,
    ) -> None:
        await self.pool.execute(
            """INSERT INTO portal_sessions (id_hash, jti, session_id, merchant_id, csrf_token, expires_at,
                                            email_proven_at)
               VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6),
                       CASE WHEN $7 THEN now() END)""",
            _hash(session_key),
            uuid.UUID(jti),
            uuid.UUID(session_id),
            uuid.UUID(merchant_id),
            csrf_token,
            float(lifetime_s),
            email_proven,
        )

    async def current(self, session_key: str | None) -> PortalSession | None:
        """The live portal session of a cookie value; None for none, an expired one, or a malformed value."""
        if session_key is None or not _usable(session_key):
            return None
        row = await self.pool.fetchrow(
            """SELECT jti, session_id, merchant_id, csrf_token, email_proven_at IS NOT NULL AS email_proven
                 FROM portal_sessions
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
            email_proven=bool(row["email_proven"]),
        )

    async def issue_email_code(self, session_key: str, session_id: str, code: str) -> bool:
        """Keep `code` as this portal session's email code (it replaces an earlier one); False, and nothing
        kept, when the purchase was already sent MAX_EMAIL_CODES_PER_HOUR codes in the last hour."""
        if not _usable(session_key):
            return False
        purchase = uuid.UUID(session_id)
        async with self.pool.acquire() as conn, conn.transaction():
            # Two browsers asking at once must not both pass the count: one purchase's issues take turns.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('portal_email_codes:' || $1, 0))",
                session_id,
            )
            sent = await conn.fetchval(
                """SELECT count(*) FROM portal_email_codes
                    WHERE session_id = $1 AND created_at > now() - interval '1 hour'""",
                purchase,
            )
            if sent >= MAX_EMAIL_CODES_PER_HOUR:
                return False
            await conn.execute(
                """INSERT INTO portal_email_codes (portal_hash, session_id, code_mac, expires_at)
                   VALUES ($1, $2, $3, now() + make_interval(secs => $4))""",
                _hash(session_key),
                purchase,
                _code_mac(session_key, code),
                float(EMAIL_CODE_LIFETIME_S),
            )
        return True

    async def has_email_code(self, session_key: str | None) -> bool:
        """A code was mailed for this portal session and can still be entered."""
        if session_key is None or not _usable(session_key):
            return False
        return bool(
            await self.pool.fetchval(
                """SELECT attempts < $2 FROM portal_email_codes
                    WHERE portal_hash = $1 AND expires_at > now()
                    ORDER BY created_at DESC LIMIT 1""",
                _hash(session_key),
                MAX_EMAIL_CODE_ATTEMPTS,
            )
        )

    async def check_email_code(self, session_key: str, code: str) -> CodeCheck:
        """Compare `code` with this portal session's newest live code (constant time). A match proves the
        session's email address and retires the code; a miss counts against its five tries."""
        if not _usable(session_key):
            return "no_code"
        portal = _hash(session_key)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """SELECT id, code_mac, attempts FROM portal_email_codes
                    WHERE portal_hash = $1 AND expires_at > now()
                    ORDER BY created_at DESC LIMIT 1
                      FOR UPDATE""",
                portal,
            )
            if row is None:
                return "no_code"
            if row["attempts"] >= MAX_EMAIL_CODE_ATTEMPTS:
                return "too_many_attempts"
            if not hmac.compare_digest(bytes(row["code_mac"]), _code_mac(session_key, code)):
                await conn.execute(
                    "UPDATE portal_email_codes SET attempts = attempts + 1 WHERE id = $1", row["id"]
                )
                return "too_many_attempts" if row["attempts"] + 1 >= MAX_EMAIL_CODE_ATTEMPTS else "wrong"
            # Retired, not deleted: it still counts towards the purchase's codes of the hour.
            await conn.execute("UPDATE portal_email_codes SET expires_at = now() WHERE id = $1", row["id"])
            proven = await conn.execute(
                """UPDATE portal_sessions SET email_proven_at = now()
                    WHERE id_hash = $1 AND expires_at > now()""",
                portal,
            )
        return "proven" if proven == "UPDATE 1" else "no_code"

    async def end(self, session_key: str | None) -> None:
        if session_key is not None and _usable(session_key):
            await self.pool.execute("DELETE FROM portal_sessions WHERE id_hash = $1", _hash(session_key))

    async def remove_expired(self, grace: timedelta = timedelta(hours=1)) -> None:
        """Rows past their expiry by more than `grace` (an expired row already refuses the cookie)."""
        await self.pool.execute("DELETE FROM portal_sessions WHERE expires_at < now() - $1::interval", grace)
        # A code outlives its portal session only as long as it counts towards the hourly limit.
        await self.pool.execute("DELETE FROM portal_email_codes WHERE created_at < now() - interval '1 day'")
