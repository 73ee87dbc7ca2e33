"""SQL for merchants and their secret keys (keys.merchants, keys.merchant_secret_keys)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from keys_service.domain.api_keys import KeyMode
from keys_service.domain.merchant_keys import MerchantKeyFacts


@dataclass(frozen=True, slots=True)
class StoredMerchant:
    id: str
    name: str
    key_prefix: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuthenticatedKey:
    merchant: StoredMerchant
    key_id: str
    mode: KeyMode
    key_hash: bytes
    revoked_at: datetime | None
    expires_at: datetime | None


def _merchant(row: asyncpg.Record) -> StoredMerchant:
    return StoredMerchant(str(row["id"]), row["name"], row["key_prefix"], row["created_at"])


async def insert_merchant(
    conn: asyncpg.Connection, *, name: str, key_prefix: str, idempotency_key: str | None
) -> StoredMerchant | None:
    """None when the idempotency key was used before (the caller then reads that merchant)."""
    row = await conn.fetchrow(
        """INSERT INTO merchants (id, name, key_prefix, idempotency_key) VALUES ($1, $2, $3, $4)
           ON CONFLICT (idempotency_key) DO NOTHING
           RETURNING id, name, key_prefix, created_at""",
        uuid.uuid4(),
        name,
        key_prefix,
        idempotency_key,
    )
    return None if row is None else _merchant(row)


async def get_by_idempotency_key(conn: asyncpg.Connection, idempotency_key: str) -> StoredMerchant | None:
    row = await conn.fetchrow(
        "SELECT id, name, key_prefix, created_at FROM merchants WHERE idempotency_key = $1", idempotency_key
    )
    return None if row is None else _merchant(row)


async def get(conn: asyncpg.Connection | asyncpg.Pool, merchant_id: uuid.UUID) -> StoredMerchant | None:
    row = await conn.fetchrow(
        "SELECT id, name, key_prefix, created_at FROM merchants WHERE id = $1", merchant_id
    )
    return None if row is None else _merchant(row)


async def insert_secret_key(
    conn: asyncpg.Connection,
    *,
    merchant_id: uuid.UUID,
    mode: KeyMode,
    key_hash: bytes,
    hint: str,
    prefix: str,
    last4: str,
    idempotency_key: str | None,
    rolled_from_id: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """The new key's id; None when (merchant, idempotency key) was used before."""
    return await conn.fetchval(
        """INSERT INTO merchant_secret_keys
               (id, merchant_id, mode, key_hash, hint, prefix, last4, idempotency_key, rolled_from_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (merchant_id, idempotency_key) DO NOTHING
           RETURNING id""",
        uuid.uuid4(),
        merchant_id,
        mode.value,
        key_hash,
        hint,
        prefix,
        last4,
        idempotency_key,
        rolled_from_id,
    )


async def secret_key_by_idempotency_key(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, idempotency_key: str
) -> MerchantKeyFacts | None:
    row = await conn.fetchrow(
        f"SELECT {_KEY_COLUMNS} FROM merchant_secret_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        merchant_id,
        idempotency_key,
    )
    return None if row is None else _key_facts(row)


async def first_secret_key(conn: asyncpg.Connection, merchant_id: uuid.UUID) -> uuid.UUID | None:
    return await conn.fetchval(
        "SELECT id FROM merchant_secret_keys WHERE merchant_id = $1 ORDER BY created_at, id LIMIT 1",
        merchant_id,
    )


async def secret_key_by_hash(
    conn: asyncpg.Connection | asyncpg.Pool, key_hash: bytes
) -> AuthenticatedKey | None:
    row = await conn.fetchrow(
        """SELECT k.id AS key_id, k.mode, k.key_hash, k.revoked_at, k.expires_at,
                  m.id, m.name, m.key_prefix, m.created_at
             FROM merchant_secret_keys k JOIN merchants m ON m.id = k.merchant_id
            WHERE k.key_hash = $1""",
        key_hash,
    )
    if row is None:
        return None
    return AuthenticatedKey(
        merchant=_merchant(row),
        key_id=str(row["key_id"]),
        mode=KeyMode(row["mode"]),
        key_hash=bytes(row["key_hash"]),
        revoked_at=row["revoked_at"],
        expires_at=row["expires_at"],
    )


