"""SQL for customer API keys (keys.api_keys). Functions take a connection so callers own the transaction."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from keys_service.adapters import audit_log
from keys_service.domain.api_keys import KeyMode
from keys_service.domain.audit_events import AuditEvent
from keys_service.domain.key_permissions import ALL_SCOPES, Network, compile_allowlist
from keys_service.domain.key_status import KeyFacts, KeyStatus, evaluate_status

_COLUMNS = """id, merchant_id, session_id, mode, prefix, hint, (secret_ciphertext IS NOT NULL) AS has_secret,
              revealed_at, metadata, rolled_from_id, roll_idempotency_key, created_at, expires_at, revoked_at,
              last_used_at, granted_scopes, scopes, ip_allowlist, suspended_at"""


@dataclass(frozen=True, slots=True)
class StoredApiKey:
    """A customer key row without its hash or ciphertext."""

    id: str
    merchant_id: str
    session_id: str
    mode: KeyMode
    prefix: str
    hint: str
    has_secret: bool
    revealed_at: datetime | None
    metadata: dict[str, str]
    rolled_from_id: str | None
    roll_idempotency_key: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    granted_scopes: tuple[str, ...] = ALL_SCOPES
    scopes: tuple[str, ...] = ALL_SCOPES
    ip_allowlist: tuple[Network, ...] = ()
    # Set while a dispute on the key's session is open (contract §8).
    suspended_at: datetime | None = None

    def status_at(self, now: datetime) -> KeyStatus:
        return evaluate_status(
            revoked_at=self.revoked_at, expires_at=self.expires_at, now=now, suspended_at=self.suspended_at
        )


def _stored(row: asyncpg.Record) -> StoredApiKey:
    metadata = row["metadata"]
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return StoredApiKey(
        id=str(row["id"]),
        merchant_id=str(row["merchant_id"]),
        session_id=str(row["session_id"]),
        mode=KeyMode(row["mode"]),
        prefix=row["prefix"],
        hint=row["hint"],
        has_secret=row["has_secret"],
        revealed_at=row["revealed_at"],
        metadata={str(k): str(v) for k, v in (metadata or {}).items()},
        rolled_from_id=str(row["rolled_from_id"]) if row["rolled_from_id"] else None,
        roll_idempotency_key=row["roll_idempotency_key"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
        granted_scopes=tuple(row["granted_scopes"]),
        scopes=tuple(row["scopes"]),
        ip_allowlist=tuple(row["ip_allowlist"]),
        suspended_at=row.get("suspended_at"),
    )


async def issue_for_session(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    key_id: uuid.UUID,
    merchant_id: uuid.UUID,
    session_id: uuid.UUID,
    mode: KeyMode,
    prefix: str,
    hint: str,
    key_hash: bytes,
    ciphertext: bytes,
    metadata: dict[str, str],
    audit_event: AuditEvent,
    audit_details: dict[str, Any],
    scopes: tuple[str, ...] = ALL_SCOPES,
) -> tuple[bool, StoredApiKey]:
    """The session's issued key and whether this call created it, in one statement (one round trip, one
    transaction): the key it already has (a retry; nothing written), or this new key with its audit row."""
    row = await conn.fetchrow(
        f"""WITH existing AS (
                SELECT {_COLUMNS} FROM api_keys WHERE session_id = $3 AND rolled_from_id IS NULL
            ), inserted AS (
                INSERT INTO api_keys (id, merchant_id, session_id, mode, prefix, hint, key_hash,
                                      secret_ciphertext, metadata, granted_scopes, scopes)
                SELECT $1::uuid, $2::uuid, $3::uuid, $4::text, $5::text, $6::text, $7::bytea, $8::bytea,
                       $9::jsonb, $12::text[], $12::text[]
                 WHERE NOT EXISTS (SELECT 1 FROM existing)
                ON CONFLICT (session_id) WHERE rolled_from_id IS NULL DO NOTHING
                RETURNING {_COLUMNS}
            ), audited AS (
                {audit_log.insert_for_rows("inserted", object_type="api_key", object_id="id", event="$10", details="$11")}
            )
            SELECT true AS fresh, * FROM inserted UNION ALL SELECT false AS fresh, * FROM existing""",
        key_id,
        merchant_id,
        session_id,
        mode.value,
        prefix,
        hint,
        key_hash,
        ciphertext,
        json.dumps(metadata),
        audit_event.value,
        audit_log.details_json(audit_details),
        list(scopes),
    )
    if row is None:
        # A concurrent call inserted the session's key after this statement's snapshot was taken.
        raced = await get_issued_for_session(conn, session_id)
        assert raced is not None
        return False, raced
    return row["fresh"], _stored(row)


async def insert_rolled(
    conn: asyncpg.Connection,
    *,
    key_id: uuid.UUID,
    previous: StoredApiKey,
    hint: str,
    key_hash: bytes,
    idempotency_key: str | None,
    successor_expires_at: datetime | None = None,
) -> StoredApiKey:
    """The successor of a rolled key. Its secret went to the merchant in the RollKey reply, so it counts as
    revealed at once and no ciphertext is kept."""
    # The successor keeps the grant, the customer's narrowing, the allow-list and any earlier expiry the
    # customer set: a roll changes the secret, never what the key may do.
    row = await conn.fetchrow(
        f"""INSERT INTO api_keys (id, merchant_id, session_id, mode, prefix, hint, key_hash, revealed_at,
                                  metadata, rolled_from_id, roll_idempotency_key, granted_scopes, scopes,
                                  ip_allowlist, expires_at)
            SELECT $1, $2, $3, $4, $5, $6, $7, now(), $8::jsonb, $9, $10, p.granted_scopes, p.scopes,
                   p.ip_allowlist, $11
              FROM api_keys AS p WHERE p.id = $9
            RETURNING {_COLUMNS}""",
        key_id,
        uuid.UUID(previous.merchant_id),
        uuid.UUID(previous.session_id),
        previous.mode.value,
        previous.prefix,
        hint,
        key_hash,
        json.dumps(previous.metadata),
        uuid.UUID(previous.id),
        idempotency_key,
        successor_expires_at,
    )
    assert row is not None
    return _stored(row)


async def get_by_id(
    conn: asyncpg.Connection, key_id: uuid.UUID, merchant_id: uuid.UUID, *, for_update: bool = False
) -> StoredApiKey | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1 AND merchant_id = $2{lock}", key_id, merchant_id
    )
    return None if row is None else _stored(row)


async def get_issued_for_session(
    conn: asyncpg.Connection, session_id: uuid.UUID, *, for_update: bool = False
) -> StoredApiKey | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM api_keys WHERE session_id = $1 AND rolled_from_id IS NULL{lock}", session_id
    )
    return None if row is None else _stored(row)


async def get_current_for_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> StoredApiKey | None:
    """The session's newest key: the issued one, or its latest successor after rolls."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM api_keys WHERE session_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
        session_id,
    )
    return None if row is None else _stored(row)


