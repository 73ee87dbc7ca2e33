"""The relay's claim and its lag check touch a few dozen blocks with 3,000 events due, as with 3: they read
the oldest due rows from the due index and stop (issue 16).

What this guards: with statistics taken while the inbox was empty (a fresh deployment's first burst, until
autovacuum's next analyze) PostgreSQL planned both queries as a bitmap scan of every due row, combined with the
(provider, event_id) index for `provider = ANY(...)`, then a sort: 5-10 ms a claim with 9,000 due, run every
0.1 s during a burst. The statement is measured as the repository runs it: by the heap and index blocks it
touches (pg_statio_user_tables), read on the same connection after forcing its statistics out.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import asyncpg
import pytest

from support.database import TestDatabase
from webhook_gateway.adapters.inbox_repository import INBOX_PROVIDERS, InboxRepository
from webhook_gateway.entrypoints import routes_web3
from webhook_gateway.service_layer.relay import NORMALIZERS

DUE = 3000
# Read in order, a claim of 4 touches about 90 blocks, most of them its own update of the 4 rows (a new version
# of each and an entry in each index); the lag check about 9. A scan of every due row touches every heap page
# that holds one: about 1,550 for either with 3 KB bodies (measured on the code before the fix).
MOST_BLOCKS = 300


async def _blocks_read(conn: asyncpg.Connection) -> int:
    await conn.execute("SELECT pg_stat_force_next_flush()")
    row = await conn.fetchrow(
        """SELECT coalesce(heap_blks_hit, 0) + coalesce(heap_blks_read, 0)
                  + coalesce(idx_blks_hit, 0) + coalesce(idx_blks_read, 0) AS blocks
             FROM pg_statio_user_tables WHERE schemaname = 'gateway' AND relname = 'inbox_events'"""
    )
    assert row is not None
    return int(row["blocks"])


@pytest.fixture
async def backlog(clean_db: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the gateway's runtime role to an inbox whose statistics were taken while it was empty,
    with DUE events due now, each with a Stripe-sized body."""
    async with clean_db.admin_connection() as admin:
        await admin.execute("ANALYZE gateway.inbox_events")
        await admin.execute(
            """INSERT INTO gateway.inbox_events (provider, event_id, event_type, raw_body, status, attempts,
                                                 next_attempt_at, session_id)
               SELECT (ARRAY['stripe', 'onecom'])[1 + n % 2], 'evt_' || n, 'checkout.session.completed',
                      convert_to(repeat('x', 3000), 'UTF8'), 'received', 0,
                      now() - interval '1 hour' + n * interval '1 ms', gen_random_uuid()
                 FROM generate_series(1, $1) AS n""",
            DUE,
        )
    async with clean_db.runtime_connection("gateway") as conn:
        yield conn


async def test_a_claim_reads_the_oldest_due_events_and_stops(backlog: asyncpg.Connection) -> None:
    repo = InboxRepository(backlog)
    before = await _blocks_read(backlog)
    claimed = await repo.claim_due(4, 30, sorted(INBOX_PROVIDERS), overdue_s=1.0)
    touched = await _blocks_read(backlog) - before
    assert [event.event_id for event in claimed] == ["evt_1", "evt_2", "evt_3", "evt_4"]
    assert touched <= MOST_BLOCKS, f"the claim of 4 touched {touched} blocks with {DUE} due"


async def test_the_lag_check_reads_the_oldest_due_event_only(backlog: asyncpg.Connection) -> None:
    repo = InboxRepository(backlog)
    before = await _blocks_read(backlog)
    waited_s = await repo.longest_due_wait_s(sorted(INBOX_PROVIDERS))
    touched = await _blocks_read(backlog) - before
    assert 3590 < waited_s < 3700
    assert touched <= MOST_BLOCKS, f"the lag check touched {touched} blocks with {DUE} due"


async def test_a_gateway_without_every_handler_claims_only_its_own_providers(
    backlog: asyncpg.Connection,
) -> None:
    """The narrower query still holds for a gateway that handles some providers only (not the shipped build,
    whose relay handles all of them)."""
    claimed = await InboxRepository(backlog).claim_due(3, 30, ["onecom"])
    assert [(event.provider, event.event_id) for event in claimed] == [
        ("onecom", "evt_1"),
        ("onecom", "evt_3"),
        ("onecom", "evt_5"),
    ]


async def test_the_inbox_providers_are_those_its_table_accepts(backlog: asyncpg.Connection) -> None:
    """INBOX_PROVIDERS decides when the provider filter can go: it must be exactly the table's CHECK."""
    definitions = await backlog.fetch(
        """SELECT pg_get_constraintdef(c.oid) AS definition
             FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
            WHERE c.conrelid = 'inbox_events'::regclass AND c.contype = 'c' AND a.attname = 'provider'"""
    )
    assert len(definitions) == 1, definitions
    assert set(re.findall(r"'([a-z0-9_]+)'::text", definitions[0]["definition"])) == INBOX_PROVIDERS


def test_the_shipped_relay_handles_every_inbox_provider() -> None:
    """The gateway's relay registers the normalising handlers and, with routes_web3, the chain's: so its claims
    take the unfiltered, index-ordered form. A provider added to the inbox without a handler would bring the
    filter back."""
    assert set(NORMALIZERS) | {routes_web3.PROVIDER} == INBOX_PROVIDERS
