"""SQL for merchants and their secret keys (keys.merchants, keys.merchant_secret_keys)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from keys_service.domain.api_keys import KeyMode


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
    revoked: bool


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
    idempotency_key: str | None,
) -> uuid.UUID | None:
    """The new key's id; None when (merchant, idempotency key) was used before."""
    return await conn.fetchval(
        """INSERT INTO merchant_secret_keys (id, merchant_id, mode, key_hash, hint, idempotency_key)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (merchant_id, idempotency_key) DO NOTHING
           RETURNING id""",
        uuid.uuid4(),
        merchant_id,
        mode.value,
        key_hash,
        hint,
        idempotency_key,
    )


async def secret_key_by_idempotency_key(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, idempotency_key: str
) -> uuid.UUID | None:
    return await conn.fetchval(
        "SELECT id FROM merchant_secret_keys WHERE merchant_id = $1 AND idempotency_key = $2",
        merchant_id,
        idempotency_key,
    )


async def first_secret_key(conn: asyncpg.Connection, merchant_id: uuid.UUID) -> uuid.UUID | None:
    return await conn.fetchval(
        "SELECT id FROM merchant_secret_keys WHERE merchant_id = $1 ORDER BY created_at, id LIMIT 1",
        merchant_id,
    )


async def secret_key_by_hash(
    conn: asyncpg.Connection | asyncpg.Pool, key_hash: bytes
) -> AuthenticatedKey | None:
    row = await conn.fetchrow(
        """SELECT k.id AS key_id, k.mode, k.key_hash, k.revoked_at, m.id, m.name, m.key_prefix, m.created_at
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
        revoked=row["revoked_at"] is not None,
    )