async def get_successor(conn: asyncpg.Connection, key_id: uuid.UUID) -> StoredApiKey | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE rolled_from_id = $1", key_id)
    return None if row is None else _stored(row)


async def read_ciphertext(conn: asyncpg.Connection, key_id: uuid.UUID) -> bytes | None:
    return await conn.fetchval("SELECT secret_ciphertext FROM api_keys WHERE id = $1", key_id)


async def mark_revealed(conn: asyncpg.Connection, key_id: uuid.UUID) -> StoredApiKey:
    """Erase the ciphertext: after the reveal only the hash remains."""
    row = await conn.fetchrow(
        f"""UPDATE api_keys SET secret_ciphertext = NULL, revealed_at = now() WHERE id = $1
            RETURNING {_COLUMNS}""",
        key_id,
    )
    assert row is not None
    return _stored(row)


async def end_for_roll(conn: asyncpg.Connection, key_id: uuid.UUID, expires_at: datetime) -> StoredApiKey:
    """Set the rolled key's end of grace. An unrevealed secret is dropped too: the key is being replaced,
    so its plaintext must not surface later."""
    row = await conn.fetchrow(
        f"""UPDATE api_keys SET expires_at = $2, secret_ciphertext = NULL WHERE id = $1
            RETURNING {_COLUMNS}""",
        key_id,
        expires_at,
    )
    assert row is not None
    return _stored(row)


async def revoke(conn: asyncpg.Connection, key_id: uuid.UUID) -> StoredApiKey:
    row = await conn.fetchrow(
        f"""UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()), secret_ciphertext = NULL
             WHERE id = $1 RETURNING {_COLUMNS}""",
        key_id,
    )
    assert row is not None
    return _stored(row)


async def list_for_merchant(
    conn: asyncpg.Connection,
    merchant_id: uuid.UUID,
    *,
    mode: KeyMode | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    session_id: uuid.UUID | None = None,
) -> list[StoredApiKey]:
    """Newest first; `limit + 1` rows are read by the caller to learn whether more follow. With `session_id`,
    only that session's keys (read by api_keys_by_session)."""
    args: list[Any] = [merchant_id, mode.value if mode else None, limit]
    cursor = ""
    if after is not None:
        cursor = " AND (created_at, id) < ($4, $5)"
        args.extend(after)
    if session_id is not None:
        args.append(session_id)
        cursor += f" AND session_id = ${len(args)}"
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM api_keys
             WHERE merchant_id = $1 AND ($2::text IS NULL OR mode = $2){cursor}
             ORDER BY created_at DESC, id DESC LIMIT $3""",
        *args,
    )
    return [_stored(r) for r in rows]


async def cursor_position(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, mode: KeyMode | None, key_id: uuid.UUID
) -> tuple[datetime, uuid.UUID] | None:
    """Where the key sits in list_for_merchant's order, if it is an item of that list (merchant and mode)."""
    row = await conn.fetchrow(
        """SELECT created_at, id FROM api_keys
            WHERE id = $1 AND merchant_id = $2 AND ($3::text IS NULL OR mode = $3)""",
        key_id,
        merchant_id,
        mode.value if mode else None,
    )
    return None if row is None else (row["created_at"], row["id"])


