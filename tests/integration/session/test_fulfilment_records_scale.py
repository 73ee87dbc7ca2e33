"""A dispatcher pass records what its fulfilments learned by primary key, with 3,000 sessions as with 3
(issue 16).

What this guards: `record_fulfilments` joins the pass's rows (an `unnest` of arrays) to `sessions` and `outbox`
to store the invoice, key and link ids, mark the rows done and queue the mails. With statistics taken while
the tables were nearly empty (a fresh deployment's first burst, and every burst until autovacuum's next
analyze), PostgreSQL planned those joins as hash joins that read the tables whole: in `bench_stack.py`'s two
bursts of 9,000, about 50 sequential scans of `sessions` remained after the group read was fixed, each longer
as the table grew. Measured as the service runs it, on its runtime role's connection, by the tables'
sequential scans (pg_stat_user_tables).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from session_itest_support import insert_paid_sessions, rows_read_by_seq_scans

from session_service.adapters.session_repository import FulfilmentRecord, record_fulfilments
from support.database import TestDatabase

ROWS = 3000
GROUP = 32
PASSES = 8
MERCHANT = uuid.UUID("11111111-1111-4111-8111-111111111111")
TABLES = ("sessions", "outbox", "invoice_event_objects")


def _session_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


@pytest.fixture
async def pending(clean_db: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    """The session service's runtime connection to ROWS paid sessions, each with its pending `fulfil` row,
    under statistics taken while the tables were empty."""
    async with clean_db.admin_connection() as admin:
        for table in TABLES:
            await admin.execute(f"ANALYZE session.{table}")
        await insert_paid_sessions(admin, ROWS)
        await admin.execute(
            """INSERT INTO session.outbox (session_id, kind)
               SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'fulfil'
                 FROM generate_series(1, $1) AS n""",
            ROWS,
        )
    async with clean_db.runtime_connection("session") as conn:
        yield conn


async def _records(conn: asyncpg.Connection, numbers: list[int]) -> list[FulfilmentRecord]:
    outbox = dict(
        await conn.fetch(
            "SELECT session_id, id FROM outbox WHERE kind = 'fulfil' AND session_id = ANY($1::uuid[])",
            [_session_id(n) for n in numbers],
        )
    )
    return [
        FulfilmentRecord(
            outbox_id=outbox[_session_id(n)],
            session_id=_session_id(n),
            merchant_id=MERCHANT,
            invoice_id=f"inv_{n}",
            invoice_number=f"INV-{n}",
            api_key_id=f"key_{n}",
            access_token_id=f"tok_{n}",
            steps=[("invoice_issued", {"invoice_id": f"inv_{n}"}), ("api_key_issued", {})],
            complete=True,
            send_mail=True,
            invoice_object=f'{{"id": "inv_{n}"}}',
        )
        for n in numbers
    ]


async def test_passes_record_their_rows_without_reading_a_table_whole(pending: asyncpg.Connection) -> None:
    # Eight passes on one connection, as a dispatcher runs them: after five, PostgreSQL may plan the prepared
    # statement once for any arrays (a generic plan), which must not read a table whole either.
    passes = [list(range(1 + p, ROWS, ROWS // GROUP)) for p in range(PASSES)]
    before = await rows_read_by_seq_scans(pending, TABLES)
    for numbers in passes:
        records = await _records(pending, numbers)
        done = await record_fulfilments(pending, records)
        assert done == {record.outbox_id for record in records}
    after = await rows_read_by_seq_scans(pending, TABLES)
    numbers = [n for numbers in passes for n in numbers]
    stored = await pending.fetch(
        "SELECT invoice_id, api_key_id, fulfilment_status FROM sessions WHERE id = ANY($1::uuid[])",
        [_session_id(n) for n in numbers],
    )
    assert sorted((r["invoice_id"], r["api_key_id"], r["fulfilment_status"]) for r in stored) == sorted(
        (f"inv_{n}", f"key_{n}", "done") for n in numbers
    )
    mails = await pending.fetchval(
        "SELECT count(*) FROM outbox WHERE kind = 'email' AND session_id = ANY($1::uuid[])",
        [_session_id(n) for n in numbers],
    )
    assert mails == len(numbers)
    objects = await pending.fetchval("SELECT count(*) FROM invoice_event_objects")
    assert objects == 0, "every invoice object was taken by its invoice.issued event"
    # A few rows are fine (a scan PostgreSQL may choose for a page or two); a table read whole is 3,000.
    scanned = {table: after[table] - before[table] for table in TABLES}
    assert all(rows < ROWS // 10 for rows in scanned.values()), (
        f"recording {PASSES} passes of {len(passes[0])} rows scanned {scanned}"
    )
