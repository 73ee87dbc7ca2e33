"""Migration 0020 on data written before it: an existing merchant's single secret key gets its prefix and last
four from its hint and stays active; an existing access token becomes generation 1 of its session."""

from __future__ import annotations

import uuid

from keys_service.domain.api_keys import generate_merchant_secret_key
from keys_service.domain.merchant_keys import merchant_key_status
from paygate_runtime.migrations import load_migrations
from support.database import TestDatabase


async def test_existing_keys_and_tokens_are_carried_over(clean_db: TestDatabase) -> None:
    schema = f"migration_{uuid.uuid4().hex[:12]}"
    conn = await clean_db.admin()
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"SET search_path TO {schema}")
        migrations = load_migrations("keys")
        before = [m for m in migrations if m.version < "0020"]
        lifecycle = next(m for m in migrations if m.version == "0020")
        for migration in before:
            await conn.execute(migration.sql)

        merchant_id, key_id, session_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        live = generate_merchant_secret_key("live")
        await conn.execute(
            "INSERT INTO merchants (id, name, key_prefix) VALUES ($1, 'Old', 'old')", merchant_id
        )
        await conn.execute(
            """INSERT INTO merchant_secret_keys (id, merchant_id, mode, key_hash, hint)
               VALUES ($1, $2, 'live', $3, $4)""",
            key_id,
            merchant_id,
            live.key_hash,
            live.hint,
        )
        await conn.execute(
            """INSERT INTO access_tokens (jti, merchant_id, session_id, mode, subject, issuer, audience, kid,
                                          iat, exp)
               VALUES ($1, $2, $3, 'live', 'sub', 'iss', 'aud', 'k1', 1, 2)""",
            uuid.uuid4(),
            merchant_id,
            session_id,
        )

        await conn.execute(lifecycle.sql)

        row = await conn.fetchrow("SELECT * FROM merchant_secret_keys WHERE id = $1", key_id)
        assert (row["prefix"], row["last4"]) == ("sk_live_", live.secret[-4:])
        assert bytes(row["key_hash"]) == live.key_hash  # the same secret still authenticates
        status = merchant_key_status(
            revoked_at=row["revoked_at"], expires_at=row["expires_at"], now=row["created_at"]
        )
        assert status.value == "active"
        assert (
            await conn.fetchval("SELECT generation FROM access_tokens WHERE session_id = $1", session_id) == 1
        )
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()
