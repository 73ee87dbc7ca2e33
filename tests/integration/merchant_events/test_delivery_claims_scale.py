"""A merchant webhook delivery claim reads what it takes and what is leased, not the endpoint's whole backlog.

A burst of payments queues two deliveries per session for every endpoint subscribed to them, and an endpoint
takes at most `per_endpoint` (4) at a time, so its backlog can reach tens of thousands while each claim takes
one or two. The claim is measured as the delivery worker runs it, by the index entries it reads
(pg_stat_user_indexes) on the same connection, with statistics taken while the queue was empty.

What this guards: the claim counts the endpoint's leased deliveries, and before migration 0150 that count read
every pending delivery of the endpoint (3,008 index entries with 3,000 pending; a median 5.1 ms a claim with
30,000, against 0.35 ms now).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from session_service.adapters.merchant_events_repository import claim_deliveries
from support.database import TestDatabase

PENDING = 3000
PER_ENDPOINT = 4
ENDPOINT = "22222222-2222-4222-8222-222222222222"
MERCHANT = "11111111-1111-4111-8111-111111111111"
# A claim reads the endpoint's oldest due entries up to its share, and its leased ones; reading the whole
# backlog is PENDING entries or more.
MOST_ENTRIES = 200


async def _entries_read(conn: asyncpg.Connection) -> int:
    await conn.execute("SELECT pg_stat_force_next_flush()")
    value = await conn.fetchval(
        """SELECT sum(coalesce(idx_tup_read, 0)) FROM pg_stat_user_indexes
            WHERE schemaname = 'session' AND relname = 'webhook_deliveries'"""
    )
    return int(value)


@pytest.fixture
async def backlog(clean_db: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    """The session service's runtime connection to PENDING due deliveries of one enabled endpoint, two of the
    oldest leased to a delivery in flight, with statistics taken while the queue was empty."""
    async with clean_db.admin_connection() as admin:
        await admin.execute("ANALYZE session.webhook_deliveries")
        await admin.execute(
            """INSERT INTO session.webhook_endpoints (id, merchant_id, mode, url, events, secret)
               VALUES ($1, $2, 'test', 'https://merchant.example/hook', '{*}', 'whsec_test')""",
            ENDPOINT,
            MERCHANT,
        )
        await admin.execute(
            """INSERT INTO session.merchant_events (id, merchant_id, mode, type, object_kind, object_id, snapshot)
               SELECT 'evt_' || n, $2, 'test', 'session.paid', 'json', 'obj_' || n, '{}'
                 FROM generate_series(1, $1) AS n""",
            PENDING,
            MERCHANT,
        )
        await admin.execute(
            """INSERT INTO session.webhook_deliveries (event_id, endpoint_id, next_attempt_at, locked_until)
               SELECT 'evt_' || n, $2, now() - interval '1 hour' + n * interval '1 ms',
                      CASE WHEN n <= 2 THEN now() + interval '1 minute' END
                 FROM generate_series(1, $1) AS n""",
            PENDING,
            ENDPOINT,
        )
    async with clean_db.runtime_connection("session") as conn:
        yield conn


async def test_a_claim_takes_the_endpoints_share_without_reading_its_backlog(
    backlog: asyncpg.Connection,
) -> None:
    before = await _entries_read(backlog)
    claimed = await claim_deliveries(backlog, 32, PER_ENDPOINT, 30.0)
    read = await _entries_read(backlog) - before
    # Two of the endpoint's four slots are leased: the claim takes the next two due, oldest first.
    assert sorted(row["event_id"] for row in claimed) == ["evt_3", "evt_4"]
    assert read <= MOST_ENTRIES, f"the claim read {read} index entries with {PENDING} deliveries pending"
