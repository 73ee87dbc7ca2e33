"""The refund-effects worker's two questions, asked every second, read no table whole with 3,000 paid sessions
(issue 16).

What this guards: `RefundEffects.run_once` asks, once a second on every session service, which sessions' keys
are not yet as they should be (`key_access_due`) and which refunds still need a credit note
(`credit_notes_due`). With statistics taken while `sessions` was nearly empty (a fresh deployment's first burst,
and every burst until autovacuum's next analyze), PostgreSQL read `sessions` whole for them: the sequential
scans of `sessions` that PostgreSQL's own counters still found during `bench_stack.py`'s bursts once the
fulfilment statements read by primary key. Measured as the service runs them, on its runtime role's
connection, by the tables' sequential scans (pg_stat_user_tables).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from session_itest_support import insert_paid_sessions, rows_read_by_seq_scans

from session_service.adapters import refund_repository
from support.database import TestDatabase

ROWS = 3000
PASSES = 8


@pytest.fixture
async def paid(clean_db: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    """The session service's runtime connection to ROWS fulfilled sessions, one of them refunded and its
    keys not yet revoked, under statistics taken while the tables were empty."""
    async with clean_db.admin_connection() as admin:
        for table in ("sessions", "refunds"):
            await admin.execute(f"ANALYZE session.{table}")
        await insert_paid_sessions(admin, ROWS)
        await admin.execute(
            """UPDATE session.sessions SET fulfilment_status = 'done', invoice_id = 'inv_' || paid_reference"""
        )
        await admin.execute(
            """UPDATE session.sessions SET key_access = 'revoked', status = 'refunded'
                WHERE id = '00000000-0000-4000-8000-000000000007'"""
        )
    async with clean_db.runtime_connection("session") as conn:
        yield conn


async def test_the_workers_questions_read_sessions_by_index(paid: asyncpg.Connection) -> None:
    before = (await rows_read_by_seq_scans(paid, ["sessions"]))["sessions"]
    # Eight passes on one connection, as the worker asks them: after five, PostgreSQL may plan each prepared
    # statement once for any limit (a generic plan), which must not read the table whole either.
    for _ in range(PASSES):
        keys_due = await refund_repository.key_access_due(paid, 50)
        credits_due = await refund_repository.credit_notes_due(paid, 50)
        assert [str(row["id"]) for row in keys_due] == ["00000000-0000-4000-8000-000000000007"]
        assert credits_due == []
    after = (await rows_read_by_seq_scans(paid, ["sessions"]))["sessions"]
    # A few rows are fine (a scan PostgreSQL may choose for a page or two); a table read whole is 3,000.
    assert after - before < ROWS // 10, (
        f"{PASSES} passes of the worker's questions scanned {after - before} rows"
    )
