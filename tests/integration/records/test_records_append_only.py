"""Append-only tables refuse UPDATE, DELETE and TRUNCATE for the runtime role, the owner role and the superuser
alike; only an explicit DDL step (dropping or disabling the trigger) lets the owner change history (issue 20)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from support.database import TestDatabase

REFUSED_BY_PRIVILEGE_OR_TRIGGER = (
    asyncpg.InsufficientPrivilegeError,
    asyncpg.IntegrityConstraintViolationError,
)


@dataclass(frozen=True)
class AppendOnly:
    service: str
    table: str  # schema-qualified
    insert: str  # one row; run as the superuser with foreign keys off (the row's parents are irrelevant)
    update: str  # a change of a column the runtime may not touch either


SESSION = str(uuid.uuid4())
MERCHANT = str(uuid.uuid4())
APPEND_ONLY = (
    AppendOnly(
        "session",
        "session.audit_log",
        f"INSERT INTO session.audit_log (session_id, merchant_id, actor, action) "
        f"VALUES ('{SESSION}', '{MERCHANT}', 'test', 'session_created')",
        "UPDATE session.audit_log SET action = 'forged'",
    ),
    AppendOnly(
        "session",
        "session.session_history",
        f"INSERT INTO session.session_history (session_id, from_status, to_status, source_event_id) "
        f"VALUES ('{SESSION}', 'created', 'paid', 'evt_1')",
        "UPDATE session.session_history SET to_status = 'expired'",
    ),
    AppendOnly(
        "session",
        "session.processed_events",
        f"INSERT INTO session.processed_events (provider, provider_event_id, session_id, outcome) "
        f"VALUES ('stripe', 'evt_1', '{SESSION}', 'applied')",
        "UPDATE session.processed_events SET outcome = 'ignored'",
    ),
    AppendOnly(
        "keys",
        "keys.audit_events",
        f"INSERT INTO keys.audit_events (event_type, merchant_id, object_type, object_id) "
        f"VALUES ('KEY_ISSUED', '{MERCHANT}', 'api_key', 'k1')",
        "UPDATE keys.audit_events SET event_type = 'KEY_REVOKED'",
    ),
    AppendOnly(
        "billing",
        "billing.billing_audit",
        f"INSERT INTO billing.billing_audit (event, invoice_id, merchant_id, mode, number, session_id, currency, "
        f"total) VALUES ('invoice_issued', '{uuid.uuid4()}', '{MERCHANT}', 'live', 'INV-2026-000001', "
        f"'{SESSION}', 'EUR', 100)",
        "UPDATE billing.billing_audit SET total = 1",
    ),
)


async def _connect(db: TestDatabase, service: str, role: str) -> asyncpg.Connection:
    dsn = db.runtime_dsn(service) if role == "runtime" else db.owner_dsn(service)
    return await asyncpg.connect(dsn)


@pytest.fixture
async def seeded(clean_db: TestDatabase) -> AsyncIterator[TestDatabase]:
    admin = await clean_db.admin()
    try:
        async with admin.transaction():
            # Seeding bypasses the foreign keys (the audit rows need no real session) the same explicit way
            # the fixture's reset bypasses the append-only triggers.
            await admin.execute("SET LOCAL session_replication_role = replica")
            for table in APPEND_ONLY:
                await admin.execute(table.insert)
            await admin.execute(
                """INSERT INTO gateway.inbox_events (provider, event_id, event_type, raw_body, status,
                                                     next_attempt_at)
                   VALUES ('stripe', 'evt_inbox', 'checkout.session.completed', '\\x7b7d', 'received', now())"""
            )
    finally:
        await admin.close()
    yield clean_db


@pytest.mark.parametrize("table", APPEND_ONLY, ids=lambda t: t.table)
@pytest.mark.parametrize("role", ["runtime", "owner", "superuser"])
async def test_append_only_tables_refuse_every_change(
    seeded: TestDatabase, table: AppendOnly, role: str
) -> None:
    conn = await (seeded.admin() if role == "superuser" else _connect(seeded, table.service, role))
    try:
        for statement in (table.update, f"DELETE FROM {table.table}", f"TRUNCATE {table.table}"):
            # The runtime role lacks the privilege; the owner and the superuser have it and meet the trigger.
            expected = (
                REFUSED_BY_PRIVILEGE_OR_TRIGGER
                if role == "runtime"
                else asyncpg.IntegrityConstraintViolationError
            )
            with pytest.raises(expected) as refused:
                await conn.execute(statement)
            if role != "runtime":
                assert "append-only" in str(refused.value)
        assert await seeded_count(seeded, table.table) == 1
    finally:
        await conn.close()


async def seeded_count(db: TestDatabase, table: str) -> int:
    admin = await db.admin()
    try:
        return await admin.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await admin.close()


@pytest.mark.parametrize("table", APPEND_ONLY, ids=lambda t: t.table)
async def test_the_owner_bypasses_only_by_disabling_the_trigger_explicitly(
    seeded: TestDatabase, table: AppendOnly
) -> None:
    owner = await _connect(seeded, table.service, "owner")
    try:
        trigger = f"{table.table.split('.')[1]}_append_only"
        tx = owner.transaction()
        await tx.start()
        try:
            await owner.execute(f"ALTER TABLE {table.table} DISABLE TRIGGER {trigger}")
            assert await owner.execute(f"DELETE FROM {table.table}") == "DELETE 1"
        finally:
            await tx.rollback()
        assert await seeded_count(seeded, table.table) == 1
    finally:
        await owner.close()


async def test_issued_invoices_cannot_be_truncated_by_anyone(clean_db: TestDatabase) -> None:
    for role in ("runtime", "owner"):
        conn = await _connect(clean_db, "billing", role)
        try:
            with pytest.raises(REFUSED_BY_PRIVILEGE_OR_TRIGGER):
                await conn.execute("TRUNCATE billing.invoices CASCADE")
        finally:
            await conn.close()
    admin = await clean_db.admin()
    try:
        with pytest.raises(asyncpg.IntegrityConstraintViolationError):
            await admin.execute("TRUNCATE billing.invoices CASCADE")
    finally:
        await admin.close()


@pytest.mark.parametrize("role", ["runtime", "owner", "superuser"])
async def test_the_inbox_keeps_what_the_provider_sent(seeded: TestDatabase, role: str) -> None:
    conn = await (seeded.admin() if role == "superuser" else _connect(seeded, "gateway", role))
    try:
        for statement in (
            "UPDATE gateway.inbox_events SET raw_body = '\\x00'",
            "UPDATE gateway.inbox_events SET event_type = 'forged'",
            "DELETE FROM gateway.inbox_events",
            "TRUNCATE gateway.inbox_events",
        ):
            with pytest.raises(REFUSED_BY_PRIVILEGE_OR_TRIGGER):
                await conn.execute(statement)
        # Moving the event along is what the inbox is for, and stays allowed.
        assert (
            await conn.execute("UPDATE gateway.inbox_events SET status = 'applied', outcome = 'applied'")
            == "UPDATE 1"
        )
    finally:
        await conn.close()


async def test_the_test_reset_still_empties_every_table(seeded: TestDatabase) -> None:
    await seeded.reset()
    for table in [t.table for t in APPEND_ONLY] + ["gateway.inbox_events"]:
        assert await seeded_count(seeded, table) == 0
