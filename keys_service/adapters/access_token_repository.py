"""SQL for access tokens (keys.access_tokens): claims and kid, never the token itself."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from keys_service.adapters import audit_log
from keys_service.domain.access_tokens import AccessClaims
from keys_service.domain.api_keys import KeyMode
from keys_service.domain.audit_events import AuditEvent


@dataclass(frozen=True, slots=True)
class StoredAccessToken:
    claims: AccessClaims
    kid: str
    merchant_id: str
    mode: KeyMode
    revoked_at: datetime | None


_COLUMNS = "jti, merchant_id, session_id, mode, subject, issuer, audience, kid, iat, exp, revoked_at"


def _stored(row: asyncpg.Record) -> StoredAccessToken:
    claims = AccessClaims(
        iss=row["issuer"],
        aud=row["audience"],
        sub=row["subject"],
        sid=str(row["session_id"]),
        iat=int(row["iat"]),
        exp=int(row["exp"]),
        jti=str(row["jti"]),
    )
    return StoredAccessToken(
        claims, row["kid"], str(row["merchant_id"]), KeyMode(row["mode"]), row["revoked_at"]
    )


def _insert_values(
    claims: AccessClaims, *, kid: str, merchant_id: uuid.UUID, mode: KeyMode
) -> tuple[object, ...]:
    """$1..$10 of every insert of a token: jti, merchant_id, session_id, mode, subject, issuer, audience,
    kid, iat, exp."""
    return (
        uuid.UUID(claims.jti),
        merchant_id,
        uuid.UUID(claims.sid),
        mode.value,
        claims.sub,
        claims.iss,
        claims.aud,
        kid,
        claims.iat,
        claims.exp,
    )


async def issue_for_session(
    conn: asyncpg.Connection | asyncpg.Pool,
    claims: AccessClaims,
    *,
    kid: str,
    merchant_id: uuid.UUID,
    mode: KeyMode,
    audit_event: AuditEvent,
) -> tuple[bool, StoredAccessToken]:
    """The session's token and whether this call created it, in one statement (one round trip, one
    transaction): the one it already has (a retry, nothing written; after a reissue, the newest), or this new
    one with its audit row."""
    row = await conn.fetchrow(
        f"""WITH existing AS (
                SELECT {_COLUMNS} FROM access_tokens WHERE session_id = $3 ORDER BY generation DESC LIMIT 1
            ), inserted AS (
                INSERT INTO access_tokens (jti, merchant_id, session_id, mode, subject, issuer, audience, kid,
                                           iat, exp)
                SELECT $1::uuid, $2::uuid, $3::uuid, $4::text, $5::text, $6::text, $7::text, $8::text,
                       $9::bigint, $10::bigint
                 WHERE NOT EXISTS (SELECT 1 FROM existing)
                -- A racing first issue of the same session hits (session_id, generation).
                ON CONFLICT DO NOTHING
                RETURNING {_COLUMNS}
            ), audited AS (
                {audit_log.insert_for_rows("inserted", object_type="access_token", object_id="jti", event="$11", details="$12")}
            )
            SELECT true AS fresh, * FROM inserted UNION ALL SELECT false AS fresh, * FROM existing""",
        *_insert_values(claims, kid=kid, merchant_id=merchant_id, mode=mode),
        audit_event.value,
        audit_log.details_json({"kid": kid, "exp": claims.exp}),
    )
    if row is None:
        # A concurrent call inserted the session's token after this statement's snapshot was taken.
        raced = await by_session(conn, uuid.UUID(claims.sid))
        assert raced is not None
        return False, raced
    return row["fresh"], _stored(row)


async def by_session(
    conn: asyncpg.Connection | asyncpg.Pool, session_id: uuid.UUID
) -> StoredAccessToken | None:
    """The session's newest token (the one a link is built from); revoked or not."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM access_tokens WHERE session_id = $1 ORDER BY generation DESC LIMIT 1",
        session_id,
    )
    return None if row is None else _stored(row)


async def lock_session_tokens(conn: asyncpg.Connection, session_id: uuid.UUID) -> StoredAccessToken | None:
    """Lock every token of a session and return the newest (None when the session has none). Revocation and
    reissue of one session serialise here: each locks the session's first token, which every later one
    waits for."""
    # Oldest first: every caller takes the locks in the same order (generation 1 first), so two concurrent
    # reissues queue on the first row instead of each holding a row the other wants (a deadlock).
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM access_tokens WHERE session_id = $1 ORDER BY generation ASC FOR UPDATE",
        session_id,
    )
    return _stored(rows[-1]) if rows else None


async def revoke_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> list[str]:
    """Revoke every unrevoked token of a session; the jtis this call revoked."""
    rows = await conn.fetch(
        """UPDATE access_tokens SET revoked_at = now()
            WHERE session_id = $1 AND revoked_at IS NULL RETURNING jti""",
        session_id,
    )
    return [str(row["jti"]) for row in rows]


async def insert_generation(
    conn: asyncpg.Connection,
    claims: AccessClaims,
    *,
    kid: str,
    merchant_id: uuid.UUID,
    mode: KeyMode,
) -> tuple[StoredAccessToken, int]:
    """Insert the session's next token; it and its generation. The generation is read by this statement (a
    fresh snapshot), so a reissue that waited for another one's lock numbers after the one that won."""
    row = await conn.fetchrow(
        f"""INSERT INTO access_tokens (jti, merchant_id, session_id, mode, subject, issuer, audience, kid, iat,
                                       exp, generation)
            SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, coalesce(max(generation), 0) + 1
              FROM access_tokens WHERE session_id = $3
            RETURNING {_COLUMNS}, generation""",
        *_insert_values(claims, kid=kid, merchant_id=merchant_id, mode=mode),
    )
    assert row is not None
    return _stored(row), int(row["generation"])


async def by_jti(
    conn: asyncpg.Connection | asyncpg.Pool, jti: uuid.UUID, *, for_update: bool = False
) -> StoredAccessToken | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM access_tokens WHERE jti = $1{lock}", jti)
    return None if row is None else _stored(row)


async def revoke(conn: asyncpg.Connection, jti: uuid.UUID) -> StoredAccessToken:
    row = await conn.fetchrow(
        f"UPDATE access_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE jti = $1 RETURNING {_COLUMNS}",
        jti,
    )
    assert row is not None
    return _stored(row)


async def sessions_for_subject(
    conn: asyncpg.Connection | asyncpg.Pool, subject: str, merchant_id: uuid.UUID, mode: KeyMode, limit: int
) -> list[str]:
    """Sessions whose tokens carry this opaque subject for one merchant and mode, newest first."""
    rows = await conn.fetch(
        """SELECT session_id FROM access_tokens
            WHERE subject = $1 AND merchant_id = $2 AND mode = $3
            GROUP BY session_id ORDER BY max(created_at) DESC LIMIT $4""",
        subject,
        merchant_id,
        mode.value,
        limit,
    )
    return [str(r["session_id"]) for r in rows]
