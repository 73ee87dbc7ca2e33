"""The migrations chain the audit rows that existed before them (issue 20): a database migrated up to just
before the hash chain, with audit rows in every service, is migrated on, then verifies, and new rows continue
each chain."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest

from paygate_runtime import migrations
from paygate_runtime.cli.audit_cmd import verify
from paygate_runtime.schemas import SERVICES, bootstrap_database, dsn_for_role
from support.database import TestDatabase

CHAIN_VERSION = "0080"


@pytest.fixture
async def old_database(database: TestDatabase) -> AsyncIterator[str]:
    """A fresh database beside the test one (same server): its superuser DSN."""
    name = f"paygate_backfill_{uuid.uuid4().hex[:8]}"
    await bootstrap_database(database.admin_dsn, name)
    admin = dsn_for_role(database.admin_dsn, urlsplit(database.admin_dsn).username or "postgres", name)
    try:
        yield admin
    finally:
        conn = await asyncpg.connect(database.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def test_existing_rows_are_chained_by_the_migration(
    old_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    load = migrations.load_migrations
    monkeypatch.setattr(
        migrations, "load_migrations", lambda service: [m for m in load(service) if m.version < CHAIN_VERSION]
    )
    for service in SERVICES:
        await migrations.migrate(dsn_for_role(old_database, SERVICES[service].owner_role), service)

    a, b = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(old_database)
    try:
        for merchant in (a, b, None, a):
            await conn.execute(
                "INSERT INTO session.audit_log (merchant_id, actor, action, detail) VALUES ($1, 'api', 'x', $2)",
                merchant,
                json.dumps({"merchant": str(merchant)}),
            )
        await conn.execute(
            """INSERT INTO keys.audit_events (event_type, merchant_id, object_type, object_id)
               VALUES ('KEY_ISSUED', $1, 'api_key', 'k1'), ('KEY_REVOKED', $1, 'api_key', 'k1')""",
            a,
        )
        await conn.execute(
            """INSERT INTO billing.billing_audit (event, invoice_id, merchant_id, mode, number, session_id, currency,
                                                  total)
               VALUES ('invoice_issued', $1, $2, 'live', 'INV-1', 's1', 'EUR', 2500)""",
            uuid.uuid4(),
            str(a),
        )
    finally:
        await conn.close()

    monkeypatch.setattr(migrations, "load_migrations", load)
    for service in SERVICES:
        await migrations.migrate(dsn_for_role(old_database, SERVICES[service].owner_role), service)

    results, problems = await verify(old_database, ["session", "keys", "billing"], [])
    assert [(r.service, r.ok, r.entries) for r in results] == [
        ("session", True, 4),
        ("keys", True, 2),
        ("billing", True, 1),
    ]
    assert not problems
    conn = await asyncpg.connect(old_database)
    try:
        rows = await conn.fetch("SELECT chain, chain_seq FROM session.audit_log ORDER BY id")
        assert [(r["chain"], r["chain_seq"]) for r in rows] == [
            (str(a), 1),
            (str(b), 1),
            ("system", 1),
            (str(a), 2),
        ]
        # The append-only trigger is back after the backfill.
        with pytest.raises(asyncpg.IntegrityConstraintViolationError):
            await conn.execute("UPDATE session.audit_log SET actor = 'x'")
        await conn.execute(
            "INSERT INTO session.audit_log (merchant_id, actor, action) VALUES ($1, 'api', 'after')", a
        )
        assert await conn.fetchval("SELECT chain_seq FROM session.audit_log WHERE action = 'after'") == 3
    finally:
        await conn.close()
    results, _ = await verify(old_database, ["session"], [])
    assert results[0].ok and results[0].entries == 5