async def facts_by_hash(
    conn: asyncpg.Connection | asyncpg.Pool, key_hash: bytes
) -> tuple[bytes, KeyFacts] | None:
    """The stored hash and verification facts of the key with this hash, if any."""
    row = await conn.fetchrow(
        """SELECT id, merchant_id, session_id, mode, key_hash, expires_at, revoked_at, scopes, ip_allowlist,
                  suspended_at
             FROM api_keys WHERE key_hash = $1""",
        key_hash,
    )
    if row is None:
        return None
    facts = KeyFacts(
        key_id=str(row["id"]),
        merchant_id=str(row["merchant_id"]),
        session_id=str(row["session_id"]),
        mode=KeyMode(row["mode"]),
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        scopes=tuple(row["scopes"]),
        ip_allowlist=compile_allowlist(row["ip_allowlist"]),
        suspended_at=row["suspended_at"],
    )
    return bytes(row["key_hash"]), facts


async def touch_last_used(conn: asyncpg.Connection | asyncpg.Pool, used: dict[str, datetime]) -> None:
    """One statement for a whole batch of successful checks; never moves last_used_at backwards."""
    if not used:
        return
    ids = [uuid.UUID(k) for k in used]
    await conn.execute(
        """UPDATE api_keys AS k SET last_used_at = u.at
             FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at)
            WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)""",
        ids,
        list(used.values()),
    )


async def update_settings(
    conn: asyncpg.Connection,
    key_id: uuid.UUID,
    *,
    scopes: tuple[str, ...] | None,
    ip_allowlist: tuple[Network, ...] | None,
    expires_at: datetime | None,
) -> StoredApiKey:
    """Apply the customer's changes; a None argument leaves that setting as it is."""
    row = await conn.fetchrow(
        f"""UPDATE api_keys
               SET scopes = coalesce($2::text[], scopes),
                   ip_allowlist = coalesce($3::cidr[], ip_allowlist),
                   expires_at = coalesce($4::timestamptz, expires_at)
             WHERE id = $1 RETURNING {_COLUMNS}""",
        key_id,
        None if scopes is None else list(scopes),
        None if ip_allowlist is None else list(ip_allowlist),
        expires_at,
    )
    assert row is not None
    return _stored(row)


async def session_key_ids(conn: asyncpg.Connection | asyncpg.Pool, session_id: uuid.UUID) -> list[uuid.UUID]:
    """Every key of a session: the issued one and its rolled successors."""
    rows = await conn.fetch("SELECT id FROM api_keys WHERE session_id = $1", session_id)
    return [r["id"] for r in rows]


async def record_usage(
    conn: asyncpg.Connection | asyncpg.Pool,
    used: dict[str, datetime],
    counts: dict[tuple[str, date], int],
) -> None:
    """One statement (so one transaction and one round trip) per flush: last_used_at, never moved backwards,
    and the per-day counters. A failed flush that is retried therefore counts nothing twice."""
    if not used and not counts:
        return
    items = list(counts.items())
    await conn.execute(
        """WITH touched AS (
               UPDATE api_keys AS k SET last_used_at = u.at
                 FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at)
                WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)
               RETURNING 1
           )
           INSERT INTO api_key_usage_daily AS d (key_id, day, count)
           SELECT c.id, c.day, c.n FROM unnest($3::uuid[], $4::date[], $5::bigint[]) AS c(id, day, n)
             JOIN api_keys AS k ON k.id = c.id
           ON CONFLICT (key_id, day) DO UPDATE SET count = d.count + excluded.count""",
        [uuid.UUID(k) for k in used],
        list(used.values()),
        [uuid.UUID(k) for (k, _d), _n in items],
        [d for (_k, d), _n in items],
        [n for _slot, n in items],
    )


async def daily_usage(
    conn: asyncpg.Connection | asyncpg.Pool, key_ids: list[uuid.UUID], first_day: date
) -> dict[date, int]:
    rows = await conn.fetch(
        """SELECT day, sum(count)::bigint AS n FROM api_key_usage_daily
            WHERE key_id = ANY($1::uuid[]) AND day >= $2 GROUP BY day""",
        key_ids,
        first_day,
    )
    return {r["day"]: int(r["n"]) for r in rows}