_KEY_COLUMNS = (
    "id, merchant_id, mode, prefix, last4, created_at, last_used_at, expires_at, revoked_at, rolled_from_id"
)


def _key_facts(row: asyncpg.Record) -> MerchantKeyFacts:
    return MerchantKeyFacts(
        id=str(row["id"]),
        merchant_id=str(row["merchant_id"]),
        mode=KeyMode(row["mode"]),
        prefix=row["prefix"],
        last4=row["last4"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        rolled_from_id=None if row["rolled_from_id"] is None else str(row["rolled_from_id"]),
    )


async def lock_merchant(conn: asyncpg.Connection, merchant_id: uuid.UUID) -> bool:
    """Serialise changes to one merchant's keys (the last-active-key rule reads the others): False when the
    merchant does not exist."""
    return (
        await conn.fetchval("SELECT true FROM merchants WHERE id = $1 FOR UPDATE", merchant_id)
    ) is not None


async def secret_key(
    conn: asyncpg.Connection | asyncpg.Pool, merchant_id: uuid.UUID, key_id: uuid.UUID
) -> MerchantKeyFacts | None:
    row = await conn.fetchrow(
        f"SELECT {_KEY_COLUMNS} FROM merchant_secret_keys WHERE merchant_id = $1 AND id = $2",
        merchant_id,
        key_id,
    )
    return None if row is None else _key_facts(row)


async def secret_keys_of_mode(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, mode: KeyMode
) -> list[MerchantKeyFacts]:
    """Every key of a merchant's mode that has not been revoked (what the last-key rule looks at)."""
    rows = await conn.fetch(
        f"""SELECT {_KEY_COLUMNS} FROM merchant_secret_keys
             WHERE merchant_id = $1 AND mode = $2 AND revoked_at IS NULL""",
        merchant_id,
        mode.value,
    )
    return [_key_facts(row) for row in rows]


async def list_secret_keys(
    conn: asyncpg.Connection | asyncpg.Pool,
    merchant_id: uuid.UUID,
    mode: KeyMode | None,
    *,
    limit: int,
    after: uuid.UUID | None,
) -> list[MerchantKeyFacts]:
    """Newest first; `after` is the cursor (a key id of the same merchant), read limit + 1 to see more."""
    rows = await conn.fetch(
        f"""SELECT {_KEY_COLUMNS} FROM merchant_secret_keys k
             WHERE merchant_id = $1 AND ($2::text IS NULL OR mode = $2)
               AND ($3::uuid IS NULL OR (created_at, id) < (
                    SELECT created_at, id FROM merchant_secret_keys WHERE id = $3 AND merchant_id = $1))
             ORDER BY created_at DESC, id DESC
             LIMIT $4""",
        merchant_id,
        None if mode is None else mode.value,
        after,
        limit + 1,
    )
    return [_key_facts(row) for row in rows]


async def set_expiry(conn: asyncpg.Connection, key_id: uuid.UUID, expires_at: datetime) -> MerchantKeyFacts:
    row = await conn.fetchrow(
        f"UPDATE merchant_secret_keys SET expires_at = $2 WHERE id = $1 RETURNING {_KEY_COLUMNS}",
        key_id,
        expires_at,
    )
    assert row is not None
    return _key_facts(row)


async def revoke_secret_key(conn: asyncpg.Connection, key_id: uuid.UUID) -> MerchantKeyFacts:
    row = await conn.fetchrow(
        f"""UPDATE merchant_secret_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
            RETURNING {_KEY_COLUMNS}""",
        key_id,
    )
    assert row is not None
    return _key_facts(row)


async def touch_last_used(conn: asyncpg.Connection | asyncpg.Pool, used: dict[str, datetime]) -> None:
    """One statement for a whole batch of authentications; never moves last_used_at backwards."""
    if not used:
        return
    await conn.execute(
        """UPDATE merchant_secret_keys AS k SET last_used_at = u.at
             FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at)
            WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)""",
        [uuid.UUID(k) for k in used],
        list(used.values()),
    )
