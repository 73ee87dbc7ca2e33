"""The dispatcher's claim reads the oldest ready rows of the outbox from its ready index and stops, with 3,000
rows pending as with 3 (issue 16).

What this guards: with statistics taken while the outbox was empty (a fresh deployment's first burst, until
autovacuum's next analyze), PostgreSQL planned the claim as a bitmap scan of every ready row, then a sort. A
burst's fulfilment leaves thousands of rows pending (2,000-5,500 seen in `bench_stack.py`'s 9,000-session
bursts), and every claim, about twenty a second, read and sorted them all: 1.3-12 ms each. The claim is
measured as the dispatcher runs it, by the index entries it reads (pg_stat_user_indexes), on the same
connection, after forcing its statistics out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from session_itest_support import insert_paid_sessions

from session_service.adapters.session_repository import ClaimedRow, claim_outbox
from support.database import TestDatabase

PENDING = 3000
CLAIM = 32
# In order, a claim of 32 reads its 32 entries and the few leased ones before them; a scan of every ready
# row reads all 3,000 (measured on the code before the fix: 3,000).
MOST_ENTRIES = 200


async def _reads(conn: asyncpg.Connection) -> tuple[int, int]:
    """(entries read from outbox_ready, sequential scans of outbox and sessions) so far."""
    await conn.execute("SELECT pg_stat_force_next_flush()")
    row = await conn.fetchrow(
        """SELECT (SELECT coalesce(idx_tup_read, 0) FROM pg_stat_user_indexes
                    WHERE schemaname = 'session' AND indexrelname = 'outbox_ready') AS entries,
                  (SELECT sum(coalesce(seq_scan, 0)) FROM pg_stat_user_tables
                    WHERE schemaname = 'session' AND relname IN ('outbox', 'sessions')) AS scans"""
    )
    assert row is not None
    return int(row["entries"]), int(row["scans"])


@pytest.fixture
async def backlog(clean_db: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the session service's runtime role to an outbox whose statistics were taken while it was
    empty, with PENDING paid sessions' rows ready, ten of the oldest leased to another dispatcher."""
    async with clean_db.admin_connection() as admin:
        await admin.execute("ANALYZE session.outbox")
        await admin.execute("ANALYZE session.sessions")
        await insert_paid_sessions(admin, PENDING)
        await admin.execute(
            """INSERT INTO session.outbox (session_id, kind, next_attempt_at, locked_until)
               SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'fulfil',
                      now() - interval '1 hour' + n * interval '1 ms',
                      CASE WHEN n <= 10 THEN now() + interval '1 minute' END
                 FROM generate_series(1, $1) AS n""",
            PENDING,
        )
    async with clean_db.runtime_connection("session") as conn:
        yield conn


def _numbers(rows: list[ClaimedRow]) -> list[int]:
    return sorted(int(str(row.session_id)[-12:]) for row in rows)


async def test_a_claim_reads_the_oldest_ready_rows_and_stops(backlog: asyncpg.Connection) -> None:
    entries_before, scans_before = await _reads(backlog)
    claimed = await claim_outbox(backlog, CLAIM, 30.0)
    entries, scans = await _reads(backlog)
    # The ten oldest are leased elsewhere: the claim takes the next 32, each with its session.
    assert _numbers(claimed) == list(range(11, 11 + CLAIM))
    assert all(row.kind == "fulfil" and row.session["status"] == "paid" for row in claimed)
    read = entries - entries_before
    assert read <= MOST_ENTRIES, f"the claim of {CLAIM} read {read} index entries with {PENDING} pending"
    # Nor is either table read whole to join the claimed rows to their sessions (a first version of the fix
    # hashed both, on the function's default estimate of 1,000 rows).
    assert scans == scans_before, f"the claim scanned outbox or sessions whole {scans - scans_before} times"


async def test_a_second_claim_takes_the_next_rows(backlog: asyncpg.Connection) -> None:
    first = await claim_outbox(backlog, CLAIM, 30.0)
    second = await claim_outbox(backlog, CLAIM, 30.0)
    assert not {row.id for row in first} & {row.id for row in second}
    assert _numbers(second) == list(range(11 + CLAIM, 11 + 2 * CLAIM))
