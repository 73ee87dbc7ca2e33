"""A group of payment events reads its sessions and their prior outcomes by primary key, with 3,000 sessions
and processed events as with 3 (issue 16).

What this guards: the group read joins the events (an `unnest` of arrays) to `sessions` and `processed_events`.
With statistics taken while both tables were nearly empty (a fresh deployment's first burst, and every burst
until autovacuum's next analyze), PostgreSQL planned it as hash joins that read both tables whole: in
`bench_stack.py`'s two bursts of 9,000 (18,000 sessions), 343 sequential scans of `processed_events` read
1.7 million rows and 48 of `sessions` read 469,000, each scan longer as the tables grew. Measured as the
service runs it, on its runtime role's connection, by the tables' sequential scans (pg_stat_user_tables).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from session_itest_support import insert_paid_sessions, rows_read_by_seq_scans

from session_service.adapters.move_groups import EventKey, read_for_events
from support.database import TestDatabase

ROWS = 3000
GROUP = 32
TABLES = ("sessions", "processed_events")


def _session_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


@pytest.fixture
async def history(clean_db: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    """The session service's runtime connection to ROWS paid sessions, each with its processed payment event,
    under statistics taken while both tables were empty."""
    async with clean_db.admin_connection() as admin:
        for table in TABLES:
            await admin.execute(f"ANALYZE session.{table}")
        await insert_paid_sessions(admin, ROWS)
        await admin.execute(
            """INSERT INTO session.processed_events (provider, provider_event_id, session_id, outcome,
                                                     provider_reference)
               SELECT 'stripe', 'evt_' || n, ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid,
                      'applied', 'pi_' || n
                 FROM generate_series(1, $1) AS n""",
            ROWS,
        )
    async with clean_db.runtime_connection("session") as conn:
        yield conn


async def test_a_group_read_reads_no_table_whole(history: asyncpg.Connection) -> None:
    # Half the group redelivers events already processed, half brings new ones, as a burst with retries does.
    keys = [
        EventKey(_session_id(n), "stripe", f"evt_{n}" if n % 2 else f"evt_new_{n}")
        for n in range(1, ROWS, ROWS // GROUP)
    ]
    before = sum((await rows_read_by_seq_scans(history, TABLES)).values())
    rows = await read_for_events(history, keys)
    after = sum((await rows_read_by_seq_scans(history, TABLES)).values())
    assert [row["id"] if row else None for row in rows] == [key.session_id for key in keys]
    seen = ["applied" if not key.provider_event_id.startswith("evt_new_") else None for key in keys]
    assert [row["prior_outcome"] if row else None for row in rows] == seen
    # A few rows are fine (a scan PostgreSQL may choose for a page or two); a table read whole is 3,000.
    assert after - before < ROWS // 10, f"a group read of {len(keys)} events scanned {after - before} rows"


async def test_a_group_read_says_which_events_were_seen(history: asyncpg.Connection) -> None:
    keys = [
        EventKey(_session_id(7), "stripe", "evt_7"),
        EventKey(_session_id(8), "stripe", "evt_new_8"),
        EventKey(uuid.UUID(int=1), "stripe", "evt_9"),
    ]
    rows = await read_for_events(history, keys)
    assert rows[0] is not None and rows[0]["prior_outcome"] == "applied"
    assert rows[1] is not None and rows[1]["prior_outcome"] is None
    assert rows[2] is None
